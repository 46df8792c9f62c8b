/* Run-time choice of the kernels' instruction set. */
#include "kernels/cpu.h"

#include <pthread.h>
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

static int detect_intel(void)
{
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    __builtin_cpu_init();
    return __builtin_cpu_is("intel");
#else
    return 0;
#endif
}

/* Decided once: networks run on several threads at once, and in C11 an unsynchronised
 * first write racing with another thread's read is undefined, however alike the values. */
static rn_simd simd_cached;
static int intel_cached;
static pthread_once_t simd_once = PTHREAD_ONCE_INIT;

static void detect_once(void)
{
    simd_cached = detect();
    intel_cached = detect_intel();
}

rn_simd rn_cpu_simd(void)
{
    pthread_once(&simd_once, detect_once);
    return simd_cached;
}

int rn_cpu_intel(void)
{
    pthread_once(&simd_once, detect_once);
    return intel_cached;
}
