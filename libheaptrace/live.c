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
static _Atomic uint64_t live_inserts, live_removes, live_fails;

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
    memset((void *)ht_live_filter, 0, sizeof ht_live_filter);
    atomic_store(&live_inserts, 0);
    atomic_store(&live_removes, 0);
    atomic_store(&live_fails, 0);
}

static inline uint64_t
live_hash(uintptr_t p)
{
    // Fibonacci hashing of the 16-byte granule: malloc pointers are
    // 16-aligned, so the low bits carry nothing.
    return ((uint64_t)(p >> 4) * 0x9e3779b97f4a7c15ull) >> live_shift;
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
            live_filter_add(p, 1);
            atomic_fetch_add_explicit(&live_inserts, 1, memory_order_relaxed);
            return 0;
        }
    }
    atomic_fetch_add_explicit(&live_fails, 1, memory_order_relaxed);
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
        live_filter_add(p, -1);
        atomic_fetch_add_explicit(&live_removes, 1, memory_order_relaxed);
        return true;
    }
    return false;
}

void
ht_live_stats(ht_live_stats_t *st)
{
    st->inserts = atomic_load(&live_inserts);
    st->removes = atomic_load(&live_removes);
    st->insert_failures = atomic_load(&live_fails);
    st->live = st->inserts - st->removes;
}
