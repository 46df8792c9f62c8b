/* Probe of a channel-blocked layout (NCHW16c) for the forward of a 3x3 stride-1 convolution,
 * beside this engine's NCHW convolution on the same shapes: the measurement behind the
 * layout choice in docs/performance.md, not part of the library.
 *
 * The blocked kernel: x as [n][C/16][H+2][W+2][16] (padded once, when converted: not timed),
 * weights as [K/16][C/16][3][3][16 c][16 k], y as [n][K/16][H][W][16]. Along one output row,
 * 8 pixels for two blocks of 16 output channels (or 16 pixels for one block) are 16 zmm
 * accumulators; each (channel block, tap, channel) loads the 16 weights of each output block
 * once and broadcasts one input value per pixel, so no operand is packed, padded per call or
 * shifted. Its output is compared with the engine's (max |diff| printed; exit status 1 past
 * 1e-4 of max |y|). Needs AVX-512F; prints the best of ITERS calls, as bench/conv_time.c.
 *   cc -O2 -mavx2 -mfma -mavx512f -fopenmp -Isrc bench/layout_probe.c build/libresnet.a -lm \
 *      -o build/layout_probe
 *   build/layout_probe N C HW K [THREADS [ITERS]]      e.g. build/layout_probe 128 16 32 16 */
#include <immintrin.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "kernels/kernels.h"

enum { B = 16 };

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static float *filled(size_t len, unsigned seed)
{
    float *p = aligned_alloc(64, ((len ? len : 1) * sizeof(float) + 63) / 64 * 64);
    if (!p) return NULL;
    for (size_t i = 0; i < len; i++) {
        seed = seed * 1664525u + 1013904223u;
        p[i] = (float)(seed >> 8) / 16777216.0f - 0.5f;
    }
    return p;
}

/* r pixels of one output row for `blocks` (1 or 2, r * blocks <= 16) blocks of 16 output
 * channels, all input channels: each broadcast input value feeds one FMA per block. r and
 * blocks are constants where it is inlined. wstride, yplane: floats from one output block's
 * weights, and output plane, to the next's. */
static inline __attribute__((always_inline)) void row_block(int r, int blocks, float *y,
                                                           const float *x, const float *w,
                                                           int cb_n, int wp, size_t xplane,
                                                           size_t wstride, size_t yplane)
{
    __m512 acc[16][2];
#pragma GCC unroll 16
    for (int i = 0; i < r; i++) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
    for (int cb = 0; cb < cb_n; cb++) {
        const float *xc = x + (size_t)cb * xplane;
        for (int ky = 0; ky < 3; ky++)
            for (int kx = 0; kx < 3; kx++) {
                const float *xr = xc + ((size_t)ky * wp + kx) * B;
                const float *wt = w + ((size_t)(cb * 9 + ky * 3 + kx)) * B * B;
                for (int c = 0; c < B; c++) {
                    const __m512 w0 = _mm512_load_ps(wt + c * B);
                    const __m512 w1 = blocks > 1 ? _mm512_load_ps(wt + wstride + c * B) : w0;
#pragma GCC unroll 16
                    for (int i = 0; i < r; i++) {
                        const __m512 v = _mm512_set1_ps(xr[i * B + c]);
                        acc[i][0] = _mm512_fmadd_ps(v, w0, acc[i][0]);
                        if (blocks > 1) acc[i][1] = _mm512_fmadd_ps(v, w1, acc[i][1]);
                    }
                }
            }
    }
#pragma GCC unroll 16
    for (int i = 0; i < r; i++) {
        _mm512_store_ps(y + (size_t)i * B, acc[i][0]);
        if (blocks > 1) _mm512_store_ps(y + yplane + (size_t)i * B, acc[i][1]);
    }
}

/* One image's output channels [16 kb, 16 kb + 16), R = 16 pixels at a time (the row's rest
 * one by one, or 8 for rows of 8). */
static void one_block(float *yk, const float *xi, const float *wk, int cbn, int h, int wd,
                      size_t xplane)
{
    const int wp = wd + 2;
    for (int oy = 0; oy < h; oy++)
        for (int ox = 0; ox < wd; ox += 16) {
            const float *xs = xi + ((size_t)oy * wp + ox) * B;
            float *ys = yk + ((size_t)oy * wd + ox) * B;
            if (wd - ox >= 16) {
                row_block(16, 1, ys, xs, wk, cbn, wp, xplane, 0, 0);
            } else if (wd - ox == 8) {
                row_block(8, 1, ys, xs, wk, cbn, wp, xplane, 0, 0);
            } else {
                for (int j = 0; j < wd - ox; j++)
                    row_block(1, 1, ys + j * B, xs + j * B, wk, cbn, wp, xplane, 0, 0);
            }
        }
}

static void conv_blocked(float *y, const float *x, const float *w, int n, int c, int h, int wd,
                         int k, int threads)
{
    const int cbn = c / B, kbn = k / B, pairs = (kbn + 1) / 2, wp = wd + 2;
    const size_t xplane = (size_t)(h + 2) * wp * B, yplane = (size_t)h * wd * B;
    const size_t wblock = (size_t)cbn * 9 * B * B;
#pragma omp parallel for num_threads(threads) schedule(static) collapse(2)
    for (int i = 0; i < n; i++)
        for (int kp = 0; kp < pairs; kp++) {
            const int kb = 2 * kp;
            const float *xi = x + (size_t)i * cbn * xplane;
            float *yk = y + ((size_t)i * kbn + kb) * yplane;
            if (kb + 1 < kbn && wd % 8 == 0) { /* two blocks of output channels at once */
                for (int oy = 0; oy < h; oy++)
                    for (int ox = 0; ox < wd; ox += 8)
                        row_block(8, 2, yk + ((size_t)oy * wd + ox) * B,
                                  xi + ((size_t)oy * wp + ox) * B, w + kb * wblock, cbn, wp,
                                  xplane, wblock, yplane);
                continue;
            }
            for (int b = kb; b < kb + 2 && b < kbn; b++)
                one_block(y + ((size_t)i * kbn + b) * yplane, xi, w + b * wblock, cbn, h, wd,
                          xplane);
        }
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: %s N C HW K [THREADS [ITERS]]\n", argv[0]);
        return 2;
    }
    const int n = atoi(argv[1]), c = atoi(argv[2]), hw = atoi(argv[3]), k = atoi(argv[4]);
    const int threads = argc > 5 ? atoi(argv[5]) : 1, iters = argc > 6 ? atoi(argv[6]) : 20;
    if (!__builtin_cpu_supports("avx512f")) {
        fprintf(stderr, "layout_probe: this CPU has no AVX-512F\n");
        return 1;
    }
    if (n < 1 || c % B || k % B || c < B || k < B || hw < 1 || threads < 1 || iters < 1) {
        fprintf(stderr, "layout_probe: C and K must be multiples of 16, the rest positive\n");
        return 2;
    }
    rn_conv_shape sh;
    if (rn_conv_shape_init(&sh, n, c, hw, hw, k, 3, 3, 1, 1) != 0) return 2;
    sh.threads = threads;
    const size_t nx = (size_t)n * c * hw * hw, ny = (size_t)n * k * hw * hw, nw = (size_t)k * c * 9;
    const int hp = hw + 2;
    const size_t nxb = (size_t)n * c * hp * hp;
    float *x = filled(nx, 1), *w = filled(nw, 2), *y = filled(ny, 3), *yb = filled(ny, 4);
    float *xb = filled(nxb, 5), *wb = filled(nw, 6);
    float *work = malloc((rn_conv_workspace(&sh) + 1) * sizeof(float));
    if (!x || !w || !y || !yb || !xb || !wb || !work) {
        fprintf(stderr, "layout_probe: out of memory\n");
        return 1;
    }
    memset(xb, 0, nxb * sizeof(float));
    for (int i = 0; i < n; i++)
        for (int ci = 0; ci < c; ci++)
            for (int yy = 0; yy < hw; yy++)
                for (int xx = 0; xx < hw; xx++)
                    xb[((((size_t)i * (c / B) + ci / B) * hp + yy + 1) * hp + xx + 1) * B +
                       ci % B] = x[(((size_t)i * c + ci) * hw + yy) * hw + xx];
    for (int kk = 0; kk < k; kk++)
        for (int ci = 0; ci < c; ci++)
            for (int t = 0; t < 9; t++)
                wb[((((size_t)(kk / B) * (c / B) + ci / B) * 9 + t) * B + ci % B) * B + kk % B] =
                    w[((size_t)kk * c + ci) * 9 + t];
    double best_ours = 1e30, best_blocked = 1e30;
    for (int it = 0; it < iters; it++) {
        double t0 = now();
        rn_conv_forward(y, x, w, NULL, &sh, work);
        double t = now() - t0;
        if (t < best_ours) best_ours = t;
        t0 = now();
        conv_blocked(yb, xb, wb, n, c, hw, hw, k, threads);
        t = now() - t0;
        if (t < best_blocked) best_blocked = t;
    }
    double worst = 0.0, scale = 0.0;
    for (int i = 0; i < n; i++)
        for (int kk = 0; kk < k; kk++)
            for (int p = 0; p < hw * hw; p++) {
                const double a = y[((size_t)i * k + kk) * hw * hw + p];
                const double b = yb[(((size_t)i * (k / B) + kk / B) * hw * hw + p) * B + kk % B];
                if (fabs(a - b) > worst) worst = fabs(a - b);
                if (fabs(a) > scale) scale = fabs(a);
            }
    const double flop = 2.0 * n * k * c * 9 * hw * hw;
    printf("fwd n%d %d->%d %dx%d 3x3/1, %d threads: engine (NCHW, %s) %.3f ms %.1f GFLOP/s | "
           "NCHW16c probe %.3f ms %.1f GFLOP/s | probe/engine %.2fx | max |diff| %.1e of max "
           "|y| %.2f\n",
           n, c, k, hw, hw, threads,
           rn_conv_packing(&sh) == RN_CONV_WINOGRAD ? "Winograd" : "direct", best_ours * 1e3,
           flop / best_ours * 1e-9, best_blocked * 1e3, flop / best_blocked * 1e-9,
           best_ours / best_blocked, worst, scale);
    free(x);
    free(w);
    free(y);
    free(yb);
    free(xb);
    free(wb);
    free(work);
    return worst <= 1e-4 * (scale > 1.0 ? scale : 1.0) ? 0 : 1;
}
