/*
 * heaptrace-cli/dump.c -- `heaptrace dump [--json] TRACE`: every record of
 * every segment, in order, one line each. The fields printed for a kind
 * come from the record table itself (HT_TF_RECORDS), so a new field shows
 * up here without touching this file.
 */
#include "heaptrace-cli/cmd.h"
#include "heaptrace-cli/common.h"

#include "formats/trace.h"
#include "formats/tracefile.h"

#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
dump_usage(FILE *f)
{
    fprintf(f,
            "usage: heaptrace dump [--json] TRACE\n\n"
            "Print every record of every segment of TRACE, in order, one per line.\n\n"
            "Options:\n"
            "  --json      one JSON object per line (default: text)\n"
            "  -h, --help  this help\n\n"
            "JSON lines: first {\"type\":\"file\",...} (the file header), then for each\n"
            "segment {\"type\":\"segment\",...} and its records, each with \"seg\", \"type\"\n"
            "(the record kind in lowercase: alloc, free, stack, ...) and every field\n"
            "of the kind; records inside a keyframe carry \"keyframe\":true, events\n"
            "after the keyframe carry the segment's \"pid\" and the \"tid\" of the\n"
            "last ev_thread. ev_alloc records carry the \"id\" they number, ev_free\n"
            "records the \"id\" they free (from \"back\"). Addresses are hex\n"
            "strings. Damaged or torn segments are reported on stderr; the rest is\n"
            "still dumped.\n\n"
            "Example:\n"
            "  heaptrace dump --json t.htr | grep -c '\"type\":\"alloc\"'\n");
}

/* ---- output helpers ---- */

static bool dump_json;

/* A JSON string of n bytes: control characters, quotes and backslashes
 * escaped; bytes that are not valid UTF-8 become \u00XX (Latin-1), so the
 * line stays valid JSON whatever the program's paths contain. */
static void
dump_jstr(const uint8_t *s, size_t n)
{
    putchar('"');
    for (size_t i = 0; i < n;) {
        uint8_t b = s[i];
        if (b == '"' || b == '\\') {
            printf("\\%c", b);
            i++;
        } else if (b < 0x20 || b == 0x7f) {
            printf("\\u%04x", b);
            i++;
        } else if (b < 0x80) {
            putchar(b);
            i++;
        } else {
            size_t len = (b & 0xe0) == 0xc0 ? 2 : (b & 0xf0) == 0xe0 ? 3 : (b & 0xf8) == 0xf0 ? 4 : 0;
            bool ok = len && i + len <= n && !(len == 2 && b < 0xc2);
            for (size_t k = 1; ok && k < len; k++)
                ok = (s[i + k] & 0xc0) == 0x80;
            if (ok) {
                fwrite(s + i, 1, len, stdout);
                i += len;
            } else {
                printf("\\u%04x", b);
                i++;
            }
        }
    }
    putchar('"');
}

/* Text mode: printable ASCII as is, anything else as \xNN. */
static void
dump_tstr(const uint8_t *s, size_t n)
{
    putchar('"');
    for (size_t i = 0; i < n; i++) {
        if (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '"' && s[i] != '\\')
            putchar(s[i]);
        else
            printf("\\x%02x", s[i]);
    }
    putchar('"');
}

static bool dump_first;

static void
dump_key(const char *k)
{
    if (dump_json)
        printf("%s\"%s\":", dump_first ? "" : ",", k);
    else
        printf(" %s=", k);
    dump_first = false;
}

static void
dump_u(const char *k, uint64_t v)
{
    dump_key(k);
    printf("%llu", (unsigned long long)v);
}

static void
dump_hex(const char *k, uint64_t v)
{
    dump_key(k);
    printf(dump_json ? "\"0x%llx\"" : "0x%llx", (unsigned long long)v);
}

static void
dump_s(const char *k, const uint8_t *s, size_t n)
{
    dump_key(k);
    if (dump_json)
        dump_jstr(s, n);
    else
        dump_tstr(s, n);
}

static void
dump_begin(void)
{
    dump_first = true;
    if (dump_json)
        putchar('{');
}

static void
dump_end(void)
{
    if (dump_json)
        putchar('}');
    putchar('\n');
}

/* The value of a named field of the record table. */
static bool
dump_field_u(const ht_tf_rec_t *r, const char *name, uint64_t *v)
{
#define F(n) \
    if (!strcmp(name, #n)) { \
        *v = r->n;           \
        return true;         \
    }
    F(ts) F(pid) F(tid) F(ptr) F(size) F(stack) F(weight) F(id) F(bias) F(ppid) F(flags)
    F(sample_rate) F(max_depth) F(child) F(how) F(code) F(seq) F(snapshot) F(reason) F(nlive)
    F(site) F(count) F(base) F(keep) F(from) F(later) F(allocs) F(alloc_bytes) F(frees) F(free_bytes) F(events) F(waits) F(wait_ns) F(rss)
    F(anon) F(file) F(shmem) F(swap) F(heap_free) F(heap_total)
#undef F
    return false;
}

static const char *
dump_spec(unsigned kind)
{
    switch (kind) {
#define HT_DUMP_SPEC(name, code, fields) \
    case code:                          \
        return fields;
        HT_TF_RECORDS(HT_DUMP_SPEC)
#undef HT_DUMP_SPEC
    default:
        return NULL;
    }
}

static bool
dump_is_hex(const char *name)
{
    return !strcmp(name, "ptr") || !strcmp(name, "from") || !strcmp(name, "bias");
}

/* One field "name:type" of the spec. */
static void
dump_field(const ht_tf_rec_t *r, const char *name, char type)
{
    uint64_t v;
    switch (type) {
    case 'u':
    case 'd':
    case 'p':
        if (dump_field_u(r, name, &v)) {
            if (dump_is_hex(name))
                dump_hex(name, v);
            else
                dump_u(name, v);
        }
        break;
    case 's':
        if (!strcmp(name, "argv")) {
            // NUL-separated: a JSON array of the arguments.
            dump_key(name);
            putchar(dump_json ? '[' : '{');
            size_t start = 0;
            for (size_t i = 0; r->str2_len && i <= r->str2_len; i++) {
                if (i < r->str2_len && r->str2[i] != 0)
                    continue;
                if (start)
                    putchar(',');
                if (dump_json)
                    dump_jstr(r->str2 + start, i - start);
                else
                    dump_tstr(r->str2 + start, i - start);
                start = i + 1;
            }
            putchar(dump_json ? ']' : '}');
        } else {
            dump_s(name, r->str, r->str_len);
        }
        break;
    case 'b':
        dump_key(name);
        putchar('"');
        for (uint32_t i = 0; i < r->bytes_len; i++)
            printf("%02x", r->bytes[i]);
        putchar('"');
        break;
    case 'F':
        dump_key(name);
        putchar('[');
        for (uint32_t i = 0; i < r->nframes; i++)
            printf(dump_json ? "%s\"0x%llx\"" : "%s0x%llx", i ? "," : "",
                   (unsigned long long)r->frames[i]);
        putchar(']');
        break;
    case 'G':
        dump_key(name);
        putchar('[');
        for (uint32_t i = 0; i < r->nsegs; i++)
            printf(dump_json ? "%s{\"vaddr\":\"0x%llx\",\"memsz\":%llu,\"flags\":%llu}"
                             : "%s{vaddr=0x%llx memsz=%llu flags=%llu}",
                   i ? "," : "", (unsigned long long)r->segs[i].vaddr,
                   (unsigned long long)r->segs[i].memsz, (unsigned long long)r->segs[i].flags);
        putchar(']');
        break;
    }
}

/* The sites a segment defined so far (SITE records), so that events and
 * LIVE records can be shown with what their site stands for. */
typedef struct dump_site_s {
    bool set;
    uint64_t size, stack, weight, tid, flags;
} dump_site_t;

typedef struct dump_sites_s {
    dump_site_t *e;
    size_t n;
} dump_sites_t;

/* Ids past this are shown unresolved (a hostile id must not size the
 * table); the collector numbers sites densely from 1. */
#define DUMP_MAX_SITE (1u << 24)

static void
dump_site_put(dump_sites_t *t, const ht_tf_rec_t *r)
{
    if (r->id >= DUMP_MAX_SITE)
        return;
    if (r->id >= t->n) {
        size_t nn = t->n ? t->n : 1024;
        while (nn <= r->id)
            nn *= 2;
        dump_site_t *ne = realloc(t->e, nn * sizeof *ne);
        if (!ne)
            return;
        memset(ne + t->n, 0, (nn - t->n) * sizeof *ne);
        t->e = ne;
        t->n = nn;
    }
    t->e[r->id] = (dump_site_t){true, r->size, r->stack, r->weight, r->tid, r->flags};
}

static const dump_site_t *
dump_site_get(const dump_sites_t *t, uint64_t id)
{
    return id < t->n && t->e[id].set ? &t->e[id] : NULL;
}

/* site: what the site of an event or LIVE stands for (NULL: not defined).
 * Events carry no time of their own: "ts" is the stream's. */
static void
dump_rec(size_t seg, const ht_tf_rec_t *r, bool kf, bool in_batch, uint64_t bpid, uint64_t btid,
         const dump_site_t *site)
{
    char kname[32];
    const char *n = ht_tf_kind_name(r->kind);
    size_t i = 0;
    for (; n && n[i] && i < sizeof kname - 1; i++)
        kname[i] = (char)(n[i] >= 'A' && n[i] <= 'Z' ? n[i] + 32 : n[i]);
    kname[i] = 0;
    dump_begin();
    if (dump_json) {
        dump_u("seg", seg);
        dump_key("type");
        printf("\"%s\"", kname);
        if (kf) {
            dump_key("keyframe");
            fputs("true", stdout);
        }
    } else {
        printf("%4zu %s%-12s", seg, kf ? "K " : "  ", kname);
        dump_first = false;
    }
    const char *spec = dump_spec(r->kind);
    bool has_tid = false, has_pid = false;
    // Walk "name:t name:t ...".
    while (spec && *spec) {
        char name[32];
        size_t k = 0;
        while (*spec && *spec != ':' && k < sizeof name - 1)
            name[k++] = *spec++;
        name[k] = 0;
        char type = *spec == ':' ? spec[1] : 0;
        spec += *spec == ':' ? 2 : 0;
        while (*spec == ' ')
            spec++;
        has_tid |= !strcmp(name, "tid");
        has_pid |= !strcmp(name, "pid");
        dump_field(r, name, type);
    }
    bool ev = r->kind == HT_TF_EV_ALLOC || r->kind == HT_TF_EV_FREE ||
              r->kind == HT_TF_EV_FREE_TMP;
    if (ev)
        dump_u("ts", r->ts);
    if (site) {
        dump_u("size", site->size);
        dump_u("stack", site->stack);
        dump_u("weight", site->weight);
        if (r->kind == HT_TF_LIVE) {
            dump_u("tid", site->tid);
            dump_u("flags", site->flags);
        } else {
            dump_u("alloc_tid", site->tid);
        }
    }
    if (in_batch && !kf && r->kind != HT_TF_BATCH) {
        if (!has_pid)
            dump_u("pid", bpid);
        if (!has_tid && btid) // events of format 5 name no thread: their site does
            dump_u("tid", btid);
    }
    if (r->kind == HT_TF_ALLOC_W && !dump_json)
        printf(" (x%.3f)", (double)r->weight / (double)HT_TF_WEIGHT_ONE);
    dump_end();
}

int
cmd_dump(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int ch, rc;
    dump_json = false;
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "+:h", longopts, NULL)) != -1) {
        switch (ch) {
        case 'j':
            dump_json = true;
            break;
        case 'h':
            dump_usage(stdout);
            return 0;
        default:
            return ht_cli_bad_option("dump", ch, argv, longopts, dump_usage);
        }
    }
    if ((rc = ht_cli_one_operand("dump", "TRACE", argc, dump_usage)))
        return rc;
    const char *path = argv[optind];
    char err[512];
    ht_tfr_t *r;
    if (ht_tfr_open(&r, path, err, sizeof err) < 0) {
        ht_cli_error("%s", err);
        return 1;
    }
    static char obuf[1 << 16];
    setvbuf(stdout, obuf, _IOFBF, sizeof obuf);
    const ht_file_info_t *fi = ht_tfr_info(r);
    dump_begin();
    if (dump_json) {
        dump_key("type");
        fputs("\"file\"", stdout);
    } else {
        fputs("file", stdout);
    }
    dump_u("version", fi->version);
    dump_u("pid", fi->pid);
    dump_s("exe", (const uint8_t *)fi->exe, strlen(fi->exe));
    dump_s("argv", (const uint8_t *)fi->argv, strlen(fi->argv));
    dump_s("host", (const uint8_t *)fi->host, strlen(fi->host));
    dump_u("flags", fi->flags);
    dump_u("sample_rate", fi->sample_rate);
    dump_u("max_depth", fi->max_depth);
    dump_u("max_size", fi->max_size);
    dump_u("start_realtime_ns", fi->start_realtime_ns);
    dump_u("start_mono_ns", fi->start_mono_ns);
    dump_u("segments", ht_tfr_nsegs(r));
    dump_u("skipped", ht_tfr_skipped_segs(r));
    dump_end();
    if (ht_tfr_skipped_segs(r))
        ht_cli_error("warning: %s: %llu damaged segment(s) skipped", path,
                     (unsigned long long)ht_tfr_skipped_segs(r));

    ht_tf_dec_t *d = malloc(sizeof *d);
    dump_sites_t sites = {NULL, 0};
    if (!d) {
        ht_tfr_close(r);
        ht_cli_error("out of memory");
        return 1;
    }
    for (size_t i = 0; i < ht_tfr_nsegs(r); i++) {
        const ht_tfr_seg_t *s = ht_tfr_seg(r, i);
        const uint8_t *raw;
        size_t len;
        rc = ht_tfr_load(r, i, &raw, &len, err, sizeof err);
        dump_begin();
        if (dump_json) {
            dump_key("type");
            fputs("\"segment\"", stdout);
        } else {
            fputs("segment", stdout);
        }
        dump_u("seg", i);
        dump_u("seq", s->seq);
        dump_u("pid", s->pid);
        dump_u("t0", s->t0);
        dump_u("t1", s->t1);
        dump_u("offset", s->offset);
        dump_u("comp_len", s->comp_len);
        dump_u("raw_len", s->raw_len);
        dump_key("status");
        printf(dump_json ? "\"%s\"" : "%s",
               rc < 0 ? "unreadable" : s->status == HT_TFR_SEG_TORN ? "torn" : "ok");
        dump_end();
        if (rc < 0) {
            fflush(stdout);
            ht_cli_error("warning: %s", err);
            continue;
        }
        if (s->status == HT_TFR_SEG_TORN) {
            fflush(stdout);
            ht_cli_error("warning: %s: segment %llu is torn: %zu of %llu bytes of records "
                         "readable", path, (unsigned long long)s->seq, len,
                         (unsigned long long)s->raw_len);
        }
        ht_tf_dec_init_seg(d, raw, len);
        ht_tf_rec_t rec;
        bool kf = false, in_events = false;
        uint64_t tid = 0;
        if (sites.e)
            memset(sites.e, 0, sites.n * sizeof *sites.e); // a segment stands alone
        while ((rc = ht_tf_dec_next(d, &rec)) == 1) {
            const dump_site_t *site = NULL;
            switch (rec.kind) {
            case HT_TF_KEYFRAME:
                kf = true;
                break;
            case HT_TF_EV_THREAD:
                tid = rec.tid;
                break;
            case HT_TF_SITE:
                dump_site_put(&sites, &rec);
                break;
            case HT_TF_EV_ALLOC:
            case HT_TF_EV_FREE:
            case HT_TF_EV_FREE_TMP:
            case HT_TF_LIVE:
                site = dump_site_get(&sites, rec.site);
                break;
            default:
                break;
            }
            dump_rec(i, &rec, kf, in_events, s->pid, tid, site);
            if (rec.kind == HT_TF_KEYFRAME_END) {
                kf = false;
                in_events = true;
            }
        }
        if (rc < 0) {
            fflush(stdout);
            ht_cli_error("warning: %s: segment %llu: malformed record at byte %zu; rest of the "
                         "segment skipped", path, (unsigned long long)s->seq,
                         (size_t)(d->p - raw));
        }
    }
    free(d);
    free(sites.e);
    ht_tfr_close(r);
    return ht_cli_finish_stdout("dump", ferror(stdout) ? -EIO : 0);
}
