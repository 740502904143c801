/*
 * heaptrace.h -- optional calls a program can make to heaptrace. Safe to
 * call whether or not the program runs under heaptrace: without the shim
 * they do nothing and return -1.
 *
 *   #include <heaptrace.h>
 *   heaptrace_snapshot();   // record a snapshot of the live heap now
 *
 * Build flags: pkg-config --cflags heaptrace (no library to link).
 */
#ifndef HEAPTRACE_H
#define HEAPTRACE_H

#ifdef __cplusplus
extern "C" {
#endif

/* Implemented by libheaptrace.so; weak, so the reference stays null when
 * the shim is not loaded. */
extern int heaptrace_snapshot_request(int reason) __attribute__((weak));
/* 1 while the shim is recording this process, else 0. */
extern int heaptrace_is_active(void) __attribute__((weak));

/* Ask for a snapshot of the live heap now. Returns 0 when the request was
 * queued, -1 when heaptrace is not recording this process. */
static inline int
heaptrace_snapshot(void)
{
    return heaptrace_snapshot_request ? heaptrace_snapshot_request(0) : -1;
}

/* Is this process being recorded right now? */
static inline int
heaptrace_recording(void)
{
    return heaptrace_is_active ? heaptrace_is_active() : 0;
}

#ifdef __cplusplus
}
#endif

#endif /* HEAPTRACE_H */
