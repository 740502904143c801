/*
 * tests/unit/test_symbols.c -- the symbolizer against real binaries.
 *
 * The fixture writes small C and C++ programs into a temporary directory,
 * compiles them with the system compiler (-g -O2, DWARF 5 and 4, PIE and
 * not), derives stripped copies and separate debug files with objcopy,
 * and runs them once: each program prints, for a few marked call sites,
 * the ELF virtual address of the call (return address - 1 - load bias),
 * exactly what the analyzer will compute from a trace. Expected lines come
 * from the marker comments in the sources, so nothing here is hard-coded
 * to one compiler's output.
 */
#include "analyzer/elf.h"
#include "analyzer/symbols.h"

#include <check.h>
#include <dlfcn.h>
#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <link.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- the programs ---- */

static const char prog_c[] =
    "#define _GNU_SOURCE\n"
    "#include <link.h>\n"
    "#include <stdint.h>\n"
    "#include <stdio.h>\n"
    "static uintptr_t bias;\n"
    "static volatile int sink;\n"
    "static int phdr_cb(struct dl_phdr_info *info, size_t size, void *data)\n"
    "{\n"
    "    (void)size; (void)data;\n"
    "    bias = info->dlpi_addr; /* the first object is the program */\n"
    "    return 1;\n"
    "}\n"
    "__attribute__((noinline)) void site(const char *tag)\n"
    "{\n"
    "    uintptr_t ra = (uintptr_t)__builtin_return_address(0);\n"
    "    printf(\"%s %lx\\n\", tag, (unsigned long)(ra - 1 - bias));\n"
    "    sink++;\n"
    "}\n"
    "static inline __attribute__((always_inline)) void inner(void)\n"
    "{\n"
    "    site(\"inner\"); /* @inner */\n"
    "    sink++;\n"
    "}\n"
    "static inline __attribute__((always_inline)) void middle(void)\n"
    "{\n"
    "    inner(); /* @middle */\n"
    "    sink++;\n"
    "}\n"
    "__attribute__((noinline)) void outer(void)\n"
    "{\n"
    "    middle(); /* @outer */\n"
    "    sink++;\n"
    "}\n"
    "__attribute__((noinline)) static void hidden_fn(void)\n"
    "{\n"
    "    site(\"hidden\"); /* @hidden */\n"
    "    sink++;\n"
    "}\n"
    "int main(void)\n"
    "{\n"
    "    dl_iterate_phdr(phdr_cb, NULL);\n"
    "    outer();\n"
    "    hidden_fn();\n"
    "    return 0;\n"
    "}\n";

static const char prog_cc[] =
    "#include <link.h>\n"
    "#include <stdint.h>\n"
    "#include <cstdio>\n"
    "static uintptr_t bias;\n"
    "static volatile int sink;\n"
    "static int phdr_cb(struct dl_phdr_info *info, size_t, void *)\n"
    "{\n"
    "    bias = info->dlpi_addr;\n"
    "    return 1;\n"
    "}\n"
    "__attribute__((noinline)) void site(const char *tag)\n"
    "{\n"
    "    uintptr_t ra = (uintptr_t)__builtin_return_address(0);\n"
    "    std::printf(\"%s %lx\\n\", tag, (unsigned long)(ra - 1 - bias));\n"
    "    sink++;\n"
    "}\n"
    "namespace ns {\n"
    "struct Widget {\n"
    "    int v;\n"
    "    __attribute__((noinline)) int poke(int x);\n"
    "    inline __attribute__((always_inline)) int helper(int x)\n"
    "    {\n"
    "        site(\"cxx\"); /* @cxx_helper */\n"
    "        return x + v + sink;\n"
    "    }\n"
    "};\n"
    "int Widget::poke(int x)\n"
    "{\n"
    "    int r = helper(x); /* @cxx_poke */\n"
    "    sink++;\n"
    "    return r;\n"
    "}\n"
    "} // namespace ns\n"
    "int main()\n"
    "{\n"
    "    dl_iterate_phdr(phdr_cb, nullptr);\n"
    "    ns::Widget w{1};\n"
    "    return w.poke(2) == 0 ? 1 : 0;\n"
    "}\n";

/* ---- fixture state (built once in the parent; forked tests inherit it) ---- */

static char dir[64];
static char src_c[128], src_cc[128];
static int built;

typedef struct site_s {
    const char *tag;
    uint64_t vaddr;
} site_t;

/* Variants of the C program. */
enum { V_D5, V_D4, V_NOPIE, V_NBID, NV };
static const char *vname[NV] = {"prog5", "prog4", "prognopie", "prognbid"};
static site_t vsites[NV][2];
static site_t cxx_site;

static int
run(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    if (rc != 0)
        fprintf(stderr, "test_symbols: command failed (%d): %s\n", rc, cmd);
    return rc;
}

static int
write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fputs(text, f);
    return fclose(f);
}

/* Line number of the line holding MARKER in SRC. */
static unsigned
marker_line(const char *src, const char *marker)
{
    const char *p = strstr(src, marker);
    ck_assert_msg(p != NULL, "marker %s not in source", marker);
    unsigned line = 1;
    for (const char *q = src; q < p; q++)
        line += *q == '\n';
    return line;
}

/* Run PROG and read "tag hexaddr" lines into sites (n of them). */
static int
read_sites(const char *prog, site_t *sites, int n)
{
    FILE *p = popen(prog, "r");
    if (!p)
        return -1;
    char tag[32];
    unsigned long v;
    int k = 0;
    while (k < n && fscanf(p, "%31s %lx", tag, &v) == 2) {
        for (int i = 0; i < n; i++)
            if (strcmp(sites[i].tag, tag) == 0)
                sites[i].vaddr = v;
        k++;
    }
    int rc = pclose(p);
    return k == n && rc == 0 ? 0 : -1;
}

static void
fixture_build(void)
{
    snprintf(dir, sizeof dir, "/tmp/ht-sym-XXXXXX");
    if (!mkdtemp(dir))
        return;
    snprintf(src_c, sizeof src_c, "%s/prog.c", dir);
    snprintf(src_cc, sizeof src_cc, "%s/prog.cc", dir);
    if (write_file(src_c, prog_c) || write_file(src_cc, prog_cc))
        return;
    // DWARF 5 (the default) by absolute path; DWARF 4 compiled from inside
    // the directory, so file names are joined with DW_AT_comp_dir.
    if (run("cc -g -O2 -Wl,--build-id -rdynamic -o %s/prog5 %s", dir, src_c) ||
        run("cd %s && cc -gdwarf-4 -O2 -Wl,--build-id -o prog4 prog.c", dir) ||
        run("cc -g -O2 -no-pie -fno-pie -Wl,--build-id -o %s/prognopie %s", dir, src_c) ||
        run("cc -g -O2 -Wl,--build-id=none -o %s/prognbid %s", dir, src_c) ||
        run("g++ -g -O2 -Wl,--build-id -o %s/progcc %s", dir, src_cc))
        return;
    for (int v = 0; v < NV; v++) {
        char path[256];
        snprintf(path, sizeof path, "%s/%s", dir, vname[v]);
        vsites[v][0] = (site_t){"inner", 0};
        vsites[v][1] = (site_t){"hidden", 0};
        if (read_sites(path, vsites[v], 2))
            return;
    }
    char path[256];
    snprintf(path, sizeof path, "%s/progcc", dir);
    cxx_site = (site_t){"cxx", 0};
    if (read_sites(path, &cxx_site, 1))
        return;
    // Derived files: stripped copies, a debug file by build-id under a
    // private debug root, and debuglinked pairs.
    if (run("cd %s && strip --strip-all -o prog5.stripped prog5", dir) ||
        run("cd %s && objcopy --only-keep-debug prog5 prog5.debug", dir) ||
        run("cd %s && bid=$(readelf -n prog5 | awk '/Build ID/{print $3}') && "
            "mkdir -p root/.build-id/${bid%%${bid#??}} && "
            "cp prog5.debug root/.build-id/${bid%%${bid#??}}/${bid#??}.debug",
            dir) ||
        run("cd %s && mkdir -p bid && strip --strip-all -o bid/prog5 prog5", dir) ||
        run("cd %s && mkdir -p link/.debug && objcopy --only-keep-debug prognbid "
            "link/.debug/prognbid.dbg && strip --strip-all -o link/prognbid prognbid && "
            "objcopy --add-gnu-debuglink=link/.debug/prognbid.dbg link/prognbid",
            dir) ||
        // A debuglink whose target has the right name but the wrong bytes.
        run("cd %s && mkdir -p badlink && cp link/prognbid badlink/ && "
            "objcopy --only-keep-debug prog4 badlink/prognbid.dbg",
            dir))
        return;
    built = 1;
}

static int
rm_cb(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static void
fixture_clean(void)
{
    if (dir[0] && strncmp(dir, "/tmp/ht-sym-", 12) == 0)
        nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- helpers ---- */

static char *
pathf(const char *fmt, ...)
{
    static char buf[4][512];
    static int k;
    char *b = buf[k++ & 3];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b, 512, fmt, ap);
    va_end(ap);
    return b;
}

static int
module_with_file_bid(ht_sym_t *s, const char *path)
{
    ht_elf_t *e = NULL;
    ck_assert_int_eq(ht_elf_open(path, &e), 0);
    size_t n = 0;
    const uint8_t *bid = ht_elf_build_id(e, &n);
    int h = ht_sym_module(s, path, bid, n);
    ht_elf_close(e);
    ck_assert_int_ge(h, 0);
    return h;
}

static void
check_line(const ht_sym_line_t *l, const char *fn, const char *file, unsigned line)
{
    ck_assert_msg(l->function && strcmp(l->function, fn) == 0, "function %s, want %s",
                  l->function ? l->function : "(null)", fn);
    if (file) {
        ck_assert_msg(l->file && strcmp(l->file, file) == 0, "file %s, want %s",
                      l->file ? l->file : "(null)", file);
    } else
        ck_assert_ptr_null(l->file);
    ck_assert_uint_eq(l->line, line);
}

/* The full inline chain of the "inner" site and the "hidden" site. */
static void
check_full_chain(ht_sym_t *s, int h, int v)
{
    ck_assert(built);
    ht_sym_line_t out[8];
    int n = ht_sym_resolve(s, h, vsites[v][0].vaddr, out, 8);
    ck_assert_int_eq(n, 3);
    check_line(&out[0], "inner", src_c, marker_line(prog_c, "/* @inner */"));
    check_line(&out[1], "middle", src_c, marker_line(prog_c, "/* @middle */"));
    check_line(&out[2], "outer", src_c, marker_line(prog_c, "/* @outer */"));
    n = ht_sym_resolve(s, h, vsites[v][1].vaddr, out, 8);
    ck_assert_int_eq(n, 1);
    check_line(&out[0], "hidden_fn", src_c, marker_line(prog_c, "/* @hidden */"));
    ck_assert_int_eq(ht_sym_module_ok(s, h), 1);
    ck_assert_ptr_null(ht_sym_module_warning(s, h));
}

/* ---- tests ---- */

START_TEST(test_inline_chain)
{
    // _i: 0 DWARF 5 PIE, 1 DWARF 4 (relative names), 2 non-PIE, 3 no build-id
    ck_assert(built);
    ht_sym_t *s = ht_sym_create(pathf("%s/root", dir));
    ck_assert_ptr_nonnull(s);
    int h = module_with_file_bid(s, pathf("%s/%s", dir, vname[_i]));
    check_full_chain(s, h, _i);
    ht_sym_destroy(s);
}
END_TEST

START_TEST(test_cache_and_truncation)
{
    ck_assert(built);
    ht_sym_t *s = ht_sym_create(NULL);
    int h = module_with_file_bid(s, pathf("%s/prog5", dir));
    ck_assert_int_eq(ht_sym_module(s, pathf("%s/prog5", dir), NULL, 0) == h, 0);
    ht_sym_line_t a[8], b[8];
    int n = ht_sym_resolve(s, h, vsites[V_D5][0].vaddr, a, 8);
    ht_sym_stats_t st;
    ht_sym_stats_get(s, &st);
    ck_assert_uint_eq(st.resolves, 1);
    ck_assert_uint_eq(st.cache_hits, 0);
    ck_assert_uint_ge(st.cus_parsed, 1);
    ck_assert_int_eq(ht_sym_resolve(s, h, vsites[V_D5][0].vaddr, b, 8), n);
    ht_sym_stats_get(s, &st);
    ck_assert_uint_eq(st.cache_hits, 1);
    for (int i = 0; i < n; i++) {
        // Same interned strings, not just equal ones.
        ck_assert_ptr_eq(a[i].function, b[i].function);
        ck_assert_ptr_eq(a[i].file, b[i].file);
        ck_assert_uint_eq(a[i].line, b[i].line);
    }
    // max 2 on a 3-deep chain: the innermost frame and the real function.
    ck_assert_int_eq(ht_sym_resolve(s, h, vsites[V_D5][0].vaddr, b, 2), 2);
    ck_assert_str_eq(b[0].function, "inner");
    ck_assert_str_eq(b[1].function, "outer");
    ck_assert_int_eq(ht_sym_resolve(s, h, vsites[V_D5][0].vaddr, b, 1), 1);
    ck_assert_str_eq(b[0].function, "outer");
    ck_assert_int_eq(ht_sym_resolve(s, h, vsites[V_D5][0].vaddr, b, 0), 0);
    // Same path and build-id: same handle; another build-id: another.
    ht_elf_t *e;
    ck_assert_int_eq(ht_elf_open(pathf("%s/prog5", dir), &e), 0);
    size_t bl;
    const uint8_t *bid = ht_elf_build_id(e, &bl);
    ck_assert_uint_eq(bl, 20);
    ck_assert_int_eq(ht_sym_module(s, pathf("%s/prog5", dir), bid, bl), h);
    ht_elf_close(e);
    // Bad handles and arguments.
    ck_assert_int_eq(ht_sym_resolve(s, 999, 0x1000, b, 8), 1);
    ck_assert_str_eq(b[0].function, "??");
    ck_assert_int_eq(ht_sym_resolve(s, -1, 0x1000, b, 8), 1);
    ck_assert_int_eq(ht_sym_module(s, NULL, NULL, 0), -EINVAL);
    uint8_t big[65] = {0};
    ck_assert_int_eq(ht_sym_module(s, "/x", big, sizeof big), -EINVAL);
    ck_assert_int_eq(ht_sym_module_ok(s, 999), 0);
    ck_assert_ptr_null(ht_sym_module_warning(s, 999));
    ht_sym_destroy(s);
}
END_TEST

START_TEST(test_cxx_demangled)
{
    ck_assert(built);
    ht_sym_t *s = ht_sym_create(NULL);
    int h = module_with_file_bid(s, pathf("%s/progcc", dir));
    ht_sym_line_t out[8];
    int n = ht_sym_resolve(s, h, cxx_site.vaddr, out, 8);
    ck_assert_int_eq(n, 2);
    check_line(&out[0], "ns::Widget::helper(int)", src_cc,
               marker_line(prog_cc, "/* @cxx_helper */"));
    check_line(&out[1], "ns::Widget::poke(int)", src_cc, marker_line(prog_cc, "/* @cxx_poke */"));
    ht_sym_destroy(s);
}
END_TEST

START_TEST(test_stripped_dynsym)
{
    ck_assert(built);
    ht_sym_t *s = ht_sym_create(pathf("%s/nonexistent-root", dir));
    const char *p = pathf("%s/prog5.stripped", dir);
    int h = module_with_file_bid(s, p);
    ht_sym_line_t out[8];
    // "outer" is exported (-rdynamic): the dynamic symbol table names it,
    // without DWARF there is no inline chain and no line.
    ck_assert_int_eq(ht_sym_resolve(s, h, vsites[V_D5][0].vaddr, out, 8), 1);
    check_line(&out[0], "outer", NULL, 0);
    // hidden_fn is static: not in .dynsym. The nearest exported symbol
    // before it must not be blamed, because sizes are respected.
    ck_assert_int_eq(ht_sym_resolve(s, h, vsites[V_D5][1].vaddr, out, 8), 1);
    char want[64];
    snprintf(want, sizeof want, "prog5.stripped+0x%llx", (unsigned long long)vsites[V_D5][1].vaddr);
    check_line(&out[0], want, NULL, 0);
    ck_assert_int_eq(ht_sym_module_ok(s, h), 1);
    ck_assert_ptr_null(ht_sym_module_warning(s, h));
    ht_elf_t *e;
    ck_assert_int_eq(ht_elf_open(p, &e), 0);
    ck_assert_int_eq(ht_elf_syms_kind(e), HT_ELF_SYMS_DYNSYM);
    ck_assert_int_eq(ht_elf_has_dwarf(e), 0);
    ht_elf_close(e);
    ht_sym_destroy(s);
}
END_TEST

START_TEST(test_debug_by_build_id)
{
    ck_assert(built);
    ht_sym_t *s = ht_sym_create(pathf("%s/root", dir));
    int h = module_with_file_bid(s, pathf("%s/bid/prog5", dir));
    check_full_chain(s, h, V_D5);
    ht_sym_destroy(s);
}
END_TEST

START_TEST(test_debug_by_debuglink)
{
    ck_assert(built);
    // No build-id anywhere: the link's CRC is what ties the pair.
    ht_sym_t *s = ht_sym_create(pathf("%s/nonexistent-root", dir));
    int h = module_with_file_bid(s, pathf("%s/link/prognbid", dir));
    check_full_chain(s, h, V_NBID);
    ht_sym_destroy(s);
}
END_TEST

START_TEST(test_debuglink_wrong_crc_ignored)
{
    ck_assert(built);
    ht_sym_t *s = ht_sym_create(pathf("%s/nonexistent-root", dir));
    int h = module_with_file_bid(s, pathf("%s/badlink/prognbid", dir));
    ht_sym_line_t out[8];
    // The debug file there belongs to another program: it must not be
    // used. Without it, nothing names the (non-exported) functions.
    ck_assert_int_eq(ht_sym_resolve(s, h, vsites[V_NBID][0].vaddr, out, 8), 1);
    ck_assert_ptr_null(out[0].file);
    ck_assert_msg(strstr(out[0].function, "prognbid+0x") == out[0].function, "got %s",
                  out[0].function);
    ht_sym_destroy(s);
}
END_TEST

START_TEST(test_build_id_mismatch)
{
    ck_assert(built);
    ht_sym_t *s = ht_sym_create(NULL);
    const char *p = pathf("%s/prog5", dir);
    uint8_t wrong[20];
    for (int i = 0; i < 20; i++)
        wrong[i] = (uint8_t)(0xa0 + i);
    int h = ht_sym_module(s, p, wrong, sizeof wrong);
    ck_assert_int_ge(h, 0);
    for (int k = 0; k < 2; k++) {
        ht_sym_line_t out[8];
        uint64_t v = vsites[V_D5][k].vaddr;
        ck_assert_int_eq(ht_sym_resolve(s, h, v, out, 8), 1);
        char want[64];
        snprintf(want, sizeof want, "prog5+0x%llx", (unsigned long long)v);
        check_line(&out[0], want, NULL, 0);
    }
    ck_assert_int_eq(ht_sym_module_ok(s, h), 0);
    const char *w = ht_sym_module_warning(s, h);
    ck_assert_ptr_nonnull(w);
    ck_assert_ptr_nonnull(strstr(w, "build-id mismatch"));
    ck_assert_ptr_nonnull(strstr(w, "a0a1a2a3"));
    ck_assert_ptr_nonnull(strstr(w, p));
    ck_assert_ptr_eq(ht_sym_module_warning(s, h), w); // one warning, not one per call
    ht_sym_destroy(s);
}
END_TEST

START_TEST(test_missing_file)
{
    ht_sym_t *s = ht_sym_create(NULL);
    uint8_t bid[4] = {1, 2, 3, 4};
    int h = ht_sym_module(s, "/nonexistent/dir/libgone.so.3", bid, 4);
    ck_assert_int_ge(h, 0);
    ht_sym_line_t out[4];
    ck_assert_int_eq(ht_sym_resolve(s, h, 0x1234, out, 4), 1);
    check_line(&out[0], "libgone.so.3+0x1234", NULL, 0);
    ck_assert_int_eq(ht_sym_module_ok(s, h), 0);
    ck_assert_ptr_nonnull(strstr(ht_sym_module_warning(s, h), "libgone.so.3"));
    // A directory and a FIFO are not files to read (a FIFO would block).
    int hd = ht_sym_module(s, "/tmp", NULL, 0);
    ck_assert_int_eq(ht_sym_resolve(s, hd, 0x10, out, 4), 1);
    check_line(&out[0], "tmp+0x10", NULL, 0);
    ck_assert_ptr_nonnull(ht_sym_module_warning(s, hd));
    char fifo[64];
    snprintf(fifo, sizeof fifo, "/tmp/ht-sym-fifo-%d", (int)getpid());
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    int hf = ht_sym_module(s, fifo, NULL, 0);
    ck_assert_int_eq(ht_sym_resolve(s, hf, 0x10, out, 4), 1);
    ck_assert_int_eq(ht_sym_module_ok(s, hf), 0);
    unlink(fifo);
    ht_sym_destroy(s);
}
END_TEST

/* Resolve a spread of addresses in a module; all must give >= 1 line
 * with a non-NULL function. The point is not crashing. */
static void
poke_module(ht_sym_t *s, int h)
{
    ht_sym_line_t out[HT_SYM_MAX_LINES];
    for (int v = 0; v < NV; v++)
        for (int k = 0; k < 2; k++) {
            int n = ht_sym_resolve(s, h, vsites[v][k].vaddr, out, HT_SYM_MAX_LINES);
            ck_assert_int_ge(n, 1);
            for (int i = 0; i < n; i++)
                ck_assert_ptr_nonnull(out[i].function);
        }
    for (uint64_t a = 0; a < 0x3000; a += 0x3d) {
        int n = ht_sym_resolve(s, h, a, out, HT_SYM_MAX_LINES);
        ck_assert_int_ge(n, 1);
        ck_assert_ptr_nonnull(out[0].function);
    }
    (void)ht_sym_module_ok(s, h);
    (void)ht_sym_module_warning(s, h);
}

START_TEST(test_garbage_and_truncated)
{
    ck_assert(built);
    ht_sym_t *s = ht_sym_create(NULL);
    // Random bytes, and random bytes behind a valid ELF magic.
    srand(1234);
    unsigned char junk[8192];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (unsigned char)rand();
    const char *g = pathf("%s/garbage", dir);
    FILE *f = fopen(g, "wb");
    fwrite(junk, 1, sizeof junk, f);
    fclose(f);
    int h = ht_sym_module(s, g, NULL, 0);
    poke_module(s, h);
    ck_assert_int_eq(ht_sym_module_ok(s, h), 0);
    ck_assert_ptr_nonnull(ht_sym_module_warning(s, h));
    memcpy(junk, "\177ELF\2\1\1", 7);
    const char *g2 = pathf("%s/garbage-elf", dir);
    f = fopen(g2, "wb");
    fwrite(junk, 1, sizeof junk, f);
    fclose(f);
    poke_module(s, ht_sym_module(s, g2, NULL, 0));
    // Truncations of a real -g binary at many lengths.
    const char *full = pathf("%s/prog5", dir);
    struct stat st;
    ck_assert_int_eq(stat(full, &st), 0);
    FILE *in = fopen(full, "rb");
    unsigned char *data = malloc((size_t)st.st_size);
    ck_assert_uint_eq(fread(data, 1, (size_t)st.st_size, in), (size_t)st.st_size);
    fclose(in);
    size_t lens[] = {0,
                     4,
                     16,
                     63,
                     64,
                     65,
                     200,
                     1000,
                     4096,
                     (size_t)st.st_size / 3,
                     (size_t)st.st_size / 2,
                     (size_t)st.st_size - 100,
                     (size_t)st.st_size - 1};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        const char *t = pathf("%s/trunc%zu", dir, i);
        f = fopen(t, "wb");
        fwrite(data, 1, lens[i], f);
        fclose(f);
        poke_module(s, ht_sym_module(s, t, NULL, 0));
    }
    free(data);
    ht_sym_destroy(s);
}
END_TEST

/* Damaged DWARF and ELF: copies of a -g binary with random bytes
 * overwritten. Whatever libdwarf and libelf make of them, the symbolizer
 * must answer without crashing; Check's fork mode turns a crash into a
 * failure of this test. */
START_TEST(test_fuzzed_binaries)
{
    ck_assert(built);
    const char *full = pathf("%s/prog5", dir);
    struct stat st;
    ck_assert_int_eq(stat(full, &st), 0);
    size_t size = (size_t)st.st_size;
    FILE *in = fopen(full, "rb");
    unsigned char *orig = malloc(size), *data = malloc(size);
    ck_assert_uint_eq(fread(orig, 1, size, in), size);
    fclose(in);
    srand(42 + (unsigned)_i);
    for (int iter = 0; iter < 40; iter++) {
        memcpy(data, orig, size);
        int flips = 1 + rand() % 64;
        for (int k = 0; k < flips; k++) {
            size_t at = (size_t)rand() % size;
            // Mostly damage the back half, where .debug_* and the section
            // headers live; sometimes anywhere.
            if (rand() % 4)
                at = size / 2 + at / 2;
            data[at] = rand() % 3 ? (unsigned char)rand() : (unsigned char)(rand() % 2 ? 0 : 0xff);
        }
        const char *t = pathf("%s/fuzz-%d-%d", dir, _i, iter);
        FILE *f = fopen(t, "wb");
        fwrite(data, 1, size, f);
        fclose(f);
        ht_sym_t *s = ht_sym_create(pathf("%s/nonexistent-root", dir));
        poke_module(s, ht_sym_module(s, t, NULL, 0));
        ht_sym_destroy(s);
        unlink(t);
    }
    free(orig);
    free(data);
}
END_TEST

/* The C library this test runs on, found by name (under a sanitizer,
 * &malloc is the sanitizer's, not libc's). */
static int
find_libc_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    const char *n = info->dlpi_name;
    const char *b = n ? strrchr(n, '/') : NULL;
    if (b && strncmp(b + 1, "libc.so", 7) == 0) {
        snprintf(arg, 512, "%s", n);
        return 1;
    }
    return 0;
}

static const char *
libc_path(void)
{
    static char path[512];
    ck_assert_int_eq(dl_iterate_phdr(find_libc_cb, path), 1);
    return path;
}

/* ELF virtual address of function NAME in the file at PATH. */
static uint64_t
sym_vaddr(const char *path, const char *name)
{
    ht_elf_t *e;
    ck_assert_int_eq(ht_elf_open(path, &e), 0);
    uint64_t v = 0;
    ck_assert_msg(ht_elf_sym_find(e, name, &v) == 0, "%s not in %s", name, path);
    ht_elf_close(e);
    return v;
}

START_TEST(test_libc_malloc)
{
    const char *libc = libc_path();
    ht_sym_t *s = ht_sym_create(NULL);
    int h = module_with_file_bid(s, libc);
    ck_assert_int_eq(ht_sym_module_ok(s, h), 1);
    uint64_t v = sym_vaddr(libc, "malloc");
    ht_sym_line_t out[HT_SYM_MAX_LINES];
    for (int off = 0; off < 24; off += 8) { // the entry, and a bit inside
        int n = ht_sym_resolve(s, h, v + (uint64_t)off, out, HT_SYM_MAX_LINES);
        ck_assert_int_ge(n, 1);
        const char *fn = out[n - 1].function;
        ck_assert_msg(strcmp(fn, "malloc") == 0 || strcmp(fn, "__libc_malloc") == 0,
                      "malloc+%d resolved to %s", off, fn);
        ht_sym_stats_t st;
        ht_sym_stats_get(s, &st);
        if (st.cus_parsed) { // libc6-dbg installed: malloc.c and a line
            ck_assert_ptr_nonnull(out[n - 1].file);
            ck_assert_ptr_nonnull(strstr(out[n - 1].file, "malloc.c"));
            ck_assert_uint_gt(out[n - 1].line, 0);
        }
    }
    // And a few more well-known entry points.
    const char *names[] = {"free", "calloc", "realloc", "qsort"};
    for (int i = 0; i < 4; i++) {
        int n = ht_sym_resolve(s, h, sym_vaddr(libc, names[i]), out, 8);
        const char *fn = out[n - 1].function;
        ck_assert_msg(strstr(fn, names[i]) != NULL, "%s resolved to %s", names[i], fn);
    }
    ht_sym_destroy(s);
}
END_TEST

/* Kill our DWARF worker processes behind the symbolizer's back (they are
 * this test process's only children). Returns how many were killed, or -1
 * if /proc does not list children. */
static int
kill_workers(void)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%d/children", (int)getpid());
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    int n = 0, pid;
    while (fscanf(f, "%d", &pid) == 1)
        if (pid > 0 && kill(pid, SIGKILL) == 0)
            n++;
    fclose(f);
    return n;
}

START_TEST(test_worker_death)
{
    // Needs a module with many CUs: libc with its debug file installed.
    const char *libc = libc_path();
    ht_sym_t *s = ht_sym_create(NULL);
    int h = module_with_file_bid(s, libc);
    ht_sym_line_t out[HT_SYM_MAX_LINES];
    uint64_t vmalloc = sym_vaddr(libc, "malloc"), vqsort = sym_vaddr(libc, "qsort");
    uint64_t vprintf = sym_vaddr(libc, "printf");
    int n = ht_sym_resolve(s, h, vmalloc, out, HT_SYM_MAX_LINES);
    ht_sym_stats_t st;
    ht_sym_stats_get(s, &st);
    if (st.cus_parsed == 0 || !out[n - 1].file) { // no libc debug info here
        ht_sym_destroy(s);
        return;
    }
    int killed = kill_workers();
    if (killed < 0) {
        ht_sym_destroy(s);
        return;
    }
    ck_assert_int_eq(killed, 1);
    usleep(20000);
    // malloc's CU is already here; qsort's is not, and its worker is gone:
    // that CU loses file:line, the symbol table still names it.
    n = ht_sym_resolve(s, h, vmalloc + 4, out, HT_SYM_MAX_LINES);
    ck_assert_ptr_nonnull(out[n - 1].file);
    n = ht_sym_resolve(s, h, vqsort, out, HT_SYM_MAX_LINES);
    ck_assert_int_eq(n, 1);
    ck_assert_ptr_nonnull(strstr(out[0].function, "qsort"));
    ck_assert_ptr_null(out[0].file);
    // The next CU (printf.c) gets a fresh worker.
    n = ht_sym_resolve(s, h, vprintf, out, HT_SYM_MAX_LINES);
    ck_assert_ptr_nonnull(out[n - 1].file);
    ck_assert_ptr_nonnull(strstr(out[n - 1].file, "printf.c"));
    const char *w = ht_sym_module_warning(s, h);
    ck_assert_ptr_nonnull(w);
    ck_assert_ptr_nonnull(strstr(w, "damaged debug info"));
    ht_sym_destroy(s);
    ck_assert_int_eq(kill_workers(), 0); // destroy reaped every worker
}
END_TEST

/* Every address of libc's .text: no crash, nearly all named, and quick.
 * Prints the timing for the record. */
START_TEST(test_libc_sweep)
{
    const char *libc = libc_path();
    ht_sym_t *s = ht_sym_create(NULL);
    int h = module_with_file_bid(s, libc);
    uint64_t lo = sym_vaddr(libc, "malloc"), hi;
    lo = lo > 0x80000 ? lo - 0x80000 : 0;
    hi = lo + 0x100000;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    size_t n = 0, named = 0;
    ht_sym_line_t out[HT_SYM_MAX_LINES];
    for (uint64_t a = lo; a < hi; a += 16, n++) {
        int k = ht_sym_resolve(s, h, a, out, HT_SYM_MAX_LINES);
        ck_assert_int_ge(k, 1);
        named += strchr(out[k - 1].function, '+') == NULL;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double sec = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    fprintf(stderr, "test_symbols: %zu libc addresses in %.3f s (%.1f us each), %zu named\n", n,
            sec, sec * 1e6 / (double)n, named);
    ck_assert_uint_gt(named, n * 8 / 10);
    ht_sym_destroy(s);
}
END_TEST

Suite *
suite_symbols(void)
{
    Suite *su = suite_create("symbols");
    TCase *tc = tcase_create("symbols");
    tcase_add_unchecked_fixture(tc, fixture_build, fixture_clean);
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_inline_chain, 0, NV);
    tcase_add_test(tc, test_cache_and_truncation);
    tcase_add_test(tc, test_cxx_demangled);
    tcase_add_test(tc, test_stripped_dynsym);
    tcase_add_test(tc, test_debug_by_build_id);
    tcase_add_test(tc, test_debug_by_debuglink);
    tcase_add_test(tc, test_debuglink_wrong_crc_ignored);
    tcase_add_test(tc, test_build_id_mismatch);
    tcase_add_test(tc, test_missing_file);
    tcase_add_test(tc, test_garbage_and_truncated);
    tcase_add_loop_test(tc, test_fuzzed_binaries, 0, 4);
    tcase_add_test(tc, test_libc_malloc);
    tcase_add_test(tc, test_worker_death);
    tcase_add_test(tc, test_libc_sweep);
    suite_add_tcase(su, tc);
    return su;
}
