/* The input gradient of a convolution on channel-blocked tensors (kernels.h):
 * dx[c][iy][ix] = sum over k and taps of dy[k][oy][ox] w[k][c][ky][kx], iy = oy s + ky - pad.
 *
 * Split by the phase of the input pixel (iy mod s, ix mod s), it is s x s stride-1
 * convolutions of dy, each with the taps that reach that phase, flipped: phase py takes taps
 * ky = ky0, ky0 + s, ... with ky0 = (py + pad) mod s. So the forward's microkernel computes it,
 * reading dy (padded once for every phase) with weights packed per phase, output channels C and
 * input channels K, and writing each phase's pixels s apart in dx (rn_convb_row.ypix); no
 * multiply-add meets a zero inserted between dy's pixels. Stride 1 is the one phase: the
 * transposed convolution with the whole flipped kernel. A phase no tap reaches (1x1 stride 2:
 * the odd pixels) is zero. A 1x1 convolution without padding takes the forward's pointwise
 * path instead (pointwise_data), with 16 lanes. As in the forward, each dx value is computed by
 * one task in one order: the same bits whatever the thread count. */
#include <string.h>

#include "kernels/convb.h"
#include "kernels/kernels.h"
#include "kernels/parallel.h"

enum { BAND_ROWS = 4 };

/* One phase along one axis: taps k0, k0 + s, ... (n of them), the phase's pixels (count) and
 * the first of dy's rows that its pixel 0 reads (first, may be negative: padding). */
typedef struct {
    int k0, n, count, first;
} axis_phase;

static axis_phase axis_of(int phase, int size, int taps, int stride, int pad)
{
    axis_phase a;
    a.k0 = (phase + pad) % stride;
    a.n = a.k0 < taps ? (taps - 1 - a.k0) / stride + 1 : 0;
    a.count = (size - phase + stride - 1) / stride;
    /* pixel m reads dy at m + (phase + pad - k0) / s - j for its j-th tap, j = n - 1 first */
    a.first = (phase + pad - a.k0) / stride - (a.n - 1);
    return a;
}

/* The padding dy needs on every side so that every phase reads inside it. */
static int dy_pad(const rn_conv_shape *sh)
{
    int p = 0;
    for (int axis = 0; axis < 2; axis++)
        for (int ph = 0; ph < sh->stride; ph++) {
            const int size = axis ? sh->w : sh->h, out = axis ? sh->ow : sh->oh;
            const axis_phase a = axis_of(ph, size, axis ? sh->s : sh->r, sh->stride, sh->pad);
            if (!a.n || !a.count) continue;
            const int lo = -a.first, hi = a.first + (a.count - 1) + (a.n - 1) - (out - 1);
            if (lo > p) p = lo;
            if (hi > p) p = hi;
        }
    return p;
}

size_t rn_convb_backward_data_packed_floats(const rn_conv_shape *sh)
{
    const int cb = rn_blk_lanes();
    return (size_t)rn_blk_count(sh->c, cb) * rn_blk_count(sh->k, cb) * sh->r * sh->s * cb * cb;
}

static int threads_of(const rn_conv_shape *sh) { return sh->threads > 1 ? sh->threads : 1; }

/* Where phase (py, px)'s weights start in the packing: after the phases before it. */
static size_t phase_offset(const rn_conv_shape *sh, int py, int px)
{
    const int cb = rn_blk_lanes(), cbn = rn_blk_count(sh->c, cb), kbn = rn_blk_count(sh->k, cb);
    size_t offset = 0;
    for (int q = 0; q < py * sh->stride + px; q++)
        offset += (size_t)cbn * kbn * axis_of(q / sh->stride, sh->h, sh->r, sh->stride, sh->pad).n *
                  axis_of(q % sh->stride, sh->w, sh->s, sh->stride, sh->pad).n * cb * cb;
    return offset;
}

/* Phase by phase, [C blocks][K blocks][taps of the phase, flipped][CB k][CB c], packed on
 * every training step. A (C block, K block) tile at a time for every phase, in the packed
 * order: its CB rows of w read as they lie, the rows of a tile a few on asked for (each line
 * of a tile lies on a page of its own), and each phase's tile put together in a buffer on the
 * stack, then copied out whole; the C blocks go to the threads. It had been written float by
 * float, each with its own index arithmetic and nothing asked ahead, on one thread. Measured
 * (Zen 4, family 25 model 17, both alternating in one process, the same bits): resnet50's
 * 1024->2048 1x1/2 0.40-0.46x the time at 1 thread (5.4-6.5 ms before), 512->512 3x3/2 0.71x,
 * 256->1024 0.81-0.83x, 512->2048 0.91-1.00x, 2048->512 0.45-1.12x (the old one's time moved
 * from 0.86 to 4.2 ms between runs), 64->64 3x3 0.56-0.58x, the stem 0.25x; at 2 threads
 * 0.23-0.37x on the large ones. With 8 lanes (tiles of 64 floats for a 1x1 layer) the
 * phases' figures worked out in the tile loop and the rows asked for had made the 1x1 ones
 * 1.2-1.65x the old time: worked out once a call, no asking where a row's run is under a line
 * and the small tiles written in place, 1024->2048/2 1.02-1.14x, the other 1x1 layers
 * 0.87-0.93x, 3x3 0.52-0.82x. */
enum { AHEAD = 4 }; /* K blocks ahead whose rows a tile asks for */
enum { SMALL_TILE = 64 }; /* floats of a tile written in place, not through the buffer */

/* A phase's taps along both axes, its tile's floats and where its weights start. */
typedef struct {
    axis_phase ay, ax;
    size_t tile, offset;
} phase_tiles;

static phase_tiles phase_tiles_of(const rn_conv_shape *sh, int q)
{
    const int cb = rn_blk_lanes(), s = sh->stride;
    phase_tiles t = {axis_of(q / s, sh->h, sh->r, s, sh->pad),
                     axis_of(q % s, sh->w, sh->s, s, sh->pad), 0, phase_offset(sh, q / s, q % s)};
    t.tile = (size_t)t.ay.n * t.ax.n * cb * cb;
    return t;
}

enum { PHASES_HELD = 16 }; /* strides up to 4: the phases' figures worked out once a call */

void rn_convb_backward_data_pack(float *packed, const float *w, const rn_conv_shape *sh)
{
    const int cb = rn_blk_lanes(), cbn = rn_blk_count(sh->c, cb), kbn = rn_blk_count(sh->k, cb);
    const int taps = sh->r * sh->s, s = sh->stride, phases = s * s, threads = threads_of(sh);
    phase_tiles held[PHASES_HELD];
    for (int q = 0; q < phases && q < PHASES_HELD; q++) held[q] = phase_tiles_of(sh, q);
#pragma omp parallel for num_threads(threads) schedule(static) \
    if (threads > 1 && cbn > 1 && (size_t)sh->k * sh->c * taps >= RN_CONVB_PACK_THREADS_MIN)
    for (int b = 0; b < cbn; b++) {
        float buffer[RN_CONVB_PACK_TILE_FLOATS] __attribute__((aligned(64)));
        const int cl_end = sh->c - b * cb < cb ? sh->c - b * cb : cb;
        for (int kb = 0; kb < kbn; kb++) {
            const int kl_end = sh->k - kb * cb < cb ? sh->k - kb * cb : cb;
            /* the rows of a tile a few on: each line on a page of its own (not where a row's
             * run is under a line, 1x1 with 8 lanes: 1.4-1.65x the time asking) */
            if (kb + AHEAD < kbn && (size_t)cb * taps * sizeof(float) >= 64)
                for (int kl = 0; kl < cb && (kb + AHEAD) * cb + kl < sh->k; kl++) {
                    const size_t row = (size_t)(kb + AHEAD) * cb + kl;
                    const float *next = w + (row * sh->c + (size_t)b * cb) * taps;
                    for (size_t i = 0; i < (size_t)cl_end * taps; i += 64 / sizeof(float))
                        __builtin_prefetch(next + i, 0, 3);
                }
            for (int q = 0; q < phases; q++) {
                const phase_tiles pt = q < PHASES_HELD ? held[q] : phase_tiles_of(sh, q);
                if (!pt.tile) continue;
                float *out = packed + pt.offset + ((size_t)b * kbn + kb) * pt.tile;
                /* a small tile (1x1 with 8 lanes: 64 floats) straight into place */
                const int buffered = pt.tile <= RN_CONVB_PACK_TILE_FLOATS && pt.tile > SMALL_TILE;
                float *dst = buffered ? buffer : out;
                if (kl_end < cb || cl_end < cb) memset(dst, 0, pt.tile * sizeof(float));
                for (int kl = 0; kl < kl_end; kl++) {
                    const size_t row = (size_t)kb * cb + kl;
                    const float *src = w + (row * sh->c + (size_t)b * cb) * taps;
                    for (int j = 0; j < pt.ay.n; j++)
                        for (int i = 0; i < pt.ax.n; i++) {
                            const int ky = pt.ay.k0 + s * (pt.ay.n - 1 - j);
                            const int kx = pt.ax.k0 + s * (pt.ax.n - 1 - i);
                            float *d = dst + ((size_t)(j * pt.ax.n + i) * cb + kl) * cb;
                            const float *v = src + ky * sh->s + kx;
                            for (int cl = 0; cl < cl_end; cl++) d[cl] = v[(size_t)cl * taps];
                        }
                }
                if (dst == buffer) memcpy(out, buffer, pt.tile * sizeof(float));
            }
        }
    }
}

static int group_of(const rn_conv_shape *sh)
{
    const int t = threads_of(sh);
    return t < sh->n ? t : sh->n;
}

/* A 1x1 convolution without padding: dx = w^T dy at the pixels it reads, a pointwise
 * convolution of dy (pointwise_data below). */
static int pointwise_of(const rn_convb_fns *v, const rn_conv_shape *sh)
{
    return sh->r == 1 && sh->s == 1 && sh->pad == 0 && v->quad;
}

size_t rn_convb_backward_data_workspace(const rn_conv_shape *sh)
{
    const rn_convb_fns v = rn_convb_select();
    const int cb = v.lanes, p = dy_pad(sh);
    /* the pointwise path reads dy as it is; at stride 2 it writes the pixels read, a group of
     * images at a time; the phases pad dy */
    if (pointwise_of(&v, sh)) {
        if (sh->stride == 1) return 0;
        return (size_t)group_of(sh) * rn_blk_count(sh->c, cb) * sh->oh * sh->ow * cb;
    }
    return (size_t)group_of(sh) * rn_blk_count(sh->k, cb) * (sh->oh + 2 * p) * (sh->ow + 2 * p) * cb;
}

/* Rows [m0, m1) of phase (py, px) of image dxi's blocks b and b + 1 (bs of them). */
static void phase_band(const rn_convb_fns *v, const rn_conv_shape *sh, float *dxi, const float *dyp,
                       const float *packed, int py, int px, int b, int bs, int m0, int m1, int p)
{
    const int cb = v->lanes, kbn = rn_blk_count(sh->k, cb);
    const axis_phase ay = axis_of(py, sh->h, sh->r, sh->stride, sh->pad);
    const axis_phase ax = axis_of(px, sh->w, sh->s, sh->stride, sh->pad);
    const size_t plane = (size_t)sh->h * sh->w * cb, s = (size_t)sh->stride;
    if (!ay.n || !ax.n) { /* no tap reaches these pixels */
        for (int bb = b; bb < b + bs; bb++)
            for (int m = m0; m < m1; m++)
                for (int l = 0; l < ax.count; l++)
                    memset(dxi + bb * plane + ((py + s * m) * sh->w + px + s * l) * cb, 0,
                           (size_t)cb * sizeof(float));
        return;
    }
    const size_t offset = phase_offset(sh, py, px);
    const int wp = sh->ow + 2 * p;
    const size_t wblock = (size_t)kbn * ay.n * ax.n * cb * cb;
    const rn_convb_row a = {
        .w = packed + offset + b * wblock, .wstride = wblock, .cbn = kbn, .kr = ay.n, .ks = ax.n,
        .clast = sh->k - (kbn - 1) * cb, .xplane = (size_t)(sh->oh + 2 * p) * wp * cb,
        .xrow = (size_t)wp * cb, .xpix = (size_t)cb, .xstep = (size_t)cb, .cstride = 1,
        .ystride = plane, .ypix = s * cb, .bias = NULL, .relu = 0};
    rn_convb_rows(v, &a, bs, dxi + b * plane + ((size_t)py * sh->w + px) * cb, s * sh->w * cb,
                  dyp + ((size_t)(ay.first + p) * wp + (ax.first + p)) * cb, (size_t)wp * cb, m0, m1,
                  ax.count);
}

/* Images [0, gi) of dxg (the pixels a strided 1x1 convolution reads, oh x ow a block) into
 * their places in dx, the pixels between them zero. */
static void scatter_strided(float *dx, const float *dxg, int gi, int cbn, int cb,
                            const rn_conv_shape *sh, int threads)
{
    const size_t plane = (size_t)sh->h * sh->w * cb, gplane = (size_t)sh->oh * sh->ow * cb;
    const int s = sh->stride;
#pragma omp parallel for num_threads(threads) schedule(static) collapse(2) if (threads > 1)
    for (int i = 0; i < gi; i++)
        for (int b = 0; b < cbn; b++) {
            float *d = dx + ((size_t)i * cbn + b) * plane;
            const float *g = dxg + ((size_t)i * cbn + b) * gplane;
            for (int y = 0; y < sh->h; y++, d += (size_t)sh->w * cb) {
                if (y % s) {
                    memset(d, 0, (size_t)sh->w * cb * sizeof(float));
                    continue;
                }
                const float *gr = g + (size_t)(y / s) * sh->ow * cb;
                for (int x = 0; x < sh->w; x++) {
                    if (x % s) memset(d + (size_t)x * cb, 0, (size_t)cb * sizeof(float));
                    else memcpy(d + (size_t)x * cb, gr + (size_t)(x / s) * cb,
                                (size_t)cb * sizeof(float));
                }
            }
        }
}

/* The input gradient of a 1x1 convolution without padding: dx = w^T dy at the pixels it reads,
 * a pointwise convolution of dy, K channels in and C out, whose weights the packing above lays
 * out as the forward's (C blocks of output, K blocks of input, [CB k][CB c]). So the forward's
 * path for such layers computes it (rn_convb_pointwise: the map as one row in calls of equal
 * width, four output blocks a call where it can), rather than rows of the map's width two
 * blocks a call after a copy of dy; at stride 2 into the workspace, then scattered into dx
 * between zeros, a group of images (or at RN_CONVB_IMAGES_PER_THREAD a thread, an image a task)
 * at a time. The same sums in the same order (over dy's blocks, then their channels): the same
 * bits (compared bit for bit in one process, every 1x1 shape of resnet50). Measured there (Xeon,
 * family 6 model 207, batch 16, both paths alternating call by call, medians of 10-12): stride 1
 * 0.62-0.93x the time at 1 thread on all twelve shapes, 0.73-1.05x at 2 (minima 0.67-0.96x);
 * stride 2 0.74-1.03x at 1 thread, 0.84-1.01x at 2 (the 14x14 one level). With 8 lanes (AVX2,
 * no four-block kernel) 0.88-0.95x on 56x56 and 7x7 maps, 0.95x and 1.08x on 28x28, 1.07-1.09x
 * on 14x14 ones, so that build keeps the rows (pointwise_of). */
static void pointwise_data(const rn_convb_fns *v, float *dx, const float *dy, const float *packed,
                           const rn_conv_shape *sh, float *work)
{
    rn_conv_shape t = *sh;
    t.c = sh->k, t.k = sh->c, t.h = sh->oh, t.w = sh->ow, t.stride = 1;
    if (sh->stride == 1) {
        rn_convb_pointwise(dx, dy, packed, &t);
        return;
    }
    const int cb = v->lanes, cbn = rn_blk_count(sh->c, cb), kbn = rn_blk_count(sh->k, cb);
    const int threads = threads_of(sh), group = group_of(sh);
    const size_t gathered = (size_t)cbn * sh->oh * sh->ow * cb;
    const size_t dy_image = (size_t)kbn * sh->oh * sh->ow * cb;
    const size_t dx_image = (size_t)cbn * sh->h * sh->w * cb;
    if (sh->n >= RN_CONVB_IMAGES_PER_THREAD * threads) {
        t.n = 1, t.threads = 1;
#pragma omp parallel num_threads(threads) if (threads > 1)
        {
            float *slot = work + (size_t)rn_thread_id() * gathered;
#pragma omp for schedule(dynamic, 1)
            for (int i = 0; i < sh->n; i++) {
                rn_convb_pointwise(slot, dy + (size_t)i * dy_image, packed, &t);
                scatter_strided(dx + (size_t)i * dx_image, slot, 1, cbn, cb, sh, 1);
            }
        }
        return;
    }
    for (int i0 = 0; i0 < sh->n; i0 += group) {
        t.n = sh->n - i0 < group ? sh->n - i0 : group;
        rn_convb_pointwise(work, dy + (size_t)i0 * dy_image, packed, &t);
        scatter_strided(dx + (size_t)i0 * dx_image, work, t.n, cbn, cb, sh, threads);
    }
}

void rn_convb_backward_data(float *dx, const float *dy, const float *packed,
                            const rn_conv_shape *sh, float *work)
{
    const rn_convb_fns v = rn_convb_select();
    if (pointwise_of(&v, sh)) {
        pointwise_data(&v, dx, dy, packed, sh, work);
        return;
    }
    const int cb = v.lanes, cbn = rn_blk_count(sh->c, cb), kbn = rn_blk_count(sh->k, cb);
    const int threads = threads_of(sh), group = group_of(sh), p = dy_pad(sh);
    const int s = sh->stride, phases = s * s, pairs = (cbn + 1) / 2;
    const int hp = sh->oh + 2 * p, wp = sh->ow + 2 * p;
    const int bands = ((sh->h + s - 1) / s + BAND_ROWS - 1) / BAND_ROWS; /* of the largest phase */
    const size_t dy_image = (size_t)kbn * sh->oh * sh->ow * cb, dx_image = (size_t)cbn * sh->h * sh->w * cb;
    const size_t padded = (size_t)hp * wp * cb;
    /* as the forward: one region, an image a task */
    if (sh->n >= RN_CONVB_IMAGES_PER_THREAD * threads) {
#pragma omp parallel num_threads(threads) if (threads > 1)
        {
            float *dyp = work + (size_t)rn_thread_id() * kbn * padded;
            int border = 1; /* the slot's border is zero after its first image (as convb.c) */
#pragma omp for schedule(dynamic, 1)
            for (int i = 0; i < sh->n; i++) {
                for (int kb = 0; kb < kbn; kb++)
                    rn_convb_pad_plane(dyp + (size_t)kb * padded,
                                       dy + (size_t)i * dy_image + (size_t)kb * sh->oh * sh->ow * cb,
                                       sh->oh, sh->ow, p, cb, border);
                border = 0;
                for (int b = 0; b < cbn; b += 2)
                    for (int ph = 0; ph < phases; ph++) {
                        const int py = ph / s, px = ph % s;
                        phase_band(&v, sh, dx + (size_t)i * dx_image, dyp, packed, py, px, b,
                                   b + 1 < cbn ? 2 : 1, 0, (sh->h - py + s - 1) / s, p);
                    }
            }
        }
        return;
    }
    for (int i0 = 0; i0 < sh->n; i0 += group) {
        const int gi = sh->n - i0 < group ? sh->n - i0 : group;
#pragma omp parallel for num_threads(threads) schedule(static) collapse(2) if (threads > 1)
        for (int i = 0; i < gi; i++)
            for (int kb = 0; kb < kbn; kb++)
                rn_convb_pad_plane(work + ((size_t)i * kbn + kb) * padded,
                                   dy + (size_t)(i0 + i) * dy_image + (size_t)kb * sh->oh * sh->ow * cb,
                                   sh->oh, sh->ow, p, cb, i0 == 0);
        const long tasks = (long)gi * pairs * phases * bands;
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1) if (threads > 1)
        for (long t = 0; t < tasks; t++) {
            const int band = (int)(t % bands), ph = (int)(t / bands % phases);
            const int b = 2 * (int)(t / bands / phases % pairs), i = (int)(t / bands / phases / pairs);
            const int py = ph / s, px = ph % s;
            const int rows = (sh->h - py + s - 1) / s, m0 = band * BAND_ROWS;
            const int m1 = m0 + BAND_ROWS < rows ? m0 + BAND_ROWS : rows;
            if (m0 >= m1) continue;
            phase_band(&v, sh, dx + (size_t)(i0 + i) * dx_image, work + (size_t)i * kbn * padded,
                       packed, py, px, b, b + 1 < cbn ? 2 : 1, m0, m1, p);
        }
    }
}
