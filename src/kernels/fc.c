/* Fully connected layer: y[n, k] = x[n, d] * w[k, d]^T + b[k]. */
#include "kernels/kernels.h"

#include "kernels/gemm.h"

/* The forward's outputs go to threads in whole strips of the multiply's GEMM_NR columns, each
 * thread through its own part of the scratch; every output is summed in the same order however
 * the columns are split (gemm.h), so the bits do not depend on the thread count. Worth it
 * where the layer is large: resnet50's 2048 -> 1000 at batch 1 read its 8 MB of weights in
 * 0.75 ms with one thread, 0.36 ms with two (Zen 4; 1.32 and 0.63 ms at batch 16), while one
 * of two threads waited. */
static const double FC_SPLIT_MACS = 1 << 20;

static int fc_parts(int n, int d, int k, int threads)
{
    const int strips = (k + GEMM_NR - 1) / GEMM_NR;
    if (threads <= 1 || (double)n * d * k < FC_SPLIT_MACS) return 1;
    return threads < strips ? threads : strips;
}

/* Rows of x a product reads the transposed weights for: there the multiply reads them in
 * place where it packed w's columns (resnet50's 2048 -> 1000 at batch 1: 0.21 ms where it
 * took 0.61, one thread; at 4 rows 0.26 against 0.66, at 16 rows 1.32 against 1.13). */
enum { FC_TRANSPOSED_ROWS = GEMM_MR };

static size_t forward_scratch(int n, int d, int k)
{
    const size_t a = rn_sgemm_scratch_floats(0, 1, n, k, d, 1.0f, 0.0f);
    const size_t b = rn_sgemm_scratch_floats(0, 0, n, k, d, 1.0f, 0.0f);
    return a > b ? a : b;
}

/* The largest of the three products' scratch below, the forward's once a part. */
size_t rn_fc_scratch_floats(int n, int d, int k, int threads)
{
    size_t f = (size_t)fc_parts(n, d, k, threads) * forward_scratch(n, d, k);
    size_t g = rn_sgemm_scratch_floats(0, 0, n, d, k, 1.0f, 0.0f);
    size_t h = rn_sgemm_scratch_floats(1, 0, k, d, n, 1.0f, 1.0f);
    if (g > f) f = g;
    return h > f ? h : f;
}

int rn_fc_forward(float *y, const float *x, const float *w, const float *wt, const float *b,
                  int n, int d, int k, float *scratch, int threads)
{
    const int parts = fc_parts(n, d, k, threads), strips = (k + GEMM_NR - 1) / GEMM_NR;
    const size_t per = forward_scratch(n, d, k);
    const int transposed = wt && n <= FC_TRANSPOSED_ROWS;
    int st = 0;
#pragma omp parallel for num_threads(parts) schedule(static, 1) reduction(| : st) if (parts > 1)
    for (int t = 0; t < parts; t++) {
        const int j0 = strips * t / parts * GEMM_NR, j1 = strips * (t + 1) / parts * GEMM_NR;
        const int cols = (j1 < k ? j1 : k) - j0;
        float *own = scratch ? scratch + (size_t)t * per : NULL;
        st |= transposed ? rn_sgemm(0, 0, n, cols, d, 1.0f, x, d, wt + j0, k, 0.0f, y + j0, k, own)
                         : rn_sgemm(0, 1, n, cols, d, 1.0f, x, d, w + (size_t)j0 * d, d, 0.0f,
                                    y + j0, k, own);
    }
    if (st || !b) return st;
    for (int i = 0; i < n; i++) {
        float *yi = y + (size_t)i * k;
        for (int j = 0; j < k; j++) yi[j] += b[j];
    }
    return 0;
}

/* dx[n, d] = dy[n, k] * w[k, d];  dw[k, d] += dy^T[k, n] * x[n, d];  db[k] += sum_n dy. */
int rn_fc_backward(float *dx, float *dw, float *db, const float *dy, const float *x,
                   const float *w, int n, int d, int k, float *scratch)
{
    int st = dx ? rn_sgemm(0, 0, n, d, k, 1.0f, dy, k, w, d, 0.0f, dx, d, scratch) : 0;
    if (!st && dw) st = rn_sgemm(1, 0, k, d, n, 1.0f, dy, k, x, d, 1.0f, dw, d, scratch);
    if (st) return st;
    if (db) {
        for (int j = 0; j < k; j++) {
            double s = 0.0;
            for (int i = 0; i < n; i++) s += dy[(size_t)i * k + j];
            db[j] += (float)s;
        }
    }
    return 0;
}
