/*
 * libheaptrace/sample.c -- sampling math (contract: sample.h). Called only
 * on the slow path (once per sample), so libm's log/expm1 are fine here.
 */
#include "libheaptrace/sample.h"

#include <math.h>

#include "formats/trace.h"

uint64_t
ht_sample_seed(uint64_t a, uint64_t b)
{
    uint64_t s = a * 0x9e3779b97f4a7c15ull ^ (b + 0x632be59bd9b4e019ull);
    // Two rounds so that seeds from nearby tids and times diverge at once.
    ht_sample_rand(&s);
    return ht_sample_rand(&s) | 1;
}

int64_t
ht_sample_next(uint64_t *state, uint64_t rate)
{
    if (rate == 0)
        return 0;
    // u in (0, 1]: 53 random bits, never 0, so log(u) is finite.
    double u = (double)((ht_sample_rand(state) >> 11) + 1) * (1.0 / 9007199254740992.0);
    double d = -log(u) * (double)rate;
    // Round up: the countdown is in whole bytes and must stay positive.
    // -log(u) <= 37 and rate <= 2^40, so no overflow.
    int64_t n = (int64_t)ceil(d);
    return n < 1 ? 1 : n;
}

uint64_t
ht_sample_weight(uint64_t size, uint64_t rate)
{
    if (rate == 0)
        return HT_TF_WEIGHT_ONE;
    // 1 - exp(-x) as -expm1(-x): exact even when x is tiny (small
    // allocations at a large rate), where 1 - exp() would cancel.
    double x = ((double)size + 1.0) / (double)rate;
    double p = -expm1(-x);
    double w = (double)HT_TF_WEIGHT_ONE / p;
    if (!(w >= (double)HT_TF_WEIGHT_ONE))
        return HT_TF_WEIGHT_ONE;
    if (w >= 1.8e19)
        return UINT64_MAX;
    return (uint64_t)(w + 0.5);
}
