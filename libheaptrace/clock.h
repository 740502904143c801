/*
 * libheaptrace/clock.h -- the events' clock (prefix ht_clock_).
 *
 * Every recorded event carries a time, and the collector orders the events
 * of different threads by it: a free in one thread must sort before the
 * reuse of its address by another, and no event may be stamped earlier
 * than CLOCK_MONOTONIC at the moment it happened (collector.c argues why
 * its ordering is exact under those two conditions). clock_gettime gives
 * both, but it was a fifth of the shim's time in --all mode.
 *
 * With an invariant TSC that the kernel itself uses as its clocksource
 * (so synchronized across CPUs), the time is instead
 *     base_ns + (TSC - base_tsc) * mult / 2^32
 * from parameters shared by all threads, re-anchored against
 * CLOCK_MONOTONIC about every HT_CLOCK_PERIOD_NS by whichever thread finds
 * them due. Re-anchoring is continuous (never steps back) and steers the
 * slope so that the time stays HT_CLOCK_AHEAD_NS ahead of CLOCK_MONOTONIC,
 * within a microsecond or so: always ahead (events wait for the
 * collector's next poll, at worst), never behind. Until the first
 * calibration (HT_CLOCK_CALIBRATE_NS after init, measured, not spent
 * waiting) and without a usable TSC it is clock_gettime(CLOCK_MONOTONIC)
 * + HT_CLOCK_AHEAD_NS, so the two kinds of reading agree.
 *
 * Readers take no lock and never wait: the parameters are double-buffered
 * under a sequence number; only a re-anchor takes a flag (trylock), and a
 * reader that cannot take it uses the current parameters.
 */
#ifndef HT_LIBHEAPTRACE_CLOCK_H
#define HT_LIBHEAPTRACE_CLOCK_H

#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "libheaptrace/util.h"

#define HT_CLOCK_AHEAD_NS 20000u
#define HT_CLOCK_PERIOD_NS (10u * 1000u * 1000u)
#define HT_CLOCK_CALIBRATE_NS (2u * 1000u * 1000u)

typedef struct ht_clock_par_s {
    _Atomic uint64_t tsc, ns, mult; /* mult: ns per tick, 32.32 fixed point */
    _Atomic uint64_t until;         /* TSC from which a re-anchor is due */
} ht_clock_par_t;

typedef struct ht_clock_s {
    /* 0: no TSC parameters (clock_gettime); else version, par[seq & 1] */
    _Atomic uint64_t seq;
    ht_clock_par_t par[2];
} ht_clock_t;

extern ht_clock_t ht_clock __attribute__((visibility("hidden")));

/* Decide whether the TSC can be used (allow_tsc, CPUID's invariant-TSC
 * bit and the kernel's clocksource) and take the first measurement. No
 * waiting. [init] */
void ht_clock_init(int allow_tsc);
/* Whether the TSC is in use (tests, diagnostics). */
int ht_clock_uses_tsc(void);
/* After fork, in the child: a re-anchor another thread was doing is
 * abandoned. */
void ht_clock_atfork_child(void);

uint64_t ht_clock_slow(uint64_t tsc, int have_tsc);

/* CLOCK_MONOTONIC_COARSE: the time at the kernel's last tick (1-4 ms
 * behind, never ahead of CLOCK_MONOTONIC), for 3.5 ns instead of 27 on a
 * KVM guest. Good enough to order one thread's events in time; not to
 * order two threads' (rec.c says when it is used). [as-safe] */
static inline uint64_t
ht_clock_coarse_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline uint64_t
ht_clock_rdtsc(void)
{
#if defined(__x86_64__)
    // RDTSCP, not RDTSC: it waits for the instructions before it, so a time
    // taken after malloc returned an address cannot be read before the
    // loads that found that address free (as the vDSO's own rdtsc_ordered).
    uint32_t lo, hi, aux;
    __asm__ __volatile__("rdtscp" : "=a"(lo), "=d"(hi), "=c"(aux));
    return ((uint64_t)hi << 32) | lo;
#else
    return 0;
#endif
}

/* The time, ns on CLOCK_MONOTONIC's scale (HT_CLOCK_AHEAD_NS ahead).
 * [as-safe] [no-alloc] */
static inline uint64_t
ht_clock_ns(void)
{
    for (;;) {
        uint64_t s = atomic_load_explicit(&ht_clock.seq, memory_order_acquire);
        if (HT_UNLIKELY(s == 0))
            return ht_clock_slow(0, 0);
        const ht_clock_par_t *p = &ht_clock.par[s & 1];
        uint64_t base_tsc = atomic_load_explicit(&p->tsc, memory_order_relaxed);
        uint64_t base_ns = atomic_load_explicit(&p->ns, memory_order_relaxed);
        uint64_t mult = atomic_load_explicit(&p->mult, memory_order_relaxed);
        uint64_t until = atomic_load_explicit(&p->until, memory_order_relaxed);
        uint64_t t = ht_clock_rdtsc();
        atomic_thread_fence(memory_order_acquire);
        if (HT_UNLIKELY(atomic_load_explicit(&ht_clock.seq, memory_order_relaxed) != s))
            continue; // re-anchored while we read: read the new ones
        if (HT_UNLIKELY(t > until))
            return ht_clock_slow(t, 1);
        uint64_t d = t > base_tsc ? t - base_tsc : 0;
        return base_ns + (uint64_t)(((unsigned __int128)d * mult) >> 32);
    }
}

#endif /* HT_LIBHEAPTRACE_CLOCK_H */
