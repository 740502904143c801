/*
 * libheaptrace/gotpatch.h -- point the allocation-family GOT entries of
 * loaded objects at the shim (prefix ht_got_).
 *
 * Why: a library opened with RTLD_DEEPBIND looks symbols up in its own
 * dependencies first, so its `malloc` binds to the C library's, past the
 * preloaded shim: its allocations would be invisible and the shim's frees
 * would miss them. Instead of dropping the flag (which changes how the
 * program's plugin binds every other symbol), the dlopen wrapper lets the
 * load happen as asked and then rewrites just the malloc-family slots of
 * the objects it brought in. Allocations made by their constructors during
 * the dlopen itself, before the rewrite, are not seen (and not an error:
 * the shim ignores frees of blocks it never recorded).
 */
#ifndef HT_LIBHEAPTRACE_GOTPATCH_H
#define HT_LIBHEAPTRACE_GOTPATCH_H

#include <stddef.h>

/* One function the patch redirects: GOT slots bound to `name` get `to`. */
typedef struct ht_got_sym_s {
    const char *name;
    void *to;
} ht_got_sym_t;

/* Walk every loaded object except the shim itself, the C library and the
 * dynamic loader, and rewrite each GOT slot (JUMP_SLOT and GLOB_DAT
 * relocations) bound to one of syms[0..n) whose value is not already the
 * target. Read-only (RELRO) pages are made writable for the write and
 * protected again. Returns the number of slots rewritten. [init] (takes
 * the loader's lock through dl_iterate_phdr; allocates nothing). */
int ht_got_patch(const ht_got_sym_t *syms, size_t n);

#endif /* HT_LIBHEAPTRACE_GOTPATCH_H */
