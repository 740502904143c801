/*
 * analyzer/symbols.h -- the symbolizer: (module image, ELF virtual address)
 * -> function, file:line and the chain of inlined calls. Prefix ht_sym_.
 *
 * Function names come from the ELF .symtab (falling back to .dynsym);
 * file:line and inline chains from DWARF (libdwarf), read from the binary
 * itself or from a separate debug file found by build-id under the debug
 * root or through .gnu_debuglink. C++ names are demangled. Everything is
 * parsed lazily and cached per module, and every answer is cached per
 * (module, vaddr), so resolving the same address twice costs a hash probe.
 *
 * Paths and build-ids come from untrusted traces: files are only ever
 * opened read-only and parsed with bounds checks; nothing is executed or
 * dlopen()ed. A damaged ELF or DWARF file degrades to "no information",
 * never to a crash. A binary that is missing, unreadable, or whose
 * NT_GNU_BUILD_ID differs from the recorded one is not read at all: its
 * addresses come back as "basename+0xVADDR" and the module carries one
 * warning. A wrong name is worse than no name.
 *
 * Not thread-safe: one ht_sym_t per thread, or serialize the calls.
 */
#ifndef HT_ANALYZER_SYMBOLS_H
#define HT_ANALYZER_SYMBOLS_H

#include <stddef.h>
#include <stdint.h>

/* A symbolizer with per-module caches. */
typedef struct ht_sym_s ht_sym_t;

/* One source line of a resolved address. Strings are owned by the
 * ht_sym_t and live until ht_sym_destroy. */
typedef struct ht_sym_line_s {
    const char *function; /* demangled; never NULL */
    const char *file;     /* NULL when unknown */
    uint32_t line;        /* 0 when unknown */
} ht_sym_line_t;

/* Most lines one address can produce (deeper inline chains are cut at the
 * outer end, keeping the innermost frames and the real function). */
#define HT_SYM_MAX_LINES 64

/*
 * Create a symbolizer. debug_root is where separate debug files live
 * (".build-id/xx/yyyy.debug" and "<dir>/<debuglink>" below it); NULL means
 * "/usr/lib/debug". The string is copied. Returns NULL only when out of
 * memory.
 */
ht_sym_t *ht_sym_create(const char *debug_root);

/* Free the symbolizer, every cached module and every string it returned.
 * NULL is a no-op. */
void ht_sym_destroy(ht_sym_t *s);

/*
 * Register a module image as the trace recorded it: its path and the
 * build-id bytes (build_id_len 0: none recorded, the file is trusted as
 * is). Returns a handle >= 0; the same (path, build-id) always gives the
 * same handle. The file is opened lazily, on the first resolve or
 * ht_sym_module_ok, so registering is cheap. A missing or mismatching file
 * still gets a handle (its addresses resolve to "basename+0xVADDR").
 * Returns -EINVAL (NULL path, build_id_len > 64) or -ENOMEM.
 */
int ht_sym_module(ht_sym_t *s, const char *path, const uint8_t *build_id, size_t build_id_len);

/* Start reading module h now (its ELF here, its DWARF index in its worker
 * process, without waiting), so that a caller with other work overlaps
 * the first resolve's cost with it. At most a few modules are prefetched. */
void ht_sym_prefetch(ht_sym_t *s, int h);

/*
 * Resolve an ELF virtual address in module h: vaddr = runtime address -
 * load bias, which is right for executables, PIE and shared objects alike.
 * For a return address pass (return address - 1), so the call instruction,
 * not the next one, is looked up.
 *
 * Fills out[0..max) with the innermost (inlined) function first, then each
 * enclosing inlined caller with the line of its inlined call, and the real
 * containing function last (pprof's order). Returns the number of lines
 * filled, always >= 1 when max >= 1: an address with no symbol gives one
 * line "basename+0xVADDR" with file NULL and line 0. An invalid handle
 * gives "??". Returns 0 only when max < 1 or out is NULL.
 */
int ht_sym_resolve(ht_sym_t *s, int h, uint64_t vaddr, ht_sym_line_t *out, int max);

/*
 * 1 if module h was opened, its build-id matched the recorded one (or none
 * was recorded) and it has a symbol table or DWARF; 0 otherwise. Loads the
 * module if it was not yet.
 */
int ht_sym_module_ok(ht_sym_t *s, int h);

/*
 * The one warning for module h ("/lib/x.so: build-id mismatch (recorded
 * ab12.., file has cd34..); addresses shown as x.so+0xADDR"), or NULL when
 * there is none. Owned by s; once set it never changes. Loads the module
 * if it was not yet. Damaged debug info is only discovered while
 * resolving, so ask after the module's addresses have been resolved.
 */
const char *ht_sym_module_warning(ht_sym_t *s, int h);

/* Counters for tests and progress output. */
typedef struct ht_sym_stats_s {
    uint64_t resolves;   /* ht_sym_resolve calls */
    uint64_t cache_hits; /* answered from the (module, vaddr) cache */
    uint64_t disk_hits;  /* answered from an earlier run's (symcache.h) */
    uint64_t cus_parsed; /* DWARF compile units whose lines/DIEs were read */
} ht_sym_stats_t;

/* Copy the counters into *st. */
void ht_sym_stats_get(const ht_sym_t *s, ht_sym_stats_t *st);

#endif /* HT_ANALYZER_SYMBOLS_H */
