/* The channel-blocked layout's other operations (kernels.h), each the planar kernel's
 * arithmetic on [n][blocks][h][w][lanes]: evaluation-mode batch norm (with the ReLU fused),
 * max pooling, global average pooling to planar features and shortcut A, and the backward
 * passes of the last three. The innermost loop
 * runs over a block's lanes, contiguous, so that it vectorises; lanes past the channels are
 * written as zeros. Elementwise operations (ReLU, additions, scaling) need no kernel of their
 * own: on two tensors of the same shape the layout does not matter. */
#include <math.h>
#include <string.h>

#include "kernels/blk_bn.h"
#include "kernels/kernels.h"
#include "kernels/parallel.h"

void rn_blk_bn_eval(float *y, const float *x, const float *gamma, const float *beta,
                    const float *run_mean, const float *run_var, float eps, int relu, int n,
                    int c, int hw)
{
    const int cb = rn_blk_lanes(), cbn = rn_blk_count(c, cb);
    const long planes = (long)n * cbn;
#pragma omp parallel for schedule(static) if ((size_t)planes * hw * cb >= RN_OMP_MIN_WORK)
    for (long p = 0; p < planes; p++) {
        const int b = (int)(p % cbn);
        float scale[RN_BLK_MAX_LANES], mean[RN_BLK_MAX_LANES], shift[RN_BLK_MAX_LANES];
        for (int l = 0; l < cb; l++) {
            const int ch = b * cb + l;
            /* as the planar kernel: the scale in double, the rest in float; padding stays 0 */
            scale[l] = ch < c ? (float)(gamma[ch] / sqrt((double)run_var[ch] + (double)eps)) : 0.0f;
            mean[l] = ch < c ? run_mean[ch] : 0.0f;
            shift[l] = ch < c ? beta[ch] : 0.0f;
        }
        const float *xp = x + (size_t)p * hw * cb;
        float *yp = y + (size_t)p * hw * cb;
        for (int i = 0; i < hw; i++)
            for (int l = 0; l < cb; l++) {
                float v = (xp[(size_t)i * cb + l] - mean[l]) * scale[l] + shift[l];
                yp[(size_t)i * cb + l] = relu && !(v > 0.0f) ? 0.0f : v;
            }
    }
}

void rn_blk_maxpool(float *y, const float *x, int n, int c, int h, int w, int k, int stride,
                    int pad, int oh, int ow)
{
    const int cb = rn_blk_lanes(), cbn = rn_blk_count(c, cb);
    const long planes = (long)n * cbn;
    const rn_blk_bn_fns *f = rn_blk_bn_select(); /* built for the CPU's vectors */
#pragma omp parallel for schedule(static) if ((size_t)planes * h * w * cb >= RN_OMP_MIN_WORK)
    for (long p = 0; p < planes; p++)
        f->maxpool(y + (size_t)p * oh * ow * cb, x + (size_t)p * h * w * cb, h, w, k, stride, pad,
                   oh, ow, cb);
}

void rn_blk_gap(float *y, const float *x, int n, int c, int hw)
{
    const int cb = rn_blk_lanes(), cbn = rn_blk_count(c, cb);
#pragma omp parallel for schedule(static) if ((size_t)n * cbn * hw * cb >= RN_OMP_MIN_WORK)
    for (int i = 0; i < n; i++)
        for (int b = 0; b < cbn; b++) {
            const float *xp = x + ((size_t)i * cbn + b) * hw * cb;
            double s[RN_BLK_MAX_LANES] = {0};
            for (int j = 0; j < hw; j++)
                for (int l = 0; l < cb; l++) s[l] += xp[(size_t)j * cb + l];
            for (int l = 0; l < cb && b * cb + l < c; l++)
                y[(size_t)i * c + b * cb + l] = (float)(s[l] / hw);
        }
}

/* Shortcut A moves channels by a fixed offset: lane l of a block holds channel first + l of the
 * other tensor, for the lanes [lo, hi) that have one, the rest zero. Those lanes are at most two
 * runs of consecutive lanes of the other tensor's pixel (where they cross one of its blocks),
 * found once a plane: the per-lane division by the lane count they replace took 2% of a
 * resnet8-w32-s2 training step. */
typedef struct {
    int lane, len;
    size_t from; /* the run's first value, from its pixel's first block's first lane */
} lane_run;

static int lane_runs(lane_run run[2], int first, int lo, int hi, int cb, size_t plane)
{
    int runs = 0;
    for (int l = lo; l < hi;) {
        const int ch = first + l, in_block = cb - ch % cb;
        const int len = hi - l < in_block ? hi - l : in_block;
        run[runs++] = (lane_run){l, len, (size_t)(ch / cb) * plane + (size_t)(ch % cb)};
        l += len;
    }
    return runs;
}

/* rows x cols pixels' blocks (pixel (r, q) at out + r out_row + q out_pix): the runs' values
 * from the other tensor's pixel (at src + r src_row + q src_pix), zeros elsewhere. Built for 16
 * and 8 lanes, where the loops vectorise (a whole block, shortcut A between resnet8-w32-s2's
 * stages, is one vector copy): scalar loops over a run-time lane count took as long as the
 * divisions they replaced. */
static inline __attribute__((always_inline)) void gather_lanes(
    float *out, size_t out_row, size_t out_pix, const float *src, size_t src_row, size_t src_pix,
    int rows, int cols, const lane_run *run, int runs, const int cb)
{
    const int whole = runs == 1 && run[0].len == cb;
    for (int r = 0; r < rows; r++)
        for (int q = 0; q < cols; q++) {
            float *o = out + (size_t)r * out_row + (size_t)q * out_pix;
            const float *v = src + (size_t)r * src_row + (size_t)q * src_pix;
            if (whole) {
                for (int l = 0; l < cb; l++) o[l] = v[run[0].from + l];
                continue;
            }
            for (int l = 0; l < cb; l++) o[l] = 0.0f;
            for (int k = 0; k < runs; k++)
                for (int l = 0; l < run[k].len; l++) o[run[k].lane + l] = v[run[k].from + l];
        }
}

static void gather_plane(float *out, size_t out_row, size_t out_pix, const float *src,
                         size_t src_row, size_t src_pix, int rows, int cols, const lane_run *run,
                         int runs, int cb)
{
    if (cb == 16)
        gather_lanes(out, out_row, out_pix, src, src_row, src_pix, rows, cols, run, runs, 16);
    else if (cb == 8)
        gather_lanes(out, out_row, out_pix, src, src_row, src_pix, rows, cols, run, runs, 8);
    else gather_lanes(out, out_row, out_pix, src, src_row, src_pix, rows, cols, run, runs, cb);
}

void rn_blk_shortcut_pad(float *y, const float *x, int n, int c, int h, int w, int oc, int stride)
{
    const int cb = rn_blk_lanes(), cbn = rn_blk_count(c, cb), obn = rn_blk_count(oc, cb);
    const int oh = (h + stride - 1) / stride, ow = (w + stride - 1) / stride;
    const int pad0 = (oc - c) / 2;
    const long planes = (long)n * obn;
#pragma omp parallel for schedule(static) if ((size_t)planes * oh * ow * cb >= RN_OMP_MIN_WORK)
    for (long p = 0; p < planes; p++) {
        const int i = (int)(p / obn), ob = (int)(p % obn);
        /* output lane l: input channel ob cb + l - pad0, where it is one of the c */
        const int first = ob * cb - pad0;
        int lo = -first > 0 ? -first : 0, hi = c - first < cb ? c - first : cb;
        if (oc - ob * cb < hi) hi = oc - ob * cb;
        lane_run run[2];
        const int runs = lo < hi ? lane_runs(run, first, lo, hi, cb, (size_t)h * w * cb) : 0;
        const float *xi = x + (size_t)i * cbn * h * w * cb;
        float *yp = y + (size_t)p * oh * ow * cb;
        gather_plane(yp, (size_t)ow * cb, cb, xi, (size_t)stride * w * cb, (size_t)stride * cb, oh,
                     ow, run, runs, cb);
    }
}

/* ---- backward passes on blocks, for training on them ------------------------------------- */

void rn_blk_maxpool_backward(float *dx, const float *dy, const float *x, int n, int c, int h, int w,
                             int k, int stride, int pad, int oh, int ow)
{
    const int cb = rn_blk_lanes(), cbn = rn_blk_count(c, cb);
    const long planes = (long)n * cbn;
#pragma omp parallel for schedule(static) if ((size_t)planes * h * w * cb >= RN_OMP_MIN_WORK)
    for (long p = 0; p < planes; p++) {
        const float *xp = x + (size_t)p * h * w * cb, *dyp = dy + (size_t)p * oh * ow * cb;
        float *dxp = dx + (size_t)p * h * w * cb;
        memset(dxp, 0, (size_t)h * w * cb * sizeof(float));
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++) {
                /* per lane the planar scan's winner: the first maximum, a NaN over a number */
                float best[RN_BLK_MAX_LANES];
                long at[RN_BLK_MAX_LANES];
                for (int l = 0; l < cb; l++) at[l] = -1, best[l] = 0.0f;
                for (int ky = 0; ky < k; ky++) {
                    const int iy = oy * stride - pad + ky;
                    if (iy < 0 || iy >= h) continue;
                    for (int kx = 0; kx < k; kx++) {
                        const int ix = ox * stride - pad + kx;
                        if (ix < 0 || ix >= w) continue;
                        const long pix = (long)iy * w + ix;
                        const float *v = xp + (size_t)pix * cb;
                        for (int l = 0; l < cb; l++)
                            if (at[l] < 0 || v[l] > best[l] || (v[l] != v[l] && best[l] == best[l]))
                                at[l] = pix, best[l] = v[l];
                    }
                }
                const float *g = dyp + ((size_t)oy * ow + ox) * cb;
                for (int l = 0; l < cb; l++)
                    if (at[l] >= 0) dxp[(size_t)at[l] * cb + l] += g[l];
            }
    }
}

void rn_blk_gap_backward(float *dx, const float *dy, int n, int c, int hw)
{
    const int cb = rn_blk_lanes(), cbn = rn_blk_count(c, cb);
    const long planes = (long)n * cbn;
#pragma omp parallel for schedule(static) if ((size_t)planes * hw * cb >= RN_OMP_MIN_WORK)
    for (long p = 0; p < planes; p++) {
        const int i = (int)(p / cbn), b = (int)(p % cbn);
        float g[RN_BLK_MAX_LANES] = {0};
        for (int l = 0; l < cb && b * cb + l < c; l++)
            g[l] = (float)((double)dy[(size_t)i * c + b * cb + l] / hw);
        float *dxp = dx + (size_t)p * hw * cb;
        for (int j = 0; j < hw; j++)
            for (int l = 0; l < cb; l++) dxp[(size_t)j * cb + l] = g[l];
    }
}

void rn_blk_shortcut_pad_backward(float *dx, const float *dy, int n, int c, int h, int w, int oc,
                                  int stride)
{
    const int cb = rn_blk_lanes(), cbn = rn_blk_count(c, cb), obn = rn_blk_count(oc, cb);
    const int oh = (h + stride - 1) / stride, ow = (w + stride - 1) / stride;
    const int pad0 = (oc - c) / 2;
    const long planes = (long)n * cbn;
#pragma omp parallel for schedule(static) if ((size_t)planes * h * w * cb >= RN_OMP_MIN_WORK)
    for (long p = 0; p < planes; p++) {
        const int i = (int)(p / cbn), b = (int)(p % cbn);
        /* input lane l: the output channel b cb + l + pad0 it went to, for the lanes of the c */
        lane_run run[2];
        const int hi = c - b * cb < cb ? c - b * cb : cb;
        const int runs = lane_runs(run, b * cb + pad0, 0, hi, cb, (size_t)oh * ow * cb);
        const float *dyi = dy + (size_t)i * obn * oh * ow * cb;
        float *dxp = dx + (size_t)p * h * w * cb;
        memset(dxp, 0, (size_t)h * w * cb * sizeof(float));
        gather_plane(dxp, (size_t)stride * w * cb, (size_t)stride * cb, dyi, (size_t)ow * cb, cb, oh,
                     ow, run, runs, cb);
    }
}
