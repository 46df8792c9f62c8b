/* The blocked convolution's microkernel with 8 lanes and AVX2 FMAs: 2 x 6 accumulators, two
 * weight vectors and a broadcast in 16 ymm registers; called only where the CPU has AVX2 and
 * FMA (kernels/cpu.c). */
#include <immintrin.h>

#include "kernels/convb.h"

#define CB 8
#define RMAX RN_CONVB_RMAX_AVX2
#define VFMA(a, b, c) ((vblk)_mm256_fmadd_ps((__m256)(a), (__m256)(b), (__m256)(c)))
#define VBCAST(x) ((vblk)_mm256_set1_ps(x))
#define KEEP_IN_REGISTER(v) __asm__("" : "+x"(v))
#define ROW_NAME rn_convb_row_avx2
#define WINO_IN_NAME rn_convb_wino_in_avx2
#define WINO_OUT_NAME rn_convb_wino_out_avx2
#define WINO_DY_NAME rn_convb_wino_dy_avx2
#define WINO4_IN_NAME rn_convb_wino4_in_avx2
#define WINO4_OUT_NAME rn_convb_wino4_out_avx2
#define WINO4_DY_NAME rn_convb_wino4_dy_avx2
#define WINO_U_NAME rn_convb_wino_u_avx2
#define WINO4_U_NAME rn_convb_wino4_u_avx2
#define PEAK_NAME rn_convb_peak_avx2
#define WGRAD_NAME rn_convb_wgrad_avx2
#include "kernels/convb_row.h"
#include "kernels/convb_wgrad_row.h"
