/* Softmax cross-entropy with label smoothing, mean over the batch, accumulated in double. With
 * eps = 0 the smoothing terms are exact zeros (lse - 1 * z - 0 * sum), so plain cross-entropy
 * is the same function, not a second copy of it. */
#include "kernels/kernels.h"

#include <math.h>

double rn_softmax_xent(float *dlogits, const float *logits, const int *labels, int n, int k,
                       float eps)
{
    const double on = 1.0 - (double)eps, off = (double)eps / k;
    double total = 0.0;
    for (int i = 0; i < n; i++) {
        const float *z = logits + (size_t)i * k;
        float mx = z[0];
        for (int j = 1; j < k; j++)
            if (z[j] > mx) mx = z[j];
        double se = 0.0, sz = 0.0;
        for (int j = 0; j < k; j++) {
            se += exp((double)z[j] - mx);
            sz += (double)z[j];
        }
        const double lse = log(se) + mx;
        total += lse - on * (double)z[labels[i]] - off * sz;
        if (dlogits) {
            float *g = dlogits + (size_t)i * k;
            for (int j = 0; j < k; j++) {
                const double p = exp((double)z[j] - lse);
                g[j] = (float)((p - (j == labels[i] ? on + off : off)) / n);
            }
        }
    }
    return n > 0 ? total / n : 0.0;
}
