/*
 * analyzer/symcache.h -- what DWARF said about a module's addresses, kept
 * on disk between runs. Prefix ht_symcache_.
 *
 * Reading a module's DWARF costs the first analysis of a trace most of its
 * time on small traces: libc's separate debug file alone is ~100 ms of
 * inflating compressed sections before the first line is known. Users
 * analyze the same program again and again (report, then collapse, then
 * flamegraph, then a diff), so the answers are kept per module in
 *   $HEAPTRACE_CACHE_DIR, else $XDG_CACHE_HOME/heaptrace, else
 *   $HOME/.cache/heaptrace
 * as <build-id>.sym, valid only while the file the DWARF came from is the
 * same one (device, inode, size and modification time are in the header).
 * HEAPTRACE_CACHE_DIR=off turns the cache off.
 *
 * The file is ours but still read with bounds checks: a damaged cache is
 * ignored and rewritten, never trusted. Writes go to a temporary file
 * renamed over the old one, so concurrent analyzers lose entries at worst.
 */
#ifndef HT_ANALYZER_SYMCACHE_H
#define HT_ANALYZER_SYMCACHE_H

#include <stddef.h>
#include <stdint.h>

typedef struct ht_symcache_s ht_symcache_t;

/* One cached line, as ht_sym_line_t but with strings owned by the cache. */
typedef struct ht_symcache_line_s {
    const char *function; /* never NULL */
    const char *file;     /* NULL when unknown */
    uint32_t line;
} ht_symcache_line_t;

/* The cache of the module with this build-id whose DWARF comes from the
 * file dw_path. NULL when caching is off, the build-id is empty, or out of
 * memory: the caller then simply has no cache. */
ht_symcache_t *ht_symcache_open(const uint8_t *build_id, size_t build_id_len,
                                const char *dw_path);

/* Does the cache hold anything (worth skipping a DWARF worker for)? */
int ht_symcache_nonempty(const ht_symcache_t *c);

/* The lines of vaddr: their count (>= 1), with *lines pointing into the
 * cache, or 0 when not cached. */
int ht_symcache_get(ht_symcache_t *c, uint64_t vaddr, const ht_symcache_line_t **lines);

/* Remember the n lines of vaddr (n in 1..255; copied). */
void ht_symcache_put(ht_symcache_t *c, uint64_t vaddr, const ht_symcache_line_t *lines, int n);

/* Write new entries out (when there are any) and free. NULL is a no-op. */
void ht_symcache_close(ht_symcache_t *c);

#endif /* HT_ANALYZER_SYMCACHE_H */
