/* The microkernel of the channel-blocked weight gradient (convb_wgrad.c), written once and
 * built for each lane count like convb_row.h (included after it by convb_avx512.c, convb_avx2.c
 * and convb_generic.c, which define CB, VFMA, VBCAST and WGRAD_NAME).
 *
 * One call: the gradient of one tap's weights for r input channels (r <= CB) and kbs (1 or 2)
 * blocks of CB output channels, summed over a rectangle of output pixels of imgs images:
 *   acc[i][b] += x[pixel's input][channel i] * dy[pixel][block b]
 * Each pixel loads the CB output-channel gradients of each block once and broadcasts r input
 * values: the forward kernel's transpose, with pixels where the forward has input channels.
 * r * kbs <= CB accumulators (r <= CB / 2 for two blocks; 16 zmm with AVX-512, 8 ymm with
 * AVX2), so every FMA unit has chains enough, and no operand is packed: the taps' input is
 * read in place, the border's pixels left out by the rectangle rather than padded with zeros.
 * The sum runs over images, then rows, then pixels (round the accumulator sets, then the sets
 * in order): a fixed order, whatever the thread count. */
#include <stddef.h>

/* A pixel's dy vectors loaded once, into registers: with few channels a pixel (1-3, a network's
 * first convolution, planar), GCC 12 folded the load into each of the pixel's FMAs instead,
 * loading the same 64 bytes r times beside r broadcasts. The includer's KEEP_IN_REGISTER(v)
 * (an empty asm that takes v in a vector register) stops that; none: the compiler's choice.
 * Measured (Zen 4, family 25 model 17, 1 thread, old and new library alternating by process,
 * three rounds, the same bits): resnet20's first layer (3->16 on 32x32, batch 128) 1.70-1.78
 * ms -> 1.31-1.35 (0.76x the time); the stem's 3->64 7x7/2 and 1-channel inputs 1.00x, as
 * GCC kept their dy in registers already; with 8 lanes 1.00x. */
#ifndef KEEP_IN_REGISTER
#define KEEP_IN_REGISTER(v) ((void)0)
#endif

/* Where a call asks L2 for the next chunk's lines (convb_wgrad.c): floats from a pixel's x and
 * its dy blocks to their counterparts' (0 where not asked: the pixel's own lines, in L1 by
 * then), for the call's first `pixels` pixels. A chunk's first reads otherwise wait on memory,
 * as the hardware's prefetcher follows each block's run of a few kilobytes too late (resnet50's
 * 1x1 gradients at batch 16 ran at 40-55% of the peak, 75-84% at batch 4, whose tensors stay
 * in cache). */
typedef struct {
    ptrdiff_t x, dy, dy2;
    long pixels;
} ahead_lines;

/* One pixel onto one set of accumulators; ask: with the next chunk's lines. */
static inline __attribute__((always_inline)) void wgrad_pixel(const int r, const int kbs,
                                                              vblk acc[CB][2], const float *xp,
                                                              const float *dp, size_t dyplane,
                                                              size_t cstride,
                                                              const ahead_lines *h, int ask)
{
    vblk d0 = *(const vblk *)dp;
    vblk d1 = kbs > 1 ? *(const vblk *)(dp + dyplane) : d0;
    KEEP_IN_REGISTER(d0);
    if (kbs > 1) KEEP_IN_REGISTER(d1);
    if (ask) {
        __builtin_prefetch(xp + h->x, 0, 2);
        __builtin_prefetch(dp + h->dy, 0, 2);
        if (kbs > 1) __builtin_prefetch(dp + h->dy2, 0, 2);
    }
#pragma GCC unroll 16
    for (int i = 0; i < r; i++) {
        const vblk v = VBCAST(xp[(size_t)i * cstride]);
        acc[i][0] = VFMA(v, d0, acc[i][0]);
        if (kbs > 1) acc[i][1] = VFMA(v, d1, acc[i][1]);
    }
}

/* adjacent: the input's channels lie next to each other (blocks; cstride 1), which spares the
 * loop an address computation a channel */
static inline __attribute__((always_inline)) void wgrad_tile(const int r, const int kbs,
                                                             const rn_convb_wgrad_args *a,
                                                             float *acc_io, const float *x,
                                                             const float *dy, const int adjacent)
{
    const size_t cstride = adjacent ? 1 : a->cstride, dyplane = a->dyplane;
    const int asked = a->x_ahead || a->dy_ahead;
    const ahead_lines h = {a->x_ahead, a->dy_ahead, (ptrdiff_t)dyplane + a->dy_ahead,
                           asked ? a->ahead : 0};
    /* few channels (a network's first convolution: 1 or 3): the pixels go round SETS sets of
     * accumulators, so that there are chains enough to hide the FMA's latency */
    enum { SETS_MAX = 4 };
    const int sets = r * kbs <= 4 ? 4 : r * kbs <= 8 ? 2 : 1;
    vblk acc[SETS_MAX][CB][2];
#pragma GCC unroll 16
    for (int i = 0; i < r; i++) {
        acc[0][i][0] = a->accumulate ? *(const vblk *)(acc_io + (size_t)(i * kbs + 0) * CB) : (vblk){0};
        acc[0][i][1] = a->accumulate && kbs > 1 ? *(const vblk *)(acc_io + (size_t)(i * kbs + 1) * CB)
                                                : (vblk){0};
#pragma GCC unroll 4
        for (int s = 1; s < sets; s++) acc[s][i][0] = acc[s][i][1] = (vblk){0};
    }
    /* A strided blocked input (stride 2 at 16 lanes): each pixel reads a line of its own, in
     * rows of 7-28 pixels two lines apart, where the hardware's prefetcher does not keep up
     * (every pixel's first FMA waited on its x in the profile). Each row asks L1 for the next
     * row's lines (the next image's first where it ends one) as it starts. Measured (Zen 4,
     * family 25 model 17, 1 thread, both ways alternating call by call, in a slow spell and a
     * quiet one, same bits): 512->512 3x3/2 on 14x14 at batch 16 0.90-0.96x the time, 16->32 on
     * 32x32 at 128 0.87-0.97x, 32->64 0.93-0.99x, 256->256 and 128->128 0.96-1.00x; strided 1x1
     * gradients of fewer than 256 outputs (not gathered) 0.91-0.97x, but 1.03-1.04x on 4-pixel
     * rows (64->128 on 8x8, in none of the benchmark's networks). The
     * portable and 8-lane builds and stride 1 do not ask (8 lanes: 1.00-1.04x; stride 1
     * 1.00-1.04x; few-channel planar inputs 1.11-1.23x). */
    const int ask_next_row = CB > 8 && a->cstride == 1 && a->xstep > CB;
    for (int img = 0; img < a->imgs; img++)
        for (int row = 0; row < a->rows; row++) {
            const float *xr = x + (size_t)img * a->ximg + (size_t)row * a->xrow;
            if (ask_next_row && (row + 1 < a->rows || img + 1 < a->imgs)) {
                const float *xn = row + 1 < a->rows ? xr + a->xrow : x + (size_t)(img + 1) * a->ximg;
                for (int p = 0; p < a->cols; p++) __builtin_prefetch(xn + (size_t)p * a->xstep, 0, 3);
            }
            const float *dr = dy + (size_t)img * a->dyimg + (size_t)row * a->dyrow;
            const long ask = h.pixels - ((long)img * a->rows + row) * a->cols;
            const int asking = ask <= 0 ? 0 : ask < a->cols ? (int)ask : a->cols;
            int p = 0;
            for (; p + sets <= asking; p += sets) {
#pragma GCC unroll 4
                for (int s = 0; s < sets; s++)
                    wgrad_pixel(r, kbs, acc[s], xr + (size_t)(p + s) * a->xstep,
                                dr + (size_t)(p + s) * CB, dyplane, cstride, &h, 1);
            }
            for (; p + sets <= a->cols; p += sets) {
#pragma GCC unroll 4
                for (int s = 0; s < sets; s++)
                    wgrad_pixel(r, kbs, acc[s], xr + (size_t)(p + s) * a->xstep,
                                dr + (size_t)(p + s) * CB, dyplane, cstride, &h, 0);
            }
            for (; p < a->cols; p++) /* the row's last pixels, into the first set */
                wgrad_pixel(r, kbs, acc[0], xr + (size_t)p * a->xstep, dr + (size_t)p * CB,
                            dyplane, cstride, &h, p < asking);
        }
#pragma GCC unroll 16
    for (int i = 0; i < r; i++) {
#pragma GCC unroll 4
        for (int s = 1; s < sets; s++) {
            acc[0][i][0] += acc[s][i][0];
            if (kbs > 1) acc[0][i][1] += acc[s][i][1];
        }
        *(vblk *)(acc_io + (size_t)(i * kbs + 0) * CB) = acc[0][i][0];
        if (kbs > 1) *(vblk *)(acc_io + (size_t)(i * kbs + 1) * CB) = acc[0][i][1];
    }
}

#define WGRAD_CASE(R)                                                                              \
    case R:                                                                                        \
        if (R == CB / 2 && kbs > 1 && a->cstride == 1) wgrad_tile(R, 2, a, acc, x, dy, 1);         \
        else if (kbs > 1) wgrad_tile(R, 2, a, acc, x, dy, 0);                                      \
        else wgrad_tile(R, 1, a, acc, x, dy, 0);                                                   \
        return;
/* more than CB / 2 channels: one output block only (the registers hold CB accumulators) */
#define WGRAD_CASE1(R)                                                                             \
    case R:                                                                                        \
        if (R == CB && a->cstride == 1) wgrad_tile(R, 1, a, acc, x, dy, 1);                        \
        else wgrad_tile(R, 1, a, acc, x, dy, 0);                                                   \
        return;

void WGRAD_NAME(const rn_convb_wgrad_args *a, int r, int kbs, float *acc, const float *x,
                const float *dy)
{
    switch (r) {
        WGRAD_CASE(1)
        WGRAD_CASE(2)
        WGRAD_CASE(3)
        WGRAD_CASE(4)
#if CB > 8
        WGRAD_CASE(5)
        WGRAD_CASE(6)
        WGRAD_CASE(7)
        WGRAD_CASE(8)
        WGRAD_CASE1(9)
        WGRAD_CASE1(10)
        WGRAD_CASE1(11)
        WGRAD_CASE1(12)
        WGRAD_CASE1(13)
        WGRAD_CASE1(14)
        WGRAD_CASE1(15)
        WGRAD_CASE1(16)
#else
        WGRAD_CASE1(5)
        WGRAD_CASE1(6)
        WGRAD_CASE1(7)
        WGRAD_CASE1(8)
#endif
    default: return;
    }
}
