/* How near the FMA peak the direct kernels' instruction mix can run on this core, with every
 * operand in L1 (or, with more channels, L2): the inner loop of the 1x1 and 3x3 microkernels
 * (convb_quad.h, convb_row.h) without their calls, borders, stores or caches to wait on. Per
 * input channel, P pixels' values broadcast (one load each) against B blocks of 16 output
 * channels (B vector loads of weights), P x B FMAs into accumulators held in registers; with
 * `prefetch`, also the B weight prefetches the kernels issue. fma_peak.c's loop, which loads
 * nothing, is the peak these are a share of.
 *
 *   gcc -O3 -std=c11 -mavx512f -mfma bench/kernel_mix.c -o kernel_mix  (GCC: its unroll pragmas
 *   put the accumulators in registers)
 *   ./kernel_mix SHAPE [CHANNELS [REPEATS]]
 *
 * SHAPE: quad (6 pixels x 4 blocks: 10 loads for 24 FMAs), row (12 x 2: 14 loads for 24 FMAs),
 * either with -prefetch appended; CHANNELS 64 (quad's weights 16 KB, in L1) or 256 (quad's
 * 64 KB, from L2 where L1 holds 48 KB; row's 32 KB). Prints the best of 5 rounds in GFLOP/s. */
#define _POSIX_C_SOURCE 199309L
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { AHEAD = 16 * 16 }; /* floats ahead a weight prefetch asks for: 16 channels, as the kernels */

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* P pixels x B blocks over c channels, repeats times; the accumulators' sum in *check so the
 * loop is not optimised away. The empty asm statements keep each broadcast and weight vector
 * alive to the end of its channel, as in the kernels, so no register is reused mid-channel. */
#define MIX(NAME, P, B)                                                                            \
    static void NAME(const float *w, const float *x, int c, long repeats, int prefetch,            \
                     float *check)                                                                 \
    {                                                                                              \
        __m512 acc[P][B];                                                                          \
        for (int i = 0; i < (P); i++)                                                              \
            for (int b = 0; b < (B); b++) acc[i][b] = _mm512_setzero_ps();                         \
        const size_t wstride = (size_t)c * 16;                                                     \
        for (long r = 0; r < repeats; r++) {                                                       \
            const float *wv = w, *xv = x;                                                          \
            for (int ch = 0; ch < c; ch++, wv += 16, xv++) {                                       \
                if (prefetch)                                                                      \
                    for (int b = 0; b < (B); b++)                                                  \
                        __builtin_prefetch(wv + b * wstride + AHEAD, 0, 3);                        \
                __m512 wb[B];                                                                      \
                for (int b = 0; b < (B); b++) wb[b] = _mm512_load_ps(wv + b * wstride);            \
                _Pragma("GCC unroll 12") for (int i = 0; i < (P); i++) {                           \
                    const __m512 v = _mm512_set1_ps(xv[(size_t)i * c]);                            \
                    _Pragma("GCC unroll 4") for (int b = 0; b < (B); b++)                          \
                        acc[i][b] = _mm512_fmadd_ps(v, wb[b], acc[i][b]);                          \
                    __asm__ volatile("" : : "v"(v));                                               \
                }                                                                                  \
                for (int b = 0; b < (B); b++) __asm__ volatile("" : : "v"(wb[b]));                 \
            }                                                                                      \
        }                                                                                          \
        __m512 s = _mm512_setzero_ps();                                                            \
        for (int i = 0; i < (P); i++)                                                              \
            for (int b = 0; b < (B); b++) s = _mm512_add_ps(s, acc[i][b]);                         \
        _mm512_storeu_ps(check, s);                                                                \
    }
MIX(mix_quad, 6, 4)
MIX(mix_row, 12, 2)

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: kernel_mix quad|row[-prefetch] [channels] [repeats]\n");
        return 2;
    }
    const int quad = strncmp(argv[1], "quad", 4) == 0;
    const int prefetch = strstr(argv[1], "-prefetch") != NULL;
    const int c = argc > 2 ? atoi(argv[2]) : 64;
    const long repeats = argc > 3 ? atol(argv[3]) : 12800000L / (c > 0 ? c : 1);
    if (c < 1 || c > 4096 || repeats < 1 || (!quad && strncmp(argv[1], "row", 3) != 0)) {
        fprintf(stderr, "kernel_mix: bad arguments\n");
        return 2;
    }
    const int pixels = quad ? 6 : 12, blocks = quad ? 4 : 2;
    const size_t wfloats = (size_t)blocks * c * 16 + AHEAD; /* the last prefetches stay inside */
    float *w = aligned_alloc(64, wfloats * sizeof(float));
    float *x = aligned_alloc(64, (size_t)pixels * c * sizeof(float) + 64);
    if (!w || !x) return 1;
    for (size_t i = 0; i < wfloats; i++) w[i] = 1e-6f * (float)(i % 13);
    for (size_t i = 0; i < (size_t)pixels * c; i++) x[i] = 1e-3f * (float)(i % 7);
    float check[16];
    double best = 1e30;
    for (int round = 0; round < 5; round++) {
        const double t0 = now();
        if (quad) mix_quad(w, x, c, repeats, prefetch, check);
        else mix_row(w, x, c, repeats, prefetch, check);
        const double t = now() - t0;
        if (t < best) best = t;
    }
    const double flops = 2.0 * 16 * pixels * blocks * (double)c * (double)repeats;
    printf("%s, %d channels: %.1f GFLOP/s (check %g)\n", argv[1], c, flops / best * 1e-9, check[0]);
    free(w);
    free(x);
    return 0;
}
