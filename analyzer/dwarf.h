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
 *
 * Isolation: libdwarf 20210528 crashes on some damaged files (a double
 * free in its .debug_rnglists loader, found by our fuzz test), and the
 * files come from untrusted traces. So libdwarf runs only in a worker
 * process forked per module on the first lookup; the worker sends back
 * flat tables (CU index; rows, functions, inline scopes and strings of
 * one CU), which are bounds-checked here before use. A worker that
 * crashes, or takes more than a minute on one CU, costs that CU its
 * information (three such failures: the whole file), never the caller.
 * Workers are children of the caller: a caller that reaps children with
 * waitpid(-1) must not do so while an ht_dwarf_t is open.
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
 * Prepare to read the DWARF of the ELF file at PATH. Only checks that the
 * file can be opened read-only; the worker opens it on the first lookup
 * (and a file libdwarf rejects then simply yields no frames). Returns 0
 * with *out set, -errno if the file cannot be opened, -ENOMEM.
 */
int ht_dwarf_open(const char *path, ht_dwarf_t **out);

/* Start the worker and have it build the CU index now, without waiting:
 * a caller with other work (the replay) overlaps the slow part of the
 * first lookup (libdwarf inflating compressed sections and reading every
 * CU header) with it. The first lookup then only reads the reply. */
void ht_dwarf_prefetch(ht_dwarf_t *d);

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

/* Stop the worker process, if one runs; tables already fetched stay, and
 * a lookup that needs a new CU starts a worker again. Lets the caller
 * bound the number of processes when many modules carry DWARF. */
void ht_dwarf_suspend(ht_dwarf_t *d);

/* 1 if a worker process runs for d. */
int ht_dwarf_is_running(const ht_dwarf_t *d);

/* How many times reading this file's DWARF failed (the worker crashed,
 * hung, or could not start); 0 when all is well. */
int ht_dwarf_failures(const ht_dwarf_t *d);

/* Number of compile units whose line table and DIEs have been read. */
uint64_t ht_dwarf_cus_parsed(const ht_dwarf_t *d);

#endif /* HT_ANALYZER_DWARF_H */
