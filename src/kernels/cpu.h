/* Which instruction set the kernels use, decided once per process. */
#ifndef RN_KERNELS_CPU_H
#define RN_KERNELS_CPU_H

/* Ordered: each level implies the ones below it (an AVX-512 CPU runs the AVX2 kernels too). */
typedef enum { RN_SIMD_GENERIC = 0, RN_SIMD_AVX2 = 1, RN_SIMD_AVX512 = 2 } rn_simd;

/* AVX-512F (+ AVX2 + FMA) or AVX2 + FMA, the best the CPU has, unless the environment variable
 * RN_SIMD asks for less: RN_SIMD=generic the portable path, RN_SIMD=avx2 no AVX-512 (how the
 * tests exercise those paths, and A/B measurements compare them, on one machine). */
rn_simd rn_cpu_simd(void);

/* 1 on an Intel CPU: where a choice of algorithm was measured to differ between Intel's
 * AVX-512 cores and AMD's (convb_wino.c). */
int rn_cpu_intel(void);

#endif
