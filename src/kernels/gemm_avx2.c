/* AVX2 + FMA microkernel: a 6 x 16 block of C in 12 ymm accumulators; per k, two loads of
 * the packed B strip and one broadcast per row of A. Built with -mavx2 -mfma (see the
 * Makefile) and only called when the CPU has both (kernels/cpu.c). */
#include "kernels/gemm.h"
#include "kernels/gemm_mr_switch.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

/* mr is a compile-time constant at every call site below, so the row branches fold away; so
 * is off: NULL reads B from a packed strip (row p at bp + p * GEMM_NR), otherwise B is read in
 * place (row p at bp + off[p], rows mode, a full strip), which for few rows of A (16 output
 * channels) saves packing that cost as much as the multiply-adds it fed; and so is arow:
 * NULL reads A packed (ap), otherwise row i of A in place from arow[i].
 * Named accumulators rather than an array: GCC keeps an array of vectors in memory and
 * stores it back every iteration (measured: 13-29 GFLOP/s instead of 80+). */
#define ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5)
static inline __attribute__((always_inline)) void block(int mr, int kc, const float *ap,
                                                        const float *const *arow,
                                                        const float *bp, const int *off, float *c,
                                                        int ldc, int accumulate)
{
#define DECL(i)                                                                            \
    __m256 c##i##0 = _mm256_setzero_ps(), c##i##1 = _mm256_setzero_ps();                   \
    const float *a##i = arow && mr > i ? arow[i] : NULL;
    ROWS(DECL)
#undef DECL
    for (int p = 0; p < kc; p++) {
        const float *b = off ? bp + off[p] : bp + (size_t)p * GEMM_NR;
        const __m256 b0 = _mm256_loadu_ps(b);
        const __m256 b1 = _mm256_loadu_ps(b + 8);
#define FMA(i)                                                                             \
        if (mr > i) {                                                                      \
            const __m256 ai = _mm256_broadcast_ss(arow ? a##i + p : ap + (size_t)p * GEMM_MR + i); \
            c##i##0 = _mm256_fmadd_ps(ai, b0, c##i##0);                                    \
            c##i##1 = _mm256_fmadd_ps(ai, b1, c##i##1);                                    \
        }
        ROWS(FMA)
#undef FMA
    }
#define STORE(i)                                                          \
    if (mr > i) {                                                         \
        float *ci = c + (size_t)i * ldc;                                  \
        if (accumulate) {                                                 \
            c##i##0 = _mm256_add_ps(c##i##0, _mm256_loadu_ps(ci));        \
            c##i##1 = _mm256_add_ps(c##i##1, _mm256_loadu_ps(ci + 8));    \
        }                                                                 \
        _mm256_storeu_ps(ci, c##i##0);                                    \
        _mm256_storeu_ps(ci + 8, c##i##1);                                \
    }
    ROWS(STORE)
#undef STORE
}
#undef ROWS

/* A full-width block for any mr; off as in block(). */
static inline __attribute__((always_inline)) void any_rows(int kc, const float *ap,
                                                           const float *const *arow,
                                                           const float *bp, const int *off,
                                                           float *c, int ldc, int mr,
                                                           int accumulate)
{
    RN_GEMM_MR_SWITCH(mr, block, kc, ap, arow, bp, off, c, ldc, accumulate)
}

void rn_gemm_ukernel_rows_avx2(int kc, const float *ap, const float *src, const int *off, float *c,
                               int ldc, int mr, int accumulate)
{
    any_rows(kc, ap, NULL, src, off, c, ldc, mr, accumulate);
}

/* One strip of B, full or partial (nr < GEMM_NR: its padded columns are zero, so the full
 * block is computed aside and its first nr columns added or copied); A packed (ap) or in
 * place (arow), as in block(). */
static inline __attribute__((always_inline)) void strip(int kc, const float *ap,
                                                        const float *const *arow,
                                                        const float *bp, float *c, int ldc,
                                                        int mr, int nr, int accumulate)
{
    const int full = nr == GEMM_NR;
    float tmp[GEMM_MR * GEMM_NR];
    any_rows(kc, ap, arow, bp, NULL, full ? c : tmp, full ? ldc : GEMM_NR, mr, full && accumulate);
    if (full) return;
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nr; j++)
            c[(size_t)i * ldc + j] = accumulate ? c[(size_t)i * ldc + j] + tmp[i * GEMM_NR + j]
                                                : tmp[i * GEMM_NR + j];
}

void rn_gemm_ukernel_avx2(int kc, const float *ap, const float *bp, float *c, int ldc,
                          int mr, int nr, int accumulate)
{
    strip(kc, ap, NULL, bp, c, ldc, mr, nr, accumulate);
}

void rn_gemm_ukernel_arows_avx2(int kc, const float *const *arow, const float *bp, float *c,
                                int ldc, int mr, int nr, int accumulate)
{
    strip(kc, NULL, arow, bp, c, ldc, mr, nr, accumulate);
}

/* A full strip of GEMM_NR columns in columns mode (B[p][j] = src[off[j] + p]): eight values
 * down each of eight columns, transposed in registers, give eight packed rows of eight. */
static inline __attribute__((always_inline)) void transpose8(__m256 *r)
{
    const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    r[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
    r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
    r[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
    r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
    r[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
    r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
    r[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
    r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

void rn_gemm_pack_cols_avx2(float *dst, const float *src, const int *off, int k0, int kc)
{
    int p = 0;
    for (; p + 8 <= kc; p += 8) {
        for (int h = 0; h < GEMM_NR; h += 8) {
            __m256 r[8];
            for (int j = 0; j < 8; j++) r[j] = _mm256_loadu_ps(src + off[h + j] + k0 + p);
            transpose8(r);
            for (int q = 0; q < 8; q++) _mm256_storeu_ps(dst + (size_t)(p + q) * GEMM_NR + h, r[q]);
        }
    }
    for (; p < kc; p++)
        for (int j = 0; j < GEMM_NR; j++) dst[(size_t)p * GEMM_NR + j] = src[off[j] + k0 + p];
}

#else
void rn_gemm_ukernel_rows_avx2(int kc, const float *ap, const float *src, const int *off, float *c,
                               int ldc, int mr, int accumulate)
{
    rn_gemm_ukernel_rows_generic(kc, ap, src, off, c, ldc, mr, accumulate);
}

void rn_gemm_pack_cols_avx2(float *dst, const float *src, const int *off, int k0, int kc)
{
    for (int p = 0; p < kc; p++)
        for (int j = 0; j < GEMM_NR; j++) dst[(size_t)p * GEMM_NR + j] = src[off[j] + k0 + p];
}

/* Without AVX2 support in the compiler this file is never selected (kernels/cpu.c). */
void rn_gemm_ukernel_avx2(int kc, const float *ap, const float *bp, float *c, int ldc,
                          int mr, int nr, int accumulate)
{
    rn_gemm_ukernel_generic(kc, ap, bp, c, ldc, mr, nr, accumulate);
}

void rn_gemm_ukernel_arows_avx2(int kc, const float *const *arow, const float *bp, float *c,
                                int ldc, int mr, int nr, int accumulate)
{
    rn_gemm_ukernel_arows_generic(kc, arow, bp, c, ldc, mr, nr, accumulate);
}
#endif
