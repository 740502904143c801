/*
 * libheaptrace/unwind.c -- cached DWARF CFI unwinder (contract: unwind.h).
 *
 * A walk keeps three registers of the frame it is in: IP (a return
 * address), SP (the frame's CFA as seen from its callee) and RBP. For each
 * IP one rule gives the caller's: CFA = (RSP or RBP) + off; return
 * address at CFA + ra_off; RBP unchanged or saved at CFA + rbp_off. That
 * is all x86-64 code emitted by gcc and clang needs outside of signal
 * frames, stack realignment and PLT stubs -- and those we leave to
 * libunwind.
 *
 * Rules are computed on a miss from the object's .eh_frame_hdr search
 * table (found with _dl_find_object, lock-free) and its CIE/FDE programs,
 * and kept in an open-addressing table that readers probe without locks.
 *
 * Reading the stack: a rule only ever reads at CFA-relative addresses, and
 * the walk checks that every CFA is 8-aligned, strictly above the last
 * one, and within HT_UNWIND_STACK_WINDOW of the entry SP; every read is
 * between the frame's SP and the entry SP + window. Beyond that we trust
 * the CFI as libunwind's local unwinding does (it does not validate
 * addresses either) and as C++ exception handling must. We do not use
 * pthread_getattr_np for exact stack bounds: for the main thread it
 * reads /proc/self/maps with stdio and for every thread it mallocs a CPU
 * set -- neither belongs inside malloc or a signal handler.
 */
#include "libheaptrace/unwind.h"

#include <dlfcn.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define UNW_LOCAL_ONLY
#include <libunwind.h>

#include "libheaptrace/util.h"

static HT_TLS ht_unwind_stats_t unwind_stats;
static _Atomic int unwind_mode; // ht_unwind_mode_t

void
ht_unwind_stats_get(ht_unwind_stats_t *out)
{
    *out = unwind_stats;
}

void
ht_unwind_stats_reset(void)
{
    memset(&unwind_stats, 0, sizeof unwind_stats);
}

void
ht_unwind_mode_set(ht_unwind_mode_t mode)
{
    atomic_store_explicit(&unwind_mode, (int)mode, memory_order_release);
}

ht_unwind_mode_t
ht_unwind_mode_get(void)
{
    return (ht_unwind_mode_t)atomic_load_explicit(&unwind_mode, memory_order_acquire);
}

#ifndef __x86_64__

int
ht_unwind_backtrace(void **frames, int max)
{
    unwind_stats.traces++;
    unwind_stats.fallbacks++;
    return unw_backtrace(frames, max);
}

void
ht_unwind_flush(void)
{
}

int
ht_unwind_backtrace_from(void **frames, int max, const void *sp, uintptr_t rbp)
{
    (void)frames, (void)max, (void)sp, (void)rbp;
    return -1;
}

uint64_t
ht_unwind_cache_used(void)
{
    return 0;
}

uint64_t
ht_unwind_cache_fill_for_test(void)
{
    return 0;
}

void
ht_unwind_memo_set(void *mem)
{
    (void)mem;
}

int
ht_unwind_prepare(void)
{
    return 0;
}

#else /* __x86_64__ */

/* ---------------------------------------------------------------- rules */

/*
 * A rule packed in 64 bits (the value of a cache slot; 0 is never a rule):
 *   bits 0-1   kind
 *   bit  2     CFA is RBP-based (else RSP-based)
 *   bit  3     RBP saved at CFA + rbp_off (else unchanged)
 *   bits 16-31 rbp_off in bytes (int16)
 *   bits 32-63 cfa_off in bytes (int32)
 * The return address is always at CFA - 8 (what every x86-64 compiler
 * emits; any other place is a FALLBACK rule), so it needs no field.
 */
#define UNWIND_SLOTS (1u << HT_UNWIND_CACHE_LG)
#define UNWIND_MASK (UNWIND_SLOTS - 1u)
#define UNWIND_KIND_STEP 1u     /* a normal frame: apply the rule */
#define UNWIND_KIND_END 2u      /* return address undefined: outermost frame */
#define UNWIND_KIND_FALLBACK 3u /* something we do not interpret */
#define UNWIND_F_CFA_RBP 4u
#define UNWIND_F_RBP_SAVED 8u

#define UNWIND_RULE(flags, cfa, rbp)                                                             \
    ((uint64_t)(flags) | ((uint64_t)(uint16_t)(int16_t)(rbp) << 16) |                            \
     ((uint64_t)(uint32_t)(int32_t)(cfa) << 32))
#define UNWIND_RULE_KIND(r) ((unsigned)(r)&3u)
#define UNWIND_RULE_RBP(r) ((int64_t)(int16_t)(uint16_t)((r) >> 16))
#define UNWIND_RULE_CFA(r) ((int64_t)(int32_t)(uint32_t)((r) >> 32))

/* ---------------------------------------------------------------- cache */

/*
 * Slot: key = IP | generation << 48 (user-space addresses are below 2^47),
 * 0 = empty, UNWIND_BUSY = being written. A writer claims an empty or
 * stale (other generation) slot with a CAS to BUSY, writes the value, and
 * publishes the key with a release store; a reader checks the key before
 * and after reading the value (a seqlock with the key as sequence), so a
 * slot reclaimed under its feet reads as a miss, never as a wrong rule.
 */
#define UNWIND_PROBES 8u
#define UNWIND_BUSY UINT64_MAX
#define UNWIND_IP_BITS 48
#define UNWIND_GEN_MASK 0xffffu

/* Keys and values in two arrays (the table is keys[SLOTS] then
 * vals[SLOTS]): a slot index scales by 8 in an addressing mode, one
 * instruction less on the walk's dependency chain than a 16-byte slot. */
typedef _Atomic uint64_t unwind_slot_t;
#define UNWIND_KEY(tab, i) (&(tab)[(i)])
#define UNWIND_VAL(tab, i) (&(tab)[UNWIND_SLOTS + (i)])
#define UNWIND_TABLE_BYTES (2 * sizeof(uint64_t) * UNWIND_SLOTS)

static unwind_slot_t *_Atomic unwind_table;
static _Atomic uint64_t unwind_gen;  // low 16 bits go into keys
static _Atomic uint64_t unwind_used; // slots claimed (approximate)

/* The home slot of a key: the IP's low bits, unmixed. Return addresses of
 * one object are distinct there, collisions between objects are rare and
 * probed past, and a hash function would lengthen the walk's dependency
 * chain (IP load -> slot -> rule -> next IP load) by a multiply. */
static inline uint32_t
unwind_hash(uintptr_t ip)
{
    return (uint32_t)ip & UNWIND_MASK;
}

static inline uint64_t
unwind_key(uintptr_t ip, uint64_t gen)
{
    return (uint64_t)ip | (gen & UNWIND_GEN_MASK) << UNWIND_IP_BITS;
}

static inline int
unwind_key_stale(uint64_t k, uint64_t gen)
{
    return k != 0 && k != UNWIND_BUSY &&
           (k >> UNWIND_IP_BITS) != (gen & UNWIND_GEN_MASK);
}

/* Rule for key, or 0 if not cached. */
static inline uint64_t
unwind_cache_get(unwind_slot_t *tab, uint64_t key)
{
    uint32_t h = unwind_hash((uintptr_t)key);
    for (uint32_t i = 0; i < UNWIND_PROBES; i++) {
        uint32_t j = (h + i) & UNWIND_MASK;
        uint64_t k = atomic_load_explicit(UNWIND_KEY(tab, j), memory_order_acquire);
        if (k == key) {
            uint64_t v = atomic_load_explicit(UNWIND_VAL(tab, j), memory_order_relaxed);
            atomic_thread_fence(memory_order_acquire);
            if (atomic_load_explicit(UNWIND_KEY(tab, j), memory_order_relaxed) == key)
                return v;
            return 0;
        }
        if (k == 0)
            return 0;
    }
    return 0;
}

/* 0 if stored (or already there), -1 if no slot was free. */
static int
unwind_cache_put(unwind_slot_t *tab, uint64_t key, uint64_t gen, uint64_t val)
{
    uint32_t h = unwind_hash((uintptr_t)key);
    for (uint32_t i = 0; i < UNWIND_PROBES; i++) {
        uint32_t j = (h + i) & UNWIND_MASK;
        uint64_t k = atomic_load_explicit(UNWIND_KEY(tab, j), memory_order_relaxed);
        if (k == key)
            return 0;
        if (k != 0 && !unwind_key_stale(k, gen))
            continue;
        if (!atomic_compare_exchange_strong_explicit(UNWIND_KEY(tab, j), &k, UNWIND_BUSY,
                                                     memory_order_acquire,
                                                     memory_order_relaxed))
            continue; // taken by another thread just now: try the next slot
        // The value must not become visible before BUSY (seqlock writer).
        atomic_thread_fence(memory_order_release);
        atomic_store_explicit(UNWIND_VAL(tab, j), val, memory_order_relaxed);
        atomic_store_explicit(UNWIND_KEY(tab, j), key, memory_order_release);
        if (k == 0)
            atomic_fetch_add_explicit(&unwind_used, 1, memory_order_relaxed);
        return 0;
    }
    return -1;
}

uint64_t
ht_unwind_cache_used(void)
{
    return atomic_load_explicit(&unwind_used, memory_order_relaxed);
}

void
ht_unwind_flush(void)
{
    // New generation first: from now on no reader accepts an old entry
    // and any writer may take its slot. Then sweep old entries to empty,
    // so they do not lengthen probe chains for ever. A writer still
    // inserting with the old generation may leave a stale entry behind;
    // the next flush sweeps it (generations never wrap into validity
    // before that: 65536 flushes away).
    uint64_t gen = atomic_fetch_add_explicit(&unwind_gen, 1, memory_order_acq_rel) + 1;
    unwind_slot_t *tab = atomic_load_explicit(&unwind_table, memory_order_acquire);
    if (!tab)
        return;
    for (uint32_t i = 0; i < UNWIND_SLOTS; i++) {
        uint64_t k = atomic_load_explicit(UNWIND_KEY(tab, i), memory_order_relaxed);
        if (unwind_key_stale(k, gen) &&
            atomic_compare_exchange_strong_explicit(UNWIND_KEY(tab, i), &k, 0, memory_order_relaxed,
                                                    memory_order_relaxed))
            atomic_fetch_sub_explicit(&unwind_used, 1, memory_order_relaxed);
    }
}

uint64_t
ht_unwind_cache_fill_for_test(void)
{
    unwind_slot_t *tab = atomic_load_explicit(&unwind_table, memory_order_acquire);
    if (!tab)
        return 0;
    uint64_t gen = atomic_load_explicit(&unwind_gen, memory_order_acquire);
    uint64_t n = 0;
    for (uint32_t i = 0; i < UNWIND_SLOTS; i++) {
        uint64_t k = 0;
        // Fake IP i + 1: no code lives in the first 64 KiB (mmap_min_addr).
        if (atomic_compare_exchange_strong_explicit(UNWIND_KEY(tab, i), &k, UNWIND_BUSY,
                                                    memory_order_acquire,
                                                    memory_order_relaxed)) {
            atomic_store_explicit(UNWIND_VAL(tab, i), UNWIND_KIND_FALLBACK, memory_order_relaxed);
            atomic_store_explicit(UNWIND_KEY(tab, i), unwind_key((uintptr_t)i + 1, gen),
                                  memory_order_release);
            atomic_fetch_add_explicit(&unwind_used, 1, memory_order_relaxed);
            n++;
        }
    }
    return n;
}

/* ------------------------------------------------------ .eh_frame reading */

#define DW_EH_PE_absptr 0x00
#define DW_EH_PE_uleb128 0x01
#define DW_EH_PE_udata2 0x02
#define DW_EH_PE_udata4 0x03
#define DW_EH_PE_udata8 0x04
#define DW_EH_PE_sleb128 0x09
#define DW_EH_PE_sdata2 0x0a
#define DW_EH_PE_sdata4 0x0b
#define DW_EH_PE_sdata8 0x0c
#define DW_EH_PE_pcrel 0x10
#define DW_EH_PE_datarel 0x30
#define DW_EH_PE_indirect 0x80
#define DW_EH_PE_omit 0xff

/* DWARF register numbers on x86-64 (SysV psABI). */
#define UNWIND_REG_RBP 6
#define UNWIND_REG_RSP 7
#define UNWIND_REG_RA 16

/* A bounded byte reader: any read past `end` sets `bad`. */
typedef struct unwind_rd_s {
    const uint8_t *p, *end;
    int bad;
} unwind_rd_t;

static inline uint8_t
unwind_u8(unwind_rd_t *r)
{
    if (r->p >= r->end) {
        r->bad = 1;
        return 0;
    }
    return *r->p++;
}

static inline uint64_t
unwind_fixed(unwind_rd_t *r, size_t n)
{
    if ((size_t)(r->end - r->p) < n) {
        r->bad = 1;
        r->p = r->end;
        return 0;
    }
    uint64_t v = 0;
    memcpy(&v, r->p, n); // little-endian
    r->p += n;
    return v;
}

static uint64_t
unwind_uleb(unwind_rd_t *r)
{
    uint64_t v = 0;
    for (unsigned shift = 0;; shift += 7) {
        uint8_t b = unwind_u8(r);
        if (shift < 64)
            v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80) || r->bad)
            return v;
    }
}

static int64_t
unwind_sleb(unwind_rd_t *r)
{
    uint64_t v = 0;
    unsigned shift = 0;
    uint8_t b;
    do {
        b = unwind_u8(r);
        if (shift < 64)
            v |= (uint64_t)(b & 0x7f) << shift;
        shift += 7;
    } while ((b & 0x80) && !r->bad);
    if (shift < 64 && (b & 0x40))
        v |= ~(uint64_t)0 << shift;
    return (int64_t)v;
}

/* An encoded pointer. `datarel` is the base of DW_EH_PE_datarel (the
 * .eh_frame_hdr start, where that encoding is used on x86-64). Encodings
 * we do not expect (textrel, funcrel, aligned) set bad. */
static uintptr_t
unwind_encoded(unwind_rd_t *r, uint8_t enc, uintptr_t datarel)
{
    if (enc == DW_EH_PE_omit) {
        r->bad = 1;
        return 0;
    }
    uintptr_t field = (uintptr_t)r->p;
    uint64_t v;
    switch (enc & 0x0f) {
    case DW_EH_PE_absptr: v = unwind_fixed(r, 8); break;
    case DW_EH_PE_uleb128: v = unwind_uleb(r); break;
    case DW_EH_PE_udata2: v = unwind_fixed(r, 2); break;
    case DW_EH_PE_udata4: v = unwind_fixed(r, 4); break;
    case DW_EH_PE_udata8: v = unwind_fixed(r, 8); break;
    case DW_EH_PE_sleb128: v = (uint64_t)unwind_sleb(r); break;
    case DW_EH_PE_sdata2: v = (uint64_t)(int64_t)(int16_t)unwind_fixed(r, 2); break;
    case DW_EH_PE_sdata4: v = (uint64_t)(int64_t)(int32_t)unwind_fixed(r, 4); break;
    case DW_EH_PE_sdata8: v = unwind_fixed(r, 8); break;
    default: r->bad = 1; return 0;
    }
    switch (enc & 0x70) {
    case 0: break;
    case DW_EH_PE_pcrel: v += field; break;
    case DW_EH_PE_datarel: v += datarel; break;
    default: r->bad = 1; return 0;
    }
    if (enc & DW_EH_PE_indirect) {
        // Only personality pointers use this, and we skip those unread.
        r->bad = 1;
        return 0;
    }
    return (uintptr_t)v;
}

/* Skip an encoded value without interpreting it (the personality). */
static void
unwind_encoded_skip(unwind_rd_t *r, uint8_t enc)
{
    switch (enc & 0x0f) {
    case DW_EH_PE_absptr: case DW_EH_PE_udata8: case DW_EH_PE_sdata8: unwind_fixed(r, 8); break;
    case DW_EH_PE_udata4: case DW_EH_PE_sdata4: unwind_fixed(r, 4); break;
    case DW_EH_PE_udata2: case DW_EH_PE_sdata2: unwind_fixed(r, 2); break;
    case DW_EH_PE_uleb128: unwind_uleb(r); break;
    case DW_EH_PE_sleb128: unwind_sleb(r); break;
    default: r->bad = 1; break;
    }
}

/* A CFI entry's extent: the length word (32 bits, or 64 after the
 * 0xffffffff escape) and the content after it. 0-length is the end
 * marker. */
static int
unwind_entry(const uint8_t *at, unwind_rd_t *r)
{
    // The table of a loaded object is trusted for its own lengths (it is
    // mapped read-only from the file), but not to be absurdly long.
    r->p = at;
    r->end = at + 12;
    r->bad = 0;
    uint64_t len = unwind_fixed(r, 4);
    if (len == 0xffffffffu)
        len = unwind_fixed(r, 8);
    if (len == 0 || len > (1u << 24) || r->bad)
        return -1;
    r->end = r->p + len;
    return 0;
}

/* Register rules we track, as a row of the CFI table. */
enum { UNWIND_R_SAME = 0, UNWIND_R_OFFSET, UNWIND_R_UNDEF, UNWIND_R_BAD };

typedef struct unwind_row_s {
    int64_t cfa_off;
    int64_t rbp_off;
    int64_t ra_off;
    int8_t cfa_reg; // UNWIND_REG_RSP / _RBP, or -1: anything else
    uint8_t rbp_how, ra_how, rsp_how;
} unwind_row_t;

#define UNWIND_STATE_STACK 6

typedef struct unwind_cie_s {
    uint64_t code_align;
    int64_t data_align;
    uint8_t fde_enc;
    uint8_t has_z;
    uint8_t signal;
    const uint8_t *insns, *insns_end;
} unwind_cie_t;

static void
unwind_set_reg(unwind_row_t *row, uint64_t reg, uint8_t how, int64_t off)
{
    if (reg == UNWIND_REG_RBP) {
        row->rbp_how = how;
        row->rbp_off = off;
    } else if (reg == UNWIND_REG_RA) {
        row->ra_how = how;
        row->ra_off = off;
    } else if (reg == UNWIND_REG_RSP) {
        // The caller's RSP is the CFA by definition; any other rule for it
        // is something we do not model.
        row->rsp_how = how == UNWIND_R_SAME ? UNWIND_R_SAME : UNWIND_R_BAD;
    }
    // Other registers: the walk does not track them.
}

static void
unwind_restore_reg(unwind_row_t *row, const unwind_row_t *init, uint64_t reg)
{
    if (reg == UNWIND_REG_RBP) {
        row->rbp_how = init->rbp_how;
        row->rbp_off = init->rbp_off;
    } else if (reg == UNWIND_REG_RA) {
        row->ra_how = init->ra_how;
        row->ra_off = init->ra_off;
    } else if (reg == UNWIND_REG_RSP) {
        row->rsp_how = init->rsp_how;
    }
}

/*
 * Run a CFA program until the row that covers `target` (an address inside
 * the function, the IP - 1 of a return address). `init` is the CIE's row
 * (for DW_CFA_restore), NULL while running the CIE itself. Returns 0, or
 * -1 for an opcode or operand we cannot follow.
 */
static int
unwind_run(unwind_rd_t *r, const unwind_cie_t *cie, unwind_row_t *row,
           const unwind_row_t *init, uintptr_t loc, uintptr_t target)
{
    unwind_row_t stack[UNWIND_STATE_STACK];
    unsigned depth = 0;
    while (r->p < r->end && !r->bad) {
        uint8_t op = unwind_u8(r);
        uint64_t reg, delta;
        int64_t off;
        switch (op >> 6) {
        case 1: // DW_CFA_advance_loc
            delta = (uint64_t)(op & 0x3f) * cie->code_align;
            goto advance;
        case 2: // DW_CFA_offset
            off = (int64_t)unwind_uleb(r) * cie->data_align;
            unwind_set_reg(row, op & 0x3f, UNWIND_R_OFFSET, off);
            continue;
        case 3: // DW_CFA_restore
            if (!init)
                return -1;
            unwind_restore_reg(row, init, op & 0x3f);
            continue;
        default:
            break;
        }
        switch (op) {
        case 0x00: // DW_CFA_nop
            continue;
        case 0x01: { // DW_CFA_set_loc
            uintptr_t to = unwind_encoded(r, cie->fde_enc, 0);
            if (to > target)
                return 0;
            loc = to;
            continue;
        }
        case 0x02: delta = unwind_fixed(r, 1) * cie->code_align; goto advance;
        case 0x03: delta = unwind_fixed(r, 2) * cie->code_align; goto advance;
        case 0x04: delta = unwind_fixed(r, 4) * cie->code_align; goto advance;
        case 0x05: // DW_CFA_offset_extended
            reg = unwind_uleb(r);
            off = (int64_t)unwind_uleb(r) * cie->data_align;
            unwind_set_reg(row, reg, UNWIND_R_OFFSET, off);
            continue;
        case 0x06: // DW_CFA_restore_extended
            reg = unwind_uleb(r);
            if (!init)
                return -1;
            unwind_restore_reg(row, init, reg);
            continue;
        case 0x07: // DW_CFA_undefined
            unwind_set_reg(row, unwind_uleb(r), UNWIND_R_UNDEF, 0);
            continue;
        case 0x08: // DW_CFA_same_value
            unwind_set_reg(row, unwind_uleb(r), UNWIND_R_SAME, 0);
            continue;
        case 0x09: // DW_CFA_register
            reg = unwind_uleb(r);
            unwind_uleb(r);
            unwind_set_reg(row, reg, UNWIND_R_BAD, 0);
            continue;
        case 0x0a: // DW_CFA_remember_state
            if (depth == UNWIND_STATE_STACK)
                return -1;
            stack[depth++] = *row;
            continue;
        case 0x0b: // DW_CFA_restore_state
            if (depth == 0)
                return -1;
            // GCC relies on the CFA coming back too (as libgcc does it).
            *row = stack[--depth];
            continue;
        case 0x0c: // DW_CFA_def_cfa
            reg = unwind_uleb(r);
            row->cfa_reg = reg == UNWIND_REG_RSP || reg == UNWIND_REG_RBP ? (int8_t)reg : -1;
            row->cfa_off = (int64_t)unwind_uleb(r);
            continue;
        case 0x0d: // DW_CFA_def_cfa_register
            reg = unwind_uleb(r);
            row->cfa_reg = reg == UNWIND_REG_RSP || reg == UNWIND_REG_RBP ? (int8_t)reg : -1;
            continue;
        case 0x0e: // DW_CFA_def_cfa_offset
            row->cfa_off = (int64_t)unwind_uleb(r);
            continue;
        case 0x0f: { // DW_CFA_def_cfa_expression
            uint64_t n = unwind_uleb(r);
            row->cfa_reg = -1;
            if (n > (uint64_t)(r->end - r->p))
                return -1;
            r->p += n;
            continue;
        }
        case 0x10:   // DW_CFA_expression
        case 0x16: { // DW_CFA_val_expression
            reg = unwind_uleb(r);
            uint64_t n = unwind_uleb(r);
            unwind_set_reg(row, reg, UNWIND_R_BAD, 0);
            if (n > (uint64_t)(r->end - r->p))
                return -1;
            r->p += n;
            continue;
        }
        case 0x11: // DW_CFA_offset_extended_sf
            reg = unwind_uleb(r);
            off = unwind_sleb(r) * cie->data_align;
            unwind_set_reg(row, reg, UNWIND_R_OFFSET, off);
            continue;
        case 0x12: // DW_CFA_def_cfa_sf
            reg = unwind_uleb(r);
            row->cfa_reg = reg == UNWIND_REG_RSP || reg == UNWIND_REG_RBP ? (int8_t)reg : -1;
            row->cfa_off = unwind_sleb(r) * cie->data_align;
            continue;
        case 0x13: // DW_CFA_def_cfa_offset_sf
            row->cfa_off = unwind_sleb(r) * cie->data_align;
            continue;
        case 0x14: // DW_CFA_val_offset
            reg = unwind_uleb(r);
            unwind_uleb(r);
            unwind_set_reg(row, reg, UNWIND_R_BAD, 0);
            continue;
        case 0x15: // DW_CFA_val_offset_sf
            reg = unwind_uleb(r);
            unwind_sleb(r);
            unwind_set_reg(row, reg, UNWIND_R_BAD, 0);
            continue;
        case 0x2e: // DW_CFA_GNU_args_size: only matters to landing pads
            unwind_uleb(r);
            continue;
        case 0x2f: // DW_CFA_GNU_negative_offset_extended
            reg = unwind_uleb(r);
            off = -(int64_t)unwind_uleb(r) * cie->data_align;
            unwind_set_reg(row, reg, UNWIND_R_OFFSET, off);
            continue;
        default:
            return -1;
        }
    advance:
        // The row just built covers [loc, loc + delta): done if the
        // target is in it.
        if (target - loc < delta)
            return 0;
        loc += delta;
    }
    return r->bad ? -1 : 0;
}

static int
unwind_cie_parse(const uint8_t *at, unwind_cie_t *cie)
{
    unwind_rd_t r;
    if (unwind_entry(at, &r) < 0)
        return -1;
    if (unwind_fixed(&r, 4) != 0) // CIE id in .eh_frame
        return -1;
    uint8_t version = unwind_u8(&r);
    if (version != 1 && version != 3)
        return -1;
    const char *aug = (const char *)r.p;
    size_t alen = strnlen(aug, (size_t)(r.end - r.p));
    if (alen >= (size_t)(r.end - r.p) || alen > 8)
        return -1;
    r.p += alen + 1;
    const char *a = aug;
    if (a[0] == 'e' && a[1] == 'h') { // ancient GCC: a pointer to skip
        unwind_fixed(&r, 8);
        a += 2;
    }
    cie->code_align = unwind_uleb(&r);
    cie->data_align = unwind_sleb(&r);
    uint64_t ra = version == 1 ? unwind_u8(&r) : unwind_uleb(&r);
    if (ra != UNWIND_REG_RA)
        return -1;
    cie->fde_enc = DW_EH_PE_absptr;
    cie->has_z = 0;
    cie->signal = 0;
    if (*a == 'z') {
        cie->has_z = 1;
        uint64_t n = unwind_uleb(&r);
        if (r.bad || n > (uint64_t)(r.end - r.p))
            return -1;
        const uint8_t *data_end = r.p + n;
        for (a++; *a; a++) {
            if (*a == 'R')
                cie->fde_enc = unwind_u8(&r);
            else if (*a == 'L')
                unwind_u8(&r);
            else if (*a == 'P')
                unwind_encoded_skip(&r, unwind_u8(&r));
            else if (*a == 'S')
                cie->signal = 1;
            else if (*a == 'B')
                ; // AArch64 pointer auth key, no data
            else
                break; // unknown: the length tells where the data ends
        }
        r.p = data_end;
    } else if (*a) {
        return -1; // augmentation without a size: cannot skip what we do not know
    }
    if (r.bad)
        return -1;
    cie->insns = r.p;
    cie->insns_end = r.end;
    return 0;
}

/* The FDE of pc, by binary search in the .eh_frame_hdr table. */
static const uint8_t *
unwind_fde_find(const uint8_t *hdr, uintptr_t pc)
{
    unwind_rd_t r = {hdr, hdr + 4 + 8 + 8, 0};
    uint8_t version = unwind_u8(&r);
    uint8_t ptr_enc = unwind_u8(&r);
    uint8_t count_enc = unwind_u8(&r);
    uint8_t table_enc = unwind_u8(&r);
    // The table is always datarel sdata4 with the linkers we know; other
    // layouts (or none: count omitted) go to libunwind.
    if (version != 1 || count_enc == DW_EH_PE_omit ||
        table_enc != (DW_EH_PE_datarel | DW_EH_PE_sdata4))
        return NULL;
    unwind_encoded(&r, ptr_enc, (uintptr_t)hdr); // .eh_frame start, unused
    uintptr_t count = unwind_encoded(&r, count_enc, (uintptr_t)hdr);
    if (r.bad || count == 0 || count > (1u << 26))
        return NULL;
    const int32_t *tab = (const int32_t *)(const void *)r.p;
    uintptr_t lo = 0, hi = count; // the answer is in [lo, hi)
    while (hi - lo > 1) {
        uintptr_t mid = lo + (hi - lo) / 2;
        if ((uintptr_t)hdr + (intptr_t)tab[2 * mid] <= pc)
            lo = mid;
        else
            hi = mid;
    }
    if ((uintptr_t)hdr + (intptr_t)tab[2 * lo] > pc)
        return NULL;
    return hdr + (intptr_t)tab[2 * lo + 1];
}

/* The rule for return address ip, computed from the CFI. */
static HT_NOINLINE uint64_t
unwind_rule_compute(uintptr_t ip)
{
    const uint64_t fallback = UNWIND_RULE(UNWIND_KIND_FALLBACK, 0, 0);
    uintptr_t pc = ip - 1; // inside the call instruction: the caller's row
    struct dl_find_object dlfo;
    if (_dl_find_object((void *)pc, &dlfo) != 0 || !dlfo.dlfo_eh_frame)
        return fallback;
    const uint8_t *fde = unwind_fde_find((const uint8_t *)dlfo.dlfo_eh_frame, pc);
    if (!fde)
        return fallback;
    unwind_rd_t r;
    if (unwind_entry(fde, &r) < 0)
        return fallback;
    const uint8_t *cie_field = r.p;
    uint32_t cie_off = (uint32_t)unwind_fixed(&r, 4);
    if (cie_off == 0 || r.bad)
        return fallback;
    unwind_cie_t cie;
    if (unwind_cie_parse(cie_field - cie_off, &cie) < 0 || cie.signal)
        return fallback;
    uintptr_t begin = unwind_encoded(&r, cie.fde_enc, 0);
    uintptr_t range = unwind_encoded(&r, cie.fde_enc & 0x0f, 0);
    if (r.bad || pc < begin || pc - begin >= range)
        return fallback;
    if (cie.has_z) {
        uint64_t n = unwind_uleb(&r);
        if (r.bad || n > (uint64_t)(r.end - r.p))
            return fallback;
        r.p += n;
    }
    unwind_row_t init = {.cfa_reg = -1, .rbp_how = UNWIND_R_SAME, .ra_how = UNWIND_R_UNDEF};
    unwind_rd_t cr = {cie.insns, cie.insns_end, 0};
    if (unwind_run(&cr, &cie, &init, NULL, 0, UINTPTR_MAX) < 0)
        return fallback;
    unwind_row_t row = init;
    if (unwind_run(&r, &cie, &row, &init, begin, pc) < 0)
        return fallback;

    if (row.ra_how == UNWIND_R_UNDEF)
        return UNWIND_RULE(UNWIND_KIND_END, 0, 0);
    if (row.cfa_reg < 0 || row.rsp_how != UNWIND_R_SAME || row.ra_how != UNWIND_R_OFFSET ||
        (row.rbp_how != UNWIND_R_SAME && row.rbp_how != UNWIND_R_OFFSET))
        return fallback;
    if (row.rbp_how != UNWIND_R_OFFSET)
        row.rbp_off = 0;
    if (row.cfa_off < INT32_MIN || row.cfa_off > INT32_MAX ||
        row.ra_off != -8 || row.rbp_off < INT16_MIN || row.rbp_off > INT16_MAX ||
        ((row.cfa_off | row.ra_off | row.rbp_off) & 7))
        return fallback;
    unsigned flags = UNWIND_KIND_STEP;
    if (row.cfa_reg == UNWIND_REG_RBP)
        flags |= UNWIND_F_CFA_RBP;
    if (row.rbp_how == UNWIND_R_OFFSET)
        flags |= UNWIND_F_RBP_SAVED;
    return UNWIND_RULE(flags, row.cfa_off, row.rbp_off);
}

/* ---------------------------------------------------------------- memo */

/* One frame of a walk: the state it was stepped from (IP, SP at its return
 * address + 8, RBP), and where the step read the saved RBP (0: RBP was not
 * saved, it stays). The return address it read is at the next frame's
 * SP - 8, and what it read there is the next frame's IP. */
typedef struct unwind_mframe_s {
    uintptr_t ip, sp, rbp, rbp_at;
    /* MEMO_CFA_RBP: the step used RBP for the CFA. MEMO_RBP_USED: the
     * walk from here on depends on the RBP this frame was entered with
     * (it or a later frame uses it before one restores a saved RBP):
     * otherwise RBP need not match for the memo to serve. In code built
     * without frame pointers RBP is scratch, different at every call. */
    uint64_t flags;
} unwind_mframe_t;
#define MEMO_CFA_RBP 1u
#define MEMO_RBP_USED 2u

enum { MEMO_NONE = 0, /* unusable (none yet, or a walk that fell back) */
       MEMO_ZERO,     /* ended reading IP 0: f[n] is where */
       MEMO_END,      /* f[n-1]'s rule marked the outermost frame */
       MEMO_MAX };    /* stopped at its max: what lies beyond is unknown */

typedef struct unwind_memo_s {
    uint32_t n, how;
    uint64_t gen;
    unwind_mframe_t f[HT_UNWIND_MEMO_FRAMES + 1];
} unwind_memo_t;
_Static_assert(2 * sizeof(unwind_memo_t) <= HT_UNWIND_MEMO_BYTES, "memo size");

/* The thread's previous walk, and the buffer the next one writes. */
static HT_TLS unwind_memo_t *unwind_memo_prev, *unwind_memo_next;

void
ht_unwind_memo_set(void *mem)
{
    unwind_memo_prev = mem ? (unwind_memo_t *)mem : NULL;
    unwind_memo_next = mem ? (unwind_memo_t *)mem + 1 : NULL;
    if (mem)
        unwind_memo_prev->how = unwind_memo_next->how = MEMO_NONE;
}

/*
 * The walk has reached frame n in the state prev had at its frame pi. The
 * rest of the walk would read, frame by frame, the words prev read from
 * there on: if each still holds the same value, it would produce prev's
 * frames, so copy them (into frames and into next). Returns the walk's
 * frame count, or -1 (a word changed, or prev stopped at a max short of
 * ours): walk on. The sanity checks of the walk passed for prev on the
 * same values, all but the window, which depends on where this walk began.
 * Out of line: inlined into the walk's loop, gcc ran out of registers and
 * kept `steps`' flag as a byte on the stack, reloaded as a word -- a load
 * the store cannot forward to, 40% of the walk's samples in realloc_parse.
 */
/* Do the words a memo's steps read from f[0] on still hold the values it
 * read? Frame j's return address is at f[j + 1].sp - 8 and must still be
 * f[j + 1].ip; a saved RBP that something up the stack uses must still be
 * what the next frame was entered with (one nothing uses may hold
 * anything). Writes frames[j] = f[j].ip for the steps it checks. */
static inline bool
unwind_memo_holds(const unwind_mframe_t *f, uint32_t steps, uintptr_t limit, void **frames)
{
    // SPs climb along a memo (every step checked it), so the last is the
    // only one the window can cut.
    if (steps && f[steps].sp > limit)
        return false;
    for (uint32_t j = 0; j < steps; j++) {
        frames[j] = (void *)f[j].ip;
        if (*(const uintptr_t *)(f[j + 1].sp - 8) != f[j + 1].ip)
            return false;
        if (f[j].rbp_at && (f[j + 1].flags & MEMO_RBP_USED) &&
            *(const uintptr_t *)f[j].rbp_at != f[j + 1].rbp)
            return false;
    }
    return true;
}

/*
 * The walk has reached frame n in the state prev had at its frame pi. The
 * rest of the walk would read, frame by frame, the words prev read from
 * there on: if each still holds the same value, it would produce prev's
 * frames, so copy them (into frames and into next). Returns the walk's
 * frame count, or -1 (a word changed, or prev stopped at a max short of
 * ours): walk on. The sanity checks of the walk passed for prev on the
 * same values, all but the window, which depends on where this walk began.
 * Out of line: inlined into the walk's loop, gcc ran out of registers and
 * kept `steps`' flag as a byte on the stack, reloaded as a word -- a load
 * the store cannot forward to, 40% of the walk's samples in realloc_parse.
 */
static HT_NOINLINE int
unwind_memo_finish(const unwind_memo_t *prev, uint32_t pi, unwind_memo_t *next, int n,
                   void **frames, int max, uintptr_t limit)
{
    uint32_t want = prev->n - pi, room = (uint32_t)(max - n);
    if (prev->how == MEMO_MAX && want < room)
        return -1;
    uint32_t take = want < room ? want : room;
    // The steps from frames pi .. pi + take - 2 made the frames after
    // them; the step from the last one, only if the walk goes on to read
    // where it ends (IP 0).
    uint32_t steps = take - 1 + (uint32_t)(take == want) * (uint32_t)(prev->how == MEMO_ZERO);
    const unwind_mframe_t *f = prev->f + pi;
    if (!unwind_memo_holds(f, steps, limit, frames + n))
        return -1;
    for (uint32_t j = steps; j < take; j++)
        frames[n + (int)j] = (void *)f[j].ip;
    memcpy(&next->f[n], f, (size_t)(take + 1) * sizeof *f);
    next->n = (uint32_t)n + take;
    next->how = take == want ? prev->how : MEMO_MAX;
    unwind_stats.memo_frames += take;
    return n + (int)take;
}

/* ---------------------------------------------------------------- walk */

static HT_NOINLINE unwind_slot_t *
unwind_init(void)
{
    int mode = atomic_load_explicit(&unwind_mode, memory_order_acquire);
    if (mode == HT_UNWIND_MODE_AUTO) {
        // As opts.c: nothing from the environment of a setuid program.
        const char *v = secure_getenv("HEAPTRACE_UNWIND");
        mode = v && strcmp(v, "libunwind") == 0 ? HT_UNWIND_MODE_LIBUNWIND
                                                : HT_UNWIND_MODE_CFI;
        int expect = HT_UNWIND_MODE_AUTO;
        atomic_compare_exchange_strong_explicit(&unwind_mode, &expect, mode,
                                                memory_order_acq_rel, memory_order_acquire);
        mode = atomic_load_explicit(&unwind_mode, memory_order_acquire);
    }
    if (mode != HT_UNWIND_MODE_CFI)
        return NULL;
    unwind_slot_t *tab = atomic_load_explicit(&unwind_table, memory_order_acquire);
    if (tab)
        return tab;
    void *m = mmap(NULL, UNWIND_TABLE_BYTES, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) {
        // No cache, no point: the old path.
        atomic_store_explicit(&unwind_mode, HT_UNWIND_MODE_LIBUNWIND, memory_order_release);
        return NULL;
    }
    unwind_slot_t *expect = NULL;
    if (!atomic_compare_exchange_strong_explicit(&unwind_table, &expect, (unwind_slot_t *)m,
                                                 memory_order_acq_rel, memory_order_acquire)) {
        munmap(m, UNWIND_TABLE_BYTES); // another thread won
        return expect;
    }
    return (unwind_slot_t *)m;
}

/*
 * At load: map the table and read the mode. The miss path's first calls
 * through the PLT (_dl_find_object and co.) must not run the loader's lazy
 * resolver, which saves the vector registers on the stack (kilobytes): too
 * much for the first malloc of a thread with a 16 KiB stack or of a handler
 * on a small alternate stack. The shim is linked with -z now (Makefile) for
 * that; a warm-up trace here did the same at 1 ms of every traced process's
 * start (cold rules for the loader's frames, then libunwind's own set-up).
 */
int
ht_unwind_prepare(void)
{
    return unwind_init() != NULL;
}

__attribute__((constructor)) static void
unwind_ctor(void)
{
    unwind_init();
    ht_unwind_stats_reset();
}

/*
 * The walk proper, called by the ht_unwind_backtrace trampoline below with
 * the SP at the trampoline's entry (where the return address into our
 * caller lies) and the caller's RBP. Returns the frame count, or -1 to
 * have the trampoline tail-call unw_backtrace instead.
 */
int ht_unwind_walk_impl(void **frames, int max, uintptr_t sp, uintptr_t rbp)
    __attribute__((visibility("hidden")));

/* A rule not in the home slot: probe further, or compute and insert it.
 * Returns 0 for IP 0 (the end of a chain that no CFI marked). */
static HT_NOINLINE uint64_t
unwind_rule_slow(unwind_slot_t *tab, uintptr_t ip, uint64_t gen, unsigned *misses)
{
    if (ip == 0)
        return 0;
    uint64_t key = unwind_key(ip, gen);
    uint64_t rule = 0;
    if (HT_LIKELY((ip >> UNWIND_IP_BITS) == 0))
        rule = unwind_cache_get(tab, key);
    if (rule)
        return rule;
    (*misses)++;
    rule = unwind_rule_compute(ip);
    if ((ip >> UNWIND_IP_BITS) != 0 || unwind_cache_put(tab, key, gen, rule) < 0)
        unwind_stats.uncached++;
    return rule;
}

int
ht_unwind_walk_impl(void **frames, int max, uintptr_t sp, uintptr_t rbp)
{
    unwind_slot_t *tab = atomic_load_explicit(&unwind_table, memory_order_acquire);
    if (HT_UNLIKELY(!tab || atomic_load_explicit(&unwind_mode, memory_order_relaxed) !=
                               HT_UNWIND_MODE_CFI)) {
        tab = unwind_init();
        if (!tab) {
            unwind_stats.traces++;
            unwind_stats.fallbacks++;
            return -1;
        }
    }
    const uint64_t gen = atomic_load_explicit(&unwind_gen, memory_order_acquire);
    const uint64_t genbits = (gen & UNWIND_GEN_MASK) << UNWIND_IP_BITS;
    const uintptr_t limit = sp + HT_UNWIND_STACK_WINDOW;
    uintptr_t ip = *(const uintptr_t *)sp;
    sp += 8;
    unsigned misses = 0;
    int n = 0, rc;
    // The memo (ht_unwind_memo_set): prev is searched by SP as the walk
    // climbs (both go up the stack), next records this walk.
    unwind_memo_t *prev = unwind_memo_prev, *next = unwind_memo_next;
    if (!next || max > HT_UNWIND_MEMO_FRAMES)
        prev = next = NULL;
    else if (prev->how == MEMO_NONE || prev->gen != gen)
        prev = NULL;
    // The commonest walk, a loop's allocation: the previous walk again
    // from its first frame on. Checked here, before the general loop, with
    // memo_finish's rules for that case (pi = n = 0, every frame of prev
    // taken), and prev stays the memo as it is, nothing copied: half the
    // instructions of going through the loop (callgrind, realloc_parse).
    // Anything else -- a word changed, a different first frame -- goes the
    // general way, which sees the same first frame and decides for itself.
    if (prev && prev->n > 0 && prev->f[0].sp == sp && prev->f[0].ip == ip &&
        (prev->f[0].rbp == rbp || !(prev->f[0].flags & MEMO_RBP_USED)) &&
        prev->n <= (uint32_t)max && !(prev->how == MEMO_MAX && prev->n < (uint32_t)max)) {
        const unwind_mframe_t *f = prev->f;
        uint32_t want = prev->n, steps = want - 1 + (prev->how == MEMO_ZERO);
        if (unwind_memo_holds(f, steps, limit, frames)) {
            for (uint32_t j = steps; j < want; j++)
                frames[j] = (void *)f[j].ip;
            unwind_stats.traces++;
            unwind_stats.memo_frames += want;
            return (int)want;
        }
    }
    uint32_t pi = 0;
    uint32_t how = MEMO_MAX;
    int memo_n = 0;
    // The SP of prev's next frame not yet passed: until the walk climbs
    // to it, no frame of prev can be this one (one compare a frame; the
    // search below cost sqlite3 a dozen instructions a frame, 12 frames a
    // walk).
    uintptr_t psp = prev && prev->n ? prev->f[0].sp : UINTPTR_MAX;
    // The hot loop: per frame one probe of the home slot (key, value, key
    // again: see the seqlock above), the rule applied, one or two loads
    // from the stack. Everything else is out of line.
    while (n < max) {
        if (HT_UNLIKELY(sp >= psp)) {
            while (pi < prev->n && prev->f[pi].sp < sp)
                pi++;
            psp = pi < prev->n ? prev->f[pi].sp : UINTPTR_MAX;
            if (psp == sp && prev->f[pi].ip == ip &&
                (prev->f[pi].rbp == rbp || !(prev->f[pi].flags & MEMO_RBP_USED))) {
                int k = unwind_memo_finish(prev, pi, next, n, (void **)frames, max, limit);
                if (k >= 0) {
                    memo_n = k - n;
                    n = k;
                    goto memo_done;
                }
                psp = UINTPTR_MAX; // changed under it: walk on without
            }
        }
        if (next)
            next->f[n] = (unwind_mframe_t){ip, sp, rbp, 0, 0};
        uint32_t j = unwind_hash(ip);
        uint64_t key = (uint64_t)ip | genbits;
        uint64_t rule = 0;
        if (HT_LIKELY(atomic_load_explicit(UNWIND_KEY(tab, j), memory_order_acquire) == key)) {
            rule = atomic_load_explicit(UNWIND_VAL(tab, j), memory_order_relaxed);
            atomic_thread_fence(memory_order_acquire);
            if (HT_UNLIKELY(atomic_load_explicit(UNWIND_KEY(tab, j), memory_order_relaxed) != key))
                rule = 0;
        }
        if (HT_UNLIKELY(rule == 0)) {
            rule = unwind_rule_slow(tab, ip, gen, &misses);
            if (rule == 0) {
                how = MEMO_ZERO;
                break; // IP 0: done, like libunwind (not recorded)
            }
        }
        frames[n++] = (void *)ip;
        if (HT_UNLIKELY(UNWIND_RULE_KIND(rule) != UNWIND_KIND_STEP)) {
            if (UNWIND_RULE_KIND(rule) == UNWIND_KIND_END) {
                how = MEMO_END;
                break;
            }
            goto fallback;
        }
        uintptr_t cfa = ((rule & UNWIND_F_CFA_RBP) ? rbp : sp) + (uintptr_t)UNWIND_RULE_CFA(rule);
        if (next && (rule & UNWIND_F_CFA_RBP))
            next->f[n - 1].flags = MEMO_CFA_RBP;
        // The CFA climbs, stays word-aligned and inside the window; the
        // return address is at CFA - 8, so in [sp, limit) too.
        if (HT_UNLIKELY(cfa <= sp) | HT_UNLIKELY(cfa > limit) | HT_UNLIKELY((cfa & 7) != 0))
            goto fallback;
        if (rule & UNWIND_F_RBP_SAVED) {
            uintptr_t at = cfa + (uintptr_t)UNWIND_RULE_RBP(rule);
            if (HT_UNLIKELY(at < sp || at > cfa - 8))
                goto fallback;
            if (next)
                next->f[n - 1].rbp_at = at;
            rbp = *(const uintptr_t *)at;
        }
        ip = *(const uintptr_t *)(cfa - 8);
        sp = cfa;
    }
    if (next) {
        next->n = (uint32_t)n;
        next->how = how;
    }
memo_done:
    if (next) {
        // Which frames' RBP the rest depends on, back from the first frame
        // copied from the memo (its flags came with it) or the end.
        int own = n - memo_n;
        uint64_t used = memo_n ? next->f[own].flags & MEMO_RBP_USED : 0;
        for (int k = own - 1; k >= 0; k--) {
            unwind_mframe_t *fr = &next->f[k];
            if (fr->flags & MEMO_CFA_RBP)
                used = MEMO_RBP_USED;
            else if (fr->rbp_at)
                used = 0; // restored from the stack before anyone used it
            fr->flags |= used;
        }
        // This walk is the one the next starts from.
        next->gen = gen;
        unwind_memo_next = unwind_memo_prev;
        unwind_memo_prev = next;
    }
    rc = n;
    goto out;
fallback:
    unwind_stats.fallbacks++;
    rc = -1;
out:
    // Counted here, once a trace: a per-frame increment of TLS memory is a
    // store-to-load chain of its own.
    unwind_stats.traces++;
    unwind_stats.hits += (unsigned)(n - memo_n) - misses;
    unwind_stats.misses += misses;
    return rc;
}

int
ht_unwind_backtrace_from(void **frames, int max, const void *sp, uintptr_t rbp)
{
    if (max <= 0)
        return 0;
    return ht_unwind_walk_impl(frames, max, (uintptr_t)sp, rbp);
}

/*
 * The entry point, in assembly for two things C cannot promise: the walk
 * starts from this function's own entry SP and RBP (so frames[0] is the
 * return address into our caller), and the fallback is a real tail call,
 * so that unw_backtrace sees our caller as its caller and returns exactly
 * what it would have returned there. 16 bytes of stack of its own.
 */
__asm__(".text\n"
        ".globl ht_unwind_backtrace\n"
        ".hidden ht_unwind_backtrace\n"
        ".type ht_unwind_backtrace, @function\n"
        ".p2align 4\n"
        "ht_unwind_backtrace:\n"
        "  .cfi_startproc\n"
        "  pushq %rdi\n"
        "  .cfi_adjust_cfa_offset 8\n"
        "  pushq %rsi\n"
        "  .cfi_adjust_cfa_offset 8\n"
        "  subq $8, %rsp\n" // the call below needs a 16-byte aligned SP
        "  .cfi_adjust_cfa_offset 8\n"
        "  leaq 24(%rsp), %rdx\n" // SP at entry: the return address
        "  movq %rbp, %rcx\n"
        "  call ht_unwind_walk_impl\n"
        "  addq $8, %rsp\n"
        "  .cfi_adjust_cfa_offset -8\n"
        "  popq %rsi\n"
        "  .cfi_adjust_cfa_offset -8\n"
        "  popq %rdi\n"
        "  .cfi_adjust_cfa_offset -8\n"
        "  testl %eax, %eax\n"
        "  js 1f\n"
        "  ret\n"
        "1:\n"
        "  jmp unw_backtrace@PLT\n"
        "  .cfi_endproc\n"
        ".size ht_unwind_backtrace, .-ht_unwind_backtrace\n");

#endif /* __x86_64__ */
