/*
 * examples/leaky.c -- three leaks with clear names, for the README:
 *
 *   heaptrace record --all -o leaky.htr ./leaky
 *   heaptrace leaks leaky.htr
 *
 * load_config() keeps a strdup'd copy it never frees (one object),
 * remember_event() keeps a node per event in a list nobody frees (many
 * small objects), and grow_buffer_badly() loses the old block when a
 * realloc-style copy forgets to free it (a few large objects). Everything
 * else is freed. Exits 0.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOINLINE __attribute__((noinline))

typedef struct event_s {
    int id;
    char name[28];
    struct event_s *next;
} event_t;

static event_t *events;

static NOINLINE char *
load_config(const char *text)
{
    char *copy = strdup(text);  // leaked: the caller keeps only a pointer into it
    return strchr(copy, '=') + 1;
}

static NOINLINE void
remember_event(int id)
{
    event_t *e = malloc(sizeof *e);  // leaked: the list is never freed
    e->id = id;
    snprintf(e->name, sizeof e->name, "event-%d", id);
    e->next = events;
    events = e;
}

static NOINLINE char *
grow_buffer_badly(char *old, size_t oldlen, size_t newlen)
{
    char *p = malloc(newlen);  // the old block is copied but never freed
    memcpy(p, old, oldlen);
    memset(p + oldlen, 'x', newlen - oldlen);
    return p;
}

// Seen by the compiler as used elsewhere, so it cannot drop a malloc/free pair.
char *volatile leaky_sink;

static NOINLINE void
do_temporary_work(int i)
{
    char *tmp = malloc(64 + (size_t)(i % 512));  // freed: not a leak
    memset(tmp, 0, 64);
    leaky_sink = tmp;
    free(tmp);
}

int
main(void)
{
    const char *mode = load_config("mode=verbose");
    size_t len = 4096;
    char *buf = calloc(1, len);
    for (int i = 0; i < 1000; i++) {
        remember_event(i);
        do_temporary_work(i);
        if (i % 250 == 249) {
            buf = grow_buffer_badly(buf, len, len * 2);
            len *= 2;
        }
    }
    free(buf);  // only the last one
    printf("leaky: mode %s, buffer %zu bytes, events at %p\n", mode, len, (void *)events);
    return 0;
}
