/* Direct against Winograd for one 3x3 stride-1 convolution (forward), on this engine alone:
 * the two algorithms alternate, ROUNDS times ITERS calls each, and the minimum of each is
 * printed (on a shared machine the minimum moves least). docs/performance.md has the table.
 *   make build/libresnet.a
 *   cc -O2 -fopenmp -Isrc bench/conv_algo.c build/libresnet.a -lm -o build/conv_algo
 *   build/conv_algo N C HW K [THREADS [ROUNDS [ITERS]]]    e.g. build/conv_algo 128 16 32 16 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "kernels/kernels.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: %s N C HW K [THREADS [ROUNDS [ITERS]]]\n", argv[0]);
        return 2;
    }
    const int n = atoi(argv[1]), c = atoi(argv[2]), hw = atoi(argv[3]), k = atoi(argv[4]);
    const int threads = argc > 5 ? atoi(argv[5]) : 1, rounds = argc > 6 ? atoi(argv[6]) : 4;
    const int iters = argc > 7 ? atoi(argv[7]) : 10;
    rn_conv_shape sh[2];
    const rn_conv_algo algo[2] = {RN_CONV_DIRECT, RN_CONV_WINOGRAD};
    size_t work_floats = 0;
    for (int a = 0; a < 2; a++) {
        if (rn_conv_shape_init(&sh[a], n, c, hw, hw, k, 3, 3, 1, 1) || threads < 1 || rounds < 1 ||
            iters < 1) {
            fprintf(stderr, "%s: bad shape or counts\n", argv[0]);
            return 2;
        }
        sh[a].threads = threads;
        sh[a].algo = algo[a];
        const size_t f = rn_conv_workspace(&sh[a]);
        if (f > work_floats) work_floats = f;
    }
    const size_t nx = (size_t)n * c * hw * hw, nw = (size_t)k * c * 9, ny = (size_t)n * k * hw * hw;
    float *x = malloc(nx * sizeof *x), *w = malloc(nw * sizeof *w), *y = malloc(ny * sizeof *y);
    float *work = malloc(work_floats * sizeof *work);
    if (!x || !w || !y || !work) {
        fprintf(stderr, "%s: out of memory\n", argv[0]);
        return 1;
    }
    for (size_t i = 0; i < nx; i++) x[i] = (float)((i * 7919) % 1000) / 1000.0f - 0.5f;
    for (size_t i = 0; i < nw; i++) w[i] = (float)((i * 104729) % 1000) / 1000.0f - 0.5f;
    double best[2] = {1e30, 1e30};
    for (int r = 0; r < rounds; r++)
        for (int a = 0; a < 2; a++)
            for (int i = 0; i < iters; i++) {
                const double t = now();
                rn_conv_forward(y, x, w, NULL, &sh[a], work);
                const double dt = now() - t;
                if (dt < best[a]) best[a] = dt;
            }
    const double gflop = 2.0 * n * k * c * 9.0 * hw * hw * 1e-9;
    printf("n %d  c %d  %dx%d  k %d  threads %d: direct %.3f ms (%.1f GFLOP/s)  winograd %.3f ms "
           "(%.1f GFLOP/s)  speed-up %.2f\n",
           n, c, hw, hw, k, threads, 1e3 * best[0], gflop / best[0], 1e3 * best[1],
           gflop / best[1], best[0] / best[1]);
    free(x);
    free(w);
    free(y);
    free(work);
    return 0;
}
