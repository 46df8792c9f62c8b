/* AVX2 + FMA microkernel: a 6 x 16 block of C in 12 ymm accumulators; per k, two loads of
 * the packed B strip and one broadcast per row of A. Built with -mavx2 -mfma (see the
 * Makefile) and only called when the CPU has both (kernels/cpu.c). */
#include "kernels/gemm.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

/* mr is a compile-time constant at every call site below, so the row branches fold away.
 * Named accumulators rather than an array: GCC keeps an array of vectors in memory and
 * stores it back every iteration (measured: 13-29 GFLOP/s instead of 80+). */
#define ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5)
static inline __attribute__((always_inline)) void block(int mr, int kc, const float *ap,
                                                        const float *bp, float *c, int ldc,
                                                        int accumulate)
{
#define DECL(i) __m256 c##i##0 = _mm256_setzero_ps(), c##i##1 = _mm256_setzero_ps();
    ROWS(DECL)
#undef DECL
    for (int p = 0; p < kc; p++) {
        const __m256 b0 = _mm256_loadu_ps(bp);
        const __m256 b1 = _mm256_loadu_ps(bp + 8);
#define FMA(i)                                                            \
        if (mr > i) {                                                     \
            const __m256 ai = _mm256_broadcast_ss(ap + i); \
            c##i##0 = _mm256_fmadd_ps(ai, b0, c##i##0);                   \
            c##i##1 = _mm256_fmadd_ps(ai, b1, c##i##1);                   \
        }
        ROWS(FMA)
#undef FMA
        ap += GEMM_MR;
        bp += GEMM_NR;
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

static void full_width(int kc, const float *ap, const float *bp, float *c, int ldc,
                       int mr, int accumulate)
{
    switch (mr) {
    case 6: block(6, kc, ap, bp, c, ldc, accumulate); break;
    case 5: block(5, kc, ap, bp, c, ldc, accumulate); break;
    case 4: block(4, kc, ap, bp, c, ldc, accumulate); break;
    case 3: block(3, kc, ap, bp, c, ldc, accumulate); break;
    case 2: block(2, kc, ap, bp, c, ldc, accumulate); break;
    default: block(1, kc, ap, bp, c, ldc, accumulate); break;
    }
}

void rn_gemm_ukernel_avx2(int kc, const float *ap, const float *bp, float *c, int ldc,
                          int mr, int nr, int accumulate)
{
    if (nr == GEMM_NR) {
        full_width(kc, ap, bp, c, ldc, mr, accumulate);
        return;
    }
    /* A partial strip: the padded columns of bp are zero; compute the full block aside. */
    float tmp[GEMM_MR * GEMM_NR];
    full_width(kc, ap, bp, tmp, GEMM_NR, mr, 0);
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nr; j++)
            c[(size_t)i * ldc + j] = accumulate ? c[(size_t)i * ldc + j] + tmp[i * GEMM_NR + j]
                                                : tmp[i * GEMM_NR + j];
}

#else
/* Without AVX2 support in the compiler this file is never selected (kernels/cpu.c). */
void rn_gemm_ukernel_avx2(int kc, const float *ap, const float *bp, float *c, int ldc,
                          int mr, int nr, int accumulate)
{
    rn_gemm_ukernel_generic(kc, ap, bp, c, ldc, mr, nr, accumulate);
}
#endif
