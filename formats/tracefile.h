/*
 * formats/tracefile.h -- the trace FILE: a file header followed by
 * self-contained zstd segments, optionally used as a bounded ring of
 * segments (--max-size). Writer used by the collector (also inside the
 * shim: no stdio there), reader used by the analyzer. Prefix ht_tfw_ /
 * ht_tfr_. Byte layout: docs/FORMAT.md.
 *
 * A segment's decompressed payload is a run of records (formats/trace.h)
 * that begins with a keyframe -- KEYFRAME, then the MODULE, THREAD, STACK
 * and LIVE records the live set needs, the per-thread TOTALS so far, then
 * KEYFRAME_END -- followed by events in BATCHes. It can be analyzed without
 * any segment before it.
 */
#ifndef HT_FORMATS_TRACEFILE_H
#define HT_FORMATS_TRACEFILE_H

#include <stddef.h>
#include <stdint.h>

/* Largest decompressed segment the reader accepts (a keyframe of a huge
 * --all live set can be big; anything above is treated as corrupt). */
#define HT_TF_SEG_RAW_MAX (512u << 20)

typedef struct ht_file_info_s {
    uint32_t version;           /* HT_TF_VERSION of the writer */
    uint32_t flags;             /* HT_TF_PROC_* of the first process image */
    uint64_t max_size;          /* 0: unbounded; else the ring bound in bytes */
    uint64_t start_realtime_ns; /* CLOCK_REALTIME at start */
    uint64_t start_mono_ns;     /* CLOCK_MONOTONIC at the same moment */
    uint64_t pid;
    uint64_t sample_rate;       /* 0 with --all */
    uint32_t max_depth;
    char exe[1024];             /* NUL-terminated, truncated if longer */
    char argv[2048];            /* arguments separated by spaces, truncated */
    char host[256];
} ht_file_info_t;

/* ---- writer ---- */

typedef struct ht_tfw_s ht_tfw_t;

/* Create `path` (O_CREAT|O_EXCL|O_NOFOLLOW, mode 0600) and write the file
 * header. max_size 0 means unbounded. Returns 0 or -errno. */
int ht_tfw_open(ht_tfw_t **out, const char *path, const ht_file_info_t *info, uint64_t max_size);
/* Have the compressor allocate its tables and fault them in now (0.5-1
 * ms), by compressing a few KB into scratch: for a writer whose first
 * segment is written when its program has exited and someone waits. Call
 * it where that time overlaps the program, not on the program's thread. */
void ht_tfw_warm(ht_tfw_t *w);
/* Compress `raw` (one segment's records) and write it as segment `seq`
 * covering [t0, t1]. With a max_size, wraps to the first segment slot when
 * the next segment would cross the bound (older segments are overwritten).
 * The first write error is sticky: later calls return it without writing.
 * Returns 0 or -errno. */
int ht_tfw_put_segment(ht_tfw_t *w, uint64_t seq, uint64_t t0, uint64_t t1, const uint8_t *raw,
                       size_t len);
/* Compress the next `len` raw bytes of the segment being built now, ahead
 * of its ht_tfw_put_segment (which then takes only the bytes after them):
 * a long segment is compressed while the program runs, not all at once at
 * its end. The same frame as put_segment alone would make. An error here
 * fails that segment only. Returns 0 or -errno. */
int ht_tfw_seg_feed(ht_tfw_t *w, const uint8_t *raw, size_t len);
/* CRC-32 as zlib's crc32(0, p, n), without zlib (the shim's). */
uint32_t ht_tf_crc32_sw(const void *p, size_t n);
/* Bytes written so far (including what was overwritten in ring mode). */
uint64_t ht_tfw_bytes_written(const ht_tfw_t *w);
/* fsync-free close; returns the sticky error, if any. */
int ht_tfw_close(ht_tfw_t *w);

/* ---- reader ---- */

typedef enum ht_tfr_seg_status_e {
    HT_TFR_SEG_OK = 0,
    HT_TFR_SEG_TORN = 1, /* cut short: only a prefix of its records is readable */
} ht_tfr_seg_status_t;

typedef struct ht_tfr_seg_s {
    uint64_t seq, pid;
    uint64_t t0, t1;       /* time range of its events (monotonic ns) */
    uint64_t offset;       /* of the segment header in the file */
    uint64_t comp_len, raw_len;
    ht_tfr_seg_status_t status;
} ht_tfr_seg_t;

typedef struct ht_tfr_s ht_tfr_t;

/* Open a trace, check the header, find every valid segment and order them
 * by sequence number (so a wrapped ring reads oldest first). Damaged
 * segments are skipped and counted; a torn last segment is kept as TORN.
 * On failure returns -errno / -EBADMSG and writes one line (no newline)
 * into err. */
int ht_tfr_open(ht_tfr_t **out, const char *path, char *err, size_t errlen);
const ht_file_info_t *ht_tfr_info(const ht_tfr_t *r);
size_t ht_tfr_nsegs(const ht_tfr_t *r);
const ht_tfr_seg_t *ht_tfr_seg(const ht_tfr_t *r, size_t i);
/* Segments that were found damaged and skipped, and bytes they held. */
uint64_t ht_tfr_skipped_segs(const ht_tfr_t *r);
/* Decompress segment i; *raw stays valid until the next call or close.
 * A TORN segment yields the records of its valid prefix. Returns 0, or
 * -EBADMSG with one line in err. */
int ht_tfr_load(ht_tfr_t *r, size_t i, const uint8_t **raw, size_t *len, char *err, size_t errlen);
void ht_tfr_close(ht_tfr_t *r);

#ifdef HT_IN_SHIM
/*
 * The shim's build of the writer calls zstd through ht_zstd, which
 * libheaptrace/shim_zstd.c fills by loading libzstd when the shim's own
 * collector starts (ht_tfw_open calls ht_zstd_load). The collector runs in
 * the shim only when it was preloaded by hand with HEAPTRACE_OUTPUT; under
 * `heaptrace record` it runs in the command. Linked, libzstd (with zlib
 * for a CRC and libm for two functions) was loaded into every traced
 * process for nothing: 0.6 ms of each process's start, which a traced
 * shell script or build pays per command.
 */
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

#endif /* HT_IN_SHIM */

#endif /* HT_FORMATS_TRACEFILE_H */
