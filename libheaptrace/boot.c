/*
 * libheaptrace/boot.c -- dlsym(RTLD_NEXT) resolution and the bootstrap
 * arena (contract: boot.h).
 */
#include "libheaptrace/boot.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "libheaptrace/live.h"
#include "libheaptrace/log.h"
#include "libheaptrace/util.h"

static void boot_free_unresolved(void *p);

/* free starts out as a stand-in, so that the interposer's fast path can
 * jump through it without asking whether resolution happened. */
ht_real_t ht_real = {.free = boot_free_unresolved};
uint8_t ht_boot_arena[HT_BOOT_ARENA_SIZE] __attribute__((aligned(4096)));

static _Atomic size_t boot_used;
static _Atomic int boot_marked;
static HT_TLS int boot_resolving;

/* A free before resolution of a pointer that is not the arena's (it
 * cannot be ours: everything before resolution comes from the arena):
 * resolve and pass it on, or, while this thread is resolving, leak it. */
static void
boot_free_unresolved(void *p)
{
    if (ht_boot_resolve() == 0 && ht_real.free != boot_free_unresolved)
        ht_real.free(p);
}

/* The arena's pages say "maybe" in the live filter for good, so that the
 * interposer's free needs no arena check of its own: an arena pointer
 * takes the slow path, which knows it. Before the first block escapes. */
static void
boot_mark_filter(void)
{
    for (uintptr_t a = (uintptr_t)ht_boot_arena; a < (uintptr_t)ht_boot_arena + HT_BOOT_ARENA_SIZE;
         a += 4096)
        atomic_store_explicit(&ht_live_filter[(a >> 12) & ((1u << HT_LIVE_FILTER_LG) - 1)],
                              0xffff, memory_order_relaxed);
    atomic_store_explicit(&boot_marked, 1, memory_order_release);
}

/* Each arena block is preceded by a 16-byte header holding its size, so
 * realloc of an arena pointer knows how much to copy. */
void *
ht_boot_alloc(size_t n, size_t align)
{
    if (align < 16)
        align = 16;
    if (n > HT_BOOT_ARENA_SIZE || align > 4096)
        return NULL;
    if (!atomic_load_explicit(&boot_marked, memory_order_acquire))
        boot_mark_filter();
    size_t old = atomic_load_explicit(&boot_used, memory_order_relaxed);
    for (;;) {
        size_t start = HT_ALIGN_UP(old + 16, align);
        size_t end = start + HT_ALIGN_UP(n, 16);
        if (end > HT_BOOT_ARENA_SIZE)
            return NULL;
        if (atomic_compare_exchange_weak_explicit(&boot_used, &old, end, memory_order_relaxed,
                                                  memory_order_relaxed)) {
            *(size_t *)(ht_boot_arena + start - 16) = n;
            return ht_boot_arena + start; // static storage: already zero
        }
    }
}

size_t
ht_boot_size(const void *p)
{
    return *(const size_t *)((const uint8_t *)p - 16);
}

static void *
boot_sym(const char *name, int required)
{
    void *f = dlsym(RTLD_NEXT, name);
    if (!f && required) {
        // The one fatal case: there is no allocator to forward to.
        static const char msg[] = "heaptrace: cannot find the real allocator; aborting\n";
        ssize_t w = write(STDERR_FILENO, msg, sizeof msg - 1);
        (void)w;
        abort();
    }
    return f;
}

int
ht_boot_resolve(void)
{
    if (__atomic_load_n(&ht_real.malloc, __ATOMIC_ACQUIRE))
        return 0;
    if (boot_resolving)
        return -EBUSY;
    boot_resolving = 1;
    // Resolve into a local copy and publish malloc last: another thread
    // that sees malloc set finds every other pointer set too. Two threads
    // resolving at once both store the same values.
    ht_real_t r;
    r.free = boot_sym("free", 1);
    r.calloc = boot_sym("calloc", 1);
    r.realloc = boot_sym("realloc", 1);
    r.reallocarray = boot_sym("reallocarray", 0);
    r.posix_memalign = boot_sym("posix_memalign", 0);
    r.aligned_alloc = boot_sym("aligned_alloc", 0);
    r.memalign = boot_sym("memalign", 0);
    r.valloc = boot_sym("valloc", 0);
    r.pvalloc = boot_sym("pvalloc", 0);
    r.malloc_usable_size = boot_sym("malloc_usable_size", 0);
    r.dlopen = boot_sym("dlopen", 0);
    r.mallinfo2 = boot_sym("mallinfo2", 0);
    r.malloc = boot_sym("malloc", 1);
    ht_real.free = r.free;
    ht_real.calloc = r.calloc;
    ht_real.realloc = r.realloc;
    ht_real.reallocarray = r.reallocarray;
    ht_real.posix_memalign = r.posix_memalign;
    ht_real.aligned_alloc = r.aligned_alloc;
    ht_real.memalign = r.memalign;
    ht_real.valloc = r.valloc;
    ht_real.pvalloc = r.pvalloc;
    ht_real.malloc_usable_size = r.malloc_usable_size;
    ht_real.dlopen = r.dlopen;
    ht_real.mallinfo2 = r.mallinfo2;
    __atomic_store_n(&ht_real.malloc, r.malloc, __ATOMIC_RELEASE);
    boot_resolving = 0;
    return 0;
}
