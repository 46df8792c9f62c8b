/* Which instruction set the kernels use, decided once per process. */
#ifndef RN_KERNELS_CPU_H
#define RN_KERNELS_CPU_H

typedef enum { RN_SIMD_GENERIC = 0, RN_SIMD_AVX2 = 1 } rn_simd;

/* AVX2 + FMA when the CPU has both, unless the environment variable RN_SIMD=generic asks for
 * the portable path (how the tests exercise it on machines that have AVX2). */
rn_simd rn_cpu_simd(void);

#endif
