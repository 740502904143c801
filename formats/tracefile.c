/*
 * formats/tracefile.c -- the trace file: header, zstd segments, bounded
 * ring of segments, and a reader that survives any damage. Byte layout in
 * docs/FORMAT.md; API in formats/tracefile.h.
 *
 * The writer is compiled into the shim (the collector can run as a thread
 * of the traced program), so it uses no stdio; malloc is fine there. The
 * reader is only built into the tools (it formats error messages).
 */
#include "formats/tracefile.h"

#include "formats/trace.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <zstd.h>
#ifdef HT_IN_SHIM
/* zstd through ht_zstd (tracefile.h): loaded when the shim's collector
 * starts, not linked. */
#define ZSTD_createCCtx ht_zstd.createCCtx
#define ZSTD_freeCCtx ht_zstd.freeCCtx
#define ZSTD_CCtx_setParameter ht_zstd.CCtx_setParameter
#define ZSTD_CCtx_reset ht_zstd.CCtx_reset
#define ZSTD_compress ht_zstd.compress
#define ZSTD_compress2 ht_zstd.compress2
#define ZSTD_compressStream2 ht_zstd.compressStream2
#define ZSTD_compressBound ht_zstd.compressBound
#define ZSTD_isError ht_zstd.isError
#else
#include <zlib.h>
#endif

/* ---- shared layout ---- */

#define TF_FILE_MAGIC "HTTRACE\0"
#define TF_SEG_MAGIC "HTSEGMT\0"
#define TF_SEG_HDR 64u
/* Version 6 file header: fixed fields, the lengths of three strings, the
 * strings, then a CRC of everything before it; the data begins at the next
 * multiple of 8. Offsets are the spec in docs/FORMAT.md. */
#define TF_FH_LENS 72u  /* u16 exe_len, argv_len, host_len, reserved */
#define TF_FH_STRS 80u  /* the strings, back to back, no NUL */
#define TF_EXE_MAX 1023u
#define TF_ARGV_MAX 2047u
#define TF_HOST_MAX 255u
#define TF_FH_MAX (TF_FH_STRS + TF_EXE_MAX + TF_ARGV_MAX + TF_HOST_MAX + 4u)
/* Version 5 (still read): fixed-size strings, data at 4096. */
#define TF5_DATA_OFF 4096u
#define TF5_FH_EXE 72u
#define TF5_FH_ARGV (TF5_FH_EXE + 1024u)
#define TF5_FH_HOST (TF5_FH_ARGV + 2048u)
#define TF5_FH_CRC (TF5_FH_HOST + 256u)
#define TF5_FH_LEN (TF5_FH_CRC + 4u)
/* Smallest ring bound: room for the largest header and a few real
 * segments. */
#define TF_MIN_RING (4096u + (64u << 10))

_Static_assert(TF_FH_MAX <= 4096u, "file header fits below the smallest ring's data");

static void
tf_put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void
tf_put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void
tf_put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* CRC-32 (zlib's: reflected 0xEDB88320) a byte at a time, for the shim,
 * which writes only its own collector's segments and links no zlib (see
 * shim_zstd.h). test_tracefile checks it against zlib's crc32. */
uint32_t
ht_tf_crc32_sw(const void *p, size_t n)
{
    static uint32_t tab[256];
    static _Atomic int made;
    if (!atomic_load_explicit(&made, memory_order_acquire)) {
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++)
                c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
            tab[i] = c; // every thread computes the same values
        }
        atomic_store_explicit(&made, 1, memory_order_release);
    }
    const uint8_t *b = p;
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++)
        c = tab[(c ^ b[i]) & 0xFFu] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

#ifdef HT_IN_SHIM
static uint32_t
tf_crc(const void *p, size_t n)
{
    return ht_tf_crc32_sw(p, n);
}
#else
static uint32_t
tf_crc(const void *p, size_t n)
{
    // zlib's crc32 takes a uInt length; segments can exceed 4 GiB only in
    // theory, but feed it in chunks anyway so the type never truncates.
    uLong c = crc32(0L, Z_NULL, 0);
    const uint8_t *b = p;
    while (n) {
        uInt k = n > (1u << 30) ? (1u << 30) : (uInt)n;
        c = crc32(c, b, k);
        b += k;
        n -= k;
    }
    return (uint32_t)c;
}
#endif

static uint64_t
tf_align8(uint64_t v)
{
    return (v + 7) & ~(uint64_t)7;
}

/* ---- writer ---- */

struct ht_tfw_s {
    int fd;
    int err;           /* sticky: first write error, as -errno */
    uint64_t pid;
    uint64_t max_size; /* 0: unbounded */
    uint64_t data_off; /* where the data area (and each ring lap) begins */
    uint64_t off;      /* where the next segment goes */
    uint64_t written;  /* bytes written, overwritten ones included */
    ZSTD_CCtx *cctx;
    uint8_t *cbuf;
    size_t ccap;
    /* The open segment's frame while it is streamed (ht_tfw_seg_feed):
     * raw bytes fed, compressed bytes made in cbuf, and its first error. */
    uint64_t fed;
    size_t clen;
    int seg_err;
};

/* pwritev until everything is written; short writes continue where they
 * stopped, EINTR retries. Returns 0 or -errno. */
static int
tfw_pwritev_all(int fd, struct iovec *iov, int n, uint64_t off)
{
    while (n > 0) {
        ssize_t k = pwritev(fd, iov, n, (off_t)off);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (k == 0)
            return -EIO;
        off += (uint64_t)k;
        while (n > 0 && (size_t)k >= iov->iov_len) {
            k -= (ssize_t)iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (uint8_t *)iov->iov_base + k;
            iov->iov_len -= (size_t)k;
        }
    }
    return 0;
}

static int tfw_cbuf_reserve(ht_tfw_t *w, size_t used, size_t more);

/* A compressor's first use allocates its tables and faults them in: 0.5-1
 * ms on this VM even for a few KB, paid when a short program's only
 * segment was written -- after the program had exited, on the way to our
 * own exit. 16 KiB at level 3 makes tables at least as large as a small
 * segment needs. */
void
ht_tfw_warm(ht_tfw_t *w)
{
    static const uint8_t zero[16u << 10];
    if (tfw_cbuf_reserve(w, 0, ZSTD_compressBound(sizeof zero)) < 0)
        return;
    ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_compressionLevel, 3);
    (void)ZSTD_compress2(w->cctx, w->cbuf, w->ccap, zero, sizeof zero);
}

int
ht_tfw_open(ht_tfw_t **out, const char *path, const ht_file_info_t *info, uint64_t max_size)
{
    *out = NULL;
    if (max_size && max_size < TF_MIN_RING)
        return -EINVAL;
#ifdef HT_IN_SHIM
    if (ht_zstd_load() < 0)
        return -ELIBACC;
#endif
    ht_tfw_t *w = calloc(1, sizeof *w);
    if (!w)
        return -ENOMEM;
    w->fd = -1;
    w->cctx = ZSTD_createCCtx();
    if (!w->cctx) {
        free(w);
        return -ENOMEM;
    }
    // The level is chosen per segment (tf_level).
    // The content checksum lets the reader tell a damaged frame from a
    // valid one even when the segment CRC is not available (torn tail).
    ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_checksumFlag, 1);

    size_t le = strnlen(info->exe, TF_EXE_MAX), la = strnlen(info->argv, TF_ARGV_MAX),
           lh = strnlen(info->host, TF_HOST_MAX);
    size_t hl = TF_FH_STRS + le + la + lh + 4, doff = (size_t)tf_align8(hl);
    uint8_t *h = calloc(1, doff);
    if (!h) {
        ZSTD_freeCCtx(w->cctx);
        free(w);
        return -ENOMEM;
    }
    memcpy(h, TF_FILE_MAGIC, 8);
    tf_put32(h + 8, HT_TF_VERSION);
    tf_put32(h + 12, (uint32_t)hl);
    tf_put32(h + 16, (uint32_t)doff);
    tf_put32(h + 20, info->flags);
    tf_put64(h + 24, max_size);
    tf_put64(h + 32, info->start_realtime_ns);
    tf_put64(h + 40, info->start_mono_ns);
    tf_put64(h + 48, info->pid);
    tf_put64(h + 56, info->sample_rate);
    tf_put32(h + 64, info->max_depth);
    tf_put32(h + 68, 0);
    tf_put16(h + TF_FH_LENS, (uint16_t)le);
    tf_put16(h + TF_FH_LENS + 2, (uint16_t)la);
    tf_put16(h + TF_FH_LENS + 4, (uint16_t)lh);
    tf_put16(h + TF_FH_LENS + 6, 0);
    memcpy(h + TF_FH_STRS, info->exe, le);
    memcpy(h + TF_FH_STRS + le, info->argv, la);
    memcpy(h + TF_FH_STRS + le + la, info->host, lh);
    tf_put32(h + hl - 4, tf_crc(h, hl - 4));

    int rc;
    w->fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (w->fd < 0) {
        rc = -errno;
        goto fail;
    }
    struct iovec iov = {h, doff};
    rc = tfw_pwritev_all(w->fd, &iov, 1, 0);
    if (rc < 0) {
        // Leave no half-made file behind.
        unlink(path);
        goto fail;
    }
    free(h);
    w->pid = info->pid;
    w->max_size = max_size;
    w->data_off = doff;
    w->off = doff;
    w->written = doff;
    *out = w;
    return 0;
fail:
    if (w->fd >= 0)
        close(w->fd);
    free(h);
    ZSTD_freeCCtx(w->cctx);
    free(w);
    return rc;
}

/* The zstd level for a segment. Streams that repeat themselves (site ids
 * in loops) compress 30-60:1, and there level 7's lazy matching finds the
 * repeats level 1 misses, for little time: python3 --all, 35 MB of
 * records, 0.80 MB in 0.10 s at level 1, 0.53 MB in 0.11 s at level 7.
 * Streams near random (random sizes, random frees) compress 1.3:1, where
 * level 7 costs 8x the time of level 1 (churn_mt: 1.4 s vs 0.16 s for 26
 * MB) for 10%; the collector shares the machine with the program, so
 * those stay at level 1. A 256 KiB sample tells which is which, for about
 * a millisecond: from the middle of a whole segment, or of the first MiB
 * of a streamed one (ht_tfw_seg_feed), where a program is often still
 * starting: python3's first MiB compresses 4.3:1 at level 1, its whole
 * trace 40:1; realloc_parse's 6:1 and 11:1; churn_mt's 1.1:1 and 1.3:1.
 * Hence 4:1 as the line. */
static int
tf_level(ht_tfw_t *w, const uint8_t *raw, size_t len)
{
    const size_t sample = 256u << 10;
    if (len < 4 * sample)
        return 3;
    if (w->ccap < ZSTD_compressBound(sample))
        return 1;
    size_t c = ZSTD_compress(w->cbuf, w->ccap, raw + len / 2, sample, 1);
    return !ZSTD_isError(c) && c * 4 < sample ? 7 : 1;
}

/* Room in cbuf for `more` bytes past its first `used`. */
static int
tfw_cbuf_reserve(ht_tfw_t *w, size_t used, size_t more)
{
    if (w->ccap - used >= more)
        return 0;
    size_t nc = w->ccap ? w->ccap : (1u << 20);
    while (nc - used < more)
        nc *= 2;
    uint8_t *nb = realloc(w->cbuf, nc);
    if (!nb)
        return -ENOMEM;
    w->cbuf = nb;
    w->ccap = nc;
    return 0;
}

/* Compress raw into the open streamed frame after what it holds (cbuf up
 * to clen); `end` closes the frame. */
static int
tfw_stream(ht_tfw_t *w, const uint8_t *raw, size_t len, bool end)
{
    ZSTD_inBuffer in = {raw, len, 0};
    for (;;) {
        if (tfw_cbuf_reserve(w, w->clen, ZSTD_compressBound(in.size - in.pos) + 64) < 0)
            return -ENOMEM;
        ZSTD_outBuffer out = {w->cbuf, w->ccap, w->clen};
        size_t k = ZSTD_compressStream2(w->cctx, &out, &in, end ? ZSTD_e_end : ZSTD_e_continue);
        w->clen = out.pos;
        if (ZSTD_isError(k))
            return -ENOMEM;
        if (in.pos == in.size && (!end || k == 0))
            return 0;
    }
}

int
ht_tfw_seg_feed(ht_tfw_t *w, const uint8_t *raw, size_t len)
{
    if (w->err)
        return w->err;
    if (w->seg_err || len == 0)
        return w->seg_err;
    if (w->fed + len > HT_TF_SEG_RAW_MAX) {
        w->seg_err = -EINVAL;
        return w->seg_err;
    }
    if (w->fed == 0) {
        // A new frame. Its level is chosen from this first part, as
        // tf_level does from a whole segment (cbuf is free scratch until
        // the frame starts).
        ZSTD_CCtx_reset(w->cctx, ZSTD_reset_session_only);
        if (tfw_cbuf_reserve(w, 0, ZSTD_compressBound(len)) < 0) {
            w->seg_err = -ENOMEM;
            return w->seg_err;
        }
        ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_compressionLevel, tf_level(w, raw, len));
    }
    w->seg_err = tfw_stream(w, raw, len, false);
    w->fed += len;
    return w->seg_err;
}

int
ht_tfw_put_segment(ht_tfw_t *w, uint64_t seq, uint64_t t0, uint64_t t1, const uint8_t *raw,
                   size_t len)
{
    // Whatever happens below, the next segment starts a new frame.
    uint64_t fed = w->fed;
    int rc = w->err ? w->err : w->seg_err;
    w->fed = 0;
    w->seg_err = 0;
    if (rc == 0 && ((len == 0 && fed == 0) || fed + len > HT_TF_SEG_RAW_MAX))
        rc = -EINVAL;
    size_t clen = 0;
    if (rc == 0 && fed) {
        // Streamed: close the frame with the last bytes.
        rc = tfw_stream(w, raw, len, true);
        clen = w->clen;
        len += (size_t)fed;
    }
    w->clen = 0;
    if (rc < 0)
        return rc;
    if (!fed) {
        if (tfw_cbuf_reserve(w, 0, ZSTD_compressBound(len)) < 0)
            return -ENOMEM; // not sticky: a later, smaller segment may fit
        ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_compressionLevel, tf_level(w, raw, len));
        clen = ZSTD_compress2(w->cctx, w->cbuf, w->ccap, raw, len);
        if (ZSTD_isError(clen))
            return -ENOMEM;
    }

    uint8_t h[TF_SEG_HDR];
    memcpy(h, TF_SEG_MAGIC, 8);
    tf_put16(h + 8, HT_TF_VERSION);
    tf_put16(h + 10, TF_SEG_HDR);
    tf_put32(h + 12, 0);
    tf_put64(h + 16, seq);
    tf_put64(h + 24, w->pid);
    tf_put64(h + 32, t0);
    tf_put64(h + 40, t1);
    tf_put32(h + 48, (uint32_t)clen);
    tf_put32(h + 52, (uint32_t)len);
    tf_put32(h + 56, tf_crc(w->cbuf, clen));
    tf_put32(h + 60, tf_crc(h, 60));

    static const uint8_t zero[8];
    uint64_t total = TF_SEG_HDR + tf_align8(clen);
    // Ring mode: a segment that would cross the bound starts the next lap
    // at the first slot. One that cannot fit even there is still written
    // (the file then exceeds the bound) -- losing data silently is worse.
    if (w->max_size && w->off + total > w->max_size && w->off > w->data_off)
        w->off = w->data_off;
    struct iovec iov[3] = {
        {h, TF_SEG_HDR},
        {w->cbuf, clen},
        {(void *)zero, (size_t)(tf_align8(clen) - clen)},
    };
    rc = tfw_pwritev_all(w->fd, iov, iov[2].iov_len ? 3 : 2, w->off);
    if (rc < 0) {
        // Sticky: the file stays readable up to the last whole segment. In
        // append mode cut the partial one off so nothing torn is left
        // behind; in ring mode the reader's checksums reject it.
        w->err = rc;
        if (!w->max_size)
            (void)!ftruncate(w->fd, (off_t)w->off);
        return rc;
    }
    w->off += total;
    w->written += total;
    return 0;
}

uint64_t
ht_tfw_bytes_written(const ht_tfw_t *w)
{
    return w->written;
}

int
ht_tfw_close(ht_tfw_t *w)
{
    if (!w)
        return 0;
    int rc = w->err;
    if (close(w->fd) < 0 && !rc)
        rc = -errno;
    ZSTD_freeCCtx(w->cctx);
    free(w->cbuf);
    free(w);
    return rc;
}

/* ---- reader (tools only: it formats messages) ---- */
#ifndef HT_IN_SHIM

#include <stdarg.h>
#include <stdio.h>

#define TFR_WIN (1u << 20)

static uint16_t
tf_get16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t
tf_get32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static uint64_t
tf_get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

struct ht_tfr_s {
    int fd;
    uint64_t fsize;
    uint64_t data_off; /* from the file header */
    ht_file_info_t info;
    ht_tfr_seg_t *segs;
    size_t nsegs, cap;
    uint64_t skipped;
    const char *path;
    // A window over the file for the resynchronising scan, so walking a
    // damaged area in 8-byte steps costs no system call per step.
    uint8_t *win;
    uint64_t win_off;
    size_t win_len;
    uint8_t *comp;
    size_t comp_cap;
    uint8_t *raw;
    size_t raw_cap;
    ZSTD_DCtx *dctx;
    ht_tf_dec_t *dec; /* 8 KiB of frames: heap, not stack */
};

static void
tfr_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static int
tfr_pread_all(int fd, void *buf, size_t n, uint64_t off)
{
    uint8_t *p = buf;
    while (n) {
        ssize_t k = pread(fd, p, n, (off_t)off);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (k == 0)
            return -EBADMSG; // the file shrank under us
        p += k;
        n -= (size_t)k;
        off += (uint64_t)k;
    }
    return 0;
}

/* Pointer to file bytes [off, off+n) through the window, or NULL when they
 * are not in the file. n must be <= TFR_WIN. */
static const uint8_t *
tfr_peek(ht_tfr_t *r, uint64_t off, size_t n)
{
    if (off + n > r->fsize)
        return NULL;
    if (off >= r->win_off && off + n <= r->win_off + r->win_len)
        return r->win + (off - r->win_off);
    uint64_t len = r->fsize - off;
    if (len > TFR_WIN)
        len = TFR_WIN;
    if (tfr_pread_all(r->fd, r->win, (size_t)len, off) < 0) {
        r->win_len = 0;
        return NULL;
    }
    r->win_off = off;
    r->win_len = (size_t)len;
    return r->win;
}

static int
tfr_grow(uint8_t **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    uint8_t *nb = realloc(*buf, need);
    if (!nb)
        return -ENOMEM;
    *buf = nb;
    *cap = need;
    return 0;
}

/* Decompress as much of a cut-short frame as there is, into r->raw, and
 * trim to the last whole record. Returns the usable length (0: nothing). */
static size_t
tfr_decode_prefix(ht_tfr_t *r, const uint8_t *comp, size_t clen, size_t raw_len)
{
    if (tfr_grow(&r->raw, &r->raw_cap, raw_len ? raw_len : 1) < 0)
        return 0;
    ZSTD_DCtx_reset(r->dctx, ZSTD_reset_session_only);
    ZSTD_inBuffer in = {comp, clen, 0};
    ZSTD_outBuffer out = {r->raw, raw_len, 0};
    // Streaming decode stops at the end of the input without error; what it
    // produced so far is exactly the start of the segment's records.
    while (in.pos < in.size && out.pos < out.size) {
        size_t k = ZSTD_decompressStream(r->dctx, &out, &in);
        if (ZSTD_isError(k))
            break;
        if (k == 0)
            break;
        if (in.pos == in.size)
            break;
    }
    ht_tf_rec_t rec;
    ht_tf_dec_init(r->dec, r->raw, out.pos);
    while (ht_tf_dec_next(r->dec, &rec) == 1)
        ;
    return (size_t)(r->dec->p - r->raw);
}

static int
tfr_add(ht_tfr_t *r, const ht_tfr_seg_t *s)
{
    if (r->nsegs == r->cap) {
        size_t nc = r->cap ? r->cap * 2 : 64;
        ht_tfr_seg_t *ns = realloc(r->segs, nc * sizeof *ns);
        if (!ns)
            return -ENOMEM;
        r->segs = ns;
        r->cap = nc;
    }
    r->segs[r->nsegs++] = *s;
    return 0;
}

static int
tfr_seg_cmp(const void *a, const void *b)
{
    const ht_tfr_seg_t *x = a, *y = b;
    if (x->seq != y->seq)
        return x->seq < y->seq ? -1 : 1;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* Parse a segment header; 0 if it is sound (magic, CRC, limits). */
static int
tfr_seg_hdr(const uint8_t *h, ht_tfr_seg_t *s)
{
    if (memcmp(h, TF_SEG_MAGIC, 8) != 0)
        return -EBADMSG;
    if (tf_get32(h + 60) != tf_crc(h, 60))
        return -EBADMSG;
    // A segment is the same in both file versions we read.
    uint16_t v = tf_get16(h + 8);
    if (v < HT_TF_VERSION_MIN || v > HT_TF_VERSION || tf_get16(h + 10) != TF_SEG_HDR)
        return -EBADMSG;
    s->seq = tf_get64(h + 16);
    s->pid = tf_get64(h + 24);
    s->t0 = tf_get64(h + 32);
    s->t1 = tf_get64(h + 40);
    s->comp_len = tf_get32(h + 48);
    s->raw_len = tf_get32(h + 52);
    s->status = HT_TFR_SEG_OK;
    if (s->raw_len == 0 || s->raw_len > HT_TF_SEG_RAW_MAX || s->comp_len == 0)
        return -EBADMSG;
    return 0;
}

/* Walk the data area, resynchronising on the segment magic at every
 * 8-byte boundary, and keep every segment whose header and data check. */
static int
tfr_scan(ht_tfr_t *r)
{
    uint64_t off = r->data_off;
    while (off + TF_SEG_HDR <= r->fsize) {
        const uint8_t *h = tfr_peek(r, off, TF_SEG_HDR);
        if (!h)
            return -EIO;
        if (memcmp(h, TF_SEG_MAGIC, 8) != 0) {
            off += 8;
            continue;
        }
        ht_tfr_seg_t s;
        if (tfr_seg_hdr(h, &s) < 0) {
            r->skipped++;
            off += 8;
            continue;
        }
        s.offset = off;
        uint64_t data = off + TF_SEG_HDR;
        if (data + s.comp_len > r->fsize) {
            // Cut short (crash or disk full while writing): keep whatever
            // whole records its prefix holds.
            size_t have = (size_t)(r->fsize - data);
            int rc = tfr_grow(&r->comp, &r->comp_cap, have ? have : 1);
            if (rc < 0)
                return rc;
            if (have && tfr_pread_all(r->fd, r->comp, have, data) == 0 &&
                tfr_decode_prefix(r, r->comp, have, (size_t)s.raw_len) > 0) {
                s.status = HT_TFR_SEG_TORN;
                if ((rc = tfr_add(r, &s)) < 0)
                    return rc;
            } else {
                r->skipped++;
            }
            off += 8;
            continue;
        }
        int rc = tfr_grow(&r->comp, &r->comp_cap, (size_t)s.comp_len);
        if (rc < 0)
            return rc;
        if ((rc = tfr_pread_all(r->fd, r->comp, (size_t)s.comp_len, data)) < 0)
            return rc;
        if (tf_get32(h + 56) != tf_crc(r->comp, (size_t)s.comp_len)) {
            r->skipped++;
            off += 8;
            continue;
        }
        if ((rc = tfr_add(r, &s)) < 0)
            return rc;
        off = tf_align8(data + s.comp_len);
    }
    if (r->nsegs > 1) // qsort of an empty (NULL) array is undefined
        qsort(r->segs, r->nsegs, sizeof *r->segs, tfr_seg_cmp);
    // One writer never reuses a sequence number; a duplicate is a stale
    // copy (or forged), keep the first found.
    size_t k = 0;
    for (size_t i = 0; i < r->nsegs; i++) {
        if (k && r->segs[k - 1].seq == r->segs[i].seq) {
            r->skipped++;
            continue;
        }
        r->segs[k++] = r->segs[i];
    }
    r->nsegs = k;
    return 0;
}

static void
tfr_get_str(char *dst, size_t cap, const uint8_t *src)
{
    memcpy(dst, src, cap);
    dst[cap - 1] = 0;
}

int
ht_tfr_open(ht_tfr_t **out, const char *path, char *err, size_t errlen)
{
    *out = NULL;
    ht_tfr_t *r = calloc(1, sizeof *r);
    if (!r) {
        tfr_err(err, errlen, "%s: out of memory", path);
        return -ENOMEM;
    }
    r->fd = -1;
    r->path = path;
    int rc;
    r->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (r->fd < 0) {
        rc = -errno;
        tfr_err(err, errlen, "%s: %s", path, strerror(errno));
        goto fail;
    }
    struct stat st;
    if (fstat(r->fd, &st) < 0) {
        rc = -errno;
        tfr_err(err, errlen, "%s: %s", path, strerror(errno));
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = -EINVAL;
        tfr_err(err, errlen, "%s: not a regular file", path);
        goto fail;
    }
    r->fsize = (uint64_t)st.st_size;
    r->win = malloc(TFR_WIN);
    r->dctx = ZSTD_createDCtx();
    r->dec = malloc(sizeof *r->dec);
    if (!r->win || !r->dctx || !r->dec) {
        rc = -ENOMEM;
        tfr_err(err, errlen, "%s: out of memory", path);
        goto fail;
    }
    // The fixed fields first: they say how long the header is.
    const uint8_t *h = tfr_peek(r, 0, TF_FH_STRS);
    if (!h) {
        rc = -EBADMSG;
        uint8_t m[8];
        if (r->fsize >= 8 && tfr_pread_all(r->fd, m, 8, 0) == 0 &&
            memcmp(m, TF_FILE_MAGIC, 8) == 0)
            tfr_err(err, errlen, "%s: trace header is truncated (%llu bytes)", path,
                    (unsigned long long)r->fsize);
        else
            tfr_err(err, errlen, "%s: not a heaptrace trace (file too short)", path);
        goto fail;
    }
    if (memcmp(h, TF_FILE_MAGIC, 8) != 0) {
        rc = -EBADMSG;
        tfr_err(err, errlen, "%s: not a heaptrace trace (bad magic)", path);
        goto fail;
    }
    uint32_t version = tf_get32(h + 8);
    if (version < HT_TF_VERSION_MIN || version > HT_TF_VERSION) {
        rc = -EBADMSG;
        // Say which side is older: a version 1 trace (pointers and ns in
        // every event) is simply recorded again with this heaptrace.
        tfr_err(err, errlen, "%s: trace format version %u, this heaptrace reads versions %u-%u%s",
                path, version, HT_TF_VERSION_MIN, HT_TF_VERSION,
                version < HT_TF_VERSION_MIN
                    ? " (recorded by an older heaptrace: record it again)"
                    : " (recorded by a newer heaptrace)");
        goto fail;
    }
    uint32_t hl = tf_get32(h + 12), doff = tf_get32(h + 16);
    size_t le = 0, la = 0, lh = 0;
    bool sane;
    if (version == 5) {
        sane = hl == TF5_FH_LEN && doff == TF5_DATA_OFF;
    } else {
        le = tf_get16(h + TF_FH_LENS);
        la = tf_get16(h + TF_FH_LENS + 2);
        lh = tf_get16(h + TF_FH_LENS + 4);
        sane = le <= TF_EXE_MAX && la <= TF_ARGV_MAX && lh <= TF_HOST_MAX &&
               hl == TF_FH_STRS + le + la + lh + 4 && doff == ((hl + 7) & ~7u);
    }
    if (sane && !(h = tfr_peek(r, 0, hl))) {
        rc = -EBADMSG;
        tfr_err(err, errlen, "%s: trace header is truncated (%llu bytes)", path,
                (unsigned long long)r->fsize);
        goto fail;
    }
    if (!sane || tf_get32(h + hl - 4) != tf_crc(h, hl - 4)) {
        rc = -EBADMSG;
        tfr_err(err, errlen, "%s: trace header is damaged (checksum mismatch)", path);
        goto fail;
    }
    r->data_off = doff;
    ht_file_info_t *fi = &r->info;
    fi->version = version;
    fi->flags = tf_get32(h + 20);
    fi->max_size = tf_get64(h + 24);
    fi->start_realtime_ns = tf_get64(h + 32);
    fi->start_mono_ns = tf_get64(h + 40);
    fi->pid = tf_get64(h + 48);
    fi->sample_rate = tf_get64(h + 56);
    fi->max_depth = tf_get32(h + 64);
    if (version == 5) {
        tfr_get_str(fi->exe, sizeof fi->exe, h + TF5_FH_EXE);
        tfr_get_str(fi->argv, sizeof fi->argv, h + TF5_FH_ARGV);
        tfr_get_str(fi->host, sizeof fi->host, h + TF5_FH_HOST);
    } else {
        memcpy(fi->exe, h + TF_FH_STRS, le);
        fi->exe[le] = 0;
        memcpy(fi->argv, h + TF_FH_STRS + le, la);
        fi->argv[la] = 0;
        memcpy(fi->host, h + TF_FH_STRS + le + la, lh);
        fi->host[lh] = 0;
    }

    if ((rc = tfr_scan(r)) < 0) {
        tfr_err(err, errlen, "%s: %s", path, rc == -ENOMEM ? "out of memory" : strerror(-rc));
        goto fail;
    }
    *out = r;
    return 0;
fail:
    ht_tfr_close(r);
    return rc;
}

const ht_file_info_t *
ht_tfr_info(const ht_tfr_t *r)
{
    return &r->info;
}

size_t
ht_tfr_nsegs(const ht_tfr_t *r)
{
    return r->nsegs;
}

const ht_tfr_seg_t *
ht_tfr_seg(const ht_tfr_t *r, size_t i)
{
    return i < r->nsegs ? &r->segs[i] : NULL;
}

uint64_t
ht_tfr_skipped_segs(const ht_tfr_t *r)
{
    return r->skipped;
}

int
ht_tfr_load(ht_tfr_t *r, size_t i, const uint8_t **raw, size_t *len, char *err, size_t errlen)
{
    *raw = NULL;
    *len = 0;
    if (i >= r->nsegs) {
        tfr_err(err, errlen, "%s: no segment %zu", r->path, i);
        return -EINVAL;
    }
    const ht_tfr_seg_t *s = &r->segs[i];
    // Re-read and re-check the header: a ring-mode trace that is still
    // being written may have overwritten this slot since open.
    uint8_t h[TF_SEG_HDR];
    ht_tfr_seg_t now;
    if (tfr_pread_all(r->fd, h, TF_SEG_HDR, s->offset) < 0 || tfr_seg_hdr(h, &now) < 0 ||
        now.seq != s->seq) {
        tfr_err(err, errlen, "%s: segment %llu at offset %llu is gone or damaged", r->path,
                (unsigned long long)s->seq, (unsigned long long)s->offset);
        return -EBADMSG;
    }
    uint64_t data = s->offset + TF_SEG_HDR;
    size_t clen = (size_t)s->comp_len;
    if (s->status == HT_TFR_SEG_TORN)
        clen = data < r->fsize ? (size_t)(r->fsize - data) : 0;
    if (clen > s->comp_len)
        clen = (size_t)s->comp_len;
    if (tfr_grow(&r->comp, &r->comp_cap, clen ? clen : 1) < 0 ||
        tfr_grow(&r->raw, &r->raw_cap, (size_t)s->raw_len) < 0) {
        tfr_err(err, errlen, "%s: out of memory", r->path);
        return -ENOMEM;
    }
    if (tfr_pread_all(r->fd, r->comp, clen, data) < 0) {
        tfr_err(err, errlen, "%s: segment %llu: read failed", r->path,
                (unsigned long long)s->seq);
        return -EBADMSG;
    }
    if (s->status == HT_TFR_SEG_TORN) {
        size_t n = tfr_decode_prefix(r, r->comp, clen, (size_t)s->raw_len);
        *raw = r->raw;
        *len = n;
        return 0;
    }
    if (tf_get32(h + 56) != tf_crc(r->comp, clen)) {
        tfr_err(err, errlen, "%s: segment %llu: checksum mismatch", r->path,
                (unsigned long long)s->seq);
        return -EBADMSG;
    }
    size_t n = ZSTD_decompressDCtx(r->dctx, r->raw, (size_t)s->raw_len, r->comp, clen);
    if (ZSTD_isError(n) || n != s->raw_len) {
        tfr_err(err, errlen, "%s: segment %llu: does not decompress (%s)", r->path,
                (unsigned long long)s->seq,
                ZSTD_isError(n) ? ZSTD_getErrorName(n) : "length mismatch");
        return -EBADMSG;
    }
    *raw = r->raw;
    *len = n;
    return 0;
}

void
ht_tfr_close(ht_tfr_t *r)
{
    if (!r)
        return;
    if (r->fd >= 0)
        close(r->fd);
    free(r->segs);
    free(r->win);
    free(r->comp);
    free(r->raw);
    ZSTD_freeDCtx(r->dctx);
    free(r->dec);
    free(r);
}

#endif /* !HT_IN_SHIM */
