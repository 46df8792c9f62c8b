/* The Winograd transforms built for AVX2 (8 tiles per instruction); called only where the
 * CPU has it (kernels/cpu.c). */
#define TRANSFORMS_NAME rn_wino_avx2
#include "kernels/winograd_transforms.h"
