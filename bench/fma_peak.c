/* The FMA peak of this machine: every OpenMP thread runs 12 independent accumulator chains of
 * fused multiply-adds (enough to cover the FMA latency on both pipes of a Zen 3 or Zen 5 core),
 * so the loop is bound by FMA throughput alone: _mm512_fmadd_ps where the CPU has AVX-512F
 * (and this file was built with -mavx512f), otherwise _mm256_fmadd_ps; `avx2` as third
 * argument measures the AVX2 peak on an AVX-512 CPU.
 *
 *   cc -O2 -mavx2 -mfma [-mavx512f] -fopenmp bench/fma_peak.c -o fma_peak
 *   OMP_NUM_THREADS=2 ./fma_peak [rounds] [iterations per thread per round] [avx2]
 *
 * Prints one JSON object: threads, instruction set, GFLOP/s of every round, the best and the
 * median (an FMA counts 2 flops x 8 or 16 floats). bench/compare.py builds and runs it. */
#include <immintrin.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* One round on every thread: 12 chains of VEC, FMA and ADD its intrinsics, LANES floats each;
 * returns GFLOP/s and adds the chains' sum to *sink (which keeps them alive). */
#define PEAK_ROUND(VEC, SET1, FMA, ADD, STORE, LANES, iters, sink, out_gflops)                    \
    do {                                                                                          \
        double t0 = 0, t1 = 0;                                                                    \
        float total = 0;                                                                          \
        _Pragma("omp parallel reduction(+ : total)")                                              \
        {                                                                                         \
            VEC a = SET1(0.999999f), b = SET1(1e-7f);                                             \
            VEC c0 = SET1(0.0f), c1 = SET1(0.1f), c2 = SET1(0.2f), c3 = SET1(0.3f);               \
            VEC c4 = SET1(0.4f), c5 = SET1(0.5f), c6 = SET1(0.6f), c7 = SET1(0.7f);               \
            VEC c8 = SET1(0.8f), c9 = SET1(0.9f), c10 = SET1(1.0f), c11 = SET1(1.1f);             \
            _Pragma("omp barrier") _Pragma("omp master") t0 = omp_get_wtime();                    \
            for (long i = 0; i < (iters); i++) {                                                  \
                c0 = FMA(c0, a, b), c1 = FMA(c1, a, b), c2 = FMA(c2, a, b), c3 = FMA(c3, a, b);   \
                c4 = FMA(c4, a, b), c5 = FMA(c5, a, b), c6 = FMA(c6, a, b), c7 = FMA(c7, a, b);   \
                c8 = FMA(c8, a, b), c9 = FMA(c9, a, b), c10 = FMA(c10, a, b);                     \
                c11 = FMA(c11, a, b);                                                             \
            }                                                                                     \
            _Pragma("omp barrier") _Pragma("omp master") t1 = omp_get_wtime();                    \
            VEC s = ADD(ADD(ADD(c0, c1), ADD(c2, c3)), ADD(ADD(c4, c5), ADD(c6, c7)));            \
            s = ADD(s, ADD(ADD(c8, c9), ADD(c10, c11)));                                          \
            float lanes[LANES];                                                                   \
            STORE(lanes, s);                                                                      \
            for (int k = 0; k < (LANES); k++) total += lanes[k];                                  \
        }                                                                                         \
        *(sink) = *(sink) + total;                                                                \
        *(out_gflops) = 12.0 * (LANES) * 2 * (double)(iters) * omp_get_max_threads() / (t1 - t0) / 1e9; \
    } while (0)

static double round_avx2(long iters, volatile float *sink)
{
    double g;
    PEAK_ROUND(__m256, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_add_ps, _mm256_storeu_ps, 8, iters,
               sink, &g);
    return g;
}

#ifdef __AVX512F__
static double round_avx512(long iters, volatile float *sink)
{
    double g;
    PEAK_ROUND(__m512, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_add_ps, _mm512_storeu_ps, 16, iters,
               sink, &g);
    return g;
}
#endif

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 7;
    long iters = argc > 2 ? atol(argv[2]) : 50000000L;
    int want_avx2 = argc > 3 && !strcmp(argv[3], "avx2");
    if (rounds < 1 || rounds > 1000 || iters < 1 || (argc > 3 && !want_avx2)) {
        fprintf(stderr, "usage: fma_peak [rounds 1..1000] [iterations >= 1] [avx2]\n");
        return 2;
    }
    int threads = omp_get_max_threads();
    double *gflops = malloc((size_t)rounds * sizeof *gflops);
    volatile float sink = 0;
    if (!gflops) return 1;
    int avx512 = 0;
#ifdef __AVX512F__
    __builtin_cpu_init();
    avx512 = !want_avx2 && __builtin_cpu_supports("avx512f");
#endif
    for (int r = 0; r < rounds; r++) {
#ifdef __AVX512F__
        if (avx512) {
            gflops[r] = round_avx512(iters, &sink);
            continue;
        }
#endif
        gflops[r] = round_avx2(iters, &sink);
    }
    double best = 0;
    printf("{\"threads\": %d, \"isa\": \"%s\", \"iterations\": %ld, \"gflops\": [", threads,
           avx512 ? "avx512" : "avx2", iters);
    for (int r = 0; r < rounds; r++) {
        printf("%s%.2f", r ? ", " : "", gflops[r]);
        if (gflops[r] > best) best = gflops[r];
    }
    qsort(gflops, (size_t)rounds, sizeof *gflops, cmp_double);
    double med = rounds % 2 ? gflops[rounds / 2] : 0.5 * (gflops[rounds / 2 - 1] + gflops[rounds / 2]);
    printf("], \"best\": %.2f, \"median\": %.2f, \"checksum\": %g}\n", best, med, (double)sink);
    free(gflops);
    return 0;
}
