/* Option-A shortcut: stride-s subsampling plus zero channel padding, pad0 = (oc - c) / 2
 * channels before and the rest after. Requires oc >= c. */
#include "kernels/kernels.h"

#include <string.h>
#include "kernels/parallel.h"

void rn_shortcut_pad_forward(float *y, const float *x, int n, int c, int h, int w, int oc,
                             int stride)
{
    const int oh = (h + stride - 1) / stride, ow = (w + stride - 1) / stride;
    const int pad0 = (oc - c) / 2;
    const size_t oplane = (size_t)oh * ow, iplane = (size_t)h * w;
    const long planes = (long)n * oc;
    const int chunk = rn_omp_plane_chunk(iplane);
#pragma omp parallel for schedule(dynamic, chunk) if ((size_t)planes * h * w >= RN_OMP_MIN_WORK)
    for (long p = 0; p < planes; p++) {
        const int i = (int)(p / oc), ch = (int)(p % oc) - pad0;
        float *yp = y + (size_t)p * oplane;
        if (ch < 0 || ch >= c) {
            memset(yp, 0, sizeof(float) * oplane);
            continue;
        }
        const float *xp = x + ((size_t)i * c + ch) * iplane;
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++)
                yp[(size_t)oy * ow + ox] = xp[(size_t)oy * stride * w + (size_t)ox * stride];
    }
}

void rn_shortcut_pad_backward(float *dx, const float *dy, int n, int c, int h, int w, int oc,
                              int stride)
{
    const int oh = (h + stride - 1) / stride, ow = (w + stride - 1) / stride;
    const int pad0 = (oc - c) / 2;
    const size_t oplane = (size_t)oh * ow, iplane = (size_t)h * w;
    const long planes = (long)n * c;
    const int chunk = rn_omp_plane_chunk(iplane);
#pragma omp parallel for schedule(dynamic, chunk) if ((size_t)planes * h * w >= RN_OMP_MIN_WORK)
    for (long p = 0; p < planes; p++) {
        const int i = (int)(p / c), ch = (int)(p % c);
        float *dxp = dx + (size_t)p * iplane;
        const float *dyp = dy + ((size_t)i * oc + pad0 + ch) * oplane;
        memset(dxp, 0, sizeof(float) * iplane);
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++)
                dxp[(size_t)oy * stride * w + (size_t)ox * stride] = dyp[(size_t)oy * ow + ox];
    }
}
