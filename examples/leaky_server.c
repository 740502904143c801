/*
 * examples/leaky_server.c -- a small HTTP-like server with a slow leak, to
 * show what heaptrace finds.
 *
 * A client thread sends requests over a socketpair; the server parses each
 * one into a growing buffer and a small hash map of headers, looks the
 * route up in a bounded cache, builds a response string and sends it back.
 * All of that is temporary, except in session_cache_insert(): every
 * request with a new session id adds an entry to a cache whose eviction
 * was never written, so it grows without bound (the leak).
 *
 * Every --snapshot-every requests it calls heaptrace_snapshot(), which
 * does nothing unless the program runs under heaptrace.
 *
 *   leaky_server [--requests N] [--snapshot-every N]
 *   heaptrace record --all ./leaky_server && heaptrace diff T.htr@0 T.htr@9
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "heaptrace.h"

#define NOINLINE __attribute__((noinline))

/* ---- a small hash map of headers ---- */

#define HDR_BUCKETS 16

typedef struct hdr_s {
    char *key;
    char *val;
    struct hdr_s *next;
} hdr_t;

typedef struct request_s {
    char *method;
    char *path;
    hdr_t *hdr[HDR_BUCKETS];
    int nhdr;
} request_t;

static unsigned
hdr_hash(const char *s)
{
    unsigned h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static char *
xstrndup(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (!p)
        abort();
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

static NOINLINE void
header_map_put(request_t *r, const char *k, size_t kl, const char *v, size_t vl)
{
    hdr_t *h = malloc(sizeof *h);
    if (!h)
        abort();
    h->key = xstrndup(k, kl);
    h->val = xstrndup(v, vl);
    unsigned b = hdr_hash(h->key) % HDR_BUCKETS;
    h->next = r->hdr[b];
    r->hdr[b] = h;
    r->nhdr++;
}

static const char *
header_map_get(const request_t *r, const char *k)
{
    for (const hdr_t *h = r->hdr[hdr_hash(k) % HDR_BUCKETS]; h; h = h->next)
        if (!strcmp(h->key, k))
            return h->val;
    return NULL;
}

static NOINLINE void
request_free(request_t *r)
{
    for (int b = 0; b < HDR_BUCKETS; b++) {
        for (hdr_t *h = r->hdr[b], *n; h; h = n) {
            n = h->next;
            free(h->key);
            free(h->val);
            free(h);
        }
    }
    free(r->method);
    free(r->path);
    free(r);
}

/* ---- reading and parsing ---- */

// Read one request (up to the blank line) into a buffer grown by doubling.
static NOINLINE char *
read_request(int fd, size_t *len)
{
    size_t cap = 64, n = 0;
    char *buf = malloc(cap);
    if (!buf)
        abort();
    for (;;) {
        if (n + 1 >= cap) {
            cap *= 2;
            char *nb = realloc(buf, cap);
            if (!nb)
                abort();
            buf = nb;
        }
        ssize_t k = read(fd, buf + n, 1);  // byte by byte, as a naive server does
        if (k <= 0) {
            free(buf);
            return NULL;
        }
        n++;
        if (n >= 4 && !memcmp(buf + n - 4, "\r\n\r\n", 4))
            break;
    }
    buf[n] = 0;
    *len = n;
    return buf;
}

static NOINLINE request_t *
parse_request(const char *buf)
{
    request_t *r = calloc(1, sizeof *r);
    if (!r)
        abort();
    const char *sp = strchr(buf, ' ');
    const char *sp2 = sp ? strchr(sp + 1, ' ') : NULL;
    if (!sp || !sp2) {
        request_free(r);
        return NULL;
    }
    r->method = xstrndup(buf, (size_t)(sp - buf));
    r->path = xstrndup(sp + 1, (size_t)(sp2 - sp - 1));
    const char *line = strstr(buf, "\r\n");
    while (line && line[2] != '\r') {
        line += 2;
        const char *colon = strchr(line, ':');
        const char *eol = strstr(line, "\r\n");
        if (!colon || !eol || colon > eol)
            break;
        const char *v = colon + 1;
        while (*v == ' ')
            v++;
        header_map_put(r, line, (size_t)(colon - line), v, (size_t)(eol - v));
        line = eol;
    }
    return r;
}

/* ---- a bounded route cache (correct: it evicts) ---- */

#define ROUTE_SLOTS 64

typedef struct route_s {
    char *path;
    char *handler;
} route_t;

static route_t route_cache[ROUTE_SLOTS];

static NOINLINE const char *
route_cache_lookup(const char *path)
{
    unsigned s = hdr_hash(path) % ROUTE_SLOTS;
    if (route_cache[s].path && !strcmp(route_cache[s].path, path))
        return route_cache[s].handler;
    free(route_cache[s].path);  // evict whatever was there
    free(route_cache[s].handler);
    route_cache[s].path = strdup(path);
    size_t hl = strlen(path) + 16;
    route_cache[s].handler = malloc(hl);
    snprintf(route_cache[s].handler, hl, "handler:%s", path);
    return route_cache[s].handler;
}

static void
route_cache_clear(void)
{
    for (int s = 0; s < ROUTE_SLOTS; s++) {
        free(route_cache[s].path);
        free(route_cache[s].handler);
    }
}

/* ---- the session cache: the leak ---- */

typedef struct session_s {
    char id[40];
    char *user_agent;
    uint64_t created;
    uint64_t hits;
    struct session_s *next;
} session_t;

static session_t *session_head;
static long session_count;

// BUG (on purpose): sessions are added and never evicted. The list stays
// reachable, but nothing ever frees it: at exit it is what "leaked" shows,
// and between two snapshots it is what grows.
static NOINLINE session_t *
session_cache_insert(const char *id, const char *ua, uint64_t now)
{
    session_t *s = malloc(sizeof *s);
    if (!s)
        abort();
    snprintf(s->id, sizeof s->id, "%s", id);
    s->user_agent = strdup(ua ? ua : "-");
    s->created = now;
    s->hits = 1;
    s->next = session_head;
    session_head = s;
    session_count++;
    return s;
}

static NOINLINE session_t *
session_lookup(const char *id)
{
    // only the most recent few are looked at: a new id is the common case
    int k = 0;
    for (session_t *s = session_head; s && k < 8; s = s->next, k++)
        if (!strcmp(s->id, id))
            return s;
    return NULL;
}

/* ---- responses ---- */

typedef struct strbuf_s {
    char *p;
    size_t n, cap;
} strbuf_t;

static void
sb_append(strbuf_t *b, const char *s)
{
    size_t l = strlen(s);
    if (b->n + l + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 32;
        while (cap < b->n + l + 1)
            cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np)
            abort();
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, l + 1);
    b->n += l;
}

static NOINLINE char *
build_response(const request_t *r, const char *handler, const session_t *s, size_t *len)
{
    strbuf_t b = {0};
    char line[160];
    sb_append(&b, "HTTP/1.1 200 OK\r\n");
    snprintf(line, sizeof line, "X-Handler: %s\r\n", handler);
    sb_append(&b, line);
    snprintf(line, sizeof line, "X-Session: %s hits=%llu\r\n", s->id, (unsigned long long)s->hits);
    sb_append(&b, line);
    // a body of some size, made of pieces, as templates produce
    strbuf_t body = {0};
    int pieces = 4 + (int)(hdr_hash(r->path) % 24);
    for (int i = 0; i < pieces; i++) {
        snprintf(line, sizeof line, "<li>%s item %d of %d</li>\n", r->path, i, pieces);
        sb_append(&body, line);
    }
    snprintf(line, sizeof line, "Content-Length: %zu\r\n\r\n", body.n);
    sb_append(&b, line);
    sb_append(&b, body.p);
    free(body.p);
    *len = b.n;
    return b.p;
}

/* ---- the server loop ---- */

static NOINLINE int
handle_request(int fd, uint64_t now)
{
    size_t len;
    char *raw = read_request(fd, &len);
    if (!raw)
        return -1;
    request_t *r = parse_request(raw);
    free(raw);
    if (!r)
        return -1;
    const char *handler = route_cache_lookup(r->path);
    const char *sid = header_map_get(r, "Cookie");
    sid = sid && !strncmp(sid, "sid=", 4) ? sid + 4 : "anonymous";
    session_t *s = session_lookup(sid);
    if (s)
        s->hits++;
    else
        s = session_cache_insert(sid, header_map_get(r, "User-Agent"), now);
    size_t rl;
    char *resp = build_response(r, handler, s, &rl);
    request_free(r);
    // length-prefixed, so the client knows how much to read
    uint32_t n32 = (uint32_t)rl;
    int rc = 0;
    if (write(fd, &n32, sizeof n32) != sizeof n32 || write(fd, resp, rl) != (ssize_t)rl)
        rc = -1;
    free(resp);
    return rc;
}

typedef struct client_s {
    int fd;
    long requests;
    long ok;
} client_t;

static int
read_full(int fd, void *p, size_t n)
{
    char *c = p;
    while (n) {
        ssize_t k = read(fd, c, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        c += k;
        n -= (size_t)k;
    }
    return 0;
}

static void *
client_main(void *arg)
{
    client_t *c = arg;
    char req[512], *resp = NULL;
    size_t cap = 0;
    for (long i = 0; i < c->requests; i++) {
        // mostly new sessions (which the server leaks), some returning ones
        long sid = (i % 5 == 4) ? i - 1 : i;
        int n = snprintf(req, sizeof req,
                         "GET /api/v1/items/%ld?page=%ld HTTP/1.1\r\n"
                         "Host: localhost\r\n"
                         "User-Agent: leaky-client/1.0 (request %ld)\r\n"
                         "Accept: */*\r\n"
                         "Cookie: sid=%08lx%08lx\r\n"
                         "X-Request-Id: %ld\r\n\r\n",
                         i % 37, i % 7, i, sid * 2654435761UL, sid, i);
        if (write(c->fd, req, (size_t)n) != n)
            break;
        uint32_t len;
        if (read_full(c->fd, &len, sizeof len))
            break;
        if (len + 1 > cap) {
            cap = len + 1;
            resp = realloc(resp, cap);
        }
        if (read_full(c->fd, resp, len))
            break;
        c->ok++;
    }
    free(resp);
    shutdown(c->fd, SHUT_WR);
    return NULL;
}

int
main(int argc, char **argv)
{
    long requests = 20000, snap_every = 2000;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--requests") && i + 1 < argc)
            requests = atol(argv[++i]);
        else if (!strcmp(argv[i], "--snapshot-every") && i + 1 < argc)
            snap_every = atol(argv[++i]);
        else {
            fprintf(stderr, "usage: leaky_server [--requests N] [--snapshot-every N]\n");
            return 2;
        }
    }
    if (requests < 0 || snap_every < 0)
        return 2;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) {
        perror("leaky_server: socketpair");
        return 1;
    }
    client_t c = {.fd = sv[1], .requests = requests};
    pthread_t tid;
    if (pthread_create(&tid, NULL, client_main, &c) != 0)
        return 1;
    long served = 0, snaps = 0;
    while (handle_request(sv[0], (uint64_t)served) == 0) {
        served++;
        if (snap_every && served % snap_every == 0 && heaptrace_snapshot() == 0)
            snaps++;
    }
    pthread_join(tid, NULL);
    close(sv[0]);
    close(sv[1]);
    route_cache_clear();
    printf("leaky_server: %ld requests served, %ld ok, %ld sessions cached, %ld snapshots\n",
           served, c.ok, session_count, snaps);
    return served == requests && c.ok == requests ? 0 : 1;
}
