/* rn_sgemm: a thin row-major wrapper over OpenBLAS's cblas_sgemm. */
#include "kernels/kernels.h"

#include <cblas.h>

void rn_sgemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
              const float *b, int ldb, float beta, float *c, int ldc)
{
    if (m <= 0 || n <= 0) return;
    if (k <= 0) {
        /* Nothing to multiply: C = beta * C. Done here because BLAS rejects lda < 1 (and
         * prints through xerbla) when k == 0. beta == 0 overwrites, as BLAS does. */
        for (int i = 0; i < m; i++) {
            float *ci = c + (size_t)i * (size_t)ldc;
            for (int j = 0; j < n; j++) ci[j] = beta == 0.0f ? 0.0f : beta * ci[j];
        }
        return;
    }
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, m, n, k, alpha, a, lda, b, ldb, beta, c,
                ldc);
}
