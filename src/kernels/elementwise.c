/* Elementwise kernels. Each element is independent, so the loops are parallel and exact. */
#include "kernels/kernels.h"

#include <math.h>
#include <stdint.h>
#include <string.h>
#include "kernels/parallel.h"

void rn_relu_forward(float *y, const float *x, size_t len)
{
#pragma omp parallel for schedule(dynamic, RN_OMP_CHUNK) if (len >= RN_OMP_MIN_WORK)
    for (size_t i = 0; i < len; i++) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

/* From the output: y > 0 exactly where x > 0, so the gradient at x == 0 is 0 (as torch). */
void rn_relu_backward(float *dx, const float *dy, const float *y, size_t len)
{
#pragma omp parallel for schedule(dynamic, RN_OMP_CHUNK) if (len >= RN_OMP_MIN_WORK)
    for (size_t i = 0; i < len; i++) {
        const float g = dy[i]; /* read unconditionally, so the loop vectorises */
        dx[i] = y[i] > 0.0f ? g : 0.0f;
    }
}

void rn_sigmoid_forward(float *y, const float *x, size_t len)
{
#pragma omp parallel for schedule(dynamic, RN_OMP_CHUNK) if (len >= RN_OMP_MIN_WORK)
    for (size_t i = 0; i < len; i++) {
        const float v = x[i];
        /* exp of a non-positive argument only: no overflow for large |x|. */
        if (v >= 0.0f) {
            y[i] = 1.0f / (1.0f + expf(-v));
        } else {
            const float e = expf(v);
            y[i] = e / (1.0f + e);
        }
    }
}

void rn_sigmoid_backward(float *dx, const float *dy, const float *y, size_t len)
{
#pragma omp parallel for schedule(dynamic, RN_OMP_CHUNK) if (len >= RN_OMP_MIN_WORK)
    for (size_t i = 0; i < len; i++) dx[i] = dy[i] * y[i] * (1.0f - y[i]);
}

void rn_add_scaled(float *y, const float *a, const float *b, float alpha, size_t len)
{
#pragma omp parallel for schedule(dynamic, RN_OMP_CHUNK) if (len >= RN_OMP_MIN_WORK)
    for (size_t i = 0; i < len; i++) y[i] = a[i] + alpha * b[i];
}

void rn_add_scaled_relu(float *y, const float *a, const float *b, float alpha, size_t len)
{
#pragma omp parallel for schedule(dynamic, RN_OMP_CHUNK) if (len >= RN_OMP_MIN_WORK)
    for (size_t i = 0; i < len; i++) {
        const float v = a[i] + alpha * b[i];
        y[i] = v > 0.0f ? v : 0.0f;
    }
}

void rn_add_relu_backward(float *dx, const float *a, const float *b, const float *y, size_t len)
{
#pragma omp parallel for schedule(dynamic, RN_OMP_CHUNK) if (len >= RN_OMP_MIN_WORK)
    for (size_t i = 0; i < len; i++) {
        /* as a mask on the sum's bits (+0 where the ReLU was off): written as a choice, GCC
         * moved the addition into one branch, as it may not run it where the result is not
         * used (it could raise an exception), and left the loop scalar, 2.5x the time of the
         * two passes it replaces */
        const float g = a[i] + b[i];
        uint32_t bits;
        memcpy(&bits, &g, sizeof bits);
        bits &= -(uint32_t)(y[i] > 0.0f);
        memcpy(&dx[i], &bits, sizeof bits);
    }
}

void rn_copy(float *y, const float *x, size_t len)
{
    const size_t chunks = (len + RN_OMP_CHUNK - 1) / RN_OMP_CHUNK;
#pragma omp parallel for schedule(dynamic, 1) if (len >= RN_OMP_MIN_WORK)
    for (size_t c = 0; c < chunks; c++) {
        const size_t i0 = c * RN_OMP_CHUNK, n = len - i0 < RN_OMP_CHUNK ? len - i0 : RN_OMP_CHUNK;
        memcpy(y + i0, x + i0, n * sizeof(float));
    }
}

double rn_sum_sq(const float *a, size_t len)
{
    double s = 0.0;
    for (size_t i = 0; i < len; i++) s += (double)a[i] * a[i];
    return s;
}

double rn_diff_sum_sq(const float *a, const float *b, size_t len)
{
    double s = 0.0;
    for (size_t i = 0; i < len; i++) {
        const double d = (double)a[i] - b[i];
        s += d * d;
    }
    return s;
}

void rn_sgd_update(float *p, const float *g, float *buf, size_t len, float lr, float wd, float mu,
                   int started, int nesterov)
{
    if (mu == 0.0f) {
#pragma omp parallel for schedule(dynamic, RN_OMP_CHUNK) if (len >= RN_OMP_MIN_WORK)
        for (size_t i = 0; i < len; i++) p[i] = p[i] - lr * (g[i] + wd * p[i]);
        return;
    }
#pragma omp parallel for schedule(dynamic, RN_OMP_CHUNK) if (len >= RN_OMP_MIN_WORK)
    for (size_t i = 0; i < len; i++) {
        const float d = g[i] + wd * p[i];
        const float b = started ? mu * buf[i] + d : d;
        buf[i] = b;
        p[i] = p[i] - lr * (nesterov ? d + mu * b : b);
    }
}
