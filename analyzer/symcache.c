/*
 * analyzer/symcache.c -- DWARF answers kept on disk (contract: symcache.h).
 *
 * File: a 48-byte header (magic "HTSYMC1\0", then u64 st_dev, st_ino,
 * st_size, mtime in ns of the DWARF file, and a reserved u64), then
 * entries until the end: u64 vaddr, u8 n, then n lines of u32 line, u16
 * function length, the function, u16 file length (0xffff: no file), the
 * file. Host byte order: the cache never leaves the machine.
 */
#include "analyzer/symcache.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SC_MAGIC "HTSYMC1"
#define SC_HDR 48
#define SC_MAX_FILE (256u << 20) /* a bigger cache file is not ours */
#define SC_NOFILE 0xffffu

typedef struct sc_ent_s {
    uint64_t vaddr;
    uint32_t off; /* into lines */
    uint32_t n;
} sc_ent_t;

typedef struct sc_chunk_s {
    struct sc_chunk_s *next;
    size_t used, cap;
    char data[];
} sc_chunk_t;

struct ht_symcache_s {
    char *path;
    uint64_t id[4]; /* dev, ino, size, mtime of the DWARF file */
    sc_ent_t *ent;
    size_t nent, cap_ent, nloaded;
    uint32_t *slot; /* entry index + 1; power of two */
    size_t cap_slot;
    ht_symcache_line_t *lines;
    size_t nlines, cap_lines;
    sc_chunk_t *chunks;
};

static const char *
sc_strdup(ht_symcache_t *c, const char *s, size_t n)
{
    sc_chunk_t *k = c->chunks;
    if (!k || k->cap - k->used < n + 1) {
        size_t cap = n + 1 > 65536 ? n + 1 : 65536;
        k = malloc(sizeof *k + cap);
        if (!k)
            return NULL;
        k->used = 0;
        k->cap = cap;
        k->next = c->chunks;
        c->chunks = k;
    }
    char *d = k->data + k->used;
    memcpy(d, s, n);
    d[n] = 0;
    k->used += n + 1;
    return d;
}

static size_t
sc_home(uint64_t vaddr, size_t mask)
{
    uint64_t h = vaddr * 0x9e3779b97f4a7c15ull;
    return (size_t)(h ^ (h >> 32)) & mask;
}

static int
sc_index(ht_symcache_t *c, uint32_t e)
{
    if ((c->nent + 1) * 2 > c->cap_slot) {
        size_t cap = c->cap_slot ? c->cap_slot * 2 : 1024;
        uint32_t *s = calloc(cap, sizeof *s);
        if (!s)
            return -ENOMEM;
        for (size_t i = 0; i < c->nent; i++) {
            if (i == e)
                continue;
            size_t j = sc_home(c->ent[i].vaddr, cap - 1);
            while (s[j])
                j = (j + 1) & (cap - 1);
            s[j] = (uint32_t)i + 1;
        }
        free(c->slot);
        c->slot = s;
        c->cap_slot = cap;
    }
    size_t j = sc_home(c->ent[e].vaddr, c->cap_slot - 1);
    while (c->slot[j])
        j = (j + 1) & (c->cap_slot - 1);
    c->slot[j] = e + 1;
    return 0;
}

static const sc_ent_t *
sc_find(const ht_symcache_t *c, uint64_t vaddr)
{
    if (!c->cap_slot)
        return NULL;
    for (size_t j = sc_home(vaddr, c->cap_slot - 1); c->slot[j]; j = (j + 1) & (c->cap_slot - 1))
        if (c->ent[c->slot[j] - 1].vaddr == vaddr)
            return &c->ent[c->slot[j] - 1];
    return NULL;
}

/* Append an entry whose lines are already interned. 0 or -ENOMEM. */
static int
sc_add(ht_symcache_t *c, uint64_t vaddr, const ht_symcache_line_t *lines, int n)
{
    if (c->nent >= UINT32_MAX - 1 || c->nlines + (size_t)n >= UINT32_MAX)
        return -ENOMEM;
    if (c->nent == c->cap_ent) {
        size_t cap = c->cap_ent ? c->cap_ent * 2 : 256;
        sc_ent_t *e = realloc(c->ent, cap * sizeof *e);
        if (!e)
            return -ENOMEM;
        c->ent = e;
        c->cap_ent = cap;
    }
    if (c->nlines + (size_t)n > c->cap_lines) {
        size_t cap = c->cap_lines ? c->cap_lines * 2 : 1024;
        while (cap < c->nlines + (size_t)n)
            cap *= 2;
        ht_symcache_line_t *l = realloc(c->lines, cap * sizeof *l);
        if (!l)
            return -ENOMEM;
        c->lines = l;
        c->cap_lines = cap;
    }
    memcpy(c->lines + c->nlines, lines, (size_t)n * sizeof *lines);
    c->ent[c->nent] = (sc_ent_t){vaddr, (uint32_t)c->nlines, (uint32_t)n};
    c->nlines += (size_t)n;
    if (sc_index(c, (uint32_t)c->nent) < 0)
        return -ENOMEM;
    c->nent++;
    return 0;
}

/* Parse a cache file's entries; false when it is not a valid one for
 * this DWARF file (it is then ignored, and rewritten at close). */
static bool
sc_parse(ht_symcache_t *c, const uint8_t *p, size_t len)
{
    uint64_t hid[4];
    if (len < SC_HDR || memcmp(p, SC_MAGIC, 8) != 0)
        return false;
    memcpy(hid, p + 8, sizeof hid);
    if (memcmp(hid, c->id, sizeof hid) != 0)
        return false;
    size_t o = SC_HDR;
    while (o < len) {
        uint64_t vaddr;
        if (len - o < 9)
            return false;
        memcpy(&vaddr, p + o, 8);
        int n = p[o + 8];
        o += 9;
        if (n < 1)
            return false;
        ht_symcache_line_t l[255];
        for (int i = 0; i < n; i++) {
            uint32_t line;
            uint16_t fl, pl;
            if (len - o < 6)
                return false;
            memcpy(&line, p + o, 4);
            memcpy(&fl, p + o + 4, 2);
            o += 6;
            if (len - o < (size_t)fl + 2)
                return false;
            l[i].function = sc_strdup(c, (const char *)p + o, fl);
            o += fl;
            memcpy(&pl, p + o, 2);
            o += 2;
            l[i].file = NULL;
            if (pl != SC_NOFILE) {
                if (len - o < pl)
                    return false;
                l[i].file = sc_strdup(c, (const char *)p + o, pl);
                o += pl;
            }
            l[i].line = line;
            if (!l[i].function || (pl != SC_NOFILE && !l[i].file))
                return false;
        }
        if (!sc_find(c, vaddr) && sc_add(c, vaddr, l, n) < 0)
            return false;
    }
    return true;
}

static char *
sc_dir(void)
{
    const char *d = getenv("HEAPTRACE_CACHE_DIR");
    if (d && (!strcmp(d, "off") || !*d))
        return NULL;
    char buf[4096];
    if (d) {
        snprintf(buf, sizeof buf, "%s", d);
    } else if ((d = getenv("XDG_CACHE_HOME")) && *d == '/') {
        snprintf(buf, sizeof buf, "%s/heaptrace", d);
    } else if ((d = getenv("HOME")) && *d == '/') {
        snprintf(buf, sizeof buf, "%s/.cache/heaptrace", d);
    } else {
        return NULL;
    }
    return strdup(buf);
}

/* mkdir -p for the cache directory (mode 0700: symbol names of the
 * user's programs are nobody else's business). */
static int
sc_mkdirs(char *dir)
{
    for (char *q = dir + 1; *q; q++) {
        if (*q != '/')
            continue;
        *q = 0;
        int rc = mkdir(dir, 0700);
        *q = '/';
        if (rc < 0 && errno != EEXIST)
            return -errno;
    }
    return mkdir(dir, 0700) < 0 && errno != EEXIST ? -errno : 0;
}

ht_symcache_t *
ht_symcache_open(const uint8_t *build_id, size_t build_id_len, const char *dw_path)
{
    struct stat st;
    if (!build_id_len || build_id_len > 64 || !dw_path || stat(dw_path, &st) < 0)
        return NULL;
    char *dir = sc_dir();
    if (!dir)
        return NULL;
    ht_symcache_t *c = calloc(1, sizeof *c);
    size_t plen = strlen(dir) + 2 * build_id_len + 8;
    if (c)
        c->path = malloc(plen);
    if (!c || !c->path) {
        free(dir);
        free(c);
        return NULL;
    }
    int n = snprintf(c->path, plen, "%s/", dir);
    for (size_t i = 0; i < build_id_len; i++)
        n += snprintf(c->path + n, plen - (size_t)n, "%02x", build_id[i]);
    snprintf(c->path + n, plen - (size_t)n, ".sym");
    free(dir);
    c->id[0] = (uint64_t)st.st_dev;
    c->id[1] = (uint64_t)st.st_ino;
    c->id[2] = (uint64_t)st.st_size;
    c->id[3] = (uint64_t)st.st_mtim.tv_sec * 1000000000ull + (uint64_t)st.st_mtim.tv_nsec;

    int fd = open(c->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat cs;
    if (fd >= 0 && fstat(fd, &cs) == 0 && S_ISREG(cs.st_mode) && cs.st_size >= SC_HDR &&
        (uint64_t)cs.st_size <= SC_MAX_FILE) {
        uint8_t *p = malloc((size_t)cs.st_size);
        if (p && read(fd, p, (size_t)cs.st_size) == cs.st_size && !sc_parse(c, p, (size_t)cs.st_size)) {
            // Not valid for this file: start over (close rewrites it).
            c->nent = c->nlines = 0;
            if (c->slot)
                memset(c->slot, 0, c->cap_slot * sizeof *c->slot);
        }
        free(p);
    }
    if (fd >= 0)
        close(fd);
    c->nloaded = c->nent;
    return c;
}

int
ht_symcache_nonempty(const ht_symcache_t *c)
{
    return c && c->nent > 0;
}

int
ht_symcache_get(ht_symcache_t *c, uint64_t vaddr, const ht_symcache_line_t **lines)
{
    const sc_ent_t *e = c ? sc_find(c, vaddr) : NULL;
    if (!e)
        return 0;
    *lines = c->lines + e->off;
    return (int)e->n;
}

void
ht_symcache_put(ht_symcache_t *c, uint64_t vaddr, const ht_symcache_line_t *lines, int n)
{
    if (!c || n < 1 || n > 255 || sc_find(c, vaddr))
        return;
    ht_symcache_line_t l[255];
    for (int i = 0; i < n; i++) {
        size_t fl = strlen(lines[i].function), pl = lines[i].file ? strlen(lines[i].file) : 0;
        if (fl >= SC_NOFILE || pl >= SC_NOFILE)
            return; // not worth keeping
        l[i].function = sc_strdup(c, lines[i].function, fl);
        l[i].file = lines[i].file ? sc_strdup(c, lines[i].file, pl) : NULL;
        l[i].line = lines[i].line;
        if (!l[i].function || (lines[i].file && !l[i].file))
            return;
    }
    (void)sc_add(c, vaddr, l, n);
}

static int
sc_write(const ht_symcache_t *c, FILE *f)
{
    uint8_t h[SC_HDR] = {0};
    memcpy(h, SC_MAGIC, 8);
    memcpy(h + 8, c->id, sizeof c->id);
    if (fwrite(h, 1, SC_HDR, f) != SC_HDR)
        return -EIO;
    for (size_t i = 0; i < c->nent; i++) {
        const sc_ent_t *e = &c->ent[i];
        uint8_t n = (uint8_t)e->n;
        if (fwrite(&e->vaddr, 8, 1, f) != 1 || fwrite(&n, 1, 1, f) != 1)
            return -EIO;
        for (uint32_t k = 0; k < e->n; k++) {
            const ht_symcache_line_t *l = &c->lines[e->off + k];
            uint16_t fl = (uint16_t)strlen(l->function);
            uint16_t pl = l->file ? (uint16_t)strlen(l->file) : SC_NOFILE;
            if (fwrite(&l->line, 4, 1, f) != 1 || fwrite(&fl, 2, 1, f) != 1 ||
                fwrite(l->function, 1, fl, f) != fl || fwrite(&pl, 2, 1, f) != 1 ||
                (l->file && fwrite(l->file, 1, pl, f) != pl))
                return -EIO;
        }
    }
    return 0;
}

void
ht_symcache_close(ht_symcache_t *c)
{
    if (!c)
        return;
    if (c->nent > c->nloaded) {
        // mkdir -p, write a temporary file, rename it over the old one. A
        // cache that cannot be written is no error: the next run recomputes.
        char *dir = strdup(c->path);
        char *slash = dir ? strrchr(dir, '/') : NULL;
        if (slash && slash != dir) {
            *slash = 0;
            (void)sc_mkdirs(dir);
        }
        free(dir);
        size_t tl = strlen(c->path) + 32;
        char *tmp = malloc(tl);
        if (tmp) {
            snprintf(tmp, tl, "%s.%d.tmp", c->path, (int)getpid());
            int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
            FILE *f = fd >= 0 ? fdopen(fd, "wb") : NULL;
            if (fd >= 0 && !f)
                close(fd);
            if (f) {
                int rc = sc_write(c, f);
                if (fclose(f) != 0)
                    rc = -EIO;
                if (rc < 0 || rename(tmp, c->path) < 0)
                    unlink(tmp);
            }
            free(tmp);
        }
    }
    while (c->chunks) {
        sc_chunk_t *k = c->chunks;
        c->chunks = k->next;
        free(k);
    }
    free(c->ent);
    free(c->slot);
    free(c->lines);
    free(c->path);
    free(c);
}
