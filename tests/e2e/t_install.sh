#!/bin/bash
# make install / uninstall into a temporary prefix: the installed command
# finds its shim without any variable, records, and analyzes; the header
# and pkg-config file are usable; uninstall removes what install put there.
. "$TOP/tests/e2e/lib.sh"
P="$WORK/prefix"
make -s -C "$TOP" BUILD="$BUILD" PREFIX="$P" install >make.log 2>&1 || fail "make install: $(tail -5 make.log)"
for f in bin/heaptrace lib/heaptrace/libheaptrace.so include/heaptrace.h \
         share/man/man1/heaptrace.1 lib/pkgconfig/heaptrace.pc; do
    [ -e "$P/$f" ] || fail "install did not create $f"
done
env -u LD_PRELOAD "$P/bin/heaptrace" record --quiet --all -o t.htr "$E2E/prog_h_oom" 0 >out ||
    fail "installed heaptrace cannot record: $(cat out)"
"$P/bin/heaptrace" report t.htr >/dev/null || fail "installed heaptrace cannot report"
cat > api.c <<'C'
#include <heaptrace.h>
#include <stdio.h>
int main(void) { printf("%d\n", heaptrace_snapshot()); return 0; }
C
PKG_CONFIG_PATH="$P/lib/pkgconfig" cc $(PKG_CONFIG_PATH="$P/lib/pkgconfig" pkg-config --cflags heaptrace) \
    -o api api.c || fail "heaptrace.h does not compile through pkg-config"
expect_eq "heaptrace_snapshot() without heaptrace" "$(./api)" "-1"
make -s -C "$TOP" BUILD="$BUILD" PREFIX="$P" uninstall >make.log 2>&1 || fail "make uninstall: $(tail -5 make.log)"
left=$(find "$P" -type f | head -5)
[ -z "$left" ] || fail "uninstall left: $left"
echo ok
