/* tests/unit/test_sample.c -- the sampler's countdown distribution and
 * weights, and the estimator they make. */
#include "libheaptrace/sample.h"

#include <check.h>
#include <math.h>
#include <stdlib.h>

#include "formats/trace.h"

START_TEST(test_sample_exponential_moments)
{
    // 1e6 draws: mean R, variance R^2. The sample mean has standard error
    // R/1000, the sample variance about sqrt(8) R^2/1000 (fourth moment of
    // the exponential is 9 R^4): 6 standard errors is a bound no correct
    // sampler misses, while a uniform or fixed interval fails at once.
    const double rates[] = {524288, 4096, 100};
    for (size_t k = 0; k < sizeof rates / sizeof rates[0]; k++) {
        double R = rates[k];
        uint64_t st = ht_sample_seed(12345 + k, 678);
        const int n = 1000000;
        double sum = 0, sum2 = 0;
        int64_t min = INT64_MAX;
        for (int i = 0; i < n; i++) {
            int64_t d = ht_sample_next(&st, (uint64_t)R);
            if (d < min)
                min = d;
            sum += (double)d;
            sum2 += (double)d * (double)d;
        }
        double mean = sum / n, var = sum2 / n - mean * mean;
        // Integer rounding (ceil) adds about 0.5 byte to the mean.
        double m_exp = R + 0.5;
        ck_assert_msg(fabs(mean - m_exp) < 6 * R / 1000, "rate %.0f: mean %.1f", R, mean);
        ck_assert_msg(fabs(var - R * R) < 6 * 2.83 * R * R / 1000, "rate %.0f: var %.1f vs %.1f",
                      R, var, R * R);
        ck_assert_int_ge(min, 1);
        // Memorylessness, checked through one quantile: P(d > R) = 1/e.
        st = ht_sample_seed(99 + k, 1);
        int over = 0;
        for (int i = 0; i < n; i++)
            over += ht_sample_next(&st, (uint64_t)R) > (int64_t)R;
        ck_assert_msg(fabs(over / (double)n - exp(-1.0)) < 0.003, "P(d>R) = %f", over / (double)n);
    }
}
END_TEST

/* The shim's own log and 1 - exp(-x) agree with libm's to 1e-14 relative,
 * over the range they are used on and beyond. */
START_TEST(test_sample_math_matches_libm)
{
    uint64_t st = 12345;
    for (int i = 0; i < 200000; i++) {
        double u = (double)((ht_sample_rand(&st) >> 11) + 1) * (1.0 / 9007199254740992.0);
        double l = log(u), m = ht_sample_log(u);
        ck_assert_msg(fabs(m - l) <= 1e-14 * fabs(l) + 1e-300, "log(%.17g): %.17g vs %.17g", u,
                      m, l);
        double big = u * 1e6; // above 1 too
        ck_assert(fabs(ht_sample_log(big) - log(big)) <= 1e-14 * fabs(log(big)) + 1e-15);
        double x = u * u * 60.0; // 0 .. 60, dense near 0
        double e = -expm1(-x), f = ht_sample_expm1_neg(x);
        ck_assert_msg(fabs(f - e) <= 1e-14 * e, "expm1(-%.17g): %.17g vs %.17g", x, f, e);
    }
    for (double x = 1e-300; x < 1.0; x *= 7.3)
        ck_assert(fabs(ht_sample_expm1_neg(x) + expm1(-x)) <= 1e-14 * -expm1(-x));
    ck_assert(ht_sample_expm1_neg(0.0) == 0.0);
    ck_assert(ht_sample_log(1.0) == 0.0);
}
END_TEST

START_TEST(test_sample_rate_zero)
{
    uint64_t st = 1;
    ck_assert_int_eq(ht_sample_next(&st, 0), 0);
    ck_assert_uint_eq(ht_sample_weight(100, 0), HT_TF_WEIGHT_ONE);
}
END_TEST

START_TEST(test_sample_weights)
{
    const uint64_t R = 524288;
    const uint64_t sizes[] = {0, 1, 8, 100, 4096, 65536, 524288, 1 << 22, 1u << 30};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        double s = (double)sizes[i];
        double expect = HT_TF_WEIGHT_ONE / (1.0 - exp(-(s + 1) / (double)R));
        uint64_t w = ht_sample_weight(sizes[i], R);
        ck_assert_msg(fabs((double)w - expect) <= 1.0 + expect * 1e-12, "size %llu: %llu vs %f",
                      (unsigned long long)sizes[i], (unsigned long long)w, expect);
        ck_assert_uint_ge(w, HT_TF_WEIGHT_ONE);
    }
    // Small allocations stand for about R/(s+1) objects.
    double w1 = (double)ht_sample_weight(7, R) / HT_TF_WEIGHT_ONE;
    ck_assert(fabs(w1 - R / 8.0) / (R / 8.0) < 1e-3);
    // Huge ones are certain: weight one (and encode as plain ALLOC).
    ck_assert_uint_eq(ht_sample_weight(1ull << 34, R), HT_TF_WEIGHT_ONE);
}
END_TEST

/* The whole estimator: run a countdown over a stream of allocations of
 * mixed sizes, as rec.c does, and compare the weighted sums of the
 * sampled ones with the truth. */
START_TEST(test_sample_estimator_unbiased)
{
    const uint64_t R = 65536;
    uint64_t st = ht_sample_seed(7, 7), rnd = 42;
    int64_t countdown = ht_sample_next(&st, R);
    double true_n = 0, true_b = 0, est_n = 0, est_b = 0;
    for (int i = 0; i < 2000000; i++) {
        // Sizes 0..255 mostly, some 4 KiB, a few 1 MiB.
        uint64_t r = ht_sample_rand(&rnd);
        uint64_t s = (r % 100) < 90 ? (r >> 8) % 256 : (r % 100) < 99 ? 4096 : 1 << 20;
        true_n += 1;
        true_b += (double)s;
        countdown -= (int64_t)s + 1;
        if (countdown <= 0) {
            double w = (double)ht_sample_weight(s, R) / HT_TF_WEIGHT_ONE;
            est_n += w;
            est_b += w * (double)s;
            countdown = ht_sample_next(&st, R);
        }
    }
    // Standard error of the byte estimate is about sqrt(B * R): allow 5.
    double se_b = sqrt(true_b * (double)R);
    ck_assert_msg(fabs(est_b - true_b) < 5 * se_b, "bytes %.0f vs %.0f (se %.0f)", est_b, true_b,
                  se_b);
    ck_assert_msg(fabs(est_n - true_n) / true_n < 0.05, "objects %.0f vs %.0f", est_n, true_n);
}
END_TEST

Suite *
suite_sample(void)
{
    Suite *s = suite_create("sample");
    TCase *tc = tcase_create("sample");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_sample_exponential_moments);
    tcase_add_test(tc, test_sample_math_matches_libm);
    tcase_add_test(tc, test_sample_rate_zero);
    tcase_add_test(tc, test_sample_weights);
    tcase_add_test(tc, test_sample_estimator_unbiased);
    suite_add_tcase(s, tc);
    return s;
}
