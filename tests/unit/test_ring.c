/* tests/unit/test_ring.c -- the shared ring: many producers, one consumer,
 * nothing lost, nothing duplicated, per-thread order kept; stack interning
 * from many threads; lossy and dead-consumer behaviour; fork copy. */
#include "libheaptrace/ring.h"

#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

static uint64_t
now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static ht_ring_t *
ring_new(uint32_t nbufs, uint32_t buf_size, uint32_t stack_cap, uint64_t frames_cap)
{
    ht_ring_params_t p = {nbufs, buf_size, stack_cap, frames_cap};
    size_t len = ht_ring_size(&p);
    void *mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(mem, MAP_FAILED);
    ht_ring_t *r = calloc(1, sizeof *r);
    ck_assert_int_eq(ht_ring_format(r, mem, &p), 0);
    r->hdr->pid = 4242;
    return r;
}

static void
ring_free(ht_ring_t *r)
{
    ht_ring_unmap(r);
    free(r);
}

/* ---- many producers, one consumer ---- */

#define NPROD 4
#define PER_PROD 200000

typedef struct prod_arg_s {
    ht_ring_t *r;
    uint32_t tid;
    uint64_t stack;
} prod_arg_t;

static void *
producer(void *a)
{
    prod_arg_t *pa = a;
    ht_ring_writer_t w = {.buf = -1, .tid = pa->tid};
    for (uint64_t i = 0; i < PER_PROD; i++) {
        uint64_t ts = now_ns();
        while (ht_ring_writer_reserve(pa->r, &w, HT_TF_MAX_FIXED_REC, ts) != 0)
            ; // lossless mode with a live consumer: must not fail, but retry anyway
        int rc = ht_tf_put_alloc(&w.enc, ts, ((uint64_t)pa->tid << 32) | i, pa->tid, pa->stack,
                                 HT_TF_WEIGHT_ONE);
        ck_assert_int_eq(rc, 0);
        ht_ring_writer_commit(pa->r, &w);
        // Leave some records in OWNED buffers only (no release), so the
        // consumer must read committed prefixes as well as FULL buffers.
    }
    if (pa->tid % 2 == 0)
        ht_ring_writer_release(pa->r, &w);
    return NULL;
}

typedef struct cons_state_s {
    uint64_t next[NPROD + 1]; /* records seen per tid */
    uint8_t *seen[NPROD + 1]; /* one flag per sequence number */
    uint64_t total, errors, reordered;
} cons_state_t;

static int
consume_cb(void *ctx, const ht_tf_rec_t *rec)
{
    cons_state_t *s = ctx;
    if (rec->kind != HT_TF_ALLOC || rec->tid == 0 || rec->tid > NPROD || rec->pid != 4242) {
        s->errors++;
        return 0;
    }
    // Exactly once each: nothing lost, nothing duplicated. Delivery order
    // across one thread's buffers may differ from writing order when a
    // buffer's tail is committed during a scan; the collector restores time
    // order itself (records with ts after its scan started wait for the
    // next poll), so here order is counted, not required.
    uint64_t seq = rec->ptr & 0xffffffffu;
    if ((rec->ptr >> 32) != rec->tid || rec->size != rec->tid || seq >= PER_PROD ||
        s->seen[rec->tid][seq]) {
        s->errors++;
        return 0;
    }
    s->seen[rec->tid][seq] = 1;
    if (seq != s->next[rec->tid])
        s->reordered++;
    s->next[rec->tid]++;
    s->total++;
    return 0;
}

static atomic_int prods_done;

static void *
consumer(void *a)
{
    ht_ring_t *r = a;
    ht_ring_consumer_t c;
    cons_state_t *s = calloc(1, sizeof *s);
    for (int i = 1; i <= NPROD; i++)
        s->seen[i] = calloc(PER_PROD, 1);
    ck_assert_int_eq(ht_ring_consumer_init(&c, r), 0);
    for (;;) {
        int done = atomic_load(&prods_done) == NPROD;
        long n = ht_ring_consume(&c, consume_cb, s);
        if (done && n == 0)
            break;
        if (n == 0) {
            struct timespec ts = {0, 100000};
            nanosleep(&ts, NULL);
        }
    }
    ck_assert_uint_eq(c.bad_records, 0);
    ht_ring_consumer_fini(&c);
    return s;
}

START_TEST(test_ring_many_producers)
{
    // Small ring: producers outrun the consumer and must wait and recycle.
    ht_ring_t *r = ring_new(16, 4096, 1024, 1 << 16);
    uint64_t frames[3] = {0x401000, 0x402000, 0x403000};
    uint64_t stack = ht_ring_stack_intern(r, frames, 3);
    ck_assert_uint_ne(stack, 0);
    pthread_t ct, pt[NPROD];
    prod_arg_t pa[NPROD];
    atomic_store(&prods_done, 0);
    pthread_create(&ct, NULL, consumer, r);
    for (int i = 0; i < NPROD; i++) {
        pa[i] = (prod_arg_t){r, (uint32_t)i + 1, stack};
        pthread_create(&pt[i], NULL, producer, &pa[i]);
    }
    for (int i = 0; i < NPROD; i++) {
        pthread_join(pt[i], NULL);
        atomic_fetch_add(&prods_done, 1);
    }
    cons_state_t *s;
    pthread_join(ct, (void **)&s);
    ck_assert_uint_eq(s->errors, 0);
    ck_assert_uint_eq(s->total, (uint64_t)NPROD * PER_PROD);
    for (int i = 1; i <= NPROD; i++)
        ck_assert_uint_eq(s->next[i], PER_PROD);
    ck_assert_uint_eq(atomic_load(&r->hdr->lost_events), 0);
    ck_assert_uint_eq(atomic_load(&r->hdr->consumer_gone), 0);
    for (int i = 1; i <= NPROD; i++)
        free(s->seen[i]);
    free(s);
    ring_free(r);
}
END_TEST

/* ---- lossy mode and a consumer that never comes ---- */

static long
fill_until_fail(ht_ring_t *r, ht_ring_writer_t *w, long max)
{
    for (long i = 0; i < max; i++) {
        uint64_t ts = now_ns();
        if (ht_ring_writer_reserve(r, w, HT_TF_MAX_FIXED_REC, ts) != 0)
            return i;
        ck_assert_int_eq(ht_tf_put_free(&w->enc, ts, 0x1000 + (uint64_t)i * 16), 0);
        ht_ring_writer_commit(r, w);
    }
    return -1;
}

START_TEST(test_ring_lossy_drops)
{
    ht_ring_t *r = ring_new(4, 4096, 64, 1024);
    r->hdr->flags |= HT_TF_PROC_LOSSY;
    ht_ring_writer_t w = {.buf = -1, .tid = 7};
    uint64_t t0 = now_ns();
    long n = fill_until_fail(r, &w, 100000);
    ck_assert_int_gt(n, 100);           // four buffers' worth went in
    ck_assert_uint_lt(now_ns() - t0, 500000000ull); // and nobody waited
    ck_assert_uint_eq(atomic_load(&r->hdr->lost_events), 1);
    ck_assert_uint_eq(atomic_load(&r->hdr->waits), 0);

    // A consumer that reads everything frees the buffers again.
    ht_ring_consumer_t c;
    cons_state_t *s = calloc(1, sizeof *s);
    for (int i = 1; i <= NPROD; i++)
        s->seen[i] = calloc(PER_PROD, 1);
    ck_assert_int_eq(ht_ring_consumer_init(&c, r), 0);
    long got = ht_ring_consume(&c, consume_cb, s); // FREE records count as errors here
    ck_assert_int_eq(got, n);
    ck_assert_uint_eq(s->errors, (uint64_t)n);
    // Everything was FULL and read to the end, so all buffers but none are FREE.
    for (uint32_t i = 0; i < 4; i++)
        ck_assert_uint_eq(atomic_load(&r->bufs[i].state), HT_RING_BUF_FREE);
    ck_assert_int_eq(ht_ring_writer_reserve(r, &w, HT_TF_MAX_FIXED_REC, now_ns()), 0);
    ht_ring_consumer_fini(&c);
    for (int i = 1; i <= NPROD; i++)
        free(s->seen[i]);
    free(s);
    ring_free(r);
}
END_TEST

START_TEST(test_ring_dead_consumer_gives_up)
{
    ht_ring_t *r = ring_new(2, 4096, 64, 1024);
    ht_ring_writer_t w = {.buf = -1, .tid = 9};
    uint64_t t0 = now_ns();
    long n = fill_until_fail(r, &w, 100000);
    uint64_t waited = now_ns() - t0;
    ck_assert_int_gt(n, 0);
    ck_assert_uint_ge(waited, HT_RING_CONSUMER_TIMEOUT_NS);
    ck_assert_uint_lt(waited, HT_RING_CONSUMER_TIMEOUT_NS + 1000000000ull);
    ck_assert_uint_eq(atomic_load(&r->hdr->consumer_gone), 1);
    ck_assert_uint_eq(atomic_load(&r->hdr->lost_events), 1);
    ck_assert_uint_eq(atomic_load(&r->hdr->waits), 1);
    ck_assert_uint_ge(atomic_load(&r->hdr->wait_ns), HT_RING_CONSUMER_TIMEOUT_NS);
    // From now on a full ring drops at once.
    t0 = now_ns();
    ck_assert_int_eq(ht_ring_writer_reserve(r, &w, 4000, now_ns()), -EAGAIN);
    ck_assert_uint_lt(now_ns() - t0, 100000000ull);
    ck_assert_uint_eq(atomic_load(&r->hdr->lost_events), 2);
    ring_free(r);
}
END_TEST

/* ---- the consumer sees committed prefixes and age flush ---- */

static int
count_cb(void *ctx, const ht_tf_rec_t *rec)
{
    (*(long *)ctx)++;
    return 0;
}

START_TEST(test_ring_prefix_and_age)
{
    ht_ring_t *r = ring_new(4, 4096, 64, 1024);
    ht_ring_writer_t w = {.buf = -1, .tid = 3};
    ht_ring_consumer_t c;
    ck_assert_int_eq(ht_ring_consumer_init(&c, r), 0);
    long cnt = 0;
    uint64_t ts = 1000000000ull;
    ck_assert_int_eq(ht_ring_writer_reserve(r, &w, 64, ts), 0);
    ck_assert_int_eq(ht_tf_put_free(&w.enc, ts, 0x10), 0);
    // Not committed yet: invisible.
    ck_assert_int_eq(ht_ring_consume(&c, count_cb, &cnt), 0);
    ht_ring_writer_commit(r, &w);
    ck_assert_int_eq(ht_ring_consume(&c, count_cb, &cnt), 1);
    ck_assert_int_eq(ht_ring_consume(&c, count_cb, &cnt), 0);
    int32_t first = w.buf;
    // An event older buffer: past the age limit, the writer moves on.
    ts += HT_RING_MAX_AGE_NS + 1;
    ck_assert_int_eq(ht_ring_writer_reserve(r, &w, 64, ts), 0);
    ck_assert_int_ne(w.buf, first);
    ck_assert_uint_eq(atomic_load(&r->bufs[first].state), HT_RING_BUF_FULL);
    ck_assert_int_eq(ht_tf_put_free(&w.enc, ts, 0x20), 0);
    ht_ring_writer_commit(r, &w);
    ck_assert_int_eq(ht_ring_consume(&c, count_cb, &cnt), 1);
    ck_assert_uint_eq(atomic_load(&r->bufs[first].state), HT_RING_BUF_FREE);
    ck_assert_uint_eq(atomic_load(&r->hdr->heartbeat), 4);
    // Early stop keeps the position.
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(ht_ring_writer_reserve(r, &w, 64, ts), 0);
        ck_assert_int_eq(ht_tf_put_free(&w.enc, ts, 0x30 + i), 0);
        ht_ring_writer_commit(r, &w);
    }
    ck_assert_int_eq(ht_ring_consume(&c, count_cb, &cnt), 3);
    ck_assert_int_eq(cnt, 5);
    ht_ring_consumer_fini(&c);
    ring_free(r);
}
END_TEST

/* ---- the budget and the floor ---- */

typedef struct order_s {
    uint64_t last_ts[3];
    long n[3];
    int bad;
} order_t;

static int
order_cb(void *ctx, const ht_tf_rec_t *rec)
{
    order_t *o = ctx;
    uint32_t t = (uint32_t)rec->tid;
    if (t < 1 || t > 2 || rec->ts < o->last_ts[t] || rec->ptr != (uint64_t)o->n[t])
        o->bad++;
    else {
        o->last_ts[t] = rec->ts;
        o->n[t]++;
    }
    return 0;
}

/* Two threads with a backlog of several buffers each: a poll reads about
 * `budget` bytes, oldest buffer first, and its floor is no later than any
 * record left unread, so a time-ordered reader never applies a record past
 * one that is still unread. */
START_TEST(test_ring_budget_floor)
{
    enum { PER = 3000 };
    ht_ring_t *r = ring_new(16, 4096, 64, 1024);
    ht_ring_writer_t w[2] = {{.buf = -1, .tid = 1}, {.buf = -1, .tid = 2}};
    uint64_t ts0 = 1000000000ull;
    // Thread 1's records at even times, thread 2's at odd ones.
    for (int i = 0; i < PER; i++) {
        for (int t = 0; t < 2; t++) {
            uint64_t ts = ts0 + 2 * (uint64_t)i + (uint64_t)t;
            ck_assert_int_eq(ht_ring_writer_reserve(r, &w[t], 64, ts), 0);
            ck_assert_int_eq(ht_tf_put_free(&w[t].enc, ts, (uint64_t)i), 0);
            ht_ring_writer_commit(r, &w[t]);
        }
    }
    ht_ring_consumer_t c;
    ck_assert_int_eq(ht_ring_consumer_init(&c, r), 0);
    c.budget = 1024;
    order_t o = {0};
    long polls = 0, got;
    while ((got = ht_ring_consume(&c, order_cb, &o)) > 0) {
        polls++;
        // A FREE here is 3 or 4 bytes: the budget, plus one record.
        ck_assert_int_le(got, 1024 / 3 + 2);
        // Safety: no unread record is older than the floor (the next
        // record of thread t is at last_ts[t] + 2). Progress: the floor is
        // the last time delivered of a thread that was cut, not 0.
        uint64_t next_min = UINT64_MAX, last_min = UINT64_MAX;
        for (int t = 1; t <= 2; t++) {
            if (o.n[t] == PER)
                continue;
            uint64_t next = o.n[t] ? o.last_ts[t] + 2 : ts0 + (uint64_t)t - 1;
            if (next < next_min)
                next_min = next;
            if (o.n[t] && o.last_ts[t] < last_min)
                last_min = o.last_ts[t];
        }
        if (next_min != UINT64_MAX)
            ck_assert_uint_le(c.floor, next_min);
        (void)last_min;
    }
    ck_assert_int_eq(o.bad, 0);
    ck_assert_int_eq(o.n[1], PER);
    ck_assert_int_eq(o.n[2], PER);
    ck_assert_int_gt(polls, 4);
    ck_assert_uint_eq(c.floor, UINT64_MAX);
    ht_ring_consumer_fini(&c);
    ring_free(r);
}
END_TEST

/* The held-back records stay few when threads' records differ in size: a
 * thread of small records (FREE, 3-4 bytes) and one of large ones (ALLOC,
 * about 20) at the same times. A reader applies what is older than the
 * floor and holds the rest; a budget per thread read the small records'
 * thread ahead in time, and the reader held most of its backlog. */
typedef struct held_s {
    uint64_t ts[8192];
    long n, max;
} held_t;

static int
held_cb(void *ctx, const ht_tf_rec_t *rec)
{
    held_t *h = ctx;
    if (h->n < 8192)
        h->ts[h->n++] = rec->ts;
    return 0;
}

START_TEST(test_ring_budget_keeps_threads_together)
{
    enum { PER = 3000 };
    ht_ring_t *r = ring_new(64, 4096, 64, 1024);
    ht_ring_writer_t w[2] = {{.buf = -1, .tid = 1}, {.buf = -1, .tid = 2}};
    uint64_t ts0 = 1000000000ull;
    for (int i = 0; i < PER; i++) {
        uint64_t ts = ts0 + 2 * (uint64_t)i;
        ck_assert_int_eq(ht_ring_writer_reserve(r, &w[0], 64, ts), 0);
        ck_assert_int_eq(ht_tf_put_free(&w[0].enc, ts, (uint64_t)i), 0);
        ht_ring_writer_commit(r, &w[0]);
        ck_assert_int_eq(ht_ring_writer_reserve(r, &w[1], 64, ts + 1), 0);
        ck_assert_int_eq(ht_tf_put_alloc(&w[1].enc, ts + 1, 0x7f0000000000ull + 16 * (uint64_t)i,
                                         100000 + (uint64_t)i, 1 + (uint64_t)i, HT_TF_WEIGHT_ONE),
                         0);
        ht_ring_writer_commit(r, &w[1]);
    }
    ht_ring_consumer_t c;
    ck_assert_int_eq(ht_ring_consumer_init(&c, r), 0);
    c.budget = 1024;
    held_t *h = calloc(1, sizeof *h);
    long total = 0, got;
    while ((got = ht_ring_consume(&c, held_cb, h)) > 0) {
        total += got;
        long keep = 0; // apply what is older than the floor, hold the rest
        for (long i = 0; i < h->n; i++)
            if (h->ts[i] >= c.floor)
                h->ts[keep++] = h->ts[i];
        h->n = keep;
        if (keep > h->max)
            h->max = keep;
    }
    ck_assert_int_eq(total, 2 * PER);
    // About one buffer of each thread (a 4 KiB buffer holds ~1,100 FREEs).
    ck_assert_int_le(h->max, 1600);
    free(h);
    ht_ring_consumer_fini(&c);
    ring_free(r);
}
END_TEST

/* ---- hostile contents ---- */

START_TEST(test_ring_bind_rejects_garbage)
{
    ht_ring_t *r = ring_new(4, 4096, 64, 1024);
    ht_ring_t r2;
    ck_assert_int_eq(ht_ring_bind(&r2, r->hdr, r->map_size), 0);
    ck_assert_int_eq(ht_ring_bind(&r2, r->hdr, r->map_size - 1), -EBADMSG);
    r->hdr->stacks_off += 8;
    ck_assert_int_eq(ht_ring_bind(&r2, r->hdr, r->map_size), -EBADMSG);
    r->hdr->stacks_off -= 8;
    r->hdr->nbufs = 0;
    ck_assert_int_eq(ht_ring_bind(&r2, r->hdr, r->map_size), -EBADMSG);
    r->hdr->nbufs = 4;
    r->hdr->magic ^= 1;
    ck_assert_int_eq(ht_ring_bind(&r2, r->hdr, r->map_size), -EBADMSG);
    r->hdr->magic ^= 1;

    // A buffer claiming more than it holds, and one with a broken record.
    ht_ring_consumer_t c;
    ck_assert_int_eq(ht_ring_consumer_init(&c, r), 0);
    atomic_store(&r->bufs[0].state, HT_RING_BUF_FULL);
    atomic_store(&r->bufs[0].committed, 1u << 30);
    atomic_store(&r->bufs[1].state, HT_RING_BUF_FULL);
    memset(r->data + 4096, 0xff, 100);
    atomic_store(&r->bufs[1].committed, 100);
    long cnt = 0;
    ck_assert_int_eq(ht_ring_consume(&c, count_cb, &cnt), 0);
    ck_assert_uint_eq(c.bad_records, 2);
    ck_assert_uint_eq(atomic_load(&r->bufs[1].state), HT_RING_BUF_FREE);
    ht_ring_consumer_fini(&c);
    uint32_t n;
    ck_assert_ptr_null(ht_ring_stack_get(r, 0, &n));
    ck_assert_ptr_null(ht_ring_stack_get(r, 65, &n));
    ck_assert_ptr_null(ht_ring_stack_get(r, 5, &n)); // EMPTY
    // A program that scribbles over the header after the consumer bound
    // the ring cannot make it read out of bounds: the geometry was copied.
    ck_assert_int_eq(ht_ring_consumer_init(&c, r), 0);
    r->hdr->nbufs = 1u << 30;
    r->hdr->buf_size = 1u << 30;
    r->hdr->stack_cap = 1u << 30;
    ck_assert_int_ge(ht_ring_consume(&c, count_cb, &cnt), 0);
    ck_assert_ptr_null(ht_ring_stack_get(r, 1u << 29, &n));
    ht_ring_consumer_fini(&c);
    r->hdr->nbufs = 4;
    r->hdr->buf_size = 4096;
    r->hdr->stack_cap = 64;
    ring_free(r);
}
END_TEST

/* ---- stack interning ---- */

#define NSTACKS 2000
#define NINTERN 4

typedef struct intern_arg_s {
    ht_ring_t *r;
    int seed;
    uint64_t ids[NSTACKS];
} intern_arg_t;

static uint32_t
stack_frames(int s, uint64_t *f)
{
    uint32_t n = 1 + (uint32_t)(s % 37);
    for (uint32_t i = 0; i < n; i++)
        f[i] = 0x400000 + (uint64_t)s * 0x1000 + i * 8;
    return n;
}

static void *
interner(void *a)
{
    intern_arg_t *ia = a;
    uint64_t f[64];
    // Each thread walks the stacks in a different order, twice.
    for (int pass = 0; pass < 2; pass++)
        for (int k = 0; k < NSTACKS; k++) {
            int s = (k * 7 + ia->seed * 613) % NSTACKS;
            uint32_t n = stack_frames(s, f);
            uint64_t id = ht_ring_stack_intern(ia->r, f, n);
            if (pass == 1 && id != ia->ids[s])
                ia->ids[s] = UINT64_MAX;
            else
                ia->ids[s] = id;
        }
    return NULL;
}

START_TEST(test_ring_stacks_many_threads)
{
    ht_ring_t *r = ring_new(4, 4096, 4096, 1 << 20);
    pthread_t t[NINTERN];
    intern_arg_t *ia = calloc(NINTERN, sizeof *ia);
    for (int i = 0; i < NINTERN; i++) {
        ia[i].r = r;
        ia[i].seed = i;
        pthread_create(&t[i], NULL, interner, &ia[i]);
    }
    for (int i = 0; i < NINTERN; i++)
        pthread_join(t[i], NULL);
    uint8_t *seen = calloc(4097, 1);
    uint64_t f[64];
    for (int s = 0; s < NSTACKS; s++) {
        uint64_t id = ia[0].ids[s];
        ck_assert_uint_ne(id, 0);
        ck_assert_uint_le(id, 4096);
        for (int i = 1; i < NINTERN; i++)
            ck_assert_uint_eq(ia[i].ids[s], id);
        ck_assert_int_eq(seen[id], 0); // distinct stacks, distinct ids
        seen[id] = 1;
        uint32_t n = stack_frames(s, f), got_n = 0;
        const uint64_t *got = ht_ring_stack_get(r, id, &got_n);
        ck_assert_ptr_nonnull(got);
        ck_assert_uint_eq(got_n, n);
        ck_assert_int_eq(memcmp(got, f, n * 8), 0);
    }
    ck_assert_uint_eq(atomic_load(&r->hdr->stacks_used), NSTACKS);
    ck_assert_uint_eq(atomic_load(&r->hdr->stacks_dropped), 0);

    // The fork copy keeps every id valid in a fresh ring.
    ht_ring_t *child = ring_new(4, 4096, 4096, 1 << 20);
    ck_assert_int_eq(ht_ring_stacks_copy(child, r), 0);
    ck_assert_uint_eq(atomic_load(&child->hdr->stacks_used), NSTACKS);
    for (int s = 0; s < NSTACKS; s++) {
        uint32_t n = stack_frames(s, f), got_n = 0;
        const uint64_t *got = ht_ring_stack_get(child, ia[0].ids[s], &got_n);
        ck_assert_ptr_nonnull(got);
        ck_assert_uint_eq(got_n, n);
        ck_assert_int_eq(memcmp(got, f, n * 8), 0);
        // and interning again in the child finds the same id
        ck_assert_uint_eq(ht_ring_stack_intern(child, f, n), ia[0].ids[s]);
    }
    ring_free(child);
    free(seen);
    free(ia);
    ring_free(r);
}
END_TEST

START_TEST(test_ring_stacks_full)
{
    // A pool of 10 words: the first stack (1 + 5 words) fits, the second not.
    ht_ring_t *r = ring_new(4, 4096, 8, 10);
    uint64_t a[5] = {1, 2, 3, 4, 5}, b[5] = {6, 7, 8, 9, 10};
    uint64_t ia = ht_ring_stack_intern(r, a, 5);
    ck_assert_uint_ne(ia, 0);
    ck_assert_uint_eq(ht_ring_stack_intern(r, b, 5), 0);
    ck_assert_uint_eq(atomic_load(&r->hdr->stacks_dropped), 1);
    ck_assert_uint_eq(ht_ring_stack_intern(r, a, 5), ia);
    ck_assert_uint_eq(ht_ring_stack_intern(r, a, 0), 0);
    // A full table (8 slots) hands out 0 too, never loops.
    ring_free(r);
    r = ring_new(4, 4096, 8, 1 << 10);
    for (uint64_t i = 0; i < 8; i++)
        ck_assert_uint_ne(ht_ring_stack_intern(r, &i, 1), 0);
    uint64_t x = 99;
    ck_assert_uint_eq(ht_ring_stack_intern(r, &x, 1), 0);
    ring_free(r);
}
END_TEST

Suite *
suite_ring(void)
{
    Suite *s = suite_create("ring");
    TCase *tc = tcase_create("ring");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_ring_many_producers);
    tcase_add_test(tc, test_ring_lossy_drops);
    tcase_add_test(tc, test_ring_dead_consumer_gives_up);
    tcase_add_test(tc, test_ring_prefix_and_age);
    tcase_add_test(tc, test_ring_budget_floor);
    tcase_add_test(tc, test_ring_budget_keeps_threads_together);
    tcase_add_test(tc, test_ring_bind_rejects_garbage);
    tcase_add_test(tc, test_ring_stacks_many_threads);
    tcase_add_test(tc, test_ring_stacks_full);
    suite_add_tcase(s, tc);
    return s;
}
