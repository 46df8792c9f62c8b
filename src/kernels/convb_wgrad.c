/* The weight gradient of a convolution on channel-blocked tensors (kernels.h):
 * dw[k][c][ky][kx] += sum over images and output pixels of x[the pixel's tap input][c] * dy[k].
 *
 * A task is one tap of one pair of output blocks (or the last, single block) and half an input
 * block (a whole one when the output block is single): its r x kbs accumulator vectors stay in
 * registers over every image and pixel (convb_wgrad_row.h), so nothing is packed, padded or
 * reduced afterwards, and each dw value is summed by one task in one order: the same bits for
 * any thread count. The tap's border is left out by clipping the pixel rectangle, which is
 * where the padding's zeros would have been. */
#include "kernels/convb.h"
#include "kernels/kernels.h"

/* The output pixels whose input at tap offset k lies inside a map of size n: [*lo, *hi). */
static void inside(int *lo, int *hi, int k, int n, int out, int stride, int pad)
{
    int a = pad - k > 0 ? (pad - k + stride - 1) / stride : 0;
    int b = (n - 1 + pad - k) >= 0 ? (n - 1 + pad - k) / stride + 1 : 0;
    *lo = a;
    *hi = b < out ? b : out;
}

static void backward_weights(float *dw, const float *dy, const float *x, int planar_in,
                             const rn_conv_shape *sh)
{
    const rn_convb_fns v = rn_convb_select();
    const int cb = v.lanes, kbn = rn_blk_count(sh->k, cb), cbn = rn_blk_count(sh->c, cb);
    const int taps = sh->r * sh->s, pairs = (kbn + 1) / 2;
    const size_t plane = (size_t)sh->h * sh->w, oplane = (size_t)sh->oh * sh->ow * cb;
    const int threads = sh->threads > 1 ? sh->threads : 1;
    const long tasks = (long)pairs * cbn * 2 * taps;
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1) if (threads > 1)
    for (long t = 0; t < tasks; t++) {
        const int tap = (int)(t % taps), part = (int)(t / taps % 2);
        const int cbk = (int)(t / taps / 2 % cbn), kb = 2 * (int)(t / taps / 2 / cbn);
        const int kbs = kb + 1 < kbn ? 2 : 1, width = kbs > 1 ? cb / 2 : cb;
        if (kbs == 1 && part == 1) continue;
        const int c0 = cbk * cb + part * width;
        const int r = sh->c - c0 < width ? sh->c - c0 : width;
        if (r <= 0) continue;
        const int ky = tap / sh->s, kx = tap % sh->s;
        int oy0, oy1, ox0, ox1;
        inside(&oy0, &oy1, ky, sh->h, sh->oh, sh->stride, sh->pad);
        inside(&ox0, &ox1, kx, sh->w, sh->ow, sh->stride, sh->pad);
        float acc[RN_BLK_MAX_LANES * RN_BLK_MAX_LANES] __attribute__((aligned(64)));
        if (oy0 >= oy1 || ox0 >= ox1) continue; /* the tap only ever sees padding */
        const int iy = oy0 * sh->stride + ky - sh->pad, ix = ox0 * sh->stride + kx - sh->pad;
        rn_convb_wgrad_args a = {
            .imgs = sh->n, .rows = oy1 - oy0, .cols = ox1 - ox0,
            .dyimg = (size_t)kbn * oplane, .dyrow = (size_t)sh->ow * cb, .dyplane = oplane};
        const float *xt;
        if (planar_in) {
            a.ximg = (size_t)sh->c * plane, a.xrow = (size_t)sh->stride * sh->w;
            a.xstep = (size_t)sh->stride, a.cstride = plane;
            xt = x + (size_t)c0 * plane + (size_t)iy * sh->w + ix;
        } else {
            a.ximg = (size_t)cbn * plane * cb, a.xrow = (size_t)sh->stride * sh->w * cb;
            a.xstep = (size_t)sh->stride * cb, a.cstride = 1;
            xt = x + (size_t)cbk * plane * cb + ((size_t)iy * sh->w + ix) * cb + (c0 - cbk * cb);
        }
        v.wgrad(&a, r, kbs, acc, xt, dy + (size_t)kb * oplane + ((size_t)oy0 * sh->ow + ox0) * cb);
        for (int i = 0; i < r; i++)
            for (int b = 0; b < kbs; b++)
                for (int l = 0; l < cb; l++) {
                    const int k = (kb + b) * cb + l;
                    if (k < sh->k) dw[((size_t)k * sh->c + c0 + i) * taps + tap] += acc[(i * kbs + b) * cb + l];
                }
    }
}

/* db[k] += the sum of dy over images and pixels: each block by one thread, images in order. */
static void backward_bias(float *db, const float *dy, const rn_conv_shape *sh)
{
    const int cb = rn_blk_lanes(), kbn = rn_blk_count(sh->k, cb);
    const size_t pixels = (size_t)sh->oh * sh->ow;
    const int threads = sh->threads > 1 ? sh->threads : 1;
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int kb = 0; kb < kbn; kb++) {
        float sum[RN_BLK_MAX_LANES] = {0};
        for (int i = 0; i < sh->n; i++) {
            const float *d = dy + ((size_t)i * kbn + kb) * pixels * cb;
            for (size_t p = 0; p < pixels; p++)
                for (int l = 0; l < cb; l++) sum[l] += d[p * cb + l];
        }
        for (int l = 0; l < cb && kb * cb + l < sh->k; l++) db[kb * cb + l] += sum[l];
    }
}

void rn_convb_backward_weights(float *dw, float *db, const float *dy, const float *x,
                               const rn_conv_shape *sh)
{
    if (dw) backward_weights(dw, dy, x, 0, sh);
    if (db) backward_bias(db, dy, sh);
}

void rn_convb_backward_weights_planar_in(float *dw, float *db, const float *dy, const float *x,
                                         const rn_conv_shape *sh)
{
    if (dw) backward_weights(dw, dy, x, 1, sh);
    if (db) backward_bias(db, dy, sh);
}
