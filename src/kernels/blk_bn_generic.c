/* The blocked batch norm's loops built for portable C. */
#define BLK_BN_FNS rn_blk_bn_generic
#include "kernels/blk_bn_lanes.h"
