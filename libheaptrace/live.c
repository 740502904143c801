/*
 * libheaptrace/live.c -- address filter and live-pointer table (contract:
 * live.h).
 */
#include "libheaptrace/live.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>

#define LIVE_EMPTY 0u
#define LIVE_TOMB 1u /* no allocator returns address 1 */

typedef struct live_slot_s {
    _Atomic uintptr_t key;
    uint64_t size; /* written by the inserter after the key; read by the remover */
} live_slot_t;

_Atomic uint16_t ht_live_filter[1u << HT_LIVE_FILTER_LG];

/*
 * Levels. Level 0 is the table proper, with home slots that keep the heap's
 * locality (live_hash). A locality-keeping hash cannot promise an even load:
 * a heap region denser than average lands as a dense run, and where runs of
 * dense regions overlap, probes overflow the bound even when the table as a
 * whole is half empty (python3 with 2M live 32..64-byte objects lost 2,545
 * inserts in a 2^22-slot level 0). So an insert that finds no room in level
 * 0 goes on to overflow levels, mapped only when first needed and never
 * unmapped: well-mixed hashes (a cluster of level 0 spreads out over them),
 * each twice the size of the previous one from level 2 on, so a program with
 * more live blocks than level 0 has slots still loses nothing. A remove looks
 * past level 0 only when it did not find its key there and level 1 exists:
 * one NULL check on the common path.
 */
#define LIVE_LEVELS 5
typedef struct live_level_s {
    _Atomic(live_slot_t *) tab; /* NULL until mapped; published with release */
    uint64_t mask;
    unsigned shift;
} live_level_t;
static live_level_t live_lv[LIVE_LEVELS];

/* Statistics, sharded: one shared counter bumped by every insert and
 * remove of every thread was a cache line bouncing between cores on each
 * event (--all, two threads: the most expensive instruction of the free
 * path). A thread picks a shard once; threads sharing one still add
 * atomically, so the sums stay exact. */
#define LIVE_SHARDS 16
typedef struct live_shard_s {
    _Atomic uint64_t inserts, removes, fails, overflowed;
} __attribute__((aligned(64))) live_shard_t;
static live_shard_t live_shards[LIVE_SHARDS];
static _Atomic uint32_t live_shard_next;
static __thread __attribute__((tls_model("initial-exec"))) live_shard_t *live_my_shard;

static inline live_shard_t *
live_shard(void)
{
    live_shard_t *s = live_my_shard;
    if (__builtin_expect(s == NULL, 0)) {
        uint32_t i = atomic_fetch_add_explicit(&live_shard_next, 1, memory_order_relaxed);
        s = live_my_shard = &live_shards[i % LIVE_SHARDS];
    }
    return s;
}

static void *
live_map(unsigned lg)
{
    // MAP_NORESERVE: pages are touched only where pointers hash to, and
    // most of a large table may never be.
    void *t = mmap(NULL, sizeof(live_slot_t) << lg, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    return t == MAP_FAILED ? NULL : t;
}

int
ht_live_init(unsigned lg_slots)
{
    if (lg_slots < 4 || lg_slots > 30)
        return -EINVAL;
    void *t = live_map(lg_slots);
    if (!t)
        return -errno;
    for (unsigned l = 0; l < LIVE_LEVELS; l++) {
        // Level 1 as large as level 0, then doubling (at most 2^30 slots).
        unsigned lg = lg_slots + (l > 1 ? l - 1 : 0);
        if (lg > 30)
            lg = 30;
        live_lv[l].mask = ((uint64_t)1 << lg) - 1;
        live_lv[l].shift = 64 - lg;
    }
    // inserts refuse until this is set, so the filter stays zero
    atomic_store_explicit(&live_lv[0].tab, t, memory_order_release);
    return 0;
}

void
ht_live_fini(void)
{
    for (unsigned l = 0; l < LIVE_LEVELS; l++) {
        live_slot_t *t = atomic_load(&live_lv[l].tab);
        if (t)
            munmap(t, sizeof(live_slot_t) * (live_lv[l].mask + 1));
        atomic_store(&live_lv[l].tab, NULL);
    }
    memset((void *)ht_live_filter, 0, sizeof ht_live_filter);
    for (int i = 0; i < LIVE_SHARDS; i++) {
        atomic_store(&live_shards[i].inserts, 0);
        atomic_store(&live_shards[i].removes, 0);
        atomic_store(&live_shards[i].fails, 0);
        atomic_store(&live_shards[i].overflowed, 0);
    }
}

/*
 * Level 0's home slot: the 16-byte granule's offset inside its 64 KiB
 * region (malloc pointers are 16-aligned; glibc's are at least 32 bytes
 * apart, so neighbours never share a home), plus a Fibonacci hash of the
 * region. Neighbouring blocks get neighbouring slots, so the table's cache
 * lines and pages are shared the way the heap's are: measured, a fully
 * mixed hash made every insert and remove of a large live set a cache and
 * TLB miss (replaying python3's 9.1M mallocs and frees into a 2^22-slot
 * table: 30-34 ns per operation with this hash, 61-65 with a mixed one).
 * The Fibonacci hash spreads consecutive regions -- a heap grows by
 * consecutive regions -- as evenly as possible over the table (three-gap
 * theorem), where a random placement would pile some on top of each other.
 * The offset is masked to the region: adding the whole granule number, as
 * this did before, made the home a linear function of the address, so that
 * regions a fixed distance apart overlapped all over the table (the same
 * replay lost 2,545 inserts; now none, and 64 KiB regions did as well as 4
 * MiB ones and better than 4 KiB ones, 34-44 ns per operation).
 */
#define LIVE_REGION_LG 16
static inline uint64_t
live_hash0(uintptr_t p)
{
    uint64_t region = (uint64_t)(p >> LIVE_REGION_LG) * 0x9e3779b97f4a7c15ull >> live_lv[0].shift;
    return (region + ((p >> 4) & ((1u << (LIVE_REGION_LG - 4)) - 1))) & live_lv[0].mask;
}

/* Overflow levels: a full mix of the granule (murmur3's finalizer), so
 * that what clustered in level 0 does not cluster again. */
static inline uint64_t
live_hash_mixed(uintptr_t p, unsigned l)
{
    uint64_t x = (uint64_t)(p >> 4) + l;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x & live_lv[l].mask;
}

/* Saturating counter: at 0xffff it sticks (the filter then says "maybe"
 * forever for that page, which costs only a probe). */
static void
live_filter_add(uintptr_t p, int delta)
{
    _Atomic uint16_t *c = &ht_live_filter[(p >> 12) & ((1u << HT_LIVE_FILTER_LG) - 1)];
    // The first insert into a page tries a write before any read, for the
    // reason live_claim gives.
    uint16_t v = 0;
    if (delta > 0) {
        if (atomic_compare_exchange_strong_explicit(c, &v, 1, memory_order_relaxed,
                                                    memory_order_relaxed))
            return; // v holds the current count otherwise
    } else {
        v = atomic_load_explicit(c, memory_order_relaxed);
    }
    for (;;) {
        if (v == 0xffff || (delta < 0 && v == 0))
            return;
        if (atomic_compare_exchange_weak_explicit(c, &v, (uint16_t)(v + delta),
                                                  memory_order_relaxed, memory_order_relaxed))
            return;
    }
}

/* ht_live_mark: the page says "maybe" from now on. */
static inline void
live_filter_stick(uintptr_t p)
{
    _Atomic uint16_t *c = &ht_live_filter[(p >> 12) & ((1u << HT_LIVE_FILTER_LG) - 1)];
    if (atomic_load_explicit(c, memory_order_relaxed) != 0xffff)
        atomic_store_explicit(c, 0xffff, memory_order_relaxed);
}

void
ht_live_mark(const void *p)
{
    live_filter_stick((uintptr_t)p);
}

/* Claim an EMPTY or TOMBSTONE slot for p within the probe bound. */
static bool
live_claim(live_slot_t *tab, uint64_t mask, uint64_t i, uintptr_t p, uint64_t size)
{
    for (unsigned k = 0; k < HT_LIVE_MAX_PROBE; k++, i = (i + 1) & mask) {
        live_slot_t *s = &tab[i];
        uintptr_t key = LIVE_EMPTY;
        // The home slot is written first, not read: the table is mapped
        // lazily, and a read of an untouched page maps the zero page, which
        // the CAS then has to replace (a second fault, and in a threaded
        // program a TLB shootdown of every CPU). Sampled, nearly every
        // insert lands on a page of its own: churn_mt took 1,700 faults.
        if (k == 0 && atomic_compare_exchange_strong_explicit(&s->key, &key, p,
                                                              memory_order_relaxed,
                                                              memory_order_relaxed)) {
            s->size = size;
            return true;
        }
        if (k != 0)
            key = atomic_load_explicit(&s->key, memory_order_relaxed);
        if (key != LIVE_EMPTY && key != LIVE_TOMB)
            continue;
        if (atomic_compare_exchange_strong_explicit(&s->key, &key, p, memory_order_relaxed,
                                                    memory_order_relaxed)) {
            s->size = size;
            return true;
        }
    }
    return false;
}

/* Level l's table, mapping it if it is not yet: the overflow path only.
 * Two threads may map it at once; the loser unmaps its copy. NULL if the
 * mapping fails. */
static live_slot_t *
live_level(unsigned l)
{
    live_slot_t *t = atomic_load_explicit(&live_lv[l].tab, memory_order_acquire);
    if (t)
        return t;
    // Under a finite RLIMIT_AS our address space is the program's: a
    // table mapped now could make one of its own allocations fail later.
    // Losing events (counted) is ours to accept; that is not.
    struct rlimit rl;
    if (getrlimit(RLIMIT_AS, &rl) != 0 || rl.rlim_cur != RLIM_INFINITY)
        return NULL;
    unsigned lg = 64 - live_lv[l].shift;
    live_slot_t *mine = live_map(lg);
    if (!mine)
        return NULL;
    if (atomic_compare_exchange_strong_explicit(&live_lv[l].tab, &t, mine, memory_order_acq_rel,
                                                memory_order_acquire))
        return mine;
    munmap(mine, sizeof(live_slot_t) << lg);
    return t;
}

int
ht_live_insert(const void *ptr, uint64_t size)
{
    uintptr_t p = (uintptr_t)ptr;
    live_slot_t *t0 = atomic_load_explicit(&live_lv[0].tab, memory_order_acquire);
    if (!t0 || p <= LIVE_TOMB)
        return -ENOSPC;
    bool ok = live_claim(t0, live_lv[0].mask, live_hash0(p), p, size);
    if (__builtin_expect(!ok, 0)) {
        int saved = errno; // mmap may set it; the program's errno is not ours
        for (unsigned l = 1; l < LIVE_LEVELS && !ok; l++) {
            live_slot_t *t = live_level(l);
            if (!t)
                break;
            ok = live_claim(t, live_lv[l].mask, live_hash_mixed(p, l), p, size);
        }
        errno = saved;
        if (!ok) {
            atomic_fetch_add_explicit(&live_shard()->fails, 1, memory_order_relaxed);
            return -ENOSPC;
        }
        atomic_fetch_add_explicit(&live_shard()->overflowed, 1, memory_order_relaxed);
    }
    live_filter_add(p, 1);
    atomic_fetch_add_explicit(&live_shard()->inserts, 1, memory_order_relaxed);
    return 0;
}

void
ht_live_prefetch(const void *ptr)
{
    live_slot_t *t0 = atomic_load_explicit(&live_lv[0].tab, memory_order_relaxed);
    if (t0)
        __builtin_prefetch(&t0[live_hash0((uintptr_t)ptr)], 1);
}

/* Find p from slot i on and make it a TOMBSTONE. */
static bool
live_take(live_slot_t *tab, uint64_t mask, uint64_t i, uintptr_t p, uint64_t *size)
{
    for (unsigned k = 0; k < HT_LIVE_MAX_PROBE; k++, i = (i + 1) & mask) {
        live_slot_t *s = &tab[i];
        uintptr_t key = atomic_load_explicit(&s->key, memory_order_relaxed);
        if (key == LIVE_EMPTY)
            return false; // inserts never skip an EMPTY slot
        if (key != p)
            continue;
        uint64_t sz = s->size;
        // Only the owner of p frees it, so nobody else changes this slot
        // until it is a TOMBSTONE: a plain store would do; the CAS makes a
        // double free in the program harmless to the table.
        if (!atomic_compare_exchange_strong_explicit(&s->key, &key, LIVE_TOMB,
                                                     memory_order_relaxed, memory_order_relaxed))
            return false;
        if (size)
            *size = sz;
        return true;
    }
    return false;
}

bool
ht_live_remove(const void *ptr, uint64_t *size)
{
    uintptr_t p = (uintptr_t)ptr;
    live_slot_t *t0 = atomic_load_explicit(&live_lv[0].tab, memory_order_acquire);
    if (!t0 || p <= LIVE_TOMB)
        return false;
    bool ok = live_take(t0, live_lv[0].mask, live_hash0(p), p, size);
    // An insert into an overflow level happened before the malloc that
    // made p returned, so before this free: if it went there, we see the
    // level's pointer and the key (both written by the inserting thread
    // before the program handed p over).
    for (unsigned l = 1; !ok && l < LIVE_LEVELS; l++) {
        live_slot_t *t = atomic_load_explicit(&live_lv[l].tab, memory_order_acquire);
        if (!t)
            break; // levels are mapped in order
        ok = live_take(t, live_lv[l].mask, live_hash_mixed(p, l), p, size);
    }
    if (!ok)
        return false;
    live_filter_add(p, -1);
    atomic_fetch_add_explicit(&live_shard()->removes, 1, memory_order_relaxed);
    return true;
}

void
ht_live_stats(ht_live_stats_t *st)
{
    st->inserts = st->removes = st->insert_failures = st->overflowed = 0;
    for (int i = 0; i < LIVE_SHARDS; i++) {
        st->overflowed += atomic_load(&live_shards[i].overflowed);
        st->inserts += atomic_load(&live_shards[i].inserts);
        st->removes += atomic_load(&live_shards[i].removes);
        st->insert_failures += atomic_load(&live_shards[i].fails);
    }
    st->live = st->inserts - st->removes;
}
