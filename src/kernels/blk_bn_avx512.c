/* The blocked batch norm's loops built for AVX-512; called only where the CPU has it
 * (kernels/cpu.c). */
#define BLK_BN_FNS rn_blk_bn_avx512
#include "kernels/blk_bn_lanes.h"
