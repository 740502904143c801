/*
 * analyzer/diff.c -- matching two profiles' stacks by symbolized frames,
 * the difference as a profile, and the `diff` report.
 */
#include "analyzer/diff.h"
#include "analyzer/profile_build.h"
#include "analyzer/report.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct diff_ent_s {
    char *key;
    const ht_profile_t *src; // where rep comes from: NEW when present there
    const ht_pstack_t *rep;
    double vb[HT_M_COUNT], vn[HT_M_COUNT];
} diff_ent_t;

typedef struct diff_set_s {
    diff_ent_t *e;
    size_t n, cap;
    uint32_t *slot; // index + 1
    size_t scap;
} diff_set_t;

static uint64_t
diff_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

// The identity of a stack across profiles: every line of every frame,
// leaf first; addresses only where nothing better is known (then the
// module-relative name "lib.so+0x1234" already stands in for them).
static char *
diff_key(const ht_profile_t *p, const ht_pstack_t *s)
{
    size_t cap = 256, len = 0;
    char *k = malloc(cap);
    if (!k)
        return NULL;
    for (uint32_t i = 0; i < s->nlocs; i++) {
        if (s->locs[i] >= p->nlocs)
            continue;
        const ht_location_t *l = &p->locs[s->locs[i]];
        for (uint32_t j = 0; j < (l->nlines ? l->nlines : 1); j++) {
            char tmp[64];
            const char *fn = l->nlines ? l->lines[j].function : NULL;
            const char *file = l->nlines && l->lines[j].file ? l->lines[j].file : "";
            uint32_t line = l->nlines ? l->lines[j].line : 0;
            if (!fn) {
                snprintf(tmp, sizeof tmp, "0x%" PRIx64, l->address);
                fn = tmp;
            }
            size_t need = strlen(fn) + strlen(file) + 32;
            if (len + need >= cap) {
                while (len + need >= cap)
                    cap *= 2;
                char *nk = realloc(k, cap);
                if (!nk) {
                    free(k);
                    return NULL;
                }
                k = nk;
            }
            len += (size_t)snprintf(k + len, cap - len, "%s\x1f%s\x1f%u\x1e", fn, file, line);
        }
    }
    k[len] = '\0';
    return k;
}

static int
diff_add(diff_set_t *d, const ht_profile_t *p, const ht_pstack_t *s, int is_new)
{
    char *key = diff_key(p, s);
    if (!key)
        return -ENOMEM;
    if ((d->n + 1) * 4 > d->scap * 3) {
        size_t ncap = d->scap ? d->scap * 2 : 256;
        uint32_t *ns = calloc(ncap, sizeof *ns);
        if (!ns) {
            free(key);
            return -ENOMEM;
        }
        for (size_t i = 0; i < d->n; i++) {
            size_t j = diff_hash(d->e[i].key) & (ncap - 1);
            while (ns[j])
                j = (j + 1) & (ncap - 1);
            ns[j] = (uint32_t)i + 1;
        }
        free(d->slot);
        d->slot = ns;
        d->scap = ncap;
    }
    size_t j = diff_hash(key) & (d->scap - 1);
    while (d->slot[j] && strcmp(d->e[d->slot[j] - 1].key, key) != 0)
        j = (j + 1) & (d->scap - 1);
    diff_ent_t *e;
    if (d->slot[j]) {
        free(key);
        e = &d->e[d->slot[j] - 1];
    } else {
        if (d->n == d->cap) {
            size_t ncap = d->cap ? d->cap * 2 : 64;
            diff_ent_t *ne = realloc(d->e, ncap * sizeof *ne);
            if (!ne) {
                free(key);
                return -ENOMEM;
            }
            d->e = ne;
            d->cap = ncap;
        }
        e = &d->e[d->n];
        memset(e, 0, sizeof *e);
        e->key = key;
        d->slot[j] = (uint32_t)++d->n;
    }
    if (!e->rep || (is_new && e->src != p)) {
        e->rep = s;
        e->src = p;
    }
    double *v = is_new ? e->vn : e->vb;
    for (int m = 0; m < HT_M_COUNT; m++)
        v[m] += s->v[m];
    return 0;
}

static void
diff_set_free(diff_set_t *d)
{
    for (size_t i = 0; i < d->n; i++)
        free(d->e[i].key);
    free(d->e);
    free(d->slot);
}

static int
diff_match(const ht_profile_t *base, const ht_profile_t *cur, diff_set_t *d)
{
    memset(d, 0, sizeof *d);
    for (uint32_t i = 0; i < base->nstacks; i++)
        if (diff_add(d, base, &base->stacks[i], 0) < 0)
            return -ENOMEM;
    for (uint32_t i = 0; i < cur->nstacks; i++)
        if (diff_add(d, cur, &cur->stacks[i], 1) < 0)
            return -ENOMEM;
    return 0;
}

static int
diff_changed(const diff_ent_t *e)
{
    for (int m = 0; m < HT_M_COUNT; m++)
        if (e->vn[m] != e->vb[m])
            return 1;
    return 0;
}

int
ht_diff_profile(const ht_profile_t *base, const ht_profile_t *cur, ht_profile_t **out)
{
    diff_set_t d;
    memset(&d, 0, sizeof d);
    ht_pb_t *b = ht_pb_create();
    uint32_t *mapb = calloc(base->nmaps + 1, sizeof *mapb);
    uint32_t *mapn = calloc(cur->nmaps + 1, sizeof *mapn);
    uint32_t *locs = NULL;
    int rc = -ENOMEM;
    if (!b || !mapb || !mapn || diff_match(base, cur, &d) < 0)
        goto fail;
    for (size_t i = 0; i < d.n; i++) {
        const diff_ent_t *e = &d.e[i];
        if (!diff_changed(e))
            continue;
        const ht_profile_t *p = e->src;
        uint32_t *mapx = p == cur ? mapn : mapb;
        uint32_t *nl = realloc(locs, (e->rep->nlocs + 1) * sizeof *nl);
        if (!nl)
            goto fail;
        locs = nl;
        uint32_t n = 0;
        for (uint32_t k = 0; k < e->rep->nlocs; k++) {
            if (e->rep->locs[k] >= p->nlocs)
                continue;
            const ht_location_t *l = &p->locs[e->rep->locs[k]];
            uint32_t map = 0;
            if (l->mapping && l->mapping <= p->nmaps) {
                if (!mapx[l->mapping]) {
                    const ht_mapping_t *m = &p->maps[l->mapping - 1];
                    mapx[l->mapping] = ht_pb_map(b, m->start, m->limit, m->offset, m->path,
                                                 m->build_id, m->symbolized);
                    if (!mapx[l->mapping])
                        goto fail;
                }
                map = mapx[l->mapping];
            }
            if (ht_pb_loc(b, l->address, map, l->lines, l->nlines, &locs[n++]) < 0)
                goto fail;
        }
        uint32_t si;
        if (ht_pb_stack(b, locs, n, 0, &si) < 0)
            goto fail;
        double *v = ht_pb_stack_v(b, si);
        for (int m = 0; m < HT_M_COUNT; m++)
            v[m] += e->vn[m] - e->vb[m];
    }
    ht_profile_t *hp = ht_pb_profile(b);
    hp->sampled = base->sampled || cur->sampled;
    hp->sample_rate = base->sample_rate > cur->sample_rate ? base->sample_rate : cur->sample_rate;
    hp->pid = cur->pid;
    if (!(hp->exe = ht_pb_str(b, cur->exe ? cur->exe : "")) ||
        !(hp->argv = ht_pb_str(b, cur->argv ? cur->argv : "")))
        goto fail;
    hp->start_ns = base->end_ns;
    hp->end_ns = cur->end_ns;
    hp->start_realtime_ns = base->start_realtime_ns;
#define DIFF_U(f) hp->f = cur->f >= base->f ? cur->f - base->f : 0
    DIFF_U(exact_allocs);
    DIFF_U(exact_alloc_bytes);
    DIFF_U(exact_frees);
    DIFF_U(exact_free_bytes);
#undef DIFF_U
    hp->peak_bytes = cur->peak_bytes - base->peak_bytes;
    hp->peak_ns = cur->peak_ns;
    hp->exited = cur->exited;
    hp->exit_how = cur->exit_how;
    hp->counts_cut = cur->counts_cut || base->counts_cut;
    hp->exit_code = cur->exit_code;
    hp->rss = cur->rss;
    hp->heap_free = cur->heap_free;
    hp->snapshot = -1;
    diff_set_free(&d);
    free(locs);
    free(mapb);
    free(mapn);
    return ht_pb_finish(b, 1, out);
fail:
    diff_set_free(&d);
    ht_pb_destroy(b);
    free(locs);
    free(mapb);
    free(mapn);
    return rc;
}

/* ---- the report ---- */

static __thread const diff_set_t *diff_sort_set;
static __thread ht_metric_t diff_sort_m;

static int
diff_cmp(const void *a, const void *b)
{
    const diff_ent_t *x = &diff_sort_set->e[*(const uint32_t *)a];
    const diff_ent_t *y = &diff_sort_set->e[*(const uint32_t *)b];
    double dx = fabs(x->vn[diff_sort_m] - x->vb[diff_sort_m]);
    double dy = fabs(y->vn[diff_sort_m] - y->vb[diff_sort_m]);
    if (dx != dy)
        return dx > dy ? -1 : 1;
    return strcmp(x->key, y->key); // deterministic order for ties
}

static double
diff_stderr(const ht_profile_t *base, const ht_profile_t *cur, ht_metric_t m, double vb,
            double vn)
{
    if (!(m & 1)) // objects metrics: the documented error bar is for bytes
        return 0;
    double sb = ht_prof_stderr_bytes(base, fabs(vb)), sn = ht_prof_stderr_bytes(cur, fabs(vn));
    return sqrt(sb * sb + sn * sn);
}

static const char *
diff_val(char *buf, size_t n, ht_metric_t m, double v, int sign)
{
    char t[48];
    if (m & 1)
        ht_report_size(t, sizeof t, v);
    else
        ht_report_count(t, sizeof t, v);
    snprintf(buf, n, "%s%s", sign && v > 0 ? "+" : "", t);
    return buf;
}

static long long
diff_int(double v)
{
    if (!(v == v) || v > 9.2e18 || v < -9.2e18)
        return 0;
    return llround(v);
}

int
ht_diff_write(FILE *f, const ht_profile_t *base, const char *base_spec, const ht_profile_t *cur,
              const char *cur_spec, const ht_diff_opts_t *o)
{
    int top = o->top > 0 ? o->top : 10;
    ht_metric_t m = o->metric;
    ht_metric_t comp = (ht_metric_t)(m ^ 1); // bytes <-> objects of the same figure
    diff_set_t d;
    if (diff_match(base, cur, &d) < 0) {
        diff_set_free(&d);
        return -ENOMEM;
    }
    uint32_t *grow = malloc((d.n + 1) * sizeof *grow), *shrink = malloc((d.n + 1) * sizeof *shrink);
    if (!grow || !shrink) {
        free(grow);
        free(shrink);
        diff_set_free(&d);
        return -ENOMEM;
    }
    uint32_t ng = 0, ns = 0;
    double tb = 0, tn = 0;
    for (size_t i = 0; i < d.n; i++) {
        double delta = d.e[i].vn[m] - d.e[i].vb[m];
        tb += d.e[i].vb[m];
        tn += d.e[i].vn[m];
        // Sums of weights differ in the last bits when nothing changed.
        if (fabs(delta) < 1e-6 * (fabs(d.e[i].vb[m]) + 1))
            continue;
        if (delta > 0)
            grow[ng++] = (uint32_t)i;
        else
            shrink[ns++] = (uint32_t)i;
    }
    diff_sort_set = &d;
    diff_sort_m = m;
    qsort(grow, ng, sizeof *grow, diff_cmp);
    qsort(shrink, ns, sizeof *shrink, diff_cmp);
    // Growth per hour only means something for two moments of one process.
    double secs = cur->end_ns > base->end_ns ? (double)(cur->end_ns - base->end_ns) / 1e9 : 0;
    int rate_ok = secs > 0 && cur->pid == base->pid;
    double total_se = diff_stderr(base, cur, m, tb, tn);
    char a[64], b[64], c[64], e[160];

    if (o->json) {
        fputs("{\"command\":\"diff\",\"metric\":", f);
        ht_report_json_str(f, ht_prof_metric_name(m));
        fputs(",\"base\":{\"spec\":", f);
        ht_report_json_str(f, base_spec);
        fprintf(f, ",\"end_ns\":%" PRIu64 ",\"value\":%lld},\"new\":{\"spec\":", base->end_ns,
                diff_int(tb));
        ht_report_json_str(f, cur_spec);
        fprintf(f, ",\"end_ns\":%" PRIu64 ",\"value\":%lld}", cur->end_ns, diff_int(tn));
        fprintf(f,
                ",\"sampled\":%s,\"same_process\":%s,\"seconds_apart\":%.6f,\"delta\":%lld,"
                "\"delta_stderr\":%lld",
                base->sampled || cur->sampled ? "true" : "false",
                cur->pid == base->pid ? "true" : "false", secs, diff_int(tn - tb),
                diff_int(total_se));
        if (rate_ok)
            fprintf(f, ",\"per_hour\":%lld", diff_int((tn - tb) * 3600 / secs));
        for (int side = 0; side < 2; side++) {
            uint32_t *idx = side ? shrink : grow, n = side ? ns : ng;
            fprintf(f, ",\"%s\":[", side ? "shrinking" : "growing");
            for (uint32_t i = 0; i < n && i < (uint32_t)top; i++) {
                const diff_ent_t *x = &d.e[idx[i]];
                double dv = x->vn[m] - x->vb[m];
                fprintf(f,
                        "%s{\"base\":%lld,\"new\":%lld,\"delta\":%lld,\"delta_stderr\":%lld,"
                        "\"%s_delta\":%lld",
                        i ? "," : "", diff_int(x->vb[m]), diff_int(x->vn[m]), diff_int(dv),
                        diff_int(diff_stderr(base, cur, m, x->vb[m], x->vn[m])),
                        ht_prof_metric_name(comp), diff_int(x->vn[comp] - x->vb[comp]));
                if (rate_ok)
                    fprintf(f, ",\"per_hour\":%lld", diff_int(dv * 3600 / secs));
                fputs(",\"site\":", f);
                ht_report_json_str(f, ht_report_site(e, sizeof e, x->src, x->rep));
                fputs(",\"stack\":", f);
                ht_report_stack_json(f, x->src, x->rep);
                fputc('}', f);
            }
            fputc(']', f);
        }
        fputs("}\n", f);
    } else {
        fprintf(f, "heaptrace diff (%s): %s -> %s\n", ht_prof_metric_name(m), base_spec, cur_spec);
        // Two runs (before and after a change, say) are a fair thing to
        // compare, but their distance in time means nothing: say what they are.
        if (cur->pid != base->pid)
            fprintf(f, "  two runs  pid %" PRIu64 " (%s) -> pid %" PRIu64 " (%s)\n", base->pid,
                    base->exe && base->exe[0] ? base->exe : "unknown", cur->pid,
                    cur->exe && cur->exe[0] ? cur->exe : "unknown");
        else if (secs > 0)
            fprintf(f, "  %.2f s apart\n", secs);
        if (base->sampled || cur->sampled)
            fprintf(f, "  sampled: figures are estimates ± one standard error of the "
                       "difference\n");
        fprintf(f, "  total     %s -> %s: %s", diff_val(a, sizeof a, m, tb, 0),
                diff_val(b, sizeof b, m, tn, 0), diff_val(c, sizeof c, m, tn - tb, 1));
        // Identical figures are the same samples: their difference is
        // exactly 0, not 0 give or take the independent-samples error.
        if (total_se > 0 && tn != tb)
            fprintf(f, " ± %s", ht_report_size(a, sizeof a, total_se));
        if (rate_ok)
            fprintf(f, " (%s per hour)", diff_val(a, sizeof a, m, (tn - tb) * 3600 / secs, 1));
        fputc('\n', f);
        if (ng == 0 && ns == 0) {
            fputs("no change\n", f);
        }
        for (int side = 0; side < 2; side++) {
            uint32_t *idx = side ? shrink : grow, n = side ? ns : ng;
            if (!n)
                continue;
            fprintf(f, "\n%s: %u stack%s%s\n", side ? "shrinking" : "growing", n,
                    n == 1 ? "" : "s", n > (uint32_t)top ? " (largest shown)" : "");
            for (uint32_t i = 0; i < n && i < (uint32_t)top; i++) {
                const diff_ent_t *x = &d.e[idx[i]];
                double dv = x->vn[m] - x->vb[m];
                double se = diff_stderr(base, cur, m, x->vb[m], x->vn[m]);
                fprintf(f, "\n%2u. %s", i + 1, diff_val(a, sizeof a, m, dv, 1));
                if (se > 0)
                    fprintf(f, " ± %s", ht_report_size(b, sizeof b, se));
                fprintf(f, "  %s %s", diff_val(b, sizeof b, comp, x->vn[comp] - x->vb[comp], 1),
                        comp & 1 ? "" : "objects");
                if (rate_ok)
                    fprintf(f, "  %s/hour", diff_val(c, sizeof c, m, dv * 3600 / secs, 1));
                fprintf(f, "  at %s\n", ht_report_site(e, sizeof e, x->src, x->rep));
                fprintf(f, "    %s -> %s\n", diff_val(a, sizeof a, m, x->vb[m], 0),
                        diff_val(b, sizeof b, m, x->vn[m], 0));
                ht_report_stack(f, x->src, x->rep, 6, 0);
            }
            if (n > (uint32_t)top)
                fprintf(f, "\n... %u more %s stacks (--top N shows more)\n", n - (uint32_t)top,
                        side ? "shrinking" : "growing");
        }
    }
    free(grow);
    free(shrink);
    diff_set_free(&d);
    return ferror(f) ? -EIO : 0;
}
