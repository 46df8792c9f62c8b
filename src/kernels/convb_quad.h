/* A second microkernel for 1x1 stride-1 convolutions on blocked input (convb.c's pointwise
 * layers): four output blocks of r <= RN_CONVB_QUAD_RMAX pixels, where convb_row.h's call holds
 * two blocks of up to 12. Included by convb_avx512.c after convb_row.h (its vblk, VFMA, VBCAST,
 * WEIGHTS_AHEAD, prefetch_out and store_out); 4 x 6 accumulators, four weight vectors and a
 * broadcast fill 29 of the 32 zmm registers, so there is no 8-lane build (16 ymm registers).
 *
 * Each input value broadcast serves four blocks instead of two: 10 loads for 24 FMAs instead of
 * 14, and the segment's input read from cache once for every four output blocks. Each output's
 * sum is the same as convb_row.h's: over the input blocks, then their channels, then the bias,
 * the shortcut and the ReLU, so the bits do not depend on which kernel ran. The input's channel
 * count must fill its blocks (the driver checks). */
#include <stddef.h>

static inline __attribute__((always_inline)) void quad_tile(const int r, const rn_convb_row *a,
                                                            float *y, const float *x)
{
    vblk acc[RN_CONVB_QUAD_RMAX][4];
#pragma GCC unroll 6
    for (int i = 0; i < r; i++) acc[i][0] = acc[i][1] = acc[i][2] = acc[i][3] = (vblk){0};
    /* the output's and the shortcut's lines asked for now, as in row_tile */
    for (int b = 0; b < 4; b++) {
        const float *yb = y + (size_t)b * a->ystride;
#pragma GCC unroll 6
        for (int i = 0; i < r; i++) prefetch_out(a, yb + (size_t)i * CB);
    }
    for (int cb = 0; cb < a->cbn; cb++) {
        const float *xv = x + (size_t)cb * a->xplane;
        if (cb + 1 < a->cbn) {
#pragma GCC unroll 6
            for (int i = 0; i < r; i++) __builtin_prefetch(xv + a->xplane + (size_t)i * CB, 0, 3);
        }
        const float *wv = a->w + (size_t)cb * CB * CB;
#pragma GCC unroll 2
        for (int c = 0; c < CB; c++, xv++, wv += CB) {
#pragma GCC unroll 4
            for (int b = 0; b < 4; b++)
                __builtin_prefetch(wv + b * a->wstride + WEIGHTS_AHEAD * CB, 0, 3);
            const vblk w0 = *(const vblk *)wv, w1 = *(const vblk *)(wv + a->wstride);
            const vblk w2 = *(const vblk *)(wv + 2 * a->wstride);
            const vblk w3 = *(const vblk *)(wv + 3 * a->wstride);
#pragma GCC unroll 6
            for (int i = 0; i < r; i++) {
                const vblk v = VBCAST(xv[(size_t)i * CB]);
                acc[i][0] = VFMA(v, w0, acc[i][0]);
                acc[i][1] = VFMA(v, w1, acc[i][1]);
                acc[i][2] = VFMA(v, w2, acc[i][2]);
                acc[i][3] = VFMA(v, w3, acc[i][3]);
            }
        }
    }
    for (int b = 0; b < 4; b++) {
        const vblk bias = a->bias ? *(const vblk *)(a->bias + (size_t)b * CB) : (vblk){0};
        float *yb = y + (size_t)b * a->ystride;
#pragma GCC unroll 6
        for (int i = 0; i < r; i++) store_out(a, yb + (size_t)i * CB, acc[i][b], bias);
    }
}

/* one function a pixel count, as convb_row.h's variants */
#define QUAD_VARIANT(R)                                                                            \
    static __attribute__((noinline)) void quad_##R(const rn_convb_row *a, float *y,               \
                                                   const float *x)                                 \
    {                                                                                              \
        quad_tile(R, a, y, x);                                                                     \
    }
QUAD_VARIANT(1)
QUAD_VARIANT(2)
QUAD_VARIANT(3)
QUAD_VARIANT(4)
QUAD_VARIANT(5)
QUAD_VARIANT(6)

void QUAD_NAME(const rn_convb_row *a, int r, float *y, const float *x)
{
    switch (r) {
    case 1: quad_1(a, y, x); return;
    case 2: quad_2(a, y, x); return;
    case 3: quad_3(a, y, x); return;
    case 4: quad_4(a, y, x); return;
    case 5: quad_5(a, y, x); return;
    case 6: quad_6(a, y, x); return;
    default: return;
    }
}
