/* tests/unit/test_tracefile.c -- trace file writer/reader: round trip,
 * ring wrap, truncation at every length, bit flips, forged lengths. */
#include "formats/tracefile.h"

#include "formats/trace.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#define NSEG 3

static char dir[64], path[128];
static uint8_t *segs[64];
static size_t seglen[64];

static void
tf_setup(void)
{
    strcpy(dir, "/tmp/ht-tftest.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/t.htr", dir);
}

static void
tf_teardown(void)
{
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    (void)!system(cmd);
    for (size_t i = 0; i < 64; i++) {
        free(segs[i]);
        segs[i] = NULL;
    }
}

/* A segment of n plausible ALLOC records; `noise` makes it compress badly. */
static void
make_seg(size_t i, unsigned n, int noise)
{
    size_t cap = 64 + (size_t)n * HT_TF_MAX_FIXED_REC;
    segs[i] = malloc(cap);
    ht_tf_enc_t e;
    ht_tf_enc_init(&e, segs[i], cap);
    ck_assert_int_eq(ht_tf_put_batch(&e, 100, 101, 1000 * i), 0);
    uint64_t x = 0x9e3779b97f4a7c15ull * (i + 1);
    for (unsigned k = 0; k < n; k++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        uint64_t ptr = noise ? x : 0x10000 + k * 32;
        ck_assert_int_eq(ht_tf_put_alloc(&e, 1000 * i + k, ptr, noise ? (x >> 40) : 24,
                                         noise ? (x & 0xffff) : 1, HT_TF_WEIGHT_ONE), 0);
    }
    seglen[i] = (size_t)(e.p - segs[i]);
}

static ht_file_info_t
make_info(void)
{
    ht_file_info_t fi;
    memset(&fi, 0, sizeof fi);
    fi.version = HT_TF_VERSION;
    fi.flags = HT_TF_PROC_ALL;
    fi.start_realtime_ns = 1700000000123456789ull;
    fi.start_mono_ns = 987654321;
    fi.pid = 4242;
    fi.sample_rate = 0;
    fi.max_depth = 64;
    strcpy(fi.exe, "/usr/bin/example");
    strcpy(fi.argv, "example --flag \"quoted\"");
    strcpy(fi.host, "testhost");
    return fi;
}

static void
write_trace(size_t n, unsigned recs, int noise, uint64_t max_size)
{
    ht_file_info_t fi = make_info();
    ht_tfw_t *w;
    ck_assert_int_eq(ht_tfw_open(&w, path, &fi, max_size), 0);
    for (size_t i = 0; i < n; i++) {
        make_seg(i, recs, noise);
        ck_assert_int_eq(ht_tfw_put_segment(w, i, 1000 * i, 1000 * i + recs, segs[i], seglen[i]),
                         0);
    }
    ck_assert_int_eq(ht_tfw_close(w), 0);
}

static uint32_t
le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void
put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint8_t *
slurp(size_t *n)
{
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)sz + 1);
    ck_assert_uint_eq(fread(b, 1, (size_t)sz, f), (size_t)sz);
    fclose(f);
    *n = (size_t)sz;
    return b;
}

static void
spit(const char *p, const uint8_t *b, size_t n)
{
    unlink(p);
    FILE *f = fopen(p, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(b, 1, n, f), n);
    fclose(f);
}

/* Segment i of r decompresses to exactly segs[j]. */
static void
expect_seg(ht_tfr_t *r, size_t i, size_t j)
{
    char err[256] = "";
    const uint8_t *raw;
    size_t len;
    ck_assert_int_eq(ht_tfr_load(r, i, &raw, &len, err, sizeof err), 0);
    ck_assert_uint_eq(len, seglen[j]);
    ck_assert_mem_eq(raw, segs[j], len);
}

START_TEST(test_round_trip)
{
    write_trace(NSEG, 500, 0, 0);
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0600);

    char err[256] = "";
    ht_tfr_t *r;
    ck_assert_int_eq(ht_tfr_open(&r, path, err, sizeof err), 0);
    const ht_file_info_t *fi = ht_tfr_info(r);
    ck_assert_uint_eq(fi->version, HT_TF_VERSION);
    ck_assert_uint_eq(fi->flags, HT_TF_PROC_ALL);
    ck_assert_uint_eq(fi->pid, 4242);
    ck_assert_uint_eq(fi->start_realtime_ns, 1700000000123456789ull);
    ck_assert_uint_eq(fi->start_mono_ns, 987654321);
    ck_assert_uint_eq(fi->max_depth, 64);
    ck_assert_str_eq(fi->exe, "/usr/bin/example");
    ck_assert_str_eq(fi->argv, "example --flag \"quoted\"");
    ck_assert_str_eq(fi->host, "testhost");
    ck_assert_uint_eq(ht_tfr_nsegs(r), NSEG);
    ck_assert_uint_eq(ht_tfr_skipped_segs(r), 0);
    for (size_t i = 0; i < NSEG; i++) {
        const ht_tfr_seg_t *s = ht_tfr_seg(r, i);
        ck_assert_uint_eq(s->seq, i);
        ck_assert_uint_eq(s->pid, 4242);
        ck_assert_uint_eq(s->t0, 1000 * i);
        ck_assert_uint_eq(s->t1, 1000 * i + 500);
        ck_assert_uint_eq(s->raw_len, seglen[i]);
        ck_assert_int_eq(s->status, HT_TFR_SEG_OK);
        ck_assert_uint_eq(s->offset % 8, 0);
        expect_seg(r, i, i);
    }
    ck_assert_ptr_null(ht_tfr_seg(r, NSEG));
    ht_tfr_close(r);

    // The writer never replaces an existing file (O_EXCL), nor follows a
    // symlink planted where the trace should go (O_NOFOLLOW).
    ht_file_info_t fi2 = make_info();
    ht_tfw_t *w;
    ck_assert_int_eq(ht_tfw_open(&w, path, &fi2, 0), -EEXIST);
    char link[160];
    snprintf(link, sizeof link, "%s/link.htr", dir);
    ck_assert_int_eq(symlink("/tmp/ht-should-not-exist", link), 0);
    ck_assert_int_lt(ht_tfw_open(&w, link, &fi2, 0), 0);
    ck_assert_int_ne(access("/tmp/ht-should-not-exist", F_OK), 0);
}
END_TEST

/* A segment streamed in uneven parts (ht_tfw_seg_feed) reads back as the
 * same bytes as one written whole, beside whole ones, compressible or not;
 * a segment whose stream failed is not written, and the next one is. */
START_TEST(test_streamed_segments)
{
    ht_file_info_t fi = make_info();
    ht_tfw_t *w;
    ck_assert_int_eq(ht_tfw_open(&w, path, &fi, 0), 0);
    for (size_t i = 0; i < 4; i++) {
        make_seg(i, 60000 + 7000 * (unsigned)i, (int)(i & 1)); // 1-2 MB each
        if (i == 2) {
            ck_assert_int_eq(ht_tfw_put_segment(w, i, i, i, segs[i], seglen[i]), 0);
            continue;
        }
        size_t off = 0, part = 100000 + 77777 * i;
        while (seglen[i] - off > part) {
            ck_assert_int_eq(ht_tfw_seg_feed(w, segs[i] + off, part), 0);
            off += part;
            part += 12345;
        }
        ck_assert_int_eq(ht_tfw_put_segment(w, i, i, i, segs[i] + off, seglen[i] - off), 0);
    }
    // Too much for one segment: that segment fails, the writer goes on.
    static uint8_t big[1u << 20];
    int rc = 0;
    for (size_t k = 0; rc == 0 && k <= HT_TF_SEG_RAW_MAX / sizeof big; k++)
        rc = ht_tfw_seg_feed(w, big, sizeof big);
    ck_assert_int_eq(rc, -EINVAL);
    ck_assert_int_eq(ht_tfw_put_segment(w, 4, 4, 4, big, 16), -EINVAL);
    ck_assert_int_eq(ht_tfw_put_segment(w, 5, 5, 5, segs[0], seglen[0]), 0);
    ck_assert_int_eq(ht_tfw_close(w), 0);

    char err[256] = "";
    ht_tfr_t *r;
    ck_assert_int_eq(ht_tfr_open(&r, path, err, sizeof err), 0);
    ck_assert_uint_eq(ht_tfr_nsegs(r), 5);
    for (size_t i = 0; i < 5; i++) {
        size_t j = i < 4 ? i : 0;
        const ht_tfr_seg_t *s = ht_tfr_seg(r, i);
        ck_assert_uint_eq(s->seq, i < 4 ? i : 5);
        ck_assert_int_eq(s->status, HT_TFR_SEG_OK);
        ck_assert_uint_eq(s->raw_len, seglen[j]);
        expect_seg(r, i, j);
    }
    ht_tfr_close(r);
}
END_TEST

/* The header is as long as its strings; the fields read back. A version 5
 * file (fixed-size strings, data at 4096), made here from the spec in
 * docs/FORMAT.md around the same segments, reads back the same. */
START_TEST(test_header_v6_and_v5)
{
    write_trace(2, 300, 0, 0);
    size_t n;
    uint8_t *b = slurp(&n);
    ht_file_info_t fi = make_info();
    uint32_t hl = 80 + (uint32_t)(strlen(fi.exe) + strlen(fi.argv) + strlen(fi.host)) + 4;
    ck_assert_uint_eq(le32(b + 8), 6);
    ck_assert_uint_eq(le32(b + 12), hl);
    ck_assert_uint_eq(le32(b + 16), (hl + 7) & ~7u);
    ck_assert_uint_eq(le32(b + hl - 4), (uint32_t)crc32(0, b, hl - 4));

    uint32_t doff = le32(b + 16);
    size_t n5 = 4096 + (n - doff);
    uint8_t *v5 = calloc(1, n5);
    memcpy(v5, b, 72); // magic .. reserved: the same fields
    put_le32(v5 + 8, 5);
    put_le32(v5 + 12, 3404);
    put_le32(v5 + 16, 4096);
    strcpy((char *)v5 + 72, fi.exe);
    strcpy((char *)v5 + 1096, fi.argv);
    strcpy((char *)v5 + 3144, fi.host);
    put_le32(v5 + 3400, (uint32_t)crc32(0, v5, 3400));
    memcpy(v5 + 4096, b + doff, n - doff);
    // Its segments say version 5 too.
    for (size_t off = 4096; off + 64 <= n5; off += 8) {
        uint8_t *h = v5 + off;
        if (memcmp(h, "HTSEGMT", 8) != 0)
            continue;
        h[8] = 5;
        put_le32(h + 60, (uint32_t)crc32(0, h, 60));
    }
    char p5[160];
    snprintf(p5, sizeof p5, "%s/v5.htr", dir);
    spit(p5, v5, n5);
    for (int k = 0; k < 2; k++) {
        char err[256] = "";
        ht_tfr_t *r;
        ck_assert_int_eq(ht_tfr_open(&r, k ? p5 : path, err, sizeof err), 0);
        const ht_file_info_t *ri = ht_tfr_info(r);
        ck_assert_uint_eq(ri->version, k ? 5 : 6);
        ck_assert_str_eq(ri->exe, fi.exe);
        ck_assert_str_eq(ri->argv, fi.argv);
        ck_assert_str_eq(ri->host, fi.host);
        ck_assert_uint_eq(ri->pid, 4242);
        ck_assert_uint_eq(ri->start_mono_ns, 987654321);
        ck_assert_uint_eq(ht_tfr_nsegs(r), 2);
        for (size_t i = 0; i < 2; i++)
            expect_seg(r, i, i);
        ht_tfr_close(r);
    }
    // A v6 header whose string lengths do not add up is refused.
    b[72] ^= 1;
    put_le32(b + hl - 4, (uint32_t)crc32(0, b, hl - 4));
    spit(p5, b, n);
    char err[256];
    ht_tfr_t *r;
    ck_assert_int_eq(ht_tfr_open(&r, p5, err, sizeof err), -EBADMSG);
    ck_assert_ptr_nonnull(strstr(err, "damaged"));
    free(v5);
    free(b);
}
END_TEST

/* The shim's CRC-32 is zlib's. */
START_TEST(test_crc32_sw_is_zlibs)
{
    static uint8_t buf[4096];
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < sizeof buf; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        buf[i] = (uint8_t)x;
    }
    for (size_t n = 0; n <= sizeof buf; n += 1 + n / 3)
        ck_assert_uint_eq(ht_tf_crc32_sw(buf, n), (uint32_t)crc32(0, buf, (uInt)n));
    ck_assert_uint_eq(ht_tf_crc32_sw("123456789", 9), 0xCBF43926u); // the check value
}
END_TEST

START_TEST(test_ring_wrap)
{
    const uint64_t max = 4096 + (96u << 10);
    ht_file_info_t fi = make_info();
    ht_tfw_t *w;
    ck_assert_int_eq(ht_tfw_open(&w, path, &fi, 1000), -EINVAL); // below the minimum
    ck_assert_int_eq(ht_tfw_open(&w, path, &fi, max), 0);
    // ~12 KiB of incompressible records a segment: 40 of them lap the
    // 96 KiB data area several times.
    const size_t n = 40;
    for (size_t i = 0; i < n; i++) {
        make_seg(i, 1000, 1);
        ck_assert_int_eq(ht_tfw_put_segment(w, i, i, i, segs[i], seglen[i]), 0);
    }
    ck_assert_uint_gt(ht_tfw_bytes_written(w), 3 * max);
    ck_assert_int_eq(ht_tfw_close(w), 0);
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_uint_le((uint64_t)st.st_size, max);

    char err[256];
    ht_tfr_t *r;
    ck_assert_int_eq(ht_tfr_open(&r, path, err, sizeof err), 0);
    ck_assert_uint_eq(ht_tfr_info(r)->max_size, max);
    size_t k = ht_tfr_nsegs(r);
    ck_assert_uint_ge(k, 3);
    ck_assert_uint_lt(k, n);
    // What survives is the newest run of segments, oldest first, intact.
    for (size_t j = 0; j < k; j++) {
        const ht_tfr_seg_t *s = ht_tfr_seg(r, j);
        ck_assert_uint_eq(s->seq, n - k + j);
        const uint8_t *raw;
        size_t len;
        ck_assert_int_eq(ht_tfr_load(r, j, &raw, &len, err, sizeof err), 0);
        ck_assert_uint_eq(len, seglen[s->seq]);
        ck_assert_mem_eq(raw, segs[s->seq], len);
    }
    ck_assert_uint_eq(ht_tfr_skipped_segs(r), 0);
    ht_tfr_close(r);
}
END_TEST

/* Check every readable segment of `p` against what was written; returns
 * the number of whole (OK) segments. */
static size_t
check_readable(const char *p, int *opened, size_t *ntorn)
{
    char err[256] = "";
    ht_tfr_t *r;
    *ntorn = 0;
    int rc = ht_tfr_open(&r, p, err, sizeof err);
    *opened = rc == 0;
    if (rc < 0) {
        ck_assert_int_eq(rc, -EBADMSG);
        ck_assert(err[0] != 0);
        ck_assert_ptr_null(strchr(err, '\n'));
        return 0;
    }
    size_t ok = 0;
    for (size_t j = 0; j < ht_tfr_nsegs(r); j++) {
        const ht_tfr_seg_t *s = ht_tfr_seg(r, j);
        ck_assert_uint_lt(s->seq, NSEG);
        const uint8_t *raw;
        size_t len;
        ck_assert_int_eq(ht_tfr_load(r, j, &raw, &len, err, sizeof err), 0);
        if (s->status == HT_TFR_SEG_OK) {
            ck_assert_uint_eq(len, seglen[s->seq]);
            ok++;
        } else {
            (*ntorn)++;
            ck_assert_uint_le(len, seglen[s->seq]);
        }
        // Torn or not, what is returned is a prefix of the real records
        // made of whole records only.
        ck_assert_mem_eq(raw, segs[s->seq], len);
        ht_tf_dec_t *d = malloc(sizeof *d);
        ht_tf_rec_t rec;
        ht_tf_dec_init(d, raw, len);
        int k;
        while ((k = ht_tf_dec_next(d, &rec)) == 1)
            ;
        ck_assert_int_eq(k, 0);
        free(d);
    }
    ht_tfr_close(r);
    return ok;
}

START_TEST(test_truncation_every_length)
{
    // Segments of ~200 KiB raw so one spans several zstd blocks and a cut
    // inside it leaves a decodable prefix.
    write_trace(NSEG, 20000, 0, 0);
    size_t n;
    uint8_t *b = slurp(&n);
    char cut[160];
    snprintf(cut, sizeof cut, "%s/cut.htr", dir);
    // Segment boundaries, from the reader's view of the whole file.
    char err[256];
    ht_tfr_t *r;
    ck_assert_int_eq(ht_tfr_open(&r, path, err, sizeof err), 0);
    uint64_t ends[NSEG];
    for (size_t i = 0; i < NSEG; i++) {
        const ht_tfr_seg_t *s = ht_tfr_seg(r, i);
        ends[i] = s->offset + 64 + s->comp_len;
    }
    ht_tfr_close(r);
    size_t saw_torn = 0;
    size_t step = n / 3000 ? n / 3000 : 1;
    size_t hl = le32(b + 12); // the header's length
    for (size_t len = 0; len <= n; len += (len < 4200 ? 1 : step)) {
        spit(cut, b, len);
        int opened;
        size_t ntorn;
        size_t ok = check_readable(cut, &opened, &ntorn);
        if (len < hl) {
            ck_assert(!opened);
            continue;
        }
        ck_assert(opened);
        size_t whole = 0;
        for (size_t i = 0; i < NSEG; i++)
            whole += ends[i] <= len;
        ck_assert_uint_eq(ok, whole);
        ck_assert_uint_le(ntorn, 1);
        saw_torn += ntorn;
    }
    ck_assert_uint_gt(saw_torn, 10);
    // Every exact segment boundary, too.
    for (size_t i = 0; i < NSEG; i++) {
        spit(cut, b, (size_t)ends[i]);
        int opened;
        size_t ntorn;
        ck_assert_uint_eq(check_readable(cut, &opened, &ntorn), i + 1);
        ck_assert_uint_eq(ntorn, 0);
    }
    free(b);
}
END_TEST

START_TEST(test_bit_flips_never_crash)
{
    write_trace(NSEG, 300, 1, 0);
    size_t n;
    uint8_t *b = slurp(&n);
    char bad[160];
    snprintf(bad, sizeof bad, "%s/bad.htr", dir);
    srand(777);
    size_t header_refused = 0, seg_lost = 0;
    size_t hl = le32(b + 12), doff = le32(b + 16);
    for (int iter = 0; iter < 600; iter++) {
        uint8_t *c = malloc(n);
        memcpy(c, b, n);
        size_t pos = iter < 100 ? (size_t)rand() % hl : doff + (size_t)rand() % (n - doff);
        c[pos] ^= (uint8_t)(1u << (rand() % 8));
        spit(bad, c, n);
        int opened;
        size_t ntorn;
        size_t ok = check_readable(bad, &opened, &ntorn);
        if (!opened)
            header_refused++;
        else if (ok < NSEG)
            seg_lost++;
        ck_assert_uint_eq(ntorn, 0);
        free(c);
    }
    // Every flip in the header is caught by its checksum.
    ck_assert_uint_eq(header_refused, 100);
    ck_assert_uint_gt(seg_lost, 400);
    free(b);
}
END_TEST

START_TEST(test_forged_lengths_and_junk)
{
    write_trace(1, 100, 0, 0);
    size_t n;
    uint8_t *b = slurp(&n);
    // Forge a segment header whose own CRC is right but whose raw_len is
    // over the limit: the reader must refuse it, not allocate 4 GiB.
    uint8_t *c = malloc(n + 64);
    memcpy(c, b, n);
    uint8_t *h = c + le32(b + 16); // the first segment, at data_off
    h[52] = h[53] = h[54] = h[55] = 0xff;
    uint32_t crc = (uint32_t)crc32(0, h, 60);
    for (int i = 0; i < 4; i++)
        h[60 + i] = (uint8_t)(crc >> (8 * i));
    char p2[160];
    snprintf(p2, sizeof p2, "%s/forged.htr", dir);
    spit(p2, c, n);
    char err[256];
    ht_tfr_t *r;
    ck_assert_int_eq(ht_tfr_open(&r, p2, err, sizeof err), 0);
    ck_assert_uint_eq(ht_tfr_nsegs(r), 0);
    ck_assert_uint_eq(ht_tfr_skipped_segs(r), 1);
    ht_tfr_close(r);
    // A comp_len that points past the end of the file: torn, prefix only.
    memcpy(c, b, n);
    h[48] = h[49] = h[50] = 0xff;
    h[51] = 0x0f;
    crc = (uint32_t)crc32(0, h, 60);
    for (int i = 0; i < 4; i++)
        h[60 + i] = (uint8_t)(crc >> (8 * i));
    spit(p2, c, n);
    ck_assert_int_eq(ht_tfr_open(&r, p2, err, sizeof err), 0);
    ck_assert_uint_le(ht_tfr_nsegs(r), 1);
    if (ht_tfr_nsegs(r) == 1) {
        const uint8_t *raw;
        size_t len;
        ck_assert_int_eq(ht_tfr_seg(r, 0)->status, HT_TFR_SEG_TORN);
        ck_assert_int_eq(ht_tfr_load(r, 0, &raw, &len, err, sizeof err), 0);
        ck_assert_mem_eq(raw, segs[0], len);
    }
    ht_tfr_close(r);
    free(c);

    // Not traces at all.
    spit(p2, (const uint8_t *)"hello", 5);
    ck_assert_int_eq(ht_tfr_open(&r, p2, err, sizeof err), -EBADMSG);
    ck_assert_ptr_nonnull(strstr(err, "not a heaptrace trace"));
    uint8_t zeros[8192] = {0};
    spit(p2, zeros, sizeof zeros);
    ck_assert_int_eq(ht_tfr_open(&r, p2, err, sizeof err), -EBADMSG);
    ck_assert_ptr_nonnull(strstr(err, "bad magic"));
    spit(p2, b, 100);
    ck_assert_int_eq(ht_tfr_open(&r, p2, err, sizeof err), -EBADMSG);
    ck_assert_ptr_nonnull(strstr(err, "truncated"));
    ck_assert_int_lt(ht_tfr_open(&r, dir, err, sizeof err), 0);
    ck_assert_ptr_nonnull(strstr(err, "not a regular file"));
    snprintf(p2, sizeof p2, "%s/missing.htr", dir);
    ck_assert_int_eq(ht_tfr_open(&r, p2, err, sizeof err), -ENOENT);
    ck_assert_ptr_nonnull(strstr(err, "No such file"));
    // A newer format version is named, not misread.
    memcpy(c = malloc(n), b, n);
    c[8] = 99;
    spit(p2, c, n);
    ck_assert_int_eq(ht_tfr_open(&r, p2, err, sizeof err), -EBADMSG);
    ck_assert_ptr_nonnull(strstr(err, "version 99"));
    free(c);
    free(b);
}
END_TEST

/* Runs in a child of its own: Check reports results through a file, which
 * the file size limit would break. Exit code: number of good segments,
 * or 100 + a failed step. */
static int
sticky_child(void)
{
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit rl = {40000, 40000};
    if (setrlimit(RLIMIT_FSIZE, &rl) < 0)
        return 101;
    ht_file_info_t fi = make_info();
    ht_tfw_t *w;
    if (ht_tfw_open(&w, path, &fi, 0) != 0)
        return 102;
    int rc = 0;
    size_t i;
    for (i = 0; i < 20 && rc == 0; i++)
        rc = ht_tfw_put_segment(w, i, i, i, segs[i], seglen[i]);
    if (rc != -EFBIG)
        return 103;
    // Sticky: nothing more is written, the same error comes back.
    if (ht_tfw_put_segment(w, 99, 0, 0, segs[0], seglen[0]) != -EFBIG)
        return 104;
    if (ht_tfw_close(w) != -EFBIG)
        return 105;
    return (int)(i - 1);
}

START_TEST(test_sticky_write_error)
{
    // A file size limit stands in for a full disk: writes past it fail
    // with EFBIG.
    for (size_t i = 0; i < 20; i++)
        make_seg(i, 1000, 1);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0)
        _exit(sticky_child());
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert(WIFEXITED(st));
    int good = WEXITSTATUS(st);
    ck_assert_int_lt(good, 100);
    ck_assert_int_gt(good, 0);
    char err[256];
    ht_tfr_t *r;
    ck_assert_int_eq(ht_tfr_open(&r, path, err, sizeof err), 0);
    ck_assert_uint_eq(ht_tfr_nsegs(r), (size_t)good);
    ck_assert_uint_eq(ht_tfr_skipped_segs(r), 0);
    for (size_t j = 0; j < (size_t)good; j++) {
        const uint8_t *raw;
        size_t len;
        ck_assert_int_eq(ht_tfr_seg(r, j)->status, HT_TFR_SEG_OK);
        ck_assert_int_eq(ht_tfr_load(r, j, &raw, &len, err, sizeof err), 0);
        ck_assert_mem_eq(raw, segs[j], len);
    }
    ht_tfr_close(r);
}
END_TEST

Suite *
suite_tracefile(void)
{
    Suite *s = suite_create("tracefile");
    TCase *tc = tcase_create("file");
    tcase_add_checked_fixture(tc, tf_setup, tf_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_round_trip);
    tcase_add_test(tc, test_streamed_segments);
    tcase_add_test(tc, test_header_v6_and_v5);
    tcase_add_test(tc, test_crc32_sw_is_zlibs);
    tcase_add_test(tc, test_ring_wrap);
    tcase_add_test(tc, test_truncation_every_length);
    tcase_add_test(tc, test_bit_flips_never_crash);
    tcase_add_test(tc, test_forged_lengths_and_junk);
    tcase_add_test(tc, test_sticky_write_error);
    suite_add_tcase(s, tc);
    return s;
}
