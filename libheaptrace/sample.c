/*
 * libheaptrace/sample.c -- sampling math (contract: sample.h). Called only
 * on the slow path (once per sample). The logarithm and exponential are
 * our own (ht_sample_log, ht_sample_expm1_neg): the shim links no libm,
 * one library less to load into every traced process. test_sample checks
 * them against libm's.
 */
#include "libheaptrace/sample.h"

#include <string.h>

#include "formats/trace.h"

#define SAMPLE_LN2 0.693147180559945309417
/* ln 2 in two parts: n * hi is exact for |n| < 2^11. */
#define SAMPLE_LN2_HI 6.93147180369123816490e-01
#define SAMPLE_LN2_LO 1.90821492927058770002e-10

double
ht_sample_log(double x)
{
    // x = m * 2^e, m in [sqrt(1/2), sqrt(2)); log m = 2 atanh z with
    // z = (m - 1) / (m + 1), |z| < 0.172, whose series in z^2 < 0.0295
    // is below 1e-19 after 12 terms. x is positive, finite and normal.
    uint64_t b;
    memcpy(&b, &x, sizeof b);
    int e = (int)((b >> 52) & 0x7ff) - 1023;
    b = (b & 0x000fffffffffffffull) | 0x3ff0000000000000ull;
    double m;
    memcpy(&m, &b, sizeof m);
    if (m > 1.41421356237309504880) {
        m *= 0.5;
        e++;
    }
    double z = (m - 1.0) / (m + 1.0), z2 = z * z, s = 0.0;
    for (int k = 11; k >= 0; k--)
        s = s * z2 + 1.0 / (double)(2 * k + 1);
    return (double)e * SAMPLE_LN2 + 2.0 * z * s;
}

double
ht_sample_expm1_neg(double x)
{
    // 1 - exp(-x) for x >= 0. Below 0.5 its own series (no cancellation:
    // 18 terms reach 1e-22 of x); above, 1 - exp(-x) with exp(-x) =
    // 2^-n exp(-r), |r| <= ln2/2; past 40, exp(-x) is below half an ulp of 1.
    if (!(x > 0.0))
        return 0.0;
    if (x < 0.5) {
        double t = x, s = x;
        for (int k = 2; k <= 18; k++) {
            t *= -x / (double)k;
            s += t;
        }
        return s;
    }
    if (x > 40.0)
        return 1.0;
    int n = (int)(x / SAMPLE_LN2 + 0.5);
    double r = (x - (double)n * SAMPLE_LN2_HI) - (double)n * SAMPLE_LN2_LO;
    double t = 1.0, s = 1.0; // exp(-r)
    for (int k = 1; k <= 16; k++) {
        t *= -r / (double)k;
        s += t;
    }
    uint64_t b = (uint64_t)(1023 - n) << 52; // 2^-n, n <= 58
    double scale;
    memcpy(&scale, &b, sizeof scale);
    return 1.0 - s * scale;
}

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
    double d = -ht_sample_log(u) * (double)rate;
    // Round up: the countdown is in whole bytes and must stay positive.
    // -log(u) <= 37 and rate <= 2^40, so no overflow (and d < 2^53 is
    // exact in the integer).
    int64_t n = (int64_t)d;
    if ((double)n < d)
        n++;
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
    double p = ht_sample_expm1_neg(x);
    double w = (double)HT_TF_WEIGHT_ONE / p;
    if (!(w >= (double)HT_TF_WEIGHT_ONE))
        return HT_TF_WEIGHT_ONE;
    if (w >= 1.8e19)
        return UINT64_MAX;
    return (uint64_t)(w + 0.5);
}
