/*
 * libheaptrace/shim_zstd.c -- loading libzstd for the shim's own
 * collector (contract: ht_zstd in formats/tracefile.h, which says why).
 */
#include "formats/tracefile.h"

#include <dlfcn.h>
#include <pthread.h>

#include "libheaptrace/log.h"

ht_zstd_t ht_zstd;

static pthread_once_t zstd_once = PTHREAD_ONCE_INIT;
static int zstd_ok;

static void
zstd_load_once(void)
{
    void *h = dlopen("libzstd.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        ht_log("cannot load libzstd.so.1 for the collector: %s; not recording",
               e ? e : "unknown error");
        return;
    }
    ht_zstd_t z;
    // dlsym's void * to a function pointer: POSIX guarantees the
    // conversion works; the union keeps it free of casts gcc warns about.
#define ZSTD_SYM(field, name)                                                                    \
    do {                                                                                         \
        union {                                                                                  \
            void *p;                                                                             \
            __typeof__(z.field) f;                                                               \
        } u_ = {dlsym(h, name)};                                                                 \
        if (!u_.p) {                                                                             \
            ht_log("libzstd.so.1 has no %s: not recording", name);                               \
            return;                                                                              \
        }                                                                                        \
        z.field = u_.f;                                                                          \
    } while (0)
    ZSTD_SYM(createCCtx, "ZSTD_createCCtx");
    ZSTD_SYM(freeCCtx, "ZSTD_freeCCtx");
    ZSTD_SYM(CCtx_setParameter, "ZSTD_CCtx_setParameter");
    ZSTD_SYM(CCtx_reset, "ZSTD_CCtx_reset");
    ZSTD_SYM(compress, "ZSTD_compress");
    ZSTD_SYM(compress2, "ZSTD_compress2");
    ZSTD_SYM(compressStream2, "ZSTD_compressStream2");
    ZSTD_SYM(compressBound, "ZSTD_compressBound");
    ZSTD_SYM(isError, "ZSTD_isError");
#undef ZSTD_SYM
    ht_zstd = z;
    zstd_ok = 1;
}

int
ht_zstd_load(void)
{
    pthread_once(&zstd_once, zstd_load_once);
    return zstd_ok ? 0 : -1;
}
