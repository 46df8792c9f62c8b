/* The per-row loops of batch normalization, included by batchnorm.c (portable build) and
 * batchnorm_avx2.c (AVX2 build) to define BN_ROWS_NAME; batchnorm.c picks one at run time.
 *
 * Sums run in GCC vector types, float within blocks of a row and double across blocks and
 * rows, combined in a fixed order: the order is set by this code, not by the compiler or the
 * instruction set, so both builds give the same bits (the portable one splits each vector
 * into SSE2 halves, the AVX2 one uses whole ymm registers). GCC does not vectorise a
 * reduction written as scalar code without -ffast-math's licence to reorder it. */
#ifndef RN_KERNELS_BATCHNORM_ROWS_TYPES
#define RN_KERNELS_BATCHNORM_ROWS_TYPES

#include <stddef.h>

typedef struct {
    /* Over the n rows of one channel, row i at x + i * cs, each len floats: sum(x), sum((x -
     * mu)^2), and (*sdy, *sdyx) = (sum(g), sum(g * (x - mu))), g = dy zeroed where relu_y <= 0
     * (relu_y NULL: g = dy) */
    double (*sum)(const float *x, int n, size_t cs, int len);
    double (*sqdev)(const float *x, int n, size_t cs, int len, double mu);
    void (*grad_sums)(const float *dy, const float *relu_y, const float *x, int n, size_t cs,
                      int len, double mu, double *sdy, double *sdyx);
    /* one row: y = (x - mean) * scale + shift, then max(0, .) when relu */
    void (*normalize)(float *y, const float *x, int len, float mean, float scale, float shift,
                      int relu);
    /* one row: dx = fs * g - off - (x - mu) * k */
    void (*dx)(float *dx, const float *dy, const float *relu_y, const float *x, int len,
               float fs, float off, float mu, float k);
} rn_bn_rows;
extern const rn_bn_rows rn_bn_rows_generic, rn_bn_rows_avx2;

#endif

#ifdef BN_ROWS_NAME
#include <string.h>
#include "kernels/prefetch.h"

/* The helpers below pass 32-byte vectors by value; they are static and inlined, so the
 * calling-convention difference GCC warns about for builds without AVX never arises. */
#pragma GCC diagnostic ignored "-Wpsabi"

typedef float v8f __attribute__((vector_size(32)));
typedef int v8i __attribute__((vector_size(32)));
typedef double v4d __attribute__((vector_size(32)));

/* Floats summed per lane before they are added into double: short enough (SUM_BLOCK / 16
 * per lane) that the float partial sums lose nothing a BN could see, long enough that the
 * conversions to double (the cost of the former all-double loops, which ran at about a third
 * of the float passes' speed) are rare. */
#define SUM_BLOCK 256

static inline v8f load8(const float *p)
{
    v8f f;
    memcpy(&f, p, sizeof f);
    return f;
}

/* dy, zeroed where the fused ReLU's output is not positive (as torch: no gradient at 0). */
static inline v8f load8_masked(const float *dy, const float *relu_y)
{
    v8f d = load8(dy);
    if (relu_y) {
        const v8f zero = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
        d = (v8f)((v8i)d & (load8(relu_y) > zero));
    }
    return d;
}

/* acc += a0 + a1, widened to double lane by lane. */
static inline void widen_add(v4d *acc, v8f a0, v8f a1)
{
    const v8f s = a0 + a1;
    const v4d lo = {s[0], s[1], s[2], s[3]}, hi = {s[4], s[5], s[6], s[7]};
    *acc += lo + hi;
}

static inline double hsum(v4d a)
{
    return (a[0] + a[1]) + (a[2] + a[3]);
}

/* The three sums below share one shape, over the n rows of one channel (row i at i * cs):
 * each row's runs of 16 and then 8 floats go into 8-lane float accumulators, which are added
 * into 4 double lanes whenever SUM_BLOCK floats have gone in since the last time, and at the
 * end; what is left of a row (under 8 floats) is summed one by one in double. Counting the
 * block across rows keeps the conversions rare on small maps too (a 4x4 map's row is 16
 * floats). */
static inline int flush_due(int *pending, int added, int last)
{
    *pending += added;
    if (*pending < SUM_BLOCK && !last) return 0;
    *pending = 0;
    return 1;
}

/* sum(x - mu) (square 0; mu 0 for the sum) or sum((x - mu)^2) (square 1) over one
 * channel's rows; square is a constant in each caller, so the branches fold away. */
static inline double channel_moment(const float *x, int n, size_t cs, int len, double mu,
                                    int square)
{
    const float fm = (float)mu;
    const v8f m = {fm, fm, fm, fm, fm, fm, fm, fm}, zero = {0};
    v4d acc = {0};
    v8f a0 = zero, a1 = zero;
    double t = 0.0;
    int pending = 0;
    const int ahead = rn_prefetch_rows_ahead(len);
    for (int i = 0; i < n; i++) {
        const float *row = x + (size_t)i * cs;
        if (!square && i + ahead < n) /* the first pass over the channel (prefetch.h) */
            rn_prefetch_read(row + (size_t)ahead * cs, (size_t)len);
        int j = 0;
        for (; j + 16 <= len; j += 16) {
            const v8f v0 = load8(row + j) - m, v1 = load8(row + j + 8) - m;
            a0 += square ? v0 * v0 : v0;
            a1 += square ? v1 * v1 : v1;
        }
        if (j + 8 <= len) {
            const v8f v0 = load8(row + j) - m;
            a0 += square ? v0 * v0 : v0;
            j += 8;
        }
        if (flush_due(&pending, j, i == n - 1)) {
            widen_add(&acc, a0, a1);
            a0 = a1 = zero;
        }
        for (; j < len; j++)
            t += square ? ((double)row[j] - mu) * ((double)row[j] - mu) : (double)row[j];
    }
    return hsum(acc) + t;
}

static double channel_sum(const float *x, int n, size_t cs, int len)
{
    return channel_moment(x, n, cs, len, 0.0, 0);
}

static double channel_sqdev(const float *x, int n, size_t cs, int len, double mu)
{
    return channel_moment(x, n, cs, len, mu, 1);
}

static void channel_grad_sums(const float *dy, const float *relu_y, const float *x, int n,
                              size_t cs, int len, double mu, double *sdy, double *sdyx)
{
    const float fm = (float)mu;
    const v8f m = {fm, fm, fm, fm, fm, fm, fm, fm}, zero = {0};
    v4d acc_g = {0}, acc_gx = {0};
    v8f a0 = zero, a1 = zero, b0 = zero, b1 = zero;
    double ta = 0.0, tb = 0.0;
    int pending = 0;
    const int ahead = rn_prefetch_rows_ahead(len);
    for (int i = 0; i < n; i++) {
        const size_t r0 = (size_t)i * cs;
        const float *d = dy + r0, *xr = x + r0, *ry = relu_y ? relu_y + r0 : NULL;
        if (i + ahead < n) {
            const size_t ra = (size_t)ahead * cs;
            rn_prefetch_read(d + ra, (size_t)len);
            rn_prefetch_read(xr + ra, (size_t)len);
            if (ry) rn_prefetch_read(ry + ra, (size_t)len);
        }
        int j = 0;
        for (; j + 16 <= len; j += 16) {
            const v8f g0 = load8_masked(d + j, ry ? ry + j : NULL);
            const v8f g1 = load8_masked(d + j + 8, ry ? ry + j + 8 : NULL);
            a0 += g0;
            a1 += g1;
            b0 += g0 * (load8(xr + j) - m);
            b1 += g1 * (load8(xr + j + 8) - m);
        }
        if (j + 8 <= len) {
            const v8f g0 = load8_masked(d + j, ry ? ry + j : NULL);
            a0 += g0;
            b0 += g0 * (load8(xr + j) - m);
            j += 8;
        }
        if (flush_due(&pending, j, i == n - 1)) {
            widen_add(&acc_g, a0, a1);
            widen_add(&acc_gx, b0, b1);
            a0 = a1 = b0 = b1 = zero;
        }
        for (; j < len; j++) {
            const double g = ry && !(ry[j] > 0.0f) ? 0.0 : d[j];
            ta += g;
            tb += g * ((double)xr[j] - mu);
        }
    }
    *sdy = hsum(acc_g) + ta;
    *sdyx = hsum(acc_gx) + tb;
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

const rn_bn_rows BN_ROWS_NAME = {channel_sum, channel_sqdev, channel_grad_sums, row_normalize,
                                 row_dx};
#endif
