/* tests/unit/test_reader.c -- trace files made with ht_tfw_*, read back
 * through ht_an_profile_load: segments, gaps, snapshots, symbolization of
 * this very binary, bad files. */
#include "analyzer/analyze.h"
#include "analyzer/diff.h"
#include "analyzer/profile_build.h"
#include "analyzer/reader.h"
#include "analyzer/replay.h"
#include "formats/trace.h"
#include "tests/unit/v3enc.h"
#include "formats/tracefile.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Test times are written as if one tick were 1 us (1000000 + 10000 is
 * "10 ms after the start"); T() scales them to the segment tick so every
 * step stays a whole number of ticks whatever HT_TF_SEG_TICK_NS is. */
#define T(x) (1000000ull + ((uint64_t)(x) - 1000000ull) * (HT_TF_SEG_TICK_NS / 1000u))

#define ONE HT_TF_WEIGHT_ONE

static char dir[64], path[128];
static uint8_t raw[1 << 16];
static ht_tf_enc_t e;
static v3_t v; // pointer-based calls -> format 3 events

// Two functions of this binary whose names the symbolizer must find.
__attribute__((noinline)) void rd_test_site_alpha(void);
__attribute__((noinline)) void rd_test_site_beta(void);
__attribute__((noinline)) void
rd_test_site_alpha(void)
{
    __asm__ volatile("nop; nop; nop; nop; nop; nop; nop; nop");
}
__attribute__((noinline)) void
rd_test_site_beta(void)
{
    __asm__ volatile("nop; nop; nop; nop; nop; nop; nop; nop");
}

typedef struct self_mod_s {
    uint64_t bias;
    ht_tf_seg_t segs[HT_TF_MAX_SEGS];
    uint32_t nsegs;
} self_mod_t;

static int
self_cb(struct dl_phdr_info *info, size_t size, void *data)
{
    self_mod_t *m = data;
    m->bias = info->dlpi_addr;
    for (int i = 0; i < info->dlpi_phnum && m->nsegs < HT_TF_MAX_SEGS; i++)
        if (info->dlpi_phdr[i].p_type == PT_LOAD)
            m->segs[m->nsegs++] = (ht_tf_seg_t){info->dlpi_phdr[i].p_vaddr,
                                                info->dlpi_phdr[i].p_memsz,
                                                info->dlpi_phdr[i].p_flags};
    return 1; // the first object is the executable
}

static void
setup(void)
{
    strcpy(dir, "/tmp/ht-rdtest.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/t.htr", dir);
}

static void
teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static ht_tfw_t *
open_w(uint64_t rate)
{
    ht_file_info_t fi;
    memset(&fi, 0, sizeof fi);
    fi.version = HT_TF_VERSION;
    fi.flags = rate ? 0 : HT_TF_PROC_ALL;
    fi.pid = 100;
    fi.sample_rate = rate;
    fi.start_mono_ns = T(1000000);
    fi.start_realtime_ns = 1700000000000000000ull;
    strcpy(fi.exe, "/bin/test-prog");
    strcpy(fi.argv, "test-prog --x");
    ht_tfw_t *w = NULL;
    ck_assert_int_eq(ht_tfw_open(&w, path, &fi, 0), 0);
    v3_reset(&v, &e); // a new file: a new id space
    return w;
}

static void
put_seg(ht_tfw_t *w, uint64_t seq, uint64_t t0, uint64_t t1)
{
    ck_assert_int_eq(ht_tfw_put_segment(w, seq, t0, t1, raw, (size_t)(e.p - raw)), 0);
}

// Keyframe with this binary as a module and stacks 1 (alpha <- beta) and
// 2 (beta).
static void
kf_begin(uint64_t ts, uint64_t seq, uint64_t snapshot)
{
    self_mod_t m = {0};
    dl_iterate_phdr(self_cb, &m);
    char exe[512];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    ck_assert_int_gt(n, 0);
    ck_assert_int_eq(v3_keyframe(&v, raw, sizeof raw, ts, seq, snapshot,
                                 snapshot ? HT_TF_SNAP_API : 0), 0);
    ck_assert_int_eq(ht_tf_put_module(&e, ts, 1, m.bias, exe, (uint32_t)n, NULL, 0, m.segs,
                                      m.nsegs), 0);
    // Return addresses a few bytes into the functions: ip - 1 is inside.
    uint64_t a = (uint64_t)(uintptr_t)&rd_test_site_alpha + 4;
    uint64_t b = (uint64_t)(uintptr_t)&rd_test_site_beta + 4;
    uint64_t s1[] = {a, b}, s2[] = {b};
    ck_assert_int_eq(ht_tf_put_stack(&e, 1, s1, 2), 0);
    ck_assert_int_eq(ht_tf_put_stack(&e, 2, s2, 1), 0);
}

static const ht_pstack_t *
stack_named(const ht_profile_t *p, const char *fn)
{
    for (uint32_t i = 0; i < p->nstacks; i++) {
        const ht_pstack_t *s = &p->stacks[i];
        if (!s->nlocs)
            continue;
        const ht_location_t *l = &p->locs[s->locs[0]];
        if (l->nlines && !strcmp(l->lines[l->nlines - 1].function, fn))
            return s;
    }
    return NULL;
}

static ht_profile_t *
load(const char *spec, int symbolize)
{
    ht_an_opts_t o;
    ht_an_opts_default(&o);
    o.symbolize = symbolize;
    ht_profile_t *p = NULL;
    char err[256] = "";
    int rc = ht_an_profile_load(spec, &o, &p, err, sizeof err);
    ck_assert_msg(rc == 0, "load %s: %s", spec, err);
    return p;
}

// Segment 0: allocations; segment 1: snapshot 0 keyframe + more; exit.
static void
write_two_segments(void)
{
    ht_tfw_t *w = open_w(0);
    kf_begin(T(1000000), 0, 0);
    ht_tf_put_keyframe_end(&e, 0);
    v3_thread(&v, 100);
    ht_tf_put_thread(&e, T(1000000), 100, "main", 4);
    v3_alloc(&v, T(1010000), 0x1000, 100, 1, ONE);
    v3_alloc(&v, T(1020000), 0x2000, 200, 2, ONE);
    v3_alloc(&v, T(1030000), 0x3000, 300, 9, ONE); // stack 9: never defined
    v3_free(&v, T(1040000), 0x2000);
    put_seg(w, 0, 1000, 1040);

    kf_begin(T(2000000), 1, 1);
    v3_live(&v, 0x1000, 100, 1, ONE, 100, 0);
    v3_live(&v, 0x3000, 300, 9, ONE, 100, 0);
    ht_tf_put_totals(&e, T(1040000), 100, 3, 600, 1, 200);
    ht_tf_put_keyframe_end(&e, 2);
    v3_thread(&v, 100);
    v3_alloc(&v, T(2010000), 0x4000, 1000, 2, ONE);
    ht_tf_put_totals(&e, T(2020000), 100, 1004, 10600, 1, 200); // includes unsampled... all
    ht_tf_put_exit(&e, T(2030000), HT_TF_EXIT_STATUS, 7);
    put_seg(w, 1, 2000, 2030);
    ck_assert_int_eq(ht_tfw_close(w), 0);
}

START_TEST(test_whole_trace_profile)
{
    write_two_segments();
    ht_profile_t *p = load(path, 1);
    ck_assert(!p->sampled);
    ck_assert(p->exited);
    ck_assert_int_eq(p->exit_code, 7);
    ck_assert_uint_eq(p->pid, 100);
    ck_assert_str_eq(p->exe, "/bin/test-prog");
    ck_assert_uint_eq(p->exact_allocs, 1004);
    ck_assert_uint_eq(p->exact_alloc_bytes, 10600);
    ck_assert(p->v[HT_M_ALLOC_SPACE] == 1600);
    ck_assert(p->v[HT_M_LEAKED_SPACE] == 1400);
    ck_assert(p->v[HT_M_LEAKED_OBJECTS] == 3);
    ck_assert(p->peak_bytes == 1400);
    ck_assert_uint_eq(p->peak_ns, T(2010000) - T(1000000));
    ck_assert_uint_eq(p->start_ns, T(1000000));
    ck_assert_uint_eq(p->end_ns, T(2030000));
    ck_assert_int_eq(p->snapshot, -1);
    ck_assert_uint_eq(p->nsnapshots, 1);
    ck_assert_uint_eq(p->segs_lost, 0);
    // Symbolized with this binary's own symbol table; the call site
    // address is kept as the return address.
    const ht_pstack_t *a = stack_named(p, "rd_test_site_alpha");
    const ht_pstack_t *b = stack_named(p, "rd_test_site_beta");
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    ck_assert_uint_eq(a->nlocs, 2);
    ck_assert_uint_eq(p->locs[a->locs[0]].address, (uint64_t)(uintptr_t)&rd_test_site_alpha + 4);
    ck_assert_uint_ne(p->locs[a->locs[0]].mapping, 0);
    ck_assert(a->v[HT_M_LEAKED_SPACE] == 100);
    ck_assert(b->v[HT_M_LEAKED_SPACE] == 1000);
    ck_assert(b->v[HT_M_ALLOC_SPACE] == 1200);
    const ht_pstack_t *u = stack_named(p, "[unknown stack]");
    ck_assert_ptr_nonnull(u);
    ck_assert(u->v[HT_M_LEAKED_SPACE] == 300);
    ck_assert_uint_eq(p->nthreads, 1);
    ck_assert_str_eq(p->threads[0].name, "main");
    ht_prof_destroy(p);

    // Without symbols: "module+0xoffset".
    p = load(path, 0);
    const ht_location_t *l = &p->locs[p->stacks[0].locs[0]];
    ck_assert_ptr_nonnull(strstr(l->lines[0].function, "+0x"));
    ht_prof_destroy(p);
}
END_TEST

START_TEST(test_snapshot_spec)
{
    write_two_segments();
    char spec[160];
    snprintf(spec, sizeof spec, "%s@0", path);
    ht_profile_t *p = load(spec, 0);
    ck_assert_int_eq(p->snapshot, 0);
    ck_assert(p->v[HT_M_INUSE_SPACE] == 400);
    ck_assert(p->v[HT_M_ALLOC_SPACE] == 600);
    ck_assert(!p->exited);
    ck_assert_uint_eq(p->end_ns, T(2000000));
    ht_prof_destroy(p);

    snprintf(spec, sizeof spec, "%s@3", path);
    ht_an_opts_t o;
    ht_an_opts_default(&o);
    char err[256] = "";
    ck_assert_int_eq(ht_an_profile_load(spec, &o, &p, err, sizeof err), -ENOENT);
    ck_assert_ptr_nonnull(strstr(err, "no snapshot 3"));
}
END_TEST

START_TEST(test_gap_reseeds_from_keyframe)
{
    ht_tfw_t *w = open_w(0);
    kf_begin(T(1000000), 0, 0);
    ht_tf_put_keyframe_end(&e, 0);
    v3_thread(&v, 100);
    v3_alloc(&v, T(1010000), 0x1000, 100, 1, ONE);
    put_seg(w, 0, 1000, 1010);
    // Segment 1 is never written (lost); segment 2 knows the truth.
    kf_begin(3000000, 2, 0);
    v3_live(&v, 0x5000, 500, 2, ONE, 100, 0);
    ht_tf_put_keyframe_end(&e, 1);
    v3_thread(&v, 100);
    v3_free(&v, 3010000, 0x5000);
    put_seg(w, 2, 3000, 3010);
    ck_assert_int_eq(ht_tfw_close(w), 0);
    ht_profile_t *p = load(path, 0);
    ck_assert(p->v[HT_M_INUSE_SPACE] == 0);
    ck_assert_uint_eq(p->segs_lost, 1);
    ck_assert_uint_eq(p->unknown_frees, 0);
    ck_assert(p->peak_bytes == 500);
    ht_prof_destroy(p);
}
END_TEST

START_TEST(test_bad_files)
{
    ht_an_opts_t o;
    ht_an_opts_default(&o);
    ht_profile_t *p = NULL;
    char err[256] = "";
    ck_assert_int_eq(ht_an_profile_load(path, &o, &p, err, sizeof err), -ENOENT);
    ck_assert_ptr_nonnull(strstr(err, path));
    FILE *f = fopen(path, "w");
    fclose(f);
    err[0] = '\0';
    ck_assert_int_lt(ht_an_profile_load(path, &o, &p, err, sizeof err), 0);
    ck_assert_int_gt((int)strlen(err), 0);
    f = fopen(path, "w");
    for (int i = 0; i < 5000; i++)
        fputc(i * 7919 % 251, f);
    fclose(f);
    err[0] = '\0';
    ck_assert_int_lt(ht_an_profile_load(path, &o, &p, err, sizeof err), 0);
    ck_assert_int_gt((int)strlen(err), 0);
}
END_TEST

START_TEST(test_diff_self_and_growth)
{
    write_two_segments();
    char spec[160];
    snprintf(spec, sizeof spec, "%s@0", path);
    ht_profile_t *s0 = load(spec, 1), *all = load(path, 1), *d = NULL;
    // A spec against itself: nothing.
    ck_assert_int_eq(ht_diff_profile(all, all, &d), 0);
    ck_assert_uint_eq(d->nstacks, 0);
    ht_prof_destroy(d);
    // Snapshot 0 -> end: beta's stack grew by 1000 bytes, matched across
    // the two profiles by its symbolized frames.
    ck_assert_int_eq(ht_diff_profile(s0, all, &d), 0);
    const ht_pstack_t *b = stack_named(d, "rd_test_site_beta");
    ck_assert_ptr_nonnull(b);
    ck_assert(b->v[HT_M_INUSE_SPACE] == 1000);
    ck_assert(b->v[HT_M_INUSE_OBJECTS] == 1);
    const ht_pstack_t *a = stack_named(d, "rd_test_site_alpha");
    if (a) // only leaked/alloc figures may differ there, never inuse
        ck_assert(a->v[HT_M_INUSE_SPACE] == 0);
    ht_prof_destroy(d);
    // And back: negative values.
    ck_assert_int_eq(ht_diff_profile(all, s0, &d), 0);
    b = stack_named(d, "rd_test_site_beta");
    ck_assert_ptr_nonnull(b);
    ck_assert(b->v[HT_M_INUSE_SPACE] == -1000);
    ht_prof_destroy(d);
    ht_prof_destroy(s0);
    ht_prof_destroy(all);
}
END_TEST

START_TEST(test_diff_matches_by_frames_not_addresses)
{
    // Two hand-made profiles: the same function/file/line at different
    // addresses (two runs under ASLR) must match.
    ht_profile_t *p[2];
    for (int k = 0; k < 2; k++) {
        ht_pb_t *b = ht_pb_create();
        ht_line_t ln[2] = {{"inner", "x.c", 10}, {"outer", "x.c", 20}};
        uint32_t l0, l1, s;
        ck_assert_int_eq(ht_pb_loc(b, 0x1000 + k * 0x100000, 0, ln, 2, &l0), 0);
        ck_assert_int_eq(ht_pb_loc(b, 0x2000 + k * 0x100000, 0, &ln[1], 1, &l1), 0);
        uint32_t locs[] = {l0, l1};
        ck_assert_int_eq(ht_pb_stack(b, locs, 2, 0, &s), 0);
        ht_pb_stack_v(b, s)[HT_M_INUSE_SPACE] = k ? 300 : 100;
        ck_assert_int_eq(ht_pb_finish(b, 1, &p[k]), 0);
    }
    ht_profile_t *d = NULL;
    ck_assert_int_eq(ht_diff_profile(p[0], p[1], &d), 0);
    ck_assert_uint_eq(d->nstacks, 1);
    ck_assert(d->stacks[0].v[HT_M_INUSE_SPACE] == 200);
    ck_assert_uint_eq(d->locs[d->stacks[0].locs[0]].address, 0x101000);
    ht_prof_destroy(d);
    ht_prof_destroy(p[0]);
    ht_prof_destroy(p[1]);
}
END_TEST

/* Segment payloads that once failed fuzz_segment (tests/fuzz/seg-corpus,
 * with its seeds): replayed as a first segment and after a gap, they must
 * come back with 0 or -EBADMSG/-ENOMEM, never a crash (the sanitizer
 * build, make asan, checks the memory errors). */
START_TEST(test_segment_corpus)
{
    DIR *sdir = opendir("tests/fuzz/seg-corpus");
    if (!sdir)
        return; // not run from the source tree
    int n = 0;
    struct dirent *de;
    static uint8_t data[1 << 20];
    while ((de = readdir(sdir))) {
        if (de->d_name[0] == '.')
            continue;
        char fpath[512];
        snprintf(fpath, sizeof fpath, "tests/fuzz/seg-corpus/%s", de->d_name);
        FILE *f = fopen(fpath, "rb");
        ck_assert_ptr_nonnull(f);
        size_t len = fread(data, 1, sizeof data, f);
        fclose(f);
        ht_rp_t *rp = ht_rp_create(100, 1);
        ck_assert_ptr_nonnull(rp);
        bool stopped = false;
        size_t bad = 0;
        int rc = ht_rd_segment(rp, data, len, 0, 100, true, -1, &stopped, &bad, NULL);
        ck_assert_msg(rc == 0 || rc == -EBADMSG || rc == -ENOMEM, "%s: %d", fpath, rc);
        rc = ht_rd_segment(rp, data, len, 2, 100, true, 0, &stopped, &bad, NULL);
        ck_assert_msg(rc == 0 || rc == -EBADMSG || rc == -ENOMEM, "%s: %d", fpath, rc);
        ht_rp_finish(rp);
        ht_rp_destroy(rp);
        n++;
    }
    closedir(sdir);
    ck_assert_int_gt(n, 0);
}
END_TEST

Suite *
suite_reader(void)
{
    Suite *s = suite_create("reader");
    TCase *tc = tcase_create("reader");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_whole_trace_profile);
    tcase_add_test(tc, test_snapshot_spec);
    tcase_add_test(tc, test_gap_reseeds_from_keyframe);
    tcase_add_test(tc, test_bad_files);
    tcase_add_test(tc, test_segment_corpus);
    tcase_add_test(tc, test_diff_self_and_growth);
    tcase_add_test(tc, test_diff_matches_by_frames_not_addresses);
    suite_add_tcase(s, tc);
    return s;
}
