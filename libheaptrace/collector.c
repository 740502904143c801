/*
 * libheaptrace/collector.c -- rings in, self-contained trace segments out
 * (contract: collector.h; what a segment holds: docs/FORMAT.md).
 *
 * Linked into the shim as well as `heaptrace`: no stdio (messages are
 * written to fd 2 with write(2)); malloc is fine, the shim's guard keeps
 * the collector thread's own allocations out of the trace.
 */
#include "libheaptrace/collector.h"

#include "formats/tracefile.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <linux/futex.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NS 1000000000ull
/* A segment closes at this many bytes of events, or this long after it
 * opened when it has events. Every segment restates the live set's sites
 * and stacks, which compress ~3:1 where events compress ~60:1: python3
 * --all (4.5M allocations) traced to 1.22 MB with 6 MiB / 2 s segments,
 * 0.80 MB with 32 MiB / 10 s, 0.70 MB with 64 MiB / 30 s. The open
 * segment is held raw in memory, and is what a killed recorder loses. */
#define COLL_SEG_RAW_MAX (32u << 20)
#define COLL_SEG_AGE_NS (10 * NS)
/* How long a forked child's records wait for the parent's FORK record (its
 * inherited live set) before the child is traced without it. */
#define COLL_FORK_WAIT_NS (3 * NS)
/* A ring file that is still not a formatted, live ring after this long is
 * ignored (a program that died while attaching). */
#define COLL_ATTACH_GIVEUP_NS (3 * NS)
/* A ring that says EXITED while its pid still exists is finished after
 * this long anyway. */
#define COLL_EXITED_GRACE_NS (2 * NS)
#define COLL_LIVENESS_NS (20u * 1000u * 1000u)
/* Inherited live sets nobody claimed are dropped after this long. */
#define COLL_PENDING_TTL_NS (30 * NS)

/* ------------------------------------------------------------------ */
/* small helpers */

static uint64_t
coll_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NS + (uint64_t)ts.tv_nsec;
}

static uint64_t
coll_realtime(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * NS + (uint64_t)ts.tv_nsec;
}

/* Decimal of v into buf (>= 21 bytes); returns buf. */
static char *
coll_utoa(uint64_t v, char *buf)
{
    char t[21];
    int n = 0;
    do {
        t[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (int i = 0; i < n; i++)
        buf[i] = t[n - 1 - i];
    buf[n] = 0;
    return buf;
}

/* "heaptrace: " + the pieces + newline, in one write so lines from several
 * processes do not interleave. NULL ends the list. */
static void
coll_say(const char *a, ...)
{
    char line[1024];
    size_t n = 0;
    const char *pre = "heaptrace: ";
    for (const char *p = pre; *p && n < sizeof line - 2; p++)
        line[n++] = *p;
    __builtin_va_list ap;
    __builtin_va_start(ap, a);
    for (const char *s = a; s; s = __builtin_va_arg(ap, const char *))
        for (; *s && n < sizeof line - 2; s++)
            line[n++] = *s;
    __builtin_va_end(ap);
    line[n++] = '\n';
    (void)!write(2, line, n);
}

/* A malloc'd copy of s[0, min(len, HT_TF_MAX_STR)), its length in *out;
 * NULL (and 0) when empty or without memory. */
static char *
coll_dup_clamped(const char *s, uint32_t len, uint32_t *out)
{
    if (len > HT_TF_MAX_STR)
        len = HT_TF_MAX_STR;
    char *d = len ? malloc(len) : NULL;
    if (d)
        memcpy(d, s, len);
    *out = d ? len : 0;
    return d;
}

/* Read up to cap-1 bytes of a small file (procfs); returns length or -1. */
static ssize_t
coll_read_small(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t n = 0;
    while (n < cap - 1) {
        ssize_t k = read(fd, buf + n, cap - 1 - n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        n += (size_t)k;
    }
    close(fd);
    buf[n] = 0;
    return (ssize_t)n;
}

static void
coll_proc_path(char *out, pid_t pid, const char *leaf)
{
    char num[24];
    strcpy(out, "/proc/");
    strcat(out, coll_utoa((uint64_t)pid, num));
    strcat(out, "/");
    strcat(out, leaf);
}

enum { PID_ALIVE, PID_ZOMBIE, PID_GONE };

/* Whether pid still runs; a zombie's parent in *ppid. */
static int
coll_pid_state(pid_t pid, pid_t *ppid)
{
    *ppid = 0;
    if (kill(pid, 0) < 0 && errno == ESRCH)
        return PID_GONE;
    char path[64], buf[512];
    coll_proc_path(path, pid, "stat");
    if (coll_read_small(path, buf, sizeof buf) <= 0)
        return PID_GONE;
    // "pid (comm) S ppid ...": comm may hold spaces and parens, so parse
    // from the last ')'.
    char *p = strrchr(buf, ')');
    if (!p || p[1] != ' ')
        return PID_ALIVE;
    char st = p[2];
    *ppid = (pid_t)strtol(p + 4, NULL, 10);
    return (st == 'Z' || st == 'X') ? PID_ZOMBIE : PID_ALIVE;
}

int
ht_coll_parse_size(const char *s, uint64_t *out)
{
    if (!s || !*s || *s == '-')
        return -EINVAL;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s)
        return -EINVAL;
    unsigned shift = 0;
    switch (*end) {
    case 0:
        break;
    case 'k': case 'K': shift = 10; end++; break;
    case 'm': case 'M': shift = 20; end++; break;
    case 'g': case 'G': shift = 30; end++; break;
    case 't': case 'T': shift = 40; end++; break;
    default: return -EINVAL;
    }
    if (*end == 'i' && shift) // accept "KiB"-style "Ki"/"KiB"
        end++;
    if ((*end == 'B' || *end == 'b') && shift)
        end++;
    if (*end)
        return -EINVAL;
    if (shift && v > (UINT64_MAX >> shift))
        return -EINVAL;
    *out = (uint64_t)v << shift;
    return 0;
}

/* ------------------------------------------------------------------ */
/* stacks, interned by content across every ring */

typedef struct coll_stk_s {
    uint64_t off; /* into pool */
    uint64_t hash;
    uint32_t n;
    uint32_t next; /* chain, 0 ends */
} coll_stk_t;

/* A node of the call tree of every stack: the path from the root (the
 * outermost caller) to a stack's leaf passes through one node per frame.
 * Stacks that share callers share the nodes of those callers, which is how
 * a segment writes a stack as "these frames, then the callers of that
 * stack" (STACK_REF) instead of all its frames again. */
typedef struct coll_node_s {
    uint64_t ip;
    uint32_t parent; /* 0: a child of the root */
    uint32_t next;   /* hash chain, 0 ends */
} coll_node_t;

typedef struct coll_stacks_s {
    uint64_t *pool;
    size_t pool_n, pool_cap;
    coll_stk_t *ent; /* ent[id - 1] */
    size_t n, cap;
    uint32_t *tab; /* heads: ids */
    size_t tab_cap; /* power of two */
    coll_node_t *node; /* node[id - 1] */
    size_t nnode, node_cap;
    uint32_t *ntab; /* heads: node ids */
    size_t ntab_cap; /* power of two */
} coll_stacks_t;

static inline size_t
coll_node_home(uint32_t parent, uint64_t ip, size_t mask)
{
    uint64_t h = (ip ^ ((uint64_t)parent << 40 | parent)) * 0x9e3779b97f4a7c15ull;
    return (size_t)(h ^ (h >> 31)) & mask;
}

/* The child of `parent` for return address ip, or 0. */
static uint32_t
coll_node_child(const coll_stacks_t *s, uint32_t parent, uint64_t ip)
{
    if (!s->ntab_cap)
        return 0;
    for (uint32_t id = s->ntab[coll_node_home(parent, ip, s->ntab_cap - 1)]; id;
         id = s->node[id - 1].next)
        if (s->node[id - 1].parent == parent && s->node[id - 1].ip == ip)
            return id;
    return 0;
}

/* Add the path of frames f[0..n) (leaf first) to the tree. 0, or -ENOMEM
 * (the tree then lacks the path, and that stack is written whole). */
static int
coll_node_add_path(coll_stacks_t *s, const uint64_t *f, uint32_t n)
{
    uint32_t node = 0;
    for (uint32_t i = n; i-- > 0;) {
        uint32_t c = coll_node_child(s, node, f[i]);
        if (!c) {
            if (s->nnode >= UINT32_MAX - 1)
                return -ENOMEM;
            if (s->nnode + 1 > s->ntab_cap) {
                size_t nc = s->ntab_cap ? s->ntab_cap * 2 : 4096;
                uint32_t *t = calloc(nc, sizeof *t);
                if (!t)
                    return -ENOMEM;
                for (size_t k = 0; k < s->nnode; k++) {
                    size_t b = coll_node_home(s->node[k].parent, s->node[k].ip, nc - 1);
                    s->node[k].next = t[b];
                    t[b] = (uint32_t)(k + 1);
                }
                free(s->ntab);
                s->ntab = t;
                s->ntab_cap = nc;
            }
            if (s->nnode == s->node_cap) {
                size_t nc = s->node_cap ? s->node_cap * 2 : 4096;
                coll_node_t *nn = realloc(s->node, nc * sizeof *nn);
                if (!nn)
                    return -ENOMEM;
                s->node = nn;
                s->node_cap = nc;
            }
            size_t b = coll_node_home(node, f[i], s->ntab_cap - 1);
            s->node[s->nnode] = (coll_node_t){.ip = f[i], .parent = node, .next = s->ntab[b]};
            c = (uint32_t)++s->nnode;
            s->ntab[b] = c;
        }
        node = c;
    }
    return 0;
}

static uint64_t
coll_stk_hash(const uint64_t *f, uint32_t n)
{
    uint64_t h = 0x9e3779b97f4a7c15ull ^ n;
    for (uint32_t i = 0; i < n; i++) {
        h ^= f[i];
        h *= 0xff51afd7ed558ccdull;
        h ^= h >> 32;
    }
    return h;
}

static int
coll_stk_rehash(coll_stacks_t *s, size_t ncap)
{
    uint32_t *t = calloc(ncap, sizeof *t);
    if (!t)
        return -ENOMEM;
    for (size_t i = 0; i < s->n; i++) {
        size_t b = s->ent[i].hash & (ncap - 1);
        s->ent[i].next = t[b];
        t[b] = (uint32_t)(i + 1);
    }
    free(s->tab);
    s->tab = t;
    s->tab_cap = ncap;
    return 0;
}

/* Id of these frames (new or existing); 0 on allocation failure. */
static uint32_t
coll_stk_intern(coll_stacks_t *s, const uint64_t *f, uint32_t n)
{
    if (n == 0 || n > HT_TF_MAX_FRAMES)
        return 0;
    uint64_t h = coll_stk_hash(f, n);
    if (s->tab_cap) {
        for (uint32_t id = s->tab[h & (s->tab_cap - 1)]; id; id = s->ent[id - 1].next) {
            const coll_stk_t *e = &s->ent[id - 1];
            if (e->hash == h && e->n == n && !memcmp(s->pool + e->off, f, n * sizeof *f))
                return id;
        }
    }
    if (s->n >= UINT32_MAX - 1)
        return 0;
    if (s->n + 1 > s->tab_cap && coll_stk_rehash(s, s->tab_cap ? s->tab_cap * 2 : 1024) < 0)
        return 0;
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 1024;
        coll_stk_t *ne = realloc(s->ent, nc * sizeof *ne);
        if (!ne)
            return 0;
        s->ent = ne;
        s->cap = nc;
    }
    if (s->pool_n + n > s->pool_cap) {
        size_t nc = s->pool_cap ? s->pool_cap * 2 : 16384;
        while (nc < s->pool_n + n)
            nc *= 2;
        uint64_t *np = realloc(s->pool, nc * sizeof *np);
        if (!np)
            return 0;
        s->pool = np;
        s->pool_cap = nc;
    }
    memcpy(s->pool + s->pool_n, f, n * sizeof *f);
    (void)coll_node_add_path(s, f, n); // on failure the stack is written whole
    coll_stk_t *e = &s->ent[s->n];
    e->off = s->pool_n;
    e->hash = h;
    e->n = n;
    size_t b = h & (s->tab_cap - 1);
    e->next = s->tab[b];
    s->pool_n += n;
    s->n++;
    s->tab[b] = (uint32_t)s->n;
    return (uint32_t)s->n;
}

/* ------------------------------------------------------------------ */
/* live set: ptr -> allocation, open addressing with backward-shift delete */

typedef struct coll_live_s {
    uint64_t ptr;
    uint32_t site; /* what the file knows of the block: coll_sites_t */
    uint32_t pad;
} coll_live_t;

typedef struct coll_liveset_s {
    coll_live_t *e;
    size_t cap, n; /* cap: power of two or 0 */
} coll_liveset_t;

static size_t
coll_live_home(uint64_t ptr, size_t mask)
{
    uint64_t h = (ptr >> 3) * 0x9e3779b97f4a7c15ull;
    return (size_t)(h ^ (h >> 29)) & mask;
}

static int
coll_live_grow(coll_liveset_t *ls)
{
    size_t nc = ls->cap ? ls->cap * 2 : 1024;
    coll_live_t *ne = calloc(nc, sizeof *ne);
    if (!ne)
        return -ENOMEM;
    for (size_t i = 0; i < ls->cap; i++) {
        if (!ls->e[i].ptr)
            continue;
        size_t j = coll_live_home(ls->e[i].ptr, nc - 1);
        while (ne[j].ptr)
            j = (j + 1) & (nc - 1);
        ne[j] = ls->e[i];
    }
    free(ls->e);
    ls->e = ne;
    ls->cap = nc;
    return 0;
}

/* The entry of ptr, or the empty slot where it goes (ptr 0 there): one
 * probe for "is it live already, else add it". NULL without memory. */
static coll_live_t *
coll_live_slot(coll_liveset_t *ls, uint64_t ptr)
{
    if ((ls->n + 1) * 10 > ls->cap * 7 && coll_live_grow(ls) < 0)
        return NULL;
    size_t mask = ls->cap - 1, j = coll_live_home(ptr, mask);
    while (ls->e[j].ptr && ls->e[j].ptr != ptr)
        j = (j + 1) & mask;
    return &ls->e[j];
}

static coll_live_t *
coll_live_get(coll_liveset_t *ls, uint64_t ptr)
{
    if (!ls->cap || !ptr)
        return NULL;
    size_t mask = ls->cap - 1, i = coll_live_home(ptr, mask);
    while (ls->e[i].ptr != ptr) {
        if (!ls->e[i].ptr)
            return NULL;
        i = (i + 1) & mask;
    }
    return &ls->e[i];
}

static void
coll_live_del(coll_liveset_t *ls, uint64_t ptr)
{
    if (!ls->cap || !ptr)
        return;
    size_t mask = ls->cap - 1, i = coll_live_home(ptr, mask);
    while (ls->e[i].ptr != ptr) {
        if (!ls->e[i].ptr)
            return;
        i = (i + 1) & mask;
    }
    // Backward shift: pull later members of the probe run into the hole
    // so lookups never need tombstones.
    size_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (!ls->e[j].ptr)
            break;
        size_t k = coll_live_home(ls->e[j].ptr, mask);
        bool move = (i <= j) ? (k <= i || k > j) : (k <= i && k > j);
        if (move) {
            ls->e[i] = ls->e[j];
            i = j;
        }
    }
    ls->e[i].ptr = 0;
    ls->n--;
}

static void
coll_live_free(coll_liveset_t *ls)
{
    free(ls->e);
    memset(ls, 0, sizeof *ls);
}

/* ------------------------------------------------------------------ */
/* allocation sites: (size, stack, weight, thread, flags), interned across
 * every process. The file names a block by its site only (FORMAT.md): all
 * figures are sums over a site's blocks, so its blocks are
 * interchangeable, and a site id repeats where a pointer or an allocation
 * number would not, which is what zstd compresses. */

typedef struct coll_site_s {
    uint64_t size, weight, tid;
    uint32_t stack, flags;
    uint32_t gen; /* the process's module generation (not written) */
    uint32_t next; /* chain, 0 ends */
    uint32_t inherited; /* the INHERITED twin's id, 0 not made yet */
} coll_site_t;

typedef struct coll_sites_s {
    coll_site_t *ent; /* ent[id - 1] */
    size_t n, cap;
    uint32_t *tab; /* heads: ids */
    size_t tab_cap; /* power of two */
} coll_sites_t;

static uint64_t
coll_site_hash(uint64_t size, uint32_t stack, uint64_t weight, uint64_t tid, uint32_t flags,
               uint32_t gen)
{
    uint64_t h = (size ^ (uint64_t)gen << 40) * 0x9e3779b97f4a7c15ull;
    h ^= ((uint64_t)stack << 32 | flags) + (h >> 29);
    h *= 0xff51afd7ed558ccdull;
    h ^= (weight + tid * 0xc4ceb9fe1a85ec53ull) + (h >> 31);
    h *= 0x9e3779b97f4a7c15ull;
    return h ^ (h >> 32);
}

static int
coll_site_rehash(coll_sites_t *s, size_t ncap)
{
    uint32_t *t = calloc(ncap, sizeof *t);
    if (!t)
        return -ENOMEM;
    for (size_t i = 0; i < s->n; i++) {
        const coll_site_t *e = &s->ent[i];
        size_t b = coll_site_hash(e->size, e->stack, e->weight, e->tid, e->flags, e->gen) &
                   (ncap - 1);
        s->ent[i].next = t[b];
        t[b] = (uint32_t)(i + 1);
    }
    free(s->tab);
    s->tab = t;
    s->tab_cap = ncap;
    return 0;
}

/* Id of this site (new or existing); 0 on allocation failure. gen is the
 * process's module generation: it moves at every module load and unload,
 * so a site never spans two module maps, and the analyzer resolves its
 * addresses with the map in force where the site was first written. */
static uint32_t
coll_site_intern(coll_sites_t *s, uint64_t size, uint32_t stack, uint64_t weight, uint64_t tid,
                 uint32_t flags, uint32_t gen)
{
    uint64_t h = coll_site_hash(size, stack, weight, tid, flags, gen);
    if (s->tab_cap) {
        for (uint32_t id = s->tab[h & (s->tab_cap - 1)]; id; id = s->ent[id - 1].next) {
            const coll_site_t *e = &s->ent[id - 1];
            if (e->size == size && e->stack == stack && e->weight == weight && e->tid == tid &&
                e->flags == flags && e->gen == gen)
                return id;
        }
    }
    if (s->n >= HT_TF_MAX_SITE - 1)
        return 0;
    if (s->n + 1 > s->tab_cap && coll_site_rehash(s, s->tab_cap ? s->tab_cap * 2 : 1024) < 0)
        return 0;
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 1024;
        coll_site_t *ne = realloc(s->ent, nc * sizeof *ne);
        if (!ne)
            return 0;
        s->ent = ne;
        s->cap = nc;
    }
    size_t b = h & (s->tab_cap - 1);
    s->ent[s->n] = (coll_site_t){.size = size, .weight = weight, .tid = tid, .stack = stack,
                                 .flags = flags, .gen = gen, .next = s->tab[b]};
    s->n++;
    s->tab[b] = (uint32_t)s->n;
    return (uint32_t)s->n;
}

/* The same site with INHERITED set: a forked child's copy of a block. */
static uint32_t
coll_site_inherited(coll_sites_t *s, uint32_t id)
{
    if (!id || id > s->n)
        return 0;
    if (s->ent[id - 1].flags & HT_TF_SITE_INHERITED)
        return id;
    if (s->ent[id - 1].inherited)
        return s->ent[id - 1].inherited;
    coll_site_t e = s->ent[id - 1]; // intern may move ent
    uint32_t t = coll_site_intern(s, e.size, e.stack, e.weight, e.tid,
                                  e.flags | HT_TF_SITE_INHERITED, e.gen);
    if (t)
        s->ent[id - 1].inherited = t;
    return t;
}

static void
coll_sites_free(coll_sites_t *s)
{
    free(s->ent);
    free(s->tab);
    memset(s, 0, sizeof *s);
}

/* A copy with every block moved to its site's INHERITED twin: a forked
 * child's start. */
static int
coll_live_copy(coll_sites_t *sites, coll_liveset_t *dst, const coll_liveset_t *src)
{
    memset(dst, 0, sizeof *dst);
    if (!src->cap)
        return 0;
    dst->e = malloc(src->cap * sizeof *dst->e);
    if (!dst->e)
        return -ENOMEM;
    memcpy(dst->e, src->e, src->cap * sizeof *dst->e);
    dst->cap = src->cap;
    dst->n = src->n;
    for (size_t i = 0; i < dst->cap; i++) {
        if (!dst->e[i].ptr)
            continue;
        uint32_t t = coll_site_inherited(sites, dst->e[i].site);
        if (t)
            dst->e[i].site = t;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* per-process state */

typedef struct coll_thr_s {
    uint64_t tid;
    char *name;
    uint32_t name_len;
    bool alive, has_totals;
    uint64_t allocs, alloc_bytes, frees, free_bytes;
    // --all: bytes of recorded blocks this thread freed, counted here (the
    // shim keeps no sizes in that mode) and written into its TOTALS.
    uint64_t freed_bytes;
    // --all: the thread's events, counted: the counts of a program killed
    // before its exit handler wrote its own (proc_finish).
    uint64_t ev_allocs, ev_alloc_bytes, ev_frees;
    // heaptrack's "temporary": the thread's last allocation, while no other
    // allocation of the thread came after it; a free of it by the thread
    // is written EV_FREE_TMP.
    uint64_t last_ptr;
    bool has_last;
} coll_thr_t;

typedef struct coll_mod_s {
    uint64_t id, bias;
    uint64_t lo, hi; /* the addresses its segments span */
    /* Written in the open segment when stamp == the process's serial
     * (proc_emit_modules); ever: written in some segment, so its
     * UNMODULE means something to a reader. */
    uint32_t stamp;
    bool ever;
    char *path;
    uint32_t path_len, bid_len, nsegs;
    uint8_t bid[HT_TF_MAX_BUILD_ID];
    ht_tf_seg_t segs[HT_TF_MAX_SEGS];
} coll_mod_t;

typedef struct coll_memstat_s {
    uint64_t ts, rss, anon, file, shmem, swap;
} coll_memstat_t;

typedef struct coll_proc_s coll_proc_t;

struct ht_coll_src_s {
    struct ht_coll_src_s *next;
    ht_coll_t *c;
    coll_proc_t *proc;
    bool is_ring;
    ht_ring_t ring;
    ht_ring_consumer_t cons;
    ht_coll_stack_fn stack_fn;
    void *stack_ctx;
    /* Source stack id -> collector id (0: unknown), in leaves of
     * SRC_IDMAP_LEAF ids made on first use: a ring's ids are slots of a
     * hash table of a million, spread over all of it, and one flat array
     * was 4 MB to zero and fault in for a program with a dozen stacks
     * (6 ms of alloc_loop's 22 under record). */
    uint32_t **idmap;
    size_t idmap_nleaf;
    ht_coll_src_info_t info;
    uint64_t start_ns;
    uint64_t snap_seen;
    char *path; /* ring file, unlinked when released */
    char *exe, *argv; /* info's, copied out of the ring's header */
};

enum { PROC_WAIT_FORK, PROC_ACTIVE, PROC_DONE };

struct coll_proc_s {
    coll_proc_t *next;
    ht_coll_t *c;
    pid_t pid, ppid;
    int state;
    bool main;
    uint64_t wait_since;
    ht_coll_src_t *src;
    char *path;
    ht_tfw_t *w;
    ht_file_info_t *info; /* file header and snapshot files */

    // the process image, for PROCESS records
    uint64_t flags, sample_rate, max_depth;
    char *exe, *argv;
    uint32_t exe_len, argv_len;

    coll_liveset_t live;
    coll_thr_t *thr;
    size_t nthr, thr_cap;
    coll_mod_t *mod;
    size_t nmod, mod_cap;

    // the open segment
    uint8_t *buf;
    size_t cap;
    ht_tf_enc_t enc;
    size_t kf_len;
    uint64_t kf_ts;
    bool seg_open;
    /* Streamed (proc_seg_feed): buf[feed_off, enc.p) is what the writer
     * has not taken yet; seg_fed the bytes it took and buf no longer
     * holds (the keyframe stays at its start). */
    size_t feed_off;
    uint64_t seg_fed;

    size_t cur_thr; /* index in thr of the last thread looked up */
    uint32_t mod_gen; /* moves at each MODULE and UNMODULE: see coll_site_intern */
    bool seg_stacks;  /* the open segment has stated a stack (proc_mod_state) */
    // The stream's clock: nothing is written with an earlier time. Events
    // advance it; so does each poll's horizon (every event older than it
    // has been written), which is the time of the collector's own records.
    uint64_t clock;
    uint64_t unknown_frees, unknown_written; /* frees of pointers not live */
    uint64_t dup_allocs; /* allocs of an address still live (its free was lost) */

    // Records consumed but not written yet (section "ordering" below).
    struct coll_pev_s *pev;
    size_t npev, cap_pev;
    struct coll_pev_s *pev_tmp;
    size_t cap_pev_tmp;
    uint8_t *arena; /* encodings of the pending records other than alloc/free */
    size_t arena_n, arena_cap;
    uint64_t seq, seg_snapshot;
    uint64_t t0, t1, seg_born;
    uint32_t serial;   /* segment counter for the stamps */
    uint32_t *stamp;   /* stamp[id]: serial of the segment that holds STACK id */
    size_t stamp_n;
    uint32_t *sstamp;  /* the same for SITE ids */
    size_t sstamp_n;
    uint32_t *nstamp;  /* the same for call-tree nodes some written stack passes */
    uint32_t *nrep;    /* nrep[node]: such a stack, when nstamp[node] is current */
    size_t nstamp_n;
    uint32_t *kf_count; /* keyframe scratch: live blocks per site id */
    size_t kf_count_n;

    uint64_t nsnap, bytes_since_snap;
    /* The next --snapshot-interval snapshot is due at this time: a fixed
     * schedule from the start, which snapshots of other reasons (API,
     * signal, bytes) do not move. */
    uint64_t snap_due_ns;
    uint64_t heap_free, heap_total;
    uint64_t lost[3], lost_base[3], lost_written[3]; /* events, waits, wait_ns */
    coll_memstat_t ms;
    bool ms_valid;
    bool shim_exit;
    uint64_t shim_how, shim_code;
    uint64_t exited_since, last_liveness;
    uint64_t dropped;
};

typedef struct coll_pending_s {
    struct coll_pending_s *next;
    pid_t child;
    uint64_t since;
    coll_liveset_t live;
} coll_pending_t;

typedef struct coll_seen_s {
    struct coll_seen_s *next;
    char *name;
    ino_t ino;
    uint64_t first;
    bool done; /* attached once, or given up */
} coll_seen_t;

typedef struct coll_exit_s {
    pid_t pid;
    int status;
} coll_exit_t;

struct ht_coll_s {
    ht_coll_opts_t o;
    char *output, *prefix;
    pid_t main_pid;
    bool have_main;
    bool self_mode; /* collector thread inside the traced process */
    coll_stacks_t stk;
    coll_sites_t sites;
    coll_proc_t *procs;
    ht_coll_src_t *srcs;
    coll_pending_t *pending;
    coll_seen_t *seen;
    coll_exit_t *exits;
    size_t nexits, exits_cap;
    size_t nprocs;
    ht_coll_stats_t st;
    char *main_path;
    bool backlog; /* the last poll left a ring over a quarter full */
};

/* ---- segment encoding ---- */

static int
proc_grow(coll_proc_t *p)
{
    size_t used = p->buf ? (size_t)(p->enc.p - p->buf) : 0;
    size_t nc = p->cap ? p->cap * 2 : (1u << 20);
    if (nc > HT_TF_SEG_RAW_MAX) {
        if (p->cap >= HT_TF_SEG_RAW_MAX)
            return -E2BIG;
        nc = HT_TF_SEG_RAW_MAX;
    }
    uint8_t *nb = realloc(p->buf, nc);
    if (!nb)
        return -ENOMEM;
    p->buf = nb;
    p->cap = nc;
    p->enc.p = nb + used;
    p->enc.end = nb + nc;
    return 0;
}

/* Encode with `expr` (which uses &p->enc), growing the buffer as needed; a
 * record that cannot fit even in the largest segment is counted, not
 * written. */
#define COLL_PUT(p, expr)                                              \
    do {                                                               \
        int put_rc_;                                                   \
        while ((put_rc_ = (expr)) == -ENOSPC && proc_grow(p) == 0) {  \
        }                                                              \
        if (put_rc_ < 0)                                               \
            (p)->dropped++;                                            \
    } while (0)

static void
proc_ts(coll_proc_t *p, uint64_t ts)
{
    if (ts < p->t0)
        p->t0 = ts;
    if (ts > p->t1)
        p->t1 = ts;
}

/* The stream's time now, for the collector's own records. */
static uint64_t
proc_clock(coll_proc_t *p)
{
    if (!p->clock)
        p->clock = coll_now();
    return p->clock;
}

/* The open segment's length so far, streamed bytes included. */
static uint64_t
proc_seg_len(const coll_proc_t *p)
{
    return p->seg_fed + (uint64_t)(p->enc.p - p->buf) - p->feed_off;
}

/* Is definition `id` still to be written in this segment? Stamps it. With
 * no memory for the stamps it says yes: a repeated definition is harmless,
 * a missing one is not. */
static bool
proc_stamp_new(coll_proc_t *p, uint32_t **stamp, size_t *n, uint32_t id)
{
    if (id >= *n) {
        size_t nn = *n ? *n : 1024;
        while (nn <= id)
            nn *= 2;
        uint32_t *ns = realloc(*stamp, nn * sizeof *ns);
        if (!ns)
            return true;
        memset(ns + *n, 0, (nn - *n) * sizeof *ns);
        *stamp = ns;
        *n = nn;
    }
    if ((*stamp)[id] == p->serial)
        return false;
    (*stamp)[id] = p->serial;
    return true;
}

/* Room for a stamp per call-tree node. */
static bool
proc_nstamp_fit(coll_proc_t *p, size_t nnode)
{
    if (nnode < p->nstamp_n)
        return true;
    size_t nn = p->nstamp_n ? p->nstamp_n : 4096;
    while (nn <= nnode)
        nn *= 2;
    uint32_t *ns = realloc(p->nstamp, nn * sizeof *ns);
    if (!ns)
        return false;
    p->nstamp = ns;
    uint32_t *nr = realloc(p->nrep, nn * sizeof *nr);
    if (!nr)
        return false; // nstamp grew alone: harmless, nstamp_n is unchanged
    p->nrep = nr;
    memset(ns + p->nstamp_n, 0, (nn - p->nstamp_n) * sizeof *ns);
    p->nstamp_n = nn;
    return true;
}

/* MODULE m, in the open segment: once there (stamp), and known to a
 * reader from now on (ever). */
static void
proc_mod_write(coll_proc_t *p, coll_mod_t *m)
{
    m->stamp = p->serial;
    m->ever = true;
    COLL_PUT(p, ht_tf_put_module(&p->enc, p->enc.last_ts, m->id, m->bias, m->path, m->path_len,
                                 m->bid, m->bid_len, m->segs, m->nsegs));
}

/* MODULE of every frame of f[0, n) once per segment, before the first
 * stack that needs it: a segment states the modules its stacks are in,
 * not every module the process has mapped. The shim's own library and
 * the ones it brought (libunwind, liblzma), ld.so, the vDSO: a program's
 * stacks pass through few of the modules it maps, and a keyframe that
 * restated all of them was most of a small program's exit snapshot
 * (alloc_loop: 7 modules, 2 in its stacks) and of every segment of a
 * ring-bounded trace. A reader also loads only the modules it needs. */
static void
proc_emit_modules(coll_proc_t *p, const uint64_t *f, uint32_t n)
{
    size_t hit = 0; // frames come in runs within one module
    for (uint32_t i = 0; i < n; i++) {
        uint64_t a = f[i];
        if (hit >= p->nmod || a < p->mod[hit].lo || a >= p->mod[hit].hi) {
            size_t k = 0;
            while (k < p->nmod && (a < p->mod[k].lo || a >= p->mod[k].hi))
                k++;
            if (k == p->nmod)
                continue; // in no module (JIT code, or damage): nothing to state
            hit = k;
        }
        if (p->mod[hit].stamp != p->serial)
            proc_mod_write(p, &p->mod[hit]);
    }
}

/* STACK id once per segment, before its first use: as STACK_REF to the
 * stack of this segment that shares the most callers with it (the deepest
 * call-tree node on its path that a stack written in this segment passed
 * through), else whole. Python's stacks share 20-40 interpreter frames:
 * most cost one to three frames this way. */
static void
proc_emit_stack(coll_proc_t *p, uint32_t id)
{
    coll_stacks_t *s = &p->c->stk;
    if (!id || id > s->n || !proc_stamp_new(p, &p->stamp, &p->stamp_n, id))
        return;
    const coll_stk_t *e = &s->ent[id - 1];
    const uint64_t *f = s->pool + e->off;
    uint32_t base = 0, keep = 0;
    if (proc_nstamp_fit(p, s->nnode)) {
        // Nodes a written stack passed form a path from the root: walk it
        // while stamped, stamp the rest of this stack's path.
        uint32_t node = 0;
        bool shared = true;
        for (uint32_t i = e->n; i-- > 0;) {
            node = coll_node_child(s, node, f[i]);
            if (!node) { // the tree lacks this path (no memory): whole
                base = keep = 0;
                break;
            }
            if (shared && p->nstamp[node] == p->serial) {
                base = p->nrep[node];
                keep = e->n - i;
            } else {
                shared = false;
                p->nstamp[node] = p->serial;
                p->nrep[node] = id;
            }
        }
    }
    // The frames kept from base had their modules stated with it.
    proc_emit_modules(p, f, e->n - keep);
    p->seg_stacks = true;
    if (base)
        COLL_PUT(p, ht_tf_put_stack_ref(&p->enc, id, base, keep, f, e->n - keep));
    else
        COLL_PUT(p, ht_tf_put_stack(&p->enc, id, f, e->n));
}

/* SITE id (and its STACK) once per segment, before its first use. */
static void
proc_emit_site(coll_proc_t *p, uint32_t id)
{
    coll_sites_t *s = &p->c->sites;
    if (!id || id > s->n || !proc_stamp_new(p, &p->sstamp, &p->sstamp_n, id))
        return;
    const coll_site_t *e = &s->ent[id - 1];
    proc_emit_stack(p, e->stack);
    COLL_PUT(p, ht_tf_put_site(&p->enc, id, e->size, e->stack, e->weight, e->tid, e->flags));
}

/* The stream's time moves to ts (whole ticks; events carry no time). */
static void
proc_tick(coll_proc_t *p, uint64_t ts)
{
    COLL_PUT(p, ht_tf_put_tick(&p->enc, ts));
}

static void
proc_seg_begin(coll_proc_t *p, uint64_t snapshot, uint64_t reason)
{
    // The keyframe is the state after every event written so far, so it
    // carries the stream's time, not the wall clock's: events still
    // pending are at least that old and keep their own times after it.
    uint64_t ts = proc_clock(p);
    if (!p->buf && proc_grow(p) < 0)
        return;
    ht_tf_enc_init_seg(&p->enc, p->buf, p->cap);
    p->feed_off = 0;
    p->seg_fed = 0;
    // A new serial invalidates every stamp at once: no clearing per segment.
    if (++p->serial == 0) {
        memset(p->stamp, 0, p->stamp_n * sizeof *p->stamp);
        memset(p->sstamp, 0, p->sstamp_n * sizeof *p->sstamp);
        memset(p->nstamp, 0, p->nstamp_n * sizeof *p->nstamp);
        for (size_t i = 0; i < p->nmod; i++)
            p->mod[i].stamp = 0;
        p->serial = 1;
    }
    p->seg_stacks = false;
    p->t0 = p->t1 = ts;
    p->kf_ts = ts;
    p->seg_born = coll_now();
    p->seg_snapshot = snapshot;
    p->seg_open = true;

    COLL_PUT(p, ht_tf_put_keyframe(&p->enc, ts, p->seq, snapshot, reason));
    COLL_PUT(p, ht_tf_put_process(&p->enc, ts, (uint64_t)p->pid, (uint64_t)p->ppid, p->flags,
                                  p->sample_rate, p->max_depth, p->exe, p->exe_len, p->argv,
                                  p->argv_len));
    for (size_t i = 0; i < p->nthr; i++)
        if (p->thr[i].alive)
            COLL_PUT(p, ht_tf_put_thread(&p->enc, ts, p->thr[i].tid, p->thr[i].name,
                                         p->thr[i].name_len));
    // The live set as a count per site, in site order.
    uint64_t nlive = 0;
    size_t nsites = p->c->sites.n;
    if (p->live.n && p->kf_count_n <= nsites) {
        free(p->kf_count);
        p->kf_count_n = 0;
        p->kf_count = calloc(nsites + 1, sizeof *p->kf_count);
        if (p->kf_count)
            p->kf_count_n = nsites + 1;
    }
    if (p->live.n && p->kf_count) {
        for (size_t i = 0; i < p->live.cap; i++)
            if (p->live.e[i].ptr && p->live.e[i].site <= nsites)
                p->kf_count[p->live.e[i].site]++;
        for (size_t id = 1; id <= nsites; id++) {
            if (!p->kf_count[id])
                continue;
            proc_emit_site(p, (uint32_t)id);
            COLL_PUT(p, ht_tf_put_live(&p->enc, id, p->kf_count[id]));
            nlive += p->kf_count[id];
            p->kf_count[id] = 0;
        }
    } else if (p->live.n) {
        p->dropped += p->live.n; // no memory to count: the keyframe says so
    }
    for (size_t i = 0; i < p->nthr; i++) {
        const coll_thr_t *t = &p->thr[i];
        if (t->has_totals)
            COLL_PUT(p, ht_tf_put_totals(&p->enc, ts, t->tid, t->allocs, t->alloc_bytes,
                                         t->frees, t->free_bytes));
    }
    COLL_PUT(p, ht_tf_put_keyframe_end(&p->enc, nlive));
    p->kf_len = (size_t)(p->enc.p - p->buf);
}

/* Rss, Anonymous, Shmem (Pss_Shmem is not it), Swap from smaps_rollup, in
 * bytes. */
static bool
proc_read_memstat(coll_proc_t *p)
{
    char path[64], buf[4096];
    coll_proc_path(path, p->pid, "smaps_rollup");
    if (coll_read_small(path, buf, sizeof buf) <= 0)
        return false;
    static const char *keys[] = {"\nRss:", "\nAnonymous:", "\nShmem:", "\nSwap:"};
    uint64_t v[4] = {0, 0, 0, 0};
    bool any = false;
    for (int k = 0; k < 4; k++) {
        const char *s = strstr(buf, keys[k]);
        if (!s)
            continue;
        v[k] = strtoull(s + strlen(keys[k]), NULL, 10) * 1024;
        any = true;
    }
    if (!any)
        return false;
    // smaps_rollup has no Shmem line on most kernels; shared-memory pages
    // then count as file-backed (they are, in tmpfs).
    p->ms.ts = proc_clock(p);
    p->ms.rss = v[0];
    p->ms.anon = v[1];
    p->ms.shmem = v[2];
    p->ms.swap = v[3];
    uint64_t non_file = v[1] + v[2];
    p->ms.file = v[0] > non_file ? v[0] - non_file : 0;
    p->ms_valid = true;
    return true;
}

static void
proc_put_memstat(coll_proc_t *p)
{
    COLL_PUT(p, ht_tf_put_memstat(&p->enc, p->ms.ts, p->ms.rss, p->ms.anon, p->ms.file,
                                  p->ms.shmem, p->ms.swap, p->heap_free, p->heap_total));
    proc_ts(p, p->ms.ts);
}

static void
proc_write_error(coll_proc_t *p, int rc)
{
    if (!p->c->st.write_error)
        p->c->st.write_error = rc;
    if (!p->c->o.quiet)
        coll_say("cannot write trace '", p->path, "': ", strerror(-rc), NULL);
}

/* Close the open segment: MEMSTAT (when asked and readable), LOST when it
 * changed, compress and write. A segment with nothing after its keyframe
 * is not worth a write unless it is a snapshot. */
static void
proc_seg_end(coll_proc_t *p, bool memstat)
{
    if (!p->seg_open)
        return;
    p->seg_open = false;
    p->ms_valid = false;
    if (memstat && proc_read_memstat(p))
        proc_put_memstat(p);
    if (memcmp(p->lost, p->lost_written, sizeof p->lost)) {
        uint64_t ts = proc_clock(p);
        COLL_PUT(p, ht_tf_put_lost(&p->enc, ts, p->lost[0], p->lost[1], p->lost[2]));
        memcpy(p->lost_written, p->lost, sizeof p->lost);
        proc_ts(p, ts);
    }
    if (p->unknown_frees != p->unknown_written) {
        uint64_t ts = proc_clock(p);
        COLL_PUT(p, ht_tf_put_unknown_frees(&p->enc, ts, p->unknown_frees));
        p->unknown_written = p->unknown_frees;
        proc_ts(p, ts);
    }
    if (proc_seg_len(p) == p->kf_len && !p->seg_snapshot)
        return;
    if (p->w) {
        int rc = ht_tfw_put_segment(p->w, p->seq, p->t0, p->t1, p->buf + p->feed_off,
                                    (size_t)(p->enc.p - p->buf) - p->feed_off);
        if (rc < 0 && rc != -ENOMEM) {
            // Sticky in the writer; say it once and stop writing this trace.
            proc_write_error(p, rc);
        } else if (rc == 0) {
            p->c->st.segments++;
        }
    }
    p->seq++;
}

/* A snapshot file P.N (P.PID.N for other processes than the first): the
 * open segment's keyframe plus `tail` records. */
static void
proc_snapshot_file(coll_proc_t *p, const uint8_t *seg, size_t len)
{
    const char *pre = p->c->prefix;
    if (!pre || !p->info)
        return;
    char num[24];
    size_t n = strlen(pre) + 64;
    char *path = malloc(n);
    if (!path)
        return;
    strcpy(path, pre);
    strcat(path, ".");
    if (!p->main) {
        strcat(path, coll_utoa((uint64_t)p->pid, num));
        strcat(path, ".");
    }
    strcat(path, coll_utoa(p->nsnap - 1, num));
    ht_tfw_t *w;
    int rc = ht_tfw_open(&w, path, p->info, 0);
    if (rc == 0) {
        rc = ht_tfw_put_segment(w, p->seq, p->t0, p->t1, seg, len);
        int rc2 = ht_tfw_close(w);
        if (!rc)
            rc = rc2;
    }
    if (rc < 0 && !p->c->o.quiet)
        coll_say("cannot write snapshot '", path, "': ", strerror(-rc), NULL);
    free(path);
}

static void
proc_snapshot(coll_proc_t *p, uint64_t reason)
{
    if (p->state != PROC_ACTIVE)
        return;
    proc_seg_end(p, true);
    bool ms = p->ms_valid;
    coll_memstat_t saved = p->ms;
    p->nsnap++;
    proc_seg_begin(p, p->nsnap, reason);
    if (reason == HT_TF_SNAP_INTERVAL) {
        // Missed slots (a stalled collector) are skipped, not caught up.
        uint64_t now = coll_now(), iv = p->c->o.snapshot_interval_ns;
        p->snap_due_ns += iv;
        if (p->snap_due_ns <= now)
            p->snap_due_ns = now + iv - (now - p->snap_due_ns) % iv;
    }
    p->bytes_since_snap = 0;
    p->c->st.snapshots++;
    if (p->c->prefix && p->buf) {
        // The file gets this moment's MEMSTAT after its keyframe: it has
        // no previous segment to carry it.
        size_t kf = p->kf_len;
        uint8_t *tmp = malloc(kf + 2 * HT_TF_MAX_FIXED_REC);
        if (tmp) {
            memcpy(tmp, p->buf, kf);
            size_t len = kf;
            if (ms) {
                // Continues the keyframe's stream: its time base and tick.
                ht_tf_enc_t e;
                ht_tf_enc_init_seg(&e, tmp + kf, 2 * HT_TF_MAX_FIXED_REC);
                e.last_ts = p->kf_ts;
                ht_tf_put_memstat(&e, saved.ts, saved.rss, saved.anon, saved.file, saved.shmem,
                                  saved.swap, p->heap_free, p->heap_total);
                len = (size_t)(e.p - tmp);
            }
            proc_snapshot_file(p, tmp, len);
            free(tmp);
        }
    }
}

/* Raw bytes the open segment gathers before they go to the compressor:
 * compressing as the segment grows keeps the work beside the program, not
 * after it (a 25 MB segment at level 7 took 0.25 s after realloc_parse
 * --all ended), and the buffer small enough to stay in cache. */
#define COLL_FEED_CHUNK (1u << 20)

/* Hand the bytes gathered to the writer and write the next ones over
 * them, after the keyframe (proc_snapshot reads it at the start of buf). */
static void
proc_seg_feed(coll_proc_t *p)
{
    size_t n = (size_t)(p->enc.p - p->buf) - p->feed_off;
    // A failure is the segment's: put_segment reports it.
    (void)ht_tfw_seg_feed(p->w, p->buf + p->feed_off, n);
    p->seg_fed += n;
    p->enc.p = p->buf + p->kf_len;
    p->feed_off = p->kf_len;
}

/* Roll over to a new segment when the events part is big enough: at least
 * seg_raw_max, and at least twice the keyframe, so a huge live set costs at
 * most a third of the file. */
static void
proc_check_size(coll_proc_t *p)
{
    if (p->w && (size_t)(p->enc.p - p->buf) - p->feed_off >= COLL_FEED_CHUNK)
        proc_seg_feed(p);
    uint64_t ev = proc_seg_len(p) - p->kf_len;
    if (ev >= p->c->o.seg_raw_max && ev >= 2 * (uint64_t)p->kf_len) {
        proc_seg_end(p, true);
        proc_seg_begin(p, 0, HT_TF_SNAP_SEGMENT);
    }
}

/* ---- process image info ---- */

static void
proc_set_image(coll_proc_t *p, const ht_coll_src_info_t *in, bool exec)
{
    p->ppid = in->ppid;
    p->flags = in->flags | (exec ? HT_TF_PROC_EXEC : 0);
    p->sample_rate = in->sample_rate;
    p->max_depth = in->max_depth;
    free(p->exe);
    free(p->argv);
    p->exe = p->argv = NULL;
    p->exe_len = p->argv_len = 0;
    char path[64];
    char *b = malloc(HT_TF_MAX_STR + 1);
    if (!b)
        return;
    // As the image's shim told it (in->exe), else /proc: the process may
    // have exec'd since, or be gone.
    ssize_t n;
    if (in->exe_len) {
        n = in->exe_len <= HT_TF_MAX_STR ? (ssize_t)in->exe_len : HT_TF_MAX_STR;
        memcpy(b, in->exe, (size_t)n);
    } else {
        coll_proc_path(path, p->pid, "exe");
        n = readlink(path, b, HT_TF_MAX_STR);
    }
    if (n > 0) {
        p->exe = malloc((size_t)n + 1);
        if (p->exe) {
            memcpy(p->exe, b, (size_t)n);
            p->exe[n] = 0;
            p->exe_len = (uint32_t)n;
        }
    }
    if (in->argv_len) {
        n = in->argv_len <= HT_TF_MAX_STR ? (ssize_t)in->argv_len : HT_TF_MAX_STR;
        memcpy(b, in->argv, (size_t)n);
    } else {
        coll_proc_path(path, p->pid, "cmdline");
        n = coll_read_small(path, b, HT_TF_MAX_STR + 1);
    }
    if (n > 0) {
        if (b[n - 1] == 0)
            n--; // NUL-separated, without the final NUL
        p->argv = malloc((size_t)n + 1);
        if (p->argv) {
            memcpy(p->argv, b, (size_t)n);
            p->argv[n] = 0;
            p->argv_len = (uint32_t)n;
        }
    }
    free(b);
}

static void
proc_reset_image(coll_proc_t *p)
{
    coll_live_free(&p->live);
    for (size_t i = 0; i < p->nthr; i++)
        free(p->thr[i].name);
    p->nthr = 0;
    for (size_t i = 0; i < p->nmod; i++)
        free(p->mod[i].path);
    p->nmod = 0;
    p->heap_free = p->heap_total = 0;
    p->shim_exit = false;
}

static void
proc_fill_info(coll_proc_t *p)
{
    ht_file_info_t *fi = p->info;
    memset(fi, 0, sizeof *fi);
    fi->version = HT_TF_VERSION;
    fi->flags = (uint32_t)p->flags;
    fi->max_size = p->c->o.max_size;
    fi->start_realtime_ns = coll_realtime();
    fi->start_mono_ns = coll_now();
    fi->pid = (uint64_t)p->pid;
    fi->sample_rate = p->sample_rate;
    fi->max_depth = (uint32_t)p->max_depth;
    if (p->exe) {
        size_t n = p->exe_len < sizeof fi->exe - 1 ? p->exe_len : sizeof fi->exe - 1;
        memcpy(fi->exe, p->exe, n);
    }
    if (p->argv) {
        size_t n = p->argv_len < sizeof fi->argv - 1 ? p->argv_len : sizeof fi->argv - 1;
        memcpy(fi->argv, p->argv, n);
        for (size_t i = 0; i < n; i++)
            if (!fi->argv[i])
                fi->argv[i] = ' ';
    }
    if (gethostname(fi->host, sizeof fi->host - 1) < 0)
        fi->host[0] = 0;
}

/* Open the trace and write the first keyframe: the process is traced from
 * here on. */
static void
proc_start(coll_proc_t *p)
{
    ht_coll_t *c = p->c;
    p->state = PROC_ACTIVE;
    p->snap_due_ns = coll_now() + c->o.snapshot_interval_ns;
    // The first keyframe is the start of the image: events recorded before
    // the collector got here keep their own times after it.
    if (!p->clock && p->src && p->src->start_ns)
        p->clock = p->src->start_ns;
    size_t n = strlen(c->output) + 32;
    p->path = malloc(n);
    p->info = malloc(sizeof *p->info);
    if (p->path && p->info) {
        strcpy(p->path, c->output);
        if (!p->main) {
            char num[24];
            strcat(p->path, ".");
            strcat(p->path, coll_utoa((uint64_t)p->pid, num));
        }
        proc_fill_info(p);
        int rc = ht_tfw_open(&p->w, p->path, p->info, c->o.max_size);
        if (rc < 0) {
            p->w = NULL;
            proc_write_error(p, rc);
        } else {
            // In a program's own process this runs on its thread, before
            // main: the collector thread warms it instead (coll_thread_main).
            if (!c->self_mode)
                ht_tfw_warm(p->w);
            c->st.files++;
            if (p->main && !c->main_path)
                c->main_path = p->path;
        }
    }
    proc_seg_begin(p, 0, HT_TF_SNAP_SEGMENT);
}

static coll_proc_t *
coll_proc_find(ht_coll_t *c, pid_t pid)
{
    for (coll_proc_t *p = c->procs; p; p = p->next)
        if (p->pid == pid && p->state != PROC_DONE)
            return p;
    return NULL;
}

static bool
coll_take_exit(ht_coll_t *c, pid_t pid, int *status)
{
    for (size_t i = 0; i < c->nexits; i++) {
        if (c->exits[i].pid == pid) {
            *status = c->exits[i].status;
            c->exits[i] = c->exits[--c->nexits];
            return true;
        }
    }
    return false;
}

static bool
coll_has_exit(const ht_coll_t *c, pid_t pid)
{
    for (size_t i = 0; i < c->nexits; i++)
        if (c->exits[i].pid == pid)
            return true;
    return false;
}

static void src_release(ht_coll_t *c, ht_coll_src_t *s);
static void src_drain(ht_coll_t *c, ht_coll_src_t *s);
static void proc_process(coll_proc_t *p, uint64_t until);

/* The program ended without its exit handler (killed, or a crash): its
 * TOTALS are those of its last periodic write. With --all every event
 * reached us, so what we counted of them is at least as much: the
 * keyframe of the EXIT segment states the larger. Either way the counts
 * are lower bounds, which EXIT says (COUNTS_CUT, proc_finish). */
static void
proc_counts_from_events(coll_proc_t *p)
{
    if (!(p->flags & HT_TF_PROC_ALL))
        return;
    for (size_t i = 0; i < p->nthr; i++) {
        coll_thr_t *t = &p->thr[i];
        if (!t->ev_allocs && !t->ev_frees)
            continue;
        t->has_totals = true;
        if (t->ev_allocs > t->allocs)
            t->allocs = t->ev_allocs;
        if (t->ev_alloc_bytes > t->alloc_bytes)
            t->alloc_bytes = t->ev_alloc_bytes;
        if (t->ev_frees > t->frees)
            t->frees = t->ev_frees;
        t->free_bytes = t->freed_bytes;
    }
}

/* The process is gone (or the in-process collector stops): close the open
 * segment, then the EXIT snapshot: keyframe (the live set = leaks), EXIT. */
static void
proc_finish(coll_proc_t *p, bool alive)
{
    ht_coll_t *c = p->c;
    if (p->state == PROC_WAIT_FORK)
        proc_start(p);
    // Nothing more can arrive: every pending record is written now.
    proc_process(p, UINT64_MAX);
    uint64_t now = coll_now();
    if (now > p->clock)
        p->clock = now;
    uint64_t how = HT_TF_EXIT_UNKNOWN, code = 0;
    int status;
    if (coll_take_exit(c, p->pid, &status)) {
        if (WIFEXITED(status)) {
            how = HT_TF_EXIT_STATUS;
            code = (uint64_t)WEXITSTATUS(status);
        } else if (WIFSIGNALED(status)) {
            how = HT_TF_EXIT_SIGNAL;
            code = (uint64_t)WTERMSIG(status);
        }
    } else if (p->shim_exit) {
        how = p->shim_how & HT_TF_EXIT_HOW_MASK;
        code = p->shim_code;
    }
    if (!p->shim_exit) {
        proc_counts_from_events(p);
        how |= HT_TF_EXIT_COUNTS_CUT;
    }
    proc_seg_end(p, alive);
    p->nsnap++;
    proc_seg_begin(p, p->nsnap, HT_TF_SNAP_EXIT);
    uint64_t ts = proc_clock(p);
    COLL_PUT(p, ht_tf_put_exit(&p->enc, ts, how, code));
    c->st.snapshots++;
    if (c->prefix && p->buf)
        proc_snapshot_file(p, p->buf, (size_t)(p->enc.p - p->buf));
    proc_seg_end(p, false);
    if (p->w) {
        c->st.bytes += ht_tfw_bytes_written(p->w);
        int rc = ht_tfw_close(p->w);
        p->w = NULL;
        if (rc < 0 && !c->st.write_error)
            c->st.write_error = rc;
    }
    p->state = PROC_DONE;
    if (p->src) {
        src_release(c, p->src);
        p->src = NULL;
    }
    proc_reset_image(p);
    free(p->buf);
    p->buf = NULL;
    p->cap = 0;
    free(p->pev);
    free(p->pev_tmp);
    free(p->arena);
    p->pev = p->pev_tmp = NULL;
    p->npev = p->cap_pev = p->cap_pev_tmp = 0;
    p->arena = NULL;
    p->arena_n = p->arena_cap = 0;
    free(p->stamp);
    p->stamp = NULL;
    p->stamp_n = 0;
    free(p->sstamp);
    p->sstamp = NULL;
    p->sstamp_n = 0;
    free(p->nstamp);
    free(p->nrep);
    p->nstamp = p->nrep = NULL;
    p->nstamp_n = 0;
    free(p->kf_count);
    p->kf_count = NULL;
    p->kf_count_n = 0;
}

/* ---- fork ---- */

static void
coll_fork(ht_coll_t *c, coll_proc_t *parent, pid_t child)
{
    coll_proc_t *ch = coll_proc_find(c, child);
    coll_liveset_t copy;
    if (coll_live_copy(&c->sites, &copy, &parent->live) < 0)
        return;
    if (ch && ch->state == PROC_WAIT_FORK) {
        coll_live_free(&ch->live);
        ch->live = copy;
        proc_start(ch);
        return;
    }
    if (ch) { // already traced without it (waited too long): too late
        coll_live_free(&copy);
        return;
    }
    coll_pending_t *pe = calloc(1, sizeof *pe);
    if (!pe) {
        coll_live_free(&copy);
        return;
    }
    pe->child = child;
    pe->since = coll_now();
    pe->live = copy;
    pe->next = c->pending;
    c->pending = pe;
}

static bool
coll_pending_take(ht_coll_t *c, pid_t child, coll_liveset_t *out)
{
    for (coll_pending_t **pp = &c->pending; *pp; pp = &(*pp)->next) {
        coll_pending_t *pe = *pp;
        if (pe->child == child) {
            *out = pe->live;
            *pp = pe->next;
            free(pe);
            return true;
        }
    }
    return false;
}

/* ---- records ---- */

#define SRC_IDMAP_LG 10
#define SRC_IDMAP_LEAF (1u << SRC_IDMAP_LG)

static inline uint32_t
src_idmap_get(const ht_coll_src_t *s, uint64_t id)
{
    uint64_t l = id >> SRC_IDMAP_LG;
    return l < s->idmap_nleaf && s->idmap[l] ? s->idmap[l][id & (SRC_IDMAP_LEAF - 1)] : 0;
}

/* Map source id (< 2^32) to cid; without memory the id stays unknown,
 * and is looked up again the next time. */
static void
src_idmap_set(ht_coll_src_t *s, uint64_t id, uint32_t cid)
{
    uint64_t l = id >> SRC_IDMAP_LG;
    if (l >= s->idmap_nleaf) {
        size_t nn = s->idmap_nleaf ? s->idmap_nleaf : 64;
        while (nn <= l)
            nn *= 2;
        uint32_t **nm = realloc(s->idmap, nn * sizeof *nm);
        if (!nm)
            return;
        memset(nm + s->idmap_nleaf, 0, (nn - s->idmap_nleaf) * sizeof *nm);
        s->idmap = nm;
        s->idmap_nleaf = nn;
    }
    if (!s->idmap[l] && !(s->idmap[l] = calloc(SRC_IDMAP_LEAF, sizeof **s->idmap)))
        return;
    s->idmap[l][id & (SRC_IDMAP_LEAF - 1)] = cid;
}

static uint32_t
src_stack(ht_coll_t *c, ht_coll_src_t *s, uint64_t id)
{
    if (!id || id > UINT32_MAX)
        return 0;
    uint32_t known = src_idmap_get(s, id);
    if (known)
        return known;
    uint32_t n = 0;
    const uint64_t *f = s->is_ring ? ht_ring_stack_get(&s->ring, id, &n)
                                   : (s->stack_fn ? s->stack_fn(s->stack_ctx, id, &n) : NULL);
    if (!f)
        return 0;
    uint32_t cid = coll_stk_intern(&c->stk, f, n);
    if (cid)
        src_idmap_set(s, id, cid);
    return cid;
}

/* The thread's entry, or NULL, when it is not the last one asked for. */
static __attribute__((noinline)) coll_thr_t *
proc_thr_search(coll_proc_t *p, uint64_t tid)
{
    for (size_t i = p->nthr; i-- > 0;)
        if (p->thr[i].tid == tid) {
            p->cur_thr = i;
            return &p->thr[i];
        }
    return NULL;
}

/* The thread's entry, or NULL. One compare, inline, when it is the last
 * one asked for (events come in runs of one thread): called two or three
 * times an event, out of line it was 4% of the collector's instructions
 * on realloc_parse --all. */
static inline coll_thr_t *
proc_thr_find(coll_proc_t *p, uint64_t tid)
{
    if (__builtin_expect(p->cur_thr < p->nthr && p->thr[p->cur_thr].tid == tid, 1))
        return &p->thr[p->cur_thr];
    return proc_thr_search(p, tid);
}

static __attribute__((noinline)) coll_thr_t *proc_thr_new(coll_proc_t *p, uint64_t tid);

/* The thread's entry, made when new; NULL without memory. */
static inline coll_thr_t *
proc_thr(coll_proc_t *p, uint64_t tid)
{
    coll_thr_t *found = proc_thr_find(p, tid);
    return found ? found : proc_thr_new(p, tid);
}

/* A new thread's entry (proc_thr_find found none); NULL without memory. */
static coll_thr_t *
proc_thr_new(coll_proc_t *p, uint64_t tid)
{
    if (p->nthr == p->thr_cap) {
        size_t nc = p->thr_cap ? p->thr_cap * 2 : 16;
        coll_thr_t *nt = realloc(p->thr, nc * sizeof *nt);
        if (!nt)
            return NULL;
        p->thr = nt;
        p->thr_cap = nc;
    }
    coll_thr_t *t = &p->thr[p->nthr++];
    memset(t, 0, sizeof *t);
    t->tid = tid;
    return t;
}

/* A module the process just reported (NULL: none). It is written before
 * the first stack of the segment that has a frame in it -- unless the
 * segment stated stacks before it came: some of those may be in it (a
 * forked child's inherited keyframe precedes the modules its shim sends;
 * a plugin's constructors allocate inside dlopen, before dlopen returns
 * and the shim reports the plugin), so it is written now. */
static void
proc_mod_state(coll_proc_t *p, coll_mod_t *m)
{
    if (m && p->seg_stacks && m->stamp != p->serial)
        proc_mod_write(p, m);
}

static coll_mod_t *
proc_mod_add(coll_proc_t *p, const ht_tf_rec_t *r)
{
    coll_mod_t *m = NULL;
    for (size_t i = 0; i < p->nmod; i++)
        if (p->mod[i].id == r->id)
            m = &p->mod[i];
    if (!m) {
        if (p->nmod == p->mod_cap) {
            size_t nc = p->mod_cap ? p->mod_cap * 2 : 32;
            coll_mod_t *nm = realloc(p->mod, nc * sizeof *nm);
            if (!nm)
                return NULL;
            p->mod = nm;
            p->mod_cap = nc;
        }
        m = &p->mod[p->nmod++];
        memset(m, 0, sizeof *m);
    }
    free(m->path);
    m->id = r->id;
    m->bias = r->bias;
    m->path = malloc(r->str_len + 1u);
    m->path_len = m->path ? r->str_len : 0;
    if (m->path) {
        memcpy(m->path, r->str, r->str_len);
        m->path[r->str_len] = 0;
    }
    m->bid_len = r->bytes_len <= HT_TF_MAX_BUILD_ID ? r->bytes_len : 0;
    if (m->bid_len) // r->bytes is NULL for an empty build-id: memcpy(x, NULL, 0) is undefined
        memcpy(m->bid, r->bytes, m->bid_len);
    m->nsegs = r->nsegs <= HT_TF_MAX_SEGS ? r->nsegs : 0;
    memcpy(m->segs, r->segs, m->nsegs * sizeof *m->segs);
    ht_tf_segs_range(m->bias, m->segs, m->nsegs, &m->lo, &m->hi);
    m->stamp = 0; // (re)stated before the next stack in it
    return m;
}

/* Forgets module id; true when a segment had stated it. */
static bool
proc_mod_del(coll_proc_t *p, uint64_t id)
{
    for (size_t i = 0; i < p->nmod; i++) {
        if (p->mod[i].id == id) {
            bool ever = p->mod[i].ever;
            free(p->mod[i].path);
            p->mod[i] = p->mod[--p->nmod];
            return ever;
        }
    }
    return false;
}

static void
proc_image_from_rec(coll_proc_t *p, const ht_tf_rec_t *r)
{
    p->ppid = (pid_t)r->ppid;
    p->flags = r->flags;
    p->sample_rate = r->sample_rate;
    p->max_depth = r->max_depth;
    char *e = malloc(r->str_len + 1u), *a = malloc(r->str2_len + 1u);
    if (!e || !a) {
        free(e);
        free(a);
        return;
    }
    memcpy(e, r->str, r->str_len);
    e[r->str_len] = 0;
    memcpy(a, r->str2, r->str2_len);
    a[r->str2_len] = 0;
    free(p->exe);
    free(p->argv);
    p->exe = e;
    p->exe_len = r->str_len;
    p->argv = a;
    p->argv_len = r->str2_len;
}

/* ---- ordering: consumed records wait, then go out in time order ----
 *
 * The file is ONE stream per process, in time order, in which a free names
 * the allocation it frees (EV_FREE back-references), so the collector must
 * decide, for every free, which allocation it frees: the order in which it
 * applies records must be the order in which they happened. The ring gives
 * each thread's records in order, but threads one after another. So every
 * poll (src_consume) works like this:
 *
 *   1. T = CLOCK_MONOTONIC now, taken BEFORE any buffer is scanned;
 *   2. consume everything the ring holds into the pending array;
 *   3. apply, in timestamp order (stable: a thread's own records are in
 *      order already), the pending records with ts < T; the others wait
 *      for the next poll (at the process's end everything is applied).
 *
 * Why this is exact when thread B reuses an address X that thread A freed:
 * the shim records a free (takes its ts, then commits the record) BEFORE it
 * calls the real free, and an alloc AFTER the real malloc returned. So A's
 * FREE of X was committed before B's malloc could return X, i.e. before
 * B's ts_b. If B's ALLOC is applied in this poll, ts_b < T, so A's FREE
 * was committed before T, i.e. before the scan started: the scan found it
 * (ht_ring_consume reads every buffer's committed length after T), and it
 * sorts before B's ALLOC since its ts < ts_b. If ts_b >= T, B's ALLOC
 * waits, and A's FREE is applied no later than it.
 */

/* Ring bytes read per scan (ring.h): what a scan reads waits in the
 * pending array until it is applied, so without a bound a program that
 * outruns the collector had the collector hold its whole ring backlog
 * (32 MiB of ring, 56 bytes a pending record: churn_mt --all 4.2M records,
 * 240 MB). */
#define COLL_SCAN_BUDGET (512u << 10)

typedef struct coll_pev_s {
    uint64_t ts, ptr, size, weight, tid;
    uint32_t stack;    /* collector stack id (mapped when consumed) */
    uint32_t off, len; /* other kinds: their encoding in the arena */
    uint8_t kind;
} coll_pev_t;

/* The next free pending slot, or NULL (no memory). The caller fills it
 * in place: a coll_pev_t built on the stack and copied was stored as
 * words and reloaded as 16-byte vectors, which the stores cannot forward
 * to -- four stalls a record, a quarter of the collector's time on
 * realloc_parse --all. */
static coll_pev_t *
proc_pev_slot(coll_proc_t *p)
{
    if (p->npev == p->cap_pev) {
        size_t nc = p->cap_pev ? p->cap_pev * 2 : 4096;
        coll_pev_t *n = realloc(p->pev, nc * sizeof *n);
        if (!n)
            return NULL;
        p->pev = n;
        p->cap_pev = nc;
    }
    return &p->pev[p->npev];
}

/* Queue an allocation, or a free (size, weight and stack 0), filled in
 * place (proc_pev_slot). False when there is no memory for it. */
static bool
proc_pend_ev(coll_proc_t *p, uint8_t kind, uint64_t ts, uint64_t tid, uint64_t ptr,
             uint64_t size, uint64_t weight, uint32_t stack)
{
    coll_pev_t *v = proc_pev_slot(p);
    if (!v)
        return false;
    v->ts = ts;
    v->ptr = ptr;
    v->size = size;
    v->weight = weight;
    v->tid = tid;
    v->stack = stack;
    v->off = v->len = 0;
    v->kind = kind;
    p->npev++;
    return true;
}

/* Queue one consumed record (rec->tid set). Stack definitions are applied
 * at once: they are immutable and the records after them need them. */
static void
proc_pend(coll_proc_t *p, ht_coll_src_t *s, const ht_tf_rec_t *r)
{
    ht_coll_t *c = p->c;
    c->st.events++;
    coll_pev_t *v;
    switch (r->kind) {
    case HT_TF_ALLOC:
    case HT_TF_ALLOC_W:
        if (proc_pend_ev(p, (uint8_t)r->kind, r->ts, r->tid, r->ptr, r->size, r->weight,
                         src_stack(c, s, r->stack)))
            return;
        break;
    case HT_TF_FREE:
        if (proc_pend_ev(p, HT_TF_FREE, r->ts, r->tid, r->ptr, 0, 0, 0))
            return;
        break;
    case HT_TF_REALLOC:
        // The shim's FREE and ALLOC of one realloc under --all, in one
        // record: pended as the two events they are, at their own times.
        c->st.events++; // two events, as the shim counts them
        if (proc_pend_ev(p, HT_TF_FREE, r->ts, r->tid, r->from, 0, 0, 0) &&
            proc_pend_ev(p, HT_TF_ALLOC, r->ts + r->later, r->tid, r->ptr, r->size,
                         HT_TF_WEIGHT_ONE, src_stack(c, s, r->stack)))
            return;
        break;
    case HT_TF_STACK: {
        // Stacks normally live in the ring's table; a source that sends
        // them inline gets the same treatment.
        uint32_t cid = coll_stk_intern(&c->stk, r->frames, r->nframes);
        if (cid && r->id && r->id < (1u << 30))
            src_idmap_set(s, r->id, cid);
        return;
    }
    case HT_TF_MODULE:
    case HT_TF_UNMODULE:
    case HT_TF_THREAD:
    case HT_TF_THREAD_END:
    case HT_TF_TOTALS:
    case HT_TF_PROCESS:
    case HT_TF_FORK:
    case HT_TF_EXIT:
    case HT_TF_MEMSTAT:
    case HT_TF_SNAPSHOT_REQ:
    case HT_TF_LOST: {
        // Kept encoded (strings point into the ring, which is reused):
        // from a zero base, so the "d" field is the absolute time.
        if (p->arena_cap - p->arena_n < HT_TF_MAX_FIXED_REC + 3 * HT_TF_MAX_STR + 1024) {
            size_t nc = p->arena_cap ? p->arena_cap * 2 : (64u << 10);
            uint8_t *na = realloc(p->arena, nc);
            if (!na) {
                p->dropped++;
                return;
            }
            p->arena = na;
            p->arena_cap = nc;
        }
        if (p->arena_n > UINT32_MAX / 2) {
            p->dropped++;
            return;
        }
        if (!(v = proc_pev_slot(p)))
            break;
        ht_tf_enc_t e;
        ht_tf_enc_init(&e, p->arena + p->arena_n, p->arena_cap - p->arena_n);
        if (ht_tf_put_rec(&e, r) < 0) {
            p->dropped++;
            return;
        }
        *v = (coll_pev_t){.ts = r->ts, .tid = r->tid, .kind = (uint8_t)r->kind};
        v->off = (uint32_t)p->arena_n;
        v->len = (uint32_t)(e.p - (p->arena + p->arena_n));
        p->arena_n += v->len;
        p->npev++;
        return;
    }
    default:
        c->st.bad_records++;
        return;
    }
    p->dropped++; // no memory for the pending slot
}

/* Stable sort of the pending records by ts. They arrive as sorted runs
 * (what waited from the last poll, then one run per thread), so this is a
 * natural merge sort: O(n log runs), O(n) when already in order. */
static int
proc_pev_sort(coll_proc_t *p)
{
    size_t n = p->npev, i = 1;
    while (i < n && p->pev[i - 1].ts <= p->pev[i].ts)
        i++;
    if (i >= n)
        return 0;
    if (p->cap_pev_tmp < n) {
        coll_pev_t *t = realloc(p->pev_tmp, n * sizeof *t);
        if (!t)
            return -ENOMEM;
        p->pev_tmp = t;
        p->cap_pev_tmp = n;
    }
    coll_pev_t *a = p->pev, *b = p->pev_tmp;
    for (;;) {
        size_t out = 0, lo = 0, runs = 0;
        while (lo < n) {
            size_t mid = lo + 1;
            while (mid < n && a[mid - 1].ts <= a[mid].ts)
                mid++;
            size_t hi = mid;
            if (mid < n) {
                hi = mid + 1;
                while (hi < n && a[hi - 1].ts <= a[hi].ts)
                    hi++;
            }
            // Ties take the left run first: consumption order is kept.
            size_t x = lo, y = mid;
            while (x < mid && y < hi)
                b[out++] = a[y].ts < a[x].ts ? a[y++] : a[x++];
            while (x < mid)
                b[out++] = a[x++];
            while (y < hi)
                b[out++] = a[y++];
            lo = hi;
            runs++;
        }
        coll_pev_t *t = a;
        a = b;
        b = t;
        if (runs <= 1)
            break;
    }
    if (a != p->pev) {
        coll_pev_t *t = p->pev;
        size_t cp = p->cap_pev;
        p->pev = p->pev_tmp;
        p->cap_pev = p->cap_pev_tmp;
        p->pev_tmp = t;
        p->cap_pev_tmp = cp;
    }
    return 0;
}

static void proc_apply(coll_proc_t *p, const coll_pev_t *v);

/* How many events ahead proc_process starts loading a live-set slot:
 * enough to cover a miss (~100 ns) with the work of the events between. */
#define PROC_PREFETCH 8

/* Apply the pending records with ts < until, in time order; keep the rest
 * (their arena bytes compacted to the front). */
static void
proc_process(coll_proc_t *p, uint64_t until)
{
    if (!p->npev) {
        p->arena_n = 0;
        if (until != UINT64_MAX && until > p->clock)
            p->clock = until;
        return;
    }
    if (proc_pev_sort(p) < 0) {
        // No memory to sort: apply in consumption order, which is right
        // for one thread and at worst misattributes a reused address.
        until = UINT64_MAX;
    }
    size_t i = 0, n = p->npev;
    // p->npev may be reset by proc_finish below us only through this
    // function; apply never consumes, so the array is stable here.
    for (; i < n && p->pev[i].ts < until && p->state == PROC_ACTIVE; i++) {
        // The live set is a hash of every live block (millions, for a
        // python3): nearly each lookup is a cache miss. Start the one
        // PROC_PREFETCH events ahead now, so that it overlaps this work.
        if (i + PROC_PREFETCH < n && p->live.cap) {
            uint64_t ptr = p->pev[i + PROC_PREFETCH].ptr;
            if (ptr)
                __builtin_prefetch(&p->live.e[coll_live_home(ptr, p->live.cap - 1)]);
        }
        proc_apply(p, &p->pev[i]);
    }
    if (i < n && p->state == PROC_ACTIVE) {
        // Keep the tail; move its arena bytes to the front, in order.
        size_t an = 0;
        for (size_t k = i; k < n; k++) {
            coll_pev_t v = p->pev[k];
            if (v.len) {
                memmove(p->arena + an, p->arena + v.off, v.len);
                v.off = (uint32_t)an;
                an += v.len;
            }
            p->pev[k - i] = v;
        }
        p->npev = n - i;
        p->arena_n = an;
    } else {
        p->npev = 0;
        p->arena_n = 0;
    }
    if (until != UINT64_MAX && until > p->clock)
        p->clock = until;
}

/* Free the live block l (at ptr) in thread tid: EV_FREE_TMP when it is the
 * thread's last allocation, else EV_FREE. */
static void
proc_free_block(coll_proc_t *p, const coll_live_t *l, uint64_t tid)
{
    coll_thr_t *t = proc_thr(p, tid);
    // Sampled: the allocations between two samples are not seen, so "no
    // other allocation in between" cannot be known; the file says nothing.
    bool temp = t && t->has_last && t->last_ptr == l->ptr && (p->flags & HT_TF_PROC_ALL);
    if (t)
        t->has_last = false;
    const coll_sites_t *s = &p->c->sites;
    uint64_t atid = l->site && l->site <= s->n ? s->ent[l->site - 1].tid : tid;
    if (atid != tid) {
        // Another thread's block: it is not that thread's "last" any more
        // (the address may come back to it as a new block).
        coll_thr_t *a = proc_thr_find(p, atid);
        if (a && a->has_last && a->last_ptr == l->ptr)
            a->has_last = false;
    }
    COLL_PUT(p, ht_tf_put_ev_free(&p->enc, l->site, temp));
}

/* An allocation at ptr. An address still live means its free was lost
 * (--lossy) or never recorded: the old block is freed first, so the
 * stream stays a consistent heap. */
static void
proc_apply_alloc(coll_proc_t *p, const coll_pev_t *v)
{
    uint32_t site =
        coll_site_intern(&p->c->sites, v->size, v->stack, v->weight, v->tid, 0, p->mod_gen);
    if (!site) {
        p->dropped++; // no memory for a new site
        return;
    }
    proc_emit_site(p, site);
    proc_tick(p, v->ts);
    coll_live_t *e = v->ptr ? coll_live_slot(&p->live, v->ptr) : NULL;
    if (e && e->ptr) {
        p->dup_allocs++;
        proc_free_block(p, e, v->tid);
    }
    COLL_PUT(p, ht_tf_put_ev_alloc(&p->enc, site));
    if (e) {
        if (!e->ptr)
            p->live.n++;
        *e = (coll_live_t){.ptr = v->ptr, .site = site};
    } else if (v->ptr) {
        p->dropped++; // no memory to remember it: its free cannot be matched
    }
    coll_thr_t *t = proc_thr(p, v->tid);
    if (t) {
        t->last_ptr = v->ptr;
        t->has_last = true;
        t->ev_allocs++;
        t->ev_alloc_bytes += v->size;
    }
    // Estimated bytes: size * weight, in the weight's fixed point.
    p->bytes_since_snap +=
        (uint64_t)(((unsigned __int128)v->size * v->weight) >> HT_TF_WEIGHT_SHIFT);
}

static void
proc_apply(coll_proc_t *p, const coll_pev_t *v)
{
    ht_coll_t *c = p->c;
    if (v->ts > p->clock)
        p->clock = v->ts;
    switch (v->kind) {
    case HT_TF_ALLOC:
    case HT_TF_ALLOC_W:
        proc_apply_alloc(p, v);
        break;
    case HT_TF_FREE: {
        coll_live_t *l = coll_live_get(&p->live, v->ptr);
        if (!l) {
            // Never recorded: nothing in the file to free. Sampled, the
            // shim sends only frees of pointers it recorded, so this one's
            // allocation was lost; with --all it sends every free that
            // might be one (rec.c), and most of these are blocks allocated
            // before recording began or by the shim itself.
            if (!(p->flags & HT_TF_PROC_ALL))
                p->unknown_frees++;
            return;
        }
        if (p->flags & HT_TF_PROC_ALL) {
            const coll_sites_t *s = &c->sites;
            coll_thr_t *t = proc_thr(p, v->tid);
            if (t && l->site && l->site <= s->n)
                t->freed_bytes += s->ent[l->site - 1].size;
            if (t)
                t->ev_frees++;
        }
        proc_tick(p, v->ts);
        proc_free_block(p, l, v->tid);
        coll_live_del(&p->live, v->ptr);
        break;
    }
    default: {
        ht_tf_dec_t d;
        ht_tf_rec_t rr, *r = &rr;
        ht_tf_dec_init(&d, p->arena + v->off, v->len);
        if (ht_tf_dec_next(&d, r) != 1) {
            c->st.bad_records++;
            return;
        }
        r->tid = v->tid;
        switch (r->kind) {
        case HT_TF_MODULE:
            p->mod_gen++;
            proc_mod_state(p, proc_mod_add(p, r));
            break;
        case HT_TF_UNMODULE:
            p->mod_gen++;
            if (proc_mod_del(p, r->id))
                COLL_PUT(p, ht_tf_put_rec(&p->enc, r));
            break;
        case HT_TF_THREAD: {
            coll_thr_t *t = proc_thr(p, r->tid);
            if (t) {
                char *nm = malloc(r->str_len + 1u);
                if (nm) {
                    memcpy(nm, r->str, r->str_len);
                    nm[r->str_len] = 0;
                    free(t->name);
                    t->name = nm;
                    t->name_len = r->str_len;
                }
                t->alive = true;
            }
            COLL_PUT(p, ht_tf_put_rec(&p->enc, r));
            break;
        }
        case HT_TF_THREAD_END: {
            coll_thr_t *t = proc_thr(p, r->tid);
            if (t)
                t->alive = false;
            COLL_PUT(p, ht_tf_put_rec(&p->enc, r));
            break;
        }
        case HT_TF_TOTALS: {
            coll_thr_t *t = proc_thr(p, r->tid);
            if (t) {
                t->has_totals = true;
                t->allocs = r->allocs;
                t->alloc_bytes = r->alloc_bytes;
                t->frees = r->frees;
                if (p->flags & HT_TF_PROC_ALL)
                    r->free_bytes = t->freed_bytes;
                t->free_bytes = r->free_bytes;
            }
            COLL_PUT(p, ht_tf_put_rec(&p->enc, r));
            break;
        }
        case HT_TF_PROCESS:
            proc_image_from_rec(p, r);
            COLL_PUT(p, ht_tf_put_rec(&p->enc, r));
            break;
        case HT_TF_FORK:
            COLL_PUT(p, ht_tf_put_rec(&p->enc, r));
            proc_ts(p, r->ts);
            coll_fork(c, p, (pid_t)r->child);
            break;
        case HT_TF_EXIT:
            // The collector writes EXIT itself, with waitpid's status when
            // it has one; the shim's guess is the fallback.
            p->shim_exit = true;
            p->shim_how = r->how;
            p->shim_code = r->code;
            return;
        case HT_TF_MEMSTAT:
            // The shim knows the allocator's numbers (mallinfo2), the
            // collector the kernel's: they meet in the next MEMSTAT.
            p->heap_free = r->heap_free;
            p->heap_total = r->heap_total;
            return;
        case HT_TF_SNAPSHOT_REQ:
            proc_ts(p, r->ts);
            proc_snapshot(p, r->reason ? r->reason : HT_TF_SNAP_API);
            return;
        default:
            return; // LOST: the ring header's counters are the truth
        }
    }
    }
    proc_ts(p, v->ts);
    if (c->o.snapshot_every && p->bytes_since_snap >= c->o.snapshot_every)
        proc_snapshot(p, HT_TF_SNAP_BYTES);
    else
        proc_check_size(p);
}

static int
src_rec_cb(void *ctx, const ht_tf_rec_t *r)
{
    ht_coll_src_t *s = ctx;
    if (s->proc && s->proc->state == PROC_ACTIVE)
        proc_pend(s->proc, s, r);
    return 0;
}

/* ---- sources ---- */

static void
src_free(ht_coll_src_t *s)
{
    if (s->is_ring) {
        ht_ring_consumer_fini(&s->cons);
        ht_ring_unmap(&s->ring);
    }
    for (size_t l = 0; l < s->idmap_nleaf; l++)
        free(s->idmap[l]);
    free(s->idmap);
    free(s->path);
    free(s->exe);
    free(s->argv);
    free(s);
}

static void
src_release(ht_coll_t *c, ht_coll_src_t *s)
{
    for (ht_coll_src_t **pp = &c->srcs; *pp; pp = &(*pp)->next) {
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    }
    if (s->path)
        unlink(s->path); // frees the shared memory once the program is gone
    if (s->proc && s->proc->src == s)
        s->proc->src = NULL;
    src_free(s);
}

/* Take the ring's counters into the process's cumulative LOST figures. */
static void
src_counters(ht_coll_src_t *s)
{
    coll_proc_t *p = s->proc;
    if (!s->is_ring || !p)
        return;
    ht_ring_hdr_t *h = s->ring.hdr;
    p->lost[0] = p->lost_base[0] + atomic_load(&h->lost_events);
    p->lost[1] = p->lost_base[1] + atomic_load(&h->waits);
    p->lost[2] = p->lost_base[2] + atomic_load(&h->wait_ns);
}

/* Everything committed so far, plus the outside snapshot requests. */
static long
src_consume(ht_coll_t *c, ht_coll_src_t *s)
{
    if (!s->is_ring)
        return 0;
    long n = 0, k = 0;
    uint32_t busy = 0;
    // Each scan of the ring applies what it may at once, with a horizon
    // taken before that scan (see "ordering" above: one ht_ring_consume
    // reads every buffer's committed records, so the argument holds scan
    // by scan). Applying only after all the scans had made every record
    // of a fast program wait: the scans ran back to back for as long as
    // the program kept producing, and alloc_loop --all queued its whole
    // run, 2M records (112 MB of page faults), before the first was
    // applied. Bounded: a program producing as fast as we read must not
    // starve the other rings and the timers.
    for (int i = 0; i < 64; i++) {
        uint64_t horizon = coll_now();
        k = ht_ring_consume(&s->cons, src_rec_cb, s);
        busy = s->cons.busy;
        if (k <= 0 && i > 0)
            break;
        n += k > 0 ? k : 0;
        // A thread the budget cut may still hold older records.
        if (s->cons.floor < horizon)
            horizon = s->cons.floor;
        if (s->proc && s->proc->state == PROC_ACTIVE)
            proc_process(s->proc, horizon);
        if (k <= 0)
            break;
    }
    // Busy buffers as the last scan found them: past a quarter of the
    // ring, the program outruns us, and a pause would only make it wait.
    if (busy > s->ring.nbufs / 4)
        c->backlog = true;
    ht_ring_hdr_t *h = s->ring.hdr;
    uint64_t req = atomic_load(&h->snapshot_req);
    for (int i = 0; s->snap_seen < req && i < 16; i++) {
        s->snap_seen++;
        if (s->proc)
            proc_snapshot(s->proc, HT_TF_SNAP_SIGNAL);
    }
    s->snap_seen = req; // a burst of requests beyond 16 collapses
    atomic_store(&h->snapshot_done, req);
    c->st.bad_records += s->cons.bad_records;
    s->cons.bad_records = 0;
    src_counters(s);
    return n;
}

static void
src_drain(ht_coll_t *c, ht_coll_src_t *s)
{
    if (!s->is_ring)
        return;
    // Committed prefixes of buffers still OWNED by dead threads are read
    // too (ring.h): loop until a poll finds nothing new.
    while (src_consume(c, s) > 0)
        ;
}

/* A new process image: a new process, or an exec of a traced pid. */
static int
src_attach(ht_coll_t *c, ht_coll_src_t *s)
{
    s->c = c;
    s->next = c->srcs;
    c->srcs = s;
    coll_proc_t *p = coll_proc_find(c, s->info.pid);
    if (p) {
        // exec: the old image is finished (drain it first), the trace
        // goes on with a keyframe of the new image.
        if (p->src) {
            ht_coll_src_t *old = p->src;
            src_drain(c, old);
            proc_process(p, UINT64_MAX); // the old image is finished
            for (int i = 0; i < 3; i++)
                p->lost_base[i] = p->lost[i];
            src_release(c, old);
        }
        if (p->state == PROC_WAIT_FORK)
            proc_start(p);
        proc_seg_end(p, true);
        proc_reset_image(p);
        proc_set_image(p, &s->info, true);
        p->src = s;
        s->proc = p;
        proc_seg_begin(p, 0, HT_TF_SNAP_SEGMENT);
        return 0;
    }
    p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    p->c = c;
    p->pid = s->info.pid;
    p->src = s;
    s->proc = p;
    if (c->main_pid ? p->pid == c->main_pid : !c->have_main) {
        p->main = true;
        c->have_main = true;
    }
    proc_set_image(p, &s->info, false);
    p->next = c->procs;
    c->procs = p;
    c->nprocs++;
    // A forked child starts with its parent's live set, which only the
    // parent's FORK record (maybe not consumed yet) can give.
    if (coll_pending_take(c, p->pid, &p->live)) {
        proc_start(p);
    } else if ((s->info.flags & HT_TF_PROC_FORKED) || coll_proc_find(c, s->info.ppid)) {
        p->state = PROC_WAIT_FORK;
        p->wait_since = coll_now();
    } else {
        proc_start(p);
    }
    return 0;
}

static ht_coll_src_t *
src_new_ring(const ht_ring_t *ring)
{
    ht_coll_src_t *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->is_ring = true;
    s->ring = *ring;
    if (ht_ring_consumer_init(&s->cons, &s->ring) < 0) {
        free(s);
        return NULL;
    }
    // The consumer must point at our copy of the ring struct.
    s->cons.ring = &s->ring;
    s->cons.budget = COLL_SCAN_BUDGET;
    const ht_ring_hdr_t *h = ring->hdr;
    s->info.pid = h->pid ? h->pid : getpid();
    s->info.ppid = h->ppid;
    s->info.flags = h->flags;
    s->info.max_depth = h->max_depth;
    s->info.sample_rate = h->sample_rate;
    s->start_ns = h->start_ns;
    s->snap_seen = atomic_load(&h->snapshot_done);
    // Copied once, lengths clamped: the program can scribble on its ring.
    s->info.exe = s->exe = coll_dup_clamped(h->exe, h->exe_len, &s->info.exe_len);
    s->info.argv = s->argv = coll_dup_clamped(h->argv, h->argv_len, &s->info.argv_len);
    return s;
}

/* ------------------------------------------------------------------ */
/* public */

void
ht_coll_opts_default(ht_coll_opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->seg_raw_max = COLL_SEG_RAW_MAX;
    o->seg_age_ns = COLL_SEG_AGE_NS;
}

int
ht_coll_create(ht_coll_t **out, const ht_coll_opts_t *o)
{
    *out = NULL;
    if (!o->output || !*o->output)
        return -EINVAL;
    ht_coll_t *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    c->o = *o;
    if (!c->o.seg_raw_max)
        c->o.seg_raw_max = COLL_SEG_RAW_MAX;
    if (!c->o.seg_age_ns)
        c->o.seg_age_ns = COLL_SEG_AGE_NS;
    // In a bounded file a segment must stay well below the ring, or one
    // segment would overwrite most of the history at once.
    if (o->max_size && c->o.seg_raw_max > o->max_size / 4)
        c->o.seg_raw_max = o->max_size / 4 ? o->max_size / 4 : 1;
    c->output = strdup(o->output);
    c->prefix = o->snapshot_prefix && *o->snapshot_prefix ? strdup(o->snapshot_prefix) : NULL;
    if (!c->output || (o->snapshot_prefix && *o->snapshot_prefix && !c->prefix)) {
        free(c->output);
        free(c->prefix);
        free(c);
        return -ENOMEM;
    }
    c->o.output = c->output;
    c->o.snapshot_prefix = c->prefix;
    *out = c;
    return 0;
}

void
ht_coll_finish(ht_coll_t *c)
{
    for (coll_proc_t *p = c->procs; p; p = p->next) {
        if (p->state == PROC_DONE)
            continue;
        if (p->src)
            src_drain(c, p->src);
        proc_finish(p, c->self_mode);
    }
}

void
ht_coll_destroy(ht_coll_t *c)
{
    if (!c)
        return;
    ht_coll_finish(c);
    while (c->srcs)
        src_release(c, c->srcs);
    // main_path points into a proc: keep procs until the end.
    while (c->procs) {
        coll_proc_t *p = c->procs;
        c->procs = p->next;
        proc_reset_image(p);
        free(p->thr);
        free(p->mod);
        free(p->exe);
        free(p->argv);
        free(p->path);
        free(p->info);
        free(p->buf);
        free(p->stamp);
        free(p->sstamp);
        free(p->nstamp);
        free(p->nrep);
        free(p->kf_count);
        free(p->pev);
        free(p->pev_tmp);
        free(p->arena);
        free(p);
    }
    while (c->pending) {
        coll_pending_t *pe = c->pending;
        c->pending = pe->next;
        coll_live_free(&pe->live);
        free(pe);
    }
    while (c->seen) {
        coll_seen_t *s = c->seen;
        c->seen = s->next;
        free(s->name);
        free(s);
    }
    free(c->exits);
    free(c->stk.pool);
    free(c->stk.ent);
    free(c->stk.tab);
    free(c->stk.node);
    free(c->stk.ntab);
    coll_sites_free(&c->sites);
    free(c->output);
    free(c->prefix);
    free(c);
}

void
ht_coll_set_main_pid(ht_coll_t *c, pid_t pid)
{
    c->main_pid = pid;
}

void
ht_coll_note_exit(ht_coll_t *c, pid_t pid, int wstatus)
{
    for (size_t i = 0; i < c->nexits; i++) {
        if (c->exits[i].pid == pid) {
            c->exits[i].status = wstatus;
            return;
        }
    }
    if (c->nexits == c->exits_cap) {
        size_t nc = c->exits_cap ? c->exits_cap * 2 : 16;
        coll_exit_t *ne = realloc(c->exits, nc * sizeof *ne);
        if (!ne)
            return;
        c->exits = ne;
        c->exits_cap = nc;
    }
    c->exits[c->nexits].pid = pid;
    c->exits[c->nexits].status = wstatus;
    c->nexits++;
}

typedef struct coll_cand_s {
    ht_ring_t ring;
    char *path;
} coll_cand_t;

static int
coll_cand_cmp(const void *a, const void *b)
{
    const coll_cand_t *x = a, *y = b;
    uint64_t sx = x->ring.hdr->start_ns, sy = y->ring.hdr->start_ns;
    return sx < sy ? -1 : sx > sy;
}

int
ht_coll_scan_dir(ht_coll_t *c, const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return -errno;
    uint64_t now = coll_now();
    coll_cand_t cand[64];
    size_t nc = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL && nc < 64) {
        size_t len = strlen(de->d_name);
        if (len < 6 || strcmp(de->d_name + len - 5, ".ring") != 0)
            continue;
        coll_seen_t *sn = NULL;
        for (coll_seen_t *x = c->seen; x; x = x->next)
            if (x->ino == de->d_ino && !strcmp(x->name, de->d_name))
                sn = x;
        if (sn && sn->done)
            continue;
        if (!sn) {
            sn = calloc(1, sizeof *sn);
            if (!sn || !(sn->name = strdup(de->d_name))) {
                free(sn);
                continue;
            }
            sn->ino = de->d_ino;
            sn->first = now;
            sn->next = c->seen;
            c->seen = sn;
        }
        char *path = malloc(strlen(dir) + len + 2);
        if (!path)
            continue;
        strcpy(path, dir);
        strcat(path, "/");
        strcat(path, de->d_name);
        int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
        ht_ring_t ring;
        int rc = fd < 0 ? -errno : ht_ring_map(&ring, fd);
        if (fd >= 0)
            close(fd);
        bool ready = false;
        if (rc == 0) {
            uint32_t st = atomic_load(&ring.hdr->state);
            pid_t zp;
            if (st != HT_RING_STATE_INIT && ring.hdr->pid > 0) {
                ready = true;
            } else if (ring.hdr->pid > 0 && coll_pid_state(ring.hdr->pid, &zp) != PID_ALIVE) {
                sn->done = true; // died while attaching: nothing to read
            }
            if (!ready)
                ht_ring_unmap(&ring);
        }
        if (ready) {
            sn->done = true;
            cand[nc].ring = ring;
            cand[nc].path = path;
            nc++;
            continue;
        }
        free(path);
        if (!sn->done && now - sn->first > COLL_ATTACH_GIVEUP_NS) {
            sn->done = true;
            if (!c->o.quiet)
                coll_say("ignoring ring '", de->d_name, "': not a usable ring", NULL);
        }
    }
    closedir(d);
    // Oldest image first: an exec's new ring found in the same scan as the
    // old one must come after it.
    qsort(cand, nc, sizeof *cand, coll_cand_cmp);
    int attached = 0;
    for (size_t i = 0; i < nc; i++) {
        ht_coll_src_t *s = src_new_ring(&cand[i].ring);
        if (!s) {
            ht_ring_unmap(&cand[i].ring);
            free(cand[i].path);
            continue;
        }
        s->path = cand[i].path;
        if (src_attach(c, s) < 0) {
            src_release(c, s);
            continue;
        }
        attached++;
    }
    return attached;
}

/* Record mode: has this traced pid ended? Our own children stay until
 * record has reaped them, so their EXIT carries the real status. */
static bool
coll_proc_gone(ht_coll_t *c, coll_proc_t *p, uint64_t now)
{
    pid_t zppid;
    int ps = coll_pid_state(p->pid, &zppid);
    if (ps == PID_GONE)
        return true;
    if (ps == PID_ZOMBIE && (coll_has_exit(c, p->pid) || zppid != getpid()))
        return true;
    if (p->src && p->src->is_ring &&
        atomic_load(&p->src->ring.hdr->state) == HT_RING_STATE_EXITED) {
        if (!p->exited_since)
            p->exited_since = now;
        else if (now - p->exited_since > COLL_EXITED_GRACE_NS)
            return true;
    }
    return false;
}

long
ht_coll_poll(ht_coll_t *c)
{
    long n = 0;
    uint64_t now = coll_now();
    c->backlog = false;
    for (coll_proc_t *p = c->procs; p; p = p->next) {
        if (p->state == PROC_WAIT_FORK) {
            // Keep the child's producers from declaring us dead while its
            // records wait for the parent's FORK.
            if (p->src && p->src->is_ring)
                atomic_fetch_add(&p->src->ring.hdr->heartbeat, 1);
            coll_proc_t *par = coll_proc_find(c, p->ppid);
            if (now - p->wait_since > COLL_FORK_WAIT_NS || !par || par == p)
                proc_start(p);
            else
                continue;
        }
        if (p->state != PROC_ACTIVE)
            continue;
        if (p->src)
            n += src_consume(c, p->src);
        if (p->state != PROC_ACTIVE)
            continue;
        now = coll_now();
        if (c->o.snapshot_interval_ns && now >= p->snap_due_ns)
            proc_snapshot(p, HT_TF_SNAP_INTERVAL);
        else if (p->seg_open && proc_seg_len(p) > p->kf_len &&
                 now - p->seg_born >= c->o.seg_age_ns) {
            proc_seg_end(p, true);
            proc_seg_begin(p, 0, HT_TF_SNAP_SEGMENT);
        }
        if (!c->self_mode && now - p->last_liveness >= COLL_LIVENESS_NS) {
            p->last_liveness = now;
            if (coll_proc_gone(c, p, now)) {
                if (p->src)
                    src_drain(c, p->src);
                proc_finish(p, false);
            }
        }
    }
    for (coll_pending_t **pp = &c->pending; *pp;) {
        coll_pending_t *pe = *pp;
        if (now - pe->since > COLL_PENDING_TTL_NS) {
            *pp = pe->next;
            coll_live_free(&pe->live);
            free(pe);
        } else {
            pp = &pe->next;
        }
    }
    return n;
}

uint64_t
ht_coll_pause_ns(const ht_coll_t *c, long delivered)
{
    // A program producing faster than we read fills the ring and then
    // waits for buffers: pausing then wastes the time it waits (churn_mt
    // --all spent 1.1 s of a 3.4 s run waiting, 115 times).
    if (c->backlog)
        return 0;
    // Polling again at once after records came was a busy loop: each poll
    // scans every ring buffer's state and the ring directory, and a stream
    // that trickles in made the collector spend a fifth of the machine on
    // polls of a few records (sqlite3 --all). The ring holds seconds of
    // events at --all rates, so 1 ms of batching costs the program nothing.
    // A trickle (sampling: a record per 512 KiB, and totals) waits as long
    // as an idle ring: a collector waking every millisecond took CPU time
    // from programs whose threads want every core.
    return delivered >= 256 ? 1000000u : 5000000u;
}

size_t
ht_coll_nactive(const ht_coll_t *c)
{
    size_t n = 0;
    for (const coll_proc_t *p = c->procs; p; p = p->next)
        n += p->state != PROC_DONE;
    return n;
}

size_t
ht_coll_npending(const ht_coll_t *c)
{
    size_t n = 0;
    for (const coll_seen_t *s = c->seen; s; s = s->next)
        n += !s->done;
    return n;
}

size_t
ht_coll_nprocs(const ht_coll_t *c)
{
    return c->nprocs;
}

void
ht_coll_get_stats(const ht_coll_t *c, ht_coll_stats_t *st)
{
    *st = c->st;
    // Open files count what they wrote so far; rings their counters.
    for (const coll_proc_t *p = c->procs; p; p = p->next) {
        if (p->w)
            st->bytes += ht_tfw_bytes_written(p->w);
        st->lost += p->lost[0];
        st->waits += p->lost[1];
        st->wait_ns += p->lost[2];
    }
}

const char *
ht_coll_main_path(const ht_coll_t *c)
{
    return c->main_path;
}

/* ---- test seam ---- */

int
ht_coll_src_open(ht_coll_t *c, const ht_coll_src_info_t *info, ht_coll_stack_fn fn, void *ctx,
                 ht_coll_src_t **out)
{
    *out = NULL;
    ht_coll_src_t *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    s->info = *info;
    s->stack_fn = fn;
    s->stack_ctx = ctx;
    int rc = src_attach(c, s);
    if (rc < 0) {
        src_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

int
ht_coll_src_pend(ht_coll_t *c, ht_coll_src_t *s, const ht_tf_rec_t *rec)
{
    (void)c;
    coll_proc_t *p = s->proc;
    if (p && p->state == PROC_WAIT_FORK) {
        // Without a ring there is nowhere to leave records waiting: the
        // caller feeds the parent's FORK first.
        proc_start(p);
    }
    if (p && p->state == PROC_ACTIVE)
        proc_pend(p, s, rec);
    return 0;
}

void
ht_coll_src_process(ht_coll_t *c, ht_coll_src_t *s, uint64_t until)
{
    (void)c;
    if (s->proc && s->proc->state == PROC_ACTIVE)
        proc_process(s->proc, until);
}

int
ht_coll_src_feed(ht_coll_t *c, ht_coll_src_t *s, const ht_tf_rec_t *rec)
{
    ht_coll_src_pend(c, s, rec);
    ht_coll_src_process(c, s, UINT64_MAX);
    return 0;
}

void
ht_coll_src_close(ht_coll_t *c, ht_coll_src_t *s)
{
    coll_proc_t *p = s->proc;
    if (p && p->src == s && p->state != PROC_DONE)
        proc_finish(p, false); // releases s
    else
        src_release(c, s);
}

/* ---- in-process mode ---- */

static struct {
    pthread_t th;
    ht_coll_t *c;
    ht_coll_src_t *src;
    _Atomic int stop;
    pid_t owner;
    bool running;
} coll_thr;

/* libheaptrace/rec.c, when linked (the shim): keeps this thread's own
 * allocations out of the trace. Weak: `heaptrace` has no recorder. */
extern void ht_rec_thread_exclude(void) __attribute__((weak));

static void *
coll_thread_main(void *arg)
{
    ht_coll_t *c = arg;
    if (ht_rec_thread_exclude)
        ht_rec_thread_exclude();
    for (coll_proc_t *p = c->procs; p; p = p->next)
        if (p->w)
            ht_tfw_warm(p->w);
    while (!atomic_load(&coll_thr.stop)) {
        long n = ht_coll_poll(c);
        struct timespec ts = {0, (long)ht_coll_pause_ns(c, n)};
        // Paused on stop's word, so that ht_coll_thread_stop wakes us: a
        // nanosleep kept the program's exit waiting for the rest of the
        // pause (up to 5 ms; 3 ms of /bin/true's 6 under the preload).
        if (ts.tv_nsec)
            syscall(SYS_futex, &coll_thr.stop, FUTEX_WAIT_PRIVATE, 0, &ts, NULL, 0);
    }
    // Stopped: the last records, the EXIT segment, the file closed -- here,
    // not on the thread that stops us. That one is ending the program
    // (exit, _exit), maybe from a signal handler that interrupted malloc
    // with its lock held, where our mallocs would wait for it forever.
    ht_coll_src_t *s = coll_thr.src;
    if (s && s->proc) {
        src_drain(c, s);
        coll_proc_t *p = s->proc;
        s->is_ring = false; // src_free must not unmap the shim's ring
        ht_ring_consumer_fini(&s->cons);
        proc_finish(p, true);
    }
    ht_coll_destroy(c);
    return NULL;
}

static uint64_t
coll_env_size(const char *name)
{
    uint64_t v = 0;
    const char *s = getenv(name);
    if (s && *s && ht_coll_parse_size(s, &v) < 0) {
        coll_say("ignoring ", name, "='", s, "': not a size", NULL);
        v = 0;
    }
    return v;
}

int
ht_coll_thread_start(ht_ring_t *ring, const char *output_path)
{
    if (coll_thr.running && coll_thr.owner == getpid())
        return -EBUSY;
    // In a forked child the parent's collector thread does not exist and
    // its state may be mid-update: abandon it (leak), never touch it.
    memset(&coll_thr, 0, sizeof coll_thr);
    ht_coll_opts_t o;
    ht_coll_opts_default(&o);
    o.output = output_path;
    o.max_size = coll_env_size("HEAPTRACE_MAX_SIZE");
    o.snapshot_interval_ns = coll_env_size("HEAPTRACE_SNAPSHOT_INTERVAL") * NS;
    o.seg_age_ns = coll_env_size("HEAPTRACE_FLUSH_INTERVAL") * NS; // 0: the default
    o.snapshot_every = coll_env_size("HEAPTRACE_SNAPSHOT_EVERY");
    o.snapshot_prefix = getenv("HEAPTRACE_SNAPSHOT_PREFIX");
    ht_coll_t *c;
    int rc = ht_coll_create(&c, &o);
    if (rc < 0)
        return rc;
    c->self_mode = true;
    ht_coll_src_t *s = src_new_ring(ring);
    if (!s) {
        ht_coll_destroy(c);
        return -ENOMEM;
    }
    s->info.pid = getpid();
    if ((rc = src_attach(c, s)) < 0) {
        src_free(s);
        ht_coll_destroy(c);
        return rc;
    }
    if (s->proc && s->proc->state == PROC_WAIT_FORK)
        proc_start(s->proc); // our own parent's trace is not ours to wait for
    if (!s->proc || !s->proc->w) {
        rc = c->st.write_error ? c->st.write_error : -EIO;
        ht_coll_destroy(c);
        return rc;
    }
    // The thread must not take the program's signals.
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = -pthread_create(&coll_thr.th, NULL, coll_thread_main, c);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc < 0) {
        ht_coll_destroy(c);
        return rc;
    }
    coll_thr.c = c;
    coll_thr.src = s;
    coll_thr.owner = getpid();
    coll_thr.running = true;
    return 0;
}

#define COLL_STOP_WAIT_S 10
#define COLL_STOP_WAIT_STR "10"

void
ht_coll_thread_stop(void)
{
    if (!coll_thr.running || coll_thr.owner != getpid())
        return;
    atomic_store(&coll_thr.stop, 1);
    syscall(SYS_futex, &coll_thr.stop, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
    coll_thr.running = false;
    // The thread finishes the trace (coll_thread_main). Waited for, but not
    // forever: a program must never hang in exit because of us. A drain of
    // a full ring takes well under a second.
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += COLL_STOP_WAIT_S;
    if (pthread_timedjoin_np(coll_thr.th, NULL, &dl) != 0)
        coll_say("the collector did not finish the trace within " COLL_STOP_WAIT_STR
                 " s of the exit; it may be incomplete", NULL);
    coll_thr.c = NULL;
}
