/*
 * bench/realloc_parse.c -- workload (c): the realloc-growth pattern of a
 * parser. A synthetic input of "records" (key=value lines separated by
 * blank lines) is generated in memory, then parsed: each record gets a
 * field array grown by doubling, each value a string buffer grown by
 * fixed chunks, and a line buffer that doubles; records are kept in a
 * list grown by doubling and released in batches.
 * Usage: realloc_parse [RECORDS]   (default 150000)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct field_s {
    char *key;
    char *val;
    size_t vlen, vcap;
} field_t;

typedef struct record_s {
    field_t *fields;
    size_t n, cap;
} record_t;

static void *
xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n);
    if (!q)
        abort();
    return q;
}

static uint64_t rp_seed = 88172645463325252ULL;

static uint64_t
rp_rand(void)
{
    rp_seed ^= rp_seed << 13;
    rp_seed ^= rp_seed >> 7;
    rp_seed ^= rp_seed << 17;
    return rp_seed;
}

// The input: RECORDS records of 2..12 fields, values 1..120 characters.
static char *
rp_input_make(long records, size_t *len)
{
    size_t cap = 1 << 16, n = 0;
    char *s = xrealloc(NULL, cap);
    for (long r = 0; r < records; r++) {
        int nf = 2 + (int)(rp_rand() % 11);
        for (int f = 0; f < nf; f++) {
            size_t vl = 1 + rp_rand() % 120;
            if (n + vl + 32 > cap) {
                cap *= 2;
                s = xrealloc(s, cap);
            }
            n += (size_t)sprintf(s + n, "k%d=", f);
            for (size_t i = 0; i < vl; i++)
                s[n++] = (char)('a' + (rp_rand() % 26));
            s[n++] = '\n';
        }
        s[n++] = '\n';
    }
    s[n] = 0;
    *len = n;
    return s;
}

static void
rp_val_append(field_t *f, const char *src, size_t len)
{
    // grow by 16-byte chunks: the worst case for an allocator, and common
    while (f->vlen + len + 1 > f->vcap) {
        f->vcap += 16;
        f->val = xrealloc(f->val, f->vcap);
    }
    memcpy(f->val + f->vlen, src, len);
    f->vlen += len;
    f->val[f->vlen] = 0;
}

static void
rp_record_free(record_t *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->fields[i].key);
        free(r->fields[i].val);
    }
    free(r->fields);
    free(r);
}

int
main(int argc, char **argv)
{
    long records = argc > 1 ? atol(argv[1]) : 150000;
    size_t len;
    char *in = rp_input_make(records, &len);

    record_t **list = NULL;
    size_t nlist = 0, caplist = 0, kept = 0;
    record_t *cur = NULL;
    char *line = NULL;
    size_t linecap = 0;
    unsigned long sum = 0;
    const char *p = in, *end = in + len;
    while (p < end) {
        // copy one line into a doubling line buffer, as a line reader does
        size_t ll = 0;
        while (p + ll < end && p[ll] != '\n')
            ll++;
        if (ll + 1 > linecap) {
            linecap = linecap ? linecap * 2 : 8;
            while (linecap < ll + 1)
                linecap *= 2;
            line = xrealloc(line, linecap);
        }
        memcpy(line, p, ll);
        line[ll] = 0;
        p += ll + 1;
        if (ll == 0) {  // end of record
            if (!cur)
                continue;
            if (nlist == caplist) {
                caplist = caplist ? caplist * 2 : 16;
                list = xrealloc(list, caplist * sizeof *list);
            }
            list[nlist++] = cur;
            cur = NULL;
            if (nlist == 4096) {  // a batch is "processed" and released
                for (size_t i = 0; i < nlist; i++) {
                    sum += list[i]->n;
                    rp_record_free(list[i]);
                }
                kept += nlist;
                nlist = 0;
            }
            continue;
        }
        if (!cur)
            cur = calloc(1, sizeof *cur);
        if (cur->n == cur->cap) {
            cur->cap = cur->cap ? cur->cap * 2 : 1;
            cur->fields = xrealloc(cur->fields, cur->cap * sizeof *cur->fields);
        }
        field_t *f = &cur->fields[cur->n++];
        char *eq = strchr(line, '=');
        size_t kl = eq ? (size_t)(eq - line) : ll;
        f->key = xrealloc(NULL, kl + 1);
        memcpy(f->key, line, kl);
        f->key[kl] = 0;
        f->val = NULL;
        f->vlen = f->vcap = 0;
        // append the value in 24-byte pieces, as a tokenizer would
        for (const char *v = eq ? eq + 1 : line + ll; *v;) {
            size_t piece = strnlen(v, 24);
            rp_val_append(f, v, piece);
            v += piece;
        }
        if (!f->val)
            rp_val_append(f, "", 0);
    }
    for (size_t i = 0; i < nlist; i++) {
        sum += list[i]->n;
        rp_record_free(list[i]);
    }
    kept += nlist;
    free(list);
    free(line);
    free(in);
    printf("realloc_parse: %zu records, %lu fields\n", kept, sum);
    return 0;
}
