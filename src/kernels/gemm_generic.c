/* Portable microkernel: the same blocking as the AVX2 one in plain C, for CPUs without AVX2
 * (the compiler vectorises the column loop with whatever the target has). */
#include "kernels/gemm.h"

/* off == NULL: B is a packed strip (row p at bp + p * GEMM_NR); otherwise row p of a full
 * strip is read in place at bp + off[p]. arow == NULL: A is a packed panel (ap); otherwise
 * row i of A is read in place from arow[i]. */
static void block(int kc, const float *ap, const float *const *arow, const float *bp,
                  const int *off, float *c, int ldc, int mr, int nr, int accumulate)
{
    float acc[GEMM_MR][GEMM_NR] = {{0.0f}};
    for (int p = 0; p < kc; p++) {
        const float *b = off ? bp + off[p] : bp + (size_t)p * GEMM_NR;
        for (int i = 0; i < mr; i++) {
            const float ai = arow ? arow[i][p] : ap[(size_t)p * GEMM_MR + i];
            for (int j = 0; j < GEMM_NR; j++) acc[i][j] += ai * b[j];
        }
    }
    for (int i = 0; i < mr; i++) {
        float *ci = c + (size_t)i * ldc;
        for (int j = 0; j < nr; j++) ci[j] = accumulate ? ci[j] + acc[i][j] : acc[i][j];
    }
}

void rn_gemm_ukernel_generic(int kc, const float *ap, const float *bp, float *c, int ldc, int mr,
                             int nr, int accumulate)
{
    block(kc, ap, NULL, bp, NULL, c, ldc, mr, nr, accumulate);
}

void rn_gemm_ukernel_arows_generic(int kc, const float *const *arow, const float *bp, float *c,
                                   int ldc, int mr, int nr, int accumulate)
{
    block(kc, NULL, arow, bp, NULL, c, ldc, mr, nr, accumulate);
}

void rn_gemm_ukernel_rows_generic(int kc, const float *ap, const float *src, const int *off,
                                  float *c, int ldc, int mr, int accumulate)
{
    block(kc, ap, NULL, src, off, c, ldc, mr, GEMM_NR, accumulate);
}
