/* The microkernel of the channel-blocked direct convolution (convb.c), written once and built
 * for each lane count: included by convb_avx512.c (CB 16, AVX-512 FMAs), convb_avx2.c (CB 8,
 * AVX2 FMAs) and convb_generic.c (CB 8, portable vectors). The includer defines CB, RMAX (the
 * most output pixels per call for two output blocks: 2 * RMAX accumulators and two weight
 * vectors must fit the vector registers), VFMA(a, b, c) = a * b + c and ROW_NAME.
 *
 * One call: r output pixels of one output row (or of r / split rows, rn_convb_row.split), for
 * kbs (1 or 2) blocks of CB output channels,
 * over every input channel block and tap. Each (block, tap, channel) loads the CB weights of
 * each output block once and broadcasts one input value per pixel: r * kbs FMAs for kbs + r
 * loads, no operand packed or shifted. The sum runs over input blocks, then taps row by row,
 * then the channels of a block: a fixed order, so the same bits whatever the thread count. */
#include <stddef.h>

/* Weight vectors asked for this many channels ahead: a call runs through a pair of output
 * blocks' weights once, and where they are larger than the L1 cache (a layer of resnet50) the
 * hardware's prefetcher did not keep up. Measured (Xeon, family 6 model 207, 1 thread, medians
 * of 5 alternating runs): resnet50 inference at batch 1 took 0.93x the time with 8 channels
 * ahead, 16 ahead 0.96x of that, 32 ahead 1.02x of 16; with 16 (medians of 3) resnet18 batch 1
 * 0.88x, resnet50 batch 16 0.91x, training resnet20 and resnet8-w32-s2 not slower. With 8
 * lanes (the AVX2 and portable builds: 512 bytes of a pair's weights a channel block, not 2 KB)
 * none, since there resnet18 batch 16 read 1.08x and 1.14x the time by the medians of
 * alternating runs (0.98-1.04x by their minima) and batch 1 0.99-1.00x. */
enum { WEIGHTS_AHEAD = CB == 16 ? 16 : 0 };

typedef float vblk __attribute__((vector_size(CB * sizeof(float)), aligned(sizeof(float))));
typedef int vmask __attribute__((vector_size(CB * sizeof(int))));

/* Output vector yp's line, and the shortcut's line beside it where there is one, asked for
 * before a call's sums (why: row_tile below). */
static inline __attribute__((always_inline)) void prefetch_out(const rn_convb_row *a,
                                                               const float *yp)
{
    __builtin_prefetch(yp, 1, 3);
    if (a->sum) __builtin_prefetch(a->sum + (yp - a->y_base), 0, 3);
}

/* One output vector: its sum plus the bias; plus the shortcut's value at yp's place, as
 * rn_add_scaled_relu after the convolution; then max(o, 0) when relu (NaN stays 0). Every
 * microkernel ends in this, so their outputs agree to the bit. */
static inline __attribute__((always_inline)) void store_out(const rn_convb_row *a, float *yp,
                                                            vblk acc, vblk bias)
{
    vblk o = acc + bias;
    if (a->sum) o = *(const vblk *)(a->sum + (yp - a->y_base)) + o;
    if (a->relu) o = (vblk)((vmask)o & (o > (vblk){0}));
    *(vblk *)yp = o;
}

/* xs: 1 or 2 where the input is blocked (channels 1 float apart) and a row's pixels xs * CB
 * floats apart (stride 1 or 2: every convolution but the network's first), 3 or 4 where it is
 * planar (channels a plane apart) and the pixels xs - 2 floats apart (the first), 0 for any
 * other steps, read at run time. Then each broadcast is at a fixed offset from one pointer that
 * steps a channel at a time; with the offsets known only at run time GCC 12 kept them in
 * registers, spilled some, and issued 71 instructions for a 12 x 2 call's 24 FMAs (44 this
 * way). */
static inline __attribute__((always_inline)) void row_tile(const int r, const int kbs,
                                                           const int split, const int xs,
                                                           const rn_convb_row *a, float *y,
                                                           const float *x)
{
/* pixel i of the call: pixel i % split of its row i / split (split 0: of one row) */
#define XPIX (!xs ? a->xstep : (size_t)(xs <= 2 ? xs * CB : xs - 2))
#define XOFF(i) (split ? (size_t)((i) / split) * a->xnext + (size_t)((i) % split) * XPIX          \
                       : (size_t)(i) * XPIX)
#define YOFF(i) (split ? (size_t)((i) / split) * a->ynext + (size_t)((i) % split) * a->ypix      \
                       : (size_t)(i) * a->ypix)
    const size_t xchannel = xs == 1 || xs == 2 ? 1 : a->cstride;
    vblk acc[RMAX][2];
#pragma GCC unroll 16
    for (int i = 0; i < r; i++) acc[i][0] = acc[i][1] = (vblk){0};
    /* The call's output lines, and its shortcut's, asked for now: they are touched only after
     * the whole sum, by when they have come, where the hardware's prefetcher, following a
     * plane per output block, did not have them in cache (a 56x56 map's 256 channels are 3.2
     * MB). Likewise the next input block's lines, a block ahead. Measured with and without,
     * alternating forward by forward in one process (Zen 4, resnet50 batch 1): the
     * convolutions 0.957x the time at 1 thread, 0.976x at 2; 64->256 on 56x56 0.91x, the 1x1
     * stride-2 layers 0.85-0.93x; the Winograd layers, which do not call this, 1.00x. */
    for (int b = 0; b < kbs; b++) {
        const float *yb = y + (size_t)b * a->ystride;
#pragma GCC unroll 16
        for (int i = 0; i < r; i++) prefetch_out(a, yb + YOFF(i));
    }
    for (int cb = 0; cb < a->cbn; cb++) {
        const float *xc = x + (size_t)cb * a->xplane;
        if (cb + 1 < a->cbn) {
#pragma GCC unroll 16
            for (int i = 0; i < r; i++) __builtin_prefetch(xc + a->xplane + XOFF(i), 0, 3);
        }
        const float *wc = a->w + (size_t)cb * a->kr * a->ks * CB * CB;
        /* an image's 1 or 3 channels: 16 lanes of zeros are not worth their FMAs */
        const int channels = cb + 1 < a->cbn ? CB : a->clast;
/* input channel c's multiply-adds: xv and wv at its input values and weights */
#define CHANNEL_FMAS()                                                                             \
    do {                                                                                           \
        if (WEIGHTS_AHEAD) {                                                                       \
            __builtin_prefetch(wv + WEIGHTS_AHEAD * CB, 0, 3);                                     \
            if (kbs > 1) __builtin_prefetch(wv + a->wstride + WEIGHTS_AHEAD * CB, 0, 3);           \
        }                                                                                          \
        const vblk w0 = *(const vblk *)wv;                                                         \
        const vblk w1 = kbs > 1 ? *(const vblk *)(wv + a->wstride) : w0;                           \
        _Pragma("GCC unroll 16") for (int i = 0; i < r; i++) {                                     \
            const vblk v = VBCAST(xv[XOFF(i)]);                                                    \
            acc[i][0] = VFMA(v, w0, acc[i][0]);                                                    \
            if (kbs > 1) acc[i][1] = VFMA(v, w1, acc[i][1]);                                       \
        }                                                                                          \
    } while (0)
        /* A 1x1 kernel and a full block (the pointwise layers, and the products of every
         * Winograd layer): the block's CB channels in a loop whose count GCC knows, two a turn,
         * where the taps' loops ran one of `channels` inside two of one turn each. The same
         * multiply-adds in the same order: the same bits. Measured (Xeon, family 6 model 207,
         * resnet50 batch 16, both ways alternating forward by forward in one process, a timer
         * per layer, four runs): the convolutions 0.93-1.02x the time at 1 thread, 0.96-0.99x
         * at 2. Two a turn for any count instead took them to 1.09x / 1.05x. */
        if (a->kr == 1 && a->ks == 1 && channels == CB) {
            const float *xv = xc, *wv = wc;
            /* One a turn from 12 pixels x 2 blocks up: two turns' 24 accumulators and four
             * weight vectors left GCC 12 too few registers for the broadcasts, and it spilled
             * accumulators to the stack inside the loop. Measured (Zen 4, family 25 model 17,
             * 1 thread, both ways alternating call by call, the same bits): 1024->2048 1x1/2
             * at batch 16 (7x7 calls of 12-13 pixels) 0.94-0.97x the time, 2048->512 on 7x7
             * 0.93-0.97x; the 56x56, 28x28 and 14x14 layers 0.99-1.01x. */
            if (r * kbs > 22) {
#pragma GCC unroll 1
                for (int c = 0; c < CB; c++, xv += xchannel, wv += CB) CHANNEL_FMAS();
            } else {
#pragma GCC unroll 2
                for (int c = 0; c < CB; c++, xv += xchannel, wv += CB) CHANNEL_FMAS();
            }
            continue;
        }
        for (int ky = 0; ky < a->kr; ky++)
            for (int kx = 0; kx < a->ks; kx++) {
                const float *xv = xc + (size_t)ky * a->xrow + (size_t)kx * a->xpix;
                const float *wv = wc + (size_t)(ky * a->ks + kx) * CB * CB;
                for (int c = 0; c < channels; c++, xv += xchannel, wv += CB) CHANNEL_FMAS();
            }
#undef CHANNEL_FMAS
    }
    for (int b = 0; b < kbs; b++) {
        const vblk bias = a->bias ? *(const vblk *)(a->bias + (size_t)b * CB) : (vblk){0};
        float *yb = y + (size_t)b * a->ystride;
#pragma GCC unroll 16
        for (int i = 0; i < r; i++) store_out(a, yb + YOFF(i), acc[i][b], bias);
    }
#undef XPIX
#undef XOFF
#undef YOFF
}

/* Each variant a function of its own: inlined together into one, GCC 12's register allocator
 * kept the accumulators of the 12 x 2 blocked-input loop in no fixed registers and moved all 24
 * around each channel (24 register moves beside the 24 FMAs). */
#define ROW_VARIANT(R, K, S, X)                                                                    \
    static __attribute__((noinline)) void row_##R##_##K##_##S##_##X(const rn_convb_row *a,        \
                                                                    float *y, const float *x)      \
    {                                                                                              \
        row_tile(R, K, S, X, a, y, x);                                                             \
    }
#define ROW_VARIANTS(R, S)                                                                         \
    ROW_VARIANT(R, 1, S, 0)                                                                        \
    ROW_VARIANT(R, 2, S, 0)                                                                        \
    ROW_VARIANT(R, 1, S, 1)                                                                        \
    ROW_VARIANT(R, 2, S, 1)                                                                        \
    ROW_VARIANT(R, 1, S, 2)                                                                        \
    ROW_VARIANT(R, 2, S, 2)
#define ROW_VARIANTS_PLANAR(R)                                                                     \
    ROW_VARIANT(R, 1, 0, 3)                                                                        \
    ROW_VARIANT(R, 2, 0, 3)                                                                        \
    ROW_VARIANT(R, 1, 0, 4)                                                                        \
    ROW_VARIANT(R, 2, 0, 4)
#define ROW_CALL(R, S)                                                                             \
    do {                                                                                           \
        if (xs == 1) (kbs > 1 ? row_##R##_2_##S##_1 : row_##R##_1_##S##_1)(a, y, x);               \
        else if (xs == 2) (kbs > 1 ? row_##R##_2_##S##_2 : row_##R##_1_##S##_2)(a, y, x);          \
        else (kbs > 1 ? row_##R##_2_##S##_0 : row_##R##_1_##S##_0)(a, y, x);                      \
        return;                                                                                    \
    } while (0)
/* the planar first layer: one row a call (its rows are long), so no split variants */
#define ROW_CALL_PLANAR(R)                                                                         \
    do {                                                                                           \
        if (xs == 3) (kbs > 1 ? row_##R##_2_0_3 : row_##R##_1_0_3)(a, y, x);                       \
        else (kbs > 1 ? row_##R##_2_0_4 : row_##R##_1_0_4)(a, y, x);                               \
        return;                                                                                    \
    } while (0)

/* one row's calls, and the calls of several rows of `split` pixels: a variant for each
 * (split, r) that rn_convb_rows asks for, r = rows x split <= RMAX */
ROW_VARIANTS(1, 0)
ROW_VARIANTS_PLANAR(1)
ROW_VARIANTS(2, 0)
ROW_VARIANTS_PLANAR(2)
ROW_VARIANTS(3, 0)
ROW_VARIANTS_PLANAR(3)
ROW_VARIANTS(4, 0)
ROW_VARIANTS_PLANAR(4)
ROW_VARIANTS(4, 2)
#if RMAX > 4
ROW_VARIANTS(5, 0)
ROW_VARIANTS_PLANAR(5)
ROW_VARIANTS(6, 0)
ROW_VARIANTS_PLANAR(6)
ROW_VARIANTS(6, 2)
ROW_VARIANTS(6, 3)
#endif
#if RMAX > 6
ROW_VARIANTS(7, 0)
ROW_VARIANTS_PLANAR(7)
ROW_VARIANTS(8, 0)
ROW_VARIANTS_PLANAR(8)
ROW_VARIANTS(9, 0)
ROW_VARIANTS_PLANAR(9)
ROW_VARIANTS(10, 0)
ROW_VARIANTS_PLANAR(10)
ROW_VARIANTS(11, 0)
ROW_VARIANTS_PLANAR(11)
ROW_VARIANTS(12, 0)
ROW_VARIANTS_PLANAR(12)
ROW_VARIANTS(8, 2)
ROW_VARIANTS(10, 2)
ROW_VARIANTS(12, 2)
ROW_VARIANTS(9, 3)
ROW_VARIANTS(12, 3)
ROW_VARIANTS(8, 4)
ROW_VARIANTS(12, 4)
ROW_VARIANTS(10, 5)
ROW_VARIANTS(12, 6)
#endif
#if RMAX > 12
ROW_VARIANTS(13, 0)
ROW_VARIANTS_PLANAR(13)
ROW_VARIANTS(14, 0)
ROW_VARIANTS_PLANAR(14)
ROW_VARIANTS(14, 2)
ROW_VARIANTS(14, 7)
#endif

#define ROW_CASE(R)                                                                                \
    case R:                                                                                        \
        if (xs > 2) ROW_CALL_PLANAR(R);                                                            \
        ROW_CALL(R, 0);
#define SPLIT_CASE(S, R)                                                                           \
    case (S) * 16 + (R):                                                                           \
        ROW_CALL(R, S);

void ROW_NAME(const rn_convb_row *a, int r, int kbs, float *y, const float *x)
{
    int xs = a->cstride == 1 ? (a->xstep == CB ? 1 : a->xstep == 2 * CB ? 2 : 0)
             : a->xpix == 1  ? (a->xstep == 1 ? 3 : a->xstep == 2 ? 4 : 0)
                             : 0;
    if (a->split) {
        if (xs > 2) xs = 0; /* planar rows this short (a tiny image): run-time offsets */
        switch (a->split * 16 + r) {
            SPLIT_CASE(2, 4)
#if RMAX > 4
            SPLIT_CASE(2, 6)
            SPLIT_CASE(3, 6)
#endif
#if RMAX > 6
            SPLIT_CASE(2, 8)
            SPLIT_CASE(2, 10)
            SPLIT_CASE(2, 12)
            SPLIT_CASE(3, 9)
            SPLIT_CASE(3, 12)
            SPLIT_CASE(4, 8)
            SPLIT_CASE(4, 12)
            SPLIT_CASE(5, 10)
            SPLIT_CASE(6, 12)
#endif
#if RMAX > 12
            SPLIT_CASE(2, 14)
            SPLIT_CASE(7, 14)
#endif
        default: return;
        }
    }
    switch (r) {
        ROW_CASE(1)
        ROW_CASE(2)
        ROW_CASE(3)
        ROW_CASE(4)
#if RMAX > 4
        ROW_CASE(5)
        ROW_CASE(6)
#endif
#if RMAX > 6
        ROW_CASE(7)
        ROW_CASE(8)
        ROW_CASE(9)
        ROW_CASE(10)
        ROW_CASE(11)
        ROW_CASE(12)
#endif
#if RMAX > 12
        ROW_CASE(13)
        ROW_CASE(14)
#endif
    default: return;
    }
}

/* The FMA peak this build reaches: 2 * RMAX independent accumulator chains of reps FMAs each,
 * all in registers (the microkernel's own register budget). Returns a sum of them, so that the
 * work is not optimised away. */
float PEAK_NAME(long reps)
{
    vblk acc[2 * RMAX];
    const vblk a = VBCAST(1.0f), b = VBCAST(0.999999f);
#pragma GCC unroll 32
    for (int i = 0; i < 2 * RMAX; i++) acc[i] = VBCAST((float)i);
    for (long t = 0; t < reps; t++) {
#pragma GCC unroll 32
        for (int i = 0; i < 2 * RMAX; i++) acc[i] = VFMA(acc[i], b, a);
    }
    float sum = 0.0f;
    for (int i = 0; i < 2 * RMAX; i++)
        for (int l = 0; l < CB; l++) sum += acc[i][l];
    return sum;
}

/* Blocked Winograd's input transform: the 16 vectors B^T d B of the 4x4 tile at (ty, tx) of one
 * channel block's plane xp (h x w pixels of CB lanes), zeros outside it; position p at
 * v + p * pstride. B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]. Column by column, so that the
 * tile's 16 values never need to be in registers at once (an array of them went to the stack).
 * checked: the tile reaches past the plane's edge. */
static inline __attribute__((always_inline)) void wino_in_tile(const int checked, float *v,
                                                               size_t pstride, const float *xp,
                                                               int h, int w, int ty, int tx)
{
    const int y0 = 2 * ty - 1, x0 = 2 * tx - 1;
    vblk t[4][4];
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++) {
        const int x = x0 + j;
        vblk d[4];
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++) {
            const int y = y0 + i;
            d[i] = !checked || (y >= 0 && y < h && x >= 0 && x < w)
                       ? *(const vblk *)(xp + ((size_t)y * w + x) * CB)
                       : (vblk){0};
        }
        t[0][j] = d[0] - d[2];
        t[1][j] = d[1] + d[2];
        t[2][j] = d[2] - d[1];
        t[3][j] = d[1] - d[3];
    }
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
        *(vblk *)(v + (size_t)(i * 4 + 0) * pstride) = t[i][0] - t[i][2];
        *(vblk *)(v + (size_t)(i * 4 + 1) * pstride) = t[i][1] + t[i][2];
        *(vblk *)(v + (size_t)(i * 4 + 2) * pstride) = t[i][2] - t[i][1];
        *(vblk *)(v + (size_t)(i * 4 + 3) * pstride) = t[i][1] - t[i][3];
    }
}

void WINO_IN_NAME(float *v, size_t pstride, const float *xp, int h, int w, int ty, int tx)
{
    const int y0 = 2 * ty - 1, x0 = 2 * tx - 1;
    if (y0 >= 0 && x0 >= 0 && y0 + 4 <= h && x0 + 4 <= w) wino_in_tile(0, v, pstride, xp, h, w, ty, tx);
    else wino_in_tile(1, v, pstride, xp, h, w, ty, tx);
}

/* Its output transform: A^T m A of one tile's 16 product vectors (position p at m + p *
 * pstride), plus the bias, plus sp's pixel where sp is given, then max(., 0) when relu, into
 * the output plane yp (oh x ow pixels of CB lanes) where it lies inside it.
 * A^T = [1 1 1 0; 0 1 -1 -1]. */
void WINO_OUT_NAME(float *yp, const float *m, size_t pstride, const float *bias, const float *sp,
                   int relu, int oh, int ow, int ty, int tx)
{
    vblk t[2][4];
    for (int j = 0; j < 4; j++) {
        const vblk m0 = *(const vblk *)(m + (size_t)(0 + j) * pstride);
        const vblk m1 = *(const vblk *)(m + (size_t)(4 + j) * pstride);
        const vblk m2 = *(const vblk *)(m + (size_t)(8 + j) * pstride);
        const vblk m3 = *(const vblk *)(m + (size_t)(12 + j) * pstride);
        t[0][j] = m0 + m1 + m2;
        t[1][j] = m1 - m2 - m3;
    }
    const vblk b = *(const vblk *)bias;
    for (int i = 0; i < 2 && 2 * ty + i < oh; i++)
        for (int j = 0; j < 2 && 2 * tx + j < ow; j++) {
            const size_t at = ((size_t)(2 * ty + i) * ow + 2 * tx + j) * CB;
            vblk o = (j == 0 ? t[i][0] + t[i][1] + t[i][2] : t[i][1] - t[i][2] - t[i][3]) + b;
            if (sp) o = *(const vblk *)(sp + at) + o;
            if (relu) o = (vblk)((vmask)o & (o > (vblk){0}));
            *(vblk *)(yp + at) = o;
        }
}

/* Winograd's weight gradient (convb_wino_wgrad.c): the 16 vectors A dY A^T of the 2x2 tile of
 * output gradients at (ty, tx) of one block's plane dyp (oh x ow pixels of CB lanes), zeros
 * past its edge; position p at v + p * pstride. A = [1 0; 1 1; 1 -1; 0 -1]: the transpose of
 * the output transform, which took the 16 products to the tile. */
void WINO_DY_NAME(float *v, size_t pstride, const float *dyp, int oh, int ow, int ty, int tx)
{
    vblk d[2][2];
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 2; b++) {
            const int y = 2 * ty + a, x = 2 * tx + b;
            d[a][b] = y < oh && x < ow ? *(const vblk *)(dyp + ((size_t)y * ow + x) * CB) : (vblk){0};
        }
    vblk t[4][2];
    for (int b = 0; b < 2; b++) {
        t[0][b] = d[0][b];
        t[1][b] = d[0][b] + d[1][b];
        t[2][b] = d[0][b] - d[1][b];
        t[3][b] = -d[1][b];
    }
    for (int i = 0; i < 4; i++) {
        *(vblk *)(v + (size_t)(i * 4 + 0) * pstride) = t[i][0];
        *(vblk *)(v + (size_t)(i * 4 + 1) * pstride) = t[i][0] + t[i][1];
        *(vblk *)(v + (size_t)(i * 4 + 2) * pstride) = t[i][0] - t[i][1];
        *(vblk *)(v + (size_t)(i * 4 + 3) * pstride) = -t[i][1];
    }
}

/* Winograd F(4x4, 3x3) on blocks: 36 positions a tile, each output tile 4x4 from a 6x6 input
 * tile, 2.25 multiply-adds an output where F(2x2, 3x3) does 4 (convb_wino.c). The matrices are
 * those of Lavin and Gray (points 0, 1, -1, 2, -2 and infinity); each 6-vector step below is one
 * of their rows, grouped so that the terms shared by two rows are added once. */

/* B^T d of 6 vectors: B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0;
 * 0 2 -1 -2 1 0; 0 4 0 -5 0 1]. */
static inline __attribute__((always_inline)) void wino4_bt(vblk *t, const vblk *d)
{
    const vblk a = d[4] - 4.0f * d[2], b = d[3] - 4.0f * d[1];
    const vblk c = d[4] - d[2], e = 2.0f * (d[3] - d[1]);
    t[0] = 4.0f * (d[0] - d[2]) + c;
    t[1] = a + b;
    t[2] = a - b;
    t[3] = c + e;
    t[4] = c - e;
    t[5] = 4.0f * (d[1] - d[3]) + (d[5] - d[3]);
}

/* The 36 vectors B^T d B of the 6x6 tile at (ty, tx) of one block's plane xp (h x w pixels of
 * CB lanes), zeros outside it; position p at v + p * pstride. checked: the tile reaches past the
 * plane's edge. B^T d, the rows of the intermediate tile, two at a time from the input (rows 0
 * and 5, 1 and 2, 3 and 4: each pair shares its terms), each pair then taken through B^T along
 * its columns and stored: 12 vectors live where the whole 6 x 6 intermediate, 36, spilled to the
 * stack and back. The same operations on the same values as wino4_bt on columns then rows, so
 * the same bits; 132-146 ns a tile before, 70-92 after (bench/convb_transform_probe.c). */
static inline __attribute__((always_inline)) void wino4_store_row(float *v, size_t pstride, int i,
                                                                  const vblk *t)
{
    vblk r[6];
    wino4_bt(r, t);
#pragma GCC unroll 6
    for (int j = 0; j < 6; j++) *(vblk *)(v + (size_t)(i * 6 + j) * pstride) = r[j];
}

static inline __attribute__((always_inline)) void wino4_in_tile(const int checked, float *v,
                                                                size_t pstride, const float *xp,
                                                                int h, int w, int ty, int tx)
{
    const int y0 = 4 * ty - 1, x0 = 4 * tx - 1;
#define D(i, j)                                                                                    \
    (!checked || (y0 + (i) >= 0 && y0 + (i) < h && x0 + (j) >= 0 && x0 + (j) < w)                 \
         ? *(const vblk *)(xp + ((size_t)(y0 + (i)) * w + x0 + (j)) * CB)                          \
         : (vblk){0})
    {
        vblk t0[6], t5[6];
#pragma GCC unroll 6
        for (int j = 0; j < 6; j++) {
            const vblk d2 = D(2, j), d3 = D(3, j);
            t0[j] = 4.0f * (D(0, j) - d2) + (D(4, j) - d2);
            t5[j] = 4.0f * (D(1, j) - d3) + (D(5, j) - d3);
        }
        wino4_store_row(v, pstride, 0, t0);
        wino4_store_row(v, pstride, 5, t5);
    }
    {
        vblk t1[6], t2[6];
#pragma GCC unroll 6
        for (int j = 0; j < 6; j++) {
            const vblk a = D(4, j) - 4.0f * D(2, j), b = D(3, j) - 4.0f * D(1, j);
            t1[j] = a + b;
            t2[j] = a - b;
        }
        wino4_store_row(v, pstride, 1, t1);
        wino4_store_row(v, pstride, 2, t2);
    }
    {
        vblk t3[6], t4[6];
#pragma GCC unroll 6
        for (int j = 0; j < 6; j++) {
            const vblk c = D(4, j) - D(2, j), e = 2.0f * (D(3, j) - D(1, j));
            t3[j] = c + e;
            t4[j] = c - e;
        }
        wino4_store_row(v, pstride, 3, t3);
        wino4_store_row(v, pstride, 4, t4);
    }
#undef D
}

void WINO4_IN_NAME(float *v, size_t pstride, const float *xp, int h, int w, int ty, int tx)
{
    const int y0 = 4 * ty - 1, x0 = 4 * tx - 1;
    if (y0 >= 0 && x0 >= 0 && y0 + 6 <= h && x0 + 6 <= w)
        wino4_in_tile(0, v, pstride, xp, h, w, ty, tx);
    else wino4_in_tile(1, v, pstride, xp, h, w, ty, tx);
}

/* A^T m of 6 vectors: A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1]. */
static inline __attribute__((always_inline)) void wino4_at(vblk *o, const vblk *m)
{
    const vblk s12 = m[1] + m[2], d12 = m[1] - m[2], s34 = m[3] + m[4], d34 = m[3] - m[4];
    o[0] = m[0] + s12 + s34;
    o[1] = d12 + 2.0f * d34;
    o[2] = s12 + 4.0f * s34;
    o[3] = d12 + 8.0f * d34 + m[5];
}

/* A^T m A of one tile's 36 product vectors (position p at m + p * pstride), plus the bias, plus
 * sp's pixel where sp is given, then max(., 0) when relu, into the output plane yp (oh x ow
 * pixels of CB lanes) where it lies. */
void WINO4_OUT_NAME(float *yp, const float *m, size_t pstride, const float *bias, const float *sp,
                    int relu, int oh, int ow, int ty, int tx)
{
    vblk t[4][6];
#pragma GCC unroll 6
    for (int j = 0; j < 6; j++) {
        vblk c[6], o[4];
#pragma GCC unroll 6
        for (int i = 0; i < 6; i++) c[i] = *(const vblk *)(m + (size_t)(i * 6 + j) * pstride);
        wino4_at(o, c);
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++) t[i][j] = o[i];
    }
    const vblk b = *(const vblk *)bias;
    for (int i = 0; i < 4 && 4 * ty + i < oh; i++) {
        vblk o[4];
        wino4_at(o, t[i]);
        for (int j = 0; j < 4 && 4 * tx + j < ow; j++) {
            const size_t at = ((size_t)(4 * ty + i) * ow + 4 * tx + j) * CB;
            vblk r = o[j] + b;
            if (sp) r = *(const vblk *)(sp + at) + r;
            if (relu) r = (vblk)((vmask)r & (r > (vblk){0}));
            *(vblk *)(yp + at) = r;
        }
    }
}

/* A d of 4 vectors, the transpose of A^T above: 6 vectors. */
static inline __attribute__((always_inline)) void wino4_a(vblk *t, const vblk *d)
{
    const vblk e = d[0] + d[2], o = d[1] + d[3];
    const vblk e4 = d[0] + 4.0f * d[2], o2 = 2.0f * d[1] + 8.0f * d[3];
    t[0] = d[0];
    t[1] = e + o;
    t[2] = e - o;
    t[3] = e4 + o2;
    t[4] = e4 - o2;
    t[5] = d[3];
}

/* For the weight gradient: the 36 vectors A dY A^T of the 4x4 tile of output gradients at
 * (ty, tx) of one block's plane dyp (oh x ow pixels of CB lanes), zeros past its edge. */
void WINO4_DY_NAME(float *v, size_t pstride, const float *dyp, int oh, int ow, int ty, int tx)
{
    vblk t[6][4];
    const int full = 4 * ty + 4 <= oh && 4 * tx + 4 <= ow;
#pragma GCC unroll 4
    for (int b = 0; b < 4; b++) {
        const int x = 4 * tx + b;
        vblk d[4], c[6];
#pragma GCC unroll 4
        for (int a = 0; a < 4; a++) {
            const int y = 4 * ty + a;
            d[a] = full || (y < oh && x < ow) ? *(const vblk *)(dyp + ((size_t)y * ow + x) * CB)
                                              : (vblk){0};
        }
        wino4_a(c, d);
#pragma GCC unroll 6
        for (int i = 0; i < 6; i++) t[i][b] = c[i];
    }
#pragma GCC unroll 6
    for (int i = 0; i < 6; i++) {
        vblk r[6];
        wino4_a(r, t[i]);
#pragma GCC unroll 6
        for (int j = 0; j < 6; j++) *(vblk *)(v + (size_t)(i * 6 + j) * pstride) = r[j];
    }
}

/* Winograd's weight transform (convb_wino.c) for the CB output channels of one input channel:
 * u[p * CB + l] = (G g G^T)[p] s[l], g lane l's 3x3 taps f[tap * CB + l], in double. The
 * operations and their order are those of one channel at a time, the lanes side by side: the
 * same values, CB at once (a training step transforms every conv's weights twice, and one
 * channel at a time took 3% of resnet8-w32-s2's step). */
typedef double vdbl __attribute__((vector_size(CB * sizeof(double)), aligned(sizeof(double))));

static inline __attribute__((always_inline)) void wino_u_lanes(const int m, double *u,
                                                               const float *f, const double *s)
{
    const int a = m + 2;
    vdbl g[9], t[6][3];
#pragma GCC unroll 9
    for (int tap = 0; tap < 9; tap++) g[tap] = __builtin_convertvector(*(const vblk *)(f + tap * CB), vdbl);
#pragma GCC unroll 6
    for (int i = 0; i < a; i++) /* G g: along the kernel's rows */
#pragma GCC unroll 3
        for (int j = 0; j < 3; j++)
            t[i][j] = RN_CONVB_WINO_G(m, i, 0) * g[j] + RN_CONVB_WINO_G(m, i, 1) * g[3 + j] +
                      RN_CONVB_WINO_G(m, i, 2) * g[6 + j];
    const vdbl sv = *(const vdbl *)s;
#pragma GCC unroll 6
    for (int i = 0; i < a; i++) /* (G g) G^T */
#pragma GCC unroll 6
        for (int j = 0; j < a; j++)
            *(vdbl *)(u + (i * a + j) * CB) =
                (t[i][0] * RN_CONVB_WINO_G(m, j, 0) + t[i][1] * RN_CONVB_WINO_G(m, j, 1) +
                 t[i][2] * RN_CONVB_WINO_G(m, j, 2)) *
                sv;
}

void WINO_U_NAME(double *u, const float *f, const double *s) { wino_u_lanes(2, u, f, s); }
void WINO4_U_NAME(double *u, const float *f, const double *s) { wino_u_lanes(4, u, f, s); }
