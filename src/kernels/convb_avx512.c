/* The blocked convolution's microkernel with 16 lanes and AVX-512 FMAs: up to 2 x 14
 * accumulators, two weight vectors and a broadcast in 32 zmm registers; called only where the
 * CPU has AVX-512F (kernels/cpu.c). */
#include <immintrin.h>

#include "kernels/convb.h"

#define CB 16
#define RMAX RN_CONVB_RMAX_AVX512
#define VFMA(a, b, c) ((vblk)_mm512_fmadd_ps((__m512)(a), (__m512)(b), (__m512)(c)))
#define VBCAST(x) ((vblk)_mm512_set1_ps(x))
#define KEEP_IN_REGISTER(v) __asm__("" : "+v"(v))
#define ROW_NAME rn_convb_row_avx512
#define WINO_IN_NAME rn_convb_wino_in_avx512
#define WINO_OUT_NAME rn_convb_wino_out_avx512
#define WINO_DY_NAME rn_convb_wino_dy_avx512
#define WINO4_IN_NAME rn_convb_wino4_in_avx512
#define WINO4_OUT_NAME rn_convb_wino4_out_avx512
#define WINO4_DY_NAME rn_convb_wino4_dy_avx512
#define WINO_U_NAME rn_convb_wino_u_avx512
#define WINO4_U_NAME rn_convb_wino4_u_avx512
#define PEAK_NAME rn_convb_peak_avx512
#define WGRAD_NAME rn_convb_wgrad_avx512
#define QUAD_NAME rn_convb_quad_avx512
#include "kernels/convb_row.h"
#include "kernels/convb_wgrad_row.h"
#include "kernels/convb_quad.h"
