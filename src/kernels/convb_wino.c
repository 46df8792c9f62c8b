/* Winograd F(2x2, 3x3) and F(4x4, 3x3) on channel-blocked tensors, for 3x3 stride-1 pad-1
 * convolutions: the blocked engine's answer to the planar Winograd. F(m x m, 3x3) does 9 m^2 /
 * (m + 2)^2 times fewer multiply-adds than any direct kernel: 2.25x with 2x2 output tiles, 4x
 * with 4x4 ones. Each (m + 2)^2 input tile of a channel block becomes (m + 2)^2 vectors
 * V = B^T d B (one vector op per element of the transform: the lanes are the channels); for
 * each position, the products M = U V over the input channels are the blocked direct kernel's
 * microkernel with a 1x1 "kernel" (tiles for pixels); each output tile is A^T M A, plus the
 * bias, then the ReLU. Weights: U = G g G^T (in double), packed once as
 * [positions][K blocks][C blocks][CB c][CB k], then the bias as [K blocks][CB].
 *
 * The tiles go in chunks that keep their transformed input and products in a core's cache,
 * one chunk per task; the sums run in a fixed order and every value is computed by one task,
 * so the bits do not depend on the thread count. */
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "kernels/convb.h"
#include "kernels/cpu.h"
#include "kernels/kernels.h"


static int forced_tile;

void rn_convb_wino_force_tile(int m) { forced_tile = m; }

int rn_convb_wino_fits(const rn_conv_shape *sh)
{
    return sh->r == 3 && sh->s == 3 && sh->stride == 1 && sh->pad == 1;
}

/* Measured (Zen 4, 1 thread, batch 128 and 1, the transforms' V and M positions a cache line
 * off 4 KiB apart), F(2x2, 3x3) alone: with 16 lanes Winograd beats the direct kernel from 16
 * channels (1.18x on resnet20's 16-channel 32x32 layers, 1.50x at 32 channels on 16x16, 1.77x
 * at 64 on 8x8, 1.37-1.44x on resnet50's 512-channel 7x7, 1.46x on 2x2 maps); with 8 lanes
 * (AVX2) from 32 (0.89x at 16 channels, 1.24x at 32). F(4x4, 3x3) (bench/convb_wino_probe.c,
 * forward against the direct kernel, F2 / F4): 16 lanes 1.12x / 1.39x at 16 channels on
 * 32x32, 1.32x / 1.77x at 32 on 16x16, 1.72x / 2.51x at 64 on 8x8, 2.06x / 2.95x at 128 on
 * 4x4, 1.36x / 1.92x at 512 on 7x7 (batch 16; at batch 1, where the 2.25x larger transformed
 * weights are read for 4 tiles, 1.17x / 1.06x); 8 lanes 0.86x / 1.09x at 16 channels on
 * 32x32, so with F4 16 channels pay there too. On 1x1 maps, where three of a tile's four
 * outputs are thrown away, the direct kernel is faster (0.57x). The batch does not enter the
 * choice, so a network gives the same bits for any batch size. */
int rn_convb_wino_pays(const rn_conv_shape *sh)
{
    if (sh->algo == RN_CONV_DIRECT) return 0;
    const int least = rn_blk_lanes() == 16 || rn_convb_wino_tile(sh) == 4 ? 16 : 32;
    return rn_convb_wino_fits(sh) && sh->c >= least && sh->k >= least && sh->oh >= 2 && sh->ow >= 2;
}

/* The tile whose positions over the map are fewer: F(4x4, 3x3) from 3x3 maps on (on 5x5 and
 * 6x6 maps the two do as many products, and F(2x2, 3x3) has the cheaper transforms); 2x2 where
 * sh->algo asks for it. */
int rn_convb_wino_tile(const rn_conv_shape *sh)
{
    if (forced_tile) return forced_tile;
    if (sh->algo == RN_CONV_WINOGRAD_2X2) return 2;
    const long p2 = (long)((sh->oh + 1) / 2) * ((sh->ow + 1) / 2) * 16;
    const long p4 = (long)((sh->oh + 3) / 4) * ((sh->ow + 3) / 4) * 36;
    return p4 < p2 ? 4 : 2;
}

/* A frozen network's forward, which may run one image at a time: there each transformed
 * weight serves only an image's tiles, and F(4x4, 3x3)'s weights are 4x the direct kernel's
 * (F(2x2, 3x3)'s 1.8x). Where they outgrow the L2 cache they stream from memory, so a tile is
 * taken only where an image has INFERENCE_TILES of it (INFERENCE_TILES_2X2 of 2x2 ones; else
 * the smaller tile, else the direct kernel). Measured (Xeon, family 6 model 207, inference, 3
 * alternating runs), when the weights were read once a chunk of 8-16 tiles: resnet18's
 * 512-channel 7x7 layers (4 tiles of 4x4, 16 of 2x2; 37.7 MB of F(4x4) weights a layer)
 * direct and its 256-channel 14x14 ones F(2x2) took batch 1 at 2 threads from 15.4-19.1 ms
 * to 11.2-13.3, at 1 thread 23.9-27.3 to 22.2-25.1, resnet50's batch 1 at 2 threads 40.8-44.0
 * to 35.7-41.2; batch 16 lost up to 1.1x (resnet18 at 2 threads 133-141 ms to 144-155; resnet50
 * within the noise). Since a thread reads them once for all its tiles of an image or two
 * (chunk_tiles below), F(2x2, 3x3) pays on the 7x7 maps' 16 tiles (Zen 4, resnet50's two
 * 512-channel 7x7 layers against the direct kernel, per-layer timer, alternating runs: batch 1
 * 3.70 ms against 4.63-4.70 at 1 thread, 2.00-2.03 against 2.34-2.48 at 2; batch 16 61-67
 * against 75 and 25-30 against 34-35; resnet18 batch 1 at 1 thread 20.4-20.5 ms against
 * 22.5-23.1, batch 16 at 2 threads 166-171 against 180-185), while F(4x4, 3x3) on 14x14 (16
 * tiles) still lost at batch 1 (6.64-6.67 ms against 6.39-6.48 with 2x2 tiles). The shape alone
 * decides: a network gives the same bits for any batch. With 8 lanes (AVX2) the tile stays:
 * there the FMAs take twice the time for the same weights, and resnet18 at batch 16 on 2
 * threads took 1.20x the time with these layers direct (3 alternating runs, RN_SIMD=avx2), at
 * batch 1 0.91-0.95x. */
enum { INFERENCE_TILES = 32, INFERENCE_TILES_2X2 = 16 };
static const size_t INFERENCE_CACHED_BYTES = (size_t)1 << 20;

int rn_convb_wino_inference_tile(const rn_conv_shape *sh)
{
    if (!rn_convb_wino_pays(sh)) return 0;
    const int m = rn_convb_wino_tile(sh);
    if (forced_tile || sh->algo == RN_CONV_WINOGRAD_2X2 || rn_blk_lanes() != 16) return m;
    for (int t = m; t >= 2; t -= 2) {
        const size_t weights = (size_t)(t + 2) * (t + 2) * sh->c * sh->k * sizeof(float);
        const long tiles = (long)((sh->oh + t - 1) / t) * ((sh->ow + t - 1) / t);
        if (weights <= INFERENCE_CACHED_BYTES ||
            tiles >= (t == 2 ? INFERENCE_TILES_2X2 : INFERENCE_TILES))
            return t;
    }
    return 0;
}

/* The weight gradient's own tile: it computes its transforms itself, so it need not take the
 * forward's. F(4x4, 3x3) holds a range's sums for 36 positions where F(2x2, 3x3) holds 16,
 * which past 64 channels leave the L2 cache (bench/convb_wino_probe.c, batch 128, 1 thread,
 * against the direct gradient, F2 / F4: 1.17x / 1.42x at 16 channels on 32x32, 1.47x / 1.79x
 * at 32 on 16x16, 1.42x / 1.35x at 32 on 14x14, 1.50x / 1.59x at 64 on 8x8, 1.33x / 1.70x at
 * 64 on 56x56 (batch 8); 1.10x / 0.67x at 128 on 4x4, 1.37x / 1.26x at 128 on 28x28). */
int rn_convb_wino_wgrad_tile(const rn_conv_shape *sh)
{
    const int m = rn_convb_wino_tile(sh);
    return forced_tile ? forced_tile : m == 4 && sh->c <= 64 && sh->k <= 64 ? 4 : 2;
}

/* Below 32 channels F(2x2, 3x3) moves 16 transformed values for every 4 outputs and
 * multiplies each with only 16 weights: on Intel's AVX-512 cores, with two FMA units of 16
 * lanes, the direct kernel is faster there (Xeon, family 6 model 207, bench/convb_wino_probe.c,
 * batch 128, 16->16 channels, the time of F(2x2) over the direct kernel's: 1.41x on 32x32 at 1
 * thread, 1.25x at 2; 1.30x and 1.06x on 28x28; at 32 channels on 16x16 F(2x2) takes 0.82x
 * and 0.77x, at 64 on 8x8 0.63x and 0.62x), where on AMD's Zen 4, whose units split a 16-lane
 * FMA in two, F(2x2) took 0.85x on the 16-channel 32x32 layers (the measurements above). */
static int direct_training_forward(const rn_conv_shape *sh)
{
    return rn_blk_lanes() == 16 && rn_cpu_intel() && (sh->c < 32 || sh->k < 32);
}

/* The forward's rounding decides which side of the kink each ReLU input falls on, and
 * F(4x4, 3x3)'s, about 30x F(2x2, 3x3)'s on blocks (test_kernels), flipped enough of them in
 * plain20's parity case (tests/test_parity.c on blocks: its first convolution's weights after
 * the SGD steps then differed from PyTorch's by 4.2e-3 where 3e-3 is allowed; 1.5e-4 with 2x2
 * tiles). The two backward passes, which decide no ReLU, take the tile the shape chooses
 * (1.9e-7 with 4x4 tiles in both); so does a frozen network's forward, which trains no more. */
rn_conv_shape rn_convb_wino_training_forward(const rn_conv_shape *sh)
{
    rn_conv_shape t = *sh;
    t.algo = direct_training_forward(sh) ? RN_CONV_DIRECT : RN_CONV_WINOGRAD_2X2;
    return t;
}

const rn_convb_wino_fns *rn_convb_wino_pick(const rn_convb_fns *f, int m)
{
    return m == 4 ? &f->wino4 : &f->wino2;
}

static int positions_of(const rn_conv_shape *sh)
{
    const int m = rn_convb_wino_tile(sh);
    return (m + 2) * (m + 2);
}

static size_t u_floats(const rn_conv_shape *sh, int cb)
{
    return (size_t)positions_of(sh) * rn_blk_count(sh->k, cb) * rn_blk_count(sh->c, cb) * cb * cb;
}

/* Tiles a chunk: as many as keep a chunk's transforms in the L2 cache, or, where the weights
 * are larger than the transforms of all tiles (an image or two in a frozen network), a
 * thread's share of all tiles: each chunk reads every weight once, so a layer then reads them
 * once a thread rather than once a chunk (resnet50 batch 1, both alternating forward by
 * forward: its 256-channel 14x14 layers 0.95x the time at 1 thread, 0.93x at 2, the 128-channel
 * 28x28 ones 0.98x and 0.97x). */
static int chunk_tiles(const rn_conv_shape *sh, long tiles)
{
    const int cb = rn_blk_lanes(), cbn = rn_blk_count(sh->c, cb), kbn = rn_blk_count(sh->k, cb);
    const int positions = positions_of(sh), threads = sh->threads > 1 ? sh->threads : 1;
    const int fit = rn_convb_wino_chunk_tiles(cbn + kbn, cb, positions);
    if (u_floats(sh, cb) <= (size_t)tiles * positions * (cbn + kbn) * cb) return fit;
    const long share = (tiles + threads - 1) / threads;
    return share > fit ? (int)share : fit;
}

static long tiles_of(const rn_conv_shape *sh)
{
    const int m = rn_convb_wino_tile(sh);
    return (long)sh->n * ((sh->oh + m - 1) / m) * ((sh->ow + m - 1) / m);
}

/* The most tiles a chunk of a batch of up to sh->n images takes: the thread's share grows with
 * the batch until the transforms outgrow the weights. */
static int chunk_tiles_most(const rn_conv_shape *sh)
{
    const int cb = rn_blk_lanes(), positions = positions_of(sh);
    const size_t per_tile = (size_t)positions *
                            (rn_blk_count(sh->c, cb) + rn_blk_count(sh->k, cb)) * cb;
    const long below = (long)((u_floats(sh, cb) + per_tile - 1) / per_tile) - 1;
    const long tiles = tiles_of(sh);
    const int a = chunk_tiles(sh, tiles), b = chunk_tiles(sh, below < tiles ? below : tiles);
    return below >= 1 && b > a ? b : a;
}

size_t rn_convb_wino_packed_floats(const rn_conv_shape *sh)
{
    const int cb = rn_blk_lanes();
    return u_floats(sh, cb) + (size_t)rn_blk_count(sh->k, cb) * cb;
}

/* The weights of output block kb from input block cbk, every position: the lanes past c and k
 * zero. One input channel's CB output channels at a time, so that each position's store is
 * one cache line (a store per (k, c) and position, the positions a multiple of 4 KiB apart,
 * missed the L1 cache on every one). */
static void pack_blocks(const rn_convb_wino_fns *tf, float *packed, const float *w,
                        const float *scale, const rn_conv_shape *sh, int flipped, int kb, int cbk)
{
    const int a = tf->m + 2, cb = rn_blk_lanes();
    const int cbn = rn_blk_count(sh->c, cb), kbn = rn_blk_count(sh->k, cb);
    const size_t pstride = (size_t)kbn * cbn * cb * cb;
    float *out = packed + ((size_t)kb * cbn + cbk) * cb * cb;
    for (int p = 0; p < a * a; p++) memset(out + p * pstride, 0, (size_t)cb * cb * sizeof(float));
    const int k0 = kb * cb, k1 = sh->k < k0 + cb ? sh->k : k0 + cb;
    for (int c = cbk * cb; c < sh->c && c < (cbk + 1) * cb; c++) {
        /* lane l: output channel k0 + l's taps and scale (zeros and 1 past k, not stored) */
        float f[9 * RN_BLK_MAX_LANES] = {0};
        double s[RN_BLK_MAX_LANES], u[36 * RN_BLK_MAX_LANES];
        for (int l = 0; l < cb; l++) s[l] = 1.0;
        for (int k = k0; k < k1; k++) {
            for (int tap = 0; tap < 9; tap++)
                f[tap * cb + k - k0] = flipped ? w[((size_t)c * sh->k + k) * 9 + 8 - tap]
                                               : w[((size_t)k * sh->c + c) * 9 + tap];
            if (scale) s[k - k0] = scale[k];
        }
        tf->u(u, f, s);
        for (int p = 0; p < a * a; p++) {
            float *o = out + p * pstride + (size_t)(c % cb) * cb;
            for (int k = k0; k < k1; k++) o[k - k0] = (float)u[p * cb + k - k0];
        }
    }
}

/* flipped: w holds the forward convolution's weights [sh->c][sh->k][3][3], and sh is the
 * shape of its input gradient, whose weights are those transposed and turned by 180 degrees.
 * A training step packs on every call, so the block pairs go to the threads. */
static void pack(float *packed, const float *w, const float *scale, const float *bias,
                 const rn_conv_shape *sh, int flipped)
{
    const int cb = rn_blk_lanes(), cbn = rn_blk_count(sh->c, cb), kbn = rn_blk_count(sh->k, cb);
    const rn_convb_fns f = rn_convb_select();
    const rn_convb_wino_fns *tf = rn_convb_wino_pick(&f, rn_convb_wino_tile(sh));
    const int tasks = kbn * cbn, threads = sh->threads > 1 ? sh->threads : 1;
#pragma omp parallel for num_threads(threads) schedule(static) \
    if (threads > 1 && tasks > 1 && (size_t)sh->k * sh->c >= 1024)
    for (int t = 0; t < tasks; t++) pack_blocks(tf, packed, w, scale, sh, flipped, t / cbn, t % cbn);
    float *b = packed + u_floats(sh, cb);
    memset(b, 0, (size_t)kbn * cb * sizeof(float));
    for (int k = 0; bias && k < sh->k; k++) b[k] = bias[k];
}

void rn_convb_wino_pack(float *packed, const float *w, const float *scale, const float *bias,
                        const rn_conv_shape *sh)
{
    pack(packed, w, scale, bias, sh, 0);
}

rn_conv_shape rn_convb_wino_transposed(const rn_conv_shape *sh)
{
    rn_conv_shape t = *sh;
    t.c = sh->k, t.h = sh->oh, t.w = sh->ow, t.k = sh->c, t.oh = sh->h, t.ow = sh->w;
    return t;
}

void rn_convb_wino_pack_backward_data(float *packed, const float *w, const rn_conv_shape *t)
{
    pack(packed, w, NULL, NULL, t, 1);
}

/* Tiles of a batch this small or fewer are shared out by output blocks rather than by tiles
 * (there is more than one thread, and the weights outweigh the transforms of all the tiles
 * BY_BLOCKS_WEIGHTS times or more): the threads transform the input together, then each takes
 * whole pairs of output blocks for every tile. Shared out by tiles, every thread read all the
 * weights: 16 MB for each of resnet50's 512-channel 7x7 layers at batch 1, 16 times their
 * tiles' transforms. Measured (Xeon, family 6 model 207, resnet50 batch 1, 2 threads, both
 * alternating forward by forward, three sets of 80 pairs): those layers 0.84-0.87x the time;
 * the 256-channel 14x14 layers (2.5 times) 0.97-1.01x, the 128-channel 28x28 ones (1.3 times)
 * 0.99-1.04x, hence the bound. With AVX2 (RN_SIMD=avx2, 2 threads), where the 14x14 layers take
 * F(4x4, 3x3) tiles and fall under it too: 7x7 0.63-0.68x, 14x14 0.82-0.86x. */
enum { BY_BLOCKS_WEIGHTS = 4 };

static long by_blocks_most(const rn_conv_shape *sh)
{
    const int cb = rn_blk_lanes(), cbn = rn_blk_count(sh->c, cb), kbn = rn_blk_count(sh->k, cb);
    if (sh->threads <= 1 || kbn < 2) return 0;
    const size_t per_tile = (size_t)BY_BLOCKS_WEIGHTS * positions_of(sh) * (cbn + kbn) * cb;
    return (long)(u_floats(sh, cb) / per_tile);
}

static int by_blocks(const rn_conv_shape *sh, long tiles) { return tiles <= by_blocks_most(sh); }

/* Its V and M, [positions][blocks][tiles][CB], shared by the threads. */
static size_t by_blocks_floats(const rn_conv_shape *sh, long tiles)
{
    const int cb = rn_blk_lanes(), nt = (int)tiles;
    return (size_t)positions_of(sh) *
           (rn_convb_wino_position_floats(rn_blk_count(sh->c, cb), nt, cb) +
            rn_convb_wino_position_floats(rn_blk_count(sh->k, cb), nt, cb));
}

/* Per thread: V and M of one chunk, [positions][blocks][chunk tiles][CB], positions
 * rn_convb_wino_position_floats apart. */
size_t rn_convb_wino_workspace(const rn_conv_shape *sh)
{
    const int cb = rn_blk_lanes(), threads = sh->threads > 1 ? sh->threads : 1;
    const int cbn = rn_blk_count(sh->c, cb), kbn = rn_blk_count(sh->k, cb);
    const int positions = positions_of(sh);
    const int ct = chunk_tiles_most(sh);
    const size_t by_tiles = (size_t)threads * positions *
                            (rn_convb_wino_position_floats(cbn, ct, cb) +
                             rn_convb_wino_position_floats(kbn, ct, cb));
    /* the most tiles a batch of up to sh->n images shares out by blocks */
    const long tiles = tiles_of(sh), below = by_blocks_most(sh);
    const long most = tiles < below ? tiles : below;
    const size_t blocks = most > 0 ? by_blocks_floats(sh, most) : 0;
    return by_tiles > blocks ? by_tiles : blocks;
}

/* Where a chunk's transforms and products lie: tiles [t0, t1) of the batch, their V and M
 * positions vpos and mpos floats apart, each (position, block) nt tiles of CB. */
typedef struct {
    const rn_conv_shape *sh;
    const rn_convb_fns *f;
    const rn_convb_wino_fns *tf;
    const float *packed;
    long t0, t1;
    float *v, *m;
    size_t vpos, mpos;
} wino_chunk;

static size_t chunk_block(const wino_chunk *c) { return (size_t)(c->t1 - c->t0) * rn_blk_lanes(); }

/* V of the chunk's tiles [u0, u1). */
static void transform_in(const wino_chunk *c, const float *x, long u0, long u1)
{
    const rn_conv_shape *sh = c->sh;
    const int tm = c->tf->m, cb = rn_blk_lanes(), cbn = rn_blk_count(sh->c, cb);
    const int tw = (sh->ow + tm - 1) / tm, th = (sh->oh + tm - 1) / tm;
    const size_t vblock = chunk_block(c);
    rn_convb_tile at = rn_convb_tile_at(u0, th, tw);
    for (long t = u0; t < u1; t++, rn_convb_tile_next(&at))
        for (int b = 0; b < cbn; b++)
            c->tf->in(c->v + (size_t)b * vblock + (size_t)(t - c->t0) * cb, c->vpos,
                      x + ((size_t)at.i * cbn + b) * sh->h * sh->w * cb, sh->h, sh->w, at.ty,
                      at.tx);
}

/* M of output blocks [kb0, kb1) for all the chunk's tiles, then their output tiles. The tiles
 * go to the microkernel in calls of equal width (49: 10, 10, 10, 10, 9, not four of 12 and a
 * call of one tile; resnet50 batch 1, 1 thread, both alternating forward by forward on the
 * Xeon: its 56x56, 28x28 and 14x14 Winograd layers 0.96x, 0.95x and 0.975x the time, the 7x7
 * ones' 8 + 8 tiles against 12 + 4 within the noise); each tile's sums are the same whatever
 * call it falls in. */
static void products_out(const wino_chunk *c, float *y, const float *sum, int relu, int kb0,
                         int kb1)
{
    const rn_conv_shape *sh = c->sh;
    const rn_convb_wino_fns *tf = c->tf;
    const int tm = tf->m, cb = rn_blk_lanes();
    const int cbn = rn_blk_count(sh->c, cb), kbn = rn_blk_count(sh->k, cb);
    const int tw = (sh->ow + tm - 1) / tm, th = (sh->oh + tm - 1) / tm;
    const int nt = (int)(c->t1 - c->t0);
    /* wide calls where the weights outweigh the chunk's transforms, as in the direct kernel
     * (convb.c): each weight vector loaded then serves more tiles. Measured (Xeon, resnet50,
     * both alternating forward by forward): at batch 1 the Winograd layers 0.93-1.00x the
     * time at 1 and 2 threads (two sets each), at batch 16 (2 threads) 0.88-1.01x. */
    const int wide = u_floats(sh, cb) > (size_t)nt * tf->positions * (cbn + kbn) * cb;
    const int calls = rn_convb_row_calls(nt, wide ? c->f->rmax_wide : c->f->rmax);
    const size_t vblock = chunk_block(c);
    for (int p = 0; p < tf->positions; p++)
        for (int kb = kb0; kb < kb1; kb += 2) {
            const rn_convb_row a = {
                .w = c->packed + ((size_t)p * kbn + kb) * cbn * cb * cb,
                .wstride = (size_t)cbn * cb * cb, .cbn = cbn, .kr = 1, .ks = 1,
                .clast = sh->c - (cbn - 1) * cb, .xplane = vblock, .xrow = 0, .xpix = (size_t)cb,
                .xstep = (size_t)cb, .cstride = 1, .ystride = vblock, .ypix = (size_t)cb,
                .bias = NULL, .relu = 0};
            const int kbs = kb + 1 < kb1 ? 2 : 1;
            for (int j = 0; j < calls; j++) {
                const int l = rn_convb_call_start(nt, calls, j);
                c->f->row(&a, rn_convb_call_start(nt, calls, j + 1) - l, kbs,
                          c->m + p * c->mpos + kb * vblock + (size_t)l * cb,
                          c->v + p * c->vpos + (size_t)l * cb);
            }
        }
    const float *bias = c->packed + u_floats(sh, cb);
    rn_convb_tile at = rn_convb_tile_at(c->t0, th, tw);
    for (long t = c->t0; t < c->t1; t++, rn_convb_tile_next(&at))
        for (int b = kb0; b < kb1; b++) {
            const size_t plane = ((size_t)at.i * kbn + b) * sh->oh * sh->ow * cb;
            tf->out(y + plane, c->m + (size_t)b * vblock + (size_t)(t - c->t0) * cb, c->mpos,
                    bias + (size_t)b * cb, sum ? sum + plane : NULL, relu, sh->oh, sh->ow, at.ty,
                    at.tx);
        }
}

static wino_chunk chunk_at(const rn_conv_shape *sh, const rn_convb_fns *f,
                           const rn_convb_wino_fns *tf, const float *packed, long t0, long t1,
                           float *v, float *m)
{
    const int cb = rn_blk_lanes(), nt = (int)(t1 - t0);
    return (wino_chunk){sh, f, tf, packed, t0, t1, v, m,
                        rn_convb_wino_position_floats(rn_blk_count(sh->c, cb), nt, cb),
                        rn_convb_wino_position_floats(rn_blk_count(sh->k, cb), nt, cb)};
}

static void forward(float *y, const float *x, const float *sum, const float *packed, int relu,
                    const rn_conv_shape *sh, float *work)
{
    const rn_convb_fns f = rn_convb_select();
    const rn_convb_wino_fns *tf = rn_convb_wino_pick(&f, rn_convb_wino_tile(sh));
    const int cb = f.lanes, cbn = rn_blk_count(sh->c, cb), kbn = rn_blk_count(sh->k, cb);
    const long tiles = tiles_of(sh);
    const int threads = sh->threads > 1 ? sh->threads : 1;
    if (by_blocks(sh, tiles)) {
        const size_t v_all =
            (size_t)tf->positions * rn_convb_wino_position_floats(cbn, (int)tiles, cb);
        const wino_chunk wc = chunk_at(sh, &f, tf, packed, 0, tiles, work, work + v_all);
        const int pairs = (kbn + 1) / 2;
#pragma omp parallel num_threads(threads)
        {
#pragma omp for schedule(static)
            for (long t = 0; t < tiles; t++) transform_in(&wc, x, t, t + 1);
#pragma omp for schedule(dynamic, 1)
            for (int pair = 0; pair < pairs; pair++)
                products_out(&wc, y, sum, relu, 2 * pair, 2 * pair + 2 < kbn ? 2 * pair + 2 : kbn);
        }
        return;
    }
    const int ct = chunk_tiles(sh, tiles);
    const size_t vfloats = (size_t)tf->positions * rn_convb_wino_position_floats(cbn, ct, cb);
    const size_t per_thread =
        vfloats + (size_t)tf->positions * rn_convb_wino_position_floats(kbn, ct, cb);
    long chunks = (tiles + ct - 1) / ct;
    /* Few chunks: as many a thread, of equal size. resnet50's 14x14 layers at batch 1 had 49
     * tiles in chunks of 16, 16, 16 and 1, so one of 2 threads did 32 tiles and the other 17
     * (both alternating forward by forward, 2 threads: these layers 0.82x the time, the 28x28
     * and 56x56 ones 0.90x and 0.92x; resnet18 batch 1 0.95x). Each tile's sums are the same
     * whatever chunk it falls in: the same bits. */
    const int balanced = chunks < 4 * threads;
    if (balanced) chunks = (chunks + threads - 1) / threads * threads;
#pragma omp parallel num_threads(threads) if (threads > 1)
    {
        int me = 0;
#ifdef _OPENMP
        me = omp_get_thread_num();
#endif
        float *v = work + (size_t)me * per_thread, *m = v + vfloats;
#pragma omp for schedule(dynamic, 1)
        for (long c = 0; c < chunks; c++) {
            long t0 = c * ct, t1 = t0 + ct < tiles ? t0 + ct : tiles;
            if (balanced) t0 = c * tiles / chunks, t1 = (c + 1) * tiles / chunks;
            const wino_chunk wc = chunk_at(sh, &f, tf, packed, t0, t1, v, m);
            transform_in(&wc, x, t0, t1);
            products_out(&wc, y, sum, relu, 0, kbn);
        }
    }
}

void rn_convb_wino_forward(float *y, const float *x, const float *packed, int relu,
                           const rn_conv_shape *sh, float *work)
{
    forward(y, x, NULL, packed, relu, sh, work);
}

void rn_convb_wino_forward_add(float *y, const float *x, const float *sum, const float *packed,
                               int relu, const rn_conv_shape *sh, float *work)
{
    forward(y, x, sum, packed, relu, sh, work);
}
