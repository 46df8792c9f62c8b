/* Direct convolution on channel-blocked tensors (NCHW[CB]c, kernels.h): the layout in which
 * the FMA units are fed from registers rather than from memory (bench/layout_probe.c measured
 * 84-94% of the FMA peak for 3x3 on it, against 47-68% for the planar kernels). Any kernel
 * size, stride and padding: the input is copied once into zero-padded planes, and the
 * microkernel (convb_row.h) walks output rows RMAX pixels and two output blocks at a time.
 *
 * Threads: a batch of RN_CONVB_IMAGES_PER_THREAD images a thread or more is shared out an
 * image at a time, each thread padding its image into its own slot; a smaller one (batch-1
 * inference) by groups of images (as many as threads), padded together, then (image, pair of
 * output blocks, band of rows) tasks. Each output value is computed by one task in one order, so the bits
 * do not depend on the thread count. */
#include <string.h>

#include "core/clock.h"
#include "kernels/convb.h"
#include "kernels/cpu.h"
#include "kernels/kernels.h"
#include "kernels/parallel.h"

enum { BAND_ROWS = 4 }; /* output rows per task: enough tasks for batch 1 on small maps */
enum { SEG_CALLS = 4 };        /* microkernel calls per task of a 1x1 convolution's map */
/* Fewer, and a thread held up by another process stalls the rest; with 8, the 17 tasks of
 * resnet50's 28x28 1x1 layers at batch 1 left one of 2 threads idle for a task's time (32: those
 * layers 0.92-0.94x the time at 2 threads). */
enum { TASKS_PER_THREAD = 32 };
enum { GUIDED_IMAGE_BYTES = 1 << 20 }; /* an image's input this small: runs of tasks a thread */

rn_convb_fns rn_convb_select(void)
{
    switch (rn_cpu_simd()) {
    case RN_SIMD_AVX512:
        return (rn_convb_fns){16, RN_CONVB_CALL_AVX512, RN_CONVB_RMAX_AVX512, rn_convb_row_avx512,
                              rn_convb_peak_avx512, rn_convb_wgrad_avx512,
                              {2, 16, rn_convb_wino_in_avx512, rn_convb_wino_out_avx512,
                               rn_convb_wino_dy_avx512, rn_convb_wino_u_avx512},
                              {4, 36, rn_convb_wino4_in_avx512, rn_convb_wino4_out_avx512,
                               rn_convb_wino4_dy_avx512, rn_convb_wino4_u_avx512},
                              rn_convb_quad_avx512};
    case RN_SIMD_AVX2:
        return (rn_convb_fns){8, RN_CONVB_RMAX_AVX2, RN_CONVB_RMAX_AVX2, rn_convb_row_avx2,
                              rn_convb_peak_avx2, rn_convb_wgrad_avx2,
                              {2, 16, rn_convb_wino_in_avx2, rn_convb_wino_out_avx2,
                               rn_convb_wino_dy_avx2, rn_convb_wino_u_avx2},
                              {4, 36, rn_convb_wino4_in_avx2, rn_convb_wino4_out_avx2,
                               rn_convb_wino4_dy_avx2, rn_convb_wino4_u_avx2},
                              NULL};
    default:
        return (rn_convb_fns){8, RN_CONVB_RMAX_GENERIC, RN_CONVB_RMAX_GENERIC, rn_convb_row_generic,
                              rn_convb_peak_generic, rn_convb_wgrad_generic,
                              {2, 16, rn_convb_wino_in_generic, rn_convb_wino_out_generic,
                               rn_convb_wino_dy_generic, rn_convb_wino_u_generic},
                              {4, 36, rn_convb_wino4_in_generic, rn_convb_wino4_out_generic,
                               rn_convb_wino4_dy_generic, rn_convb_wino4_u_generic},
                              NULL};
    }
}

double rn_convb_fma_peak(int threads, double seconds)
{
    const rn_convb_fns v = rn_convb_select();
    const long reps = 1L << 20; /* about a millisecond a call */
    static volatile float sink_out; /* the bursts' result, so that they are not optimised away */
    double best = 0.0;
    for (double spent = 0.0; spent < seconds;) {
        float sink = 0.0f;
        const double t0 = rn_clock_s();
#pragma omp parallel for num_threads(threads) reduction(+ : sink) schedule(static, 1)
        for (int t = 0; t < threads; t++) sink += v.peak(reps);
        const double dt = rn_clock_s() - t0;
        spent += dt;
        const double gflops = 2.0 * v.lanes * 2 * v.rmax_wide * (double)reps * threads / dt / 1e9;
        sink_out = sink;
        if (gflops > best && sink_out == sink) best = gflops;
    }
    return best;
}

int rn_blk_lanes(void) { return rn_convb_select().lanes; }

size_t rn_blk_floats(int n, int c, int h, int w)
{
    const int cb = rn_blk_lanes();
    return (size_t)n * rn_blk_count(c, cb) * h * w * cb;
}

void rn_blk_from_nchw(float *xb, const float *x, int n, int c, int h, int w)
{
    const int cb = rn_blk_lanes(), cbn = rn_blk_count(c, cb);
    const size_t hw = (size_t)h * w;
    for (int i = 0; i < n; i++)
        for (int b = 0; b < cbn; b++) {
            float *dst = xb + ((size_t)i * cbn + b) * hw * cb;
            for (int l = 0; l < cb; l++) {
                const int ch = b * cb + l;
                const float *src = x + ((size_t)i * c + ch) * hw;
                for (size_t p = 0; p < hw; p++) dst[p * cb + l] = ch < c ? src[p] : 0.0f;
            }
        }
}

void rn_blk_to_nchw(float *x, const float *xb, int n, int c, int h, int w)
{
    const int cb = rn_blk_lanes(), cbn = rn_blk_count(c, cb);
    const size_t hw = (size_t)h * w;
    for (int i = 0; i < n; i++)
        for (int ch = 0; ch < c; ch++) {
            const float *src = xb + ((size_t)i * cbn + ch / cb) * hw * cb + ch % cb;
            float *dst = x + ((size_t)i * c + ch) * hw;
            for (size_t p = 0; p < hw; p++) dst[p] = src[p * cb];
        }
}

static int threads_of(const rn_conv_shape *sh) { return sh->threads > 1 ? sh->threads : 1; }

/* The weights as [K blocks][C blocks][r][s][CB c][CB k], then the bias as [K blocks][CB]. */
static size_t weight_floats(const rn_conv_shape *sh, int cb)
{
    return (size_t)rn_blk_count(sh->k, cb) * rn_blk_count(sh->c, cb) * sh->r * sh->s * cb * cb;
}

size_t rn_convb_packed_floats(const rn_conv_shape *sh)
{
    const int cb = rn_blk_lanes();
    return weight_floats(sh, cb) + (size_t)rn_blk_count(sh->k, cb) * cb;
}

/* A training step packs every layer's weights on every call, so this is timed with the
 * forward. A tile of (K block, C block) at a time: its output channels' weights read as they
 * lie (a run of CB x taps floats of w's row k each, the runs a few tiles on asked for, as
 * each of the CB rows is a stream of its own), the tile put together in a buffer on the stack
 * and copied out whole; the K blocks go to the threads. The tiles had been written float by
 * float in the packed order, each float read from another row with its own index arithmetic,
 * on one thread. Measured (Zen 4, family 25 model 17, both alternating in one process, the same
 * bits): resnet50's 1024->2048 layer 0.41-0.53x the time at 1 thread (4.3-4.8 ms before),
 * 512->512 3x3 0.40-0.56x, 2048->512 0.31-0.50x; at 2 threads 0.23-0.28x. Written in place
 * from the rows (no buffer), the stores to new lines held it up. */
enum { PACK_AHEAD = 4 };                /* tiles ahead that a tile asks its rows' lines for */

void rn_convb_pack(float *packed, const float *w, const float *scale, const float *bias,
                   const rn_conv_shape *sh)
{
    const int cb = rn_blk_lanes(), cbn = rn_blk_count(sh->c, cb), kbn = rn_blk_count(sh->k, cb);
    const int taps = sh->r * sh->s;
    const size_t tile = (size_t)taps * cb * cb;
#pragma omp parallel for num_threads(threads_of(sh)) schedule(static) \
    if (threads_of(sh) > 1 && kbn > 1 &&                                                          \
        (size_t)sh->k * sh->c * taps >= RN_CONVB_PACK_THREADS_MIN)
    for (int kb = 0; kb < kbn; kb++) {
        float buffer[RN_CONVB_PACK_TILE_FLOATS] __attribute__((aligned(64)));
        for (int b = 0; b < cbn; b++) {
            float *out = packed + ((size_t)kb * cbn + b) * tile;
            float *dst = tile <= RN_CONVB_PACK_TILE_FLOATS ? buffer : out; /* [taps][CB c][CB k] */
            const int cl_end = sh->c - b * cb < cb ? sh->c - b * cb : cb;
            for (int kl = 0; kl < cb; kl++) {
                const int k = kb * cb + kl;
                if (k >= sh->k || cl_end < cb) /* the zeros past K or C */
                    for (size_t i = 0; i < (size_t)taps * cb; i++) dst[i * cb + kl] = 0.0f;
                if (k >= sh->k) continue;
                const float sk = scale ? scale[k] : 1.0f;
                const float *src = w + ((size_t)k * sh->c + (size_t)b * cb) * taps;
                if (b + PACK_AHEAD < cbn) {
                    const int left = sh->c - (b + PACK_AHEAD) * cb, ahead = left < cb ? left : cb;
                    for (size_t i = 0; i < (size_t)ahead * taps; i += 64 / sizeof(float))
                        __builtin_prefetch(src + (size_t)PACK_AHEAD * cb * taps + i, 0, 3);
                }
                for (int t = 0; t < taps; t++)
                    for (int cl = 0; cl < cl_end; cl++)
                        dst[((size_t)t * cb + cl) * cb + kl] = src[(size_t)cl * taps + t] * sk;
            }
            if (dst == buffer) memcpy(out, buffer, tile * sizeof(float));
        }
    }
    float *bias_dst = packed + weight_floats(sh, cb);
    for (int k = 0; k < kbn * cb; k++) bias_dst[k] = bias && k < sh->k ? bias[k] : 0.0f;
}

/* Images padded at once: one per thread (the padded planes of a group stay in cache). */
static int group_of(const rn_conv_shape *sh)
{
    const int t = threads_of(sh);
    return t < sh->n ? t : sh->n;
}

/* A 1x1 convolution of stride 2 or more without padding (a projection shortcut's) reads one
 * pixel of each stride x stride square: gathered into the workspace, those make a map of the
 * output's size, which the layer then runs through as a pointwise one (one row of equal calls,
 * rather than rows of the output's width whose calls skip every other input pixel). The same
 * multiply-adds in the same order: the same bits. Measured (Xeon, family 6 model 207, resnet50
 * batch 1, both ways alternating forward by forward in one process, 120 forwards): 256->512
 * on 56x56 0.83x the time at 1 thread and 0.79x at 2, 512->1024 0.87x / 0.91x, 1024->2048 0.97x
 * / 0.95x; the forward 0.984x / 0.989x. */
static int strided_pointwise(const rn_conv_shape *sh)
{
    return sh->r == 1 && sh->s == 1 && sh->stride > 1 && sh->pad == 0;
}

void rn_convb_gather_strided(float *dst, const float *x, int i0, int gi, int cbn, int cb,
                             const rn_conv_shape *sh, int threads)
{
    const size_t out_plane = (size_t)sh->oh * sh->ow * cb, in_plane = (size_t)sh->h * sh->w * cb;
#pragma omp parallel for num_threads(threads) schedule(static) collapse(2) if (threads > 1)
    for (int i = 0; i < gi; i++)
        for (int u = 0; u < cbn; u++) {
            float *d = dst + ((size_t)i * cbn + u) * out_plane;
            const float *src = x + ((size_t)(i0 + i) * cbn + u) * in_plane;
            for (int oy = 0; oy < sh->oh; oy++) {
                const float *row = src + (size_t)oy * sh->stride * sh->w * cb;
                for (int ox = 0; ox < sh->ow; ox++, d += cb)
                    memcpy(d, row + (size_t)ox * sh->stride * cb, (size_t)cb * sizeof(float));
            }
        }
}

size_t rn_convb_workspace(const rn_conv_shape *sh)
{
    const int cb = rn_blk_lanes();
    if (strided_pointwise(sh))
        return (size_t)group_of(sh) * rn_blk_count(sh->c, cb) * sh->oh * sh->ow * cb;
    if (!sh->pad) return 0;
    const size_t plane = (size_t)(sh->h + 2 * sh->pad) * (sh->w + 2 * sh->pad) * cb;
    return (size_t)group_of(sh) * rn_blk_count(sh->c, cb) * plane;
}

void rn_convb_pad_plane(float *dst, const float *src, int h, int w, int p, int unit, int border)
{
    const int wp = w + 2 * p;
    if (border) memset(dst, 0, (size_t)p * wp * unit * sizeof(float));
    for (int y = 0; y < h; y++) {
        float *row = dst + (size_t)(y + p) * wp * unit;
        if (border) memset(row, 0, (size_t)p * unit * sizeof(float));
        memcpy(row + (size_t)p * unit, src + (size_t)y * w * unit, (size_t)w * unit * sizeof(float));
        if (border) memset(row + (size_t)(p + w) * unit, 0, (size_t)p * unit * sizeof(float));
    }
    if (border) memset(dst + (size_t)(p + h) * wp * unit, 0, (size_t)p * wp * unit * sizeof(float));
}

/* Rows [m0, m1) of n output pixels each. Where a row is short (4 pixels: resnet8-w32-s2's
 * 64->128 stride 2, and the 4- and 3-pixel phases of its input gradient), one call takes as
 * many rows as RMAX allows: a 4-pixel call of two output blocks keeps 8 accumulator chains,
 * barely the FMA units' latency x their number, and reloads the pair's weights for 4 pixels
 * where it could serve 8 or 12. The same multiply-adds in the same order: the same bits. */
void rn_convb_rows(const rn_convb_fns *v, const rn_convb_row *a, int kbs, float *y, size_t yrow,
                   const float *x, size_t xrow, int m0, int m1, int n)
{
    const int per = n >= 2 ? v->rmax / n : 1; /* rows a call can take */
    if (per >= 2 && m1 - m0 >= 2) {
        const int rows = m1 - m0, calls = (rows + per - 1) / per;
        rn_convb_row split = *a;
        split.split = n;
        split.xnext = xrow;
        split.ynext = yrow;
        for (int j = 0; j < calls; j++) {
            const int r0 = m0 + rn_convb_call_start(rows, calls, j);
            const int r1 = m0 + rn_convb_call_start(rows, calls, j + 1);
            v->row(r1 - r0 > 1 ? &split : a, (r1 - r0) * n, kbs, y + (size_t)r0 * yrow,
                   x + (size_t)r0 * xrow);
        }
        return;
    }
    const int calls = rn_convb_row_calls(n, v->rmax);
    for (int m = m0; m < m1; m++)
        for (int j = 0; j < calls; j++) {
            const int l = rn_convb_call_start(n, calls, j);
            v->row(a, rn_convb_call_start(n, calls, j + 1) - l, kbs,
                   y + (size_t)m * yrow + (size_t)l * a->ypix, x + (size_t)m * xrow + (size_t)l * a->xstep);
        }
}

/* Rows [y0, y1) of image xi's output blocks kb and kb + 1 (when kbs is 2). */
static void band(const rn_convb_fns *v, rn_convb_row a, float *yi, const float *xi, int kb, int kbs,
                 int y0, int y1, const rn_conv_shape *sh, const float *packed)
{
    const int cb = v->lanes;
    const size_t wblock = (size_t)a.cbn * a.kr * a.ks * cb * cb;
    a.w = packed + kb * wblock;
    a.bias = packed + weight_floats(sh, cb) + (size_t)kb * cb;
    rn_convb_rows(v, &a, kbs, yi + (size_t)kb * a.ystride, (size_t)sh->ow * cb, xi,
                  (size_t)sh->stride * a.xrow, y0, y1, sh->ow);
}

/* A 1x1 convolution of stride 1 without padding reads output pixel p's input at pixel p, so
 * a whole map is one row, cut into calls of equal width (49 pixels: 10, 10, 10, 10, 9; rows
 * of 7 or 14 would leave short calls at every row's end). A task is a segment of SEG_CALLS
 * calls for a group of output-block pairs (or of 2 x SEG_CALLS for fours, quad_calls below):
 * all of them when there are tasks enough, so the segment's input is read from cache once for
 * every pair rather than once per pair; one pair where the output has as many channels as the
 * input or more, since there the output's planes, written a segment at a time for every pair,
 * are the larger stream (resnet50 batch 1, both alternating forward by forward: 64->256 on
 * 56x56 0.96x the time at 1 and 2 threads, 128->512 on 28x28 0.99x and 0.92x; the layers that
 * reduce the channels 1.01x with one pair a task). */
static int pointwise(const rn_conv_shape *sh)
{
    return sh->r == 1 && sh->s == 1 && sh->stride == 1 && sh->pad == 0;
}

/* Four output blocks a call (convb_quad.h) where the build has that kernel, the blocks come in
 * fours, the input fills its blocks and the map has QUAD_MIN_PIXELS or more (the same bits
 * either way). Measured (Xeon, family 6 model 207, resnet50, both ways alternating forward by
 * forward in one process, a timer per layer, 24 forwards at batch 16, 100 at batch 1): batch 16
 * 0.92-0.97x the convolutions' time at 1 thread and 0.92-0.97x at 2 (two runs each), the 1x1
 * layers on 56x56 and 28x28 0.77-0.95x, on 14x14 0.91-1.06x; batch 1 0.92x and 0.95x. On 7x7
 * maps, whose weights outweigh their activations, each weight vector serving 6 pixels instead
 * of 12 took the 2048->512 layers to 1.21x and 1024->2048 to 1.10x at batch 16, hence the
 * bound. */
enum { QUAD_MIN_PIXELS = 196 };

static int quad_calls(const rn_convb_fns *v, const rn_conv_shape *sh, int kbn, long pixels)
{
    return v->quad && kbn % 4 == 0 && sh->c % v->lanes == 0 && pixels >= QUAD_MIN_PIXELS;
}

/* bias: the K blocks' biases, or NULL */
static void pointwise_forward(const rn_convb_fns *v, rn_convb_row a, float *y, const float *x,
                              const float *packed, const float *bias, const rn_conv_shape *sh)
{
    const int cb = v->lanes, kbn = rn_blk_count(sh->k, cb);
    const int threads = threads_of(sh);
    const long pixels = (long)sh->oh * sh->ow;
    /* output blocks a call (per), its most pixels, and a segment's calls: 48 pixels either way
     * with 16 lanes */
    const int quads = quad_calls(v, sh, kbn, pixels), per = quads ? 4 : 2;
    const int rmax = quads ? RN_CONVB_QUAD_RMAX : v->rmax;
    const int seg_calls = quads ? 2 * SEG_CALLS : SEG_CALLS;
    const int units = (kbn + per - 1) / per;
    const long calls = (pixels + rmax - 1) / rmax;
    const long segs = (calls + seg_calls - 1) / seg_calls;
    long groups = ((long)TASKS_PER_THREAD * threads + sh->n * segs - 1) / (sh->n * segs);
    if (groups > units || sh->k >= sh->c) groups = units;
    const size_t in_image = (size_t)a.cbn * pixels * cb, out_image = (size_t)kbn * pixels * cb;
    const size_t wblock = (size_t)a.cbn * cb * cb;
    a.xplane = (size_t)pixels * cb;
    const long tasks = (long)sh->n * segs * groups;
    /* guided: each thread takes long runs of consecutive tasks, so its reads of the input run on
     * along each block's plane where task-by-task turns interrupted them at every segment
     * (resnet50 inference at 2 threads, both schedules alternating pass by pass in one process:
     * the 1x1 layers 0.83-0.97x the time at batch 1; at batch 16 0.78-0.95x in one set, the
     * network's convolutions 0.99x and 1.01x in two more; the same bits) */
#pragma omp parallel for num_threads(threads) schedule(guided) if (threads > 1)
    for (long t = 0; t < tasks; t++) {
        const int i = (int)(t / (segs * groups));
        const long seg = t % segs, g = t / segs % groups;
        const long c0 = seg * seg_calls, c1 = c0 + seg_calls < calls ? c0 + seg_calls : calls;
        const float *xi = x + (size_t)i * in_image;
        for (int u = (int)(g * units / groups); u < (g + 1) * units / groups; u++) {
            const int kb = per * u, kbs = kb + per <= kbn ? per : kbn - kb;
            rn_convb_row b = a;
            b.w = packed + kb * wblock;
            b.bias = bias ? bias + (size_t)kb * cb : NULL;
            float *yk = y + (size_t)i * out_image + (size_t)kb * a.ystride;
            for (long c = c0; c < c1; c++) {
                const long p0 = c * pixels / calls, p1 = (c + 1) * pixels / calls;
                if (quads) v->quad(&b, (int)(p1 - p0), yk + (size_t)p0 * cb, xi + (size_t)p0 * cb);
                else v->row(&b, (int)(p1 - p0), kbs, yk + (size_t)p0 * cb, xi + (size_t)p0 * cb);
            }
        }
    }
}

/* A strided 1x1 convolution (strided_pointwise) as a pointwise one on its gathered input: a
 * group of images at a time, or, at RN_CONVB_IMAGES_PER_THREAD images a thread or more, an
 * image a task, gathered into the thread's own slot and run by that thread alone. */
static void strided_forward(const rn_convb_fns *v, rn_convb_row a, float *y, const float *x,
                            const float *packed, const rn_conv_shape *sh, float *work)
{
    const int cb = v->lanes, cbn = rn_blk_count(sh->c, cb), threads = threads_of(sh);
    const size_t gathered = (size_t)cbn * sh->oh * sh->ow * cb;
    const size_t out_image = (size_t)rn_blk_count(sh->k, cb) * sh->oh * sh->ow * cb;
    rn_conv_shape unit = *sh;
    unit.stride = 1;
    unit.h = sh->oh;
    unit.w = sh->ow;
    a.xstep = (size_t)cb;
    a.xrow = (size_t)sh->ow * cb;
    if (sh->n >= RN_CONVB_IMAGES_PER_THREAD * threads) {
        unit.n = 1;
        unit.threads = 1;
#pragma omp parallel num_threads(threads) if (threads > 1)
        {
            float *slot = work + (size_t)rn_thread_id() * gathered;
#pragma omp for schedule(dynamic, 1)
            for (int i = 0; i < sh->n; i++) {
                rn_convb_gather_strided(slot, x, i, 1, cbn, cb, sh, 1);
                pointwise_forward(v, a, y + (size_t)i * out_image, slot, packed,
                                  packed + weight_floats(sh, cb), &unit);
            }
        }
        return;
    }
    const int group = group_of(sh);
    for (int i0 = 0; i0 < sh->n; i0 += group) {
        const int gi = sh->n - i0 < group ? sh->n - i0 : group;
        rn_convb_gather_strided(work, x, i0, gi, cbn, cb, sh, threads);
        unit.n = gi;
        pointwise_forward(v, a, y + (size_t)i0 * out_image, work, packed,
                          packed + weight_floats(sh, cb), &unit);
    }
}

/* The (image, pair of output blocks, band of rows) tasks of a group of images (forward). */
typedef struct {
    const rn_convb_fns *v;
    rn_convb_row a;
    float *y;
    size_t out_image;
    const float *x; /* the group's first image, padded or as given */
    size_t x_image;
    int pairs, bands, kbn;
    const rn_conv_shape *sh;
    const float *packed;
} band_tasks;

static void band_task(const band_tasks *b, long t)
{
    const long per_image = (long)b->pairs * b->bands;
    const int i = (int)(t / per_image), rest = (int)(t % per_image);
    const int kb = 2 * (rest / b->bands), y0 = (rest % b->bands) * BAND_ROWS;
    const int y1 = y0 + BAND_ROWS < b->sh->oh ? y0 + BAND_ROWS : b->sh->oh;
    band(b->v, b->a, b->y + (size_t)i * b->out_image, b->x + (size_t)i * b->x_image, kb,
         kb + 1 < b->kbn ? 2 : 1, y0, y1, b->sh, b->packed);
}

/* Wide calls (rmax_wide pixels, not rmax) where the layer's weights outweigh its output: each
 * weight vector loaded then serves more pixels. Measured (Xeon, family 6 model 207, resnet50
 * batch 1, alternating forward by forward): with this rule the convolutions 0.967x the time at
 * 1 thread and 0.984-0.992x at 2, the stride-2 layers on 28x28 and below 0.85-1.00x; 14 pixels
 * for every layer took the ones whose output outweighs their weights (64->256 on 56x56, the
 * first convolution) to 1.03-1.07x, hence the rule. */
static int wide_calls(const rn_conv_shape *sh, int cb)
{
    return weight_floats(sh, cb) > (size_t)sh->n * rn_blk_count(sh->k, cb) * sh->oh * sh->ow * cb;
}

void rn_convb_pointwise(float *y, const float *x, const float *w, const rn_conv_shape *sh)
{
    rn_convb_fns v = rn_convb_select();
    if (wide_calls(sh, v.lanes)) v.rmax = v.rmax_wide;
    const int cb = v.lanes, cbn = rn_blk_count(sh->c, cb);
    const rn_convb_row a = {.wstride = (size_t)cbn * cb * cb, .cbn = cbn, .kr = 1, .ks = 1,
                            .clast = sh->c - (cbn - 1) * cb, .xrow = (size_t)sh->w * cb,
                            .xpix = (size_t)cb, .xstep = (size_t)cb, .cstride = 1,
                            .ystride = (size_t)sh->oh * sh->ow * cb, .ypix = (size_t)cb,
                            .y_base = y};
    pointwise_forward(&v, a, y, x, w, NULL, sh);
}

/* planar_in: x is planar [n, c, h, w], read as blocks whose channels are planes (the network's
 * first convolution, on the images as they come). */
static void forward(float *y, const float *x, const float *sum, const float *packed, int relu,
                    const rn_conv_shape *sh, float *work, int planar_in)
{
    rn_convb_fns v = rn_convb_select();
    if (wide_calls(sh, v.lanes)) v.rmax = v.rmax_wide;
    const int cb = v.lanes, cbn = rn_blk_count(sh->c, cb), kbn = rn_blk_count(sh->k, cb);
    const int threads = threads_of(sh), group = group_of(sh);
    const int hp = sh->h + 2 * sh->pad, wp = sh->w + 2 * sh->pad;
    /* what one channel block (blocked) or one channel (planar) takes, padded and as given */
    const int unit = planar_in ? 1 : cb, units = planar_in ? sh->c : cbn;
    const size_t xplane = (size_t)hp * wp * unit, given = (size_t)sh->h * sh->w * unit;
    const size_t channel = sh->pad ? xplane : given; /* a planar input's plane, as read */
    const size_t in_image = (size_t)units * given;
    const size_t out_image = (size_t)kbn * sh->oh * sh->ow * cb;
    const rn_convb_row a = {
        .wstride = (size_t)cbn * sh->r * sh->s * cb * cb, .cbn = cbn, .kr = sh->r, .ks = sh->s,
        .clast = sh->c - (cbn - 1) * cb, .xplane = planar_in ? channel * cb : xplane,
        .xrow = (size_t)wp * unit, .xpix = (size_t)unit, .xstep = (size_t)sh->stride * unit,
        .cstride = planar_in ? channel : 1,
        .ystride = (size_t)sh->oh * sh->ow * cb, .ypix = (size_t)cb, .relu = relu, .sum = sum,
        .y_base = y};
    const int pairs = (kbn + 1) / 2, bands = (sh->oh + BAND_ROWS - 1) / BAND_ROWS;
    if (pointwise(sh) && !planar_in) {
        pointwise_forward(&v, a, y, x, packed, packed + weight_floats(sh, cb), sh);
        return;
    }
    if (strided_pointwise(sh) && !planar_in) {
        strided_forward(&v, a, y, x, packed, sh, work);
        return;
    }
    if (sh->n >= RN_CONVB_IMAGES_PER_THREAD * threads) {
        /* One parallel region for the batch: per group of images, the two regions (padding,
         * then the bands) cost two fork/joins for a few microseconds of work on small maps
         * (resnet20's 32->64 stride 2 on 14x14 ran no faster on 2 threads than on 1). */
#pragma omp parallel num_threads(threads) if (threads > 1)
        {
            const size_t slot = (size_t)rn_thread_id() * units * xplane;
            /* The slot's border is zero after the thread's first image: from then on only the
             * rows are copied, where the border's memsets had been as many calls again as the
             * rows' copies (Zen 4, both ways alternating call by call, the same bits: the
             * first layers 0.94-0.98x the time, the stride-2 3x3 ones 0.97-1.01x). Likewise
             * for the first group's slots below. */
            int border = 1;
#pragma omp for schedule(dynamic, 1)
            for (int i = 0; i < sh->n; i++) {
                const float *xi = x + (size_t)i * in_image;
                if (sh->pad) {
                    for (int u = 0; u < units; u++)
                        rn_convb_pad_plane(work + slot + (size_t)u * xplane, xi + (size_t)u * given,
                                           sh->h, sh->w, sh->pad, unit, border);
                    border = 0;
                    xi = work + slot;
                }
                for (int pair = 0; pair < pairs; pair++)
                    band(&v, a, y + (size_t)i * out_image, xi, 2 * pair, 2 * pair + 1 < kbn ? 2 : 1,
                         0, sh->oh, sh, packed);
            }
        }
        return;
    }
    for (int i0 = 0; i0 < sh->n; i0 += group) {
        const int gi = sh->n - i0 < group ? sh->n - i0 : group;
        if (sh->pad) {
#pragma omp parallel for num_threads(threads) schedule(static) collapse(2) if (threads > 1)
            for (int i = 0; i < gi; i++)
                for (int u = 0; u < units; u++)
                    rn_convb_pad_plane(work + ((size_t)i * units + u) * xplane,
                                       x + (size_t)(i0 + i) * in_image + (size_t)u * given, sh->h,
                                       sh->w, sh->pad, unit, i0 == 0);
        }
        const long tasks = (long)gi * pairs * bands;
        const band_tasks bt = {&v, a, y + (size_t)i0 * out_image, out_image,
                               sh->pad ? work : x + (size_t)i0 * in_image,
                               sh->pad ? (size_t)units * xplane : in_image, pairs, bands, kbn, sh,
                               packed};
        /* Long runs of consecutive tasks a thread (guided) where an image is small: a thread
         * then keeps to its own pairs of output blocks, their weights in its own cache (resnet50
         * at batch 1, 2 threads, both orders in one process pass by pass: its 14x14 and 7x7
         * direct layers 0.87-0.92x the time); task by task where it is large, as the threads
         * then read each band's input together (56x56: 1.09-1.14x the time guided). */
        if ((size_t)units * xplane * sizeof(float) <= GUIDED_IMAGE_BYTES) {
#pragma omp parallel for num_threads(threads) schedule(guided) if (threads > 1)
            for (long t = 0; t < tasks; t++) band_task(&bt, t);
        } else {
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1) if (threads > 1)
            for (long t = 0; t < tasks; t++) band_task(&bt, t);
        }
    }
}

void rn_convb_forward(float *y, const float *x, const float *packed, int relu,
                      const rn_conv_shape *sh, float *work)
{
    forward(y, x, NULL, packed, relu, sh, work, 0);
}

void rn_convb_forward_add(float *y, const float *x, const float *sum, const float *packed,
                          int relu, const rn_conv_shape *sh, float *work)
{
    forward(y, x, sum, packed, relu, sh, work, 0);
}

void rn_convb_forward_planar_in(float *y, const float *x, const float *packed, int relu,
                                const rn_conv_shape *sh, float *work)
{
    forward(y, x, NULL, packed, relu, sh, work, 1);
}
