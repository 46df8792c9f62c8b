/* AVX-512 microkernels: the AVX2 ones' 6 x 16 block of C (kernels/gemm_avx2.c) with one zmm
 * accumulator per row instead of two ymm, and, where two full strips of B lie side by side, a
 * 6 x 32 block in 12 zmm: six chains leave the FMA pipes waiting on the FMA's latency (a loop of
 * independent FMAs on Zen 5, 1 thread: 203 GFLOP/s with 6 zmm chains, 271 with 12). Every
 * element of C gets the same fused multiply-adds in the same order as in the AVX2 kernels, so
 * the results are bit-identical to theirs. The packing of B and every other kernel stay AVX2.
 * Built with -mavx512f (see the Makefile) and only called when the CPU has AVX-512F
 * (kernels/cpu.c). */
#include "kernels/gemm.h"
#include "kernels/gemm_mr_switch.h"

#if defined(__AVX512F__) && defined(__FMA__)
#include <immintrin.h>

/* As block() in gemm_avx2.c: mr, strips (1 or 2; the second strip at b + second), off and arow
 * are compile-time constants at every call site, so the unused branches and accumulators fold
 * away. */
#define ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5)
static inline __attribute__((always_inline)) void block(int mr, int strips, int kc,
                                                        const float *ap,
                                                        const float *const *arow,
                                                        const float *bp, const int *off,
                                                        size_t second, float *c, int ldc,
                                                        int accumulate)
{
#define DECL(i)                                                        \
    __m512 c##i##0 = _mm512_setzero_ps(), c##i##1 = _mm512_setzero_ps(); \
    const float *a##i = arow && mr > i ? arow[i] : NULL;
    ROWS(DECL)
#undef DECL
    for (int p = 0; p < kc; p++) {
        const float *b = off ? bp + off[p] : bp + (size_t)p * GEMM_NR;
        const __m512 b0 = _mm512_loadu_ps(b);
        const __m512 b1 = strips > 1 ? _mm512_loadu_ps(b + second) : b0;
#define FMA(i)                                                                          \
        if (mr > i) {                                                                   \
            const __m512 ai = _mm512_set1_ps(arow ? a##i[p] : ap[(size_t)p * GEMM_MR + i]); \
            c##i##0 = _mm512_fmadd_ps(ai, b0, c##i##0);                                 \
            if (strips > 1) c##i##1 = _mm512_fmadd_ps(ai, b1, c##i##1);                 \
        }
        ROWS(FMA)
#undef FMA
    }
#define STORE(i)                                                                   \
    if (mr > i) {                                                                  \
        float *ci = c + (size_t)i * ldc;                                           \
        if (accumulate) c##i##0 = _mm512_add_ps(c##i##0, _mm512_loadu_ps(ci));     \
        _mm512_storeu_ps(ci, c##i##0);                                             \
        if (strips > 1) {                                                          \
            if (accumulate)                                                        \
                c##i##1 = _mm512_add_ps(c##i##1, _mm512_loadu_ps(ci + GEMM_NR));   \
            _mm512_storeu_ps(ci + GEMM_NR, c##i##1);                               \
        }                                                                          \
    }
    ROWS(STORE)
#undef STORE
}
#undef ROWS

void rn_gemm_ukernel2_avx512(int kc, const float *ap, const float *bp, float *c, int ldc, int mr,
                             int accumulate)
{
    RN_GEMM_MR_SWITCH(mr, block, 2, kc, ap, NULL, bp, NULL, (size_t)kc * GEMM_NR, c, ldc,
                      accumulate)
}

void rn_gemm_ukernel2_rows_avx512(int kc, const float *ap, const float *src, const int *off,
                                  float *c, int ldc, int mr, int accumulate)
{
    RN_GEMM_MR_SWITCH(mr, block, 2, kc, ap, NULL, src, off, GEMM_NR, c, ldc, accumulate)
}

void rn_gemm_ukernel2_arows_avx512(int kc, const float *const *arow, const float *bp, float *c,
                                   int ldc, int mr, int accumulate)
{
    RN_GEMM_MR_SWITCH(mr, block, 2, kc, NULL, arow, bp, NULL, (size_t)kc * GEMM_NR, c, ldc,
                      accumulate)
}

/* Nine rows from three row pointers, the kx shift an address displacement: with nine (or
 * eighteen) chains and no row pointer spilled, the weight gradient of 16 output channels
 * ran at 235-245 GFLOP/s in an L1-resident harness on Zen 5, where six chains ran at 196. */
static inline __attribute__((always_inline)) void taps(int strips, int kc, const float *a,
                                                       int ld, const float *bp, float *c,
                                                       int ldc, int accumulate)
{
    __m512 acc[9][2];
    for (int t = 0; t < 9; t++) acc[t][0] = acc[t][1] = _mm512_setzero_ps();
    const float *r0 = a, *r1 = a + ld, *r2 = a + 2 * (size_t)ld;
    const float *b2 = bp + (size_t)kc * GEMM_NR;
    for (int p = 0; p < kc; p++) {
        const __m512 b0 = _mm512_loadu_ps(bp + (size_t)p * GEMM_NR);
        const __m512 b1 = strips > 1 ? _mm512_loadu_ps(b2 + (size_t)p * GEMM_NR) : b0;
#define TAP(t, r, kx)                                                  \
        {                                                              \
            const __m512 v = _mm512_set1_ps(r[p + kx]);                \
            acc[t][0] = _mm512_fmadd_ps(v, b0, acc[t][0]);             \
            if (strips > 1) acc[t][1] = _mm512_fmadd_ps(v, b1, acc[t][1]); \
        }
        TAP(0, r0, 0) TAP(1, r0, 1) TAP(2, r0, 2)
        TAP(3, r1, 0) TAP(4, r1, 1) TAP(5, r1, 2)
        TAP(6, r2, 0) TAP(7, r2, 1) TAP(8, r2, 2)
#undef TAP
    }
    for (int t = 0; t < 9; t++)
        for (int s = 0; s < strips; s++) {
            float *ct = c + (size_t)t * ldc + s * GEMM_NR;
            __m512 v = acc[t][s];
            if (accumulate) v = _mm512_add_ps(v, _mm512_loadu_ps(ct));
            _mm512_storeu_ps(ct, v);
        }
}

void rn_gemm_ukernel_taps_avx512(int kc, const float *a, int ld, const float *bp, float *c,
                                 int ldc, int strips, int accumulate)
{
    if (strips > 1) taps(2, kc, a, ld, bp, c, ldc, accumulate);
    else taps(1, kc, a, ld, bp, c, ldc, accumulate);
}

static inline __attribute__((always_inline)) void any_rows(int kc, const float *ap,
                                                           const float *const *arow,
                                                           const float *bp, const int *off,
                                                           float *c, int ldc, int mr,
                                                           int accumulate)
{
    RN_GEMM_MR_SWITCH(mr, block, 1, kc, ap, arow, bp, off, 0, c, ldc, accumulate)
}

void rn_gemm_ukernel_rows_avx512(int kc, const float *ap, const float *src, const int *off,
                                 float *c, int ldc, int mr, int accumulate)
{
    any_rows(kc, ap, NULL, src, off, c, ldc, mr, accumulate);
}

/* One strip of B, full or partial (nr < GEMM_NR: the full block is computed aside and its first
 * nr columns added or copied with a masked load and store); A packed (ap) or in place (arow). */
static inline __attribute__((always_inline)) void strip(int kc, const float *ap,
                                                        const float *const *arow,
                                                        const float *bp, float *c, int ldc,
                                                        int mr, int nr, int accumulate)
{
    if (nr == GEMM_NR) {
        any_rows(kc, ap, arow, bp, NULL, c, ldc, mr, accumulate);
        return;
    }
    float tmp[GEMM_MR * GEMM_NR];
    any_rows(kc, ap, arow, bp, NULL, tmp, GEMM_NR, mr, 0);
    const __mmask16 m = (__mmask16)((1u << nr) - 1u);
    for (int i = 0; i < mr; i++) {
        float *ci = c + (size_t)i * ldc;
        __m512 v = _mm512_loadu_ps(tmp + i * GEMM_NR);
        if (accumulate) v = _mm512_add_ps(_mm512_maskz_loadu_ps(m, ci), v);
        _mm512_mask_storeu_ps(ci, m, v);
    }
}

void rn_gemm_ukernel_avx512(int kc, const float *ap, const float *bp, float *c, int ldc, int mr,
                            int nr, int accumulate)
{
    strip(kc, ap, NULL, bp, c, ldc, mr, nr, accumulate);
}

void rn_gemm_ukernel_arows_avx512(int kc, const float *const *arow, const float *bp, float *c,
                                  int ldc, int mr, int nr, int accumulate)
{
    strip(kc, NULL, arow, bp, c, ldc, mr, nr, accumulate);
}

#else
/* Without AVX-512 support in the compiler this file is never selected (kernels/cpu.c). */
void rn_gemm_ukernel2_avx512(int kc, const float *ap, const float *bp, float *c, int ldc, int mr,
                             int accumulate)
{
    rn_gemm_ukernel_generic(kc, ap, bp, c, ldc, mr, GEMM_NR, accumulate);
    rn_gemm_ukernel_generic(kc, ap, bp + (size_t)kc * GEMM_NR, c + GEMM_NR, ldc, mr, GEMM_NR,
                            accumulate);
}

void rn_gemm_ukernel2_rows_avx512(int kc, const float *ap, const float *src, const int *off,
                                  float *c, int ldc, int mr, int accumulate)
{
    rn_gemm_ukernel_rows_generic(kc, ap, src, off, c, ldc, mr, accumulate);
    rn_gemm_ukernel_rows_generic(kc, ap, src + GEMM_NR, off, c + GEMM_NR, ldc, mr, accumulate);
}

void rn_gemm_ukernel2_arows_avx512(int kc, const float *const *arow, const float *bp, float *c,
                                   int ldc, int mr, int accumulate)
{
    rn_gemm_ukernel_arows_generic(kc, arow, bp, c, ldc, mr, GEMM_NR, accumulate);
    rn_gemm_ukernel_arows_generic(kc, arow, bp + (size_t)kc * GEMM_NR, c + GEMM_NR, ldc, mr,
                                  GEMM_NR, accumulate);
}
void rn_gemm_ukernel_taps_avx512(int kc, const float *a, int ld, const float *bp, float *c,
                                 int ldc, int strips, int accumulate)
{
    for (int s = 0; s < strips; s++)
        for (int t = 0; t < 9; t += 3) {
            const float *arow[3] = {a + (size_t)(t / 3) * ld, a + (size_t)(t / 3) * ld + 1,
                                    a + (size_t)(t / 3) * ld + 2};
            rn_gemm_ukernel_arows_generic(kc, arow, bp + (size_t)s * kc * GEMM_NR,
                                          c + (size_t)t * ldc + s * GEMM_NR, ldc, 3, GEMM_NR,
                                          accumulate);
        }
}

void rn_gemm_ukernel_rows_avx512(int kc, const float *ap, const float *src, const int *off,
                                 float *c, int ldc, int mr, int accumulate)
{
    rn_gemm_ukernel_rows_generic(kc, ap, src, off, c, ldc, mr, accumulate);
}

void rn_gemm_ukernel_avx512(int kc, const float *ap, const float *bp, float *c, int ldc, int mr,
                            int nr, int accumulate)
{
    rn_gemm_ukernel_generic(kc, ap, bp, c, ldc, mr, nr, accumulate);
}

void rn_gemm_ukernel_arows_avx512(int kc, const float *const *arow, const float *bp, float *c,
                                  int ldc, int mr, int nr, int accumulate)
{
    rn_gemm_ukernel_arows_generic(kc, arow, bp, c, ldc, mr, nr, accumulate);
}
#endif
