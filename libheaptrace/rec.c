/*
 * libheaptrace/rec.c -- the recorder's slow paths (contract: rec.h).
 *
 * Everything here runs inside someone else's malloc: no malloc of our own
 * (the guard makes any that libunwind or the loader does pass through),
 * no stdio, errno preserved, and every failure degrades to "not recorded".
 */
#include "libheaptrace/rec.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <sys/mman.h>
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define UNW_LOCAL_ONLY
#include <libunwind.h>

#include "libheaptrace/boot.h"
#include "libheaptrace/clock.h"
#include "libheaptrace/log.h"
#include "libheaptrace/modules.h"
#include "libheaptrace/sample.h"
#include "libheaptrace/unwind.h"

/* One cache line for the fast path's fields, whatever the TLS layout. */
HT_TLS ht_rec_tls_t ht_rec_tls __attribute__((aligned(64)));
_Atomic int ht_rec_state = HT_REC_PENDING;

/* Frames below the caller of the interposed function: the slow path, the
 * inline fast path (if not inlined) and the interposer itself. */
#define REC_SKIP_MAX 16

static ht_ring_t *rec_ring;
static uint64_t rec_rate;   /* 0: every allocation */
static uint32_t rec_depth;
/* Bumped by every ht_rec_start: a thread whose gen differs sets itself up
 * again (new ring, or a forked child). */
static _Atomic uint64_t rec_gen;
static _Atomic uint64_t rec_mod_check_ts;
static _Atomic uint64_t rec_dlopen_ts;
static pthread_key_t rec_key;
static int rec_key_ok;

/*
 * Event times. Only the order of two threads' events needs the precise
 * clock: a free in one thread and the malloc that hands the address to
 * another (collector.c). While one thread alone records, its buffer order
 * is the order, and the coarse clock serves the report's times (the file
 * keeps 1 ms anyway) for 3.5 ns instead of 27 a reading: an event or two
 * per malloc/free pair, ~10% of a single-threaded --all run. The second
 * thread to record sets rec_mt before its first time is taken; from then
 * on every thread reads the precise clock. That is enough: an event of
 * another thread that depends on one of the new thread's (it got an
 * address that thread freed) comes after it through the allocator's own
 * synchronization, and so sees rec_mt; one that the new thread's event
 * depends on (it freed a block the other allocated) was stamped earlier
 * by a clock that is never ahead of the precise one. (Nearly: a writer
 * that claims several ring buffers within one tick opens each a
 * nanosecond later than the last, ring.c, so its times can run ahead by
 * as many nanoseconds as it claimed buffers in that tick -- a few dozen
 * at most, far less than any hand-off of an address between two threads
 * through our slow paths takes.) A process starts over single-threaded at
 * ht_rec_start (init, fork child).
 */
static _Atomic int rec_mt;
static _Atomic uint32_t rec_nthreads; /* threads that recorded in this generation */

static inline uint64_t
rec_now(ht_rec_tls_t *t)
{
    if (atomic_load_explicit(&rec_mt, memory_order_acquire))
        return ht_clock_ns();
    uint64_t c = ht_clock_coarse_ns();
    if (c < t->coarse_last)
        c = t->coarse_last; // never backwards within the thread
    t->coarse_last = c;
    return c;
}

/* Registry of live threads' TLS, so that exit can write everyone's
 * totals. A reader marks a slot busy (low bit) while it reads, and a
 * thread leaving waits for that before its TLS can go away. */
static _Atomic uintptr_t rec_threads[HT_REC_MAX_THREADS];

/* ------------------------------------------------------------------ */

static void
rec_thread_register(ht_rec_tls_t *t)
{
    for (uint32_t i = 0; i < HT_REC_MAX_THREADS; i++) {
        uintptr_t z = 0;
        if (atomic_load_explicit(&rec_threads[i], memory_order_relaxed) == 0 &&
            atomic_compare_exchange_strong_explicit(&rec_threads[i], &z, (uintptr_t)t,
                                                    memory_order_release,
                                                    memory_order_relaxed)) {
            t->registered = 1;
            return;
        }
    }
}

static void
rec_thread_unregister(ht_rec_tls_t *t)
{
    if (!t->registered)
        return;
    for (uint32_t i = 0; i < HT_REC_MAX_THREADS; i++) {
        for (;;) {
            uintptr_t v = atomic_load_explicit(&rec_threads[i], memory_order_acquire);
            if ((v & ~(uintptr_t)1) != (uintptr_t)t)
                break;
            if (v & 1) { // exit is reading our totals right now
                ht_cpu_relax();
                continue;
            }
            if (atomic_compare_exchange_weak_explicit(&rec_threads[i], &v, 0,
                                                      memory_order_acq_rel,
                                                      memory_order_relaxed)) {
                t->registered = 0;
                return;
            }
        }
    }
}

static inline int
rec_put_ok(ht_ring_writer_t *w, size_t need, uint64_t ts)
{
    return ht_ring_writer_reserve(rec_ring, w, need, ts) == 0;
}

static void
rec_put_totals(ht_rec_tls_t *t, uint64_t ts, uint32_t tid, const ht_rec_tls_t *of)
{
    if (!rec_put_ok(&t->w, HT_TF_MAX_FIXED_REC, ts))
        return;
    if (ht_tf_put_totals(&t->w.enc, ts, tid, of->allocs, of->alloc_bytes, of->frees,
                         of->free_bytes) == 0)
        ht_ring_writer_commit(rec_ring, &t->w);
}

/* Write THREAD (tid, name) if the name is not the one last written: a
 * thread is usually named after it starts, so this runs again at its end. */
static void
rec_thread_name(ht_rec_tls_t *t, uint64_t ts)
{
    char name[sizeof t->name];
    // For the calling thread glibc reads the name with prctl: no malloc.
    if (pthread_getname_np(pthread_self(), name, sizeof name) != 0)
        name[0] = '\0';
    if (t->name[0] && strcmp(name, t->name) == 0)
        return;
    memcpy(t->name, name, sizeof name);
    if (rec_put_ok(&t->w, HT_TF_MAX_FIXED_REC + sizeof name, ts) &&
        ht_tf_put_thread(&t->w.enc, ts, t->w.tid, name, (uint32_t)strlen(name)) == 0)
        ht_ring_writer_commit(rec_ring, &t->w);
}

/* First event of a thread in the current ring. */
static void
rec_thread_setup(ht_rec_tls_t *t, uint64_t ts, int keep_writer)
{
    uint32_t tid = (uint32_t)syscall(SYS_gettid);
    t->gen = atomic_load_explicit(&rec_gen, memory_order_acquire);
    if (!keep_writer) {
        // The writer of a previous ring (or of the parent, after fork) is
        // stale: never release its buffer into this one.
        memset(&t->w, 0, sizeof t->w);
        t->w.buf = -1;
        t->w.tid = tid;
    }
    if (!t->rng)
        t->rng = ht_sample_seed(tid, ts ^ (uintptr_t)t);
    t->countdown = ht_sample_next(&t->rng, rec_rate);
    t->tot_allocs_at = t->allocs;
    t->tot_ts = ts;
    t->hk_next = 0;
    if (!t->registered)
        rec_thread_register(t);
    if (rec_key_ok && !t->ended)
        pthread_setspecific(rec_key, (void *)1);
    t->name[0] = '\0';
    rec_thread_name(t, ts);
}

/* MEMSTAT with the allocator's view (the collector adds the kernel's:
 * RSS and the rest stay 0 here). mallinfo2 walks the free lists under the
 * arenas' locks, hence the rate limit on the slow path. */
static _Atomic uint64_t rec_memstat_ts;

static void
rec_put_memstat(ht_rec_tls_t *t, uint64_t ts)
{
    struct mallinfo2 (*fn)(void) = ht_real.mallinfo2;
    if (!fn)
        return;
    struct mallinfo2 mi = fn();
    if (rec_put_ok(&t->w, HT_TF_MAX_FIXED_REC, ts) &&
        ht_tf_put_memstat(&t->w.enc, ts, 0, 0, 0, 0, 0, mi.fordblks, mi.arena + mi.hblkhd) == 0)
        ht_ring_writer_commit(rec_ring, &t->w);
}

/* Housekeeping after an event: periodic totals, module changes, and the
 * flush of a thread that has already ended (nobody would release its
 * buffer later). */
static void
rec_after_event(ht_rec_tls_t *t, uint64_t ts)
{
    // The common case, one compare of times: nothing is due before
    // hk_next, the earliest of this thread's next TOTALS and the shared
    // module poll and MEMSTAT as last seen. Another thread doing those
    // moves them later, so a stale hk_next only makes the check below
    // come early.
    if (HT_LIKELY(ts < t->hk_next) &&
        HT_LIKELY(t->allocs - t->tot_allocs_at < HT_REC_TOTALS_EVERY_ALLOCS) && !t->ended)
        return;
    if (t->allocs - t->tot_allocs_at >= HT_REC_TOTALS_EVERY_ALLOCS ||
        ts - t->tot_ts >= HT_REC_TOTALS_EVERY_NS) {
        rec_put_totals(t, ts, t->w.tid, t);
        t->tot_allocs_at = t->allocs;
        t->tot_ts = ts;
    }
    uint64_t mod = atomic_load_explicit(&rec_mod_check_ts, memory_order_relaxed);
    if (ts - mod >= HT_REC_MODULE_POLL_NS &&
        atomic_compare_exchange_strong_explicit(&rec_mod_check_ts, &mod, ts,
                                                memory_order_relaxed, memory_order_relaxed)) {
        mod = ts;
        if (ht_modules_changed())
            ht_modules_scan(rec_ring, &t->w, ts, false);
    }
    uint64_t ms = atomic_load_explicit(&rec_memstat_ts, memory_order_relaxed);
    if (ts - ms >= HT_REC_MEMSTAT_EVERY_NS &&
        atomic_compare_exchange_strong_explicit(&rec_memstat_ts, &ms, ts,
                                                memory_order_relaxed, memory_order_relaxed)) {
        ms = ts;
        rec_put_memstat(t, ts);
    }
    // A failed CAS left the value another thread stored in mod or ms.
    uint64_t next = t->tot_ts + HT_REC_TOTALS_EVERY_NS;
    if (mod + HT_REC_MODULE_POLL_NS < next)
        next = mod + HT_REC_MODULE_POLL_NS;
    if (ms + HT_REC_MEMSTAT_EVERY_NS < next)
        next = ms + HT_REC_MEMSTAT_EVERY_NS;
    t->hk_next = next;
    if (t->ended)
        ht_ring_writer_release(rec_ring, &t->w);
}

/* Frame scratch, one per thread, mapped at the thread's first sample and
 * unmapped at its end. Not on the stack: malloc is also called on small
 * stacks -- a thread made with PTHREAD_STACK_MIN (16 KiB), a signal handler
 * on an 8 KiB alternate stack -- and 8 KiB of frames there crashed the
 * program (thread) or silently overwrote the memory below the alternate
 * stack (handler). unw_backtrace writes into it and the stack is interned
 * straight from it, without a copy. */
#define REC_FRAMES_CAP (HT_TF_MAX_FRAMES + REC_SKIP_MAX)
/* After thread end (nothing would unmap a new buffer) or when mmap failed:
 * a short backtrace from a small on-stack array. */
#define REC_FRAMES_SMALL 32
#define REC_FRAMES_NONE ((void **)1)
/* The thread's recent stacks (rec_intern), after the unwinder's memo. */
#define REC_SC_LG 8
/* Frames the second slot of a stack is chosen by (rec_intern). */
#define REC_SC_DEEP 8
typedef struct rec_sc_s {
    const uint64_t *frames; /* the ring's copy, read-only once interned */
    uint64_t id, gen;
    uint32_t n;
} rec_sc_t;
#define REC_FRAMES_MAP                                                                           \
    (REC_FRAMES_CAP * sizeof(void *) + HT_UNWIND_MEMO_BYTES + (sizeof(rec_sc_t) << REC_SC_LG))
_Static_assert(REC_FRAMES_CAP <= HT_UNWIND_MEMO_FRAMES, "the memo covers the deepest walk");
_Static_assert(sizeof(void *) == sizeof(uint64_t), "frames are unwound in place as uint64_t");
static HT_TLS void **rec_frames;
static HT_TLS rec_sc_t *rec_sc; /* in the same mapping; NULL without one */

static void **
rec_frames_get(const ht_rec_tls_t *t)
{
    if (HT_LIKELY(rec_frames != NULL))
        return rec_frames == REC_FRAMES_NONE ? NULL : rec_frames;
    if (t->ended)
        return NULL;
    // A system call, once per thread, like the gettid of its setup. The
    // unwinder's memo of the thread's previous walk follows the frames.
    void *m = mmap(NULL, REC_FRAMES_MAP, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                   -1, 0);
    if (m == MAP_FAILED) {
        rec_frames = REC_FRAMES_NONE;
        return NULL;
    }
    rec_frames = (void **)m;
    ht_unwind_memo_set((char *)m + REC_FRAMES_CAP * sizeof(void *));
    rec_sc = (rec_sc_t *)((char *)m + REC_FRAMES_CAP * sizeof(void *) + HT_UNWIND_MEMO_BYTES);
    return rec_frames;
}

static void
rec_frames_release(void)
{
    if (rec_frames && rec_frames != REC_FRAMES_NONE) {
        ht_unwind_memo_set(NULL);
        rec_sc = NULL;
        munmap(rec_frames, REC_FRAMES_MAP);
    }
    rec_frames = REC_FRAMES_NONE;
}

/* Backtrace of the program into buf (cap entries); *out points at its
 * leaf (the allocator's caller) inside buf. Returns the frame count. */
static uint32_t
rec_unwind(ht_rec_tls_t *t, void **buf, uint32_t cap, void *caller, const uint64_t **out)
{
    // Straight from the program's frame when the interposer named it
    // (ht_rec_alloc_fp): the same frames, without walking ours first. Its
    // return address slot must hold `caller`, or the frame is not what we
    // think it is.
    void **fp = t->walk_fp;
    t->walk_fp = NULL;
    if (fp && caller && fp[1] == caller) {
        int n = ht_unwind_backtrace_from(buf, (int)(rec_depth < cap ? rec_depth : cap), fp + 1,
                                         (uintptr_t)fp[0]);
        if (n > 0) {
            *out = (const uint64_t *)buf;
            return (uint32_t)n;
        }
    }
    uint32_t want = rec_depth + REC_SKIP_MAX;
    // Same frames as unw_backtrace, from a lock-free per-IP rule cache
    // (unwind.h); HEAPTRACE_UNWIND=libunwind for the old path.
    int n = ht_unwind_backtrace(buf, (int)(want < cap ? want : cap));
    if (n <= 0)
        return 0;
    // Cut the shim's frames: everything below the interposed function's
    // return address. unw_backtrace reports return addresses as they are,
    // so the caller's frame shows exactly `caller`.
    int skip = 0;
    if (caller) {
        for (int i = 0; i < n && i < REC_SKIP_MAX; i++) {
            if (buf[i] == caller) {
                skip = i;
                break;
            }
        }
    }
    uint32_t m = (uint32_t)(n - skip);
    if (m > rec_depth)
        m = rec_depth;
    *out = (const uint64_t *)(buf + skip);
    return m;
}

/* The thread's last interned stack: programs allocate from one call
 * site again and again (loops), and comparing the new trace with the last
 * one -- leaf first, so a different site differs at once -- is cheaper
 * than hashing it and probing the shared table. The frames compared are
 * the table's own copy in the ring (written once, read-only after READY),
 * so a miss costs no copy. Valid for the ring generation it was made in
 * (a forked child's ring keeps the parent's ids, but a new ring need
 * not). */
static HT_TLS rec_sc_t rec_last;

/* Two traces of n frames alike? Leaf first; a loop, not memcmp: traces
 * are a few words, which a call and its size dispatch cost more than. */
static inline int
rec_frames_eq(const uint64_t *a, const uint64_t *b, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        if (a[i] != b[i])
            return 0;
    return 1;
}

/* Is e (rec_last or a slot of rec_sc) the stack frames[0..n) of this
 * thread's ring generation? */
static inline int
rec_sc_hit(const rec_sc_t *e, const ht_rec_tls_t *t, const uint64_t *frames, uint32_t n)
{
    return e->n == n && e->gen == t->gen && e->frames && rec_frames_eq(e->frames, frames, n);
}

static inline uint64_t
rec_intern(const ht_rec_tls_t *t, const uint64_t *frames, uint32_t n)
{
    if (n == 0)
        return 0;
    if (n > HT_TF_MAX_FRAMES)
        n = HT_TF_MAX_FRAMES; // as ht_ring_stack_intern cuts
    if (rec_sc_hit(&rec_last, t, frames, n))
        return rec_last.id;
    // Then the thread's recent stacks, compared whole: the shared table is
    // tens of MB, and a probe there is a cache and TLB miss (python3's
    // stacks change at nearly every allocation, among a few thousand).
    // The slot is chosen by depth and the two leaf frames, and when that
    // one holds another stack, a second by REC_SC_DEEP frames: a program's
    // allocation wrappers (sqlite3Malloc and co.) make most of its stacks
    // alike at the leaves. With the first slot alone, sqlite3 --all went
    // to the shared table for 72% of its allocations (842,255 of
    // 1,162,857, callgrind on a third of the bench session); with both,
    // for 546, and python3 for 25,675 of 554,981 instead of 72,693. Eight
    // frames hashed for every lookup did as well for sqlite3 but cost
    // python3 and realloc_parse 2-3% of the shim's instructions; this
    // costs them nothing.
    rec_sc_t *e = NULL, *e2 = NULL;
    if (rec_sc) {
        uint64_t k = (frames[0] ^ (frames[n > 1] * 0x9e3779b97f4a7c15ull) ^ n) *
                     0xff51afd7ed558ccdull;
        e = &rec_sc[k >> (64 - REC_SC_LG)];
        if (rec_sc_hit(e, t, frames, n)) {
            rec_last = *e;
            return e->id;
        }
        if (n > 2) {
            for (uint32_t i = 2; i < n && i < REC_SC_DEEP; i++)
                k = (k ^ frames[i]) * 0x9e3779b97f4a7c15ull;
            k = (k ^ (k >> 29)) * 0xff51afd7ed558ccdull;
            e2 = &rec_sc[k >> (64 - REC_SC_LG)];
            if (rec_sc_hit(e2, t, frames, n)) {
                rec_last = *e2;
                return e2->id;
            }
        }
    }
    uint64_t id = ht_ring_stack_intern(rec_ring, frames, n);
    uint32_t m = 0;
    const uint64_t *f = id ? ht_ring_stack_get(rec_ring, id, &m) : NULL;
    if (f && m == n) {
        const rec_sc_t v = {f, id, t->gen, n};
        rec_last = v;
        if (e)
            *e = v;
        if (e2)
            *e2 = v;
    }
    return id;
}

/* An allocation's record; with `from`, a realloc's under --all: `from`
 * freed at from_ts, p allocated at ts, in one REALLOC record. */
static void
rec_record_alloc(ht_rec_tls_t *t, void *p, uint64_t size, uint64_t weight, void *caller,
                 uint64_t ts, const void *from, uint64_t from_ts)
{
    void *small[REC_FRAMES_SMALL];
    void **buf = rec_frames_get(t);
    uint32_t cap = REC_FRAMES_CAP;
    if (!buf) {
        buf = small;
        cap = REC_FRAMES_SMALL;
    }
    const uint64_t *frames = NULL;
    uint32_t n = rec_unwind(t, buf, cap, caller, &frames);
    uint64_t stack = rec_intern(t, frames, n);
    if (!rec_put_ok(&t->w, HT_TF_MAX_FIXED_REC, ts))
        return;
    if (rec_rate == 0) {
        // --all: every allocation is recorded, so the collector's set of
        // live pointers is the whole truth and the shim keeps none: it
        // only marks the page, so that frees there take the slow path.
        ht_live_mark(p);
    } else if (ht_live_insert(p, size) != 0) {
        // Cannot track its free: recording the alloc would make a false
        // leak, so drop it and say so.
        atomic_fetch_add_explicit(&rec_ring->hdr->lost_events, 1, memory_order_relaxed);
        return;
    }
    // rec_put_ok reserved a whole fixed record: the unchecked encoders.
    if (from)
        ht_tf_put_realloc_reserved(&t->w.enc, from_ts, (uintptr_t)from, (uintptr_t)p, size,
                                   stack, ts > from_ts ? ts - from_ts : 0);
    else
        ht_tf_put_alloc_reserved(&t->w.enc, ts, (uintptr_t)p, size, stack, weight);
    ht_ring_writer_commit(rec_ring, &t->w);
}

static void
rec_record_free(ht_rec_tls_t *t, void *p, uint64_t ts)
{
    if (rec_put_ok(&t->w, HT_TF_MAX_FIXED_REC, ts)) {
        ht_tf_put_free_reserved(&t->w.enc, ts, (uintptr_t)p);
        ht_ring_writer_commit(rec_ring, &t->w);
    }
}

/*
 * Fork gate: fork's prepare handler waits until no thread is inside a slow
 * path and keeps new ones out, so that no thread holds a lock of libunwind,
 * the loader or ours at the moment of the fork -- such a lock stays taken
 * forever in the child, whose only thread then unwinds (seen: a forked
 * child hung in libunwind's mutex).
 *
 * A registered thread announces itself in its own TLS (in_slow), so the
 * slow paths of different threads share no cache line; the fork scans the
 * registry. Both sides use the store-fence-load (Dekker) pattern around
 * rec_fork_pending. Threads not in the registry (more than
 * HT_REC_MAX_THREADS, or not set up yet) count in a shared counter.
 */
static _Atomic int rec_fork_pending;
static _Atomic int64_t rec_gate_shared;
/* With membarrier(2) registered, the fork side forces the full barrier on
 * every running thread, and a slow path needs only a compiler barrier
 * between its flag store and its load -- an mfence less per event, twice
 * per malloc/free pair in --all mode. Registration is per address space:
 * redone after fork. */
static int rec_membarrier_ok;

static void
rec_membarrier_register(void)
{
    rec_membarrier_ok =
        syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
}

static void
rec_gate_wait(void)
{
    for (unsigned spins = 0; atomic_load_explicit(&rec_fork_pending, memory_order_acquire);
         spins++)
        if (spins > 64)
            sched_yield();
}

static inline void
rec_gate_enter(ht_rec_tls_t *t)
{
    for (;;) {
        if (HT_LIKELY(t->registered)) {
            t->gate_shared = 0;
            atomic_store_explicit(&t->in_slow, 1, memory_order_relaxed);
            if (HT_LIKELY(rec_membarrier_ok))
                atomic_signal_fence(memory_order_seq_cst);
            else
                atomic_thread_fence(memory_order_seq_cst);
            if (HT_LIKELY(!atomic_load_explicit(&rec_fork_pending, memory_order_relaxed)))
                return;
            atomic_store_explicit(&t->in_slow, 0, memory_order_release);
        } else {
            t->gate_shared = 1;
            atomic_fetch_add_explicit(&rec_gate_shared, 1, memory_order_seq_cst);
            if (!atomic_load_explicit(&rec_fork_pending, memory_order_seq_cst))
                return;
            atomic_fetch_sub_explicit(&rec_gate_shared, 1, memory_order_release);
        }
        rec_gate_wait();
    }
}

static inline void
rec_gate_leave(ht_rec_tls_t *t)
{
    if (t->gate_shared)
        atomic_fetch_sub_explicit(&rec_gate_shared, 1, memory_order_release);
    else
        atomic_store_explicit(&t->in_slow, 0, memory_order_release);
}

void
ht_rec_fork_lock(void)
{
    // A fork from a signal handler that interrupted this thread's own slow
    // path would wait for itself: skip the gate then (best effort).
    if (ht_rec_tls.guard)
        return;
    atomic_store_explicit(&rec_fork_pending, 1, memory_order_seq_cst);
    atomic_thread_fence(memory_order_seq_cst);
    if (rec_membarrier_ok &&
        syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) != 0) {
        // Cannot happen once registered; if it does, readers that skipped
        // their fence may be missed: fall back to fences from now on, and
        // let a moment pass for those already past their check.
        rec_membarrier_ok = 0;
        struct timespec d = {0, 1000000};
        nanosleep(&d, NULL);
    }
    while (atomic_load_explicit(&rec_gate_shared, memory_order_acquire) != 0)
        sched_yield();
    for (uint32_t i = 0; i < HT_REC_MAX_THREADS; i++) {
        uintptr_t v = atomic_load_explicit(&rec_threads[i], memory_order_acquire);
        // Hold the slot (low bit) so the thread cannot leave while we look.
        if (!v || (v & 1) ||
            !atomic_compare_exchange_strong_explicit(&rec_threads[i], &v, v | 1,
                                                     memory_order_acquire,
                                                     memory_order_relaxed))
            continue;
        const ht_rec_tls_t *o = (const ht_rec_tls_t *)v;
        while (atomic_load_explicit(&o->in_slow, memory_order_acquire))
            sched_yield();
        atomic_store_explicit(&rec_threads[i], v, memory_order_release);
    }
}

void
ht_rec_fork_unlock(int child)
{
    if (child) {
        // The other threads are gone, and with them their slow paths.
        atomic_store_explicit(&rec_gate_shared, 0, memory_order_relaxed);
        ht_rec_tls.in_slow = 0;
    }
    atomic_store_explicit(&rec_fork_pending, 0, memory_order_release);
}

/* Common entry of every slow path: ON, not guarded, set up. Returns 0 with
 * the guard and the fork gate held (rec_leave drops both), or -1 when the
 * event is not to be recorded. *ts is the event's time: `given` if not 0,
 * else a clock reading. */
static inline int
rec_enter(ht_rec_tls_t *t, uint64_t *ts, uint64_t given)
{
    if (atomic_load_explicit(&ht_rec_state, memory_order_acquire) != HT_REC_ON || t->guard ||
        t->excluded)
        return -1;
    ht_rec_guard_enter();
    rec_gate_enter(t);
    int fresh = t->gen != atomic_load_explicit(&rec_gen, memory_order_relaxed);
    // A second thread switches everyone to the precise clock before its
    // own first time is taken (rec_now).
    if (HT_UNLIKELY(fresh) && atomic_fetch_add_explicit(&rec_nthreads, 1, memory_order_seq_cst) >= 1)
        atomic_store_explicit(&rec_mt, 1, memory_order_seq_cst);
    *ts = given ? given : rec_now(t);
    if (HT_UNLIKELY(fresh))
        rec_thread_setup(t, *ts, 0);
    uint64_t d = atomic_load_explicit(&rec_dlopen_ts, memory_order_relaxed);
    if (HT_UNLIKELY(d && (int64_t)(*ts - d) < (int64_t)HT_REC_DLOPEN_WINDOW_NS) &&
        ht_modules_changed())
        ht_modules_scan(rec_ring, &t->w, *ts, false);
    return 0;
}

static inline void
rec_leave(void)
{
    rec_gate_leave(&ht_rec_tls);
    ht_rec_guard_leave();
}

void
ht_rec_note_dlopen(void)
{
    atomic_store_explicit(&rec_dlopen_ts, ht_clock_ns(), memory_order_relaxed);
}

/* An allocation to record, inside rec_enter: the sampling decision, then
 * the record. `fresh`: the thread was set up by this rec_enter, so its
 * first countdown was drawn just now, and this allocation must pass
 * through it like any other. */
static void
rec_alloc_entered(ht_rec_tls_t *t, void *p, size_t size, void *caller, uint64_t ts, int fresh)
{
    uint64_t weight = HT_TF_WEIGHT_ONE;
    if (rec_rate) {
        if (fresh && (t->countdown -= (int64_t)size + 1) > 0)
            return;
        ht_live_prefetch(p); // its slot is needed after the unwinding
        weight = ht_sample_weight(size, rec_rate);
        t->countdown = ht_sample_next(&t->rng, rec_rate);
    } else {
        t->countdown = 0;
    }
    rec_record_alloc(t, p, size, weight, caller, ts, NULL, 0);
}

/* ht_rec_alloc_slow at a given time (0: read the clock). */
static void
rec_alloc_slow_at(void *p, size_t size, void *caller, uint64_t given)
{
    ht_rec_tls_t *t = &ht_rec_tls;
    int st = atomic_load_explicit(&ht_rec_state, memory_order_relaxed);
    if (st == HT_REC_OFF || t->excluded) {
        t->countdown = INT64_MAX / 2; // not coming back for a long while
        return;
    }
    if (st == HT_REC_PENDING)
        return; // countdown stays <= 0: the first allocation after start counts
    if (t->guard) {
        // The shim's own allocation: redraw, so the next program
        // allocation is not sampled with certainty.
        if (rec_rate)
            t->countdown = ht_sample_next(&t->rng, rec_rate);
        return;
    }
    int saved = errno;
    uint64_t ts;
    int fresh = t->gen != atomic_load_explicit(&rec_gen, memory_order_relaxed);
    if (rec_enter(t, &ts, given) < 0) {
        errno = saved;
        return;
    }
    rec_alloc_entered(t, p, size, caller, ts, fresh);
    rec_after_event(t, ts);
    rec_leave();
    errno = saved;
}

void
ht_rec_alloc_slow(void *p, size_t size, void *caller)
{
    rec_alloc_slow_at(p, size, caller, 0);
}

void
ht_rec_free_slow(void *p, void *caller)
{
    ht_rec_tls_t *t = &ht_rec_tls;
    int saved = errno;
    uint64_t size = 0, ts = 0;
    if (rec_rate == 0) {
        // --all: the shim keeps no live table (rec_record_alloc), so every
        // free on a page that held a recorded block is written, and the
        // collector drops those of pointers it never saw (allocated before
        // recording began, or by the shim itself). The freed bytes are
        // the collector's to count too: it has the sizes. A free we
        // cannot record here (a signal handler interrupting our own slow
        // path) cannot be told from the shim's own frees, so it is not
        // counted as lost.
        if (rec_enter(t, &ts, 0) == 0) {
            rec_record_free(t, p, ts);
            rec_after_event(t, ts);
            rec_leave();
        }
        errno = saved;
        return;
    }
    // Out of the table before the real free, whatever happens to the
    // record: once the real free runs, the address may come back from
    // malloc in another thread.
    if (!ht_live_remove(p, &size)) {
        errno = saved;
        return;
    }
    int in = rec_enter(t, &ts, 0);
    if (in < 0) {
        // A recorded pointer freed where we cannot record (a signal handler
        // interrupting the shim, or after exit): the FREE is lost.
        if (atomic_load_explicit(&ht_rec_state, memory_order_relaxed) == HT_REC_ON && rec_ring)
            atomic_fetch_add_explicit(&rec_ring->hdr->lost_events, 1, memory_order_relaxed);
        errno = saved;
        return;
    }
    t->free_bytes += size;
    rec_record_free(t, p, ts);
    rec_after_event(t, ts);
    rec_leave();
    errno = saved;
}

void
ht_rec_realloc_pre(void *old, ht_rec_realloc_t *rr)
{
    rr->tracked = 0;
    rr->size = 0;
    rr->ts = 0;
    rr->fp = NULL;
    if (!ht_live_maybe(old))
        return;
    int saved = errno;
    // --all keeps no table: maybe recorded, the collector knows
    // (ht_rec_free_slow). Sampled: recorded if it was in the table.
    if (rec_rate == 0 || ht_live_remove(old, &rr->size)) {
        rr->tracked = 1;
        rr->ts = rec_now(&ht_rec_tls);
    }
    errno = saved;
}

void
ht_rec_realloc_post(void *old, void *newp, size_t size, const ht_rec_realloc_t *rr,
                    void *caller)
{
    ht_rec_tls_t *t = &ht_rec_tls;
    if (!newp && size != 0) {
        // Failed: old is still live and still ours.
        if (rr->tracked && rec_rate && ht_live_insert(old, rr->size) != 0 && rec_ring)
            atomic_fetch_add_explicit(&rec_ring->hdr->lost_events, 1, memory_order_relaxed);
        return;
    }
    t->frees++;
    if (!rr->tracked) {
        if (newp)
            ht_rec_alloc_fp(newp, size, caller, rr->fp);
        return;
    }
    // Clock readings (27 ns each on a KVM guest, the most expensive step
    // of a realloc-heavy --all run): the FREE's time was taken before the
    // call, and one reading after it serves the ALLOC as well. A block
    // resized in place was ours throughout, so no other thread's event on
    // its address can fall between the two: the time before the call
    // serves both, and no reading is needed here at all. Both records are
    // made in one pass through rec_enter; the allocation is counted
    // before it (the guard puts the counters back as they were).
    int want = newp && ht_rec_alloc_count(t, size);
    int saved = errno;
    uint64_t ts = 0;
    int fresh = t->gen != atomic_load_explicit(&rec_gen, memory_order_relaxed);
    if (rec_enter(t, &ts, newp == old ? rr->ts : 0) == 0) {
        t->free_bytes += rr->size;
        // ht_rec_alloc_fp's frame, for the new block's backtrace
        t->walk_fp = (void **)rr->fp;
        if (want && rec_rate == 0) {
            // --all records every allocation: no sampling to decide, and
            // the free and the new block go in one REALLOC record.
            t->countdown = 0;
            rec_record_alloc(t, newp, size, HT_TF_WEIGHT_ONE, caller, ts, old, rr->ts);
        } else {
            rec_record_free(t, old, rr->ts);
            if (want)
                rec_alloc_entered(t, newp, size, caller, ts, fresh);
        }
        t->walk_fp = NULL;
        rec_after_event(t, ts);
        rec_leave();
        errno = saved;
        return;
    }
    if (rec_rate && atomic_load_explicit(&ht_rec_state, memory_order_relaxed) == HT_REC_ON &&
        rec_ring)
        atomic_fetch_add_explicit(&rec_ring->hdr->lost_events, 1, memory_order_relaxed);
    errno = saved;
    // Not recordable now (guarded, off, pending): the allocation's slow
    // path resets the countdown as it would for a malloc.
    if (want)
        rec_alloc_slow_at(newp, size, caller, 0);
}

/* ------------------------------------------------------------------ */

static void
rec_key_destructor(void *arg)
{
    (void)arg;
    ht_rec_thread_end();
}

int
ht_rec_start(ht_ring_t *ring, const char *exe, uint32_t exe_len, const char *argv,
             uint32_t argv_len)
{
    ht_rec_tls_t *t = &ht_rec_tls;
    ht_rec_guard_enter();
    rec_ring = ring;
    rec_rate = (ring->hdr->flags & HT_TF_PROC_ALL) ? 0 : ring->hdr->sample_rate;
    rec_depth = ring->hdr->max_depth;
    if (rec_depth == 0 || rec_depth > HT_TF_MAX_FRAMES)
        rec_depth = HT_TF_MAX_FRAMES;
    if (!rec_key_ok)
        rec_key_ok = pthread_key_create(&rec_key, rec_key_destructor) == 0;
    // libunwind: per-thread caches, so concurrent unwinds do not take its
    // global lock (DESIGN.md: 2 threads were 2x slower with the default),
    // where it does every trace. Otherwise it is the rare fallback of our
    // unwinder, and setting the policy would set libunwind up in every
    // traced process at start (0.2 ms) for nothing.
    if (!ht_unwind_prepare())
        unw_set_caching_policy(unw_local_addr_space, UNW_CACHE_PER_THREAD);
    rec_membarrier_register();
    // Called with no other thread recording (rec.h): one thread so far.
    atomic_store_explicit(&rec_nthreads, 1, memory_order_relaxed);
    atomic_store_explicit(&rec_mt, 0, memory_order_relaxed);
    t->coarse_last = 0;
    atomic_fetch_add_explicit(&rec_gen, 1, memory_order_release);
    atomic_store_explicit(&rec_mod_check_ts, 0, memory_order_relaxed);

    uint64_t ts = rec_now(t);
    // PROCESS first, in a writer of its own set up by hand (the THREAD
    // record of rec_thread_setup must not come before it).
    memset(&t->w, 0, sizeof t->w);
    t->w.buf = -1;
    t->w.tid = (uint32_t)syscall(SYS_gettid);
    int rc = -ENOSPC;
    const ht_ring_hdr_t *h = ring->hdr;
    if (rec_put_ok(&t->w, 64 + exe_len + argv_len, ts) &&
        ht_tf_put_process(&t->w.enc, ts, (uint32_t)h->pid, (uint32_t)h->ppid, h->flags,
                          h->sample_rate, h->max_depth, exe, exe_len, argv, argv_len) == 0) {
        ht_ring_writer_commit(ring, &t->w);
        rc = 0;
    }
    ht_modules_set_exe(exe, exe_len);
    ht_modules_scan(ring, &t->w, ts, true);
    rec_thread_setup(t, ts, 1); // THREAD after PROCESS, in the same buffer
    ht_ring_writer_release(ring, &t->w); // the opening records visible as a whole
    atomic_store_explicit(&ht_rec_state, rc == 0 ? HT_REC_ON : HT_REC_OFF, memory_order_release);
    ht_rec_guard_leave();
    return rc;
}

void
ht_rec_stop(void)
{
    atomic_store_explicit(&ht_rec_state, HT_REC_OFF, memory_order_release);
}

ht_ring_t *
ht_rec_ring(void)
{
    return atomic_load_explicit(&ht_rec_state, memory_order_acquire) == HT_REC_ON ? rec_ring
                                                                                  : NULL;
}

void
ht_rec_thread_exclude(void)
{
    ht_rec_tls.excluded = 1;
    ht_rec_tls.countdown = INT64_MAX / 2;
}

void
ht_rec_thread_end(void)
{
    ht_rec_tls_t *t = &ht_rec_tls;
    uint64_t ts;
    if (rec_enter(t, &ts, 0) == 0) {
        rec_thread_name(t, ts);
        rec_put_totals(t, ts, t->w.tid, t);
        if (rec_put_ok(&t->w, HT_TF_MAX_FIXED_REC, ts) &&
            ht_tf_put_thread_end(&t->w.enc, ts, t->w.tid) == 0)
            ht_ring_writer_commit(rec_ring, &t->w);
        ht_ring_writer_release(rec_ring, &t->w);
        rec_leave();
    }
    t->ended = 1;
    rec_frames_release();
    rec_thread_unregister(t);
}

void
ht_rec_exit(int how, int code)
{
    ht_rec_tls_t *t = &ht_rec_tls;
    uint64_t ts;
    if (rec_enter(t, &ts, 0) < 0)
        return;
    // Everyone's totals so far, from here: the other threads are still
    // running but will never get to write theirs.
    for (uint32_t i = 0; i < HT_REC_MAX_THREADS; i++) {
        uintptr_t v = atomic_load_explicit(&rec_threads[i], memory_order_acquire);
        if (!v || (v & 1))
            continue;
        if (!atomic_compare_exchange_strong_explicit(&rec_threads[i], &v, v | 1,
                                                     memory_order_acquire,
                                                     memory_order_relaxed))
            continue;
        const ht_rec_tls_t *o = (const ht_rec_tls_t *)v;
        if (o != t && o->gen == t->gen) {
            ht_rec_tls_t snap;
            snap.allocs = o->allocs;
            snap.alloc_bytes = o->alloc_bytes;
            snap.frees = o->frees;
            snap.free_bytes = o->free_bytes;
            rec_put_totals(t, ts, o->w.tid, &snap);
        }
        atomic_store_explicit(&rec_threads[i], v, memory_order_release);
    }
    rec_put_memstat(t, ts);
    rec_thread_name(t, ts);
    rec_put_totals(t, ts, t->w.tid, t);
    // Objects loaded since the last poll: their MODULE before the end.
    if (ht_modules_changed())
        ht_modules_scan(rec_ring, &t->w, ts, false);
    if (rec_put_ok(&t->w, HT_TF_MAX_FIXED_REC, ts) &&
        ht_tf_put_exit(&t->w.enc, ts, (uint64_t)how, (uint64_t)(uint32_t)code) == 0)
        ht_ring_writer_commit(rec_ring, &t->w);
    ht_ring_writer_release(rec_ring, &t->w);
    atomic_store_explicit(&rec_ring->hdr->state, HT_RING_STATE_EXITED, memory_order_release);
    atomic_store_explicit(&ht_rec_state, HT_REC_OFF, memory_order_release);
    rec_leave();
}

void
ht_rec_modules_sync(void)
{
    ht_rec_tls_t *t = &ht_rec_tls;
    uint64_t ts;
    int saved = errno;
    if (rec_enter(t, &ts, 0) < 0) {
        errno = saved;
        return;
    }
    if (ht_modules_changed())
        ht_modules_scan(rec_ring, &t->w, ts, false);
    if (t->ended)
        ht_ring_writer_release(rec_ring, &t->w);
    rec_leave();
    errno = saved;
}

int
ht_rec_snapshot(int reason)
{
    ht_rec_tls_t *t = &ht_rec_tls;
    uint64_t ts;
    int saved = errno;
    if (rec_enter(t, &ts, 0) < 0) {
        errno = saved;
        return -1;
    }
    int rc = -1;
    if (rec_put_ok(&t->w, HT_TF_MAX_FIXED_REC, ts) &&
        ht_tf_put_snapshot_req(&t->w.enc, ts, (uint64_t)reason) == 0) {
        ht_ring_writer_commit(rec_ring, &t->w);
        rc = 0;
    }
    rec_put_memstat(t, ts);
    rec_put_totals(t, ts, t->w.tid, t);
    t->tot_allocs_at = t->allocs;
    t->tot_ts = ts;
    if (ht_modules_changed())
        ht_modules_scan(rec_ring, &t->w, ts, false);
    ht_ring_writer_release(rec_ring, &t->w);
    rec_leave();
    errno = saved;
    return rc;
}

/* FORK's time (rec.h). Pre-fork records took at most rec_now; post-fork
 * ones take at least coarse_last (one thread) or a later precise reading,
 * and the thread's next buffer opens after first_ts. */
uint64_t
ht_rec_fork_stamp(void)
{
    ht_rec_tls_t *t = &ht_rec_tls;
    uint64_t f = rec_now(t) + 1;
    if (f <= t->w.first_ts)
        f = t->w.first_ts + 1;
    t->coarse_last = f + 1;
    t->w.first_ts = f;
    return f;
}

void
ht_rec_fork_child(void)
{
    ht_rec_tls_t *t = &ht_rec_tls;
    // Only this thread exists now. Its counts so far were the parent's.
    atomic_store_explicit(&ht_rec_state, HT_REC_PENDING, memory_order_release);
    rec_membarrier_ok = 0; // a new address space: ht_rec_start registers again
    for (uint32_t i = 0; i < HT_REC_MAX_THREADS; i++)
        atomic_store_explicit(&rec_threads[i], 0, memory_order_relaxed);
    t->registered = 0;
    t->allocs = t->alloc_bytes = t->frees = t->free_bytes = 0;
    t->saved[0] = t->saved[1] = t->saved[2] = 0; // the caller holds the guard
    t->gen = 0;
    t->w.buf = -1; // the parent's buffer, in the parent's ring
    ht_modules_atfork_child();
    rec_ring = NULL;
}
