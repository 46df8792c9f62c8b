/* Batch normalization's row loops built for AVX2; called only where the CPU has it
 * (kernels/cpu.c). */
#define BN_ROWS_NAME rn_bn_rows_avx2
#include "kernels/batchnorm_rows.h"
