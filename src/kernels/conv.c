/* 2-D convolution (cross-correlation) by im2col + GEMM, one image at a time.
 *
 * For one image, with CRS = c*r*s and P = oh*ow:
 *   col[CRS, P]   = im2col(x)                       (col[(ci*r+ky)*s+kx][oy*ow+ox])
 *   y[k, P]       = w[k, CRS] * col[CRS, P] (+ b)
 *   dw[k, CRS]   += dy[k, P] * col[CRS, P]^T
 *   dcol[CRS, P]  = w[k, CRS]^T * dy[k, P];  dx = col2im(dcol)
 * A 1x1 stride-1 pad-0 convolution has col == x, so it needs no workspace. */
#include "kernels/kernels.h"

#include <string.h>
#include "kernels/parallel.h"

static int conv_is_pointwise(const rn_conv_shape *sh)
{
    return sh->r == 1 && sh->s == 1 && sh->stride == 1 && sh->pad == 0;
}

int rn_conv_shape_init(rn_conv_shape *sh, int n, int c, int h, int w, int k, int r, int s,
                       int stride, int pad)
{
    sh->n = n;
    sh->c = c;
    sh->h = h;
    sh->w = w;
    sh->k = k;
    sh->r = r;
    sh->s = s;
    sh->stride = stride;
    sh->pad = pad;
    sh->oh = 0;
    sh->ow = 0;
    if (n <= 0 || c <= 0 || h <= 0 || w <= 0 || k <= 0 || r <= 0 || s <= 0 || stride <= 0 ||
        pad < 0)
        return -1;
    int eh = h + 2 * pad - r, ew = w + 2 * pad - s;
    if (eh < 0 || ew < 0) return -1;
    sh->oh = eh / stride + 1;
    sh->ow = ew / stride + 1;
    return 0;
}

size_t rn_conv_workspace(const rn_conv_shape *sh)
{
    if (conv_is_pointwise(sh)) return 0;
    return (size_t)sh->c * (size_t)sh->r * (size_t)sh->s * (size_t)sh->oh * (size_t)sh->ow;
}

/* col[CRS, P] from one image x[c, h, w]; out-of-image taps are 0. Each (ci, ky, kx) row is
 * written by exactly one iteration, so the channel loop is safe to run in parallel. */
static void im2col(float *col, const float *x, const rn_conv_shape *sh)
{
    const int c = sh->c, h = sh->h, w = sh->w, r = sh->r, s = sh->s;
    const int oh = sh->oh, ow = sh->ow, st = sh->stride, pad = sh->pad;
    const size_t plane = (size_t)oh * (size_t)ow;
#pragma omp parallel for schedule(static) if ((size_t)c * h * w * 9 >= RN_OMP_MIN_WORK)
    for (int ci = 0; ci < c; ci++) {
        const float *xc = x + (size_t)ci * h * w;
        for (int ky = 0; ky < r; ky++) {
            for (int kx = 0; kx < s; kx++) {
                float *row = col + ((size_t)(ci * r + ky) * s + kx) * plane;
                for (int oy = 0; oy < oh; oy++) {
                    const int iy = oy * st - pad + ky;
                    float *dst = row + (size_t)oy * ow;
                    if (iy < 0 || iy >= h) {
                        for (int ox = 0; ox < ow; ox++) dst[ox] = 0.0f;
                        continue;
                    }
                    const float *src = xc + (size_t)iy * w;
                    for (int ox = 0; ox < ow; ox++) {
                        const int ix = ox * st - pad + kx;
                        dst[ox] = (ix >= 0 && ix < w) ? src[ix] : 0.0f;
                    }
                }
            }
        }
    }
}

/* dx[c, h, w] = col2im(col): overwrites dx, summing every tap that reads a pixel. Each input
 * channel only receives from its own rows, so the channel loop is safe in parallel and the
 * summation order within a channel is fixed. */
static void col2im(float *dx, const float *col, const rn_conv_shape *sh)
{
    const int c = sh->c, h = sh->h, w = sh->w, r = sh->r, s = sh->s;
    const int oh = sh->oh, ow = sh->ow, st = sh->stride, pad = sh->pad;
    const size_t plane = (size_t)oh * (size_t)ow;
#pragma omp parallel for schedule(static) if ((size_t)c * h * w * 9 >= RN_OMP_MIN_WORK)
    for (int ci = 0; ci < c; ci++) {
        float *xc = dx + (size_t)ci * h * w;
        memset(xc, 0, sizeof(float) * (size_t)h * w);
        for (int ky = 0; ky < r; ky++) {
            for (int kx = 0; kx < s; kx++) {
                const float *row = col + ((size_t)(ci * r + ky) * s + kx) * plane;
                for (int oy = 0; oy < oh; oy++) {
                    const int iy = oy * st - pad + ky;
                    if (iy < 0 || iy >= h) continue;
                    const float *src = row + (size_t)oy * ow;
                    float *dst = xc + (size_t)iy * w;
                    for (int ox = 0; ox < ow; ox++) {
                        const int ix = ox * st - pad + kx;
                        if (ix >= 0 && ix < w) dst[ix] += src[ox];
                    }
                }
            }
        }
    }
}

void rn_conv_forward(float *y, const float *x, const float *w, const float *b,
                     const rn_conv_shape *sh, float *work)
{
    const int crs = sh->c * sh->r * sh->s;
    const int p = sh->oh * sh->ow;
    const size_t xstride = (size_t)sh->c * sh->h * sh->w;
    const size_t ystride = (size_t)sh->k * p;
    const int pointwise = conv_is_pointwise(sh);
    for (int i = 0; i < sh->n; i++) {
        const float *xi = x + (size_t)i * xstride;
        float *yi = y + (size_t)i * ystride;
        const float *col = xi;
        if (!pointwise) {
            im2col(work, xi, sh);
            col = work;
        }
        rn_sgemm(0, 0, sh->k, p, crs, 1.0f, w, crs, col, p, 0.0f, yi, p);
        if (b) {
            for (int kk = 0; kk < sh->k; kk++) {
                float *yk = yi + (size_t)kk * p;
                const float bk = b[kk];
                for (int j = 0; j < p; j++) yk[j] += bk;
            }
        }
    }
}

void rn_conv_backward(float *dx, float *dw, float *db, const float *dy, const float *x,
                      const float *w, const rn_conv_shape *sh, float *work)
{
    const int crs = sh->c * sh->r * sh->s;
    const int p = sh->oh * sh->ow;
    const size_t xstride = (size_t)sh->c * sh->h * sh->w;
    const size_t ystride = (size_t)sh->k * p;
    const int pointwise = conv_is_pointwise(sh);
    for (int i = 0; i < sh->n; i++) {
        const float *xi = x + (size_t)i * xstride;
        const float *dyi = dy + (size_t)i * ystride;
        if (db) {
            for (int kk = 0; kk < sh->k; kk++) {
                const float *dyk = dyi + (size_t)kk * p;
                double acc = 0.0;
                for (int j = 0; j < p; j++) acc += dyk[j];
                db[kk] += (float)acc;
            }
        }
        if (dw) {
            const float *col = xi;
            if (!pointwise) {
                im2col(work, xi, sh);
                col = work;
            }
            rn_sgemm(0, 1, sh->k, crs, p, 1.0f, dyi, p, col, p, 1.0f, dw, crs);
        }
        if (dx) {
            float *dxi = dx + (size_t)i * xstride;
            if (pointwise) {
                rn_sgemm(1, 0, crs, p, sh->k, 1.0f, w, crs, dyi, p, 0.0f, dxi, p);
            } else {
                rn_sgemm(1, 0, crs, p, sh->k, 1.0f, w, crs, dyi, p, 0.0f, work, p);
                col2im(dxi, work, sh);
            }
        }
    }
}
