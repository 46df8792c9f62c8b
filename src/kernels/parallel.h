/* When a kernel loop is worth splitting across threads. Below this many floats of work the
 * fork/join (and, on a busy machine, waiting for a descheduled thread) costs more than the
 * loop itself. */
#ifndef RN_KERNELS_PARALLEL_H
#define RN_KERNELS_PARALLEL_H
#define RN_OMP_MIN_WORK ((size_t)1 << 16)
#endif
