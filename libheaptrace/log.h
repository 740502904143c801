/*
 * libheaptrace/log.h -- diagnostics from inside the traced program
 * (prefix ht_log_). A tiny printf subset formatted into a stack buffer and
 * written with one write(2) to stderr: no malloc, no stdio, no locks, so
 * it is safe inside malloc, in atfork handlers and in signal handlers.
 *
 * Conversions: %s %c %d %i %u %x %p %% with the length modifiers l, ll, z.
 */
#ifndef HT_LIBHEAPTRACE_LOG_H
#define HT_LIBHEAPTRACE_LOG_H

#include <stdarg.h>
#include <stddef.h>

/* Most messages ht_log prints in one process; later ones are counted and
 * dropped, so a failing shim cannot flood the program's stderr. */
#define HT_LOG_MAX_MESSAGES 32

/* Format into buf (always NUL-terminated when cap > 0, truncated to fit).
 * Returns the length written, without the NUL. [as-safe] [no-alloc] */
size_t ht_log_vfmt(char *buf, size_t cap, const char *fmt, va_list ap);
size_t ht_log_fmt(char *buf, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* "heaptrace: <message>\n" to stderr. [as-safe] [no-alloc] */
void ht_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Like ht_log, only when HEAPTRACE_VERBOSE is set. [as-safe] [no-alloc] */
void ht_log_verbose(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Enable ht_log_verbose output. [init] */
void ht_log_set_verbose(int on);

#endif /* HT_LIBHEAPTRACE_LOG_H */
