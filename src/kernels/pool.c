/* Max pooling and global average pooling, NCHW. Every (n, c) plane is independent, so the
 * plane loops run in parallel without changing any result. */
#include "kernels/kernels.h"

#include <string.h>
#include "kernels/parallel.h"

/* Index (within the plane) of the window's winner, or -1 if the window holds no real pixel
 * (impossible when pad <= k/2, which PyTorch requires). Scan is row-major; a later value wins
 * only if strictly greater, so ties go to the first; a NaN wins (and propagates) as in
 * PyTorch, the first NaN being kept. */
static long window_argmax(const float *xp, int h, int w, int k, int y0, int x0)
{
    long best = -1;
    float bv = 0.0f;
    for (int ky = 0; ky < k; ky++) {
        const int iy = y0 + ky;
        if (iy < 0 || iy >= h) continue;
        for (int kx = 0; kx < k; kx++) {
            const int ix = x0 + kx;
            if (ix < 0 || ix >= w) continue;
            const float v = xp[(size_t)iy * w + ix];
            if (best < 0 || v > bv || (v != v && bv == bv)) {
                best = (long)iy * w + ix;
                bv = v;
            }
        }
    }
    return best;
}

/* Whether v takes the window over from bv: window_argmax's rule, for the vector loops. */
static inline int takes_over(float v, float bv)
{
    return v > bv || (v != v && bv == bv);
}

/* Outputs [lo, hi) of output row oy, whose windows lie inside the plane's columns: the taps
 * in window_argmax's order, each over the whole run of outputs, so that the loop over outputs
 * vectorises (stride a constant where inlined) and every output sees window_argmax's
 * comparisons in its order, so the same value. */
static inline __attribute__((always_inline)) void pool_row_run(float *yr, const float *xp,
                                                               int h, int w, int k,
                                                               int stride, int y0, int x0,
                                                               int lo, int hi)
{
    if (hi <= lo) return;
    int first = 1;
    for (int ky = 0; ky < k; ky++) {
        const int iy = y0 + ky;
        if (iy < 0 || iy >= h) continue;
        const float *xr = xp + (size_t)iy * w + (lo * stride + x0);
        float *yo = yr + lo;
        const int m = hi - lo;
        for (int kx = 0; kx < k; kx++) {
            const float *xt = xr + kx;
            if (first) {
#pragma GCC ivdep
                for (int j = 0; j < m; j++) yo[j] = xt[(size_t)j * stride];
                first = 0;
                continue;
            }
#pragma GCC ivdep
            for (int j = 0; j < m; j++) {
                const float v = xt[(size_t)j * stride];
                yo[j] = takes_over(v, yo[j]) ? v : yo[j];
            }
        }
    }
}

void rn_maxpool_forward(float *y, const float *x, int n, int c, int h, int w, int k, int stride,
                        int pad, int oh, int ow)
{
    const long planes = (long)n * c;
    const int chunk = rn_omp_plane_chunk((size_t)h * w);
    /* outputs whose windows have every column inside the plane: ox * stride - pad >= 0 and
     * ox * stride - pad + k <= w */
    int lo = stride > 0 ? (pad + stride - 1) / stride : ow;
    int hi = stride > 0 && w - k + pad >= 0 ? (w - k + pad) / stride + 1 : 0;
    if (lo > ow) lo = ow;
    if (hi > ow) hi = ow;
    if (hi < lo) hi = lo;
#pragma omp parallel for schedule(dynamic, chunk) if ((size_t)planes * h * w >= RN_OMP_MIN_WORK)
    for (long p = 0; p < planes; p++) {
        const float *xp = x + (size_t)p * h * w;
        float *yp = y + (size_t)p * oh * ow;
        for (int oy = 0; oy < oh; oy++) {
            float *yr = yp + (size_t)oy * ow;
            const int y0 = oy * stride - pad;
            int rows = 0;
            for (int ky = 0; ky < k; ky++) rows += y0 + ky >= 0 && y0 + ky < h;
            int vlo = lo, vhi = hi;
            if (rows == 0) vlo = vhi = 0; /* no real pixel: window_argmax's 0 below */
            if (stride == 2)
                pool_row_run(yr, xp, h, w, k, 2, y0, -pad, vlo, vhi);
            else if (stride == 1)
                pool_row_run(yr, xp, h, w, k, 1, y0, -pad, vlo, vhi);
            else
                pool_row_run(yr, xp, h, w, k, stride, y0, -pad, vlo, vhi);
            for (int ox = 0; ox < ow; ox++) {
                if (ox == vlo && vhi > vlo) ox = vhi;
                if (ox >= ow) break;
                const long at = window_argmax(xp, h, w, k, y0, ox * stride - pad);
                yr[ox] = at >= 0 ? xp[at] : 0.0f;
            }
        }
    }
}

void rn_maxpool_backward(float *dx, const float *dy, const float *x, int n, int c, int h, int w,
                         int k, int stride, int pad, int oh, int ow)
{
    const long planes = (long)n * c;
    const int chunk = rn_omp_plane_chunk((size_t)h * w);
#pragma omp parallel for schedule(dynamic, chunk) if ((size_t)planes * h * w >= RN_OMP_MIN_WORK)
    for (long p = 0; p < planes; p++) {
        const float *xp = x + (size_t)p * h * w;
        const float *dyp = dy + (size_t)p * oh * ow;
        float *dxp = dx + (size_t)p * h * w;
        memset(dxp, 0, sizeof(float) * (size_t)h * w);
        for (int oy = 0; oy < oh; oy++) {
            for (int ox = 0; ox < ow; ox++) {
                const long at = window_argmax(xp, h, w, k, oy * stride - pad, ox * stride - pad);
                if (at >= 0) dxp[at] += dyp[(size_t)oy * ow + ox];
            }
        }
    }
}

void rn_gap_forward(float *y, const float *x, int n, int c, int hw)
{
    const long planes = (long)n * c;
    const int chunk = rn_omp_plane_chunk((size_t)hw);
#pragma omp parallel for schedule(dynamic, chunk) if ((size_t)planes * hw >= RN_OMP_MIN_WORK)
    for (long p = 0; p < planes; p++) {
        const float *xp = x + (size_t)p * hw;
        double s = 0.0;
        for (int j = 0; j < hw; j++) s += xp[j];
        y[p] = (float)(s / hw);
    }
}

void rn_gap_backward(float *dx, const float *dy, int n, int c, int hw)
{
    const long planes = (long)n * c;
    const int chunk = rn_omp_plane_chunk((size_t)hw);
#pragma omp parallel for schedule(dynamic, chunk) if ((size_t)planes * hw >= RN_OMP_MIN_WORK)
    for (long p = 0; p < planes; p++) {
        const float g = (float)((double)dy[p] / hw);
        float *dxp = dx + (size_t)p * hw;
        for (int j = 0; j < hw; j++) dxp[j] = g;
    }
}
