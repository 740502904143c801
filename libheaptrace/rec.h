/*
 * libheaptrace/rec.h -- the recorder (prefix ht_rec_): guard -> sample ->
 * unwind -> intern -> encode into the thread's ring buffer.
 *
 * shim.c calls the inline fast paths below around each real allocator
 * call; everything else is out of line. Unit tests call these functions
 * directly against an in-memory ring (ht_rec_start), no LD_PRELOAD.
 *
 * Fast path of an allocation that is not sampled: two TLS counters and the
 * countdown, one branch; no lock, no system call, no shared write.
 * Fast path of a free of a pointer never recorded: one TLS counter and one
 * load of the address filter (live.h).
 *
 * Per-thread totals (count and bytes of every allocation, count of every
 * free) are exact and written as TOTALS records periodically on the slow
 * path, at thread end and at exit. free_bytes is exact in --all mode; in
 * sampled mode the size of an unrecorded freed block is unknown, and
 * free_bytes counts only recorded frees.
 */
#ifndef HT_LIBHEAPTRACE_REC_H
#define HT_LIBHEAPTRACE_REC_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "libheaptrace/live.h"
#include "libheaptrace/ring.h"
#include "libheaptrace/util.h"

/* ht_rec_state */
enum { HT_REC_PENDING = 0, /* not started yet: allocations pass, unrecorded */
       HT_REC_ON = 1,      /* recording into the current ring */
       HT_REC_OFF = 2 };   /* disabled, failed or after exit: forward only */

/* Totals are written at least this often by a thread that keeps recording. */
#define HT_REC_TOTALS_EVERY_ALLOCS 65536u
#define HT_REC_TOTALS_EVERY_NS (100ull * 1000 * 1000)
/* How often (at most) the slow path asks the loader whether objects were
 * loaded or unloaded. */
#define HT_REC_MODULE_POLL_NS (5ull * 1000 * 1000)
/* How often (at most) the slow path reports the allocator's own figures
 * (mallinfo2: bytes it holds free, bytes it holds in all) as MEMSTAT. */
#define HT_REC_MEMSTAT_EVERY_NS (1000ull * 1000 * 1000)
/* Threads whose totals the exit handler can reach. */
#define HT_REC_MAX_THREADS 4096

typedef struct ht_rec_tls_s {
    int64_t countdown; /* bytes to the next sample; <= 0 takes the slow path */
    uint32_t guard;    /* > 0 while this thread is inside the shim */
    uint8_t ended;     /* the thread's key destructor ran */
    uint8_t excluded;  /* never record this thread (the in-process collector) */
    uint8_t registered;
    uint8_t gate_shared; /* this slow path holds the shared fork gate (unregistered thread) */
    _Atomic uint32_t in_slow; /* inside a slow path (the fork gate of a registered thread) */
    uint64_t allocs, alloc_bytes, frees, free_bytes;
    /* allocs, alloc_bytes, frees when the guard was taken: the shim's own
     * allocations are counted by the fast paths like any other, and
     * forgotten again when the guard is dropped. */
    uint64_t saved[3];
    uint64_t tot_allocs_at, tot_ts; /* when TOTALS were last written */
    uint64_t rng;
    uint64_t gen; /* ring generation this thread's writer belongs to */
    char name[16]; /* the name THREAD carried (threads are often named later) */
    /* Set by ht_rec_alloc_fp around its slow path: the interposer's frame
     * (saved RBP, then the return address into the program), where the
     * backtrace can start instead of in the recorder's own frames. */
    void **walk_fp;
    uint64_t coarse_last; /* the last coarse event time handed out (rec_now) */
    uint64_t hk_next; /* no housekeeping due before this event time (rec_after_event) */
    ht_ring_writer_t w;
} ht_rec_tls_t;

extern HT_TLS ht_rec_tls_t ht_rec_tls;
extern _Atomic int ht_rec_state;

HT_NOINLINE void ht_rec_alloc_slow(void *p, size_t size, void *caller);
HT_NOINLINE void ht_rec_free_slow(void *p, void *caller);

/* Count an allocation of `size` bytes in the totals and the countdown;
 * true when it is to be recorded (the slow path's turn). [as-safe] */
HT_INLINE int
ht_rec_alloc_count(ht_rec_tls_t *t, size_t size)
{
    t->allocs++;
    __asm__("" : "+m"(t->allocs)); // two plain adds, not SSE (see below)
    t->alloc_bytes += size;
    int64_t c = t->countdown - (int64_t)size - 1;
    t->countdown = c;
    return HT_UNLIKELY(c <= 0);
}

/* After a successful allocation of `size` bytes at p. `caller` is the
 * return address of the interposed function (its caller's frame); frames
 * below it are the shim's and are cut from the backtrace. [as-safe] */
HT_INLINE void
ht_rec_alloc(void *p, size_t size, void *caller)
{
    if (ht_rec_alloc_count(&ht_rec_tls, size))
        ht_rec_alloc_slow(p, size, caller);
}

/* ht_rec_alloc from an out-of-line interposer that keeps a frame pointer:
 * fp is its __builtin_frame_address(0), directly under the return address
 * `caller` into the program (it was reached by a call or a tail jump from
 * the exported function, which made no frame). The slow path then unwinds
 * from the program's frame on. [as-safe] */
HT_INLINE void
ht_rec_alloc_fp(void *p, size_t size, void *caller, void *fp)
{
    ht_rec_tls_t *t = &ht_rec_tls;
    if (ht_rec_alloc_count(t, size)) {
        t->walk_fp = (void **)fp;
        ht_rec_alloc_slow(p, size, caller);
        t->walk_fp = NULL;
    }
}

/* Before the real call: true when an allocation of `size` bytes is
 * certainly not sampled. It is then counted in the totals already, so the
 * interposer can tail-call the real function and add no frame of its own
 * (a failed allocation on this path is counted all the same: the price of
 * the tail call, paid only when malloc returns NULL). On false, call the
 * real function and then ht_rec_alloc. [as-safe] */
HT_INLINE int
ht_rec_alloc_skip(size_t size)
{
    ht_rec_tls_t *t = &ht_rec_tls;
    int64_t c = t->countdown - (int64_t)size - 1;
    if (HT_LIKELY(c > 0)) {
        t->countdown = c;
        t->allocs++;
        // Keep gcc from pairing the two counters into one 16-byte SSE
        // load-add-store: measured 1.6 ns slower per malloc/free pair than
        // two plain adds (13 ns native) on this machine.
        __asm__("" : "+m"(t->allocs));
        t->alloc_bytes += size;
        return 1;
    }
    return 0;
}

/* Before the real free of p (non-NULL). [as-safe] */
HT_INLINE void
ht_rec_free(void *p, void *caller)
{
    ht_rec_tls.frees++;
    if (HT_UNLIKELY(ht_live_maybe(p)))
        ht_rec_free_slow(p, caller);
}

/* realloc is recorded as FREE(old) + ALLOC(new), the FREE stamped BEFORE
 * the real call (once it returns, another thread may already hold the old
 * address) but written after, when we know the call succeeded. */
typedef struct ht_rec_realloc_s {
    uint64_t ts;   /* time before the real call */
    uint64_t size; /* recorded size of old, if tracked */
    int tracked;   /* old was a recorded pointer (now out of the live table) */
    /* NULL, or the interposer's frame as for ht_rec_alloc_fp: the new
     * block's backtrace then starts at the program's frame. */
    void *fp;
} ht_rec_realloc_t;

/* Before the real realloc(old, ...), old non-NULL. [as-safe] */
void ht_rec_realloc_pre(void *old, ht_rec_realloc_t *rr);
/* After it: newp is its result (NULL = failed unless size was 0, where
 * glibc freed old). [as-safe] */
void ht_rec_realloc_post(void *old, void *newp, size_t size, const ht_rec_realloc_t *rr,
                         void *caller);

/* Start recording into `ring`, whose header identity (pid, ppid, flags,
 * sample_rate, max_depth, start_ns) the caller filled. Writes PROCESS
 * (exe, argv NUL-separated), the MODULE records and the calling thread's
 * THREAD record, then switches the state to ON. The ring must stay mapped
 * while recording. Call with no other thread recording (init, fork
 * child). 0 or -errno. [init] */
int ht_rec_start(ht_ring_t *ring, const char *exe, uint32_t exe_len, const char *argv,
                 uint32_t argv_len);
/* Stop recording (state OFF); allocations pass through from now on. */
void ht_rec_stop(void);
/* The ring being recorded into, or NULL. */
ht_ring_t *ht_rec_ring(void);

/* Never record the calling thread (the in-process collector calls this
 * first thing: its own allocations are not the program's). [as-safe] */
void ht_rec_thread_exclude(void);
/* The calling thread is ending: TOTALS, THREAD_END, buffer released.
 * Called from a pthread key destructor; later events of this thread are
 * still recorded, each flushing at once. */
void ht_rec_thread_end(void);
/* exit(): TOTALS of every known thread, EXIT(how, code), flush, ring state
 * EXITED, recording stops. */
void ht_rec_exit(int how, int code);
/* Record SNAPSHOT_REQ(reason) and flush this thread's buffer. 0, or -1
 * when not recording. */
int ht_rec_snapshot(int reason);
/* Look for objects loaded or unloaded since the last look and write their
 * MODULE / UNMODULE records now (the slow path only looks every
 * HT_REC_MODULE_POLL_NS, which a plugin loaded, used and closed in less
 * time escapes). Called around dlclose (shim_dl.c) and at exit. */
void ht_rec_modules_sync(void);

/* fork: the time of the FORK record the child writes into the parent's
 * ring on the forking thread's behalf, taken in the prepare handler by
 * that thread. After every record it wrote before and before every one it
 * writes after, in time and in the order of its ring buffers: the thread's
 * clock and its next buffer's BATCH are moved past it. (The precise clock
 * here ran up to a tick ahead of the coarse one a lone thread stamps with,
 * and the parent's first allocations after the fork went into the child's
 * inherited set: t_record_fork failed 3 runs in 44.) In the child, forget
 * the parent's threads and buffers (the caller then starts a new ring). */
uint64_t ht_rec_fork_stamp(void);
void ht_rec_fork_child(void);
/* Around fork (prepare / parent+child handlers): wait until no thread is
 * inside a slow path and keep new ones out, so that no lock of libunwind,
 * the loader or ours is held by a thread the child will not have. */
void ht_rec_fork_lock(void);
void ht_rec_fork_unlock(int child);

/* A dlopen is about to happen: for a while, every slow-path event first
 * asks the loader whether objects came, so that a plugin's MODULE record
 * precedes its first allocation. [as-safe] */
void ht_rec_note_dlopen(void);
/* How long after a dlopen that eager check lasts. */
#define HT_REC_DLOPEN_WINDOW_NS (50ull * 1000 * 1000)

/* Enter/leave the shim on this thread: allocations in between pass
 * through unrecorded and leave the totals as they were. [as-safe]
 * The counters are copied one word at a time, each through a register
 * the compiler may not merge: as one 16-byte load (what gcc makes of the
 * plain copy) they would read two 8-byte stores made just before, by
 * ht_rec_alloc_count or the other half of this pair, and a load that spans
 * two pending stores cannot be forwarded from them: it waits for both to
 * reach the cache, 40% of rec_enter's time in a realloc-heavy --all run. */
static inline void
ht_rec_guard_enter(void)
{
    ht_rec_tls_t *t = &ht_rec_tls;
    if (t->guard++ == 0) {
        uint64_t a = t->allocs, b = t->alloc_bytes, f = t->frees;
        __asm__("" : "+r"(a), "+r"(b), "+r"(f));
        t->saved[0] = a;
        t->saved[1] = b;
        t->saved[2] = f;
    }
}
static inline void
ht_rec_guard_leave(void)
{
    ht_rec_tls_t *t = &ht_rec_tls;
    if (--t->guard == 0) {
        uint64_t a = t->saved[0], b = t->saved[1], f = t->saved[2];
        __asm__("" : "+r"(a), "+r"(b), "+r"(f));
        t->allocs = a;
        t->alloc_bytes = b;
        t->frees = f;
    }
}

#endif /* HT_LIBHEAPTRACE_REC_H */
