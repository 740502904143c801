/*
 * analyzer/report.c -- `report` and `leaks` as text and JSON.
 */
#include "analyzer/report.h"
#include "analyzer/profile_build.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- formatting helpers ---- */

const char *
ht_report_size(char *buf, size_t n, double bytes)
{
    const char *sign = bytes < 0 ? "-" : "";
    double b = fabs(bytes);
    if (b < 1024)
        snprintf(buf, n, "%s%.0f bytes", sign, b);
    else if (b < 1024.0 * 1024)
        snprintf(buf, n, "%s%.1f KiB", sign, b / 1024);
    else if (b < 1024.0 * 1024 * 1024)
        snprintf(buf, n, "%s%.1f MiB", sign, b / (1024.0 * 1024));
    else
        snprintf(buf, n, "%s%.2f GiB", sign, b / (1024.0 * 1024 * 1024));
    return buf;
}

const char *
ht_report_count(char *buf, size_t n, double v)
{
    char tmp[32];
    double r = llround(v) == 0 ? 0 : round(v); // no "-0"
    snprintf(tmp, sizeof tmp, "%.0f", fabs(r));
    size_t len = strlen(tmp), o = 0;
    if (r < 0 && o + 1 < n)
        buf[o++] = '-';
    for (size_t i = 0; i < len && o + 1 < n; i++) {
        buf[o++] = tmp[i];
        size_t left = len - i - 1;
        if (left && left % 3 == 0 && o + 1 < n)
            buf[o++] = ',';
    }
    buf[o] = '\0';
    return buf;
}

void
ht_report_json_str(FILE *f, const char *s)
{
    if (!s) {
        fputs("null", f);
        return;
    }
    fputc('"', f);
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned c = *p;
        if (c == '"' || c == '\\') {
            fputc('\\', f);
            fputc((int)c, f);
            p++;
        } else if (c < 0x20) {
            fprintf(f, "\\u%04x", c);
            p++;
        } else if (c < 0x80) {
            fputc((int)c, f);
            p++;
        } else {
            // Copy a well-formed UTF-8 sequence; anything else is U+FFFD,
            // so the output stays valid JSON whatever a trace's paths hold.
            int len = (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
            int ok = len > 0 && !(len == 2 && c < 0xc2);
            for (int i = 1; ok && i < len; i++)
                ok = (p[i] & 0xc0) == 0x80;
            if (ok) {
                fwrite(p, 1, (size_t)len, f);
                p += len;
            } else {
                fputs("\\ufffd", f);
                p++;
            }
        }
    }
    fputc('"', f);
}

static long long
rep_int(double v)
{
    if (!(v == v) || v > 9.2e18 || v < -9.2e18)
        return 0;
    return llround(v);
}

// "~1.2 MiB ± 40.0 KiB" in sampled mode, "1.2 MiB" when exact.
static const char *
rep_est(char *buf, size_t n, const ht_profile_t *p, double bytes)
{
    char a[32], b[32];
    ht_report_size(a, sizeof a, bytes);
    double se = ht_prof_stderr_bytes(p, fabs(bytes));
    if (p->sampled && se > 0)
        snprintf(buf, n, "~%s ± %s", a, ht_report_size(b, sizeof b, se));
    else
        snprintf(buf, n, "%s%s", p->sampled ? "~" : "", a);
    return buf;
}

static const char *
rep_cnt(char *buf, size_t n, const ht_profile_t *p, double v)
{
    char a[32];
    snprintf(buf, n, "%s%s", p->sampled ? "~" : "", ht_report_count(a, sizeof a, v));
    return buf;
}

static const char *
rep_map_path(const ht_profile_t *p, const ht_location_t *l)
{
    if (!l->mapping || l->mapping > p->nmaps)
        return NULL;
    return p->maps[l->mapping - 1].path;
}

static const char *
rep_base(const char *path)
{
    const char *s = path ? strrchr(path, '/') : NULL;
    return s ? s + 1 : path;
}

const char *
ht_report_site(char *buf, size_t n, const ht_profile_t *p, const ht_pstack_t *s)
{
    if (!s->nlocs || s->locs[0] >= p->nlocs) {
        snprintf(buf, n, "[no backtrace]");
        return buf;
    }
    const ht_location_t *l = &p->locs[s->locs[ht_prof_site_frame(p, s)]];
    if (!l->nlines) {
        snprintf(buf, n, "0x%" PRIx64, l->address);
        return buf;
    }
    // The innermost line is where the call really is: for an inlined
    // helper that is the helper's line, which is what the user edits.
    const ht_line_t *ln = &l->lines[0];
    if (ln->file && ln->line)
        snprintf(buf, n, "%s (%s:%u)", ln->function, rep_base(ln->file), ln->line);
    else if (ln->file)
        snprintf(buf, n, "%s (%s)", ln->function, rep_base(ln->file));
    else
        snprintf(buf, n, "%s", ln->function);
    return buf;
}

void
ht_report_stack(FILE *f, const ht_profile_t *p, const ht_pstack_t *s, int indent,
                uint32_t max_frames)
{
    uint32_t n = s->nlocs;
    if (max_frames && n > max_frames)
        n = max_frames;
    for (uint32_t i = 0; i < n; i++) {
        if (s->locs[i] >= p->nlocs)
            continue;
        const ht_location_t *l = &p->locs[s->locs[i]];
        if (!l->nlines) {
            fprintf(f, "%*s0x%" PRIx64 "\n", indent, "", l->address);
            continue;
        }
        for (uint32_t k = 0; k < l->nlines; k++) {
            const ht_line_t *ln = &l->lines[k];
            fprintf(f, "%*s%s", indent, "", ln->function);
            if (ln->file && ln->line)
                fprintf(f, "  %s:%u", ln->file, ln->line);
            else if (ln->file)
                fprintf(f, "  %s", ln->file);
            else if (rep_map_path(p, l) && !strchr(ln->function, '+'))
                fprintf(f, "  (%s)", rep_base(rep_map_path(p, l)));
            if (k + 1 < l->nlines)
                fputs("  [inlined]", f);
            fputc('\n', f);
        }
    }
    if (n < s->nlocs)
        fprintf(f, "%*s... %u more frames\n", indent, "", s->nlocs - n);
}

void
ht_report_stack_json(FILE *f, const ht_profile_t *p, const ht_pstack_t *s)
{
    fputc('[', f);
    int first = 1;
    for (uint32_t i = 0; i < s->nlocs; i++) {
        if (s->locs[i] >= p->nlocs)
            continue;
        const ht_location_t *l = &p->locs[s->locs[i]];
        for (uint32_t k = 0; k < (l->nlines ? l->nlines : 1); k++) {
            const ht_line_t *ln = l->nlines ? &l->lines[k] : NULL;
            fputs(first ? "{" : ",{", f);
            first = 0;
            fputs("\"function\":", f);
            ht_report_json_str(f, ln ? ln->function : "??");
            fputs(",\"file\":", f);
            ht_report_json_str(f, ln ? ln->file : NULL);
            fprintf(f, ",\"line\":%u,\"address\":%" PRIu64 ",\"module\":", ln ? ln->line : 0,
                    l->address);
            ht_report_json_str(f, rep_map_path(p, l));
            fprintf(f, ",\"inlined\":%s}", ln && k + 1 < l->nlines ? "true" : "false");
        }
    }
    fputc(']', f);
}

/* ---- sorting stacks by a metric ---- */

typedef struct rep_sort_s {
    const ht_profile_t *p;
    ht_metric_t m;
} rep_sort_t;

static __thread rep_sort_t rep_sort_ctx;

static int
rep_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    double vx = rep_sort_ctx.p->stacks[x].v[rep_sort_ctx.m];
    double vy = rep_sort_ctx.p->stacks[y].v[rep_sort_ctx.m];
    if (vx != vy)
        return vx > vy ? -1 : 1;
    return x < y ? -1 : x > y;
}

// Indices of stacks with a positive value of m, largest first.
static uint32_t *
rep_top(const ht_profile_t *p, ht_metric_t m, uint32_t *n)
{
    uint32_t *idx = malloc((p->nstacks + 1) * sizeof *idx);
    if (!idx)
        return NULL;
    uint32_t k = 0;
    for (uint32_t i = 0; i < p->nstacks; i++)
        if (p->stacks[i].v[m] > 0.5 / (double)(1 << 16))
            idx[k++] = i;
    rep_sort_ctx = (rep_sort_t){p, m};
    qsort(idx, k, sizeof *idx, rep_cmp);
    *n = k;
    return idx;
}

/* ---- the header ---- */

static double
rep_sec(uint64_t ns)
{
    return (double)ns / 1e9;
}

static void
rep_exit_text(char *buf, size_t n, const ht_profile_t *p)
{
    if (!p->exited)
        snprintf(buf, n, "not in the trace (still running when recording stopped, or the "
                         "trace was cut short)");
    else if (p->exit_how == 1)
        snprintf(buf, n, "killed by signal %d", p->exit_code);
    else if (p->exit_how == 0)
        snprintf(buf, n, "exited with status %d", p->exit_code);
    else
        snprintf(buf, n, "exited (status unknown)");
}

/* s on one line: a command line can hold newlines (python3 -c 'script'),
 * which would break the header's line-per-field shape; control characters
 * are written as C escapes, and a long one is cut at REP_ARGS_MAX. */
#define REP_ARGS_MAX 240
static void
rep_put_line(FILE *f, const char *s)
{
    size_t i = 0;
    for (; s[i] && i < REP_ARGS_MAX; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '\n')
            fputs("\\n", f);
        else if (ch == '\t')
            fputs("\\t", f);
        else if (ch < 0x20 || ch == 0x7f)
            fprintf(f, "\\x%02x", ch);
        else
            fputc(ch, f);
    }
    if (s[i])
        fputs("...", f);
}

static void
rep_header_text(FILE *f, const ht_profile_t *p, const char *spec, const char *what)
{
    char a[160], b[64];
    fprintf(f, "heaptrace %s: %s\n", what, spec);
    fprintf(f, "  program   %s", p->exe[0] ? p->exe : "(unknown)");
    if (p->argv[0]) {
        fputs("  args: ", f);
        rep_put_line(f, p->argv);
    }
    fprintf(f, " (pid %" PRIu64 ")\n", p->pid);
    if (p->last_exe)
        fprintf(f, "  exec      it exec'd; the last image: %s\n", p->last_exe);
    fprintf(f, "  covers    %.2f s of data", rep_sec(p->end_ns - p->start_ns));
    if (p->snapshot >= 0)
        fprintf(f, ", up to snapshot %d", p->snapshot);
    fputc('\n', f);
    if (p->sampled)
        fprintf(f, "  mode      sampled, one sample every %s on average: figures marked ~ are "
                   "estimates ± one standard error\n",
                ht_report_size(a, sizeof a, (double)p->sample_rate));
    else
        fprintf(f, "  mode      exact (every allocation recorded)\n");
    if (p->head_lost)
        fprintf(f, "  window    the oldest part of the trace was overwritten (ring) or lost: "
                   "the data covers only its last %.2f s\n",
                rep_sec(p->end_ns - p->start_ns));
    rep_exit_text(a, sizeof a, p);
    fprintf(f, "  exit      %s\n", a);
    if (p->segs_lost || p->lost_events || p->unknown_frees || p->bad_sites || p->unknown_stacks) {
        fprintf(f, "  warning   incomplete data:");
        if (p->segs_lost)
            fprintf(f, " %" PRIu64 " segment(s) lost or damaged;", p->segs_lost);
        if (p->lost_events)
            // --lossy on a full ring, or lossless with no buffer to be had
            // (more threads than buffers, all idle; no room for the ring).
            fprintf(f, " %s events dropped by the recorder (ring full or starved);",
                    ht_report_count(b, sizeof b, (double)p->lost_events));
        if (p->unknown_frees)
            fprintf(f, " %s frees of unknown addresses;",
                    ht_report_count(b, sizeof b, (double)p->unknown_frees));
        if (p->bad_sites)
            fprintf(f, " %s records of undefined or redefined sites;",
                    ht_report_count(b, sizeof b, (double)p->bad_sites));
        if (p->unknown_stacks)
            fprintf(f, " %s allocations with an unknown stack;",
                    ht_report_count(b, sizeof b, (double)p->unknown_stacks));
        fputc('\n', f);
    }
}

static void
rep_header_json(FILE *f, const ht_profile_t *p, const char *spec, const char *what)
{
    fprintf(f, "{\"command\":\"%s\",\"spec\":", what);
    ht_report_json_str(f, spec);
    fputs(",\"program\":{\"exe\":", f);
    ht_report_json_str(f, p->exe);
    fputs(",\"argv\":", f);
    ht_report_json_str(f, p->argv);
    fprintf(f, ",\"pid\":%" PRIu64 "}", p->pid);
    fprintf(f, ",\"sampled\":%s,\"sample_rate\":%" PRIu64, p->sampled ? "true" : "false",
            p->sample_rate);
    fprintf(f,
            ",\"window\":{\"start_ns\":%" PRIu64 ",\"end_ns\":%" PRIu64
            ",\"duration_ns\":%" PRIu64 ",\"start_realtime_ns\":%" PRIu64
            ",\"head_lost\":%s,\"snapshot\":%d}",
            p->start_ns, p->end_ns, p->end_ns - p->start_ns, p->start_realtime_ns,
            p->head_lost ? "true" : "false", p->snapshot);
    fprintf(f, ",\"exit\":{\"exited\":%s,\"how\":\"%s\",\"code\":%d}",
            p->exited ? "true" : "false",
            !p->exited ? "none" : p->exit_how == 0 ? "status" : p->exit_how == 1 ? "signal" : "unknown",
            p->exit_code);
    fprintf(f,
            ",\"data_quality\":{\"segments_lost\":%" PRIu64 ",\"events_dropped\":%" PRIu64
            ",\"unknown_frees\":%" PRIu64 ",\"bad_sites\":%" PRIu64
            ",\"unknown_stacks\":%" PRIu64 "}",
            p->segs_lost, p->lost_events, p->unknown_frees, p->bad_sites, p->unknown_stacks);
}

/* ---- report ---- */

typedef struct rep_table_s {
    const char *title, *key;
    ht_metric_t sort, bytes, objs;
} rep_table_t;

static const rep_table_t rep_tables[] = {
    {"leaked (live at exit)", "leaked", HT_M_LEAKED_SPACE, HT_M_LEAKED_SPACE, HT_M_LEAKED_OBJECTS},
    {"live at the peak", "peak", HT_M_PEAK_SPACE, HT_M_PEAK_SPACE, HT_M_PEAK_OBJECTS},
    {"bytes allocated", "alloc_space", HT_M_ALLOC_SPACE, HT_M_ALLOC_SPACE, HT_M_ALLOC_OBJECTS},
    {"temporary allocations (freed right away)", "temporary", HT_M_TEMP_OBJECTS, HT_M_TEMP_SPACE,
     HT_M_TEMP_OBJECTS},
};

static void
rep_site_json(FILE *f, const ht_profile_t *p, const ht_pstack_t *s, ht_metric_t bytes,
              ht_metric_t objs)
{
    double b = s->v[bytes];
    fprintf(f, "{\"bytes\":%lld,\"bytes_stderr\":%lld,\"objects\":%lld", rep_int(b),
            rep_int(ht_prof_stderr_bytes(p, fabs(b))), rep_int(s->v[objs]));
    if (s->tid)
        fprintf(f, ",\"tid\":%" PRIu64, s->tid);
    const ht_line_t *ln = NULL;
    if (s->nlocs && s->locs[0] < p->nlocs) {
        const ht_location_t *l = &p->locs[s->locs[ht_prof_site_frame(p, s)]];
        if (l->nlines)
            ln = &l->lines[0];
    }
    fputs(",\"function\":", f);
    ht_report_json_str(f, ln ? ln->function : NULL);
    fputs(",\"file\":", f);
    ht_report_json_str(f, ln ? ln->file : NULL);
    fprintf(f, ",\"line\":%u,\"stack\":", ln ? ln->line : 0);
    ht_report_stack_json(f, p, s);
    fputc('}', f);
}

int
ht_report_write(FILE *f, const ht_profile_t *p, const char *spec, const ht_report_opts_t *o)
{
    int top = o && o->top > 0 ? o->top : 10;
    char a[96], b[96], c[96];
    const double *v = p->v;
    const char *live_word = p->snapshot >= 0 ? "live at the snapshot" : "live at end";
    if (o && o->json) {
        rep_header_json(f, p, spec, "report");
        fprintf(f,
                ",\"totals\":{\"allocs\":%" PRIu64 ",\"alloc_bytes\":%" PRIu64
                ",\"frees\":%" PRIu64 ",\"free_bytes\":%" PRIu64,
                p->exact_allocs, p->exact_alloc_bytes, p->exact_frees, p->exact_free_bytes);
        if (p->sampled)
            fputs(",\"free_bytes_exact\":false,\"temporary_known\":false", f);
        if (p->counts_cut)
            fputs(",\"counts_final\":false", f);
        struct {
            const char *name;
            double bytes, objs;
        } est[] = {
            {"recorded_alloc", v[HT_M_ALLOC_SPACE], v[HT_M_ALLOC_OBJECTS]},
            {"live", v[HT_M_INUSE_SPACE], v[HT_M_INUSE_OBJECTS]},
            {"peak", p->peak_bytes, v[HT_M_PEAK_OBJECTS]},
            {"leaked", v[HT_M_LEAKED_SPACE], v[HT_M_LEAKED_OBJECTS]},
            {"temporary", v[HT_M_TEMP_SPACE], v[HT_M_TEMP_OBJECTS]},
        };
        for (size_t i = 0; i < sizeof est / sizeof est[0]; i++)
            fprintf(f, ",\"%s_bytes\":%lld,\"%s_bytes_stderr\":%lld,\"%s_objects\":%lld",
                    est[i].name, rep_int(est[i].bytes), est[i].name,
                    rep_int(ht_prof_stderr_bytes(p, est[i].bytes)), est[i].name,
                    rep_int(est[i].objs));
        fprintf(f, ",\"peak_ns\":%" PRIu64 "}", p->peak_ns);
        fprintf(f, ",\"memory\":{\"rss\":%" PRIu64 ",\"heap_free\":%" PRIu64 "}", p->rss,
                p->heap_free);
        fputs(",\"threads\":[", f);
        for (uint32_t i = 0; i < p->nthreads; i++) {
            const ht_pthread_t *t = &p->threads[i];
            fprintf(f, "%s{\"tid\":%" PRIu64 ",\"name\":", i ? "," : "", t->tid);
            ht_report_json_str(f, t->name);
            fprintf(f,
                    ",\"allocs\":%" PRIu64 ",\"alloc_bytes\":%" PRIu64 ",\"frees\":%" PRIu64
                    ",\"free_bytes\":%" PRIu64 ",\"live_bytes\":%lld,\"leaked_bytes\":%lld}",
                    t->exact_allocs, t->exact_alloc_bytes, t->exact_frees, t->exact_free_bytes,
                    rep_int(t->v[HT_M_INUSE_SPACE]), rep_int(t->v[HT_M_LEAKED_SPACE]));
        }
        fputs("],\"top\":{", f);
        for (size_t t = 0; t < sizeof rep_tables / sizeof rep_tables[0]; t++) {
            const rep_table_t *tb = &rep_tables[t];
            uint32_t n;
            uint32_t *idx = rep_top(p, tb->sort, &n);
            if (!idx)
                return -ENOMEM;
            fprintf(f, "%s\"%s\":[", t ? "," : "", tb->key);
            for (uint32_t i = 0; i < n && i < (uint32_t)top; i++) {
                if (i)
                    fputc(',', f);
                rep_site_json(f, p, &p->stacks[idx[i]], tb->bytes, tb->objs);
            }
            fputc(']', f);
            free(idx);
        }
        fputs("}}\n", f);
        return ferror(f) ? -EIO : 0;
    }

    rep_header_text(f, p, spec, "report");
    fputs("\ntotals\n", f);
    // A program killed before its exit handler counted what it did after
    // its last TOTALS (every 65,536 allocations of a thread) nowhere: the
    // figures are lower bounds then, and say so.
    const char *atleast = p->counts_cut ? "at least " : "";
    fprintf(f, "  allocations   %s%s calls, %s%s\n", atleast,
            ht_report_count(a, sizeof a, (double)p->exact_allocs),
            ht_report_size(b, sizeof b, (double)p->exact_alloc_bytes),
            p->counts_cut ? "  (it was killed before it wrote its final counts)"
            : p->sampled  ? "  (exact, every allocation)"
                          : "");
    // When sampling, the shim learns the size of a freed block only for
    // the blocks it sampled: the count of frees is exact, their bytes are
    // not, so none are printed.
    if (p->sampled)
        fprintf(f, "  frees         %s%s calls  (%sfreed bytes are known for sampled blocks "
                   "only)\n",
                atleast, ht_report_count(a, sizeof a, (double)p->exact_frees),
                p->counts_cut ? "" : "exact; ");
    else
        fprintf(f, "  frees         %s%s calls, %s\n", atleast,
                ht_report_count(a, sizeof a, (double)p->exact_frees),
                ht_report_size(b, sizeof b, (double)p->exact_free_bytes));
    fprintf(f, "  %-13s %s in %s object(s)\n", live_word,
            rep_est(a, sizeof a, p, v[HT_M_INUSE_SPACE]),
            rep_cnt(b, sizeof b, p, v[HT_M_INUSE_OBJECTS]));
    fprintf(f, "  peak          %s at %.2f s\n", rep_est(a, sizeof a, p, p->peak_bytes),
            rep_sec(p->peak_ns));
    if (p->exited) {
        fprintf(f, "  leaked        %s in %s object(s) (never freed before exit)\n",
                rep_est(a, sizeof a, p, v[HT_M_LEAKED_SPACE]),
                rep_cnt(b, sizeof b, p, v[HT_M_LEAKED_OBJECTS]));
        // The exact counts know how many blocks were never freed even when
        // no sample fell on one (a leak of small blocks in a big program:
        // 32,002 blocks of ~50 bytes among 88 MiB is three samples on
        // average, and none in one run in twenty).
        if (p->sampled && p->snapshot < 0 && !p->counts_cut && p->exact_allocs >= p->exact_frees)
            fprintf(f, "                exactly %s block(s) (allocations - frees)%s\n",
                    ht_report_count(a, sizeof a, (double)(p->exact_allocs - p->exact_frees)),
                    v[HT_M_LEAKED_OBJECTS] == 0 && p->exact_allocs > p->exact_frees
                        ? ", none sampled: --all shows where"
                        : "");
    } else
        fprintf(f, "  leaked        unknown: the trace holds no exit (%s is what was live at "
                   "its end)\n",
                rep_est(a, sizeof a, p, v[HT_M_LEAKED_SPACE]));
    // "Temporary" means no other allocation came between an allocation and
    // its free; a sampled trace does not see the unsampled allocations in
    // between, so it would count far too many. Only exact traces say.
    if (p->sampled)
        fputs("  temporary     not known when sampling (record with --all)\n", f);
    else
        fprintf(f, "  temporary     %s allocation(s) freed right away (%s)\n",
                rep_cnt(a, sizeof a, p, v[HT_M_TEMP_OBJECTS]),
                rep_est(b, sizeof b, p, v[HT_M_TEMP_SPACE]));
    if (p->rss && p->heap_free)
        fprintf(f, "  memory        RSS %s, allocator's free memory %s (last sample)\n",
                ht_report_size(a, sizeof a, (double)p->rss),
                ht_report_size(b, sizeof b, (double)p->heap_free));
    else if (p->rss)
        fprintf(f, "  memory        RSS %s (last sample)\n",
                ht_report_size(a, sizeof a, (double)p->rss));

    for (size_t t = 0; t < sizeof rep_tables / sizeof rep_tables[0]; t++) {
        const rep_table_t *tb = &rep_tables[t];
        if (tb->sort == HT_M_LEAKED_SPACE && !p->exited)
            continue; // said above: without an exit the leak table is the live table
        if (tb->sort == HT_M_TEMP_OBJECTS && p->sampled)
            continue; // not known when sampling, said above
        uint32_t n;
        uint32_t *idx = rep_top(p, tb->sort, &n);
        if (!idx)
            return -ENOMEM;
        fprintf(f, "\ntop %u sites by %s%s\n", n < (uint32_t)top ? n : (uint32_t)top, tb->title,
                n ? "" : ": none");
        for (uint32_t i = 0; i < n && i < (uint32_t)top; i++) {
            const ht_pstack_t *s = &p->stacks[idx[i]];
            fprintf(f, "  %2u. %-26s %14s object(s)  %s\n", i + 1,
                    rep_est(a, sizeof a, p, s->v[tb->bytes]),
                    rep_cnt(b, sizeof b, p, s->v[tb->objs]), ht_report_site(c, sizeof c, p, s));
            // A short stack: the callers that tell this site apart.
            uint32_t first = ht_prof_site_frame(p, s) + 1;
            for (uint32_t k = first; k < s->nlocs && k < first + 3; k++) {
                ht_pstack_t one = {.nlocs = 1, .locs = &s->locs[k]};
                fprintf(f, "        <- %s\n", ht_report_site(c, sizeof c, p, &one));
            }
        }
        free(idx);
    }
    return ferror(f) ? -EIO : 0;
}

/* ---- leaks ---- */

int
ht_report_leaks(FILE *f, const ht_profile_t *p, const char *spec, const ht_report_opts_t *o)
{
    int top = o && o->top > 0 ? o->top : 0; // 0: all
    uint32_t n;
    uint32_t *idx = rep_top(p, HT_M_LEAKED_SPACE, &n);
    if (!idx)
        return -ENOMEM;
    // Zero-byte allocations leak too (malloc(0) returns a block): count
    // stacks with leaked objects even when their bytes are 0.
    uint32_t extra = 0;
    for (uint32_t i = 0; i < p->nstacks; i++)
        if (p->stacks[i].v[HT_M_LEAKED_SPACE] <= 0 && p->stacks[i].v[HT_M_LEAKED_OBJECTS] > 0)
            idx[n + extra++] = i;
    n += extra;
    uint32_t shown = top && (uint32_t)top < n ? (uint32_t)top : n;
    char a[96], b[96], c[96];
    const double *v = p->v;
    if (o && o->json) {
        rep_header_json(f, p, spec, "leaks");
        fprintf(f,
                ",\"leaked_bytes\":%lld,\"leaked_bytes_stderr\":%lld,\"leaked_objects\":%lld,"
                "\"stacks\":%u,\"leaks\":[",
                rep_int(v[HT_M_LEAKED_SPACE]),
                rep_int(ht_prof_stderr_bytes(p, v[HT_M_LEAKED_SPACE])),
                rep_int(v[HT_M_LEAKED_OBJECTS]), n);
        for (uint32_t i = 0; i < shown; i++) {
            if (i)
                fputc(',', f);
            rep_site_json(f, p, &p->stacks[idx[i]], HT_M_LEAKED_SPACE, HT_M_LEAKED_OBJECTS);
        }
        fputs("]}\n", f);
        free(idx);
        return ferror(f) ? -EIO : 0;
    }
    rep_header_text(f, p, spec, "leaks");
    fputc('\n', f);
    if (!p->exited)
        fprintf(f, "The trace holds no exit of the program: below is what was still live at "
                   "the end of the trace, not necessarily leaked.\n\n");
    if (n == 0) {
        fprintf(f, "no leaks: every recorded allocation was freed%s\n",
                p->exited ? " before exit" : " by the end of the trace");
        free(idx);
        return ferror(f) ? -EIO : 0;
    }
    fprintf(f, "%s in %s object(s) never freed, from %u stack%s%s\n",
            rep_est(a, sizeof a, p, v[HT_M_LEAKED_SPACE]),
            rep_cnt(b, sizeof b, p, v[HT_M_LEAKED_OBJECTS]), n, n == 1 ? "" : "s",
            shown < n ? " (largest shown)" : "");
    for (uint32_t i = 0; i < shown; i++) {
        const ht_pstack_t *s = &p->stacks[idx[i]];
        fprintf(f, "\n#%u  %s in %s object(s)  at %s", i + 1,
                rep_est(a, sizeof a, p, s->v[HT_M_LEAKED_SPACE]),
                rep_cnt(b, sizeof b, p, s->v[HT_M_LEAKED_OBJECTS]),
                ht_report_site(c, sizeof c, p, s));
        if (s->tid)
            fprintf(f, "  (thread %" PRIu64 ")", s->tid);
        fputc('\n', f);
        ht_report_stack(f, p, s, 4, 0);
    }
    if (shown < n)
        fprintf(f, "\n... %u more stacks (--top 0 shows all)\n", n - shown);
    free(idx);
    return ferror(f) ? -EIO : 0;
}
