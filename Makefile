# heaptrace -- non-recursive build. `make` builds build/heaptrace and
# build/libheaptrace.so; `make check` runs every test; `make demo` records
# the bundled example. Sources are picked up by directory, so adding a
# module is adding a file.

CC      ?= gcc
PREFIX  ?= /usr/local
BUILD   ?= build
VERSION := 0.1.0

WARN    := -Wall -Wextra -Wno-unused-parameter -Wshadow -Wstrict-prototypes
CFLAGS  ?= -O2 -g
BASEFLAGS := -std=c11 -D_GNU_SOURCE -I. -MMD -MP $(WARN) \
             -DHT_VERSION=\"$(VERSION)\" -DHT_PREFIX=\"$(PREFIX)\"
SHIMFLAGS := -fPIC -fvisibility=hidden -ftls-model=initial-exec -fno-omit-frame-pointer
# The shim links libunwind only: libzstd is loaded by its own collector when
# that runs (libheaptrace/shim_zstd.h), zlib's CRC and libm's log are its own.
PKGS_SHIM := libunwind
PKGS_HOST := libzstd zlib libelf
LIBS_SHIM  = $(shell pkg-config --libs $(PKGS_SHIM) 2>/dev/null) -ldl -lpthread
LIBS_HOST  = $(shell pkg-config --libs $(PKGS_HOST) 2>/dev/null) -ldwarf -lm -lpthread -ldl
CHECK_LIBS = $(shell pkg-config --libs check 2>/dev/null)

# The record format, the ring and the collector are shared by the shim and
# the command (the collector runs inside the program when the shim is
# preloaded by hand).
FMT_CORE   := formats/trace_enc.c formats/trace_dec.c $(wildcard formats/tracefile.c)
COLLECT    := $(wildcard libheaptrace/ring.c libheaptrace/collector.c)
SHIM_SRC   := $(sort $(wildcard libheaptrace/*.c) $(FMT_CORE))
# libheaptrace/shim*.c define malloc & co.: never link them into a host program.
SHIM_LIB_SRC := $(filter-out libheaptrace/shim%.c,$(wildcard libheaptrace/*.c))
ANALYZER_SRC := $(wildcard analyzer/*.c) $(wildcard formats/*.c)
CLI_SRC    := $(wildcard heaptrace-cli/*.c)
HOST_SRC   := $(sort $(ANALYZER_SRC) $(COLLECT))
UNIT_SRC   := $(wildcard tests/unit/test_*.c)
# Shared fixtures of the unit suites: linked in, but not suites themselves.
UNIT_FIX   := $(wildcard tests/unit/fixture_*.c)
E2E_SRC    := $(wildcard tests/e2e/prog_*.c)
E2E_CXX    := $(wildcard tests/e2e/prog_*.cc)
EXAMPLE_SRC := $(wildcard examples/*.c)

shim_obj = $(patsubst %.c,$(BUILD)/obj/shim/%.o,$(1))
host_obj = $(patsubst %.c,$(BUILD)/obj/host/%.o,$(1))

SHIM_OBJ := $(call shim_obj,$(SHIM_SRC))
HOST_OBJ := $(call host_obj,$(HOST_SRC))
CLI_OBJ  := $(call host_obj,$(CLI_SRC))
# Unit tests link the shim's modules as ordinary code, minus the interposer.
UNIT_OBJ := $(call host_obj,$(UNIT_SRC) $(UNIT_FIX) $(sort $(HOST_SRC) $(SHIM_LIB_SRC)))

.PHONY: all deps check FORCE unit e2e demo bench fuzz asan stress install uninstall clean format

all: $(BUILD)/heaptrace $(BUILD)/libheaptrace.so

deps:
	@scripts/install-deps.sh

# The shim never takes the sanitizer flags of `make asan`: it lives inside
# other programs, which are not built with a sanitizer runtime.
SHIM_CFLAGS ?= $(CFLAGS)

$(BUILD)/obj/shim/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(BASEFLAGS) $(SHIMFLAGS) $(SHIM_CFLAGS) -DHT_IN_SHIM=1 $(shell pkg-config --cflags libunwind 2>/dev/null) -c $< -o $@

$(BUILD)/obj/host/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(BASEFLAGS) $(CFLAGS) $(shell pkg-config --cflags libunwind 2>/dev/null) -c $< -o $@

$(BUILD)/libheaptrace.so: $(SHIM_OBJ) libheaptrace/libheaptrace.map
	$(CC) -shared -Wl,--version-script=libheaptrace/libheaptrace.map -Wl,-z,nodelete -Wl,-z,now -Wl,-z,defs \
	    -o $@ $(SHIM_OBJ) $(LIBS_SHIM)

$(BUILD)/heaptrace: $(CLI_OBJ) $(HOST_OBJ)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS_HOST) $(LIBS_SHIM)

# ---- tests ----

$(BUILD)/unit_suites.h: $(UNIT_SRC)
	@mkdir -p $(@D)
	@for f in $(UNIT_SRC); do n=$$(basename $$f .c); echo "X(suite_$${n#test_})"; done > $@.tmp
	@cmp -s $@.tmp $@ 2>/dev/null && rm -f $@.tmp || mv $@.tmp $@

$(BUILD)/obj/host/tests/unit/main.o: tests/unit/main.c $(BUILD)/unit_suites.h
	@mkdir -p $(@D)
	$(CC) $(BASEFLAGS) -I$(BUILD) $(CFLAGS) -c $< -o $@

# -z now as the shim: its code runs here, on small stacks too (test_unwind),
# where the loader's lazy binding would not fit.
$(BUILD)/unit_tests: $(BUILD)/obj/host/tests/unit/main.o $(UNIT_OBJ)
	$(CC) $(LDFLAGS) -Wl,-z,now -o $@ $^ $(CHECK_LIBS) $(LIBS_HOST) $(LIBS_SHIM)

E2E_BIN := $(patsubst tests/e2e/%.c,$(BUILD)/e2e/%,$(E2E_SRC)) \
           $(patsubst tests/e2e/%.cc,$(BUILD)/e2e/%,$(E2E_CXX))

$(BUILD)/e2e/%: tests/e2e/%.c
	@mkdir -p $(@D)
	$(CC) -std=gnu11 -O0 -g -fno-omit-frame-pointer -fno-builtin -Iinclude -o $@ $< -ldl -lpthread

$(BUILD)/e2e/%: tests/e2e/%.cc
	@mkdir -p $(@D)
	g++ -O0 -g -fno-omit-frame-pointer -o $@ $< -lpthread

$(BUILD)/e2e/lib%.so: tests/e2e/lib%.c
	@mkdir -p $(@D)
	$(CC) -O0 -g -shared -fPIC -o $@ $<

E2E_LIBS := $(patsubst tests/e2e/lib%.c,$(BUILD)/e2e/lib%.so,$(wildcard tests/e2e/lib*.c))

EXAMPLE_BIN := $(patsubst examples/%.c,$(BUILD)/examples/%,$(EXAMPLE_SRC))
$(BUILD)/examples/%: examples/%.c
	@mkdir -p $(@D)
	$(CC) -std=gnu11 -O1 -g -fno-omit-frame-pointer -Iinclude -o $@ $< -lpthread

unit: deps $(BUILD)/unit_tests
	$(BUILD)/unit_tests

e2e: deps all $(E2E_BIN) $(E2E_LIBS) $(EXAMPLE_BIN)
	@tests/run-e2e.sh $(BUILD)

check: deps
	@$(MAKE) --no-print-directory all $(BUILD)/unit_tests $(E2E_BIN) $(E2E_LIBS) $(EXAMPLE_BIN)
	@tests/run-all.sh $(BUILD)

demo: deps
	@$(MAKE) --no-print-directory all $(EXAMPLE_BIN)
	@scripts/demo.sh $(BUILD)

bench: deps all
	@bench/run.sh $(BUILD)

# ---- install ----
# The command finds its shim at $(PREFIX)/lib/heaptrace/libheaptrace.so
# (HT_PREFIX is compiled in), so an installed heaptrace needs no variable.
DESTDIR ?=
LIBDIR  := $(PREFIX)/lib/heaptrace

# Regenerated on every install: it names PREFIX, which may change between runs.
$(BUILD)/heaptrace.pc: scripts/heaptrace.pc.in FORCE
	@mkdir -p $(@D)
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(VERSION)|g' $< > $@

install: all $(BUILD)/heaptrace.pc
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(LIBDIR) $(DESTDIR)$(PREFIX)/include \
	    $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 0755 $(BUILD)/heaptrace $(DESTDIR)$(PREFIX)/bin/heaptrace
	install -m 0644 $(BUILD)/libheaptrace.so $(DESTDIR)$(LIBDIR)/libheaptrace.so
	install -m 0644 include/heaptrace.h $(DESTDIR)$(PREFIX)/include/heaptrace.h
	install -m 0644 docs/heaptrace.1 $(DESTDIR)$(PREFIX)/share/man/man1/heaptrace.1
	install -m 0644 $(BUILD)/heaptrace.pc $(DESTDIR)$(PREFIX)/lib/pkgconfig/heaptrace.pc

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/heaptrace $(DESTDIR)$(LIBDIR)/libheaptrace.so \
	    $(DESTDIR)$(PREFIX)/include/heaptrace.h $(DESTDIR)$(PREFIX)/share/man/man1/heaptrace.1 \
	    $(DESTDIR)$(PREFIX)/lib/pkgconfig/heaptrace.pc
	-rmdir $(DESTDIR)$(LIBDIR) 2>/dev/null

# ---- sanitizers, fuzzing, stress ----
SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer

# The analyzer, the command and the unit tests under ASan+UBSan; then the
# whole suite with that command.
asan: deps
	@$(MAKE) --no-print-directory BUILD=$(BUILD)/asan CFLAGS="-O1 -g $(SAN)" \
	    SHIM_CFLAGS="-O2 -g" LDFLAGS="$(SAN)" all $(BUILD)/asan/unit_tests \
	    $(subst $(BUILD)/,$(BUILD)/asan/,$(E2E_BIN) $(E2E_LIBS) $(EXAMPLE_BIN))
	@# Sanitized analysis runs several times slower: fewer mutants, longer limits.
	@ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	    MUTATE_COUNT=10 E2E_TIMEOUT=600 tests/run-all.sh $(BUILD)/asan

FUZZ_SRC := $(sort $(ANALYZER_SRC) $(FMT_CORE))
FUZZ_SECONDS ?= 60
$(BUILD)/fuzz_reader: tests/fuzz/fuzz_reader.c $(FUZZ_SRC)
	@mkdir -p $(@D)
	clang $(BASEFLAGS) -Wno-strict-prototypes -O1 -g -fsanitize=fuzzer,address,undefined \
	    -o $@ $^ $(LIBS_HOST) -lstdc++

$(BUILD)/fuzz_segment: tests/fuzz/fuzz_segment.c $(FUZZ_SRC)
	@mkdir -p $(@D)
	clang $(BASEFLAGS) -Wno-strict-prototypes -O1 -g -fsanitize=fuzzer,address,undefined \
	    -o $@ $^ $(LIBS_HOST) -lstdc++

# libFuzzer for FUZZ_SECONDS on the trace reader (whole files), then on one
# decompressed segment (records and replay); new failing inputs land in
# $(BUILD)/fuzz-artifacts (copy them to tests/fuzz/corpus/ to keep them:
# whole files, or segment payloads named seg-*.input).
fuzz: deps $(BUILD)/fuzz_reader $(BUILD)/fuzz_segment
	@mkdir -p $(BUILD)/fuzz-corpus $(BUILD)/fuzz-seg-corpus $(BUILD)/fuzz-artifacts
	$(BUILD)/fuzz_reader -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 -timeout=10 \
	    -artifact_prefix=$(BUILD)/fuzz-artifacts/ $(BUILD)/fuzz-corpus tests/fuzz/corpus
	$(BUILD)/fuzz_segment -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 -timeout=10 \
	    -artifact_prefix=$(BUILD)/fuzz-artifacts/seg- $(BUILD)/fuzz-seg-corpus tests/fuzz/seg-corpus

# The long versions of the robustness tests.
stress: deps all
	@$(MAKE) --no-print-directory $(E2E_BIN) $(E2E_LIBS)
	MUTATE_COUNT=400 tests/run-e2e.sh $(BUILD) hostile
	MUTATE_COUNT=400 tests/run-e2e.sh $(BUILD) mutate

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
