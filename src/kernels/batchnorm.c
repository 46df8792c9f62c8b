/* Batch normalization over (n, hw) per channel, x[n, c, hw], optionally fused with the ReLU
 * that follows it (forward: one pass writes relu(bn(x)); backward: the ReLU's mask is applied
 * to dy on the fly), which saves a pass over memory each way.
 *
 * Statistics and gradient sums are accumulated in double, in vector lanes whose order is
 * fixed by the code (not by the compiler or the thread count); the per-element passes run in
 * float. Every channel is independent, so the
 * channel loops run in parallel without changing any result. */
#include "kernels/kernels.h"

#include <math.h>
#include <string.h>
#include "kernels/parallel.h"

/* GCC vector extensions, two lanes of double (an SSE2 register): GCC does not vectorise a
 * float-to-double reduction written as scalar code. Four accumulators per row, combined in a
 * fixed order. */
typedef float v2f __attribute__((vector_size(8)));
typedef int v2i __attribute__((vector_size(8)));
typedef double v2d __attribute__((vector_size(16)));

static inline v2d load2d(const float *p)
{
    v2f f;
    memcpy(&f, p, sizeof f);
    return __builtin_convertvector(f, v2d);
}

/* dy, zeroed where the fused ReLU's output is not positive (as torch: no gradient at 0). */
static inline v2d load2d_masked(const float *dy, const float *relu_y)
{
    v2f d, y;
    memcpy(&d, dy, sizeof d);
    if (relu_y) {
        memcpy(&y, relu_y, sizeof y);
        const v2f zero = {0.0f, 0.0f};
        d = (v2f)((v2i)d & (y > zero));
    }
    return __builtin_convertvector(d, v2d);
}

static inline double hsum(const v2d *a)
{
    const v2d s = (a[0] + a[1]) + (a[2] + a[3]);
    return s[0] + s[1];
}

/* Fixed-order double sums over one row of a channel: sum(x) and sum((x - mu)^2). */
static double row_sum(const float *x, int len)
{
    v2d a[4] = {{0}};
    int j = 0;
    for (; j + 8 <= len; j += 8)
        for (int l = 0; l < 4; l++) a[l] += load2d(x + j + 2 * l);
    double t = hsum(a);
    for (; j < len; j++) t += x[j];
    return t;
}

static double row_sqdev(const float *x, int len, double mu)
{
    const v2d m = {mu, mu};
    v2d a[4] = {{0}};
    int j = 0;
    for (; j + 8 <= len; j += 8)
        for (int l = 0; l < 4; l++) {
            const v2d d = load2d(x + j + 2 * l) - m;
            a[l] += d * d;
        }
    double t = hsum(a);
    for (; j < len; j++) t += (x[j] - mu) * (x[j] - mu);
    return t;
}

static inline float masked(const float *dy, const float *relu_y, int j)
{
    const float g = dy[j];
    return relu_y ? (relu_y[j] > 0.0f ? g : 0.0f) : g;
}

/* sum(g) and sum(g * (x - mu)) over one row, g = dy masked by the fused ReLU. */
static void row_grad_sums(const float *dy, const float *relu_y, const float *x, int len,
                          double mu, double *sdy, double *sdyx)
{
    const v2d m = {mu, mu};
    v2d a[4] = {{0}}, b[4] = {{0}};
    int j = 0;
    for (; j + 8 <= len; j += 8)
        for (int l = 0; l < 4; l++) {
            const v2d g = load2d_masked(dy + j + 2 * l, relu_y ? relu_y + j + 2 * l : NULL);
            a[l] += g;
            b[l] += g * (load2d(x + j + 2 * l) - m);
        }
    double ta = hsum(a), tb = hsum(b);
    for (; j < len; j++) {
        const double g = masked(dy, relu_y, j);
        ta += g;
        tb += g * (x[j] - mu);
    }
    *sdy += ta;
    *sdyx += tb;
}

/* y = (x - mean) * scale + shift, then max(0, .) when relu. Centred first rather than folded
 * into x * scale + (shift - mean * scale): with few values per channel (2x2 maps, batch 2) a
 * channel's mean can dwarf its spread, and the folded form then cancels in float32
 * (measured: resnet50 gradients 4e-2 from a float64 reference instead of PyTorch's 9e-3). */
static void normalize_rows(float *y, const float *x, int n, size_t cs, int hw, float mean,
                           float scale, float shift, int relu)
{
    for (int i = 0; i < n; i++) {
        const float *xc = x + i * cs;
        float *yc = y + i * cs;
        if (relu) {
            for (int j = 0; j < hw; j++) {
                const float v = (xc[j] - mean) * scale + shift;
                yc[j] = v > 0.0f ? v : 0.0f;
            }
        } else {
            for (int j = 0; j < hw; j++) yc[j] = (xc[j] - mean) * scale + shift;
        }
    }
}

static void forward_train(float *y, float *mean, float *var, const float *x, const float *gamma,
                          const float *beta, int n, int c, int hw, float eps, int relu)
{
    const size_t cs = (size_t)c * hw;
    const double m = (double)n * hw;
#pragma omp parallel for schedule(dynamic, 1) if ((size_t)n * c * hw >= RN_OMP_MIN_WORK)
    for (int ch = 0; ch < c; ch++) {
        /* Two passes (mean, then squared deviations): no cancellation when |mean| >> std. */
        double sum = 0.0;
        for (int i = 0; i < n; i++) sum += row_sum(x + i * cs + (size_t)ch * hw, hw);
        const double mu = sum / m;
        double sq = 0.0;
        for (int i = 0; i < n; i++) sq += row_sqdev(x + i * cs + (size_t)ch * hw, hw, mu);
        const double v = sq / m;
        mean[ch] = (float)mu;
        var[ch] = (float)v;
        const double scale = gamma[ch] / sqrt(v + (double)eps);
        normalize_rows(y + (size_t)ch * hw, x + (size_t)ch * hw, n, cs, hw, (float)mu,
                       (float)scale, beta[ch], relu);
    }
}

static void forward_eval(float *y, const float *x, const float *gamma, const float *beta,
                         const float *run_mean, const float *run_var, int n, int c, int hw,
                         float eps, int relu)
{
    const size_t cs = (size_t)c * hw;
#pragma omp parallel for schedule(dynamic, 1) if ((size_t)n * c * hw >= RN_OMP_MIN_WORK)
    for (int ch = 0; ch < c; ch++) {
        const double scale = gamma[ch] / sqrt((double)run_var[ch] + (double)eps);
        normalize_rows(y + (size_t)ch * hw, x + (size_t)ch * hw, n, cs, hw, run_mean[ch],
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

/* dx = fs * g - off - (x - mu) * k over one row, g = dy masked by the fused ReLU. restrict:
 * the rows never overlap, and without it GCC keeps this loop scalar. */
static void dx_row(float *restrict dx, const float *restrict dy, const float *restrict relu_y,
                   const float *restrict x, int len, float fs, float off, float mu, float k)
{
    if (relu_y)
        for (int j = 0; j < len; j++) {
            const float d = dy[j]; /* read unconditionally, so the loop vectorises */
            dx[j] = fs * (relu_y[j] > 0.0f ? d : 0.0f) - off - (x[j] - mu) * k;
        }
    else
        for (int j = 0; j < len; j++) dx[j] = fs * dy[j] - off - (x[j] - mu) * k;
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
#pragma omp parallel for schedule(dynamic, 1) if ((size_t)n * c * hw >= RN_OMP_MIN_WORK)
    for (int ch = 0; ch < c; ch++) {
        const size_t o = (size_t)ch * hw;
        const double mu = mean[ch];
        const double invstd = 1.0 / sqrt((double)var[ch] + (double)eps);
        double sdy = 0.0, sdyx = 0.0;
        if (train || dgamma || dbeta) {
            for (int i = 0; i < n; i++)
                row_grad_sums(dy + i * cs + o, relu_y ? relu_y + i * cs + o : NULL,
                              x + i * cs + o, hw, mu, &sdy, &sdyx);
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
            dx_row(dx + i * cs + o, dy + i * cs + o, relu_y ? relu_y + i * cs + o : NULL,
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
