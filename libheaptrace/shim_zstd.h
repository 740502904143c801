/*
 * libheaptrace/shim_zstd.h -- libzstd for the shim's own collector, loaded
 * when that collector starts (prefix ht_zstd_).
 *
 * The collector runs in the shim only when the shim was preloaded by hand
 * with HEAPTRACE_OUTPUT; under `heaptrace record` it runs in the command.
 * Linked, libzstd (with zlib for a CRC and libm for two functions) was
 * loaded into every traced process for nothing: 0.6 ms of each process's
 * start, which a traced shell script or build pays per command. The
 * writer in formats/tracefile.c calls zstd through the names below in the
 * shim build; its reader is not part of the shim.
 */
#ifndef HT_LIBHEAPTRACE_SHIM_ZSTD_H
#define HT_LIBHEAPTRACE_SHIM_ZSTD_H

#include <zstd.h>

typedef struct ht_zstd_s {
    ZSTD_CCtx *(*createCCtx)(void);
    size_t (*freeCCtx)(ZSTD_CCtx *cctx);
    size_t (*CCtx_setParameter)(ZSTD_CCtx *cctx, ZSTD_cParameter param, int value);
    size_t (*CCtx_reset)(ZSTD_CCtx *cctx, ZSTD_ResetDirective reset);
    size_t (*compress)(void *dst, size_t cap, const void *src, size_t len, int level);
    size_t (*compress2)(ZSTD_CCtx *cctx, void *dst, size_t cap, const void *src, size_t len);
    size_t (*compressStream2)(ZSTD_CCtx *cctx, ZSTD_outBuffer *out, ZSTD_inBuffer *in,
                              ZSTD_EndDirective end);
    size_t (*compressBound)(size_t len);
    unsigned (*isError)(size_t code);
} ht_zstd_t;

extern ht_zstd_t ht_zstd;

/* Load libzstd.so.1 once per address space (a forked child inherits it).
 * Returns 0, or -1 when it cannot be loaded (said with ht_log). Not from
 * inside malloc: dlopen allocates and takes the loader's lock. */
int ht_zstd_load(void);

#define ZSTD_createCCtx ht_zstd.createCCtx
#define ZSTD_freeCCtx ht_zstd.freeCCtx
#define ZSTD_CCtx_setParameter ht_zstd.CCtx_setParameter
#define ZSTD_CCtx_reset ht_zstd.CCtx_reset
#define ZSTD_compress ht_zstd.compress
#define ZSTD_compress2 ht_zstd.compress2
#define ZSTD_compressStream2 ht_zstd.compressStream2
#define ZSTD_compressBound ht_zstd.compressBound
#define ZSTD_isError ht_zstd.isError

#endif /* HT_LIBHEAPTRACE_SHIM_ZSTD_H */
