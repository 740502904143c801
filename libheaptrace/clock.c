/*
 * libheaptrace/clock.c -- the events' clock (contract: clock.h).
 *
 * Invariants the collector relies on, and how they are kept:
 *  - never behind CLOCK_MONOTONIC: every anchor starts the time at its TSC
 *    at no less than CLOCK_MONOTONIC + HT_CLOCK_AHEAD_NS read after that
 *    TSC; if it is more, the slope is steered down to reach that target a
 *    period later. Between anchors the error is the slope's over one
 *    period (pairs of at most CLOCK_PAIR_MAX_TICKS: well under 1 us in
 *    10 ms; CLOCK_MONOTONIC's worst slewing, 500 ppm: 5 us), against 20 us
 *    ahead. Past its period nobody trusts the slope: a reader that cannot
 *    anchor takes at least CLOCK_MONOTONIC + HT_CLOCK_AHEAD_NS;
 *  - never backwards, in a thread or across threads that synchronize: an
 *    anchor starts the new parameters at or above the old ones' value at
 *    its TSC, and above them over the window in which a reader may still
 *    be using the old ones (clock_anchor); an anchor that took longer
 *    than that window is dropped.
 *
 * Measured (alloc_loop 1M --all under `heaptrace record`, this VM): a
 * reading 24 ns against clock_gettime's 29.5; the RDTSCP in it is 17.5 of
 * those (a plain RDTSC is 9, but may be read before the loads ahead of it
 * complete, see clock.h).
 */
#include "libheaptrace/clock.h"

#include <fcntl.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#if defined(__x86_64__)
#include <cpuid.h>
#endif

ht_clock_t ht_clock;

static int clock_tsc_ok;
static _Atomic int clock_busy; /* a thread is anchoring */
/* The last anchor as measured (TSC, CLOCK_MONOTONIC): the next slope is
 * measured from it. Written only by the thread holding clock_busy. */
static _Atomic uint64_t clock_a_tsc, clock_a_ns;

/* The longest a reader can go on using the previous parameters after the
 * new ones' TSC, in ticks: a re-anchor that takes longer is dropped. */
#define CLOCK_WINDOW_TICKS 100000u
/* A (TSC, time) pair taken across more ticks than this (an interrupt, a
 * preemption) is too vague to anchor on: its error goes into the slope
 * (measured over 2..10 ms), so it must stay well under a microsecond. A
 * clean pair takes about 150 ticks here. */
#define CLOCK_PAIR_MAX_TICKS 2000u
#define CLOCK_PAIR_TRIES 4

static uint64_t
clock_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* A TSC value and CLOCK_MONOTONIC read after it. */
static int
clock_pair(uint64_t *tsc, uint64_t *ns)
{
    for (int i = 0; i < CLOCK_PAIR_TRIES; i++) {
        uint64_t t1 = ht_clock_rdtsc();
        uint64_t n = clock_mono();
        uint64_t t2 = ht_clock_rdtsc();
        if (t2 - t1 <= CLOCK_PAIR_MAX_TICKS) {
            *tsc = t1;
            *ns = n;
            return 0;
        }
    }
    return -1;
}

static int
clock_source_is_tsc(void)
{
    int fd = open("/sys/devices/system/clocksource/clocksource0/current_clocksource",
                  O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    char b[16];
    ssize_t n = read(fd, b, sizeof b);
    close(fd);
    return n == 4 && memcmp(b, "tsc\n", 4) == 0;
}

void
ht_clock_init(int allow_tsc)
{
    atomic_store(&ht_clock.seq, 0);
    atomic_store(&clock_busy, 0);
    clock_tsc_ok = 0;
#if defined(__x86_64__)
    unsigned a, b, c, d;
    uint64_t t0, n0;
    // CPUID 0x80000007 EDX bit 8: invariant TSC (Linux's constant_tsc and
    // nonstop_tsc). The kernel's clocksource being "tsc" says it found the
    // TSCs of all CPUs in step, which the readers' cross-thread order needs.
    // And 0x80000001 EDX bit 27: RDTSCP itself.
    if (allow_tsc && __get_cpuid(0x80000007, &a, &b, &c, &d) && (d & (1u << 8)) &&
        __get_cpuid(0x80000001, &a, &b, &c, &d) && (d & (1u << 27)) && clock_source_is_tsc() &&
        clock_pair(&t0, &n0) == 0) {
        atomic_store(&clock_a_tsc, t0);
        atomic_store(&clock_a_ns, n0);
        clock_tsc_ok = 1;
    }
#else
    (void)allow_tsc;
#endif
}

int
ht_clock_uses_tsc(void)
{
    return atomic_load(&ht_clock.seq) != 0;
}

void
ht_clock_atfork_child(void)
{
    atomic_store_explicit(&clock_busy, 0, memory_order_relaxed);
}

static uint64_t
clock_eval(const ht_clock_par_t *p, uint64_t t)
{
    uint64_t base_tsc = atomic_load_explicit(&p->tsc, memory_order_relaxed);
    uint64_t d = t > base_tsc ? t - base_tsc : 0;
    return atomic_load_explicit(&p->ns, memory_order_relaxed) +
           (uint64_t)(((unsigned __int128)d * atomic_load_explicit(&p->mult, memory_order_relaxed)) >>
                      32);
}

/* Holding clock_busy: measure a pair and publish parameters from it. */
static void
clock_anchor(void)
{
    uint64_t tr, nr;
    uint64_t at = atomic_load_explicit(&clock_a_tsc, memory_order_relaxed);
    uint64_t an = atomic_load_explicit(&clock_a_ns, memory_order_relaxed);
    uint64_t s = atomic_load_explicit(&ht_clock.seq, memory_order_relaxed);
    if (clock_pair(&tr, &nr) < 0 || tr <= at || nr <= an)
        return;
    // Another thread anchored since this one found the parameters due:
    // nothing to do -- and a slope measured from its anchor, microseconds
    // ago, would be all pair error (seen: 200 us ahead within 50 ms).
    if (s != 0 && tr <= atomic_load_explicit(&ht_clock.par[s & 1].until, memory_order_relaxed))
        return;
    // Slope measured since the last anchor (at least 2 ms ago): follows
    // CLOCK_MONOTONIC's own slewing against the TSC.
    if (nr - an < HT_CLOCK_CALIBRATE_NS)
        return;
    uint64_t m = (uint64_t)(((unsigned __int128)(nr - an) << 32) / (tr - at));
    uint64_t period = (uint64_t)(((unsigned __int128)HT_CLOCK_PERIOD_NS << 32) / (m ? m : 1));
    uint64_t until = tr + period;
    uint64_t target = nr + HT_CLOCK_AHEAD_NS;
    uint64_t base, mult = m;
    if (s == 0) {
        base = target; // first calibration: the readers so far used target's clock
        // Its slope is from a shorter baseline: check it sooner.
        until = tr + (uint64_t)(((unsigned __int128)HT_CLOCK_CALIBRATE_NS << 32) / (m ? m : 1));
    } else {
        const ht_clock_par_t *old = &ht_clock.par[s & 1];
        uint64_t f = clock_eval(old, tr);
        if (f <= target) {
            // Behind CLOCK_MONOTONIC + AHEAD (or just on it): step
            // forward, never back -- and never start below the target,
            // which readers past the old period may have returned already.
            base = target;
        } else {
            // Ahead: keep going from f and steer the slope down to reach
            // the target one period from now; at most 1/256 of the slope
            // (4000 ppm, eight times CLOCK_MONOTONIC's slewing).
            base = f;
            __int128 err = (__int128)target - (__int128)f;
            __int128 corr = err * ((__int128)1 << 32) / (__int128)(period ? period : 1); // no << of a negative
            __int128 lim = (__int128)(m >> 8);
            if (corr < -lim)
                corr = -lim;
            mult = (uint64_t)((__int128)m + corr);
        }
        // Readers may use the old parameters for TSCs up to
        // CLOCK_WINDOW_TICKS past tr: start high enough to stay above
        // them there if the slope went down.
        uint64_t om = atomic_load_explicit(&old->mult, memory_order_relaxed);
        if (mult < om)
            base += (uint64_t)(((unsigned __int128)(om - mult) * CLOCK_WINDOW_TICKS) >> 32) + 1;
    }
    ht_clock_par_t *p = &ht_clock.par[(s + 1) & 1];
    atomic_store_explicit(&p->tsc, tr, memory_order_relaxed);
    atomic_store_explicit(&p->ns, base, memory_order_relaxed);
    atomic_store_explicit(&p->mult, mult, memory_order_relaxed);
    atomic_store_explicit(&p->until, until, memory_order_relaxed);
    // Too slow (preempted, or a signal handler ran in this thread): a
    // reader may have used the old parameters too far past tr.
    if (ht_clock_rdtsc() - tr > CLOCK_WINDOW_TICKS)
        return;
    atomic_store_explicit(&ht_clock.seq, s + 1, memory_order_release);
    atomic_store_explicit(&clock_a_tsc, tr, memory_order_relaxed);
    atomic_store_explicit(&clock_a_ns, nr, memory_order_relaxed);
}

static int
clock_trylock(void)
{
    int z = 0;
    return atomic_load_explicit(&clock_busy, memory_order_relaxed) == 0 &&
           atomic_compare_exchange_strong_explicit(&clock_busy, &z, 1, memory_order_acquire,
                                                   memory_order_relaxed);
}

uint64_t
ht_clock_slow(uint64_t t, int have_tsc)
{
    (void)t;
    if (!clock_tsc_ok)
        return clock_mono() + HT_CLOCK_AHEAD_NS;
    if (!have_tsc) {
        // Not calibrated yet: CLOCK_MONOTONIC's time, and once enough of
        // it has passed since init for a good slope, the first anchor.
        uint64_t now = clock_mono();
        if (now - atomic_load_explicit(&clock_a_ns, memory_order_relaxed) <
                HT_CLOCK_CALIBRATE_NS ||
            !clock_trylock())
            return now + HT_CLOCK_AHEAD_NS;
        if (atomic_load_explicit(&ht_clock.seq, memory_order_relaxed) == 0)
            clock_anchor();
        atomic_store_explicit(&clock_busy, 0, memory_order_release);
        if (atomic_load_explicit(&ht_clock.seq, memory_order_acquire) == 0)
            return now + HT_CLOCK_AHEAD_NS;
        return ht_clock_ns();
    }
    if (clock_trylock()) {
        clock_anchor();
        atomic_store_explicit(&clock_busy, 0, memory_order_release);
    }
    for (;;) {
        uint64_t s = atomic_load_explicit(&ht_clock.seq, memory_order_acquire);
        const ht_clock_par_t *p = &ht_clock.par[s & 1];
        uint64_t tsc = ht_clock_rdtsc();
        uint64_t v = clock_eval(p, tsc);
        uint64_t until = atomic_load_explicit(&p->until, memory_order_relaxed);
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&ht_clock.seq, memory_order_relaxed) != s)
            continue;
        if (tsc <= until)
            return v;
        // Still due: another thread holds the anchor (maybe preempted in
        // it), or the pair was too vague. Past their period the slope's
        // error grows without bound, so do not fall below CLOCK_MONOTONIC
        // + AHEAD; the next anchor starts at or above that value too
        // (clock_anchor's target), so nothing goes back.
        uint64_t m = clock_mono() + HT_CLOCK_AHEAD_NS;
        return v > m ? v : m;
    }
}
