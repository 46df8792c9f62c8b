/* Batch normalization over (n, hw) per channel, x[n, c, hw], optionally fused with the ReLU
 * that follows it (forward: one pass writes relu(bn(x)); backward: the ReLU's mask is applied
 * to dy on the fly), which saves a pass over memory each way.
 *
 * Statistics and gradient sums are accumulated in float within short blocks and in double
 * across them, in vector lanes whose order is fixed by the code (not by the compiler, the
 * instruction set or the thread count; see batchnorm_rows.h); the per-element passes run in
 * float. Every channel is independent, so the channel loops run in parallel without
 * changing any result. */
#include "kernels/kernels.h"

#include <math.h>
#include "kernels/batchnorm_rows.h"
#include "kernels/cpu.h"
#include "kernels/parallel.h"

static const rn_bn_rows *rows(void)
{
    return rn_cpu_simd() >= RN_SIMD_AVX2 ? &rn_bn_rows_avx2 : &rn_bn_rows_generic;
}

/* y = (x - mean) * scale + shift, then max(0, .) when relu. Centred first rather than folded
 * into x * scale + (shift - mean * scale): with few values per channel (2x2 maps, batch 2) a
 * channel's mean can dwarf its spread, and the folded form then cancels in float32
 * (measured: resnet50 gradients 4e-2 from a float64 reference instead of PyTorch's 9e-3). */
static void normalize_rows(const rn_bn_rows *r, float *y, const float *x, int n, size_t cs,
                           int hw, float mean, float scale, float shift, int relu)
{
    for (int i = 0; i < n; i++) r->normalize(y + i * cs, x + i * cs, hw, mean, scale, shift, relu);
}

static void forward_train(float *y, float *mean, float *var, const float *x, const float *gamma,
                          const float *beta, int n, int c, int hw, float eps, int relu)
{
    const size_t cs = (size_t)c * hw;
    const double m = (double)n * hw;
    const rn_bn_rows *r = rows();
#pragma omp parallel for schedule(dynamic, 1) if ((size_t)n * c * hw >= RN_OMP_MIN_WORK)
    for (int ch = 0; ch < c; ch++) {
        /* Two passes (mean, then squared deviations): no cancellation when |mean| >> std. */
        const float *xc = x + (size_t)ch * hw;
        const double mu = r->sum(xc, n, cs, hw) / m;
        const double v = r->sqdev(xc, n, cs, hw, mu) / m;
        mean[ch] = (float)mu;
        var[ch] = (float)v;
        const double scale = gamma[ch] / sqrt(v + (double)eps);
        normalize_rows(r, y + (size_t)ch * hw, x + (size_t)ch * hw, n, cs, hw, (float)mu,
                       (float)scale, beta[ch], relu);
    }
}

static void forward_eval(float *y, const float *x, const float *gamma, const float *beta,
                         const float *run_mean, const float *run_var, int n, int c, int hw,
                         float eps, int relu)
{
    const size_t cs = (size_t)c * hw;
    const rn_bn_rows *r = rows();
#pragma omp parallel for schedule(dynamic, 1) if ((size_t)n * c * hw >= RN_OMP_MIN_WORK)
    for (int ch = 0; ch < c; ch++) {
        const double scale = gamma[ch] / sqrt((double)run_var[ch] + (double)eps);
        normalize_rows(r, y + (size_t)ch * hw, x + (size_t)ch * hw, n, cs, hw, run_mean[ch],
                       (float)scale, beta[ch], relu);
    }
}

void rn_bn_forward_train(float *y, float *mean, float *var, const float *x, const float *gamma,
                         const float *beta, int n, int c, int hw, float eps)
{
    forward_train(y, mean, var, x, gamma, beta, n, c, hw, eps, 0);
}

void rn_bn_relu_forward_train(float *y, float *mean, float *var, const float *x,
                              const float *gamma, const float *beta, int n, int c, int hw,
                              float eps)
{
    forward_train(y, mean, var, x, gamma, beta, n, c, hw, eps, 1);
}

void rn_bn_forward_eval(float *y, const float *x, const float *gamma, const float *beta,
                        const float *run_mean, const float *run_var, int n, int c, int hw,
                        float eps)
{
    forward_eval(y, x, gamma, beta, run_mean, run_var, n, c, hw, eps, 0);
}

void rn_bn_relu_forward_eval(float *y, const float *x, const float *gamma, const float *beta,
                             const float *run_mean, const float *run_var, int n, int c, int hw,
                             float eps)
{
    forward_eval(y, x, gamma, beta, run_mean, run_var, n, c, hw, eps, 1);
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

/* Per channel, with xhat = (x - mean) * invstd, M = n*hw and g the gradient reaching the
 * normalisation (dy, masked by a fused ReLU):
 *   dbeta  += sum(g),  dgamma += sum(g * xhat),
 *   dx = gamma * invstd * (g - mean(g) - xhat * mean(g * xhat))   (training: batch statistics)
 *   dx = gamma * invstd * g                                         (evaluation: constants). */
static void backward(float *dx, float *dgamma, float *dbeta, const float *dy, const float *relu_y,
                     const float *x, const float *gamma, const float *mean, const float *var,
                     int n, int c, int hw, float eps, int train)
{
    const size_t cs = (size_t)c * hw;
    const double m = (double)n * hw;
    const rn_bn_rows *r = rows();
#pragma omp parallel for schedule(dynamic, 1) if ((size_t)n * c * hw >= RN_OMP_MIN_WORK)
    for (int ch = 0; ch < c; ch++) {
        const size_t o = (size_t)ch * hw;
        const double mu = mean[ch];
        const double invstd = 1.0 / sqrt((double)var[ch] + (double)eps);
        double sdy = 0.0, sdyx = 0.0;
        if (train || dgamma || dbeta) {
            r->grad_sums(dy + o, relu_y ? relu_y + o : NULL, x + o, n, cs, hw, mu, &sdy, &sdyx);
            sdyx *= invstd;
        }
        if (dbeta) dbeta[ch] += (float)sdy;
        if (dgamma) dgamma[ch] += (float)sdyx;
        if (!dx) continue;
        const double scale = gamma[ch] * invstd;
        /* dx = scale * g - (scale * mean(g) + (x - mu) * scale * invstd * mean(g * xhat)) */
        const float fs = (float)scale, fmu = (float)mu;
        const float off = train ? (float)(scale * sdy / m) : 0.0f;
        const float k = train ? (float)(scale * invstd * sdyx / m) : 0.0f;
        for (int i = 0; i < n; i++)
            r->dx(dx + i * cs + o, dy + i * cs + o, relu_y ? relu_y + i * cs + o : NULL,
                  x + i * cs + o, hw, fs, off, fmu, k);
    }
}

void rn_bn_backward_train(float *dx, float *dgamma, float *dbeta, const float *dy, const float *x,
                          const float *gamma, const float *mean, const float *var, int n, int c,
                          int hw, float eps)
{
    backward(dx, dgamma, dbeta, dy, NULL, x, gamma, mean, var, n, c, hw, eps, 1);
}

void rn_bn_relu_backward_train(float *dx, float *dgamma, float *dbeta, const float *dy,
                               const float *relu_y, const float *x, const float *gamma,
                               const float *mean, const float *var, int n, int c, int hw,
                               float eps)
{
    backward(dx, dgamma, dbeta, dy, relu_y, x, gamma, mean, var, n, c, hw, eps, 1);
}

void rn_bn_backward_eval(float *dx, float *dgamma, float *dbeta, const float *dy, const float *x,
                         const float *gamma, const float *run_mean, const float *run_var, int n,
                         int c, int hw, float eps)
{
    backward(dx, dgamma, dbeta, dy, NULL, x, gamma, run_mean, run_var, n, c, hw, eps, 0);
}

void rn_bn_relu_backward_eval(float *dx, float *dgamma, float *dbeta, const float *dy,
                              const float *relu_y, const float *x, const float *gamma,
                              const float *run_mean, const float *run_var, int n, int c, int hw,
                              float eps)
{
    backward(dx, dgamma, dbeta, dy, relu_y, x, gamma, run_mean, run_var, n, c, hw, eps, 0);
}
