/* The microkernels' dispatch on the number of rows of a block (1..GEMM_MR = 6): each case calls
 * BLOCK with mr as a compile-time constant, so that the row branches inside it fold away.
 * Shared by the AVX2 and AVX-512 builds (kernels/gemm_avx2.c, kernels/gemm_avx512.c). */
#ifndef RN_KERNELS_GEMM_MR_SWITCH_H
#define RN_KERNELS_GEMM_MR_SWITCH_H

#define RN_GEMM_MR_SWITCH(mr, BLOCK, ...)      \
    switch (mr) {                              \
    case 6: BLOCK(6, __VA_ARGS__); break;      \
    case 5: BLOCK(5, __VA_ARGS__); break;      \
    case 4: BLOCK(4, __VA_ARGS__); break;      \
    case 3: BLOCK(3, __VA_ARGS__); break;      \
    case 2: BLOCK(2, __VA_ARGS__); break;      \
    default: BLOCK(1, __VA_ARGS__); break;     \
    }

#endif
