/* The Winograd F(2x2, 3x3) data transforms as flat loops over the tiles of one channel,
 * included by winograd.c (portable build) and winograd_avx2.c (AVX2 build) to define
 * TRANSFORMS_NAME. 1-D input transform B^T: (d0 - d2, d1 + d2, d2 - d1, d1 - d3); output
 * transform A^T: (m0 + m1 + m2, m1 - m2 - m3).
 *
 * The padded input comes split into four phase planes (row parity a, column parity b) of
 * width gw: row r, column j of the patch of tile u = ty * gw + tx is then
 *   p[r % 2][j % 2][u + (r / 2) * gw + j / 2],
 * so one loop over u runs across tile rows (tile column tw of each row is junk). The loops
 * are written with one pointer per stream and ivdep: GCC neither vectorises stores at
 * v[i * stride + u] nor trusts restrict on local pointers (it gives up on the run-time alias
 * checks); every input and output row is distinct. */
#include <stddef.h>
#include <string.h>
#include "kernels/winograd.h"

static void input_transform(float *v, size_t vstride, const float *p, size_t ps, int gw, int n)
{
    const float *p00 = p, *p01 = p + ps, *p10 = p + 2 * ps, *p11 = p + 3 * ps;
    float *v0 = v, *v1 = v0 + vstride, *v2 = v1 + vstride, *v3 = v2 + vstride;
    float *v4 = v3 + vstride, *v5 = v4 + vstride, *v6 = v5 + vstride, *v7 = v6 + vstride;
    float *v8 = v7 + vstride, *v9 = v8 + vstride, *v10 = v9 + vstride, *v11 = v10 + vstride;
    float *v12 = v11 + vstride, *v13 = v12 + vstride, *v14 = v13 + vstride;
    float *v15 = v14 + vstride;
#pragma GCC ivdep
    for (int u = 0; u < n; u++) {
        /* the patch's rows, each transformed along its columns: (d0 - d2, d1 + d2, d2 - d1,
         * d1 - d3) with d = (p_r0[u], p_r1[u], p_r0[u + 1], p_r1[u + 1]) */
        const int w1 = u + gw;
        const float a0 = p00[u] - p00[u + 1], a1 = p01[u] + p00[u + 1];
        const float a2 = p00[u + 1] - p01[u], a3 = p01[u] - p01[u + 1];
        const float b0 = p10[u] - p10[u + 1], b1 = p11[u] + p10[u + 1];
        const float b2 = p10[u + 1] - p11[u], b3 = p11[u] - p11[u + 1];
        const float c0 = p00[w1] - p00[w1 + 1], c1 = p01[w1] + p00[w1 + 1];
        const float c2 = p00[w1 + 1] - p01[w1], c3 = p01[w1] - p01[w1 + 1];
        const float d0 = p10[w1] - p10[w1 + 1], d1 = p11[w1] + p10[w1 + 1];
        const float d2 = p10[w1 + 1] - p11[w1], d3 = p11[w1] - p11[w1 + 1];
        /* and along the rows */
        v0[u] = a0 - c0;
        v1[u] = a1 - c1;
        v2[u] = a2 - c2;
        v3[u] = a3 - c3;
        v4[u] = b0 + c0;
        v5[u] = b1 + c1;
        v6[u] = b2 + c2;
        v7[u] = b3 + c3;
        v8[u] = c0 - b0;
        v9[u] = c1 - b1;
        v10[u] = c2 - b2;
        v11[u] = c3 - b3;
        v12[u] = b0 - d0;
        v13[u] = b1 - d1;
        v14[u] = b2 - d2;
        v15[u] = b3 - d3;
    }
}

static void output_transform(float *y, const float *m, size_t mstride, int th, int gw, int oh,
                             int ow, float bias, int relu, float *tmp)
{
    const int n = th * gw;
    float *y00 = tmp, *y01 = tmp + n, *y10 = tmp + 2 * (size_t)n, *y11 = tmp + 3 * (size_t)n;
    const float *m0 = m, *m1 = m0 + mstride, *m2 = m1 + mstride, *m3 = m2 + mstride;
    const float *m4 = m3 + mstride, *m5 = m4 + mstride, *m6 = m5 + mstride, *m7 = m6 + mstride;
    const float *m8 = m7 + mstride, *m9 = m8 + mstride, *m10 = m9 + mstride;
    const float *m11 = m10 + mstride, *m12 = m11 + mstride, *m13 = m12 + mstride;
    const float *m14 = m13 + mstride, *m15 = m14 + mstride;
#pragma GCC ivdep
    for (int u = 0; u < n; u++) {
        /* each row of m along its columns: (m0 + m1 + m2, m1 - m2 - m3) */
        const float s00 = m0[u] + m1[u] + m2[u], s01 = m1[u] - m2[u] - m3[u];
        const float s10 = m4[u] + m5[u] + m6[u], s11 = m5[u] - m6[u] - m7[u];
        const float s20 = m8[u] + m9[u] + m10[u], s21 = m9[u] - m10[u] - m11[u];
        const float s30 = m12[u] + m13[u] + m14[u], s31 = m13[u] - m14[u] - m15[u];
        /* and along the rows */
        y00[u] = s00 + s10 + s20 + bias;
        y01[u] = s01 + s11 + s21 + bias;
        y10[u] = s10 - s20 - s30 + bias;
        y11[u] = s11 - s21 - s31 + bias;
    }
    if (relu)
        for (int u = 0; u < 4 * n; u++) tmp[u] = tmp[u] > 0.0f ? tmp[u] : 0.0f;
    for (int ty = 0; ty < th; ty++) {
        for (int half = 0; half < 2 && 2 * ty + half < oh; half++) {
            const float *ev = (half ? y10 : y00) + (size_t)ty * gw;
            const float *od = (half ? y11 : y01) + (size_t)ty * gw;
            float *row = y + (size_t)(2 * ty + half) * ow;
            const int pairs = ow / 2;
            for (int j = 0; j < pairs; j++) {
                row[2 * j] = ev[j];
                row[2 * j + 1] = od[j];
            }
            if (ow & 1) row[ow - 1] = ev[pairs];
        }
    }
}

/* One channel of one image into zeroed phase planes: padded pixel (py, px) goes to plane
 * (py % 2, px % 2) at row py / 2, column px / 2. */
static void split_channel(float *p, size_t ps, const float *x, int h, int w, int ph, int pw,
                          int gw)
{
    memset(p, 0, 4 * ps * sizeof(float));
    const int x0 = pw & 1; /* the first x that lands in an even padded column */
    for (int y = 0; y < h; y++) {
        const float *src = x + (size_t)y * w;
        const int py = y + ph;
        float *row = p + (size_t)(py & 1) * 2 * ps + (size_t)(py >> 1) * gw;
        float *ev = row + (x0 + pw) / 2, *od = row + ps + (1 - x0 + pw) / 2;
        /* x = 2j + x0 lands in an even padded column, x = 2j + 1 - x0 in an odd one */
        float *d0 = x0 ? od : ev, *d1 = x0 ? ev : od;
        for (int j = 0; j < w / 2; j++) {
            d0[j] = src[2 * j];
            d1[j] = src[2 * j + 1];
        }
        if (w & 1) d0[w / 2] = src[w - 1];
    }
}

const rn_wino_transforms TRANSFORMS_NAME = {split_channel, input_transform, output_transform};
