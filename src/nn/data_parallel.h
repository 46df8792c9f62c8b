/* What a network needs to train as one of several processes that each hold a slice of the
 * global batch (src/train/ sets it; src/dist/ carries the sums): see rn_net_run's bn_allsum and
 * loss_grad_scale. */
#ifndef RN_NN_DATA_PARALLEL_H
#define RN_NN_DATA_PARALLEL_H

#include "kernels/batchnorm_sync.h"
#include "resnet.h"

/* Training-mode batch norms take their statistics through bn (NULL: this process's slice
 * alone); kept by pointer, it must outlive the network's use of it. */
void rn_net_set_bn_allsum(rn_net *net, const rn_bn_allsum *bn);
/* The loss gradient of the next backwards is multiplied by scale (this slice's images over the
 * global batch's), so that the gradients of all slices add up to the global batch's mean loss;
 * 0 or 1: unscaled. */
void rn_net_set_loss_grad_scale(rn_net *net, float scale);
/* fn(ctx, i) is called by rn_net_backward once block i's backward is done (i counting down;
 * NULL: never). */
void rn_net_set_block_grads_hook(rn_net *net, void (*fn)(void *ctx, int block), void *ctx);
/* Where block i's parameters lie in rn_net_params (and their gradients in rn_net_grads):
 * [*lo, *hi); RN_ERR_ARG when the block has none or they are not one contiguous range. */
int rn_net_block_param_range(const rn_net *net, int block, size_t *lo, size_t *hi);
/* The channels of the widest batch norm (sizes rn_bn_allsum's scratch). */
int rn_net_max_bn_channels(const rn_net *net);

#endif
