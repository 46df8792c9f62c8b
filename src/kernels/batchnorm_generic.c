/* Batch normalization's row loops in portable C (SSE2 on x86-64). */
#define BN_ROWS_NAME rn_bn_rows_generic
#include "kernels/batchnorm_rows.h"
