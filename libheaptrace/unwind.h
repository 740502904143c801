/*
 * libheaptrace/unwind.h -- backtraces for the recorder (prefix ht_unwind_):
 * a DWARF CFI (.eh_frame) unwinder with a lock-free cache of one unwind
 * rule per return address, and libunwind as the fallback for whatever it
 * does not handle.
 *
 * Why: in --all mode the backtrace is the whole cost of an event, and
 * libunwind's unw_backtrace (~160 ns for 25 frames, and a lock shared by
 * all threads) made us slower than heaptrack. Once the rules of a stack's
 * return addresses are cached, a frame costs a hash probe and one or two
 * loads from the stack.
 *
 * On x86-64 only; elsewhere ht_unwind_backtrace is unw_backtrace.
 *
 * Mode: HEAPTRACE_UNWIND=libunwind (read once, at the first backtrace)
 * forces the old path, unw_backtrace for every trace.
 */
#ifndef HT_LIBHEAPTRACE_UNWIND_H
#define HT_LIBHEAPTRACE_UNWIND_H

#include <stdint.h>

/* log2 of the cache's slots (16 bytes each: 1 MiB, mapped once). */
#define HT_UNWIND_CACHE_LG 16
/* A walk never reads the stack further than this above its entry SP; a
 * deeper stack is left to libunwind. */
#define HT_UNWIND_STACK_WINDOW (8u << 20)

typedef enum ht_unwind_mode_e {
    HT_UNWIND_MODE_AUTO = 0,      /* not decided yet: read HEAPTRACE_UNWIND */
    HT_UNWIND_MODE_CFI = 1,       /* our cached CFI walk, libunwind fallback */
    HT_UNWIND_MODE_LIBUNWIND = 2, /* unw_backtrace always */
} ht_unwind_mode_t;

/* Per-thread counters (the calling thread's own: shared counters would
 * put one contended cache line on every malloc of every thread). */
typedef struct ht_unwind_stats_s {
    uint64_t traces;    /* ht_unwind_backtrace calls */
    uint64_t hits;      /* frames whose rule came from the cache */
    uint64_t misses;    /* frames whose rule was computed from .eh_frame */
    uint64_t uncached;  /* computed rules that found no free slot (table full) */
    uint64_t fallbacks; /* traces handed to unw_backtrace (signal frame,
                           no CFI, unsupported rule, sanity check, mode) */
    uint64_t memo_frames; /* frames taken from the previous walk's memo */
} ht_unwind_stats_t;

/*
 * Write up to max return addresses of the calling thread's stack into
 * frames, exactly as unw_backtrace(frames, max) would if called from the
 * same place: frames[0] is the return address into the caller of
 * ht_unwind_backtrace, then its caller's, and so on to the outermost
 * frame (whose CFI marks the return address undefined: _start, clone3).
 * Returns the number written (0..max).
 *
 * Where a frame has no CFI, a rule we do not interpret (DWARF
 * expressions, a signal frame, registers other than RSP/RBP as CFA), or
 * fails a sanity check, the whole trace is redone by unw_backtrace -- as a
 * tail call, so its frames are the same.
 *
 * [as-safe] [no-alloc]: no locks, no system calls on a cache hit; a miss
 * calls _dl_find_object (lock-free and async-signal-safe in glibc 2.35+);
 * the very first call maps the cache (mmap). Stack use: under 512 bytes.
 * pre: max >= 0; frames has room for max entries.
 */
int ht_unwind_backtrace(void **frames, int max);

/*
 * The same walk, started at a frame the caller names instead of its own:
 * sp points at a return address (frames[0] = *sp, then its caller's, ...)
 * and rbp is RBP's value at that return (RBP is callee-saved, so the
 * value at the entry of a function reached by call or tail jump from
 * there). The recorder starts at the program's frame and so does not walk
 * through its own four or five frames on every event. Returns the number
 * written, or -1 where ht_unwind_backtrace would hand the trace to
 * libunwind (mode, signal frame, no CFI...): the caller then takes a
 * backtrace of its own. [as-safe] [no-alloc]
 * pre: sp is a live frame of the calling thread's stack, above the
 * caller's own.
 */
int ht_unwind_backtrace_from(void **frames, int max, const void *sp, uintptr_t rbp);

/*
 * Forget every cached rule: call after a dlclose, before anything else can
 * be mapped at the unloaded object's addresses. Safe against concurrent
 * ht_unwind_backtrace (entries carry a generation; stale ones are swept
 * and reused). Cost: one pass over the table (~1 MiB).
 * [as-safe] [no-alloc]
 */
void ht_unwind_flush(void);

/*
 * A memo of the calling thread's previous walk, which the next walk can
 * finish from: once it reaches a frame in the same state (IP, SP, RBP) as
 * the previous walk had there, the rest is the previous walk's if every
 * stack word that walk read from there on (return addresses, saved RBPs)
 * still holds what it read. The walk is a function of its state and of
 * those words, so that check is exact, and it costs a compare of words at
 * known addresses a frame instead of a rule lookup and a dependent load.
 * Programs allocate from a loop again and again: most of a stack is the
 * previous one's.
 *
 * mem: HT_UNWIND_MEMO_BYTES of the thread's own, zeroed (or NULL to stop
 * using one); the thread must not use it for anything else while set.
 * [as-safe] [no-alloc]
 */
#define HT_UNWIND_MEMO_FRAMES 1040
#define HT_UNWIND_MEMO_BYTES (2 * (16 + 40 * (size_t)(HT_UNWIND_MEMO_FRAMES + 1)))
void ht_unwind_memo_set(void *mem);

/* Decide the mode and map the cache now, if not done yet. Returns 1 when
 * our unwinder will take traces, 0 when libunwind takes every one (the
 * libunwind mode, no cache, not x86-64). [init] */
int ht_unwind_prepare(void);

/* The calling thread's counters since it started (or since the last
 * ht_unwind_stats_reset). [as-safe] [no-alloc] */
void ht_unwind_stats_get(ht_unwind_stats_t *out);
void ht_unwind_stats_reset(void);

/* Slots in use in the cache now (approximate under concurrent inserts). */
uint64_t ht_unwind_cache_used(void);

/*
 * Choose the mode instead of the environment (tests, benchmarks; the
 * shim leaves it to HEAPTRACE_UNWIND). Takes effect for the next trace.
 */
void ht_unwind_mode_set(ht_unwind_mode_t mode);
ht_unwind_mode_t ht_unwind_mode_get(void);

/*
 * Test seam: fill every free slot of the cache with rules for fake
 * addresses (below 64 KiB, never a return address), so that a test can
 * check that a full table still gives correct traces. Returns the number
 * of slots filled. ht_unwind_flush empties the table again.
 */
uint64_t ht_unwind_cache_fill_for_test(void);

#endif /* HT_LIBHEAPTRACE_UNWIND_H */
