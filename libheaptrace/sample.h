/*
 * libheaptrace/sample.h -- allocation sampling math (prefix ht_sample_).
 *
 * Each thread counts bytes down to its next sample. The distance between
 * samples is exponential with mean R bytes (a Poisson process over the
 * byte stream), and an allocation of s bytes consumes s+1 bytes of it (so
 * malloc(0) can be sampled). An allocation is then sampled with
 * probability p(s) = 1 - exp(-(s+1)/R), independently of everything before
 * it (memorylessness), and carries weight 1/p(s): the Horvitz-Thompson
 * estimator, unbiased for counts and, times s, for bytes.
 *
 * Note: the design text writes 1/(1-exp(-s/R)); with the +1 in the
 * countdown the inclusion probability really is p(s+1), and using it keeps
 * the estimate unbiased and finite for malloc(0).
 */
#ifndef HT_LIBHEAPTRACE_SAMPLE_H
#define HT_LIBHEAPTRACE_SAMPLE_H

#include <stdint.h>

/* Seed a per-thread generator state from anything that differs between
 * threads and runs. [as-safe] */
uint64_t ht_sample_seed(uint64_t a, uint64_t b);

/* Next 64 random bits (splitmix64). [as-safe] */
static inline uint64_t
ht_sample_rand(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Bytes until the next sample: an exponential draw with mean `rate`,
 * rounded to an integer >= 1. rate 0 returns 0 (every allocation).
 * [as-safe] [no-alloc] */
int64_t ht_sample_next(uint64_t *state, uint64_t rate);

/* Weight of a sampled allocation of `size` bytes, in HT_TF_WEIGHT_ONE
 * fixed point: round(ONE / (1 - exp(-(size+1)/rate))), never below ONE.
 * rate 0 returns ONE. [as-safe] [no-alloc] */
uint64_t ht_sample_weight(uint64_t size, uint64_t rate);
/* log(x) for a positive, finite, normal x, and 1 - exp(-x) for x >= 0,
 * to within a few ulp: the shim's own, for it links no libm. */
double ht_sample_log(double x);
double ht_sample_expm1_neg(double x);

#endif /* HT_LIBHEAPTRACE_SAMPLE_H */
