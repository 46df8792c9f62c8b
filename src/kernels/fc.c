/* Fully connected layer: y[n, k] = x[n, d] * w[k, d]^T + b[k]. */
#include "kernels/kernels.h"

/* The largest of the three products' scratch below. */
size_t rn_fc_scratch_floats(int n, int d, int k)
{
    size_t f = rn_sgemm_scratch_floats(0, 1, n, k, d, 1.0f, 0.0f);
    size_t g = rn_sgemm_scratch_floats(0, 0, n, d, k, 1.0f, 0.0f);
    size_t h = rn_sgemm_scratch_floats(1, 0, k, d, n, 1.0f, 1.0f);
    if (g > f) f = g;
    return h > f ? h : f;
}

int rn_fc_forward(float *y, const float *x, const float *w, const float *b, int n, int d, int k,
                  float *scratch)
{
    const int st = rn_sgemm(0, 1, n, k, d, 1.0f, x, d, w, d, 0.0f, y, k, scratch);
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
