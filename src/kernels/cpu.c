/* Run-time choice of the kernels' instruction set. */
#include "kernels/cpu.h"

#include <stdlib.h>
#include <string.h>

static rn_simd detect(void)
{
    const char *want = getenv("RN_SIMD");
    if (want && !strcmp(want, "generic")) return RN_SIMD_GENERIC;
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) return RN_SIMD_GENERIC;
    if (want && !strcmp(want, "avx2")) return RN_SIMD_AVX2;
    if (__builtin_cpu_supports("avx512f")) return RN_SIMD_AVX512;
    return RN_SIMD_AVX2;
#endif
    return RN_SIMD_GENERIC;
}

rn_simd rn_cpu_simd(void)
{
    /* Benign race: every thread computes the same answer. */
    static volatile int cached = -1;
    if (cached < 0) cached = (int)detect();
    return (rn_simd)cached;
}
