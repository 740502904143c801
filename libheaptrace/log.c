/*
 * libheaptrace/log.c -- async-signal-safe minimal formatter (contract:
 * log.h). Not a general printf: just what the shim's messages need.
 */
#include "libheaptrace/log.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <unistd.h>

static int log_verbose;
static _Atomic unsigned log_count;

typedef struct log_out_s {
    char *p, *end; /* end leaves room for the NUL */
} log_out_t;

static void
log_putc(log_out_t *o, char c)
{
    if (o->p < o->end)
        *o->p++ = c;
}

static void
log_puts(log_out_t *o, const char *s)
{
    if (!s)
        s = "(null)";
    while (*s)
        log_putc(o, *s++);
}

static void
log_putu(log_out_t *o, unsigned long long v, unsigned base)
{
    char tmp[24];
    int n = 0;
    do {
        unsigned d = (unsigned)(v % base);
        tmp[n++] = (char)(d < 10 ? '0' + d : 'a' + d - 10);
        v /= base;
    } while (v);
    while (n)
        log_putc(o, tmp[--n]);
}

size_t
ht_log_vfmt(char *buf, size_t cap, const char *fmt, va_list ap)
{
    if (cap == 0)
        return 0;
    log_out_t o = {buf, buf + cap - 1};
    for (const char *f = fmt; *f; f++) {
        if (*f != '%') {
            log_putc(&o, *f);
            continue;
        }
        f++;
        int lng = 0; // 0 int, 1 long, 2 long long, 3 size_t
        for (;; f++) {
            if (*f == 'l')
                lng = lng ? 2 : 1;
            else if (*f == 'z')
                lng = 3;
            else
                break;
        }
        switch (*f) {
        case 'd':
        case 'i': {
            long long v = lng == 0 ? va_arg(ap, int)
                          : lng == 1 ? va_arg(ap, long)
                          : lng == 2 ? va_arg(ap, long long)
                                     : (long long)va_arg(ap, size_t);
            if (v < 0) {
                log_putc(&o, '-');
                log_putu(&o, (unsigned long long)0 - (unsigned long long)v, 10);
            } else {
                log_putu(&o, (unsigned long long)v, 10);
            }
            break;
        }
        case 'u':
        case 'x': {
            unsigned long long v = lng == 0 ? va_arg(ap, unsigned)
                                   : lng == 1 ? va_arg(ap, unsigned long)
                                   : lng == 2 ? va_arg(ap, unsigned long long)
                                              : va_arg(ap, size_t);
            log_putu(&o, v, *f == 'x' ? 16 : 10);
            break;
        }
        case 'p':
            log_puts(&o, "0x");
            log_putu(&o, (uintptr_t)va_arg(ap, void *), 16);
            break;
        case 's':
            log_puts(&o, va_arg(ap, const char *));
            break;
        case 'c':
            log_putc(&o, (char)va_arg(ap, int));
            break;
        case '%':
            log_putc(&o, '%');
            break;
        case '\0':
            f--; // a lone '%' at the end: stop at the NUL
            break;
        default:
            log_putc(&o, '%');
            log_putc(&o, *f);
        }
    }
    *o.p = '\0';
    return (size_t)(o.p - buf);
}

size_t
ht_log_fmt(char *buf, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t n = ht_log_vfmt(buf, cap, fmt, ap);
    va_end(ap);
    return n;
}

static void
log_emit(const char *fmt, va_list ap)
{
    // One write for the whole line, so lines from several threads (or
    // processes sharing the terminal) do not interleave mid-line.
    int saved = errno;
    unsigned n = atomic_fetch_add_explicit(&log_count, 1, memory_order_relaxed);
    if (n < HT_LOG_MAX_MESSAGES) {
        char buf[512];
        static const char pre[] = "heaptrace: ";
        size_t len = sizeof pre - 1;
        for (size_t i = 0; i < len; i++)
            buf[i] = pre[i];
        len += ht_log_vfmt(buf + len, sizeof buf - len - 1, fmt, ap);
        if (n + 1 == HT_LOG_MAX_MESSAGES) {
            static const char more[] = " (further messages suppressed)";
            for (size_t i = 0; i < sizeof more - 1 && len < sizeof buf - 2; i++)
                buf[len++] = more[i];
        }
        buf[len++] = '\n';
        ssize_t w = write(STDERR_FILENO, buf, len);
        (void)w;
    }
    errno = saved;
}

void
ht_log(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_emit(fmt, ap);
    va_end(ap);
}

void
ht_log_verbose(const char *fmt, ...)
{
    if (!log_verbose)
        return;
    va_list ap;
    va_start(ap, fmt);
    log_emit(fmt, ap);
    va_end(ap);
}

void
ht_log_set_verbose(int on)
{
    log_verbose = on;
}
