/* Shared helpers for the test programs: deterministic fills, normalized errors and a
 * finite-difference gradient checker. */
#ifndef RN_TESTS_SUPPORT_CHECK_H
#define RN_TESTS_SUPPORT_CHECK_H

#include <stddef.h>
#include <stdint.h>

/* x[i] uniform in [lo, hi), from seed (same seed, same values). */
void rn_test_fill_uniform(float *x, size_t n, uint64_t seed, float lo, float hi);
/* x[i] normal with mean 0 and standard deviation std, from seed. */
void rn_test_fill_normal(float *x, size_t n, uint64_t seed, float std);
/* ||a - ref||_2 / max(||ref||_2, 1e-30), in double. NaN anywhere gives NaN. */
double rn_test_rel_err(const float *a, const float *ref, size_t n);
/* max_i |a[i]| (NaN if any a[i] is NaN). */
double rn_test_max_abs(const float *a, size_t n);

/* Evaluates a scalar loss (in double) from the current contents of the variables. */
typedef double (*rn_test_loss_fn)(void *ctx);

/* Central differences d = (L(x+eps e_i) - L(x-eps e_i)) / (2 eps) on up to max_checks
 * coordinates i of x (all if n <= max_checks, else a deterministic random subset from seed),
 * restoring x. Compares with grad[i]. Returns the worst error, where
 * error_i = |d - grad[i]| / max(|d|, |grad[i]|, floor) and floor = 1e-2 * max_j |grad[j]| + 1e-6
 * (so that tiny components do not dominate). Fills *worst_index when not NULL.
 * The step actually taken is the float difference (x+eps) - (x-eps) as rounded, so the
 * quotient is not biased by the rounding of x +- eps. A NaN anywhere makes the result NaN
 * (never a pass); an allocation failure returns +infinity. */
double rn_test_fd_check(rn_test_loss_fn loss, void *ctx, float *x, const float *grad, size_t n,
                        float eps, int max_checks, uint64_t seed, size_t *worst_index);

#endif
