/* The blocked convolution's microkernel in portable C: 8 lanes as GCC vectors, a separate
 * multiply and add (no FMA is assumed). */
#include "kernels/convb.h"

#define CB 8
#define RMAX RN_CONVB_RMAX_GENERIC
#define VFMA(a, b, c) ((a) * (b) + (c))
#define VBCAST(x) ((vblk){(x), (x), (x), (x), (x), (x), (x), (x)})
#define ROW_NAME rn_convb_row_generic
#define WINO_IN_NAME rn_convb_wino_in_generic
#define WINO_OUT_NAME rn_convb_wino_out_generic
#define WINO_DY_NAME rn_convb_wino_dy_generic
#define WINO4_IN_NAME rn_convb_wino4_in_generic
#define WINO4_OUT_NAME rn_convb_wino4_out_generic
#define WINO4_DY_NAME rn_convb_wino4_dy_generic
#define WINO_U_NAME rn_convb_wino_u_generic
#define WINO4_U_NAME rn_convb_wino4_u_generic
#define PEAK_NAME rn_convb_peak_generic
#define WGRAD_NAME rn_convb_wgrad_generic
#include "kernels/convb_row.h"
#include "kernels/convb_wgrad_row.h"
