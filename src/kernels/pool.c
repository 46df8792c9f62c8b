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

void rn_maxpool_forward(float *y, const float *x, int n, int c, int h, int w, int k, int stride,
                        int pad, int oh, int ow)
{
    const long planes = (long)n * c;
    const int chunk = rn_omp_plane_chunk((size_t)h * w);
#pragma omp parallel for schedule(dynamic, chunk) if ((size_t)planes * h * w >= RN_OMP_MIN_WORK)
    for (long p = 0; p < planes; p++) {
        const float *xp = x + (size_t)p * h * w;
        float *yp = y + (size_t)p * oh * ow;
        for (int oy = 0; oy < oh; oy++) {
            for (int ox = 0; ox < ow; ox++) {
                const long at = window_argmax(xp, h, w, k, oy * stride - pad, ox * stride - pad);
                yp[(size_t)oy * ow + ox] = at >= 0 ? xp[at] : 0.0f;
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
