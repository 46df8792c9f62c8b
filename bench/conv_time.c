/* One convolution, one direction, on this engine alone: the best of ITERS calls, in ms and
 * GFLOP/s (2 x N x K x C x R x S x OH x OW, as `resnet bench --kernels`). For before/after
 * figures, build it against each commit's library and alternate the binaries (on a shared
 * machine the best of many calls moves least). docs/performance.md quotes it.
 *   make build/libresnet.a
 *   cc -O2 -fopenmp -Isrc bench/conv_time.c build/libresnet.a -lm -o build/conv_time
 *   build/conv_time DIR N C HW K R STRIDE [THREADS [ITERS [ALGO]]]
 * DIR: fwd | dx | dw; padding R / 2; ALGO: auto | direct | winograd (default auto), or blocked:
 * the channel-blocked engine's direct forward (rn_convb_forward on NCHW16c / NCHW8c tensors,
 * fwd only).
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

/* on cache lines, as the engine's tensors are (the blocked kernels' vectors then never straddle
 * two lines) */
static float *lines(size_t len)
{
    const size_t bytes = ((len ? len : 1) * sizeof(float) + 63) / 64 * 64;
    return aligned_alloc(64, bytes);
}

static float *filled(size_t len, unsigned seed)
{
    float *p = lines(len);
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
    const int blocked = !strcmp(algo, "blocked");
    if (strcmp(dir, "fwd") && strcmp(dir, "dx") && strcmp(dir, "dw")) {
        fprintf(stderr, "conv_time: direction must be fwd, dx or dw, not '%s'\n", dir);
        return 2;
    }
    rn_conv_shape sh;
    if (rn_conv_shape_init(&sh, n, c, hw, hw, k, r, r, stride, r / 2) != 0 || iters < 1) {
        fprintf(stderr, "conv_time: invalid shape\n");
        return 2;
    }
    if (blocked && strcmp(dir, "fwd")) {
        fprintf(stderr, "conv_time: ALGO blocked times the forward only\n");
        return 2;
    }
    sh.threads = threads;
    sh.algo = !strcmp(algo, "direct") ? RN_CONV_DIRECT
              : !strcmp(algo, "winograd") ? RN_CONV_WINOGRAD : RN_CONV_AUTO;
    /* blocked: channels rounded up to whole blocks (timing only: the lanes past c hold data) */
    const int cb = rn_blk_lanes();
    const int cs = blocked ? rn_blk_count(c, cb) * cb : c;
    const int ks = blocked ? rn_blk_count(k, cb) * cb : k;
    const size_t nx = (size_t)n * cs * hw * hw, ny = (size_t)n * ks * sh.oh * sh.ow;
    const size_t nw = (size_t)k * c * r * r;
    const size_t nwork = blocked ? rn_convb_workspace(&sh) : rn_conv_workspace(&sh);
    float *x = filled(nx, 1), *w = filled(nw, 2), *dy = filled(ny, 3);
    float *out = lines(nx > ny ? nx : ny), *dw = calloc(nw, sizeof(float));
    float *work = lines(nwork + 1);
    float *packed = blocked ? lines(rn_convb_packed_floats(&sh)) : NULL;
    if (!x || !w || !dy || !out || !dw || !work || (blocked && !packed)) {
        fprintf(stderr, "conv_time: out of memory\n");
        return 1;
    }
    if (blocked) rn_convb_pack(packed, w, NULL, NULL, &sh);
    double best = 1e30;
    for (int i = 0; i < iters; i++) {
        const double t0 = now();
        if (blocked) rn_convb_forward(out, x, packed, 0, &sh, work);
        else if (!strcmp(dir, "fwd")) rn_conv_forward(out, x, w, NULL, &sh, work);
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
    free(packed);
    return 0;
}
