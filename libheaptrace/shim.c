/*
 * libheaptrace/shim.c -- the exported allocation functions. Each forwards
 * to the real one and tells the recorder (rec.h); no logic lives here, so
 * the unit tests can link everything else without interposing malloc.
 *
 * Rules kept by every function below: record an allocation after the real
 * call succeeded and a free before the real free; never change a return
 * value or errno; before the real functions are resolved, serve from the
 * bootstrap arena (boot.h).
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "include/heaptrace.h"
#include "libheaptrace/boot.h"
#include "libheaptrace/gotpatch.h"
#include "libheaptrace/rec.h"
#include "libheaptrace/session.h"
#include "libheaptrace/util.h"

#define SHIM_CALLER __builtin_return_address(0)
/* The interposers are leaf-like wrappers whose common path is a tail call:
 * without a frame pointer it needs no frame at all (the build keeps frame
 * pointers elsewhere; our unwinder reads CFI and does not need them). */
#define SHIM_FN HT_EXPORT __attribute__((optimize("omit-frame-pointer")))

/* Resolved? If not, resolve now; false means "this thread is resolving:
 * use the arena". */
HT_INLINE int
shim_ready(void)
{
    if (HT_LIKELY(__atomic_load_n(&ht_real.malloc, __ATOMIC_ACQUIRE) != NULL))
        return 1;
    return ht_boot_resolve() == 0;
}

HT_INLINE int
shim_resolved(void)
{
    return HT_LIKELY(__atomic_load_n(&ht_real.malloc, __ATOMIC_ACQUIRE) != NULL);
}

static void *
shim_boot_alloc(size_t n, size_t align)
{
    void *p = ht_boot_alloc(n, align);
    if (!p)
        errno = ENOMEM;
    return p;
}

/*
 * malloc, calloc and free are shaped so that their common path is a few
 * TLS updates and a tail call into the real function: no frame, no saved
 * register. Everything else (first call, sampled allocation, free of a
 * possibly recorded pointer) is out of line, reached by a tail call too,
 * so `caller` -- the interposer's return address, where the program's
 * frames begin -- is passed down explicitly.
 */
static HT_NOINLINE void *
shim_malloc_slow(size_t n, void *caller)
{
    if (!shim_ready())
        return shim_boot_alloc(n, 16);
    void *p = ht_real.malloc(n);
    if (HT_LIKELY(p != NULL))
        ht_rec_alloc_fp(p, n, caller, __builtin_frame_address(0));
    return p;
}

static HT_NOINLINE void *
shim_calloc_slow(size_t n, size_t size, void *caller)
{
    size_t total;
    if (__builtin_mul_overflow(n, size, &total)) {
        if (shim_ready())
            return ht_real.calloc(n, size); // fails, with the real errno
        errno = ENOMEM;
        return NULL;
    }
    if (!shim_ready())
        return shim_boot_alloc(total, 16); // static storage: zeroed
    void *p = ht_real.calloc(n, size);
    if (HT_LIKELY(p != NULL))
        ht_rec_alloc_fp(p, total, caller, __builtin_frame_address(0));
    return p;
}

static HT_NOINLINE void
shim_free_slow(void *p, void *caller)
{
    if (HT_UNLIKELY(ht_boot_owns(p)))
        return; // arena blocks are never given back
    ht_rec_tls.frees++;
    if (ht_live_maybe(p))
        ht_rec_free_slow(p, caller);
    if (HT_UNLIKELY(!shim_ready()))
        return; // cannot happen for a pointer the real malloc made
    ht_real.free(p);
}

/* A positive countdown implies the real functions are resolved: a thread's
 * countdown starts at 0 and is only ever set positive on a slow path,
 * which resolves first. So malloc's fast path needs no check of its own. */
SHIM_FN void *
malloc(size_t n)
{
    if (HT_LIKELY(ht_rec_alloc_skip(n)))
        return ht_real.malloc(n);
    return shim_malloc_slow(n, SHIM_CALLER);
}

/* The fast path asks the live filter only: the arena's pages are marked
 * in it (boot.c), so an arena pointer is sent to the slow path like a
 * recorded one, and ht_real.free is valid before resolution too (a
 * stand-in that resolves). */
SHIM_FN void
free(void *p)
{
    if (HT_UNLIKELY(p == NULL))
        return;
    if (HT_LIKELY(!ht_live_maybe(p))) {
        ht_rec_tls.frees++;
        ht_real.free(p);
        return;
    }
    shim_free_slow(p, SHIM_CALLER);
}

SHIM_FN void *
calloc(size_t n, size_t size)
{
    size_t total;
    // An overflowing product is never "certainly unsampled"; the slow path
    // lets the real calloc fail it.
    if (HT_LIKELY(!__builtin_mul_overflow(n, size, &total) && ht_rec_alloc_skip(total)))
        return ht_real.calloc(n, size);
    return shim_calloc_slow(n, size, SHIM_CALLER);
}

/* realloc of an arena block: move it to the real heap. */
static void *
shim_realloc_boot(void *old, size_t n, void *caller)
{
    if (n == 0)
        return NULL; // as glibc: the old block is "freed" (arena: ignored)
    void *p = ht_real.malloc(n);
    if (!p)
        return NULL;
    size_t have = ht_boot_size(old);
    memcpy(p, old, have < n ? have : n);
    ht_rec_alloc(p, n, caller);
    return p;
}

/* realloc proper, shared by realloc and reallocarray; `caller` is the
 * interposer's return address, where the program's frames begin. Out of
 * line and reached by a tail jump, so that its frame lies right under the
 * program's and the backtrace can start there (ht_rec_alloc_fp): five
 * frames of ours not walked at every realloc of an --all run. */
static HT_NOINLINE void *
shim_realloc_impl(void *old, size_t n, void *caller)
{
    if (HT_UNLIKELY(!shim_ready())) {
        void *p = shim_boot_alloc(n, 16);
        if (p && old)
            memcpy(p, old, ht_boot_size(old) < n ? ht_boot_size(old) : n);
        return p;
    }
    if (old == NULL) {
        void *p = ht_real.realloc(NULL, n);
        if (p)
            ht_rec_alloc_fp(p, n, caller, __builtin_frame_address(0));
        return p;
    }
    if (HT_UNLIKELY(ht_boot_owns(old)))
        return shim_realloc_boot(old, n, caller);
    ht_rec_realloc_t rr;
    ht_rec_realloc_pre(old, &rr);
    rr.fp = __builtin_frame_address(0);
    void *p = ht_real.realloc(old, n);
    ht_rec_realloc_post(old, p, n, &rr, caller);
    return p;
}

/* The common path, shaped like malloc's: a block we never recorded (one
 * load of the live filter, which also marks the boot arena's pages)
 * resized to a size that is certainly not sampled is counted -- its free
 * and the allocation -- and the real realloc tail-called. Everything else
 * goes through shim_realloc_impl: NULL (an allocation), size 0 (a free
 * that returns NULL), a recorded block, a sampled size. */
SHIM_FN void *
realloc(void *old, size_t n)
{
    if (HT_LIKELY(old != NULL && n != 0 && !ht_live_maybe(old) && ht_rec_alloc_skip(n))) {
        // a plain add: gcc otherwise pairs it with alloc_bytes into one
        // 16-byte load and store, which free's 8-byte add cannot forward to
        __asm__("" : "+m"(ht_rec_tls.frees));
        ht_rec_tls.frees++;
        return ht_real.realloc(old, n);
    }
    return shim_realloc_impl(old, n, SHIM_CALLER);
}

/* reallocarray is realloc after an overflow check. We do not forward to
 * the real reallocarray: glibc's calls realloc through the PLT, i.e. us
 * again, which would record the same block twice. */
HT_EXPORT void *
reallocarray(void *old, size_t n, size_t size)
{
    size_t total;
    if (__builtin_mul_overflow(n, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    return shim_realloc_impl(old, total, SHIM_CALLER);
}

HT_EXPORT int
posix_memalign(void **out, size_t align, size_t n)
{
    if (HT_UNLIKELY(!shim_ready())) {
        if (align < sizeof(void *) || (align & (align - 1)))
            return EINVAL;
        void *p = ht_boot_alloc(n, align);
        if (!p)
            return ENOMEM;
        *out = p;
        return 0;
    }
    if (!ht_real.posix_memalign)
        return ENOMEM;
    int rc = ht_real.posix_memalign(out, align, n);
    if (rc == 0 && *out)
        ht_rec_alloc(*out, n, SHIM_CALLER);
    return rc;
}

/* aligned_alloc, memalign, valloc, pvalloc: one shape, one helper. */
#define SHIM_ALIGNED(call, boot_align, n)                      \
    do {                                                       \
        if (HT_UNLIKELY(!shim_ready()))                        \
            return shim_boot_alloc((n), (boot_align));         \
        void *p_ = (call);                                     \
        if (HT_LIKELY(p_ != NULL))                             \
            ht_rec_alloc(p_, (n), SHIM_CALLER);                \
        return p_;                                             \
    } while (0)

HT_EXPORT void *
aligned_alloc(size_t align, size_t n)
{
    SHIM_ALIGNED(ht_real.aligned_alloc ? ht_real.aligned_alloc(align, n) : NULL, align, n);
}

HT_EXPORT void *
memalign(size_t align, size_t n)
{
    SHIM_ALIGNED(ht_real.memalign ? ht_real.memalign(align, n) : NULL, align, n);
}

HT_EXPORT void *
valloc(size_t n)
{
    SHIM_ALIGNED(ht_real.valloc ? ht_real.valloc(n) : NULL, 4096, n);
}

HT_EXPORT void *
pvalloc(size_t n)
{
    SHIM_ALIGNED(ht_real.pvalloc ? ht_real.pvalloc(n) : NULL, 4096, n);
}

/*
 * dlopen passes through as is, by a tail call: glibc takes the "calling
 * object" (whose RUNPATH and $ORIGIN apply) from dlopen's return address,
 * which a jump keeps being our caller's.
 *
 * The exception is RTLD_DEEPBIND: such a library binds its malloc to
 * libc's, past this shim, so after the load we point the malloc-family GOT
 * slots of what it brought in back at us (gotpatch.h). That needs code
 * after the real call, so this one call is made from here: the loader then
 * sees the shim as the caller, which only matters for a bare file name
 * that the caller's own RUNPATH would have found -- rare beside plugins
 * that use DEEPBIND, and better than changing how every plugin binds.
 */
static HT_NOINLINE void *
shim_dlopen_deepbind(const char *file, int flags)
{
    static const ht_got_sym_t family[] = {
        {"malloc", (void *)malloc},
        {"free", (void *)free},
        {"calloc", (void *)calloc},
        {"realloc", (void *)realloc},
        {"reallocarray", (void *)reallocarray},
        {"posix_memalign", (void *)posix_memalign},
        {"aligned_alloc", (void *)aligned_alloc},
        {"memalign", (void *)memalign},
        {"valloc", (void *)valloc},
        {"pvalloc", (void *)pvalloc},
    };
    void *h = ht_real.dlopen(file, flags);
    int saved = errno;
    if (h)
        ht_got_patch(family, sizeof family / sizeof family[0]);
    errno = saved;
    return h;
}

SHIM_FN void *
dlopen(const char *file, int flags)
{
    if (HT_UNLIKELY(!ht_real.dlopen))
        ht_boot_resolve();
    ht_rec_note_dlopen();
    if (HT_UNLIKELY(flags & RTLD_DEEPBIND))
        return shim_dlopen_deepbind(file, flags);
    return ht_real.dlopen(file, flags);
}

/* ---- the public API (include/heaptrace.h) ---- */

HT_EXPORT int
heaptrace_snapshot_request(int reason)
{
    // 0 is "the program asked" (heaptrace_snapshot()); other known reasons
    // pass through, unknown ones are the program asking too.
    if (reason <= 0 || reason > HT_TF_SNAP_API)
        reason = HT_TF_SNAP_API;
    return ht_rec_snapshot(reason) == 0 ? 0 : -1;
}

HT_EXPORT int
heaptrace_is_active(void)
{
    return ht_rec_ring() != NULL;
}

__attribute__((constructor)) static void
shim_init(void)
{
    int saved = errno;
    ht_sess_init();
    errno = saved;
}
