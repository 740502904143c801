/*
 * libheaptrace/boot.h -- the real allocation functions and the bootstrap
 * arena (prefix ht_boot_).
 *
 * The real functions come from dlsym(RTLD_NEXT). On glibc dlsym itself
 * calls calloc, so while a thread resolves, its allocations are served
 * from a small static arena; free() of an arena pointer does nothing, and
 * realloc() of one copies out.
 */
#ifndef HT_LIBHEAPTRACE_BOOT_H
#define HT_LIBHEAPTRACE_BOOT_H

#include <stdbool.h>
#include <stddef.h>
#include <malloc.h>
#include <stdint.h>

typedef struct ht_real_s {
    void *(*malloc)(size_t);
    void (*free)(void *);
    void *(*calloc)(size_t, size_t);
    void *(*realloc)(void *, size_t);
    void *(*reallocarray)(void *, size_t, size_t);
    int (*posix_memalign)(void **, size_t, size_t);
    void *(*aligned_alloc)(size_t, size_t);
    void *(*memalign)(size_t, size_t);
    void *(*valloc)(size_t);
    void *(*pvalloc)(size_t);
    size_t (*malloc_usable_size)(void *);
    void *(*dlopen)(const char *, int);
    struct mallinfo2 (*mallinfo2)(void); /* glibc >= 2.33; NULL elsewhere */
} ht_real_t;

/* Filled by ht_boot_resolve; malloc non-NULL means resolved. */
extern ht_real_t ht_real __attribute__((visibility("hidden")));

#define HT_BOOT_ARENA_SIZE (256u * 1024u)
extern uint8_t ht_boot_arena[HT_BOOT_ARENA_SIZE] __attribute__((visibility("hidden")));

/* Resolve every real function once (idempotent, thread-safe). Aborts the
 * program only if the real malloc, free, calloc or realloc cannot be
 * found: without them nothing can run. Returns 0, or -EBUSY when called
 * re-entrantly by this thread while it is resolving (the caller must then
 * use the arena). [init] */
int ht_boot_resolve(void);

/* Allocate n bytes aligned to `align` (a power of two <= 4096) from the
 * arena; NULL when it is exhausted. Zeroed. [as-safe] [no-alloc] */
void *ht_boot_alloc(size_t n, size_t align);

/* Does p point into the arena? One compare pair. [as-safe] */
static inline bool
ht_boot_owns(const void *p)
{
    return (uintptr_t)p - (uintptr_t)ht_boot_arena < HT_BOOT_ARENA_SIZE;
}

/* Usable size of an arena block (what realloc may copy). [as-safe] */
size_t ht_boot_size(const void *p);

#endif /* HT_LIBHEAPTRACE_BOOT_H */
