/* The per-row loops of batch normalization, included by batchnorm.c (portable build) and
 * batchnorm_avx2.c (AVX2 build) to define BN_ROWS_NAME; batchnorm.c picks one at run time.
 *
 * Sums are accumulated in double in GCC vector types of four lanes, two accumulators per
 * row, combined in a fixed order: the order is set by this code, not by the compiler or the
 * instruction set, so both builds give the same bits (the portable one splits each vector
 * into SSE2 halves, the AVX2 one uses whole ymm registers: a row's 8 floats per step become
 * two conversions and two adds instead of four of each). GCC does not vectorise a
 * float-to-double reduction written as scalar code. */
#ifndef RN_KERNELS_BATCHNORM_ROWS_TYPES
#define RN_KERNELS_BATCHNORM_ROWS_TYPES

typedef struct {
    /* sum(x) and sum((x - mu)^2) over one row */
    double (*sum)(const float *x, int len);
    double (*sqdev)(const float *x, int len, double mu);
    /* *sdy += sum(g), *sdyx += sum(g * (x - mu)), g = dy zeroed where relu_y <= 0 (relu_y
     * NULL: g = dy) */
    void (*grad_sums)(const float *dy, const float *relu_y, const float *x, int len, double mu,
                      double *sdy, double *sdyx);
    /* y = (x - mean) * scale + shift, then max(0, .) when relu */
    void (*normalize)(float *y, const float *x, int len, float mean, float scale, float shift,
                      int relu);
    /* dx = fs * g - off - (x - mu) * k */
    void (*dx)(float *dx, const float *dy, const float *relu_y, const float *x, int len,
               float fs, float off, float mu, float k);
} rn_bn_rows;
extern const rn_bn_rows rn_bn_rows_generic, rn_bn_rows_avx2;

#endif

#ifdef BN_ROWS_NAME
#include <string.h>

/* The helpers below pass 32-byte vectors by value; they are static and inlined, so the
 * calling-convention difference GCC warns about for builds without AVX never arises. */
#pragma GCC diagnostic ignored "-Wpsabi"

typedef float v4f __attribute__((vector_size(16)));
typedef int v4i __attribute__((vector_size(16)));
typedef double v4d __attribute__((vector_size(32)));

static inline v4d load4d(const float *p)
{
    v4f f;
    memcpy(&f, p, sizeof f);
    return __builtin_convertvector(f, v4d);
}

/* dy, zeroed where the fused ReLU's output is not positive (as torch: no gradient at 0). */
static inline v4d load4d_masked(const float *dy, const float *relu_y)
{
    v4f d, y;
    memcpy(&d, dy, sizeof d);
    if (relu_y) {
        memcpy(&y, relu_y, sizeof y);
        const v4f zero = {0.0f, 0.0f, 0.0f, 0.0f};
        d = (v4f)((v4i)d & (y > zero));
    }
    return __builtin_convertvector(d, v4d);
}

static inline double hsum(v4d a0, v4d a1)
{
    const v4d s = a0 + a1;
    return (s[0] + s[1]) + (s[2] + s[3]);
}

static double row_sum(const float *x, int len)
{
    v4d a0 = {0}, a1 = {0};
    int j = 0;
    for (; j + 8 <= len; j += 8) {
        a0 += load4d(x + j);
        a1 += load4d(x + j + 4);
    }
    double t = hsum(a0, a1);
    for (; j < len; j++) t += x[j];
    return t;
}

static double row_sqdev(const float *x, int len, double mu)
{
    const v4d m = {mu, mu, mu, mu};
    v4d a0 = {0}, a1 = {0};
    int j = 0;
    for (; j + 8 <= len; j += 8) {
        const v4d d0 = load4d(x + j) - m, d1 = load4d(x + j + 4) - m;
        a0 += d0 * d0;
        a1 += d1 * d1;
    }
    double t = hsum(a0, a1);
    for (; j < len; j++) t += (x[j] - mu) * (x[j] - mu);
    return t;
}

static void row_grad_sums(const float *dy, const float *relu_y, const float *x, int len,
                          double mu, double *sdy, double *sdyx)
{
    const v4d m = {mu, mu, mu, mu};
    v4d a0 = {0}, a1 = {0}, b0 = {0}, b1 = {0};
    int j = 0;
    for (; j + 8 <= len; j += 8) {
        const v4d g0 = load4d_masked(dy + j, relu_y ? relu_y + j : NULL);
        const v4d g1 = load4d_masked(dy + j + 4, relu_y ? relu_y + j + 4 : NULL);
        a0 += g0;
        a1 += g1;
        b0 += g0 * (load4d(x + j) - m);
        b1 += g1 * (load4d(x + j + 4) - m);
    }
    double ta = hsum(a0, a1), tb = hsum(b0, b1);
    for (; j < len; j++) {
        const double g = relu_y && !(relu_y[j] > 0.0f) ? 0.0 : dy[j];
        ta += g;
        tb += g * (x[j] - mu);
    }
    *sdy += ta;
    *sdyx += tb;
}

/* restrict: the rows never overlap, and without it GCC keeps these loops scalar. */
static void row_normalize(float *restrict y, const float *restrict x, int len, float mean,
                          float scale, float shift, int relu)
{
    if (relu)
        for (int j = 0; j < len; j++) {
            const float v = (x[j] - mean) * scale + shift;
            y[j] = v > 0.0f ? v : 0.0f;
        }
    else
        for (int j = 0; j < len; j++) y[j] = (x[j] - mean) * scale + shift;
}

static void row_dx(float *restrict dx, const float *restrict dy, const float *restrict relu_y,
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

const rn_bn_rows BN_ROWS_NAME = {row_sum, row_sqdev, row_grad_sums, row_normalize, row_dx};
#endif
