/* tests/unit/test_pprof.c -- the profile.proto writer: decoded back by a
 * small protobuf reader here, and read by the real client, go tool pprof. */
#include "formats/pprof.h"
#include "tests/unit/fixture_profile.h"

#include <check.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

/* ---- the fixture (tests/unit/fixture_profile.h), sampled, 9 stacks ---- */

static ht_pstack_t fx_stacks[9];
static ht_profile_t fx;

static void
fx_build(double scale)
{
    static const ht_line_t odd = {"parse;weird name", "src/p.c", 7};
    double inuse[9] = {100.3, 49.4, 0.4, 30.6, 10, 5, 3, 4, 0};
    fx_profile_init(&fx, fx_stacks, 9, &odd); // stack 8 has stack 0's frames
    for (int i = 0; i < 9; i++) {
        fx_stacks[i].v[HT_M_INUSE_SPACE] = inuse[i] * scale;
        fx_stacks[i].v[HT_M_INUSE_OBJECTS] = (i + 1) * scale;
        fx_stacks[i].v[HT_M_ALLOC_SPACE] = 1000 * (i + 1) * scale;
        fx_stacks[i].v[HT_M_ALLOC_OBJECTS] = 10 * (i + 1) * scale;
        fx_stacks[i].v[HT_M_LEAKED_SPACE] = 5; // not a pprof sample type
    }
    // The last stack has only values pprof does not carry: no sample.
    memset(fx_stacks[8].v, 0, sizeof fx_stacks[8].v);
    fx_stacks[8].v[HT_M_PEAK_SPACE] = 99;
    fx_stacks[0].tid = 77;
    fx.sampled = 1;
    fx.sample_rate = 524288;
    fx.pid = 4242;
    fx.exe = "/usr/bin/app";
    fx.argv = "app --port 8080";
    fx.start_realtime_ns = 1700000000000000000ull;
    fx.start_ns = 5000;
    fx.end_ns = 5000 + 3000000000ull;
}

/* ---- a small profile.proto reader ---- */

typedef struct rd_s {
    const uint8_t *p, *end;
} rd_t;

static bool
rd_varint(rd_t *r, uint64_t *v)
{
    *v = 0;
    for (int s = 0; s < 70 && r->p < r->end; s += 7) {
        uint8_t b = *r->p++;
        *v |= (uint64_t)(b & 0x7f) << s;
        if (!(b & 0x80))
            return true;
    }
    return false;
}

/* Next field: number, wire type, and the varint or the sub-range. */
static bool
rd_field(rd_t *r, unsigned *field, unsigned *wt, uint64_t *v, rd_t *sub)
{
    uint64_t key;
    if (r->p >= r->end || !rd_varint(r, &key))
        return false;
    *field = (unsigned)(key >> 3);
    *wt = key & 7;
    if (*wt == 0)
        return rd_varint(r, v);
    ck_assert_uint_eq(*wt, 2); // we write no fixed-width fields
    uint64_t n;
    ck_assert(rd_varint(r, &n));
    ck_assert_uint_le(n, (uint64_t)(r->end - r->p));
    sub->p = r->p;
    sub->end = r->p + n;
    r->p += n;
    return true;
}

/* Repeated scalars: packed (wt 2) or not (wt 0). */
static int
rd_repeated(unsigned wt, uint64_t v, rd_t *sub, uint64_t *out, int max, int n)
{
    if (wt == 0) {
        ck_assert_int_lt(n, max);
        out[n++] = v;
        return n;
    }
    uint64_t x;
    while (sub->p < sub->end) {
        ck_assert(rd_varint(sub, &x));
        ck_assert_int_lt(n, max);
        out[n++] = x;
    }
    return n;
}

typedef struct dec_sample_s {
    uint64_t locs[16];
    int nlocs;
    int64_t vals[8];
    int nvals;
    int64_t thread;
} dec_sample_t;

typedef struct dec_loc_s {
    uint64_t id, mapping, address;
    uint64_t fn[8];
    int64_t line[8];
    int nlines;
} dec_loc_t;

typedef struct dec_fn_s {
    uint64_t id;
    int64_t name, sysname, file;
} dec_fn_t;

typedef struct dec_map_s {
    uint64_t id, start, limit, offset;
    int64_t file, build_id;
    uint64_t has_fn, has_files, has_lines, has_inline;
} dec_map_t;

typedef struct dec_s {
    char *strs[128];
    int nstrs;
    int64_t st_type[8], st_unit[8];
    int nst;
    dec_sample_t samples[32];
    int nsamples;
    dec_loc_t locs[32];
    int nlocs;
    dec_fn_t fns[32];
    int nfns;
    dec_map_t maps[8];
    int nmaps;
    int64_t time, duration, period, pt_type, pt_unit, dflt;
    uint64_t comments[8];
    int ncomments;
} dec_t;

static dec_t D;

static void
dec_value_type(rd_t *r, int64_t *type, int64_t *unit)
{
    unsigned f, wt;
    uint64_t v;
    rd_t s;
    while (rd_field(r, &f, &wt, &v, &s)) {
        if (f == 1)
            *type = (int64_t)v;
        if (f == 2)
            *unit = (int64_t)v;
    }
}

static void
dec_profile(const uint8_t *buf, size_t len)
{
    for (int i = 0; i < D.nstrs; i++)
        free(D.strs[i]);
    memset(&D, 0, sizeof D);
    rd_t r = {buf, buf + len}, s, t, u;
    unsigned f, wt, f2, wt2, f3, wt3;
    uint64_t v, v2, v3;
    while (rd_field(&r, &f, &wt, &v, &s)) {
        switch (f) {
        case 1:
            ck_assert_int_lt(D.nst, 8);
            dec_value_type(&s, &D.st_type[D.nst], &D.st_unit[D.nst]);
            D.nst++;
            break;
        case 2: {
            ck_assert_int_lt(D.nsamples, 32);
            dec_sample_t *sm = &D.samples[D.nsamples++];
            while (rd_field(&s, &f2, &wt2, &v2, &t)) {
                if (f2 == 1)
                    sm->nlocs = rd_repeated(wt2, v2, &t, sm->locs, 16, sm->nlocs);
                if (f2 == 2)
                    sm->nvals = rd_repeated(wt2, v2, &t, (uint64_t *)sm->vals, 8, sm->nvals);
                if (f2 == 3) {
                    int64_t key = 0, num = 0;
                    while (rd_field(&t, &f3, &wt3, &v3, &u)) {
                        if (f3 == 1)
                            key = (int64_t)v3;
                        if (f3 == 3)
                            num = (int64_t)v3;
                    }
                    ck_assert_int_gt(key, 0);
                    sm->thread = num;
                }
            }
            break;
        }
        case 3: {
            ck_assert_int_lt(D.nmaps, 8);
            dec_map_t *m = &D.maps[D.nmaps++];
            while (rd_field(&s, &f2, &wt2, &v2, &t)) {
                uint64_t *dst[] = {NULL,          &m->id,        &m->start,
                                   &m->limit,     &m->offset,    (uint64_t *)&m->file,
                                   (uint64_t *)&m->build_id,     &m->has_fn,
                                   &m->has_files, &m->has_lines, &m->has_inline};
                if (f2 >= 1 && f2 <= 10)
                    *dst[f2] = v2;
            }
            break;
        }
        case 4: {
            ck_assert_int_lt(D.nlocs, 32);
            dec_loc_t *l = &D.locs[D.nlocs++];
            while (rd_field(&s, &f2, &wt2, &v2, &t)) {
                if (f2 == 1)
                    l->id = v2;
                if (f2 == 2)
                    l->mapping = v2;
                if (f2 == 3)
                    l->address = v2;
                if (f2 == 4) {
                    ck_assert_int_lt(l->nlines, 8);
                    while (rd_field(&t, &f3, &wt3, &v3, &u)) {
                        if (f3 == 1)
                            l->fn[l->nlines] = v3;
                        if (f3 == 2)
                            l->line[l->nlines] = (int64_t)v3;
                    }
                    l->nlines++;
                }
            }
            break;
        }
        case 5: {
            ck_assert_int_lt(D.nfns, 32);
            dec_fn_t *fn = &D.fns[D.nfns++];
            while (rd_field(&s, &f2, &wt2, &v2, &t)) {
                if (f2 == 1)
                    fn->id = v2;
                if (f2 == 2)
                    fn->name = (int64_t)v2;
                if (f2 == 3)
                    fn->sysname = (int64_t)v2;
                if (f2 == 4)
                    fn->file = (int64_t)v2;
            }
            break;
        }
        case 6:
            ck_assert_int_lt(D.nstrs, 128);
            D.strs[D.nstrs] = strndup((const char *)s.p, (size_t)(s.end - s.p));
            D.nstrs++;
            break;
        case 9:
            D.time = (int64_t)v;
            break;
        case 10:
            D.duration = (int64_t)v;
            break;
        case 11:
            dec_value_type(&s, &D.pt_type, &D.pt_unit);
            break;
        case 12:
            D.period = (int64_t)v;
            break;
        case 13:
            D.ncomments = rd_repeated(wt, v, &s, D.comments, 8, D.ncomments);
            break;
        case 14:
            D.dflt = (int64_t)v;
            break;
        default:
            ck_abort_msg("unexpected field %u", f);
        }
    }
    ck_assert_ptr_eq(r.p, r.end);
}

static const char *
dstr(int64_t i)
{
    ck_assert_int_ge(i, 0);
    ck_assert_int_lt(i, D.nstrs);
    return D.strs[i];
}

static const dec_loc_t *
dloc(uint64_t id)
{
    for (int i = 0; i < D.nlocs; i++)
        if (D.locs[i].id == id)
            return &D.locs[i];
    ck_abort_msg("no location %llu", (unsigned long long)id);
    return NULL;
}

static const dec_fn_t *
dfn(uint64_t id)
{
    for (int i = 0; i < D.nfns; i++)
        if (D.fns[i].id == id)
            return &D.fns[i];
    ck_abort_msg("no function %llu", (unsigned long long)id);
    return NULL;
}

/* The innermost function name of location id. */
static const char *
dloc_fn(uint64_t id, int line)
{
    const dec_loc_t *l = dloc(id);
    ck_assert_int_lt(line, l->nlines);
    return dstr(dfn(l->fn[line])->name);
}

static void
dec_encoded(const ht_pprof_opts_t *o)
{
    uint8_t *buf;
    size_t len;
    ck_assert_int_eq(ht_pprof_encode(&fx, o, &buf, &len), 0);
    dec_profile(buf, len);
    free(buf);
}

START_TEST(test_pprof_header)
{
    fx_build(1);
    dec_encoded(NULL);
    ck_assert_int_ge(D.nstrs, 1);
    ck_assert_str_eq(D.strs[0], "");
    const char *want[4][2] = {{"alloc_objects", "count"},
                              {"alloc_space", "bytes"},
                              {"inuse_objects", "count"},
                              {"inuse_space", "bytes"}};
    ck_assert_int_eq(D.nst, 4);
    for (int i = 0; i < 4; i++) {
        ck_assert_str_eq(dstr(D.st_type[i]), want[i][0]);
        ck_assert_str_eq(dstr(D.st_unit[i]), want[i][1]);
    }
    ck_assert_str_eq(dstr(D.dflt), "inuse_space");
    ck_assert_str_eq(dstr(D.pt_type), "space");
    ck_assert_str_eq(dstr(D.pt_unit), "bytes");
    ck_assert_int_eq(D.period, 524288);
    ck_assert_int_eq(D.time, 1700000000000000000ll);
    ck_assert_int_eq(D.duration, 3000000000ll);
    ck_assert_int_ge(D.ncomments, 3);
    bool saw_mode = false, saw_prog = false;
    for (int i = 0; i < D.ncomments; i++) {
        saw_mode |= strstr(dstr((int64_t)D.comments[i]), "sampled") != NULL;
        saw_prog |= strstr(dstr((int64_t)D.comments[i]), "/usr/bin/app (pid 4242)") != NULL;
    }
    ck_assert(saw_mode && saw_prog);
    // Exact mode: period 1, and the comment says so.
    fx.sampled = 0;
    ht_pprof_opts_t o;
    ht_pprof_opts_default(&o);
    o.default_sample = HT_M_ALLOC_SPACE;
    dec_encoded(&o);
    ck_assert_int_eq(D.period, 1);
    ck_assert_str_eq(dstr(D.dflt), "alloc_space");
    // Strings are interned once each.
    for (int i = 0; i < D.nstrs; i++)
        for (int j = i + 1; j < D.nstrs; j++)
            ck_assert_str_ne(D.strs[i], D.strs[j]);
    o.default_sample = HT_M_LEAKED_SPACE;
    uint8_t *buf;
    size_t len;
    ck_assert_int_eq(ht_pprof_encode(&fx, &o, &buf, &len), -EINVAL);
}
END_TEST

START_TEST(test_pprof_samples_and_locations)
{
    fx_build(1);
    dec_encoded(NULL);
    // Stack 8 has only a peak value: no sample. The others, in order.
    ck_assert_int_eq(D.nsamples, 8);
    for (int i = 0; i < 8; i++) {
        ck_assert_int_eq(D.samples[i].nvals, 4);
        ck_assert_int_eq(D.samples[i].vals[0], 10 * (i + 1));
        ck_assert_int_eq(D.samples[i].vals[1], 1000 * (i + 1));
        ck_assert_int_eq(D.samples[i].vals[2], i + 1);
    }
    int64_t inuse[8] = {100, 49, 0, 31, 10, 5, 3, 4};
    for (int i = 0; i < 8; i++)
        ck_assert_int_eq(D.samples[i].vals[3], inuse[i]);
    ck_assert_int_eq(D.samples[0].thread, 77);
    ck_assert_int_eq(D.samples[1].thread, 0);
    // Leaf first; malloc (stack 1) and operator new (stacks 4, 5) trimmed.
    uint64_t want1[] = {1, 2, 3};
    ck_assert_int_eq(D.samples[1].nlocs, 3);
    for (int k = 0; k < 3; k++)
        ck_assert_uint_eq(D.samples[1].locs[k], want1[k]);
    ck_assert_int_eq(D.samples[4].nlocs, 3);
    ck_assert_uint_eq(D.samples[4].locs[0], 8);
    ck_assert_uint_eq(D.samples[5].locs[0], 9);
    // A stack of malloc alone keeps it; an empty stack gets "[unknown]".
    ck_assert_int_eq(D.samples[7].nlocs, 1);
    ck_assert_str_eq(dloc_fn(D.samples[7].locs[0], 0), "malloc");
    ck_assert_int_eq(D.samples[6].nlocs, 1);
    ck_assert_str_eq(dloc_fn(D.samples[6].locs[0], 0), "[unknown]");
    ck_assert_uint_eq(dloc(D.samples[6].locs[0])->mapping, 0);

    // The inlined location: two Lines, innermost first, with line numbers.
    const dec_loc_t *l = dloc(1);
    ck_assert_uint_eq(l->address, 0x401000);
    ck_assert_uint_eq(l->mapping, 1);
    ck_assert_int_eq(l->nlines, 2);
    ck_assert_str_eq(dloc_fn(1, 0), "inner_helper");
    ck_assert_str_eq(dloc_fn(1, 1), "outer_fn");
    ck_assert_int_eq(l->line[0], 10);
    ck_assert_int_eq(l->line[1], 50);
    ck_assert_str_eq(dstr(dfn(l->fn[0])->file), "src/a.c");
    ck_assert_str_eq(dstr(dfn(l->fn[0])->sysname), "inner_helper");
    // The unsymbolized plugin location: no Line, its mapping, its address.
    l = dloc(6);
    ck_assert_int_eq(l->nlines, 0);
    ck_assert_uint_eq(l->mapping, 3);
    ck_assert_uint_eq(l->address, 0x7e0000001234);
    // Only used locations are written: operator new (7) never is.
    ck_assert_int_eq(D.nlocs, 9);
    for (int i = 0; i < D.nlocs; i++)
        ck_assert_uint_ne(D.locs[i].id, 7);
    // Functions by (name, file): the two worker sites share one; the
    // string table holds each name once.
    ck_assert_uint_eq(dloc(8)->fn[0], dloc(9)->fn[0]);
    ck_assert_int_eq(D.nfns, 8); // inner, outer, main, libc_start, parse, worker, malloc, [unknown]
    for (int i = 0; i < D.nfns; i++)
        ck_assert_uint_eq(D.fns[i].id, (uint64_t)i + 1);
}
END_TEST

START_TEST(test_pprof_mappings)
{
    fx_build(1);
    dec_encoded(NULL);
    ck_assert_int_eq(D.nmaps, 3);
    ck_assert_uint_eq(D.maps[0].id, 1);
    ck_assert_uint_eq(D.maps[0].start, 0x400000);
    ck_assert_uint_eq(D.maps[0].limit, 0x500000);
    ck_assert_str_eq(dstr(D.maps[0].file), "/usr/bin/app");
    ck_assert_str_eq(dstr(D.maps[0].build_id), "abcdef0123456789");
    ck_assert_uint_eq(D.maps[0].has_fn, 1);
    ck_assert_uint_eq(D.maps[0].has_files, 1);
    ck_assert_uint_eq(D.maps[0].has_lines, 1);
    ck_assert_uint_eq(D.maps[0].has_inline, 1);
    ck_assert_uint_eq(D.maps[1].offset, 0x1000);
    ck_assert_str_eq(dstr(D.maps[1].build_id), "");
    ck_assert_uint_eq(D.maps[1].has_fn, 1);
    ck_assert_uint_eq(D.maps[1].has_files, 0);
    ck_assert_uint_eq(D.maps[1].has_inline, 0);
    ck_assert_uint_eq(D.maps[2].id, 3);
    ck_assert_uint_eq(D.maps[2].has_fn, 0);
    // The executable's mapping comes first (pprof's main binary), wherever
    // the profile lists it; ids do not change.
    fx.exe = "/opt/plug/libplug.so";
    dec_encoded(NULL);
    ck_assert_int_eq(D.nmaps, 3);
    ck_assert_uint_eq(D.maps[0].id, 3);
    ck_assert_str_eq(dstr(D.maps[0].file), "/opt/plug/libplug.so");
    ck_assert_uint_eq(D.maps[1].id, 1);
    ck_assert_uint_eq(D.maps[2].id, 2);
    ck_assert_uint_eq(D.maps[2].offset, 0x1000);
}
END_TEST

START_TEST(test_pprof_negative_and_gzip)
{
    fx_build(-1);
    uint8_t *raw;
    size_t rawlen;
    ck_assert_int_eq(ht_pprof_encode(&fx, NULL, &raw, &rawlen), 0);
    dec_profile(raw, rawlen);
    ck_assert_int_eq(D.samples[0].vals[3], -100);
    ck_assert_int_eq(D.samples[0].vals[1], -1000);

    // The gzipped stream inflates to exactly the encoded message.
    char *gz = NULL;
    size_t gzlen = 0;
    FILE *f = open_memstream(&gz, &gzlen);
    ck_assert_int_eq(ht_pprof_write(f, &fx, NULL), 0);
    fclose(f);
    ck_assert_uint_ge(gzlen, 18);
    ck_assert_uint_eq((uint8_t)gz[0], 0x1f);
    ck_assert_uint_eq((uint8_t)gz[1], 0x8b);
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    ck_assert_int_eq(inflateInit2(&zs, 15 + 16), Z_OK);
    uint8_t *back = malloc(rawlen + 16);
    zs.next_in = (uint8_t *)gz;
    zs.avail_in = (uInt)gzlen;
    zs.next_out = back;
    zs.avail_out = (uInt)rawlen + 16;
    ck_assert_int_eq(inflate(&zs, Z_FINISH), Z_STREAM_END);
    ck_assert_uint_eq(zs.total_out, rawlen);
    ck_assert(!memcmp(back, raw, rawlen));
    inflateEnd(&zs);
    free(back);
    free(gz);
    free(raw);

    // A failing write is reported and leaves no file behind.
    f = fopen("/dev/full", "w");
    if (f) {
        ck_assert_int_eq(ht_pprof_write(f, &fx, NULL), -EIO);
        fclose(f);
    }
    ck_assert_int_eq(ht_pprof_write_file("/nonexistent-dir/x.pb.gz", &fx, NULL), -ENOENT);
}
END_TEST

/* ---- the real client ---- */

static char go_dir[64];

/* Run `go tool pprof ARGS FILE` and return its stdout (caller frees), or
 * NULL when go is not installed (the checks then pass with a note: this
 * suite must build on machines without Go). */
static char *
go_pprof(const char *args, const char *file)
{
    if (system("command -v go >/dev/null 2>&1") != 0) {
        fprintf(stderr, "test_pprof: go not found, skipping go tool pprof checks\n");
        return NULL;
    }
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "cd %s && HOME=%s GOCACHE=%s/cache GOPATH=%s/gopath "
             "PPROF_TMPDIR=%s go tool pprof %s %s 2>%s/stderr",
             go_dir, go_dir, go_dir, go_dir, go_dir, args, file, go_dir);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    char *out = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&out, &len);
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0)
        fwrite(buf, 1, n, m);
    fclose(m);
    int st = pclose(p);
    ck_assert_msg(st == 0, "go tool pprof %s failed (status %d): see %s/stderr", args, st, go_dir);
    return out;
}

/* The flat and cum values (in bytes, "149B" or "0") of the -top row for
 * function fn; false when there is no row. */
static bool
top_row(const char *out, const char *fn, long *flat, long *cum)
{
    const char *line = out;
    while (line && *line) {
        const char *eol = strchr(line, '\n');
        size_t n = eol ? (size_t)(eol - line) : strlen(line);
        char row[512];
        if (n < sizeof row) {
            memcpy(row, line, n);
            row[n] = '\0';
            char name[256];
            char fl[32], cu[32], p1[32], p2[32], p3[32];
            if (sscanf(row, " %31s %31s %31s %31s %31s %255[^\n]", fl, p1, p2, cu, p3, name) ==
                    6 &&
                !strcmp(name, fn)) {
                *flat = strtol(fl, NULL, 10);
                *cum = strtol(cu, NULL, 10);
                return true;
            }
        }
        line = eol ? eol + 1 : NULL;
    }
    return false;
}

START_TEST(test_pprof_go_tool)
{
    snprintf(go_dir, sizeof go_dir, "/tmp/ht-test-pprof.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(go_dir));
    char file[128];
    snprintf(file, sizeof file, "%s/heap.pb.gz", go_dir);
    fx_build(1);
    ck_assert_int_eq(ht_pprof_write_file(file, &fx, NULL), 0);

    char *top = go_pprof("-top -sample_index=inuse_space", file);
    if (!top)
        return;
    long flat, cum;
    // 100.3 and 49.4 are two samples (100 + 49) in one function.
    ck_assert_msg(top_row(top, "inner_helper (inline)", &flat, &cum), "%s", top);
    ck_assert_int_eq(flat, 149);
    ck_assert(top_row(top, "outer_fn", &flat, &cum));
    ck_assert_int_eq(flat, 0);
    ck_assert_int_eq(cum, 149);
    ck_assert(top_row(top, "worker", &flat, &cum));
    ck_assert_int_eq(flat, 15);
    ck_assert(top_row(top, "main", &flat, &cum));
    ck_assert_int_eq(cum, 100 + 49 + 0 + 31 + 10 + 5);
    ck_assert(top_row(top, "[unknown]", &flat, &cum));
    ck_assert_int_eq(flat, 3);
    ck_assert(top_row(top, "malloc", &flat, &cum));
    ck_assert_int_eq(flat, 4);
    ck_assert_msg(strstr(top, "of 202B total"), "%s", top);
    ck_assert(strstr(top, "Type: inuse_space"));
    // Allocator frames were trimmed: operator new appears nowhere.
    ck_assert(!strstr(top, "operator new"));
    free(top);

    // The default sample type is inuse_space; alloc_objects is the first.
    top = go_pprof("-top -sample_index=alloc_objects", file);
    ck_assert(top_row(top, "worker", &flat, &cum));
    ck_assert_int_eq(flat, 50 + 60);
    free(top);
    top = go_pprof("-top", file);
    ck_assert(strstr(top, "Type: inuse_space"));
    free(top);

    // -traces: leaf first, the inlined frame above its host, the label.
    char *tr = go_pprof("-traces", file);
    const char *a = strstr(tr, "thread:  77");
    ck_assert_msg(a, "%s", tr);
    const char *b = strstr(a, "100B   inner_helper (inline)");
    const char *c = b ? strstr(b, "outer_fn") : NULL;
    const char *d = c ? strstr(c, "main") : NULL;
    const char *e = d ? strstr(d, "__libc_start_main") : NULL;
    ck_assert_msg(b && c && d && e, "%s", tr);
    ck_assert(strstr(tr, "31B   [libplug.so]"));
    free(tr);

    // -raw: mappings with build id and flags; the inline Line pair.
    char *raw = go_pprof("-raw", file);
    ck_assert_msg(strstr(raw, "0x400000/0x500000/0x0 /usr/bin/app abcdef0123456789 [FN][FL][LN][IN]"),
                  "%s", raw);
    ck_assert(strstr(raw, "/opt/plug/libplug.so"));
    ck_assert(strstr(raw, "inner_helper src/a.c:10 s=0\n             outer_fn src/a.c:50 s=0"));
    ck_assert(strstr(raw, "PeriodType: space bytes"));
    ck_assert(strstr(raw, "Period: 524288"));
    ck_assert(strstr(raw, "inuse_space/bytes[dflt]"));
    free(raw);

    // A profile of differences: negative figures survive the trip.
    fx_build(-1);
    ck_assert_int_eq(ht_pprof_write_file(file, &fx, NULL), 0);
    top = go_pprof("-top -sample_index=inuse_space", file);
    ck_assert(top_row(top, "worker", &flat, &cum));
    ck_assert_int_eq(flat, -15);
    ck_assert_msg(strstr(top, "accounting for -202B"), "%s", top);
    free(top);

    char rm[160];
    snprintf(rm, sizeof rm, "rm -rf %s", go_dir);
    ck_assert_int_eq(system(rm), 0);
}
END_TEST

Suite *
suite_pprof(void)
{
    Suite *s = suite_create("pprof");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_pprof_header);
    tcase_add_test(tc, test_pprof_samples_and_locations);
    tcase_add_test(tc, test_pprof_mappings);
    tcase_add_test(tc, test_pprof_negative_and_gzip);
    suite_add_tcase(s, tc);
    TCase *go = tcase_create("go_tool_pprof");
    // go may build its cache on the first run.
    tcase_set_timeout(go, 120);
    tcase_add_test(go, test_pprof_go_tool);
    suite_add_tcase(s, go);
    return s;
}
