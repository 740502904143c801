/*
 * analyzer/dwarf.h -- file:line and inline chains from DWARF (libdwarf).
 * Prefix ht_dwarf_.
 *
 * Lazy and cached: opening builds nothing; the first lookup builds an
 * index of compile-unit address ranges (CU DIEs, completed by
 * .debug_aranges); the first lookup that lands in a CU reads that CU's
 * line table and DIE tree once (functions, inlined calls and their
 * ranges) into flat sorted arrays. Later lookups in the CU are binary
 * searches.
 *
 * Every libdwarf error means "no information here", never a failure of
 * the caller: a damaged CU is marked bad and skipped.
 */
#ifndef HT_ANALYZER_DWARF_H
#define HT_ANALYZER_DWARF_H

#include <stdint.h>

typedef struct ht_dwarf_s ht_dwarf_t;

/* One frame of a lookup. Strings are owned by the ht_dwarf_t and live
 * until ht_dwarf_close. */
typedef struct ht_dwarf_frame_s {
    const char *name; /* raw: the linkage (mangled) name if there is one,
                         else DW_AT_name; NULL when DWARF has no function */
    const char *file; /* full path as the line table spells it; NULL if unknown */
    uint32_t line;    /* 0 if unknown */
} ht_dwarf_frame_t;

/*
 * Open the DWARF of the ELF file at PATH (read-only; the descriptor stays
 * open until ht_dwarf_close, libdwarf reads sections on demand). Returns 0
 * with *out set, -errno if the file cannot be opened, -ENODATA if it has
 * no DWARF or libdwarf rejects it.
 */
int ht_dwarf_open(const char *path, ht_dwarf_t **out);

/* Free everything and close the file. NULL is a no-op. */
void ht_dwarf_close(ht_dwarf_t *d);

/*
 * Look up ELF virtual address vaddr. Fills out[0..max): out[0] is the
 * innermost inlined function with the file:line of vaddr; each next frame
 * is the function that inlined the previous one, with the call_file /
 * call_line of that inlined call; the last is the real (out-of-line)
 * function. When the line table knows vaddr but no function DIE contains
 * it, one frame with name NULL is returned. Chains deeper than max keep
 * the innermost max-1 frames and the real function. Returns the number of
 * frames, 0 when DWARF knows nothing of vaddr.
 */
int ht_dwarf_lookup(ht_dwarf_t *d, uint64_t vaddr, ht_dwarf_frame_t *out, int max);

/* Number of compile units whose line table and DIEs have been read. */
uint64_t ht_dwarf_cus_parsed(const ht_dwarf_t *d);

#endif /* HT_ANALYZER_DWARF_H */
