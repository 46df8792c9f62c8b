/* The AVX2 FMA peak of this machine: every OpenMP thread runs 12 independent
 * _mm256_fmadd_ps accumulator chains (enough to cover the FMA latency on both pipes of a
 * Zen 3 core), so the loop is bound by FMA throughput alone.
 *
 *   cc -O2 -mavx2 -mfma -fopenmp bench/fma_peak.c -o fma_peak
 *   OMP_NUM_THREADS=2 ./fma_peak [rounds] [iterations per thread per round]
 *
 * Prints one JSON object: threads, GFLOP/s of every round, the best and the median
 * (an FMA counts 2 flops x 8 floats). bench/compare.py builds and runs it. */
#include <immintrin.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 7;
    long iters = argc > 2 ? atol(argv[2]) : 50000000L;
    if (rounds < 1 || rounds > 1000 || iters < 1) {
        fprintf(stderr, "usage: fma_peak [rounds 1..1000] [iterations >= 1]\n");
        return 2;
    }
    int threads = omp_get_max_threads();
    double *gflops = malloc((size_t)rounds * sizeof *gflops);
    volatile float sink = 0;
    if (!gflops) return 1;
    for (int r = 0; r < rounds; r++) {
        double t0 = 0, t1 = 0;
        float total = 0;
#pragma omp parallel reduction(+ : total)
        {
            __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
            __m256 c0 = _mm256_set1_ps(0.0f), c1 = _mm256_set1_ps(0.1f), c2 = _mm256_set1_ps(0.2f);
            __m256 c3 = _mm256_set1_ps(0.3f), c4 = _mm256_set1_ps(0.4f), c5 = _mm256_set1_ps(0.5f);
            __m256 c6 = _mm256_set1_ps(0.6f), c7 = _mm256_set1_ps(0.7f), c8 = _mm256_set1_ps(0.8f);
            __m256 c9 = _mm256_set1_ps(0.9f), c10 = _mm256_set1_ps(1.0f), c11 = _mm256_set1_ps(1.1f);
#pragma omp barrier
#pragma omp master
            t0 = omp_get_wtime();
            for (long i = 0; i < iters; i++) {
                c0 = _mm256_fmadd_ps(c0, a, b);
                c1 = _mm256_fmadd_ps(c1, a, b);
                c2 = _mm256_fmadd_ps(c2, a, b);
                c3 = _mm256_fmadd_ps(c3, a, b);
                c4 = _mm256_fmadd_ps(c4, a, b);
                c5 = _mm256_fmadd_ps(c5, a, b);
                c6 = _mm256_fmadd_ps(c6, a, b);
                c7 = _mm256_fmadd_ps(c7, a, b);
                c8 = _mm256_fmadd_ps(c8, a, b);
                c9 = _mm256_fmadd_ps(c9, a, b);
                c10 = _mm256_fmadd_ps(c10, a, b);
                c11 = _mm256_fmadd_ps(c11, a, b);
            }
#pragma omp barrier
#pragma omp master
            t1 = omp_get_wtime();
            __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(c0, c1), _mm256_add_ps(c2, c3)),
                                     _mm256_add_ps(_mm256_add_ps(c4, c5), _mm256_add_ps(c6, c7)));
            s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(c8, c9), _mm256_add_ps(c10, c11)));
            float out[8];
            _mm256_storeu_ps(out, s);
            for (int k = 0; k < 8; k++) total += out[k];
        }
        sink = sink + total; /* keeps the chains alive */
        gflops[r] = 12.0 * 8 * 2 * (double)iters * threads / (t1 - t0) / 1e9;
    }
    double best = 0;
    printf("{\"threads\": %d, \"iterations\": %ld, \"gflops\": [", threads, iters);
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
