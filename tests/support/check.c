#include "check.h"

#include <math.h>
#include <stdlib.h>

#include "core/rng.h"

void rn_test_fill_uniform(float *x, size_t n, uint64_t seed, float lo, float hi)
{
    rn_rng r;
    rn_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * rn_rng_uniform(&r);
}

void rn_test_fill_normal(float *x, size_t n, uint64_t seed, float std)
{
    rn_rng r;
    rn_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) x[i] = std * rn_rng_normal(&r);
}

double rn_test_rel_err(const float *a, const float *ref, size_t n)
{
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < n; i++) {
        const double d = (double)a[i] - (double)ref[i];
        num += d * d;
        den += (double)ref[i] * (double)ref[i];
    }
    return sqrt(num) / fmax(sqrt(den), 1e-30);
}

double rn_test_max_abs(const float *a, size_t n)
{
    double m = 0.0;
    for (size_t i = 0; i < n; i++) {
        const double v = fabs((double)a[i]);
        if (v != v) return NAN;
        if (v > m) m = v;
    }
    return m;
}

double rn_test_fd_check(rn_test_loss_fn loss, void *ctx, float *x, const float *grad, size_t n,
                        float eps, int max_checks, uint64_t seed, size_t *worst_index)
{
    if (worst_index) *worst_index = 0;
    if (n == 0 || max_checks <= 0) return 0.0;
    const double gmax = rn_test_max_abs(grad, n);
    if (gmax != gmax) return NAN;
    const double floor_ = 1e-2 * gmax + 1e-6;

    /* Coordinates to check: all, or the first max_checks of a seeded Fisher-Yates shuffle. */
    size_t count = n;
    size_t *idx = NULL;
    if (n > (size_t)max_checks) {
        count = (size_t)max_checks;
        idx = malloc(sizeof(size_t) * n);
        if (!idx) return INFINITY;
        for (size_t i = 0; i < n; i++) idx[i] = i;
        rn_rng r;
        rn_rng_seed(&r, seed);
        for (size_t i = 0; i < count; i++) {
            const size_t j = i + (size_t)(rn_rng_u64(&r) % (uint64_t)(n - i));
            const size_t t = idx[i];
            idx[i] = idx[j];
            idx[j] = t;
        }
    }

    double worst = 0.0;
    for (size_t t = 0; t < count; t++) {
        const size_t i = idx ? idx[t] : t;
        const float x0 = x[i];
        const float xp = x0 + eps, xm = x0 - eps;
        x[i] = xp;
        const double lp = loss(ctx);
        x[i] = xm;
        const double lm = loss(ctx);
        x[i] = x0;
        const double d = (lp - lm) / ((double)xp - (double)xm);
        const double g = grad[i];
        const double err = fabs(d - g) / fmax(fmax(fabs(d), fabs(g)), floor_);
        if (err != err) { /* NaN: report it and stop */
            worst = NAN;
            if (worst_index) *worst_index = i;
            break;
        }
        if (err > worst || t == 0) {
            worst = err;
            if (worst_index) *worst_index = i;
        }
    }
    free(idx);
    return worst;
}
