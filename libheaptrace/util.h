/*
 * libheaptrace/util.h -- small macros shared by the shim's modules (no
 * functions, no data). Header only.
 */
#ifndef HT_LIBHEAPTRACE_UTIL_H
#define HT_LIBHEAPTRACE_UTIL_H

#include <stdint.h>
#include <time.h>

#define HT_LIKELY(x) __builtin_expect(!!(x), 1)
#define HT_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define HT_NOINLINE __attribute__((noinline))
#define HT_INLINE static inline __attribute__((always_inline))
/* Symbols that leave libheaptrace.so (the version script filters further). */
#define HT_EXPORT __attribute__((visibility("default")))
/* Per-thread state: initial-exec so that the first access never calls
 * malloc (__tls_get_addr would, for lazily allocated TLS). */
#define HT_TLS __thread __attribute__((tls_model("initial-exec")))

#define HT_ALIGN_UP(x, a) (((x) + ((a)-1)) & ~((__typeof__(x))(a)-1))

/* CLOCK_MONOTONIC in ns; the vDSO serves it without a system call. */
static inline uint64_t
ht_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline void
ht_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

#endif /* HT_LIBHEAPTRACE_UTIL_H */
