/*
 * libheaptrace/ring.c -- the shared-memory ring (contract: ring.h).
 *
 * Producer side: no lock and no system call while a FREE buffer is at
 * hand; the only shared writes are the claim CAS, the `committed` stores
 * and the state change to FULL. Consumer side: single-threaded, keeps its
 * read positions in its own memory so that nothing the traced program can
 * scribble on is trusted beyond bounds checks.
 */
#include "libheaptrace/ring.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "libheaptrace/util.h"

/* Room the BATCH that opens every buffer may take (kind + 3 varints). */
#define RING_BATCH_MAX 32
/* Probes before giving up on a stack: a lookup never needs to walk past
 * where an insert would have given up, so both use the same bound. */
#define RING_STACK_MAX_PROBE 4096
/* The frame pool is also a log: each stack's frames are preceded by one
 * word (slot index + 1) | (nframes << 32), so a forked child can copy
 * exactly the used part of the table (ht_ring_stacks_copy). */
#define RING_LOG_WORD(idx, n) (((uint64_t)(idx) + 1) | ((uint64_t)(n) << 32))
/* The frame pool is backed this far ahead of the word a stack needs. */
#define RING_FRAMES_BACK_STEP (64u * 1024u)

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14; older headers */
#endif

/* ------------------------------------------------------------------ */
/* backing (ring.h, "Backing") */

/* Set when the kernel has no MADV_POPULATE_WRITE: pages are then touched
 * unbacked, as before it existed, and no more calls are made. */
static _Atomic int ring_back_unsupported;

/* Allocate the pages of [addr, addr + len) in the mapping's file. 0, or
 * -1 when they cannot be (full tmpfs, memory limit). errno is kept. */
static int
ring_back(void *addr, size_t len)
{
    if (atomic_load_explicit(&ring_back_unsupported, memory_order_relaxed))
        return 0;
    uintptr_t lo = (uintptr_t)addr & ~(uintptr_t)4095;
    uintptr_t hi = HT_ALIGN_UP((uintptr_t)addr + len, 4096);
    int saved = errno, rc = 0;
    if (madvise((void *)lo, hi - lo, MADV_POPULATE_WRITE) < 0) {
        if (errno == EINVAL || errno == ENOSYS)
            atomic_store_explicit(&ring_back_unsupported, 1, memory_order_relaxed);
        else
            rc = -1;
    }
    errno = saved;
    return rc;
}

/* The page of the stack table that holds slot idx is backed (or cannot
 * be: -1). One bit test once it is. */
static inline int
ring_back_stack(ht_ring_t *r, uint32_t idx)
{
    if (!r->backing)
        return 0;
    size_t page = ((size_t)idx * sizeof(ht_ring_stack_t)) >> 12;
    if (page >= HT_RING_BACKED_PAGES)
        return 0; // a table this big was backed whole
    uint64_t bit = 1ull << (page & 63);
    _Atomic uint64_t *w = &r->stack_pages[page >> 6];
    if (HT_LIKELY(atomic_load_explicit(w, memory_order_acquire) & bit))
        return 0;
    if (ring_back((uint8_t *)r->stacks + (page << 12), 4096) < 0)
        return -1;
    atomic_fetch_or_explicit(w, bit, memory_order_release);
    return 0;
}

/* Words [0, end) of the frame pool are backed (or cannot be: -1). */
static inline int
ring_back_frames(ht_ring_t *r, uint64_t end)
{
    if (!r->backing)
        return 0;
    uint64_t have = atomic_load_explicit(&r->frames_backed, memory_order_acquire);
    if (HT_LIKELY(end <= have))
        return 0;
    uint64_t want = HT_ALIGN_UP(end * sizeof(uint64_t), RING_FRAMES_BACK_STEP) / sizeof(uint64_t);
    if (want > r->frames_cap)
        want = r->frames_cap;
    if (ring_back(r->frames + have, (size_t)(want - have) * sizeof(uint64_t)) < 0)
        return -1;
    // Raise the mark; a thread that backed a longer stretch meanwhile wins.
    while (have < want && !atomic_compare_exchange_weak_explicit(&r->frames_backed, &have, want,
                                                                memory_order_release,
                                                                memory_order_acquire))
        ;
    return 0;
}

/* ------------------------------------------------------------------ */
/* layout */

static void
ring_layout(const ht_ring_params_t *p, uint64_t *bufs_off, uint64_t *data_off,
            uint64_t *stacks_off, uint64_t *frames_off, uint64_t *total)
{
    *bufs_off = HT_ALIGN_UP((uint64_t)sizeof(ht_ring_hdr_t), 64);
    *data_off = HT_ALIGN_UP(*bufs_off + (uint64_t)p->nbufs * sizeof(ht_ring_buf_t), 4096);
    *stacks_off = HT_ALIGN_UP(*data_off + (uint64_t)p->nbufs * p->buf_size, 4096);
    *frames_off = HT_ALIGN_UP(*stacks_off + (uint64_t)p->stack_cap * sizeof(ht_ring_stack_t), 4096);
    *total = HT_ALIGN_UP(*frames_off + p->frames_cap * sizeof(uint64_t), 4096);
}

void
ht_ring_params_default(ht_ring_params_t *p)
{
    p->nbufs = HT_RING_DEFAULT_NBUFS;
    p->buf_size = HT_RING_DEFAULT_BUF_SIZE;
    p->stack_cap = HT_RING_DEFAULT_STACK_CAP;
    p->frames_cap = HT_RING_DEFAULT_FRAMES_CAP;
}

size_t
ht_ring_size(const ht_ring_params_t *p)
{
    uint64_t b, d, s, f, t;
    ring_layout(p, &b, &d, &s, &f, &t);
    return (size_t)t;
}

/* Point r into mem by the geometry p (already checked), never by what the
 * header says now: it may change under us. */
static void
ring_point(ht_ring_t *r, void *mem, size_t map_size, const ht_ring_params_t *p)
{
    uint8_t *base = mem;
    uint64_t bo, d, so, fo, t;
    ring_layout(p, &bo, &d, &so, &fo, &t);
    r->hdr = mem;
    r->bufs = (ht_ring_buf_t *)(base + bo);
    r->data = base + d;
    r->stacks = (ht_ring_stack_t *)(base + so);
    r->frames = (uint64_t *)(base + fo);
    r->map_size = map_size;
    r->nbufs = p->nbufs;
    r->buf_size = p->buf_size;
    r->stack_cap = p->stack_cap;
    r->frames_cap = p->frames_cap;
    r->backing = 0;
    r->owner = 0;
    atomic_store_explicit(&r->starved, 0, memory_order_relaxed);
    atomic_store_explicit(&r->frames_backed, 0, memory_order_relaxed);
    for (size_t i = 0; i < HT_RING_BACKED_PAGES / 64; i++)
        atomic_store_explicit(&r->stack_pages[i], 0, memory_order_relaxed);
}

int
ht_ring_format(ht_ring_t *r, void *mem, const ht_ring_params_t *p)
{
    ht_ring_hdr_t *h = mem;
    uint64_t total, bo, d, so, fo;
    ring_layout(p, &bo, &d, &so, &fo, &total);
    // Header and buffer states, before the first write to them.
    if (ring_back(mem, (size_t)d) < 0)
        return -ENOSPC;
    if (((fo - so) >> 12) > HT_RING_BACKED_PAGES &&
        ring_back((uint8_t *)mem + so, (size_t)(fo - so)) < 0)
        return -ENOSPC;
    ring_layout(p, &h->bufs_off, &h->data_off, &h->stacks_off, &h->frames_off, &total);
    h->magic = HT_RING_MAGIC;
    h->version = HT_RING_VERSION;
    h->hdr_size = sizeof(ht_ring_hdr_t);
    h->total_size = total;
    h->nbufs = p->nbufs;
    h->buf_size = p->buf_size;
    h->stack_cap = p->stack_cap;
    h->frames_cap = p->frames_cap;
    ring_point(r, mem, (size_t)total, p);
    r->backing = 1;
    r->owner = (int32_t)getpid();
    return 0;
}

int
ht_ring_bind(ht_ring_t *r, void *mem, size_t map_size)
{
    const ht_ring_hdr_t *h = mem;
    if (!mem || map_size < sizeof(ht_ring_hdr_t))
        return -EBADMSG;
    if (h->magic != HT_RING_MAGIC || h->version != HT_RING_VERSION ||
        h->hdr_size != sizeof(ht_ring_hdr_t))
        return -EBADMSG;
    // Read the sizes once, check them, and recompute the layout from them:
    // a ring whose stored offsets disagree with its sizes is corrupt.
    ht_ring_params_t p = {h->nbufs, h->buf_size, h->stack_cap, h->frames_cap};
    if (p.nbufs == 0 || p.nbufs > (1u << 20) || p.buf_size < 4096 || p.buf_size > (64u << 20) ||
        p.stack_cap == 0 || p.stack_cap > (1u << 28) || p.frames_cap == 0 ||
        p.frames_cap > (1ull << 34))
        return -EBADMSG;
    uint64_t b, d, s, f, t;
    ring_layout(&p, &b, &d, &s, &f, &t);
    if (b != h->bufs_off || d != h->data_off || s != h->stacks_off || f != h->frames_off ||
        t != h->total_size || t > map_size)
        return -EBADMSG;
    ring_point(r, mem, map_size, &p);
    return 0;
}

int
ht_ring_map(ht_ring_t *r, int fd)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -errno;
    if (st.st_size < (off_t)sizeof(ht_ring_hdr_t))
        return -EBADMSG;
    size_t len = (size_t)st.st_size;
    void *mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (mem == MAP_FAILED)
        return -errno;
    int rc = ht_ring_bind(r, mem, len);
    if (rc < 0)
        munmap(mem, len);
    return rc;
}

void
ht_ring_unmap(ht_ring_t *r)
{
    if (r->hdr)
        munmap(r->hdr, r->map_size);
    memset(r, 0, sizeof *r);
}

/* ------------------------------------------------------------------ */
/* producer: buffers */

/* Claims take the lowest FREE buffer. They used to start at a hint that
 * went round all the buffers (to spread threads' CASes), so a program
 * wrote 32 MiB of fresh shared pages before reusing one: every page a
 * fault and a zeroing in the program and another fault in the collector.
 * The lowest FREE buffer is one the collector has just read, still mapped
 * and in cache on both sides (alloc_loop 1M --all: 6,200 page faults in
 * the program -> 1,100..1,800). A claim happens once per buffer (32 KiB of
 * records), so threads meeting on the same CAS cost nothing that shows. */

static inline uint8_t *
ring_buf_base(ht_ring_t *r, uint32_t i)
{
    return r->data + (size_t)i * r->buf_size;
}

/* *nfull: FULL buffers the scan passed (work the consumer has), when the
 * claim fails. */
static int
ring_try_claim(ht_ring_t *r, ht_ring_writer_t *w, uint64_t ts, uint32_t *nfull)
{
    uint32_t n = r->nbufs, full = 0;
    for (uint32_t i = 0; i < n; i++) {
        ht_ring_buf_t *b = &r->bufs[i];
        uint32_t st = atomic_load_explicit(&b->state, memory_order_relaxed);
        if (st != HT_RING_BUF_FREE) {
            full += st == HT_RING_BUF_FULL;
            continue;
        }
        if (!atomic_compare_exchange_strong_explicit(&b->state, &st, HT_RING_BUF_OWNED,
                                                     memory_order_acquire,
                                                     memory_order_relaxed))
            continue;
        // First use: its pages, or never again (a system call once per
        // buffer of the ring's life, not per claim).
        if (HT_UNLIKELY(!atomic_load_explicit(&b->backed, memory_order_relaxed)) && r->backing) {
            if (ring_back(ring_buf_base(r, i), r->buf_size) < 0) {
                atomic_store_explicit(&b->state, HT_RING_BUF_UNBACKED, memory_order_relaxed);
                continue;
            }
            atomic_store_explicit(&b->backed, 1, memory_order_relaxed);
        }
        b->tid = w->tid;
        // The consumer orders one thread's buffers by their BATCH time, so
        // make it strictly increasing per writer even when two claims fall
        // in the same clock tick.
        uint64_t bts = ts > w->first_ts ? ts : w->first_ts + 1;
        w->buf = (int32_t)i;
        w->first_ts = bts;
        ht_tf_enc_init(&w->enc, ring_buf_base(r, i), r->buf_size);
        ht_tf_put_batch(&w->enc, (uint64_t)(uint32_t)r->hdr->pid, w->tid, bts);
        ht_ring_writer_commit(r, w);
        if (HT_UNLIKELY(atomic_load_explicit(&r->starved, memory_order_relaxed)))
            atomic_store_explicit(&r->starved, 0, memory_order_relaxed);
        return 0;
    }
    *nfull = full;
    return -EAGAIN;
}

static void
ring_sleep_ns(long ns)
{
    struct timespec ts = {0, ns};
    nanosleep(&ts, NULL);
}

/* ht_ring_writer_reserve when the owned buffer (if any) cannot take the
 * record -- full, or older than HT_RING_MAX_AGE_NS: hand it over, claim
 * another. */
int
ht_ring_writer_reserve_slow(ht_ring_t *r, ht_ring_writer_t *w, size_t need, uint64_t ts)
{
    ht_ring_hdr_t *h = r->hdr;
    // A child of a raw clone(2) (no fork handler ran) has our memory, this
    // writer and ring included, and its pid: it must not hand over the
    // buffer the parent is still writing, nor claim one in its ring (a
    // recycled buffer then took the parent's next records twice). Once a
    // buffer, so a system call is cheap here; a vfork child that allocates
    // comes here too, and drops.
    if (HT_UNLIKELY(r->owner && (int32_t)syscall(SYS_getpid) != r->owner)) {
        atomic_fetch_add_explicit(&h->lost_events, 1, memory_order_relaxed);
        return -EAGAIN;
    }
    if (w->buf >= 0)
        ht_ring_writer_release(r, w);
    if (need + RING_BATCH_MAX > r->buf_size) {
        // Can never fit; a bug in the caller, but not one to hang on.
        atomic_fetch_add_explicit(&h->lost_events, 1, memory_order_relaxed);
        return -EAGAIN;
    }
    uint32_t nfull = 0;
    if (HT_LIKELY(ring_try_claim(r, w, ts, &nfull) == 0))
        return 0;

    // No FREE buffer: the consumer is behind (or gone), or the ring is
    // starved (ring.h, Waiting) and no buffer is FULL, so none will be
    // FREE before an owner writes again.
    if ((h->flags & HT_TF_PROC_LOSSY) ||
        atomic_load_explicit(&h->consumer_gone, memory_order_relaxed) ||
        (nfull == 0 && atomic_load_explicit(&r->starved, memory_order_relaxed))) {
        atomic_fetch_add_explicit(&h->lost_events, 1, memory_order_relaxed);
        return -EAGAIN;
    }
    uint64_t t0 = ht_now_ns(), hb_ts = t0, full_ts = t0;
    uint64_t hb = atomic_load_explicit(&h->heartbeat, memory_order_acquire);
    int rc = -EAGAIN;
    for (unsigned spins = 0;; spins++) {
        // Spin briefly (the consumer may be mid-poll), then give the CPU
        // away, then sleep: a slow collector on a busy box must not be
        // starved by the threads it is waiting for.
        if (spins < 64)
            ht_cpu_relax();
        else if (spins < 256)
            sched_yield();
        else
            ring_sleep_ns(spins < 1024 ? 20000 : 200000);
        if (ring_try_claim(r, w, ts, &nfull) == 0) {
            rc = 0;
            break;
        }
        uint64_t now = ht_now_ns();
        if (nfull)
            full_ts = now;
        else if (atomic_load_explicit(&r->starved, memory_order_relaxed) ||
                 now - full_ts > HT_RING_STARVE_NS) {
            // Nothing for the consumer to free: waiting would last as long
            // as the owners sleep.
            atomic_store_explicit(&r->starved, 1, memory_order_relaxed);
            atomic_fetch_add_explicit(&h->lost_events, 1, memory_order_relaxed);
            break;
        }
        uint64_t hb2 = atomic_load_explicit(&h->heartbeat, memory_order_acquire);
        if (hb2 != hb) {
            hb = hb2;
            hb_ts = now;
        } else if (now - hb_ts > HT_RING_CONSUMER_TIMEOUT_NS) {
            // A dead collector must never hang the program: from now on a
            // full ring drops (claims still succeed when buffers free up).
            atomic_store_explicit(&h->consumer_gone, 1, memory_order_relaxed);
            atomic_fetch_add_explicit(&h->lost_events, 1, memory_order_relaxed);
            break;
        }
        if (atomic_load_explicit(&h->consumer_gone, memory_order_relaxed)) {
            atomic_fetch_add_explicit(&h->lost_events, 1, memory_order_relaxed);
            break;
        }
    }
    atomic_fetch_add_explicit(&h->waits, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->wait_ns, ht_now_ns() - t0, memory_order_relaxed);
    return rc;
}

void
ht_ring_writer_release(ht_ring_t *r, ht_ring_writer_t *w)
{
    if (w->buf < 0)
        return;
    ht_ring_writer_commit(r, w);
    atomic_store_explicit(&r->bufs[w->buf].state, HT_RING_BUF_FULL, memory_order_release);
    w->buf = -1;
    // first_ts is kept: the next claim must open with a later BATCH time.
    w->enc.p = w->enc.end = NULL;
}

/* ------------------------------------------------------------------ */
/* producer: stacks */

/* Four independent lanes, folded at the end: one chain of multiplies
 * through every frame made the hash of a deep stack (python3's 40-60
 * frames) a serial walk of ~5 cycles a frame. */
static inline uint64_t
ring_stack_hash(const uint64_t *f, uint32_t n)
{
    const uint64_t m = 0xff51afd7ed558ccdull;
    uint64_t a = 0x9e3779b97f4a7c15ull ^ n, b = 0xc2b2ae3d27d4eb4full, c = 0x165667b19e3779f9ull,
             d = 0x27d4eb2f165667c5ull;
    uint32_t i = 0;
    for (; i + 4 <= n; i += 4) {
        a = (a ^ f[i]) * m;
        b = (b ^ f[i + 1]) * m;
        c = (c ^ f[i + 2]) * m;
        d = (d ^ f[i + 3]) * m;
        a ^= a >> 32;
        b ^= b >> 32;
        c ^= c >> 32;
        d ^= d >> 32;
    }
    for (; i < n; i++) {
        a = (a ^ f[i]) * m;
        a ^= a >> 32;
    }
    uint64_t h = a ^ ((b << 17) | (b >> 47)) ^ ((c << 31) | (c >> 33)) ^ ((d << 47) | (d >> 17));
    h ^= h >> 29;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 32;
    return h;
}

/* Wait for another thread to finish writing a slot. Bounded: a slot
 * stuck in WRITING is treated as not matching (at worst the same stack
 * gets a second id), never as a reason to hang. */
static uint32_t
ring_stack_wait_ready(ht_ring_stack_t *s)
{
    uint32_t st;
    for (unsigned i = 0; i < 100000; i++) {
        st = atomic_load_explicit(&s->state, memory_order_acquire);
        if (st != HT_RING_STACK_WRITING)
            return st;
        if (i < 64)
            ht_cpu_relax();
        else
            sched_yield();
    }
    return HT_RING_STACK_WRITING;
}

uint64_t
ht_ring_stack_intern(ht_ring_t *r, const uint64_t *frames, uint32_t n)
{
    ht_ring_hdr_t *h = r->hdr;
    if (n == 0)
        return 0;
    if (n > HT_TF_MAX_FRAMES)
        n = HT_TF_MAX_FRAMES;
    uint64_t hash = ring_stack_hash(frames, n);
    uint32_t cap = r->stack_cap;
    // The default capacity is a power of two: a mask, not a division.
    uint32_t idx = (uint32_t)((cap & (cap - 1)) == 0 ? hash & (cap - 1) : hash % cap);
    uint32_t probes = cap < RING_STACK_MAX_PROBE ? cap : RING_STACK_MAX_PROBE;
    for (uint32_t k = 0; k < probes; k++, idx = idx + 1 == cap ? 0 : idx + 1) {
        ht_ring_stack_t *s = &r->stacks[idx];
        if (HT_UNLIKELY(ring_back_stack(r, idx) < 0))
            break; // counted as dropped below
        uint32_t st = atomic_load_explicit(&s->state, memory_order_acquire);
        if (st == HT_RING_STACK_EMPTY) {
            if (atomic_compare_exchange_strong_explicit(&s->state, &st, HT_RING_STACK_WRITING,
                                                        memory_order_acquire,
                                                        memory_order_acquire)) {
                uint64_t off = atomic_fetch_add_explicit(&h->frames_used, (uint64_t)n + 1,
                                                         memory_order_relaxed);
                s->hash = hash;
                if (off + n + 1 > r->frames_cap || ring_back_frames(r, off + n + 1) < 0) {
                    // Pool exhausted (or its pages cannot be had): leave a
                    // dead slot (no frames can match nframes 0) so probe
                    // chains through it stay intact.
                    s->nframes = 0;
                    s->frames_off = 0;
                    atomic_store_explicit(&s->state, HT_RING_STACK_READY, memory_order_release);
                    atomic_fetch_add_explicit(&h->stacks_dropped, 1, memory_order_relaxed);
                    return 0;
                }
                r->frames[off] = RING_LOG_WORD(idx, n);
                memcpy(&r->frames[off + 1], frames, (size_t)n * sizeof(uint64_t));
                s->nframes = n;
                s->frames_off = off + 1;
                atomic_store_explicit(&s->state, HT_RING_STACK_READY, memory_order_release);
                atomic_fetch_add_explicit(&h->stacks_used, 1, memory_order_relaxed);
                return (uint64_t)idx + 1;
            }
            // Lost the race: st now holds what the winner made of it.
        }
        if (st == HT_RING_STACK_WRITING)
            st = ring_stack_wait_ready(s);
        if (st == HT_RING_STACK_READY && s->hash == hash && s->nframes == n &&
            memcmp(&r->frames[s->frames_off], frames, (size_t)n * sizeof(uint64_t)) == 0)
            return (uint64_t)idx + 1;
    }
    atomic_fetch_add_explicit(&h->stacks_dropped, 1, memory_order_relaxed);
    return 0;
}

int
ht_ring_stacks_copy(ht_ring_t *dst, const ht_ring_t *src)
{
    const ht_ring_hdr_t *sh = src->hdr;
    ht_ring_hdr_t *dh = dst->hdr;
    if (src->stack_cap != dst->stack_cap || src->frames_cap > dst->frames_cap)
        return -EINVAL;
    uint64_t end = atomic_load_explicit(&sh->frames_used, memory_order_acquire);
    if (end > src->frames_cap)
        end = src->frames_cap;
    if (ring_back_frames(dst, end) < 0)
        end = 0; // no room for the parent's stacks: the child starts without
    uint64_t off = 0, copied = 0;
    while (off < end) {
        uint64_t word = src->frames[off];
        uint64_t idx1 = word & 0xffffffffu, n = word >> 32;
        // A zero or impossible word is an entry another thread had reserved
        // but not yet written when the parent forked: nothing after it can
        // be located, so the copy stops there.
        if (idx1 == 0 || idx1 > src->stack_cap || n == 0 || n > HT_TF_MAX_FRAMES ||
            off + 1 + n > end)
            break;
        const ht_ring_stack_t *ss = &src->stacks[idx1 - 1];
        ht_ring_stack_t *ds = &dst->stacks[idx1 - 1];
        if (ring_back_stack(dst, (uint32_t)(idx1 - 1)) < 0)
            break;
        memcpy(&dst->frames[off], &src->frames[off], (size_t)(n + 1) * sizeof(uint64_t));
        uint32_t st = atomic_load_explicit(&ss->state, memory_order_acquire);
        ds->hash = ss->hash;
        if (st == HT_RING_STACK_READY && ss->frames_off == off + 1 && ss->nframes == n) {
            ds->nframes = (uint32_t)n;
            ds->frames_off = off + 1;
            copied++;
        } else {
            // Half-written in the parent: dead in the child.
            ds->nframes = 0;
            ds->frames_off = 0;
        }
        atomic_store_explicit(&ds->state, HT_RING_STACK_READY, memory_order_relaxed);
        off += 1 + n;
    }
    atomic_store_explicit(&dh->frames_used, off, memory_order_relaxed);
    atomic_store_explicit(&dh->stacks_used, copied, memory_order_release);
    return 0;
}

/* ------------------------------------------------------------------ */
/* consumer */

/* Per-poll scratch, allocated behind the cursors in one block so that the
 * public consumer struct stays as ring.h defines it. */
typedef struct ring_pend_s {
    uint32_t idx;
    uint32_t committed;
    uint32_t full; /* state was FULL before committed was read */
    uint32_t tid;
    uint64_t batch_ts;
} ring_pend_t;

typedef struct ring_scratch_s {
    ht_tf_dec_t dec;
    ring_pend_t pend[]; /* nbufs */
} ring_scratch_t;

static inline ring_scratch_t *
ring_scratch(ht_ring_consumer_t *c)
{
    return (ring_scratch_t *)HT_ALIGN_UP(
        (uintptr_t)(c->cur + c->ring->nbufs), (uintptr_t)_Alignof(ring_scratch_t));
}

int
ht_ring_consumer_init(ht_ring_consumer_t *c, ht_ring_t *r)
{
    memset(c, 0, sizeof *c);
    size_t n = r->nbufs;
    size_t bytes = n * sizeof(ht_ring_cursor_t) + _Alignof(ring_scratch_t) +
                   sizeof(ring_scratch_t) + n * sizeof(ring_pend_t);
    c->cur = calloc(1, bytes);
    if (!c->cur)
        return -ENOMEM;
    c->ring = r;
    return 0;
}

void
ht_ring_consumer_fini(ht_ring_consumer_t *c)
{
    free(c->cur);
    c->cur = NULL;
}

static void
ring_buf_recycle(ht_ring_t *r, ht_ring_cursor_t *cur, uint32_t i)
{
    memset(cur, 0, sizeof *cur);
    atomic_store_explicit(&r->bufs[i].committed, 0, memory_order_relaxed);
    // Release: the zeroed committed is visible before a producer can claim.
    atomic_store_explicit(&r->bufs[i].state, HT_RING_BUF_FREE, memory_order_release);
}

/* Order of delivery: buffers by their opening BATCH time (strictly
 * increasing per writer, so a thread's records still come out in the order
 * it wrote them). Oldest first across threads keeps a poll that stops at
 * its budget from reading one thread far ahead of another: the reader can
 * only apply records older than what is left unread (the floor), so a
 * thread read ahead waits in its queue. Reading each thread's backlog by
 * a budget of its own let two threads drift apart by seconds, and the
 * collector held and re-sorted 450,000 records at every poll (churn_mt
 * --all: 149M record visits for 8M records). */
static int
ring_pend_before(const ring_pend_t *a, const ring_pend_t *b)
{
    if (a->batch_ts != b->batch_ts)
        return a->batch_ts < b->batch_ts;
    return a->tid < b->tid;
}

long
ht_ring_consume(ht_ring_consumer_t *c, ht_ring_rec_cb cb, void *ctx)
{
    ht_ring_t *r = c->ring;
    ht_ring_hdr_t *h = r->hdr;
    ring_scratch_t *sc = ring_scratch(c);
    uint32_t nbufs = r->nbufs, npend = 0;
    long delivered = 0;

    atomic_fetch_add_explicit(&h->heartbeat, 1, memory_order_release);
    c->floor = UINT64_MAX;

    // Phase 1: states. Phase 2: committed lengths. Reading every state
    // before any length guarantees that when a thread's later buffer is
    // seen owned, its earlier one (already FULL then) is read to its final
    // length in this same poll -- so per-thread order survives a poll that
    // sees both.
    for (uint32_t i = 0; i < nbufs; i++) {
        uint32_t st = atomic_load_explicit(&r->bufs[i].state, memory_order_acquire);
        if (st == HT_RING_BUF_OWNED || st == HT_RING_BUF_FULL) {
            sc->pend[npend].idx = i;
            sc->pend[npend].full = (st == HT_RING_BUF_FULL);
            npend++;
        }
    }
    c->busy = npend;
    uint32_t keep = 0;
    for (uint32_t k = 0; k < npend; k++) {
        ring_pend_t p = sc->pend[k];
        ht_ring_cursor_t *cur = &c->cur[p.idx];
        uint32_t len = atomic_load_explicit(&r->bufs[p.idx].committed, memory_order_acquire);
        if (len > r->buf_size) {
            c->bad_records++;
            len = cur->consumed; // nonsense from the other side: read nothing more
        }
        if (len <= cur->consumed) {
            if (p.full)
                ring_buf_recycle(r, cur, p.idx);
            continue;
        }
        p.committed = len;
        const uint8_t *base = r->data + (size_t)p.idx * r->buf_size;
        if (cur->consumed == 0) {
            // Fresh buffer: its BATCH names the thread and the time base.
            ht_tf_rec_t rec;
            ht_tf_dec_init(&sc->dec, base, len);
            if (ht_tf_dec_next(&sc->dec, &rec) != 1 || rec.kind != HT_TF_BATCH) {
                c->bad_records++;
                cur->consumed = len;
                if (p.full)
                    ring_buf_recycle(r, cur, p.idx);
                continue;
            }
            cur->pid = (uint32_t)rec.pid;
            cur->tid = (uint32_t)rec.tid;
            cur->last_ts = rec.ts;
            cur->consumed = (uint32_t)(sc->dec.p - base);
            p.tid = cur->tid;
            p.batch_ts = rec.ts;
        } else {
            p.tid = cur->tid;
            p.batch_ts = 0; // set below from the BATCH, which is still there
            ht_tf_rec_t rec;
            ht_tf_dec_init(&sc->dec, base, len);
            if (ht_tf_dec_next(&sc->dec, &rec) == 1 && rec.kind == HT_TF_BATCH)
                p.batch_ts = rec.ts;
        }
        // Insertion sort: usually only a handful of buffers move per poll.
        uint32_t j = keep++;
        while (j > 0 && ring_pend_before(&p, &sc->pend[j - 1])) {
            sc->pend[j] = sc->pend[j - 1];
            j--;
        }
        sc->pend[j] = p;
    }

    // The budget stops the poll as a whole: what is left unread (the rest
    // of this buffer, every buffer after it) bounds the floor below.
    uint64_t read_bytes = 0;
    for (uint32_t k = 0; k < keep; k++) {
        ring_pend_t *p = &sc->pend[k];
        ht_ring_cursor_t *cur = &c->cur[p->idx];
        const uint8_t *base = r->data + (size_t)p->idx * r->buf_size;
        ht_tf_dec_init(&sc->dec, base + cur->consumed, p->committed - cur->consumed);
        sc->dec.last_ts = cur->last_ts;
        int stop = 0;
        for (;;) {
            if (c->budget && read_bytes >= c->budget && sc->dec.p < sc->dec.end) {
                stop = 1;
                break;
            }
            const uint8_t *at = sc->dec.p;
            ht_tf_rec_t rec;
            int rc = ht_tf_dec_next(&sc->dec, &rec);
            if (rc == 0)
                break;
            if (rc < 0 || rec.kind == HT_TF_BATCH) {
                // Committed bytes are whole records by contract, and a BATCH
                // only opens a buffer: anything else means the program
                // scribbled on the ring. Skip what is left of this buffer.
                c->bad_records++;
                sc->dec.p = sc->dec.end;
                break;
            }
            rec.pid = cur->pid;
            if (rec.kind != HT_TF_THREAD && rec.kind != HT_TF_THREAD_END &&
                rec.kind != HT_TF_TOTALS)
                rec.tid = cur->tid;
            cur->consumed = (uint32_t)(sc->dec.p - base);
            cur->last_ts = sc->dec.last_ts;
            read_bytes += (uint64_t)(sc->dec.p - at);
            delivered++;
            if (cb(ctx, &rec)) {
                stop = 1;
                break;
            }
        }
        cur->consumed = (uint32_t)(sc->dec.p - base);
        cur->last_ts = sc->dec.last_ts;
        if (p->full && cur->consumed >= p->committed)
            ring_buf_recycle(r, cur, p->idx);
        if (stop) {
            // What is left unread: this buffer from its last record on,
            // and every buffer after it.
            if (cur->consumed < p->committed && cur->last_ts < c->floor)
                c->floor = cur->last_ts;
            for (uint32_t q = k + 1; q < keep; q++) {
                const ring_pend_t *o = &sc->pend[q];
                uint64_t lo = c->cur[o->idx].consumed ? c->cur[o->idx].last_ts : o->batch_ts;
                if (lo < c->floor)
                    c->floor = lo;
            }
            break;
        }
    }
    return delivered;
}

const uint64_t *
ht_ring_stack_get(const ht_ring_t *r, uint64_t id, uint32_t *n)
{
    if (id == 0 || id > r->stack_cap)
        return NULL;
    const ht_ring_stack_t *s = &r->stacks[id - 1];
    if (atomic_load_explicit(&s->state, memory_order_acquire) != HT_RING_STACK_READY)
        return NULL;
    uint32_t nf = s->nframes;
    uint64_t off = s->frames_off;
    if (nf == 0 || nf > HT_TF_MAX_FRAMES || off > r->frames_cap ||
        nf > r->frames_cap - off)
        return NULL;
    *n = nf;
    return &r->frames[off];
}
