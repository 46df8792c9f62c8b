/* One convolution, one direction, on this engine alone: the best of ITERS calls, in ms and
 * GFLOP/s (2 x N x K x C x R x S x OH x OW, as `resnet bench --kernels`). For before/after
 * figures, build it against each commit's library and alternate the binaries (on a shared
 * machine the best of many calls moves least). docs/performance.md quotes it.
 *   make build/libresnet.a
 *   cc -O2 -fopenmp -Isrc bench/conv_time.c build/libresnet.a -lm -o build/conv_time
 *   build/conv_time DIR N C HW K R STRIDE [THREADS [ITERS [ALGO]]]
 * DIR: fwd | dx | dw; padding R / 2; ALGO: auto | direct | winograd (default auto).
 * e.g. build/conv_time dw 64 128 4 128 3 1 1 20 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "kernels/kernels.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static float *filled(size_t len, unsigned seed)
{
    float *p = malloc((len ? len : 1) * sizeof *p);
    if (!p) return NULL;
    for (size_t i = 0; i < len; i++) {
        seed = seed * 1664525u + 1013904223u;
        p[i] = (float)(seed >> 8) / 16777216.0f - 0.5f;
    }
    return p;
}

int main(int argc, char **argv)
{
    if (argc < 8) {
        fprintf(stderr, "usage: %s fwd|dx|dw N C HW K R STRIDE [THREADS [ITERS [ALGO]]]\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1];
    const int n = atoi(argv[2]), c = atoi(argv[3]), hw = atoi(argv[4]), k = atoi(argv[5]);
    const int r = atoi(argv[6]), stride = atoi(argv[7]);
    const int threads = argc > 8 ? atoi(argv[8]) : 1, iters = argc > 9 ? atoi(argv[9]) : 20;
    const char *algo = argc > 10 ? argv[10] : "auto";
    if (strcmp(dir, "fwd") && strcmp(dir, "dx") && strcmp(dir, "dw")) {
        fprintf(stderr, "conv_time: direction must be fwd, dx or dw, not '%s'\n", dir);
        return 2;
    }
    rn_conv_shape sh;
    if (rn_conv_shape_init(&sh, n, c, hw, hw, k, r, r, stride, r / 2) != 0 || iters < 1) {
        fprintf(stderr, "conv_time: invalid shape\n");
        return 2;
    }
    sh.threads = threads;
    sh.algo = !strcmp(algo, "direct") ? RN_CONV_DIRECT
              : !strcmp(algo, "winograd") ? RN_CONV_WINOGRAD : RN_CONV_AUTO;
    const size_t nx = (size_t)n * c * hw * hw, ny = (size_t)n * k * sh.oh * sh.ow;
    const size_t nw = (size_t)k * c * r * r;
    float *x = filled(nx, 1), *w = filled(nw, 2), *dy = filled(ny, 3);
    float *out = malloc((nx > ny ? nx : ny) * sizeof(float)), *dw = calloc(nw, sizeof(float));
    float *work = malloc((rn_conv_workspace(&sh) + 1) * sizeof(float));
    if (!x || !w || !dy || !out || !dw || !work) {
        fprintf(stderr, "conv_time: out of memory\n");
        return 1;
    }
    double best = 1e30;
    for (int i = 0; i < iters; i++) {
        const double t0 = now();
        if (!strcmp(dir, "fwd")) rn_conv_forward(out, x, w, NULL, &sh, work);
        else if (!strcmp(dir, "dx")) rn_conv_backward(out, NULL, NULL, dy, x, w, &sh, work);
        else rn_conv_backward(NULL, dw, NULL, dy, x, w, &sh, work);
        const double t = now() - t0;
        if (t < best) best = t;
    }
    const double flop = 2.0 * n * k * c * r * r * sh.oh * sh.ow;
    printf("%s n%d %d->%d %dx%d %dx%d/%d, %d threads: %.3f ms  %.1f GFLOP/s\n", dir, n, c, k, hw,
           hw, r, r, stride, threads, best * 1e3, flop / best * 1e-9);
    free(x);
    free(w);
    free(dy);
    free(out);
    free(dw);
    free(work);
    return 0;
}
