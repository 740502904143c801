/* tests/unit/test_replay.c -- replay on hand-encoded record streams. */
#include "analyzer/reader.h"
#include "analyzer/replay.h"
#include "tests/unit/v3enc.h"

#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Test times are written as if one tick were 1 us (1000000 + 10000 is
 * "10 ms after the start"); T() scales them to the segment tick so every
 * step stays a whole number of ticks whatever HT_TF_SEG_TICK_NS is. */
#define T(x) (1000000ull + ((uint64_t)(x) - 1000000ull) * (HT_TF_SEG_TICK_NS / 1000u))

#define ONE HT_TF_WEIGHT_ONE

static uint8_t buf[1 << 16];
static ht_tf_enc_t e;
static v3_t v; // pointer-based calls -> format 3 events
static ht_rp_t *rp;

static const uint64_t fr1[] = {0x401010, 0x402020};
static const uint64_t fr2[] = {0x401030, 0x402020};

// A segment's keyframe (empty live set) defining stacks 1 and 2.
static void
seg_begin(uint64_t ts, uint64_t seq, uint64_t snapshot)
{
    ck_assert_int_eq(v3_keyframe(&v, buf, sizeof buf, ts, seq, snapshot, snapshot ? 1 : 0), 0);
    ck_assert_int_eq(ht_tf_put_stack(&e, 1, fr1, 2), 0);
    ck_assert_int_eq(ht_tf_put_stack(&e, 2, fr2, 2), 0);
}

static void
kf_end(void)
{
    ck_assert_int_eq(ht_tf_put_keyframe_end(&e, 0), 0);
}

static int
seg_run(uint64_t seq, bool reseed, int64_t stop, bool *stopped)
{
    bool st = false;
    size_t bad = 0;
    int rc = ht_rd_segment(rp, buf, (size_t)(e.p - buf), seq, 100, reseed, stop, &st, &bad, NULL);
    if (stopped)
        *stopped = st;
    return rc;
}

static void
setup(void)
{
    rp = ht_rp_create(100, 0);
    ck_assert_ptr_nonnull(rp);
    v3_reset(&v, &e);
}

static void
teardown(void)
{
    ht_rp_destroy(rp);
}

static const ht_rp_site_t *
site_of(uint64_t stack)
{
    ht_rp_sync(rp); // site figures are sums made on demand
    const ht_rp_site_t *found = NULL;
    for (uint32_t i = 0; i < rp->nsites; i++)
        if (rp->sites[i].stack == stack) {
            ck_assert_ptr_null(found); // one epoch, one thread mode: one site a stack
            found = &rp->sites[i];
        }
    ck_assert_ptr_nonnull(found);
    return found;
}

static uint64_t
peak_b(const ht_rp_site_t *s)
{
    ht_rp_sync(rp);
    uint64_t o, b;
    ht_rp_cell_peak(rp, &s->c, &o, &b);
    return b;
}

START_TEST(test_exact_counts)
{
    seg_begin(T(1000000), 0, 0);
    kf_end();
    v3_thread(&v, 7);
    v3_alloc(&v, T(1010000), 0x1000, 10, 1, ONE);
    v3_alloc(&v, T(1020000), 0x2000, 20, 1, ONE);
    v3_alloc(&v, T(1030000), 0x3000, 40, 2, ONE);
    v3_alloc(&v, T(1040000), 0x4000, 80, 1, ONE);
    v3_free(&v, T(1050000), 0x2000);
    ht_tf_put_totals(&e, T(1060000), 7, 123, 4567, 89, 1011);
    ck_assert_int_eq(seg_run(0, true, -1, NULL), 0);
    ht_rp_finish(rp);
    const ht_rp_site_t *s1 = site_of(1), *s2 = site_of(2);
    ck_assert_uint_eq(s1->c.alloc_o, 3 * ONE);
    ck_assert_uint_eq(s1->c.alloc_b, 110);
    ck_assert_uint_eq(s1->c.live_o, 2 * ONE);
    ck_assert_uint_eq(s1->c.live_b, 90);
    ck_assert_uint_eq(s2->c.live_b, 40);
    // No EXIT: leaked is what is live at the end.
    ck_assert(!rp->exited);
    ck_assert_uint_eq(s1->c.leak_b, 90);
    ck_assert_uint_eq(rp->total_b, 130);
    ck_assert_uint_eq(rp->peak_b, 150);
    ck_assert_uint_eq(rp->peak_ts, T(1040000));
    ck_assert_uint_eq(rp->nthreads, 1);
    ck_assert_uint_eq(rp->threads[0].alloc_bytes, 4567);
    ck_assert_uint_eq(rp->threads[0].allocs, 123);
    ck_assert_uint_eq(rp->threads[0].c.alloc_b, 150);
    ck_assert_uint_eq(rp->n.unknown_frees, 0);
}
END_TEST

START_TEST(test_sampled_weights_free_exactly)
{
    seg_begin(T(1000000), 0, 0);
    kf_end();
    v3_thread(&v, 7);
    // 3 bytes standing for 1.5 objects = 4.5 bytes: rounds to 5 once, and
    // the free takes exactly those 5 back.
    v3_alloc(&v, T(1010000), 0x1000, 3, 1, 3 * ONE / 2);
    v3_alloc(&v, T(1020000), 0x2000, 1000, 1, 7 * ONE / 3);
    ck_assert_int_eq(seg_run(0, true, -1, NULL), 0);
    const ht_rp_site_t *s = site_of(1);
    ck_assert_uint_eq(s->c.alloc_o, 3 * ONE / 2 + 7 * ONE / 3);
    ck_assert_uint_eq(s->c.live_b, 5 + 2333);
    seg_begin(T(2000000), 1, 0);
    kf_end();
    v3_thread(&v, 7);
    v3_free(&v, T(2010000), 0x2000);
    v3_free(&v, T(2020000), 0x1000);
    ck_assert_int_eq(seg_run(1, false, -1, NULL), 0);
    s = site_of(1);
    ck_assert_uint_eq(s->c.live_b, 0);
    ck_assert_uint_eq(s->c.live_o, 0);
    ck_assert_uint_eq(rp->total_b, 0);
}
END_TEST

START_TEST(test_realloc_chain)
{
    seg_begin(T(1000000), 0, 0);
    kf_end();
    v3_thread(&v, 7);
    // malloc(10), then realloc to 20 and 30: each realloc is free(old) +
    // alloc(new) in the same thread.
    v3_alloc(&v, T(1010000), 0x1000, 10, 1, ONE);
    v3_free(&v, T(1020000), 0x1000);
    v3_alloc(&v, T(1020000), 0x2000, 20, 1, ONE);
    v3_free(&v, T(1030000), 0x2000);
    v3_alloc(&v, T(1030000), 0x1000, 30, 1, ONE);
    ck_assert_int_eq(seg_run(0, true, -1, NULL), 0);
    const ht_rp_site_t *s = site_of(1);
    ck_assert_uint_eq(s->c.alloc_o, 3 * ONE);
    ck_assert_uint_eq(s->c.alloc_b, 60);
    ck_assert_uint_eq(s->c.live_b, 30);
    ck_assert_uint_eq(s->c.live_o, ONE);
    // Each old block was freed right after it was made: heaptrack counts
    // the steps of a realloc chain as temporaries.
    ck_assert_uint_eq(s->c.temp_o, 2 * ONE);
    ck_assert_uint_eq(s->c.temp_b, 30);
    ck_assert_uint_eq(rp->peak_b, 30);
    ck_assert_uint_eq(rp->n.bad_sites, 0);
}
END_TEST

START_TEST(test_temporary_definition)
{
    seg_begin(T(1000000), 0, 0);
    kf_end();
    v3_thread(&v, 7);
    v3_alloc(&v, T(1010000), 0xa0, 1, 1, ONE);  // A
    v3_alloc(&v, T(1020000), 0xb0, 2, 1, ONE);  // B
    v3_free(&v, T(1030000), 0xa0);              // A: B came between: not temporary
    v3_free(&v, T(1040000), 0xb0);              // B: a free came between: not temporary
    v3_alloc(&v, T(1050000), 0xc0, 4, 2, ONE);  // C
    v3_free(&v, T(1060000), 0xc0);              // C: temporary
    v3_alloc(&v, T(1070000), 0xd0, 8, 2, ONE);  // D in thread 7
    // E in thread 8, interleaved in time: another thread's allocation does
    // not break thread 7's D -> free(D) pair.
    v3_free(&v, T(1090000), 0xd0);              // D: temporary
    v3_thread(&v, 8);
    v3_alloc(&v, T(1080000), 0xe0, 16, 1, ONE); // E
    ck_assert_int_eq(seg_run(0, true, -1, NULL), 0);
    const ht_rp_site_t *s1 = site_of(1), *s2 = site_of(2);
    ck_assert_uint_eq(s1->c.temp_o, 0);
    ck_assert_uint_eq(s2->c.temp_o, 2 * ONE);
    ck_assert_uint_eq(s2->c.temp_b, 12);
    ck_assert_uint_eq(s1->c.live_b, 16);
}
END_TEST

START_TEST(test_peak_falls_back)
{
    seg_begin(T(1000000), 0, 0);
    kf_end();
    v3_thread(&v, 7);
    v3_alloc(&v, T(1010000), 0x1000, 100, 1, ONE); // 100
    v3_alloc(&v, T(1020000), 0x2000, 50, 2, ONE);  // 150: the peak
    v3_free(&v, T(1030000), 0x1000);               // 50
    v3_alloc(&v, T(1040000), 0x3000, 60, 2, ONE);  // 110
    v3_alloc(&v, T(1050000), 0x4000, 30, 1, ONE);  // 140: below the peak
    ck_assert_int_eq(seg_run(0, true, -1, NULL), 0);
    const ht_rp_site_t *s1 = site_of(1), *s2 = site_of(2);
    ck_assert_uint_eq(rp->peak_b, 150);
    ck_assert_uint_eq(rp->peak_ts, T(1020000));
    ck_assert_uint_eq(peak_b(s1), 100);
    ck_assert_uint_eq(peak_b(s2), 50);
    ck_assert_uint_eq(s1->c.live_b, 30);
    ck_assert_uint_eq(s2->c.live_b, 110);
    // A new, higher peak moves every site's figure.
    seg_begin(T(2000000), 1, 0);
    kf_end();
    v3_thread(&v, 7);
    v3_alloc(&v, T(2010000), 0x5000, 20, 1, ONE); // 160
    ck_assert_int_eq(seg_run(1, false, -1, NULL), 0);
    ck_assert_uint_eq(rp->peak_b, 160);
    ck_assert_uint_eq(peak_b(s1), 50);
    ck_assert_uint_eq(peak_b(s2), 110);
}
END_TEST

START_TEST(test_bad_sites_unknown_free_unknown_stack)
{
    seg_begin(T(1000000), 0, 0);
    ck_assert_int_eq(ht_tf_put_live(&e, 99, 1), 0); // a site never defined
    ck_assert_int_eq(ht_tf_put_site(&e, 5, 10, 1, ONE, 7, 0), 0);
    ck_assert_int_eq(ht_tf_put_live(&e, 5, 1), 0); // one block of 10 at stack 1
    ck_assert_int_eq(ht_tf_put_keyframe_end(&e, 2), 0);
    v3_thread(&v, 7);
    // Hostile: site 5 defined again with other figures. Its live block is
    // dropped first, so the heap stays consistent.
    ck_assert_int_eq(ht_tf_put_site(&e, 5, 20, 2, ONE, 7, 0), 0);
    ck_assert_int_eq(ht_tf_put_ev_alloc(&e, 5), 0); // 20 at stack 2
    v3_free(&v, T(1030000), 0x9999);                // never allocated: site 0
    ck_assert_int_eq(ht_tf_put_ev_free(&e, 5, 0), 0);
    ck_assert_int_eq(ht_tf_put_ev_free(&e, 5, 0), 0); // no block of site 5 is live
    ck_assert_int_eq(ht_tf_put_ev_alloc(&e, 5), 0);
    ck_assert_int_eq(ht_tf_put_ev_alloc(&e, 1234), 0); // never defined
    ck_assert_int_eq(ht_tf_put_site(&e, 1ull << 40, 1, 1, ONE, 7, 0), 0); // id out of range
    v3_alloc(&v, T(1040000), 0x2000, 5, 77, ONE);     // stack 77 is never defined
    ck_assert_int_eq(seg_run(0, true, -1, NULL), 0);
    ht_rp_finish(rp);
    ck_assert_uint_eq(rp->n.bad_sites, 4);
    ck_assert_uint_eq(rp->n.unknown_frees, 2);
    ck_assert_uint_eq(site_of(1)->c.live_b, 0);
    ck_assert_uint_eq(site_of(1)->c.alloc_b, 0); // a LIVE is not an allocation event
    ck_assert_uint_eq(site_of(2)->c.live_b, 20);
    ck_assert_uint_eq(site_of(2)->c.alloc_b, 40);
    ck_assert_uint_eq(site_of(77)->c.live_b, 5);
    const uint64_t *f;
    uint32_t n;
    ck_assert(!ht_rp_stack_frames(rp, site_of(77)->proc, 77, &f, &n));
    ck_assert(ht_rp_stack_frames(rp, site_of(1)->proc, 1, &f, &n));
    ck_assert_uint_eq(n, 2);
    ck_assert_uint_eq(f[0], fr1[0]);
    ck_assert_uint_eq(rp->total_b, 25);
}
END_TEST

START_TEST(test_stack_ref_shares_callers)
{
    seg_begin(T(1000000), 0, 0); // stacks 1 = fr1, 2 = fr2 (2 frames each)
    const uint64_t leaf[] = {0x405050, 0x406060};
    // 3 = two frames of its own, then the last frame of stack 1.
    ck_assert_int_eq(ht_tf_put_stack_ref(&e, 3, 1, 1, leaf, 2), 0);
    // 4 = stack 3's root side entire (a caller of a stack we hold).
    ck_assert_int_eq(ht_tf_put_stack_ref(&e, 4, 3, 2, leaf, 0), 0);
    // Damaged: base never defined, and keep longer than the base.
    ck_assert_int_eq(ht_tf_put_stack_ref(&e, 5, 99, 1, leaf, 1), 0);
    ck_assert_int_eq(ht_tf_put_stack_ref(&e, 6, 1, 3, leaf, 1), 0);
    kf_end();
    ck_assert_int_eq(seg_run(0, true, -1, NULL), 0);
    uint32_t proc = ht_rp_proc(rp, 100);
    const uint64_t *f;
    uint32_t n;
    ck_assert(ht_rp_stack_frames(rp, proc, 3, &f, &n));
    ck_assert_uint_eq(n, 3);
    ck_assert_uint_eq(f[0], leaf[0]);
    ck_assert_uint_eq(f[1], leaf[1]);
    ck_assert_uint_eq(f[2], fr1[1]);
    ck_assert(ht_rp_stack_frames(rp, proc, 4, &f, &n));
    ck_assert_uint_eq(n, 2);
    ck_assert_uint_eq(f[0], leaf[1]);
    ck_assert_uint_eq(f[1], fr1[1]);
    ck_assert(!ht_rp_stack_frames(rp, proc, 5, &f, &n));
    ck_assert(!ht_rp_stack_frames(rp, proc, 6, &f, &n));
}
END_TEST

START_TEST(test_threads_merged_by_time)
{
    // The collector merged the threads: EV_THREAD switches whose events
    // follow, and a free names its block whichever thread frees it.
    seg_begin(T(1000000), 0, 0);
    kf_end();
    v3_thread(&v, 7);
    v3_alloc(&v, T(1010000), 0x1000, 10, 1, ONE);
    v3_thread(&v, 8);
    v3_free(&v, T(1020000), 0x1000);
    v3_alloc(&v, T(1030000), 0x1000, 3, 1, ONE); // the address again, another block
    v3_thread(&v, 7);
    v3_alloc(&v, T(1035000), 0x2000, 7, 2, ONE);
    ck_assert_int_eq(seg_run(0, true, -1, NULL), 0);
    ck_assert_uint_eq(rp->n.unknown_frees, 0);
    ck_assert_uint_eq(rp->n.bad_sites, 0);
    ck_assert_uint_eq(site_of(1)->c.live_b, 3);
    ck_assert_uint_eq(rp->peak_b, 10);
    ck_assert_uint_eq(rp->peak_ts, T(1010000));
    ck_assert_uint_eq(rp->nthreads, 2);
    for (uint32_t t = 0; t < rp->nthreads; t++)
        ck_assert_uint_eq(rp->threads[t].c.live_b, rp->threads[t].tid == 7 ? 7 : 3);
}
END_TEST

START_TEST(test_stack_defined_in_later_batch)
{
    // Thread 8 uses stack 5 that thread 7 interned; thread 7's batch with
    // the STACK record reached the file later.
    seg_begin(1000, 0, 0);
    kf_end();
    v3_thread(&v, 8);
    v3_alloc(&v, 20000, 0x1000, 10, 5, ONE);
    v3_thread(&v, 7);
    uint64_t fr[] = {0x1234};
    ht_tf_put_stack(&e, 5, fr, 1);
    v3_alloc(&v, 30000, 0x2000, 10, 5, ONE);
    ck_assert_int_eq(seg_run(0, true, -1, NULL), 0);
    const uint64_t *f;
    uint32_t n;
    ck_assert(ht_rp_stack_frames(rp, site_of(5)->proc, 5, &f, &n));
    ck_assert_uint_eq(f[0], 0x1234);
}
END_TEST

START_TEST(test_keyframe_reseed_after_gap)
{
    seg_begin(T(1000000), 0, 0);
    kf_end();
    v3_thread(&v, 7);
    v3_alloc(&v, T(1010000), 0x1000, 10, 1, ONE);
    v3_alloc(&v, T(1020000), 0x2000, 20, 1, ONE);
    ck_assert_int_eq(seg_run(0, true, -1, NULL), 0);
    // Segment 1 was lost: it freed 0x1000 and made 0x5000 (stack 2).
    // Segment 2's keyframe says what is live.
    seg_begin(3000000, 2, 0);
    v3_live(&v, 0x2000, 20, 1, ONE, 7, 0);
    v3_live(&v, 0x5000, 50, 2, ONE, 7, 0);
    ht_tf_put_keyframe_end(&e, 2);
    v3_thread(&v, 7);
    v3_free(&v, 3010000, 0x5000);
    ck_assert_int_eq(seg_run(2, true, -1, NULL), 0);
    ck_assert_uint_eq(rp->n.unknown_frees, 0);
    ck_assert_uint_eq(site_of(1)->c.live_b, 20);
    ck_assert_uint_eq(site_of(2)->c.live_b, 0);
    ck_assert_uint_eq(rp->total_b, 20);
    ck_assert_uint_eq(rp->peak_b, 70);
    // Restored allocations are live, not allocations of this window.
    ck_assert_uint_eq(site_of(1)->c.alloc_b, 30);
    ck_assert_uint_eq(site_of(2)->c.alloc_b, 0);
    // Without a gap the same keyframe is only restating: nothing changes.
    seg_begin(4000000, 3, 0);
    v3_live(&v, 0x7777, 1000, 2, ONE, 7, 0);
    ht_tf_put_keyframe_end(&e, 1);
    ck_assert_int_eq(seg_run(3, false, -1, NULL), 0);
    ck_assert_uint_eq(rp->total_b, 20);
}
END_TEST

static void
snap_seg0(void)
{
    seg_begin(T(1000000), 0, 0);
    kf_end();
    v3_thread(&v, 7);
    v3_alloc(&v, T(1010000), 0x1000, 10, 1, ONE);
    ht_tf_put_memstat(&e, T(1015000), 4096000, 0, 0, 0, 0, 123, 0);
}

static void
snap_seg1(void)
{
    seg_begin(T(2000000), 1, 1); // snapshot 0
    v3_live(&v, 0x1000, 10, 1, ONE, 7, 0);
    ht_tf_put_keyframe_end(&e, 1);
    v3_thread(&v, 7);
    v3_alloc(&v, T(2010000), 0x2000, 20, 1, ONE);
    ht_tf_put_exit(&e, T(2020000), HT_TF_EXIT_STATUS, 3);
    v3_free(&v, T(2030000), 0x1000); // after the exit: does not undo the leak
}

START_TEST(test_snapshot_and_exit)
{
    bool stopped;
    snap_seg0();
    ck_assert_int_eq(seg_run(0, true, -1, NULL), 0);
    snap_seg1();
    ck_assert_int_eq(seg_run(1, false, -1, &stopped), 0);
    ck_assert(!stopped);
    ht_rp_finish(rp);
    ck_assert(rp->exited);
    ck_assert_uint_eq(rp->exit_code, 3);
    ck_assert_uint_eq(site_of(1)->c.leak_b, 30);
    ck_assert_uint_eq(site_of(1)->c.live_b, 20);
    ck_assert_uint_eq(rp->nsnaps, 1);
    ck_assert_uint_eq(rp->snaps[0].number, 0);
    ck_assert_uint_eq(rp->snaps[0].live_b, 10);
    ck_assert_uint_eq(rp->snaps[0].rss, 4096000);
}
END_TEST

START_TEST(test_snapshot_stop)
{
    bool stopped;
    snap_seg0();
    ck_assert_int_eq(seg_run(0, true, 0, &stopped), 0);
    ck_assert(!stopped);
    snap_seg1();
    ck_assert_int_eq(seg_run(1, false, 0, &stopped), 0);
    ck_assert(stopped);
    // The events after snapshot 0's keyframe are not replayed.
    ck_assert_uint_eq(rp->total_b, 10);
    ck_assert_uint_eq(site_of(1)->c.alloc_b, 10);
    ck_assert(!rp->exited);
}
END_TEST

START_TEST(test_module_epochs)
{
    ht_tf_seg_t sg = {0, 0x1000, 5};
    seg_begin(T(1000000), 0, 0);
    ht_tf_put_module(&e, T(1000000), 1, 0x7000, "/lib/a.so", 9, NULL, 0, &sg, 1);
    kf_end();
    uint64_t fr[] = {0x7100};
    v3_thread(&v, 7);
    ht_tf_put_stack(&e, 9, fr, 1);
    v3_alloc(&v, T(1010000), 0x1000, 10, 9, ONE);
    ht_tf_put_unmodule(&e, T(1020000), 1);
    // Another library at the same address: stack 9's address means b.so now.
    ht_tf_put_module(&e, T(1030000), 2, 0x7000, "/lib/b.so", 9, NULL, 0, &sg, 1);
    v3_alloc(&v, T(1040000), 0x2000, 20, 9, ONE);
    // a.so again where it was: no new epoch needed, resolves to a.so.
    ht_tf_put_unmodule(&e, T(1050000), 2);
    ck_assert_int_eq(seg_run(0, true, -1, NULL), 0);
    ck_assert_uint_eq(rp->nsites, 2);
    ck_assert_uint_ne(rp->sites[0].epoch, rp->sites[1].epoch);
    uint32_t m0 = ht_rp_module_at(rp, rp->sites[0].proc, rp->sites[0].epoch, 0x70ff);
    uint32_t m1 = ht_rp_module_at(rp, rp->sites[1].proc, rp->sites[1].epoch, 0x70ff);
    ck_assert_uint_ne(m0, HT_RP_NONE);
    ck_assert_uint_ne(m1, HT_RP_NONE);
    ck_assert_str_eq(rp->mods[m0].path, "/lib/a.so");
    ck_assert_str_eq(rp->mods[m1].path, "/lib/b.so");
    ck_assert_uint_eq(ht_rp_module_at(rp, 0, rp->sites[1].epoch, 0x9000), HT_RP_NONE);
}
END_TEST

START_TEST(test_hostile_values)
{
    seg_begin(T(1000000), 0, 0);
    kf_end();
    v3_thread(&v, 7);
    v3_alloc(&v, T(1010000), 0x1000, UINT64_MAX, 1, UINT64_MAX);
    v3_alloc(&v, T(1020000), 0x2000, 10, 1, 0);
    v3_alloc(&v, T(1030000), UINT64_MAX, 10, UINT64_MAX, ONE);
    v3_free(&v, T(1040000), 0x1000);
    v3_free(&v, T(1050000), UINT64_MAX);
    ht_tf_put_totals(&e, T(1060000), UINT64_MAX, UINT64_MAX, UINT64_MAX, UINT64_MAX, UINT64_MAX);
    ck_assert_int_eq(seg_run(0, true, -1, NULL), 0);
    ck_assert_uint_eq(rp->n.bad_weights, 2);
    // weight 0 was taken as one object
    ck_assert_uint_eq(rp->total_b, 10);
    ck_assert_uint_eq(rp->n.unknown_frees, 0);

    // A STACK claiming a million frames, and garbage after a valid
    // prefix: the valid part is replayed, the rest reported.
    v3_keyframe(&v, buf, sizeof buf, 5000000, 1, 0, 0);
    ht_tf_put_keyframe_end(&e, 0);
    v3_thread(&v, 7);
    v3_alloc(&v, 5010000, 0x7000, 1, 1, ONE);
    uint8_t *p = e.p;
    *p++ = HT_TF_STACK;
    *p++ = 3;
    p += ht_tf_varint_write(p, T(1000000));
    memset(p, 0x01, 16);
    p += 16;
    size_t bad = 0;
    bool st;
    int rc = ht_rd_segment(rp, buf, (size_t)(p - buf), 1, 100, false, -1, &st, &bad, NULL);
    ck_assert_int_eq(rc, -EBADMSG);
    ck_assert_uint_eq(bad, (size_t)(e.p - buf));
    ck_assert_uint_eq(rp->total_b, 11);

    // Pure noise never crashes.
    srand(1);
    for (int round = 0; round < 200; round++) {
        for (size_t i = 0; i < 4096; i++)
            buf[i] = (uint8_t)rand();
        ht_rd_segment(rp, buf, 4096, 2 + round, 100, round & 1, -1, &st, &bad, NULL);
    }
}
END_TEST

START_TEST(test_fork_shares_parent_stacks)
{
    seg_begin(T(1000000), 0, 0);
    kf_end();
    v3_thread(&v, 7);
    v3_alloc(&v, T(1010000), 0x1000, 10, 1, ONE);
    ht_tf_put_fork(&e, T(1020000), 200);
    ck_assert_int_eq(seg_run(0, true, -1, NULL), 0);
    // The child's own stream (its file: a new id space) allocates at the
    // same address with the parent's stack 1, which it never defines.
    v3_reset(&v, &e);
    ck_assert_int_eq(v3_keyframe(&v, buf, sizeof buf, T(1025000), 0, 0, 0), 0);
    kf_end();
    v3_thread(&v, 201);
    v3_alloc(&v, T(1030000), 0x1000, 30, 1, ONE);
    v3_free(&v, T(1040000), 0x1000);
    bool st = false;
    size_t bad = 0;
    ck_assert_int_eq(
        ht_rd_segment(rp, buf, (size_t)(e.p - buf), 0, 200, false, -1, &st, &bad, NULL), 0);
    ck_assert_uint_eq(rp->n.bad_sites, 0);
    ck_assert_uint_eq(rp->n.unknown_frees, 0);
    ck_assert_uint_eq(rp->nsites, 2);
    ck_assert_uint_eq(rp->total_b, 10); // the parent's block is still live
    const uint64_t *f;
    uint32_t n;
    ck_assert(ht_rp_stack_frames(rp, rp->sites[1].proc, 1, &f, &n));
}
END_TEST

Suite *
suite_replay(void)
{
    Suite *s = suite_create("replay");
    TCase *tc = tcase_create("replay");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_exact_counts);
    tcase_add_test(tc, test_stack_ref_shares_callers);
    tcase_add_test(tc, test_sampled_weights_free_exactly);
    tcase_add_test(tc, test_realloc_chain);
    tcase_add_test(tc, test_temporary_definition);
    tcase_add_test(tc, test_peak_falls_back);
    tcase_add_test(tc, test_bad_sites_unknown_free_unknown_stack);
    tcase_add_test(tc, test_threads_merged_by_time);
    tcase_add_test(tc, test_stack_defined_in_later_batch);
    tcase_add_test(tc, test_keyframe_reseed_after_gap);
    tcase_add_test(tc, test_snapshot_and_exit);
    tcase_add_test(tc, test_snapshot_stop);
    tcase_add_test(tc, test_module_epochs);
    tcase_add_test(tc, test_hostile_values);
    tcase_add_test(tc, test_fork_shares_parent_stacks);
    suite_add_tcase(s, tc);
    return s;
}
