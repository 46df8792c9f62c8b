/* A stack of blocks of one shape, with no stem and no head: y = blocks(x), [n, c, h, w] to the
 * same shape. The identity experiment asks such stacks to learn y = x (He et al. 2015, Sec. 3.1:
 * if the added layers can be identities, a deeper net is no worse than a shallower one). */
#ifndef RN_NN_STACK_H
#define RN_NN_STACK_H

#include "resnet.h"

typedef enum { RN_STACK_PLAIN, RN_STACK_RESIDUAL, RN_STACK_HIGHWAY } rn_stack_kind;

/* blocks basic blocks (two 3x3 convolutions each) of `channels` channels on h x w maps, in
 * `ordering`, initialised as the networks are. The result is an rn_net: parameters, gradients,
 * rn_sgd, rn_net_probe_block and rn_net_free work on it; rn_net_forward refuses it. */
int rn_stack_create(rn_net **net, rn_stack_kind kind, int blocks, int channels, int h, int w,
                    int ordering, uint64_t seed);
/* Forward of x [n, channels, h, w]; *y points into the stack's activations (valid until the next
 * forward). */
int rn_stack_forward(rn_net *net, const float *x, int n, int training, const float **y);
/* Back-propagates dy (the gradient of the loss at y) of the last forward, adding to the
 * parameter gradients. */
int rn_stack_backward(rn_net *net, const float *dy);

#endif
