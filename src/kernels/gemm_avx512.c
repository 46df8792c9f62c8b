/* AVX-512 microkernels: the AVX2 ones' 6 x 16 block of C (kernels/gemm_avx2.c), one zmm
 * accumulator per row instead of two ymm. Every element of C gets the same fused multiply-adds
 * in the same order as in the AVX2 kernels, so the results are bit-identical to theirs; what
 * changes is that one instruction does the work of two (about 1.5-2x the multiply-adds per
 * cycle on Zen 5's 512-bit units). The packing of B and every other kernel stay AVX2. Built
 * with -mavx512f -mfma (see the Makefile) and only called when the CPU has AVX-512F
 * (kernels/cpu.c). */
#include "kernels/gemm.h"
#include "kernels/gemm_mr_switch.h"

#if defined(__AVX512F__) && defined(__FMA__)
#include <immintrin.h>

/* As block() in gemm_avx2.c: mr, off and arow are compile-time constants at every call site. */
#define ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5)
static inline __attribute__((always_inline)) void block(int mr, int kc, const float *ap,
                                                        const float *const *arow,
                                                        const float *bp, const int *off, float *c,
                                                        int ldc, int accumulate)
{
#define DECL(i)                             \
    __m512 c##i = _mm512_setzero_ps();      \
    const float *a##i = arow && mr > i ? arow[i] : NULL;
    ROWS(DECL)
#undef DECL
    for (int p = 0; p < kc; p++) {
        const float *b = off ? bp + off[p] : bp + (size_t)p * GEMM_NR;
        const __m512 b0 = _mm512_loadu_ps(b);
#define FMA(i)                                                                          \
        if (mr > i) {                                                                   \
            const __m512 ai = _mm512_set1_ps(arow ? a##i[p] : ap[(size_t)p * GEMM_MR + i]); \
            c##i = _mm512_fmadd_ps(ai, b0, c##i);                                       \
        }
        ROWS(FMA)
#undef FMA
    }
#define STORE(i)                                                      \
    if (mr > i) {                                                     \
        float *ci = c + (size_t)i * ldc;                              \
        if (accumulate) c##i = _mm512_add_ps(c##i, _mm512_loadu_ps(ci)); \
        _mm512_storeu_ps(ci, c##i);                                   \
    }
    ROWS(STORE)
#undef STORE
}
#undef ROWS

/* Two adjacent strips of B at once (the second at bp + second), 12 zmm accumulators: enough
 * independent chains to cover the FMA latency, which 6 do not (a loop of independent FMAs on
 * Zen 5: 203 GFLOP/s with 6 zmm chains, 271 with 12, 1 thread). Each element of C still gets
 * its own chain in the same order, so the bits are those of two calls of block(). */
#define ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5)
static inline __attribute__((always_inline)) void block2(int mr, int kc, const float *ap,
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
        const __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + second);
#define FMA(i)                                                                          \
        if (mr > i) {                                                                   \
            const __m512 ai = _mm512_set1_ps(arow ? a##i[p] : ap[(size_t)p * GEMM_MR + i]); \
            c##i##0 = _mm512_fmadd_ps(ai, b0, c##i##0);                                 \
            c##i##1 = _mm512_fmadd_ps(ai, b1, c##i##1);                                 \
        }
        ROWS(FMA)
#undef FMA
    }
#define STORE(i)                                                                   \
    if (mr > i) {                                                                  \
        float *ci = c + (size_t)i * ldc;                                           \
        if (accumulate) {                                                          \
            c##i##0 = _mm512_add_ps(c##i##0, _mm512_loadu_ps(ci));                 \
            c##i##1 = _mm512_add_ps(c##i##1, _mm512_loadu_ps(ci + GEMM_NR));       \
        }                                                                          \
        _mm512_storeu_ps(ci, c##i##0);                                             \
        _mm512_storeu_ps(ci + GEMM_NR, c##i##1);                                   \
    }
    ROWS(STORE)
#undef STORE
}
#undef ROWS

void rn_gemm_ukernel2_avx512(int kc, const float *ap, const float *bp, float *c, int ldc, int mr,
                             int accumulate)
{
    RN_GEMM_MR_SWITCH(mr, block2, kc, ap, NULL, bp, NULL, (size_t)kc * GEMM_NR, c, ldc, accumulate)
}

void rn_gemm_ukernel2_rows_avx512(int kc, const float *ap, const float *src, const int *off,
                                  float *c, int ldc, int mr, int accumulate)
{
    RN_GEMM_MR_SWITCH(mr, block2, kc, ap, NULL, src, off, GEMM_NR, c, ldc, accumulate)
}

void rn_gemm_ukernel2_arows_avx512(int kc, const float *const *arow, const float *bp, float *c,
                                   int ldc, int mr, int accumulate)
{
    RN_GEMM_MR_SWITCH(mr, block2, kc, NULL, arow, bp, NULL, (size_t)kc * GEMM_NR, c, ldc,
                      accumulate)
}

static inline __attribute__((always_inline)) void any_rows(int kc, const float *ap,
                                                           const float *const *arow,
                                                           const float *bp, const int *off,
                                                           float *c, int ldc, int mr,
                                                           int accumulate)
{
    RN_GEMM_MR_SWITCH(mr, block, kc, ap, arow, bp, off, c, ldc, accumulate)
}

void rn_gemm_ukernel_rows_avx512(int kc, const float *ap, const float *src, const int *off,
                                 float *c, int ldc, int mr, int accumulate)
{
    any_rows(kc, ap, NULL, src, off, c, ldc, mr, accumulate);
}

/* A partial strip (nr < GEMM_NR) goes through a masked store rather than a block aside. */
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
