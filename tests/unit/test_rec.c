/* tests/unit/test_rec.c -- the recorder driven directly (no LD_PRELOAD):
 * what reaches the ring for allocations, frees and reallocs in --all and
 * sampled mode, backtrace trimming and depth, threads, snapshot, exit. */
#include "libheaptrace/rec.h"

#include <check.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "libheaptrace/boot.h"
#include "libheaptrace/live.h"

static ht_ring_t ring;

static void
rec_setup(uint64_t rate, uint32_t depth)
{
    ht_ring_params_t p = {64, 64 * 1024, 1 << 14, 1 << 20};
    size_t len = ht_ring_size(&p);
    void *mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(mem, MAP_FAILED);
    ck_assert_int_eq(ht_ring_format(&ring, mem, &p), 0);
    ring.hdr->pid = getpid();
    ring.hdr->ppid = getppid();
    ring.hdr->flags = rate ? 0 : HT_TF_PROC_ALL;
    ring.hdr->sample_rate = rate;
    ring.hdr->max_depth = depth;
    ck_assert_int_eq(ht_live_init(16), 0);
    ck_assert_int_eq(ht_rec_start(&ring, "/bin/test", 9, "test\0-x", 7), 0);
    ck_assert_int_eq(atomic_load(&ht_rec_state), HT_REC_ON);
}

#define MAXR 400000
typedef struct got_s {
    long n;
    long kinds[32];
    ht_tf_rec_t *r; /* MAXR, strings not kept */
} got_t;

static int
got_cb(void *ctx, const ht_tf_rec_t *rec)
{
    got_t *g = ctx;
    g->kinds[rec->kind & 31]++;
    if (g->n < MAXR) {
        g->r[g->n] = *rec;
        // str stays valid: it points into the ring, mapped for the test
        g->r[g->n].frames = NULL;
    }
    g->n++;
    return 0;
}

static got_t *
drain(void)
{
    got_t *g = calloc(1, sizeof *g);
    g->r = calloc(MAXR, sizeof *g->r);
    ht_ring_consumer_t c;
    ck_assert_int_eq(ht_ring_consumer_init(&c, &ring), 0);
    while (ht_ring_consume(&c, got_cb, g) > 0)
        ;
    ck_assert_uint_eq(c.bad_records, 0);
    ht_ring_consumer_fini(&c);
    return g;
}

static void
got_free(got_t *g)
{
    free(g->r);
    free(g);
}

/* Stand-ins for the interposers: the same shape as shim.c. */
static __attribute__((noinline)) void
fake_malloc(void *p, size_t n)
{
    ht_rec_alloc(p, n, __builtin_return_address(0));
    __asm__ volatile("" ::: "memory"); // no tail call: keep this frame
}

static __attribute__((noinline)) void
fake_free(void *p)
{
    ht_rec_free(p, __builtin_return_address(0));
    __asm__ volatile("" ::: "memory");
}

static __attribute__((noinline)) void
caller_fn(void *p, size_t n)
{
    fake_malloc(p, n);
    __asm__ volatile("" ::: "memory");
}

static const ht_tf_rec_t *
find(const got_t *g, int kind, uint64_t ptr, int nth)
{
    for (long i = 0; i < g->n && i < MAXR; i++)
        if (g->r[i].kind == kind && g->r[i].ptr == ptr && nth-- == 0)
            return &g->r[i];
    return NULL;
}

START_TEST(test_rec_all_mode)
{
    rec_setup(0, 64);
    static char blocks[100][64];
    for (int i = 0; i < 100; i++)
        caller_fn(blocks[i], (size_t)i);
    for (int i = 0; i < 60; i++)
        fake_free(blocks[i]);
    fake_free((void *)0x1234560); // on a page nothing recorded was on: no event
    got_t *g = drain();
    ck_assert_int_eq(g->kinds[HT_TF_PROCESS], 1);
    ck_assert_int_ge(g->kinds[HT_TF_MODULE], 1);
    ck_assert_int_eq(g->kinds[HT_TF_THREAD], 1);
    ck_assert_int_eq(g->kinds[HT_TF_ALLOC], 100);
    ck_assert_int_eq(g->kinds[HT_TF_ALLOC_W], 0);
    ck_assert_int_eq(g->kinds[HT_TF_FREE], 60);
    // PROCESS comes first, THREAD before any event.
    ck_assert_int_eq(g->r[0].kind, HT_TF_PROCESS);
    ck_assert_uint_eq(g->r[0].pid, (uint64_t)getpid());
    ck_assert_uint_eq(g->r[0].flags, HT_TF_PROC_ALL);
    uint64_t stack = 0;
    for (int i = 0; i < 100; i++) {
        const ht_tf_rec_t *a = find(g, HT_TF_ALLOC, (uintptr_t)blocks[i], 0);
        ck_assert_ptr_nonnull(a);
        ck_assert_uint_eq(a->size, (uint64_t)i);
        ck_assert_uint_eq(a->weight, HT_TF_WEIGHT_ONE);
        ck_assert_uint_ne(a->stack, 0);
        if (i == 0)
            stack = a->stack;
        ck_assert_uint_eq(a->stack, stack); // same call site, one id
        const ht_tf_rec_t *f = find(g, HT_TF_FREE, (uintptr_t)blocks[i], 0);
        ck_assert(i < 60 ? f != NULL : f == NULL);
        if (f)
            ck_assert(f->ts >= a->ts);
    }
    // Frame 0 is the return address in caller_fn: the shim's frames
    // (fake_malloc and below) are cut.
    uint32_t n;
    const uint64_t *fr = ht_ring_stack_get(&ring, stack, &n);
    ck_assert_ptr_nonnull(fr);
    ck_assert_uint_ge(n, 2);
    ck_assert_uint_gt(fr[0], (uintptr_t)caller_fn);
    ck_assert_uint_lt(fr[0], (uintptr_t)caller_fn + 64);
    // Exact totals so far are in the TLS; exit writes them.
    ck_assert_uint_eq(ht_rec_tls.allocs, 100);
    ck_assert_uint_eq(ht_rec_tls.frees, 61);
    got_free(g);

    ht_rec_exit(HT_TF_EXIT_STATUS, 3);
    ck_assert_int_eq(atomic_load(&ht_rec_state), HT_REC_OFF);
    ck_assert_uint_eq(atomic_load(&ring.hdr->state), HT_RING_STATE_EXITED);
    g = drain();
    ck_assert_int_eq(g->kinds[HT_TF_EXIT], 1);
    ck_assert_int_eq(g->kinds[HT_TF_TOTALS], 1);
    const ht_tf_rec_t *t = NULL;
    for (long i = 0; i < g->n; i++)
        if (g->r[i].kind == HT_TF_TOTALS)
            t = &g->r[i];
    ck_assert_uint_eq(t->allocs, 100);
    ck_assert_uint_eq(t->alloc_bytes, 99 * 100 / 2);
    ck_assert_uint_eq(t->frees, 61);
    // --all: the shim keeps no sizes; the collector counts freed bytes.
    ck_assert_uint_eq(t->free_bytes, 0);
    ck_assert_uint_eq(g->r[g->n - 1].kind, HT_TF_EXIT);
    ck_assert_uint_eq(g->r[g->n - 1].code, 3);
    // After exit nothing more is recorded.
    fake_malloc(blocks[99] + 8, 1);
    fake_free(blocks[99]);
    got_free(g);
    g = drain();
    ck_assert_int_eq(g->n, 0);
    got_free(g);
}
END_TEST

static __attribute__((noinline)) void
fake_realloc(void *old, void *newp, size_t n)
{
    ht_rec_realloc_t rr;
    ht_rec_realloc_pre(old, &rr);
    ht_rec_realloc_post(old, newp, n, &rr, __builtin_return_address(0));
    __asm__ volatile("" ::: "memory");
}

START_TEST(test_rec_realloc)
{
    rec_setup(0, 16);
    // One 256-byte-aligned array: a page holds all four, so the page
    // marks of a and b cover c too (the FREE of c below).
    static char blk[4][64] __attribute__((aligned(256)));
    char *a = blk[0], *b = blk[1], *c = blk[2], *d = blk[3];
    fake_malloc(a, 10);
    fake_realloc(a, b, 20);    // moved: FREE a, ALLOC b (one REALLOC)
    fake_realloc(b, b, 30);    // in place: FREE b, ALLOC b (one REALLOC)
    fake_realloc(b, NULL, 40); // failed: nothing, b still live
    fake_realloc(b, NULL, 0);  // realloc(b, 0) freed b
    fake_realloc(c, d, 8);     // c never recorded: FREE c (dropped by the collector), ALLOC d
    fake_free(b);              // already gone: FREE b again, dropped by the collector
    fake_free(d);
    got_t *g = drain();
    // --all keeps no live table in the shim: every free on a page that
    // held a recorded block is written (the collector knows which matter).
    // A realloc's FREE and ALLOC come in one REALLOC record; unpacked as
    // the collector does, the events are these.
    ck_assert_int_eq(g->kinds[HT_TF_ALLOC], 1);
    ck_assert_int_eq(g->kinds[HT_TF_REALLOC], 3);
    ck_assert_int_eq(g->kinds[HT_TF_FREE], 3);
    struct { int kind; uint64_t ptr, size, ts; } ev[16];
    int ne = 0;
    for (long i = 0; i < g->n; i++) {
        const ht_tf_rec_t *r = &g->r[i];
        if (r->kind == HT_TF_REALLOC) {
            ev[ne].kind = HT_TF_FREE, ev[ne].ptr = r->from, ev[ne].ts = r->ts, ne++;
            ev[ne].kind = HT_TF_ALLOC, ev[ne].ptr = r->ptr, ev[ne].size = r->size;
            ev[ne++].ts = r->ts + r->later;
        } else if (r->kind == HT_TF_ALLOC || r->kind == HT_TF_FREE) {
            ev[ne].kind = r->kind, ev[ne].ptr = r->ptr, ev[ne].size = r->size;
            ev[ne++].ts = r->ts;
        }
    }
    ck_assert_int_eq(ne, 10);
    struct { int kind; void *p; uint64_t size; } want[10] = {
        {HT_TF_ALLOC, a, 10}, {HT_TF_FREE, a, 0}, {HT_TF_ALLOC, b, 20}, {HT_TF_FREE, b, 0},
        {HT_TF_ALLOC, b, 30}, {HT_TF_FREE, b, 0}, {HT_TF_FREE, c, 0}, {HT_TF_ALLOC, d, 8},
        {HT_TF_FREE, b, 0}, {HT_TF_FREE, d, 0}};
    for (int i = 0; i < 10; i++) {
        ck_assert_int_eq(ev[i].kind, want[i].kind);
        ck_assert_uint_eq(ev[i].ptr, (uintptr_t)want[i].p);
        if (want[i].kind == HT_TF_ALLOC)
            ck_assert_uint_eq(ev[i].size, want[i].size);
        if (i)
            ck_assert(ev[i].ts >= ev[i - 1].ts);
    }
    got_free(g);
}
END_TEST

static __attribute__((noinline)) int
recurse(int depth, void *p)
{
    if (depth == 0) {
        fake_malloc(p, 1);
        return 0;
    }
    int r = recurse(depth - 1, p);
    __asm__ volatile("" ::: "memory"); // not a tail call
    return r + 1;
}

static __attribute__((noinline)) void
deep_entry(void *p)
{
    recurse(200, p);
    __asm__ volatile("" ::: "memory");
}

START_TEST(test_rec_deep_stack)
{
    rec_setup(0, 256);
    static char x[16], y[16];
    deep_entry(x);
    got_t *g = drain();
    const ht_tf_rec_t *a = find(g, HT_TF_ALLOC, (uintptr_t)x, 0);
    ck_assert_ptr_nonnull(a);
    uint32_t n;
    const uint64_t *fr = ht_ring_stack_get(&ring, a->stack, &n);
    ck_assert_ptr_nonnull(fr);
    ck_assert_uint_ge(n, 203);
    // The 201 recurse frames, then deep_entry: the walk got through.
    ck_assert_uint_gt(fr[201], (uintptr_t)deep_entry);
    ck_assert_uint_lt(fr[201], (uintptr_t)deep_entry + 64);
    got_free(g);
    // A depth limit cuts from the root end, keeping the leaf.
    ht_rec_exit(0, 0);
    ht_live_fini();
    rec_setup(0, 50);
    deep_entry(y);
    g = drain();
    a = find(g, HT_TF_ALLOC, (uintptr_t)y, 0);
    fr = ht_ring_stack_get(&ring, a->stack, &n);
    ck_assert_uint_eq(n, 50);
    ck_assert_uint_gt(fr[0], (uintptr_t)recurse);
    ck_assert_uint_lt(fr[0], (uintptr_t)recurse + 128);
    got_free(g);
}
END_TEST

/* One thread recording stamps its events from the coarse clock (rec.c);
 * once a second thread has recorded, every thread takes the precise one,
 * so an event after the other thread's is not stamped before it. The
 * coarse clock lags by up to a tick: without the switch the main thread's
 * next time falls behind the other thread's (nearly every run). */
static char clk_blocks[8][64];

static void *
clk_thread(void *arg)
{
    (void)arg;
    fake_malloc(clk_blocks[1], 1);
    return NULL;
}

START_TEST(test_rec_clock_second_thread)
{
    rec_setup(0, 16);
    fake_malloc(clk_blocks[0], 1);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, clk_thread, NULL), 0);
    pthread_join(th, NULL);
    fake_malloc(clk_blocks[2], 1);
    got_t *g = drain();
    const ht_tf_rec_t *a = find(g, HT_TF_ALLOC, (uintptr_t)clk_blocks[0], 0);
    const ht_tf_rec_t *b = find(g, HT_TF_ALLOC, (uintptr_t)clk_blocks[1], 0);
    const ht_tf_rec_t *c = find(g, HT_TF_ALLOC, (uintptr_t)clk_blocks[2], 0);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    ck_assert_ptr_nonnull(c);
    ck_assert_uint_le(a->ts, b->ts); // coarse, never ahead of the precise clock
    ck_assert_uint_ge(c->ts, b->ts); // precise after the second thread recorded
    got_free(g);
}
END_TEST

/* Stacks that alternate: the last stack never matches, so the thread's
 * recent-stacks cache (rec_intern) serves them. Two paths share depth and
 * the two leaf frames (the cache's key) and differ further up: each keeps
 * its one id, and the ids differ, because a hit is compared whole. */
static __attribute__((noinline)) void
alt_leaf(void *p, size_t n)
{
    fake_malloc(p, n);
    __asm__ volatile("" ::: "memory");
}

static __attribute__((noinline)) void
alt_mid(void *p, size_t n)
{
    alt_leaf(p, n);
    __asm__ volatile("" ::: "memory");
}

static __attribute__((noinline)) void
alt_outer1(void *p)
{
    alt_mid(p, 1);
    __asm__ volatile("" ::: "memory");
}

static __attribute__((noinline)) void
alt_outer2(void *p)
{
    alt_mid(p, 2);
    __asm__ volatile("" ::: "memory");
}

START_TEST(test_rec_alternating_stacks)
{
    rec_setup(0, 16);
    static char blk[40][16];
    for (int i = 0; i < 40; i++) {
        if (i % 2)
            alt_outer2(blk[i]);
        else
            alt_outer1(blk[i]);
    }
    got_t *g = drain();
    uint64_t id[2] = {0, 0};
    for (int i = 0; i < 40; i++) {
        const ht_tf_rec_t *a = find(g, HT_TF_ALLOC, (uintptr_t)blk[i], 0);
        ck_assert_ptr_nonnull(a);
        int k = (int)a->size - 1;
        ck_assert(k == 0 || k == 1);
        if (!id[k])
            id[k] = a->stack;
        ck_assert_uint_eq(a->stack, id[k]);
    }
    ck_assert_uint_ne(id[0], id[1]);
    got_free(g);
}
END_TEST

START_TEST(test_rec_sampled)
{
    const uint64_t R = 8192;
    rec_setup(R, 8);
    // 200,000 allocations of 100 bytes: about 200000 * 101 / 8192 = 2466
    // samples, each standing for 8192/101 objects.
    char *arena = malloc(200000 * 16);
    for (int i = 0; i < 200000; i++) {
        fake_malloc(arena + (size_t)i * 16, 100);
        if (i % 2)
            fake_free(arena + (size_t)i * 16);
    }
    got_t *g = drain();
    long ns = g->kinds[HT_TF_ALLOC_W];
    ck_assert_int_eq(g->kinds[HT_TF_ALLOC], 0);
    ck_assert_msg(ns > 2466 - 5 * 50 && ns < 2466 + 5 * 50, "%ld samples", ns);
    double wsum = 0;
    long freed = 0;
    for (long i = 0; i < g->n; i++) {
        if (g->r[i].kind == HT_TF_ALLOC_W) {
            wsum += (double)g->r[i].weight / HT_TF_WEIGHT_ONE;
            freed += ((g->r[i].ptr - (uintptr_t)arena) / 16) % 2;
        }
    }
    ck_assert_msg(wsum > 200000 * 0.9 && wsum < 200000 * 1.1, "weights sum %.0f", wsum);
    // Exactly the frees of sampled pointers are recorded.
    ck_assert_int_eq(g->kinds[HT_TF_FREE], freed);
    // Periodic totals every 64K allocations.
    ck_assert_int_ge(g->kinds[HT_TF_TOTALS], 3);
    got_free(g);
    free(arena);
}
END_TEST

static void *
thread_body(void *a)
{
    static char blk[8][32];
    int k = (int)(intptr_t)a;
    fake_malloc(blk[k], 24);
    pthread_setname_np(pthread_self(), "worker");
    return NULL;
}

START_TEST(test_rec_threads_and_snapshot)
{
    rec_setup(0, 16);
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, thread_body, (void *)(intptr_t)i);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    ck_assert_int_eq(ht_boot_resolve(), 0); // for mallinfo2
    ck_assert_int_eq(ht_rec_snapshot(HT_TF_SNAP_API), 0);
    got_t *g = drain();
    // The allocator's own figures come with the snapshot.
    ck_assert_int_eq(g->kinds[HT_TF_MEMSTAT], 1);
#ifndef __SANITIZE_ADDRESS__ // ASan's allocator answers mallinfo2 with zeros
    for (long i = 0; i < g->n; i++)
        if (g->r[i].kind == HT_TF_MEMSTAT)
            ck_assert_uint_gt(g->r[i].heap_total, 0);
#endif
    // main + 4, and the 4 again at their end: they were named after their
    // first allocation.
    ck_assert_int_eq(g->kinds[HT_TF_THREAD], 9);
    int named = 0;
    for (long i = 0; i < g->n; i++)
        named += g->r[i].kind == HT_TF_THREAD && g->r[i].str_len == 6 &&
                 memcmp(g->r[i].str, "worker", 6) == 0;
    ck_assert_int_eq(named, 4);
    ck_assert_int_eq(g->kinds[HT_TF_THREAD_END], 4);
    ck_assert_int_eq(g->kinds[HT_TF_ALLOC], 4);
    ck_assert_int_eq(g->kinds[HT_TF_SNAPSHOT_REQ], 1);
    // Each ended thread wrote its totals (1 alloc) before THREAD_END, and
    // all its buffers were handed back.
    int tot1 = 0;
    for (long i = 0; i < g->n; i++)
        if (g->r[i].kind == HT_TF_TOTALS && g->r[i].allocs == 1 && g->r[i].tid != (uint64_t)getpid())
            tot1++;
    ck_assert_int_eq(tot1, 4);
    for (uint32_t i = 0; i < ring.nbufs; i++)
        ck_assert_uint_ne(atomic_load(&ring.bufs[i].state), HT_RING_BUF_OWNED);
    got_free(g);
    // Not recording: the API says so.
    ht_rec_stop();
    ck_assert_int_eq(ht_rec_snapshot(HT_TF_SNAP_API), -1);
}
END_TEST

START_TEST(test_rec_guard_and_exclude)
{
    rec_setup(0, 16);
    static char a[16], b[16];
    ht_rec_guard_enter();
    fake_malloc(a, 1); // the shim's own allocation: not recorded
    ht_rec_guard_leave();
    ht_rec_thread_exclude();
    fake_malloc(b, 1);
    got_t *g = drain();
    ck_assert_int_eq(g->kinds[HT_TF_ALLOC], 0);
    got_free(g);
}
END_TEST

static atomic_long gate_count;
static atomic_int gate_stop;

static void *
gate_worker(void *a)
{
    static char blk[2][64];
    int k = (int)(intptr_t)a;
    while (!atomic_load(&gate_stop)) {
        fake_malloc(blk[k], 16); // --all: every call takes the slow path
        fake_free(blk[k]);
        atomic_fetch_add(&gate_count, 1);
    }
    return NULL;
}

START_TEST(test_rec_fork_gate)
{
    rec_setup(0, 8);
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, gate_worker, (void *)(intptr_t)i);
    while (atomic_load(&gate_count) < 1000)
        sched_yield();
    for (int round = 0; round < 20; round++) {
        // While the gate is held no slow path runs: each worker can finish
        // at most the one iteration it was past the gate in.
        ht_rec_fork_lock();
        long c0 = atomic_load(&gate_count);
        usleep(2000);
        long c1 = atomic_load(&gate_count);
        ht_rec_fork_unlock(0);
        ck_assert_int_le(c1 - c0, 2);
        long c2 = atomic_load(&gate_count);
        while (atomic_load(&gate_count) < c2 + 100)
            sched_yield();
    }
    atomic_store(&gate_stop, 1);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    got_t *g = drain();
    // Nothing lost to the gate (a full ring, with no consumer here, would
    // be another story: then the counts may differ).
    if (atomic_load(&ring.hdr->lost_events) == 0)
        ck_assert_int_eq(g->kinds[HT_TF_ALLOC], g->kinds[HT_TF_FREE]);
    ck_assert_int_ge(g->kinds[HT_TF_ALLOC], 1000 + 20 * 100);
    got_free(g);
}
END_TEST

Suite *
suite_rec(void)
{
    Suite *s = suite_create("rec");
    TCase *tc = tcase_create("rec");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_rec_all_mode);
    tcase_add_test(tc, test_rec_realloc);
    tcase_add_test(tc, test_rec_deep_stack);
    tcase_add_test(tc, test_rec_clock_second_thread);
    tcase_add_test(tc, test_rec_alternating_stacks);
    tcase_add_test(tc, test_rec_sampled);
    tcase_add_test(tc, test_rec_threads_and_snapshot);
    tcase_add_test(tc, test_rec_guard_and_exclude);
    tcase_add_test(tc, test_rec_fork_gate);
    suite_add_tcase(s, tc);
    return s;
}
