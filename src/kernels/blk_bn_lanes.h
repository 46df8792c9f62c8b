/* The per-lane loops of batch normalization on blocks (blk_bn.c), written once and built for
 * each instruction set: included by blk_bn_avx512.c, blk_bn_avx2.c and blk_bn_generic.c, which
 * define BLK_BN_FNS. Each lane's sums run in the same order in every build (the lanes are
 * independent, only their number per instruction differs), so all builds give the same bits. */
#include <stddef.h>
#include <string.h>

#include "kernels/blk_bn.h"
#include "kernels/kernels.h"

/* Where the gradient's ReLU mask comes from: none, the ReLU's output, or its input recomputed
 * from x (blk_bn.h). */
enum { MASK_NONE, MASK_Y, MASK_X };

/* A pixel's lanes of a 16- or 8-lane block as one vector (GCC's vector extension), and the
 * masks their comparisons give. The loops below are written on them: as loops over arrays of
 * lanes, GCC 12 kept sums on the stack or left a loop scalar with a branch a lane for the ReLU's
 * mask (the gradient sums, and some variants of the element passes). The same operations on
 * each lane in the same order: the same bits. */
typedef float bn_lanes16 __attribute__((vector_size(16 * sizeof(float)), aligned(sizeof(float))));
typedef float bn_lanes8 __attribute__((vector_size(8 * sizeof(float)), aligned(sizeof(float))));
typedef int bn_mask16 __attribute__((vector_size(16 * sizeof(int)), aligned(sizeof(int))));
typedef int bn_mask8 __attribute__((vector_size(8 * sizeof(int)), aligned(sizeof(int))));

/* One run of pixels [p0, p1) at offset o into f0 (and f1): SUM_X adds x, SUM_SQDEV (x - m)^2,
 * SUM_GRAD g = dy where the ReLU was on (mask) into f0 and g (x - m) into f1; each pixel after
 * the last, as the planar kernels sum. */
#define RUN_SUMS(V, M)                                                                             \
    do {                                                                                           \
        const V zero = {0};                                                                        \
        V a0 = zero, a1 = zero, mv, sv = zero, hv = zero;                                          \
        memcpy(&mv, m, sizeof mv);                                                                 \
        if (mask == MASK_X) memcpy(&sv, rs, sizeof sv), memcpy(&hv, rh, sizeof hv);                \
        for (int p = p0; p < p1; p++) {                                                            \
            const size_t at = o + (size_t)p * cb;                                                  \
            const V xv = *(const V *)(x + at);                                                     \
            if (kind == SUM_X) {                                                                   \
                a0 += xv;                                                                          \
                continue;                                                                          \
            }                                                                                      \
            const V d = xv - mv;                                                                   \
            if (kind == SUM_SQDEV) {                                                               \
                a0 += d * d;                                                                       \
                continue;                                                                          \
            }                                                                                      \
            const V dv = *(const V *)(dy + at);                                                    \
            V g = dv;                                                                              \
            if (mask == MASK_Y) g = (V)((M)dv & (*(const V *)(relu_y + at) > zero));               \
            else if (mask == MASK_X) g = (V)((M)dv & (d * sv + hv > zero));                        \
            a0 += g;                                                                               \
            a1 += g * d;                                                                           \
        }                                                                                          \
        memcpy(f0, &a0, sizeof a0);                                                                \
        memcpy(f1, &a1, sizeof a1);                                                                \
    } while (0)

/* Over images [i0, i1) of block b: s0 and s1 per lane. */
static inline __attribute__((always_inline)) void group_sums(
    const int cb, const int kind, const int mask, double *s0, double *s1, const float *x,
    const float *dy, const float *relu_y, const float *rs, const float *rh, const double *mu,
    int i0, int i1, int cbn, int b, int hw)
{
    double d0[RN_BLK_MAX_LANES] = {0}, d1[RN_BLK_MAX_LANES] = {0};
    float m[RN_BLK_MAX_LANES];
    for (int l = 0; l < cb; l++) m[l] = mu ? (float)mu[l] : 0.0f;
    for (int i = i0; i < i1; i++) {
        const size_t o = ((size_t)i * cbn + b) * hw * cb;
        for (int p0 = 0; p0 < hw; p0 += SUM_RUN) {
            const int p1 = p0 + SUM_RUN < hw ? p0 + SUM_RUN : hw;
            float f0[RN_BLK_MAX_LANES], f1[RN_BLK_MAX_LANES];
            if (cb == 16) RUN_SUMS(bn_lanes16, bn_mask16);
            else RUN_SUMS(bn_lanes8, bn_mask8);
            for (int l = 0; l < cb; l++) d0[l] += f0[l], d1[l] += f1[l];
        }
    }
    memcpy(s0, d0, (size_t)cb * sizeof(double));
    memcpy(s1, d1, (size_t)cb * sizeof(double));
}
#undef RUN_SUMS

/* Each combination a loop of its own, its choices known where it is compiled. */
#define GROUP_SUMS(CB)                                                                             \
    do {                                                                                           \
        if (kind == SUM_X)                                                                         \
            group_sums(CB, SUM_X, MASK_NONE, s0, s1, x, dy, relu_y, rs, rh, mu, i0, i1, cbn, b, hw); \
        else if (kind == SUM_SQDEV)                                                                \
            group_sums(CB, SUM_SQDEV, MASK_NONE, s0, s1, x, dy, relu_y, rs, rh, mu, i0, i1, cbn, b, \
                       hw);                                                                        \
        else if (rs)                                                                               \
            group_sums(CB, SUM_GRAD, MASK_X, s0, s1, x, dy, relu_y, rs, rh, mu, i0, i1, cbn, b, hw); \
        else if (relu_y)                                                                           \
            group_sums(CB, SUM_GRAD, MASK_Y, s0, s1, x, dy, relu_y, rs, rh, mu, i0, i1, cbn, b, hw); \
        else                                                                                       \
            group_sums(CB, SUM_GRAD, MASK_NONE, s0, s1, x, dy, relu_y, rs, rh, mu, i0, i1, cbn, b, \
                       hw);                                                                        \
    } while (0)

static void sums_of(int kind, double *s0, double *s1, const float *x, const float *dy,
                    const float *relu_y, const float *rs, const float *rh, const double *mu, int i0,
                    int i1, int cbn, int b, int hw, int cb)
{
    if (cb == 16) GROUP_SUMS(16);
    else GROUP_SUMS(8);
}
#undef GROUP_SUMS

#define NORMALIZE(V, M)                                                                            \
    do {                                                                                           \
        const V zero = {0};                                                                        \
        V mv, sv, hv;                                                                              \
        memcpy(&mv, mu, sizeof mv), memcpy(&sv, sc, sizeof sv), memcpy(&hv, sh, sizeof hv);        \
        for (size_t i = 0; i < (size_t)hw * cb; i += cb) {                                         \
            V v = (*(const V *)(xp + i) - mv) * sv + hv;                                           \
            if (ap) v = *(const V *)(ap + i) + v;                                                  \
            if (relu) v = (V)((M)v & (v > zero)); /* max(v, 0); NaN gives 0 */                     \
            *(V *)(yp + i) = v;                                                                    \
        }                                                                                          \
    } while (0)

static inline __attribute__((always_inline)) void normalize_lanes(
    const int cb, float *restrict yp, const float *restrict xp, const float *restrict ap,
    const float *mu, const float *sc, const float *sh, int relu, int hw)
{
    if (cb == 16) NORMALIZE(bn_lanes16, bn_mask16);
    else NORMALIZE(bn_lanes8, bn_mask8);
}
#undef NORMALIZE

static void normalize_plane(float *yp, const float *xp, const float *ap, const float *mu,
                            const float *sc, const float *sh, int relu, int hw, int cb)
{
    if (cb == 16) {
        if (ap) normalize_lanes(16, yp, xp, ap, mu, sc, sh, relu, hw);
        else normalize_lanes(16, yp, xp, NULL, mu, sc, sh, relu, hw);
    } else {
        if (ap) normalize_lanes(8, yp, xp, ap, mu, sc, sh, relu, hw);
        else normalize_lanes(8, yp, xp, NULL, mu, sc, sh, relu, hw);
    }
}

static inline __attribute__((always_inline)) void dx_lanes(
    const int cb, const int mask, float *restrict dxp, const float *restrict dyp,
    const float *restrict rp, const float *rs, const float *rh, const float *restrict xp,
    const float *f, const float *o, const float *kk, const float *mu, int hw)
{
#define DX(V, M)                                                                                   \
    do {                                                                                           \
        const V zero = {0};                                                                        \
        V mv, fv, ov, kv, sv = zero, hv = zero;                                                    \
        memcpy(&mv, mu, sizeof mv), memcpy(&fv, f, sizeof fv), memcpy(&ov, o, sizeof ov);          \
        memcpy(&kv, kk, sizeof kv);                                                                \
        if (mask == MASK_X) memcpy(&sv, rs, sizeof sv), memcpy(&hv, rh, sizeof hv);                \
        for (size_t i = 0; i < (size_t)hw * cb; i += cb) {                                         \
            const V d = *(const V *)(xp + i) - mv, dv = *(const V *)(dyp + i);                     \
            V g = dv;                                                                              \
            if (mask == MASK_Y) g = (V)((M)dv & (*(const V *)(rp + i) > zero));                    \
            else if (mask == MASK_X) g = (V)((M)dv & (d * sv + hv > zero));                        \
            *(V *)(dxp + i) = fv * g - ov - d * kv;                                                \
        }                                                                                          \
    } while (0)
    if (cb == 16) DX(bn_lanes16, bn_mask16);
    else DX(bn_lanes8, bn_mask8);
#undef DX
}

#define DX_LANES(CB)                                                                               \
    do {                                                                                           \
        if (rs) dx_lanes(CB, MASK_X, dxp, dyp, rp, rs, rh, xp, f, o, kk, mu, hw);                  \
        else if (rp) dx_lanes(CB, MASK_Y, dxp, dyp, rp, rs, rh, xp, f, o, kk, mu, hw);             \
        else dx_lanes(CB, MASK_NONE, dxp, dyp, rp, rs, rh, xp, f, o, kk, mu, hw);                  \
    } while (0)

static void dx_plane(float *dxp, const float *dyp, const float *rp, const float *rs, const float *rh,
                     const float *xp, const float *f, const float *o, const float *kk,
                     const float *mu, int hw, int cb)
{
    if (cb == 16) DX_LANES(16);
    else DX_LANES(8);
}
#undef DX_LANES

/* Per lane the planar scan's winner (pool.c): row-major, a later value taking over where
 * strictly greater, or a NaN over a number; the padding never wins, and a window wholly in it
 * gives 0. The lanes in vectors of the build's width (GCC's vector extension), or half of it
 * for blocks narrower than that, the window clipped once a pixel: lane by lane, with the rule
 * for NaNs, GCC 12 left the loop scalar (64 channels 112x112 -> 56x56: 1.67 ms in the AVX-512
 * build; 0.17 ms this way, 0.36-0.61 for the lane loop without the rule). */
#if defined(__AVX512F__)
enum { POOL_VEC = 16 };
#elif defined(__AVX2__)
enum { POOL_VEC = 8 };
#else
enum { POOL_VEC = 4 }; /* SSE2: 32-byte vectors took 5 ms, these 0.6-0.7 */
#endif
typedef float pool_vec __attribute__((vector_size(POOL_VEC * sizeof(float)), aligned(4)));
typedef int pool_mask __attribute__((vector_size(POOL_VEC * sizeof(int)), aligned(4)));
typedef float pool_half __attribute__((vector_size(POOL_VEC / 2 * sizeof(float)), aligned(4)));
typedef int pool_half_mask __attribute__((vector_size(POOL_VEC / 2 * sizeof(int)), aligned(4)));

/* Lanes [j, j + the vector's width) of one window, from xw (its top-left tap) into out. */
#define MAXPOOL_WINDOW(V, M)                                                                       \
    do {                                                                                           \
        V best = *(const V *)(xw + ((size_t)ky0 * w + kx0) * cb + j);                              \
        for (int ky = ky0; ky < ky1; ky++)                                                         \
            for (int kx = ky == ky0 ? kx0 + 1 : kx0; kx < kx1; kx++) {                             \
                const V v = *(const V *)(xw + ((size_t)ky * w + kx) * cb + j);                     \
                const M m = (v > best) | ((v != v) & (best == best));                              \
                best = (V)((m & (M)v) | (~m & (M)best));                                           \
            }                                                                                      \
        *(V *)(out + j) = best;                                                                    \
    } while (0)

static inline __attribute__((always_inline)) void maxpool_lanes(const int cb, float *yp,
                                                                const float *xp, int h, int w,
                                                                int k, int stride, int pad,
                                                                int oh, int ow)
{
    for (int oy = 0; oy < oh; oy++) {
        const int y0 = oy * stride - pad;
        const int ky0 = y0 < 0 ? -y0 : 0, ky1 = y0 + k > h ? h - y0 : k;
        for (int ox = 0; ox < ow; ox++) {
            const int x0 = ox * stride - pad;
            const int kx0 = x0 < 0 ? -x0 : 0, kx1 = x0 + k > w ? w - x0 : k;
            float *out = yp + ((size_t)oy * ow + ox) * cb;
            if (ky1 <= ky0 || kx1 <= kx0) {
                memset(out, 0, (size_t)cb * sizeof(float));
                continue;
            }
            const float *xw = xp + ((ptrdiff_t)y0 * w + x0) * cb;
            if (cb >= POOL_VEC)
                for (int j = 0; j < cb; j += POOL_VEC) MAXPOOL_WINDOW(pool_vec, pool_mask);
            else
                for (int j = 0; j < cb; j += POOL_VEC / 2)
                    MAXPOOL_WINDOW(pool_half, pool_half_mask);
        }
    }
}
#undef MAXPOOL_WINDOW

static void maxpool_plane(float *yp, const float *xp, int h, int w, int k, int stride, int pad,
                          int oh, int ow, int cb)
{
    if (cb == 16) maxpool_lanes(16, yp, xp, h, w, k, stride, pad, oh, ow);
    else maxpool_lanes(8, yp, xp, h, w, k, stride, pad, oh, ow);
}

const rn_blk_bn_fns BLK_BN_FNS = {sums_of, normalize_plane, dx_plane, maxpool_plane};
