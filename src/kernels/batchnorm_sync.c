/* Synchronised batch norm (see batchnorm_sync.h). The same row loops and formulas as
 * batchnorm.c, split into phases around the sums over processes: channel sums, then (with the
 * global mean) the squared deviations, then the normalisation; backward the gradient sums,
 * then dx. */
#include "kernels/batchnorm_sync.h"

#include <math.h>
#include "kernels/batchnorm_rows.h"
#include "kernels/cpu.h"
#include "kernels/kernels.h"
#include "kernels/parallel.h"

static const rn_bn_rows *rows(void)
{
    return rn_cpu_simd() >= RN_SIMD_AVX2 ? &rn_bn_rows_avx2 : &rn_bn_rows_generic;
}

int rn_bn_forward_train_allsum(float *y, float *mean, float *var, const float *x,
                               const float *gamma, const float *beta, int n, int c, int hw,
                               float eps, int relu, const rn_bn_allsum *s)
{
    const size_t cs = (size_t)c * hw;
    const rn_bn_rows *r = rows();
    double *sum = s->buf;
    const int big = (size_t)n * c * hw >= RN_OMP_MIN_WORK;
#pragma omp parallel for schedule(dynamic, 1) if (big)
    for (int ch = 0; ch < c; ch++) sum[ch] = r->sum(x + (size_t)ch * hw, n, cs, hw);
    sum[c] = (double)n * hw;
    s->sum(s->ctx, sum, c + 1);
    const double m = sum[c];
    /* the means stay in sum[], the squared deviations go after them */
    for (int ch = 0; ch < c; ch++) sum[ch] /= m;
    double *sq = sum + c;
#pragma omp parallel for schedule(dynamic, 1) if (big)
    for (int ch = 0; ch < c; ch++) sq[ch] = r->sqdev(x + (size_t)ch * hw, n, cs, hw, sum[ch]);
    s->sum(s->ctx, sq, c);
#pragma omp parallel for schedule(dynamic, 1) if (big)
    for (int ch = 0; ch < c; ch++) {
        const double mu = sum[ch], v = sq[ch] / m;
        mean[ch] = (float)mu;
        var[ch] = (float)v;
        const double scale = gamma[ch] / sqrt(v + (double)eps);
        for (int i = 0; i < n; i++)
            r->normalize(y + i * cs + (size_t)ch * hw, x + i * cs + (size_t)ch * hw, hw,
                         (float)mu, (float)scale, beta[ch], relu);
    }
    return (int)m;
}

void rn_bn_backward_train_allsum(float *dx, float *dgamma, float *dbeta, const float *dy,
                                 const float *relu_y, const float *x, const float *gamma,
                                 const float *mean, const float *var, int n, int c, int hw,
                                 float eps, const rn_bn_allsum *s)
{
    const size_t cs = (size_t)c * hw;
    const rn_bn_rows *r = rows();
    double *sdy = s->buf, *sdyx = s->buf + c;
    const int big = (size_t)n * c * hw >= RN_OMP_MIN_WORK;
#pragma omp parallel for schedule(dynamic, 1) if (big)
    for (int ch = 0; ch < c; ch++) {
        const size_t o = (size_t)ch * hw;
        const double invstd = 1.0 / sqrt((double)var[ch] + (double)eps);
        r->grad_sums(dy + o, relu_y ? relu_y + o : NULL, x + o, n, cs, hw, mean[ch], &sdy[ch],
                     &sdyx[ch]);
        sdyx[ch] *= invstd;
        if (dbeta) dbeta[ch] += (float)sdy[ch];
        if (dgamma) dgamma[ch] += (float)sdyx[ch];
    }
    sdy[2 * c] = (double)n * hw;
    s->sum(s->ctx, sdy, 2 * c + 1);
    if (!dx) return;
    const double m = sdy[2 * c];
#pragma omp parallel for schedule(dynamic, 1) if (big)
    for (int ch = 0; ch < c; ch++) {
        const size_t o = (size_t)ch * hw;
        const double mu = mean[ch];
        const double invstd = 1.0 / sqrt((double)var[ch] + (double)eps);
        const double scale = gamma[ch] * invstd;
        const float fs = (float)scale, fmu = (float)mu;
        const float off = (float)(scale * sdy[ch] / m);
        const float k = (float)(scale * invstd * sdyx[ch] / m);
        for (int i = 0; i < n; i++)
            r->dx(dx + i * cs + o, dy + i * cs + o, relu_y ? relu_y + i * cs + o : NULL,
                  x + i * cs + o, hw, fs, off, fmu, k);
    }
}
