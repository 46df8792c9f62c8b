/* When and how a kernel loop is split across threads.
 *
 * Below RN_OMP_MIN_WORK floats of work the fork/join (and, on a busy machine, waiting for a
 * descheduled thread) costs more than the loop itself. Loops are scheduled dynamically: when
 * another process takes a core, the threads still running pick up the work instead of waiting
 * at the barrier for the one that is not (measured with 2 threads on a machine shared with
 * other jobs: half the samples were spent in libgomp's barrier with static schedules). Every
 * iteration writes its own outputs, so results do not depend on the assignment. */
#ifndef RN_KERNELS_PARALLEL_H
#define RN_KERNELS_PARALLEL_H
#define RN_OMP_MIN_WORK ((size_t)1 << 16)
/* Elements per chunk of an element-wise loop. */
#define RN_OMP_CHUNK 16384

#ifdef _OPENMP
#include <omp.h>
#endif

/* Planes of plane_floats floats per dynamically scheduled chunk: about RN_OMP_CHUNK floats,
 * so that small planes (a 4x4 map: 16 floats) are not handed out one by one (measured: the
 * global average pool over 64 x 128 planes of 16 floats took 2.2x longer on 2 threads than
 * on 1). */
static inline int rn_omp_plane_chunk(size_t plane_floats)
{
    const size_t c = plane_floats ? RN_OMP_CHUNK / plane_floats : 1;
    return c > 1 ? (int)c : 1;
}

/* This thread's number in the current team (0 outside one, or without OpenMP). */
static inline int rn_thread_id(void)
{
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}
#endif
