/*
 * libheaptrace/live.c -- address filter and live-pointer table (contract:
 * live.h).
 */
#include "libheaptrace/live.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#define LIVE_EMPTY 0u
#define LIVE_TOMB 1u /* no allocator returns address 1 */

typedef struct live_slot_s {
    _Atomic uintptr_t key;
    uint64_t size; /* written by the inserter after the key; read by the remover */
} live_slot_t;

_Atomic uint16_t ht_live_filter[1u << HT_LIVE_FILTER_LG];

static live_slot_t *live_tab;
static uint64_t live_mask;
static unsigned live_shift;
static int live_sticky; /* ht_live_set_sticky: the filter only says "maybe" */

/* Statistics, sharded: one shared counter bumped by every insert and
 * remove of every thread was a cache line bouncing between cores on each
 * event (--all, two threads: the most expensive instruction of the free
 * path). A thread picks a shard once; threads sharing one still add
 * atomically, so the sums stay exact. */
#define LIVE_SHARDS 16
typedef struct live_shard_s {
    _Atomic uint64_t inserts, removes, fails;
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

int
ht_live_init(unsigned lg_slots)
{
    if (lg_slots < 4 || lg_slots > 30)
        return -EINVAL;
    size_t tlen = sizeof(live_slot_t) << lg_slots;
    // MAP_NORESERVE: pages are touched only where pointers hash to, and
    // most of a large table may never be.
    void *t = mmap(NULL, tlen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    if (t == MAP_FAILED)
        return -errno;
    live_mask = ((uint64_t)1 << lg_slots) - 1;
    live_shift = 64 - lg_slots;
    live_tab = t; // inserts refuse until this is set, so the filter stays zero
    return 0;
}

void
ht_live_fini(void)
{
    if (live_tab)
        munmap(live_tab, sizeof(live_slot_t) * (live_mask + 1));
    live_tab = NULL;
    live_sticky = 0;
    memset((void *)ht_live_filter, 0, sizeof ht_live_filter);
    for (int i = 0; i < LIVE_SHARDS; i++) {
        atomic_store(&live_shards[i].inserts, 0);
        atomic_store(&live_shards[i].removes, 0);
        atomic_store(&live_shards[i].fails, 0);
    }
}

void
ht_live_set_sticky(void)
{
    live_sticky = 1;
}

static inline uint64_t
live_hash(uintptr_t p)
{
    // The 16-byte granule (malloc pointers are 16-aligned; glibc's are at
    // least 32 bytes apart, so neighbours never share a home), offset by
    // a Fibonacci hash of the 4 MiB region: neighbouring blocks get
    // neighbouring slots, so the table's cache lines and pages are shared
    // the way the heap's are, while regions at the same offset modulo the
    // table (thread arenas are 64 MiB aligned, mmap'd blocks page aligned)
    // land apart. Measured: a fully mixed hash made every insert and
    // remove of a large live set a cache and TLB miss.
    uint64_t region = (uint64_t)(p >> 22) * 0x9e3779b97f4a7c15ull >> live_shift;
    return ((uint64_t)(p >> 4) + region) & live_mask;
}

/* Saturating counter: at 0xffff it sticks (the filter then says "maybe"
 * forever for that page, which costs only a probe). */
static void
live_filter_add(uintptr_t p, int delta)
{
    _Atomic uint16_t *c = &ht_live_filter[(p >> 12) & ((1u << HT_LIVE_FILTER_LG) - 1)];
    uint16_t v = atomic_load_explicit(c, memory_order_relaxed);
    for (;;) {
        if (v == 0xffff || (delta < 0 && v == 0))
            return;
        if (atomic_compare_exchange_weak_explicit(c, &v, (uint16_t)(v + delta),
                                                  memory_order_relaxed, memory_order_relaxed))
            return;
    }
}

/* Sticky mode: the page says "maybe" from its first insert on. */
static inline void
live_filter_stick(uintptr_t p)
{
    _Atomic uint16_t *c = &ht_live_filter[(p >> 12) & ((1u << HT_LIVE_FILTER_LG) - 1)];
    if (atomic_load_explicit(c, memory_order_relaxed) != 0xffff)
        atomic_store_explicit(c, 0xffff, memory_order_relaxed);
}

int
ht_live_insert(const void *ptr, uint64_t size)
{
    uintptr_t p = (uintptr_t)ptr;
    if (!live_tab || p <= LIVE_TOMB)
        return -ENOSPC;
    uint64_t i = live_hash(p);
    for (unsigned k = 0; k < HT_LIVE_MAX_PROBE; k++, i = (i + 1) & live_mask) {
        live_slot_t *s = &live_tab[i];
        uintptr_t key = atomic_load_explicit(&s->key, memory_order_relaxed);
        if (key != LIVE_EMPTY && key != LIVE_TOMB)
            continue;
        if (atomic_compare_exchange_strong_explicit(&s->key, &key, p, memory_order_relaxed,
                                                    memory_order_relaxed)) {
            s->size = size;
            if (live_sticky)
                live_filter_stick(p);
            else
                live_filter_add(p, 1);
            atomic_fetch_add_explicit(&live_shard()->inserts, 1, memory_order_relaxed);
            return 0;
        }
    }
    atomic_fetch_add_explicit(&live_shard()->fails, 1, memory_order_relaxed);
    return -ENOSPC;
}

bool
ht_live_remove(const void *ptr, uint64_t *size)
{
    uintptr_t p = (uintptr_t)ptr;
    if (!live_tab || p <= LIVE_TOMB)
        return false;
    uint64_t i = live_hash(p);
    for (unsigned k = 0; k < HT_LIVE_MAX_PROBE; k++, i = (i + 1) & live_mask) {
        live_slot_t *s = &live_tab[i];
        uintptr_t key = atomic_load_explicit(&s->key, memory_order_relaxed);
        if (key == LIVE_EMPTY)
            return false; // inserts never skip an EMPTY slot
        if (key != p)
            continue;
        if (size)
            *size = s->size;
        // Only the owner of p frees it, so nobody else changes this slot
        // until it is a TOMBSTONE: a plain store would do; the CAS makes a
        // double free in the program harmless to the table.
        if (!atomic_compare_exchange_strong_explicit(&s->key, &key, LIVE_TOMB,
                                                     memory_order_relaxed, memory_order_relaxed))
            return false;
        if (!live_sticky)
            live_filter_add(p, -1);
        atomic_fetch_add_explicit(&live_shard()->removes, 1, memory_order_relaxed);
        return true;
    }
    return false;
}

void
ht_live_stats(ht_live_stats_t *st)
{
    st->inserts = st->removes = st->insert_failures = 0;
    for (int i = 0; i < LIVE_SHARDS; i++) {
        st->inserts += atomic_load(&live_shards[i].inserts);
        st->removes += atomic_load(&live_shards[i].removes);
        st->insert_failures += atomic_load(&live_shards[i].fails);
    }
    st->live = st->inserts - st->removes;
}
