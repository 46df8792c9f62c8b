/* Stacks of blocks without stem or head (nn/stack.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "nn/net.h"
#include "nn/stack.h"

int rn_stack_create(rn_net **out, rn_stack_kind kind, int blocks, int channels, int h, int w,
                    int ordering, uint64_t seed)
{
    *out = NULL;
    if (blocks < 1 || blocks > 1000 || channels < 1 || channels > 4096 || h < 1 || w < 1 ||
        (size_t)h * w > 1u << 20)
        return rn_fail(RN_ERR_ARG, "a stack of %d blocks of %dx%dx%d is out of range", blocks,
                       channels, h, w);
    if (ordering < 0 || ordering > 4) return rn_fail(RN_ERR_ARG, "unknown block ordering %d", ordering);
    static const char *const kinds[] = {"plain", "residual", "highway"};
    rn_net *net = calloc(1, sizeof *net);
    if (!net) return rn_fail(RN_ERR_NOMEM, "out of memory");
    rn_net_options_init(&net->opt);
    net->opt.ordering = ordering;
    net->opt.shortcut = RN_SHORTCUT_A;
    net->opt.in_c = channels, net->opt.in_h = h, net->opt.in_w = w;
    net->opt.seed = seed;
    snprintf(net->arch, sizeof net->arch, "%s-stack%d", kinds[kind], blocks);
    int st = RN_OK;
    net->blocks = calloc((size_t)blocks, sizeof *net->blocks);
    if (!net->blocks) st = rn_fail(RN_ERR_NOMEM, "out of memory for %d blocks", blocks);
    const rn_block_kind bk = kind == RN_STACK_PLAIN      ? RN_BLOCK_PLAIN
                             : kind == RN_STACK_HIGHWAY ? RN_BLOCK_HIGHWAY
                                                        : RN_BLOCK_RESIDUAL;
    rn_block_spec spec = {.kind = bk, .ordering = ordering, .shortcut = RN_SHORTCUT_A,
                          .stride = 1, .mid_c = channels, .out_c = channels};
    rn_shape3 shape = {channels, h, w};
    for (int i = 0; !st && i < blocks; i++) {
        char name[32];
        snprintf(name, sizeof name, "layer1.%d", i);
        rn_block *b = calloc(1, sizeof *b);
        if (!b) {
            st = rn_fail(RN_ERR_NOMEM, "out of memory for block %s", name);
            break;
        }
        net->blocks[net->n_blocks++] = b;
        st = rn_block_build(net, b, name, 1, shape, &spec);
    }
    net->n_stages = 1;
    if (!st) st = rn_net_bind(net);
    if (st) {
        rn_net_free(net);
        return st;
    }
    rn_rng_seed(&net->rng, seed);
    for (int i = 0; i < net->n_blocks; i++) rn_block_init_weights(net, net->blocks[i]);
    *out = net;
    return RN_OK;
}

int rn_stack_forward(rn_net *net, const float *x, int n, int training, const float **y)
{
    if (n <= 0) return rn_fail(RN_ERR_ARG, "batch size must be positive, not %d", n);
    int st = rn_net_reserve_batch(net, n);
    if (st) return st;
    net->run.n = n;
    net->run.training = training != 0;
    const float *h = x;
    for (int i = 0; i < net->n_blocks; i++) {
        rn_block_forward(net, net->blocks[i], h);
        h = rn_block_output(net->blocks[i]);
    }
    *y = h;
    net->run.forward_done = 1;
    return RN_OK;
}

int rn_stack_backward(rn_net *net, const float *dy)
{
    if (!net->run.forward_done) return rn_fail(RN_ERR_ARG, "backward without a forward pass");
    rn_grad_buffers *g = &net->run.grad;
    const rn_shape3 s = net->blocks[0]->in;
    const size_t len = rn_shape3_size(s) * (size_t)net->run.n;
    memcpy(g->carry[0], dy, len * sizeof(float));
    if (net->run.input_grad_sq) net->run.input_grad_sq[net->n_blocks] = rn_sum_sq(g->carry[0], len);
    int cur = 0, masked = 0;
    for (int i = net->n_blocks - 1; i >= 0; i--) {
        /* the ReLU ending the block before in this block's last pass, unless the gradient
         * between the blocks is measured */
        const int mask =
            i > 0 && !net->run.input_grad_sq && rn_block_ends_in_relu(net->blocks[i - 1]);
        masked =
            rn_block_backward(net, net->blocks[i], g->carry[cur], masked, g->carry[1 - cur], mask);
        cur = 1 - cur;
        if (net->run.input_grad_sq) net->run.input_grad_sq[i] = rn_sum_sq(g->carry[cur], len);
    }
    return RN_OK;
}
