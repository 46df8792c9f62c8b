/* Inside the channel-blocked convolution (convb.c): one call of the microkernel and its builds
 * (convb_row.h). */
#ifndef RN_KERNELS_CONVB_H
#define RN_KERNELS_CONVB_H

#include <stddef.h>

#include "kernels/kernels.h"

typedef struct {
    const float *w;     /* packed weights of the first output block: [cbn][kr][ks][CB c][CB k] */
    size_t wstride;     /* floats from one output block's weights to the next's */
    int cbn, kr, ks;    /* input channel blocks, kernel rows and columns */
    int clast;          /* channels in the last input block (the rest of its lanes are zero) */
    size_t xplane;      /* floats from one input channel block to the next (padded plane) */
    size_t xrow;        /* floats from one input row to the next */
    size_t xpix;        /* floats from one input pixel to the next: CB, or 1 for a planar input */
    size_t xstep;       /* floats from one output pixel's input to the next's: stride * xpix */
    size_t cstride;     /* floats from one input channel to the next: 1 (blocked), or a padded
                         * plane (a planar input: the network's first convolution) */
    size_t ystride;     /* floats from one output block to the next */
    size_t ypix;        /* floats from one output pixel to the next: CB, or stride * CB when
                         * the input gradient writes one phase of a strided convolution */
    const float *bias;  /* the first output block's CB biases, or NULL */
    int relu;
    const float *sum;   /* added to each output before the ReLU, at its offset from y_base in y;
                         * or NULL (a frozen residual block's last convolution) */
    const float *y_base;
    int split;          /* a call of several output rows: the pixels of each; 0: of one row */
    size_t xnext, ynext; /* with split: floats from a row's first pixel's input / output to the
                          * next row's */
} rn_convb_row;

/* The weight gradient's microkernel (convb_wgrad_row.h): one tap, a rectangle of output pixels
 * of imgs images; x at the first pixel's input of the tap's first channel, dy at that pixel. */
typedef struct {
    int imgs, rows, cols;
    size_t ximg, xrow;   /* floats from one image's input to the next's; from one row's (stride rows) */
    size_t xstep;        /* floats from one pixel's input to the next pixel's: stride * pixel */
    size_t cstride;      /* floats from one input channel to the next: 1 (blocked) or a plane */
    size_t dyimg, dyrow; /* floats from one image's dy to the next's; from one output row's */
    size_t dyplane;      /* floats from one output block of dy to the next */
    int accumulate;      /* add to the accumulators in memory rather than start from zero */
    ptrdiff_t x_ahead, dy_ahead; /* floats from a pixel's x, its dy, to the same pixel's in the
                                  * next chunk, whose lines the call asks L2 for; 0: not asked */
    long ahead;                  /* the call's first pixels that ask, in its order */
} rn_convb_wgrad_args;

/* acc: r x kbs vectors of CB, [channel][block]; r <= CB, and
 * r <= CB / 2 when kbs is 2. */
void rn_convb_wgrad_avx512(const rn_convb_wgrad_args *a, int r, int kbs, float *acc, const float *x,
                           const float *dy);
void rn_convb_wgrad_avx2(const rn_convb_wgrad_args *a, int r, int kbs, float *acc, const float *x,
                         const float *dy);
void rn_convb_wgrad_generic(const rn_convb_wgrad_args *a, int r, int kbs, float *acc, const float *x,
                            const float *dy);

/* r (1..RMAX) output pixels of one row for kbs (1 or 2) output blocks: y and x at the row's
 * first pixel (x at its top-left tap). */
void rn_convb_row_avx512(const rn_convb_row *a, int r, int kbs, float *y, const float *x);
void rn_convb_row_avx2(const rn_convb_row *a, int r, int kbs, float *y, const float *x);
void rn_convb_row_generic(const rn_convb_row *a, int r, int kbs, float *y, const float *x);

/* r (1..RN_CONVB_QUAD_RMAX) output pixels of a 1x1 stride-1 convolution for four output blocks
 * (convb_quad.h), the input's channels filling its blocks: y and x at the first pixel. AVX-512
 * only. */
enum { RN_CONVB_QUAD_RMAX = 6 };
void rn_convb_quad_avx512(const rn_convb_row *a, int r, float *y, const float *x);

/* reps FMAs on each of 2 * RMAX vector accumulators (convb_row.h), for the peak. */
float rn_convb_peak_avx512(long reps);
float rn_convb_peak_avx2(long reps);
float rn_convb_peak_generic(long reps);

/* Blocked Winograd's transforms of one tile (convb_row.h has what they compute): the input's
 * (in), the output's (out) and, for the weight gradient, the output gradient's (dy); F(2x2, 3x3)
 * (wino_) and F(4x4, 3x3) (wino4_). */
#define RN_CONVB_WINO_DECLS(NAME, ISA)                                                             \
    void rn_convb_##NAME##_in_##ISA(float *v, size_t pstride, const float *xp, int h, int w,      \
                                    int ty, int tx);                                               \
    void rn_convb_##NAME##_out_##ISA(float *yp, const float *m, size_t pstride, const float *bias, \
                                     const float *sp, int relu, int oh, int ow, int ty, int tx);   \
    void rn_convb_##NAME##_dy_##ISA(float *v, size_t pstride, const float *dyp, int oh, int ow,   \
                                    int ty, int tx);                                               \
    void rn_convb_##NAME##_u_##ISA(double *u, const float *f, const double *s);
RN_CONVB_WINO_DECLS(wino, avx512)
RN_CONVB_WINO_DECLS(wino, avx2)
RN_CONVB_WINO_DECLS(wino, generic)
RN_CONVB_WINO_DECLS(wino4, avx512)
RN_CONVB_WINO_DECLS(wino4, avx2)
RN_CONVB_WINO_DECLS(wino4, generic)

typedef struct {
    int m, positions; /* the output tile's edge (2 or 4) and (m + 2)^2 */
    void (*in)(float *v, size_t pstride, const float *xp, int h, int w, int ty, int tx);
    /* sp: the plane of a tensor added before the ReLU (laid out as yp's), or NULL */
    void (*out)(float *yp, const float *m, size_t pstride, const float *bias, const float *sp,
                int relu, int oh, int ow, int ty, int tx);
    void (*dy)(float *v, size_t pstride, const float *dyp, int oh, int ow, int ty, int tx);
    /* the weights' transform, CB output channels of one input channel (convb_row.h) */
    void (*u)(double *u, const float *f, const double *s);
} rn_convb_wino_fns;

/* Blocked Winograd's tiles transformed at a time by one thread: as many as keep their
 * positions of `blocks` blocks (input and output together) within about 512 KB, the size of a
 * core's L2 cache on the machines measured, 8 at the least (the microkernel's row). */
static inline int rn_convb_wino_chunk_tiles(int blocks, int cb, int positions)
{
    const size_t per_tile = (size_t)positions * blocks * cb * sizeof(float);
    const size_t fit = (size_t)512 * 1024 / per_tile;
    return fit < 8 ? 8 : fit > 256 ? 256 : (int)fit;
}

/* Floats from one position's transformed tiles ([blocks][tiles][CB]) to the next's: those
 * and one cache line more. Without the line the positions of a tile, which each transform
 * reads or writes together, sit a multiple of 4 KiB apart and compete for one set of the L1
 * cache (Winograd on blocks ran up to 1.4x slower). */
static inline size_t rn_convb_wino_position_floats(int blocks, int tiles, int cb)
{
    return (size_t)blocks * tiles * cb + 16;
}

/* A tile of the batch: image i, tile row ty and column tx of th x tw tiles an image. Walked
 * one tile at a time, without the two divisions a tile that finding it from its number costs
 * (as much as a 16-channel tile's transform). */
typedef struct {
    int i, ty, tx, th, tw;
} rn_convb_tile;

static inline rn_convb_tile rn_convb_tile_at(long t, int th, int tw)
{
    const long per_image = (long)th * tw;
    const int in_image = (int)(t % per_image);
    return (rn_convb_tile){(int)(t / per_image), in_image / tw, in_image % tw, th, tw};
}

static inline void rn_convb_tile_next(rn_convb_tile *c)
{
    if (++c->tx < c->tw) return;
    c->tx = 0;
    if (++c->ty < c->th) return;
    c->ty = 0;
    c->i++;
}

/* Batches of at least this many images a thread are shared out an image a task, in one
 * parallel region (the blocked forward and input gradient); smaller ones by groups of images. */
enum { RN_CONVB_IMAGES_PER_THREAD = 8 };

/* The most output pixels a call of each build takes (2 x RMAX accumulators, two weight vectors
 * and a broadcast in the vector registers), and the most it takes by default (..._CALL): the
 * AVX-512 build's wide calls of up to 14 pixels serve layers whose weights outweigh their
 * output (rn_convb_fns.rmax_wide). */
#define RN_CONVB_RMAX_AVX512 14
#define RN_CONVB_CALL_AVX512 12
#define RN_CONVB_RMAX_AVX2 6
#define RN_CONVB_RMAX_GENERIC 4

/* A row of n output pixels in calls of the microkernel: as few as RMAX allows, of equal width
 * (14 pixels: 7 + 7, not 12 + 2). A call of few pixels has few accumulator chains, too few to
 * keep two FMA units busy through their latency. Call j covers [start(j), start(j + 1)). */
static inline int rn_convb_row_calls(int n, int rmax) { return (n + rmax - 1) / rmax; }
static inline int rn_convb_call_start(int n, int calls, int j) { return (int)((long)j * n / calls); }

/* The weight packs (rn_convb_pack, rn_convb_backward_data_pack) put a tile of up to this many
 * floats (a 3x3 one) together in a buffer on the stack, and share out the blocks among the
 * threads from RN_CONVB_PACK_THREADS_MIN weights up (fewer are packed on one thread). */
enum { RN_CONVB_PACK_TILE_FLOATS = 9 * RN_BLK_MAX_LANES * RN_BLK_MAX_LANES };
enum { RN_CONVB_PACK_THREADS_MIN = 1 << 14 };

/* One plane of h x w pixels of unit floats (a channel block, or one planar channel) into dst,
 * bordered by p zeros on every side; border 0: the border is not written (zero already, from
 * an earlier call on dst). */
void rn_convb_pad_plane(float *dst, const float *src, int h, int w, int p, int unit, int border);

/* The builds this CPU runs (kernels/cpu.c), with their lane count and microkernel row. */
typedef struct {
    int lanes, rmax; /* rmax: the most pixels of a call, as a rule */
    int rmax_wide;   /* the most of any call: RMAX of the build */
    void (*row)(const rn_convb_row *a, int r, int kbs, float *y, const float *x);
    float (*peak)(long reps);
    void (*wgrad)(const rn_convb_wgrad_args *a, int r, int kbs, float *acc, const float *x,
                  const float *dy);
    rn_convb_wino_fns wino2, wino4;
    /* four output blocks a call for the pointwise layers (rn_convb_quad_avx512), or NULL */
    void (*quad)(const rn_convb_row *a, int r, float *y, const float *x);
} rn_convb_fns;

rn_convb_fns rn_convb_select(void);

/* Rows [m0, m1) of n output pixels each for kbs output blocks, through the microkernel: row m's
 * first output pixel at y + m * yrow, its input at x + m * xrow (convb.c). */
void rn_convb_rows(const rn_convb_fns *v, const rn_convb_row *a, int kbs, float *y, size_t yrow,
                   const float *x, size_t xrow, int m0, int m1, int n);

/* y = w x for a 1x1 stride-1 convolution without padding (sh), blocked y and x, w packed as
 * rn_convb_pack's weights without the bias (convb.c): the pointwise layers' path, with no bias,
 * ReLU or shortcut. The input gradient of such a layer is one too (convb_bwd.c). */
void rn_convb_pointwise(float *y, const float *x, const float *w, const rn_conv_shape *sh);

/* Winograd on blocks (convb_wino.c): the transforms of F(m x m, 3x3), m = 2 or 4 as
 * rn_convb_wino_tile chooses. */
const rn_convb_wino_fns *rn_convb_wino_pick(const rn_convb_fns *f, int m);

/* G of F(2x2, 3x3) and of F(4x4, 3x3), (m + 2) x 3: the weights' transform U = G g G^T, and
 * the weight gradient's G^T dU G. RN_CONVB_WINO_G(m, i, j) folds to a constant where m is one. */
static const double RN_CONVB_WINO_G2[4][3] = {{1, 0, 0},
                                              {0.5, 0.5, 0.5},
                                              {0.5, -0.5, 0.5},
                                              {0, 0, 1}};
static const double RN_CONVB_WINO_G4[6][3] = {{1.0 / 4, 0, 0},
                                              {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                                              {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                                              {1.0 / 24, 1.0 / 12, 1.0 / 6},
                                              {1.0 / 24, -1.0 / 12, 1.0 / 6},
                                              {0, 0, 1}};
#define RN_CONVB_WINO_G(m, i, j) ((m) == 4 ? RN_CONVB_WINO_G4[i][j] : RN_CONVB_WINO_G2[i][j])

/* The pixels a strided 1x1 convolution reads (every stride-th of every stride-th row) of
 * images [i0, i0 + gi) of blocked x, as a blocked tensor of the output's size (convb.c). */
void rn_convb_gather_strided(float *dst, const float *x, int i0, int gi, int cbn, int cb,
                             const rn_conv_shape *sh, int threads);

#endif
