/* One 3x3 stride-1 convolution (C -> C channels, HW x HW maps, batch N) on channel-blocked
 * tensors: the direct kernels against Winograd F(2x2, 3x3) and F(4x4, 3x3) on blocks (each tile
 * forced with rn_convb_wino_force_tile), for the forward
 * (rn_convb_forward / rn_convb_wino_forward, weights packed beforehand) and the weight gradient
 * (rn_convb_backward_weights / rn_convb_wino_backward_weights), the best of ROUNDS calls each,
 * GFLOP/s counting direct multiply-adds. The measurement behind rn_convb_wino_pays,
 * rn_convb_wino_tile and rn_convb_wino_wgrad_pays (docs/performance.md), not part of the
 * library.
 *   cc -O2 -fopenmp -Iinclude -Isrc bench/convb_wino_probe.c build/libresnet.a -lm \
 *      -o build/convb_wino_probe
 *   build/convb_wino_probe N C HW [THREADS [ROUNDS]]     e.g. build/convb_wino_probe 128 32 16
 * RN_SIMD=avx2 measures the 8-lane blocks. */
#include <stdio.h>
#include <stdlib.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "kernels/kernels.h"

static float *filled(size_t len, int period, float step)
{
    float *p = rn_alloc_lines(len, sizeof *p);
    for (size_t i = 0; p && i < len; i++) p[i] = (float)(i % (size_t)period) * step;
    return p;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s N C HW [THREADS [ROUNDS]]\n", argv[0]);
        return 2;
    }
    const int n = atoi(argv[1]), c = atoi(argv[2]), hw = atoi(argv[3]);
    const int threads = argc > 4 ? atoi(argv[4]) : 1, rounds = argc > 5 ? atoi(argv[5]) : 10;
    rn_conv_shape sh;
    if (n < 1 || c < 1 || hw < 1 || threads < 1 || rounds < 1 ||
        rn_conv_shape_init(&sh, n, c, hw, hw, c, 3, 3, 1, 1)) {
        fprintf(stderr, "%s: not a valid shape\n", argv[0]);
        return 2;
    }
    sh.threads = threads;
    const size_t len = rn_blk_floats(n, c, hw, hw), wl = (size_t)c * c * 9;
    float *x = filled(len, 17, 0.1f), *dy = filled(len, 13, 0.1f), *w = filled(wl, 13, 0.01f);
    float *y = rn_alloc_lines(len, sizeof *y), *dw = rn_alloc_lines_zero(wl, sizeof *dw);
    float *direct = rn_alloc_lines(rn_convb_packed_floats(&sh), sizeof(float));
    float *work_d = rn_alloc_lines(rn_convb_workspace(&sh) + 1, sizeof(float));
    float *work_dg = rn_alloc_lines(rn_convb_backward_weights_workspace(&sh) + 1, sizeof(float));
    float *wino[2], *work_w[2], *work_g[2];
    int ok = x && dy && w && y && dw && direct && work_d && work_dg;
    for (int t = 0; t < 2; t++) {
        rn_convb_wino_force_tile(2 + 2 * t);
        wino[t] = rn_alloc_lines(rn_convb_wino_packed_floats(&sh), sizeof(float));
        work_w[t] = rn_alloc_lines(rn_convb_wino_workspace(&sh) + 1, sizeof(float));
        work_g[t] = rn_alloc_lines(rn_convb_wino_wgrad_workspace(&sh) + 1, sizeof(float));
        ok = ok && wino[t] && work_w[t] && work_g[t];
        if (ok) rn_convb_wino_pack(wino[t], w, NULL, NULL, &sh);
    }
    if (!ok) {
        fprintf(stderr, "%s: out of memory\n", argv[0]);
        return 1;
    }
    rn_convb_pack(direct, w, NULL, NULL, &sh);
    /* direct forward, F2 forward, F4 forward, direct gradient, F2 gradient, F4 gradient */
    double best[6] = {1e30, 1e30, 1e30, 1e30, 1e30, 1e30};
    for (int r = 0; r < rounds; r++)
        for (int k = 0; k < 6; k++) {
            const int t = k % 3 == 2;
            rn_convb_wino_force_tile(2 + 2 * t);
            const double t0 = rn_clock_s();
            if (k == 0) rn_convb_forward(y, x, direct, 0, &sh, work_d);
            else if (k < 3) rn_convb_wino_forward(y, x, wino[t], 0, &sh, work_w[t]);
            else if (k == 3) rn_convb_backward_weights(dw, NULL, dy, x, &sh, work_dg);
            else rn_convb_wino_backward_weights(dw, dy, x, &sh, work_g[t]);
            const double dt = rn_clock_s() - t0;
            if (dt < best[k]) best[k] = dt;
        }
    rn_convb_wino_force_tile(0);
    const double gflop = 2.0 * n * c * c * 9 * hw * hw / 1e9;
    printf("%d->%d 3x3/1 %dx%d, batch %d, %d threads, %d lanes\n", c, c, hw, hw, n, threads,
           rn_blk_lanes());
    for (int d = 0; d < 2; d++) {
        const double *b = best + 3 * d;
        printf("  %-16s direct %8.3f ms %6.1f GFLOP/s, F2 %8.3f ms %6.1f: %.2fx, "
               "F4 %8.3f ms %6.1f: %.2fx\n", d ? "weight gradient:" : "forward:", 1e3 * b[0],
               gflop / b[0], 1e3 * b[1], gflop / b[1], b[0] / b[1], 1e3 * b[2], gflop / b[2],
               b[0] / b[2]);
    }
    free(x), free(dy), free(w), free(y), free(dw), free(direct), free(work_d), free(work_dg);
    for (int t = 0; t < 2; t++) free(wino[t]), free(work_w[t]), free(work_g[t]);
    return 0;
}
