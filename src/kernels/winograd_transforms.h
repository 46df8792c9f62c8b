/* The Winograd F(2x2, 3x3) data transforms of one channel, included by winograd.c (portable
 * build) and winograd_avx2.c (AVX2 build) to define TRANSFORMS_NAME. 1-D input transform
 * B^T: (d0 - d2, d1 + d2, d2 - d1, d1 - d3); output transform A^T: (m0 + m1 + m2, m1 - m2 -
 * m3).
 *
 * The input transform reads the padded input split into four phase planes (row parity a,
 * column parity b) of width gw: row r, column j of the patch of tile u = ty * gw + tx is
 *   p[r % 2][j % 2][u + (r / 2) * gw + j / 2],
 * so one flat loop over u runs across tile rows (tile column tw of each row is junk). It is
 * written with one pointer per stream and ivdep: GCC neither vectorises stores at
 * v[i * stride + u] nor trusts restrict on local pointers (it gives up on the run-time alias
 * checks); every input and output row is distinct. The output transform works on vectors of
 * 8 tiles in GCC vector types, whose operations and shuffles are the same float operations
 * in both builds (test_wino_output_builds_agree). */
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

/* The helpers below pass 32-byte vectors by value; they are static and inlined, so the
 * calling-convention difference GCC warns about for builds without AVX never arises. */
#pragma GCC diagnostic ignored "-Wpsabi"

typedef float wv8 __attribute__((vector_size(32)));
typedef int wv8i __attribute__((vector_size(32)));

static inline wv8 wload(const float *p)
{
    wv8 v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* The output pairs of 8 tiles, (e[0], o[0], e[1], o[1], ...), + bias, max(., 0) when relu,
 * stored as 16 consecutive floats. */
static inline void store_pairs(float *dst, wv8 e, wv8 o, wv8 bias, int relu)
{
    e += bias;
    o += bias;
    if (relu) {
        const wv8 zero = {0};
        e = (wv8)((wv8i)e & (e > zero));
        o = (wv8)((wv8i)o & (o > zero));
    }
#if defined(__clang__) /* clang spells GCC's two-vector shuffle with constant indices */
    const wv8 a = __builtin_shufflevector(e, o, 0, 8, 1, 9, 2, 10, 3, 11);
    const wv8 b = __builtin_shufflevector(e, o, 4, 12, 5, 13, 6, 14, 7, 15);
#else
    const wv8i lo = {0, 8, 1, 9, 2, 10, 3, 11}, hi = {4, 12, 5, 13, 6, 14, 7, 15};
    const wv8 a = __builtin_shuffle(e, o, lo), b = __builtin_shuffle(e, o, hi);
#endif
    memcpy(dst, &a, sizeof a);
    memcpy(dst + 8, &b, sizeof b);
}

/* Tiles [u, u + 8) of one tile row into 16 floats of output row `even` and 16 of `odd`
 * (both pointing at the first tile's columns; odd NULL: the map's last row is even and has
 * no partner). A write that must stop early goes through `spill` and keeps only `keep_e` /
 * `keep_o` floats. */
static inline void output_chunk(float *even, float *odd, const float *const *m, size_t u,
                                wv8 bias, int relu, int keep_e, int keep_o)
{
    wv8 r[16];
    for (int i = 0; i < 16; i++) r[i] = wload(m[i] + u);
    /* each row of m along its columns: (m0 + m1 + m2, m1 - m2 - m3) */
    const wv8 s00 = r[0] + r[1] + r[2], s01 = r[1] - r[2] - r[3];
    const wv8 s10 = r[4] + r[5] + r[6], s11 = r[5] - r[6] - r[7];
    const wv8 s20 = r[8] + r[9] + r[10], s21 = r[9] - r[10] - r[11];
    const wv8 s30 = r[12] + r[13] + r[14], s31 = r[13] - r[14] - r[15];
    float spill[16];
    /* and along the rows */
    store_pairs(keep_e < 16 ? spill : even, s00 + s10 + s20, s01 + s11 + s21, bias, relu);
    if (keep_e < 16) memcpy(even, spill, (size_t)keep_e * sizeof(float));
    if (!odd) return;
    store_pairs(keep_o < 16 ? spill : odd, s10 - s20 - s30, s11 - s21 - s31, bias, relu);
    if (keep_o < 16) memcpy(odd, spill, (size_t)keep_o * sizeof(float));
}

/* Vectors of 8 tiles, each writing 16 floats of an output row. The last vector of a row
 * may run past the row's end into the next rows; those are written after it (the last
 * vector of each tile row first, then the rest in order, even row before odd), so they end
 * up right. Only a write that would run past the end of the channel's map (which another
 * thread may be writing) goes through a small buffer. The reads of m run up to 7 tiles past
 * the image's last one: the junk column, the next tile row, or the slack that
 * rn_wino_rest_floats keeps after the matrices. */
static void output_transform(float *y, const float *m, size_t mstride, int th, int gw, int oh,
                             int ow, float bias, int relu)
{
    const float *mm[16];
    for (int i = 0; i < 16; i++) mm[i] = m + (size_t)i * mstride;
    const wv8 b = {bias, bias, bias, bias, bias, bias, bias, bias};
    const int tw = gw - 1, chunks = (tw + 7) / 8;
    const size_t end = (size_t)oh * ow;
    for (int ty = 0; ty < th; ty++) {
        const size_t u = (size_t)ty * gw, re = (size_t)2 * ty * ow;
        float *even = y + re, *odd = 2 * ty + 1 < oh ? even + ow : NULL;
        const int last = chunks - 1;
        /* the last vector, and how much of it fits before the end of the map */
        const size_t col = (size_t)16 * last;
        const size_t room_e = end - (re + col), room_o = odd ? end - (re + ow + col) : 0;
        output_chunk(even + col, odd ? odd + col : NULL, mm, u + 8 * (size_t)last, b, relu,
                     room_e < 16 ? (int)room_e : 16, room_o < 16 ? (int)room_o : 16);
        for (int c = 0; c < last; c++)
            output_chunk(even + 16 * c, odd ? odd + 16 * c : NULL, mm, u + 8 * (size_t)c, b,
                         relu, 16, 16);
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
