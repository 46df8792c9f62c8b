/* One 3x3 stride-1 convolution (C -> C channels, HW x HW maps, batch N) on channel-blocked
 * tensors: the direct kernels against Winograd F(2x2, 3x3) on blocks, for the forward
 * (rn_convb_forward / rn_convb_wino_forward, weights packed beforehand) and the weight gradient
 * (rn_convb_backward_weights / rn_convb_wino_backward_weights), the best of ROUNDS calls each,
 * GFLOP/s counting direct multiply-adds. The measurement behind rn_convb_wino_pays and
 * rn_convb_wino_wgrad_pays (docs/performance.md), not part of the library.
 *   cc -O2 -fopenmp -Iinclude -Isrc bench/convb_wino_probe.c build/libresnet.a -lm \
 *      -o build/convb_wino_probe
 *   build/convb_wino_probe N C HW [THREADS [ROUNDS]]     e.g. build/convb_wino_probe 128 32 16
 * RN_SIMD=avx2 measures the 8-lane blocks. */
#include <stdio.h>
#include <stdlib.h>

#include "core/clock.h"
#include "kernels/kernels.h"

static float *filled(size_t len, int period, float step)
{
    float *p = malloc((len ? len : 1) * sizeof *p);
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
    float *y = malloc(len * sizeof *y), *dw = calloc(wl, sizeof *dw);
    float *direct = malloc(rn_convb_packed_floats(&sh) * sizeof(float));
    float *wino = malloc(rn_convb_wino_packed_floats(&sh) * sizeof(float));
    float *work_d = malloc((rn_convb_workspace(&sh) + 1) * sizeof(float));
    float *work_w = malloc((rn_convb_wino_workspace(&sh) + 1) * sizeof(float));
    float *work_g = malloc((rn_convb_wino_wgrad_workspace(&sh) + 1) * sizeof(float));
    if (!x || !dy || !w || !y || !dw || !direct || !wino || !work_d || !work_w || !work_g) {
        fprintf(stderr, "%s: out of memory\n", argv[0]);
        return 1;
    }
    rn_convb_pack(direct, w, NULL, NULL, &sh);
    rn_convb_wino_pack(wino, w, NULL, NULL, &sh);
    double best[4] = {1e30, 1e30, 1e30, 1e30};
    for (int r = 0; r < rounds; r++)
        for (int k = 0; k < 4; k++) {
            const double t0 = rn_clock_s();
            if (k == 0) rn_convb_forward(y, x, direct, 0, &sh, work_d);
            else if (k == 1) rn_convb_wino_forward(y, x, wino, 0, &sh, work_w);
            else if (k == 2) rn_convb_backward_weights(dw, NULL, dy, x, &sh);
            else rn_convb_wino_backward_weights(dw, dy, x, &sh, work_g);
            const double dt = rn_clock_s() - t0;
            if (dt < best[k]) best[k] = dt;
        }
    const double gflop = 2.0 * n * c * c * 9 * hw * hw / 1e9;
    printf("%d->%d 3x3/1 %dx%d, batch %d, %d threads, %d lanes\n", c, c, hw, hw, n, threads,
           rn_blk_lanes());
    printf("  forward:          direct %8.3f ms %6.1f GFLOP/s, Winograd %8.3f ms %6.1f: %.2fx\n",
           1e3 * best[0], gflop / best[0], 1e3 * best[1], gflop / best[1], best[0] / best[1]);
    printf("  weight gradient:  direct %8.3f ms %6.1f GFLOP/s, Winograd %8.3f ms %6.1f: %.2fx\n",
           1e3 * best[2], gflop / best[2], 1e3 * best[3], gflop / best[3], best[2] / best[3]);
    free(x), free(dy), free(w), free(y), free(dw), free(direct), free(wino);
    free(work_d), free(work_w), free(work_g);
    return 0;
}
