/*
 * analyzer/symbols.c -- the symbolizer: modules, debug-file lookup,
 * build-id checks, demangling and the (module, vaddr) cache. ELF reading
 * is in elf.c, DWARF in dwarf.c. See symbols.h for the contract.
 */
#include "analyzer/symbols.h"
#include "analyzer/symcache.h"

#include "analyzer/dwarf.h"
#include "analyzer/elf.h"

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* From libstdc++ (the Itanium C++ ABI); declared here so this file stays
 * C. Returns a malloc()ed string or NULL. */
/* The C++ runtime's demangler, loaded on the first mangled name: linking
 * libstdc++ cost every heaptrace command 1.2 ms of start-up (its static
 * initializers), `record` of a short program included, for a function
 * only symbolization of C++ programs needs. NULL when it is not there:
 * names then stay mangled. */
typedef char *(*sym_demangle_fn)(const char *mangled, char *buf, size_t *len, int *status);

static sym_demangle_fn
sym_demangler(void)
{
    static int tried;
    static sym_demangle_fn fn;
    if (!tried) {
        tried = 1;
        void *h = dlopen("libstdc++.so.6", RTLD_LAZY | RTLD_LOCAL);
        if (h)
            *(void **)&fn = dlsym(h, "__cxa_demangle");
    }
    return fn;
}

/* Longest name handed to the demangler: hostile symbol names can make it
 * work hard, and nothing real comes close. */
#define SYM_MAX_DEMANGLE 8192

/* Most DWARF worker processes kept running at once (see dwarf.h); the
 * least recently used is suspended beyond that. */
#define SYM_MAX_WORKERS 8

/* ---- string interning ---- */

typedef struct sym_chunk_s {
    struct sym_chunk_s *next;
    size_t used, cap;
    char data[];
} sym_chunk_t;

typedef struct sym_strs_s {
    sym_chunk_t *chunks;
    const char **slots; /* open addressing, NULL = empty */
    size_t cap, n;
} sym_strs_t;

static uint64_t
sym_hash_bytes(const void *p, size_t n, uint64_t h)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ c[i]) * 0x100000001b3ull;
    return h;
}

static char *
sym_strs_alloc(sym_strs_t *t, size_t n)
{
    sym_chunk_t *c = t->chunks;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > 65536 - sizeof *c ? n : 65536 - sizeof *c;
        c = malloc(sizeof *c + cap);
        if (!c)
            return NULL;
        c->cap = cap;
        c->used = 0;
        if (t->chunks && n > 4096) { // keep the current chunk for small strings
            c->next = t->chunks->next;
            t->chunks->next = c;
        } else {
            c->next = t->chunks;
            t->chunks = c;
        }
    }
    char *p = c->data + c->used;
    c->used += n;
    return p;
}

/* The one copy of string s[0..n) (NUL added); NULL when out of memory. */
static const char *
sym_intern_n(sym_strs_t *t, const char *s, size_t n)
{
    if ((t->n + 1) * 2 > t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 1024;
        const char **slots = calloc(cap, sizeof *slots);
        if (!slots)
            return NULL;
        for (size_t i = 0; i < t->cap; i++) {
            if (!t->slots[i])
                continue;
            size_t j =
                sym_hash_bytes(t->slots[i], strlen(t->slots[i]), 0xcbf29ce484222325ull) & (cap - 1);
            while (slots[j])
                j = (j + 1) & (cap - 1);
            slots[j] = t->slots[i];
        }
        free(t->slots);
        t->slots = slots;
        t->cap = cap;
    }
    size_t mask = t->cap - 1;
    size_t j = sym_hash_bytes(s, n, 0xcbf29ce484222325ull) & mask;
    for (; t->slots[j]; j = (j + 1) & mask)
        if (strncmp(t->slots[j], s, n) == 0 && t->slots[j][n] == '\0')
            return t->slots[j];
    char *p = sym_strs_alloc(t, n + 1);
    if (!p)
        return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    t->slots[j] = p;
    t->n++;
    return p;
}

static const char *
sym_intern(sym_strs_t *t, const char *s)
{
    return s ? sym_intern_n(t, s, strlen(s)) : NULL;
}

static void
sym_strs_free(sym_strs_t *t)
{
    for (sym_chunk_t *c = t->chunks, *next; c; c = next) {
        next = c->next;
        free(c);
    }
    free(t->slots);
    memset(t, 0, sizeof *t);
}

/* ---- a map (k1, k2) -> v ---- */

typedef struct sym_slot_s {
    uint64_t k1, k2, v;
    int used;
} sym_slot_t;

typedef struct sym_map_s {
    sym_slot_t *slots;
    size_t cap, n;
} sym_map_t;

static size_t
sym_map_idx(uint64_t k1, uint64_t k2, size_t mask)
{
    uint64_t h = (k1 * 0x9E3779B97F4A7C15ull) ^ (k2 + 0x632BE59BD9B4E019ull + (k1 << 6));
    h ^= h >> 29;
    h *= 0xBF58476D1CE4E5B9ull;
    h ^= h >> 32;
    return (size_t)h & mask;
}

static sym_slot_t *
sym_map_get(const sym_map_t *m, uint64_t k1, uint64_t k2)
{
    if (!m->cap)
        return NULL;
    size_t mask = m->cap - 1;
    for (size_t i = sym_map_idx(k1, k2, mask);; i = (i + 1) & mask) {
        if (!m->slots[i].used)
            return NULL;
        if (m->slots[i].k1 == k1 && m->slots[i].k2 == k2)
            return &m->slots[i];
    }
}

static int
sym_map_put(sym_map_t *m, uint64_t k1, uint64_t k2, uint64_t v)
{
    if ((m->n + 1) * 4 > m->cap * 3) {
        size_t cap = m->cap ? m->cap * 2 : 1024;
        sym_slot_t *slots = calloc(cap, sizeof *slots);
        if (!slots)
            return -ENOMEM;
        for (size_t i = 0; i < m->cap; i++) {
            if (!m->slots[i].used)
                continue;
            size_t j = sym_map_idx(m->slots[i].k1, m->slots[i].k2, cap - 1);
            while (slots[j].used)
                j = (j + 1) & (cap - 1);
            slots[j] = m->slots[i];
        }
        free(m->slots);
        m->slots = slots;
        m->cap = cap;
    }
    size_t mask = m->cap - 1;
    size_t i = sym_map_idx(k1, k2, mask);
    while (m->slots[i].used && !(m->slots[i].k1 == k1 && m->slots[i].k2 == k2))
        i = (i + 1) & mask;
    if (!m->slots[i].used)
        m->n++;
    m->slots[i] = (sym_slot_t){k1, k2, v, 1};
    return 0;
}

/* ---- modules ---- */

typedef struct sym_mod_s {
    char *path;
    uint8_t build_id[64];
    size_t build_id_len;
    uint64_t key;     /* hash of path and build-id, to skip most compares */
    const char *base; /* interned basename, for "base+0xADDR" */
    int loaded, ok;
    const char *warning;  /* interned, NULL if none */
    ht_elf_t *main_elf;   /* the binary; NULL if unusable */
    ht_elf_t *dbg_elf;    /* its separate debug file, if found */
    const ht_elf_t *syms; /* whichever of the two has the better table */
    ht_dwarf_t *dw;
    uint64_t dw_used; /* s->tick of the last DWARF lookup */
    ht_symcache_t *sc; /* answers of earlier runs (symcache.h), NULL if none */
} sym_mod_t;

struct ht_sym_s {
    char *debug_root;
    sym_mod_t *mods;
    size_t nmods, mods_cap;
    sym_strs_t strs;
    sym_map_t cache;     /* (handle, vaddr) -> pool offset << 8 | count */
    sym_map_t demangled; /* (raw name pointer, 0) -> interned demangled name */
    ht_sym_line_t *pool;
    size_t npool, pool_cap;
    ht_sym_stats_t stats;
    uint64_t tick;
    size_t prefetched; /* modules whose DWARF worker ht_sym_prefetch started */
};

ht_sym_t *
ht_sym_create(const char *debug_root)
{
    ht_sym_t *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->debug_root = strdup(debug_root && *debug_root ? debug_root : "/usr/lib/debug");
    if (!s->debug_root) {
        free(s);
        return NULL;
    }
    return s;
}

void
ht_sym_destroy(ht_sym_t *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->nmods; i++) {
        sym_mod_t *m = &s->mods[i];
        free(m->path);
        ht_elf_close(m->main_elf);
        ht_elf_close(m->dbg_elf);
        ht_dwarf_close(m->dw);
        ht_symcache_close(m->sc);
    }
    free(s->mods);
    sym_strs_free(&s->strs);
    free(s->cache.slots);
    free(s->demangled.slots);
    free(s->pool);
    free(s->debug_root);
    free(s);
}

int
ht_sym_module(ht_sym_t *s, const char *path, const uint8_t *build_id, size_t build_id_len)
{
    if (!s || !path || build_id_len > sizeof s->mods[0].build_id || (build_id_len && !build_id))
        return -EINVAL;
    uint64_t key = sym_hash_bytes(path, strlen(path), 0xcbf29ce484222325ull);
    key = sym_hash_bytes(build_id, build_id_len, key ^ build_id_len);
    for (size_t i = 0; i < s->nmods; i++) {
        sym_mod_t *m = &s->mods[i];
        if (m->key == key && m->build_id_len == build_id_len && strcmp(m->path, path) == 0 &&
            (build_id_len == 0 || memcmp(m->build_id, build_id, build_id_len) == 0))
            return (int)i;
    }
    if (s->nmods >= INT_MAX)
        return -ENOSPC;
    if (s->nmods == s->mods_cap) {
        size_t cap = s->mods_cap ? s->mods_cap * 2 : 16;
        sym_mod_t *mods = realloc(s->mods, cap * sizeof *mods);
        if (!mods)
            return -ENOMEM;
        s->mods = mods;
        s->mods_cap = cap;
    }
    sym_mod_t *m = &s->mods[s->nmods];
    memset(m, 0, sizeof *m);
    m->path = strdup(path);
    const char *slash = strrchr(path, '/');
    m->base = sym_intern(&s->strs, slash && slash[1] ? slash + 1 : path);
    if (!m->path || !m->base) {
        free(m->path);
        return -ENOMEM;
    }
    if (build_id_len)
        memcpy(m->build_id, build_id, build_id_len);
    m->build_id_len = build_id_len;
    m->key = key;
    return (int)s->nmods++;
}

static void
sym_hex(char *out, size_t outlen, const uint8_t *b, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n && k + 3 <= outlen; i++)
        k += (size_t)snprintf(out + k, outlen - k, "%02x", b[i]);
    out[k < outlen ? k : outlen - 1] = '\0';
}

static void
sym_warn(ht_sym_t *s, sym_mod_t *m, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    m->warning = sym_intern(&s->strs, buf);
}

/* Open CAND as the separate debug file of m and keep it if it really
 * belongs to the binary: same build-id, or (when the binary has none) the
 * CRC its .gnu_debuglink names. */
static int
sym_try_debug(sym_mod_t *m, const char *cand, const uint8_t *bid, size_t bidlen, int check_crc,
              uint32_t crc)
{
    if (strcmp(cand, m->path) == 0)
        return 0;
    ht_elf_t *e = NULL;
    if (ht_elf_open(cand, &e) < 0)
        return 0;
    size_t n = 0;
    const uint8_t *id = ht_elf_build_id(e, &n);
    int match;
    if (bidlen)
        match = id && n == bidlen && memcmp(id, bid, n) == 0;
    else {
        uint32_t c = 0;
        match = check_crc && ht_elf_file_crc32(cand, &c) == 0 && c == crc;
    }
    if (!match || (!ht_elf_has_dwarf(e) && ht_elf_syms_kind(e) != HT_ELF_SYMS_SYMTAB)) {
        ht_elf_close(e);
        return 0;
    }
    m->dbg_elf = e;
    return 1;
}

/* Find the separate debug file: by build-id under the debug root, then
 * through .gnu_debuglink next to the binary, in .debug/ beside it, and
 * under the debug root (gdb's order). Returns its path (malloc) or NULL. */
static char *
sym_find_debug(ht_sym_t *s, sym_mod_t *m)
{
    size_t bidlen = 0;
    const uint8_t *bid = ht_elf_build_id(m->main_elf, &bidlen);
    char path[PATH_MAX];
    if (bid && bidlen >= 2) {
        char hex[2 * 64 + 1];
        sym_hex(hex, sizeof hex, bid, bidlen);
        int k =
            snprintf(path, sizeof path, "%s/.build-id/%.2s/%s.debug", s->debug_root, hex, hex + 2);
        if (k > 0 && (size_t)k < sizeof path && sym_try_debug(m, path, bid, bidlen, 0, 0))
            return strdup(path);
    }
    uint32_t crc = 0;
    const char *link = ht_elf_debuglink(m->main_elf, &crc);
    if (!link)
        return NULL;
    // The directory of the real file: a symlinked library keeps its debug
    // file next to its target.
    char dir[PATH_MAX];
    char *real = realpath(m->path, NULL);
    const char *p = real ? real : m->path;
    const char *slash = strrchr(p, '/');
    if (slash) {
        size_t n = (size_t)(slash - p);
        if (n >= sizeof dir)
            n = sizeof dir - 1;
        memcpy(dir, p, n);
        dir[n] = '\0';
    } else
        strcpy(dir, ".");
    free(real);
    const char *fmts[] = {"%s%s/%s", "%s%s/.debug/%s", NULL};
    for (int i = 0; i < 3; i++) {
        int k = i < 2 ? snprintf(path, sizeof path, fmts[i], "", dir, link)
                      : snprintf(path, sizeof path, "%s%s%s/%s", s->debug_root,
                                 dir[0] == '/' ? "" : "/", dir, link);
        if (k > 0 && (size_t)k < sizeof path && sym_try_debug(m, path, bid, bidlen, 1, crc))
            return strdup(path);
    }
    return NULL;
}

static void
sym_mod_load(ht_sym_t *s, sym_mod_t *m)
{
    m->loaded = 1;
    ht_elf_t *e = NULL;
    int rc = ht_elf_open(m->path, &e);
    if (rc < 0) {
        sym_warn(s, m, "%s: %s; its addresses are shown as %s+0xADDR", m->path,
                 rc == -EBADMSG  ? "not a usable ELF file"
                 : rc == -EINVAL ? "not a regular file"
                                 : strerror(-rc),
                 m->base);
        return;
    }
    size_t flen = 0;
    const uint8_t *fid = ht_elf_build_id(e, &flen);
    if (m->build_id_len && (flen != m->build_id_len || memcmp(fid, m->build_id, flen) != 0)) {
        char want[129], have[129];
        sym_hex(want, sizeof want, m->build_id, m->build_id_len);
        sym_hex(have, sizeof have, fid, flen);
        sym_warn(s, m,
                 "%s: build-id mismatch (recorded %s, file has %s): the file changed since the "
                 "trace was recorded; its addresses are shown as %s+0xADDR",
                 m->path, want, flen ? have : "none", m->base);
        ht_elf_close(e);
        return;
    }
    m->main_elf = e;
    char *dbg_path = NULL;
    if (!ht_elf_has_dwarf(e) || ht_elf_syms_kind(e) != HT_ELF_SYMS_SYMTAB)
        dbg_path = sym_find_debug(s, m);
    m->syms = e;
    if (ht_elf_syms_kind(e) != HT_ELF_SYMS_SYMTAB && m->dbg_elf &&
        ht_elf_syms_kind(m->dbg_elf) == HT_ELF_SYMS_SYMTAB)
        m->syms = m->dbg_elf;
    const char *dw_path = ht_elf_has_dwarf(e)                          ? m->path
                          : m->dbg_elf && ht_elf_has_dwarf(m->dbg_elf) ? dbg_path
                                                                       : NULL;
    if (dw_path && ht_dwarf_open(dw_path, &m->dw) < 0)
        m->dw = NULL;
    if (m->dw && m->build_id_len)
        m->sc = ht_symcache_open(m->build_id, m->build_id_len, dw_path);
    free(dbg_path);
    m->ok = ht_elf_syms_count(m->syms) > 0 || m->dw;
    if (!m->ok)
        sym_warn(s, m, "%s: no symbols and no debug info; its addresses are shown as %s+0xADDR",
                 m->path, m->base);
}

static sym_mod_t *
sym_mod_get(ht_sym_t *s, int h)
{
    if (!s || h < 0 || (size_t)h >= s->nmods)
        return NULL;
    sym_mod_t *m = &s->mods[h];
    if (!m->loaded)
        sym_mod_load(s, m);
    return m;
}

void
ht_sym_prefetch(ht_sym_t *s, int h)
{
    sym_mod_t *m = sym_mod_get(s, h);
    if (!m || !m->dw || s->prefetched >= SYM_MAX_WORKERS || ht_symcache_nonempty(m->sc))
        return;
    s->prefetched++;
    ht_dwarf_prefetch(m->dw);
}

int
ht_sym_module_ok(ht_sym_t *s, int h)
{
    sym_mod_t *m = sym_mod_get(s, h);
    return m ? m->ok : 0;
}

const char *
ht_sym_module_warning(ht_sym_t *s, int h)
{
    sym_mod_t *m = sym_mod_get(s, h);
    if (!m)
        return NULL;
    if (!m->warning && m->dw && ht_dwarf_failures(m->dw))
        sym_warn(s, m,
                 "%s: damaged debug info (the DWARF reader failed on it); some of its addresses "
                 "have no file:line",
                 m->path);
    return m->warning;
}

void
ht_sym_stats_get(const ht_sym_t *s, ht_sym_stats_t *st)
{
    *st = s->stats;
    st->cus_parsed = 0;
    for (size_t i = 0; i < s->nmods; i++)
        if (s->mods[i].dw)
            st->cus_parsed += ht_dwarf_cus_parsed(s->mods[i].dw);
}

/* ---- resolving ---- */

/* Demangled, interned form of a raw symbol name (the raw name itself when
 * it is not a C++ name). Cached by the raw pointer, which is stable: it
 * points into an ht_elf_t or libdwarf data that live as long as s. */
static const char *
sym_demangle(ht_sym_t *s, const char *raw)
{
    sym_slot_t *hit = sym_map_get(&s->demangled, (uint64_t)(uintptr_t)raw, 0);
    if (hit)
        return (const char *)(uintptr_t)hit->v;
    const char *out = NULL;
    if (raw[0] == '_' && raw[1] == 'Z' && strnlen(raw, SYM_MAX_DEMANGLE) < SYM_MAX_DEMANGLE) {
        int status = 0;
        sym_demangle_fn demangle = sym_demangler();
        char *dm = demangle ? demangle(raw, NULL, NULL, &status) : NULL;
        if (dm && status == 0)
            out = sym_intern(&s->strs, dm);
        free(dm);
    }
    if (!out)
        out = sym_intern(&s->strs, raw);
    if (out)
        sym_map_put(&s->demangled, (uint64_t)(uintptr_t)raw, 0, (uint64_t)(uintptr_t)out);
    return out;
}

static const char *
sym_fallback(ht_sym_t *s, const sym_mod_t *m, uint64_t vaddr)
{
    char buf[512];
    snprintf(buf, sizeof buf, "%s+0x%llx", m ? m->base : "??", (unsigned long long)vaddr);
    const char *r = sym_intern(&s->strs, buf);
    return r ? r : "??";
}

/* Copy a cached chain into out, cutting at the outer end like
 * ht_dwarf_lookup: the innermost max-1 lines and the real function. */
static int
sym_copy_out(const ht_sym_line_t *lines, int n, ht_sym_line_t *out, int max)
{
    if (n <= max) {
        memcpy(out, lines, (size_t)n * sizeof *out);
        return n;
    }
    memcpy(out, lines, (size_t)(max - 1) * sizeof *out);
    out[max - 1] = lines[n - 1];
    return max;
}

/* Keep at most SYM_MAX_WORKERS DWARF workers alive. */
static void
sym_workers_bound(ht_sym_t *s)
{
    size_t running = 0;
    sym_mod_t *lru = NULL;
    for (size_t i = 0; i < s->nmods; i++) {
        sym_mod_t *m = &s->mods[i];
        if (!m->dw || !ht_dwarf_is_running(m->dw))
            continue;
        running++;
        if (!lru || m->dw_used < lru->dw_used)
            lru = m;
    }
    if (running > SYM_MAX_WORKERS && lru)
        ht_dwarf_suspend(lru->dw);
}

static int sym_compute_dwarf(ht_sym_t *s, sym_mod_t *m, uint64_t vaddr, ht_sym_line_t *lines);

static int
sym_compute(ht_sym_t *s, sym_mod_t *m, uint64_t vaddr, ht_sym_line_t *lines)
{
    if (!m->ok) {
        lines[0] = (ht_sym_line_t){sym_fallback(s, m, vaddr), NULL, 0};
        return 1;
    }
    const ht_symcache_line_t *cl;
    int cn = ht_symcache_get(m->sc, vaddr, &cl);
    if (cn > 0) {
        s->stats.disk_hits++;
        for (int i = 0; i < cn && i < HT_SYM_MAX_LINES; i++)
            lines[i] = (ht_sym_line_t){cl[i].function, cl[i].file, cl[i].line};
        return cn < HT_SYM_MAX_LINES ? cn : HT_SYM_MAX_LINES;
    }
    int n = sym_compute_dwarf(s, m, vaddr, lines);
    // Kept for the next run only when the worker never failed on this
    // file: a crashed CU's degraded answer must not outlive the crash.
    if (m->sc && ht_dwarf_failures(m->dw) == 0 && n <= 255) {
        ht_symcache_line_t kl[HT_SYM_MAX_LINES];
        for (int i = 0; i < n; i++)
            kl[i] = (ht_symcache_line_t){lines[i].function, lines[i].file, lines[i].line};
        ht_symcache_put(m->sc, vaddr, kl, n);
    }
    return n;
}

/* sym_compute without the disk cache. */
static int
sym_compute_dwarf(ht_sym_t *s, sym_mod_t *m, uint64_t vaddr, ht_sym_line_t *lines)
{
    const char *symname = m->syms ? ht_elf_sym_lookup(m->syms, vaddr, NULL) : NULL;
    ht_dwarf_frame_t fr[HT_SYM_MAX_LINES];
    int n = 0;
    if (m->dw) {
        int was_running = ht_dwarf_is_running(m->dw);
        n = ht_dwarf_lookup(m->dw, vaddr, fr, HT_SYM_MAX_LINES);
        m->dw_used = ++s->tick;
        if (!was_running && ht_dwarf_is_running(m->dw))
            sym_workers_bound(s);
    }
    if (n == 0) {
        const char *fn = symname ? sym_demangle(s, symname) : NULL;
        lines[0] = (ht_sym_line_t){fn ? fn : sym_fallback(s, m, vaddr), NULL, 0};
        return 1;
    }
    for (int i = 0; i < n; i++) {
        const char *raw = fr[i].name;
        // DWARF's name for the real function is preferred to the symbol
        // table's: it is "foo", not the clone "foo.constprop.0".
        if (!raw && i == n - 1)
            raw = symname;
        const char *fn = raw ? sym_demangle(s, raw) : NULL;
        if (!fn)
            fn = i == n - 1 ? sym_fallback(s, m, vaddr) : "??";
        lines[i] = (ht_sym_line_t){fn, sym_intern(&s->strs, fr[i].file), fr[i].line};
    }
    return n;
}

int
ht_sym_resolve(ht_sym_t *s, int h, uint64_t vaddr, ht_sym_line_t *out, int max)
{
    if (!out || max < 1)
        return 0;
    if (!s) {
        out[0] = (ht_sym_line_t){"??", NULL, 0};
        return 1;
    }
    s->stats.resolves++;
    sym_mod_t *m = sym_mod_get(s, h);
    if (!m) {
        out[0] = (ht_sym_line_t){"??", NULL, 0};
        return 1;
    }
    sym_slot_t *hit = sym_map_get(&s->cache, (uint64_t)h, vaddr);
    if (hit) {
        s->stats.cache_hits++;
        return sym_copy_out(s->pool + (hit->v >> 8), (int)(hit->v & 0xff), out, max);
    }
    ht_sym_line_t lines[HT_SYM_MAX_LINES];
    int n = sym_compute(s, m, vaddr, lines);
    if (s->npool + (size_t)n > s->pool_cap) {
        size_t cap = s->pool_cap ? s->pool_cap * 2 : 4096;
        while (cap < s->npool + (size_t)n)
            cap *= 2;
        ht_sym_line_t *p = realloc(s->pool, cap * sizeof *p);
        if (p) {
            s->pool = p;
            s->pool_cap = cap;
        }
    }
    // Out of memory only costs the caching, never the answer.
    if (s->npool + (size_t)n <= s->pool_cap &&
        sym_map_put(&s->cache, (uint64_t)h, vaddr, (uint64_t)s->npool << 8 | (uint64_t)n) == 0) {
        memcpy(s->pool + s->npool, lines, (size_t)n * sizeof *lines);
        s->npool += (size_t)n;
    }
    return sym_copy_out(lines, n, out, max);
}
