/* Batch normalization over (n, hw) per channel, x[n, c, hw].
 * Statistics and gradient sums are accumulated in double. Every channel is independent, so
 * the channel loops run in parallel without changing any result. */
#include "kernels/kernels.h"

#include <math.h>
#include "kernels/parallel.h"

void rn_bn_forward_train(float *y, float *mean, float *var, const float *x, const float *gamma,
                         const float *beta, int n, int c, int hw, float eps)
{
    const size_t cs = (size_t)c * hw;
    const double m = (double)n * hw;
#pragma omp parallel for schedule(static) if ((size_t)n * c * hw >= RN_OMP_MIN_WORK)
    for (int ch = 0; ch < c; ch++) {
        /* Two passes (mean, then squared deviations): no cancellation when |mean| >> std. */
        double s = 0.0;
        for (int i = 0; i < n; i++) {
            const float *xc = x + i * cs + (size_t)ch * hw;
            for (int j = 0; j < hw; j++) s += xc[j];
        }
        const double mu = s / m;
        double ss = 0.0;
        for (int i = 0; i < n; i++) {
            const float *xc = x + i * cs + (size_t)ch * hw;
            for (int j = 0; j < hw; j++) {
                const double d = xc[j] - mu;
                ss += d * d;
            }
        }
        const double v = ss / m;
        mean[ch] = (float)mu;
        var[ch] = (float)v;
        const double invstd = 1.0 / sqrt(v + (double)eps);
        const double scale = gamma[ch] * invstd;
        /* (x - mean) * scale + beta, not x * scale + (beta - mean * scale): with few values
         * per channel (2x2 maps, batch 2) a channel's mean can dwarf its spread, and the
         * folded form then cancels in float32 (measured: resnet50 gradients 4e-2 from a
         * float64 reference instead of PyTorch's 9e-3). */
        for (int i = 0; i < n; i++) {
            const float *xc = x + i * cs + (size_t)ch * hw;
            float *yc = y + i * cs + (size_t)ch * hw;
            for (int j = 0; j < hw; j++) yc[j] = (float)((xc[j] - mu) * scale + beta[ch]);
        }
    }
}

void rn_bn_forward_eval(float *y, const float *x, const float *gamma, const float *beta,
                        const float *run_mean, const float *run_var, int n, int c, int hw,
                        float eps)
{
    const size_t cs = (size_t)c * hw;
#pragma omp parallel for schedule(static) if ((size_t)n * c * hw >= RN_OMP_MIN_WORK)
    for (int ch = 0; ch < c; ch++) {
        const double invstd = 1.0 / sqrt((double)run_var[ch] + (double)eps);
        const float scale = (float)(gamma[ch] * invstd);
        const float shift = (float)(beta[ch] - (double)run_mean[ch] * gamma[ch] * invstd);
        for (int i = 0; i < n; i++) {
            const float *xc = x + i * cs + (size_t)ch * hw;
            float *yc = y + i * cs + (size_t)ch * hw;
            for (int j = 0; j < hw; j++) yc[j] = xc[j] * scale + shift;
        }
    }
}

void rn_bn_update_running(float *run_mean, float *run_var, const float *mean, const float *var,
                          int c, int count, float momentum)
{
    const double unbias = count > 1 ? (double)count / (double)(count - 1) : 1.0;
    const double mo = momentum;
    for (int ch = 0; ch < c; ch++) {
        run_mean[ch] = (float)((1.0 - mo) * run_mean[ch] + mo * mean[ch]);
        run_var[ch] = (float)((1.0 - mo) * run_var[ch] + mo * var[ch] * unbias);
    }
}

/* Per channel, with xhat = (x - mean) * invstd and M = n*hw:
 *   dbeta  += sum(dy),  dgamma += sum(dy * xhat),
 *   dx = gamma * invstd / M * (M*dy - sum(dy) - xhat * sum(dy * xhat))
 *      = gamma * invstd * (dy - mean(dy) - xhat * mean(dy * xhat)). */
void rn_bn_backward_train(float *dx, float *dgamma, float *dbeta, const float *dy, const float *x,
                          const float *gamma, const float *mean, const float *var, int n, int c,
                          int hw, float eps)
{
    const size_t cs = (size_t)c * hw;
    const double m = (double)n * hw;
#pragma omp parallel for schedule(static) if ((size_t)n * c * hw >= RN_OMP_MIN_WORK)
    for (int ch = 0; ch < c; ch++) {
        const double mu = mean[ch];
        const double invstd = 1.0 / sqrt((double)var[ch] + (double)eps);
        double sdy = 0.0, sdyx = 0.0;
        for (int i = 0; i < n; i++) {
            const float *xc = x + i * cs + (size_t)ch * hw;
            const float *dyc = dy + i * cs + (size_t)ch * hw;
            for (int j = 0; j < hw; j++) {
                sdy += dyc[j];
                sdyx += dyc[j] * ((xc[j] - mu) * invstd);
            }
        }
        if (dbeta) dbeta[ch] += (float)sdy;
        if (dgamma) dgamma[ch] += (float)sdyx;
        if (!dx) continue;
        const double scale = gamma[ch] * invstd;
        const double mean_dy = sdy / m, mean_dyx = sdyx / m;
        for (int i = 0; i < n; i++) {
            const float *xc = x + i * cs + (size_t)ch * hw;
            const float *dyc = dy + i * cs + (size_t)ch * hw;
            float *dxc = dx + i * cs + (size_t)ch * hw;
            for (int j = 0; j < hw; j++) {
                const double xhat = (xc[j] - mu) * invstd;
                dxc[j] = (float)(scale * (dyc[j] - mean_dy - xhat * mean_dyx));
            }
        }
    }
}

void rn_bn_backward_eval(float *dx, float *dgamma, float *dbeta, const float *dy, const float *x,
                         const float *gamma, const float *run_mean, const float *run_var, int n,
                         int c, int hw, float eps)
{
    const size_t cs = (size_t)c * hw;
#pragma omp parallel for schedule(static) if ((size_t)n * c * hw >= RN_OMP_MIN_WORK)
    for (int ch = 0; ch < c; ch++) {
        const double mu = run_mean[ch];
        const double invstd = 1.0 / sqrt((double)run_var[ch] + (double)eps);
        if (dgamma || dbeta) {
            double sdy = 0.0, sdyx = 0.0;
            for (int i = 0; i < n; i++) {
                const float *xc = x + i * cs + (size_t)ch * hw;
                const float *dyc = dy + i * cs + (size_t)ch * hw;
                for (int j = 0; j < hw; j++) {
                    sdy += dyc[j];
                    sdyx += dyc[j] * ((xc[j] - mu) * invstd);
                }
            }
            if (dbeta) dbeta[ch] += (float)sdy;
            if (dgamma) dgamma[ch] += (float)sdyx;
        }
        if (!dx) continue;
        const float scale = (float)(gamma[ch] * invstd);
        for (int i = 0; i < n; i++) {
            const float *dyc = dy + i * cs + (size_t)ch * hw;
            float *dxc = dx + i * cs + (size_t)ch * hw;
            for (int j = 0; j < hw; j++) dxc[j] = dyc[j] * scale;
        }
    }
}
