/*
 * libheaptrace/live.h -- which pointers did we record? (prefix ht_live_)
 *
 * Two parts, both mmap'd once at init and never resized:
 *  - an address filter: one 16-bit counter per 4 KiB page (direct-mapped
 *    by page number, so neighbouring pages share cache lines): how many
 *    recorded, still-live pointers start in pages mapping to it. A zero
 *    answers "never recorded" in one load -- the cost of free() for the
 *    vast majority of pointers in sampled mode.
 *  - an open-addressing table of recorded live pointers with their sizes,
 *    lock-free: insert claims an EMPTY or TOMBSTONE slot by CAS, remove
 *    CASes the key to TOMBSTONE. A key is in the table at most once
 *    because a program cannot hold the same address twice, and its free
 *    happens after its malloc returned (the program's own ordering).
 *    Slots never return to EMPTY, so probes are bounded (HT_LIVE_MAX_PROBE).
 *    An insert that finds no room goes on to overflow tables, mapped
 *    the first time one is needed (live.c) -- unless RLIMIT_AS is finite:
 *    the program's address space is not ours to take. Only when there
 *    is no room there either does it fail, and the caller must then not record that allocation
 *    (nor, consequently, its free).
 *
 * Home slots keep neighbouring addresses in neighbouring slots (see
 * live.c), so a program's working set of pointers touches a working set
 * of the table, not one random cache line and page per pointer.
 *
 * The filter is a static array (4 MiB of BSS: only pages that recorded
 * pointers map to are ever touched), so the fast path computes its address
 * from the pointer alone: one shift, one mask, one load, no pointer chase.
 */
#ifndef HT_LIBHEAPTRACE_LIVE_H
#define HT_LIBHEAPTRACE_LIVE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HT_LIVE_MAX_PROBE 64
#define HT_LIVE_FILTER_LG 21 /* 2M pages = 8 GiB of address space per wrap, 4 MiB */

extern _Atomic uint16_t ht_live_filter[1u << HT_LIVE_FILTER_LG]
    __attribute__((visibility("hidden")));

/* Map a table of 2^lg_slots entries. 0 or -errno. [init] */
int ht_live_init(unsigned lg_slots);
/* Unmap (tests only; the shim keeps its table for the process's life). */
void ht_live_fini(void);

/* --all mode, where the shim keeps no table (the collector has every
 * pointer): make free's filter say "maybe" for p's page from now on. A
 * load, and a store once per page. [as-safe] [no-alloc] */
void ht_live_mark(const void *p);

/* Might p be a recorded live pointer? false means certainly not.
 * [as-safe] [no-alloc], one load. */
static inline bool
ht_live_maybe(const void *p)
{
    return atomic_load_explicit(
               &ht_live_filter[((uintptr_t)p >> 12) & ((1u << HT_LIVE_FILTER_LG) - 1)],
               memory_order_relaxed) != 0;
}

/* Record p (size bytes) as live. 0, or -ENOSPC when no slot is free within
 * the probe bound in the table or any overflow table (counted in
 * ht_live_stats). May mmap an overflow table, only when the table has no
 * room for p. [as-safe] [no-alloc] */
int ht_live_insert(const void *p, uint64_t size);
/* Start loading p's home slot into the cache, for an insert of p that
 * comes after other work (the allocation slow path unwinds first): in a
 * large live set that slot is a cache miss, which this overlaps with the
 * unwinding instead of waiting for it. [as-safe] [no-alloc] */
void ht_live_prefetch(const void *p);
/* Remove p; true (and *size) if it was there. [as-safe] [no-alloc] */
bool ht_live_remove(const void *p, uint64_t *size);

typedef struct ht_live_stats_s {
    uint64_t inserts, removes, insert_failures, live;
    uint64_t overflowed; /* inserts that went to an overflow table */
} ht_live_stats_t;
void ht_live_stats(ht_live_stats_t *st);

#endif /* HT_LIBHEAPTRACE_LIVE_H */
