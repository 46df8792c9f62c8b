/* Probes of a network's last forward and backward, and the structural edits of lesion studies
 * (swapping blocks, backward along one path): what the experiments measure. */
#include <math.h>
#include <stdlib.h>

#include "core/error.h"
#include "kernels/kernels.h"
#include "nn/net.h"

static int block_index(const rn_net *net, int block)
{
    if (block < 0 || block >= net->n_blocks)
        return rn_fail(RN_ERR_ARG, "block %d out of range (the network has %d)", block,
                       net->n_blocks);
    return RN_OK;
}

static int same_shape(rn_shape3 a, rn_shape3 b) { return a.c == b.c && a.h == b.h && a.w == b.w; }

int rn_net_probe_block(const rn_net *net, int block, rn_block_probe *out)
{
    int st = block_index(net, block);
    if (st) return st;
    if (!net->run.forward_done) return rn_fail(RN_ERR_ARG, "no forward pass to probe");
    if (net->frozen)
        return rn_fail(RN_ERR_ARG, "a frozen network's activations are channel-blocked: probe it "
                                   "unfrozen (rn_net_freeze(net, 0))");
    if (net->blocked)
        return rn_fail(RN_ERR_ARG, "this network's activations are channel-blocked: probe it "
                                   "planar (rn_net_set_blocked(net, 0))");
    const rn_block *b = net->blocks[block];
    const size_t in_len = rn_shape3_size(b->in) * (size_t)net->run.n;
    const size_t out_len = rn_shape3_size(b->out) * (size_t)net->run.n;
    const float *x = b->branch.buf[0];
    const float *y = rn_block_output(b);
    out->count = in_len;
    out->input_sq = rn_sum_sq(x, in_len);
    if (b->dropped) out->branch_sq = 0.0f;
    else {
        /* the branch as merged: scale^2 ||f||^2 (1 in training and without stochastic depth) */
        const double scale = b->kind == RN_BLOCK_PLAIN ? 1.0 : b->scale;
        out->branch_sq = scale * scale * rn_sum_sq(rn_seq_output(&b->branch), out_len);
    }
    out->change_sq = same_shape(b->in, b->out) ? rn_diff_sum_sq(y, x, in_len) : NAN;
    out->gate_mean = NAN;
    if (b->kind == RN_BLOCK_HIGHWAY) {
        double sum = 0.0;
        for (size_t i = 0; i < out_len; i++) sum += b->gate_t[i];
        out->gate_mean = sum / (double)out_len;
    }
    return RN_OK;
}

int rn_net_block_gates(const rn_net *net, int block, const float **t, size_t *count)
{
    int st = block_index(net, block);
    if (st) return st;
    const rn_block *b = net->blocks[block];
    if (b->kind != RN_BLOCK_HIGHWAY) return rn_fail(RN_ERR_ARG, "%s has no gates", b->name);
    if (!net->run.forward_done) return rn_fail(RN_ERR_ARG, "no forward pass to read gates from");
    if (net->frozen || net->blocked)
        return rn_fail(RN_ERR_ARG, "this network's gates are channel-blocked: read them from a "
                                   "planar one (rn_net_freeze(net, 0), rn_net_set_blocked(net, 0))");
    *t = b->gate_t;
    *count = rn_shape3_size(b->out) * (size_t)net->run.n;
    return RN_OK;
}

int rn_net_set_block_grad_way(rn_net *net, int block, rn_grad_way way)
{
    int st = block_index(net, block);
    if (st) return st;
    rn_block *b = net->blocks[block];
    if (way != RN_GRAD_BOTH && way != RN_GRAD_BRANCH_ONLY && way != RN_GRAD_SHORTCUT_ONLY)
        return rn_fail(RN_ERR_ARG, "%s: no gradient way %d", b->name, (int)way);
    if (b->kind == RN_BLOCK_PLAIN && way == RN_GRAD_SHORTCUT_ONLY)
        return rn_fail(RN_ERR_ARG, "%s is a plain block: it has no shortcut for the gradient", b->name);
    b->grad_way = (int)way;
    return RN_OK;
}

int rn_net_record_input_grads(rn_net *net, int on)
{
    if (!on) {
        free(net->run.input_grad_sq);
        net->run.input_grad_sq = NULL;
        return RN_OK;
    }
    if (net->run.input_grad_sq) return RN_OK;
    net->run.input_grad_sq = calloc((size_t)net->n_blocks + 1, sizeof(double));
    if (!net->run.input_grad_sq) return rn_fail(RN_ERR_NOMEM, "out of memory");
    for (int i = 0; i <= net->n_blocks; i++) net->run.input_grad_sq[i] = NAN;
    return RN_OK;
}

int rn_net_input_grad_sq(const rn_net *net, int block, double *sq)
{
    if (!net->run.input_grad_sq)
        return rn_fail(RN_ERR_ARG, "input gradients are not recorded (rn_net_record_input_grads)");
    if (block < 0 || block > net->n_blocks)
        return rn_fail(RN_ERR_ARG, "block %d out of range (0..%d)", block, net->n_blocks);
    *sq = net->run.input_grad_sq[block];
    return RN_OK;
}

int rn_net_swap_blocks(rn_net *net, int a, int b)
{
    int st = block_index(net, a);
    if (!st) st = block_index(net, b);
    if (st) return st;
    rn_block *p = net->blocks[a], *q = net->blocks[b];
    if (!same_shape(p->in, q->in) || !same_shape(p->out, q->out) || !same_shape(p->in, p->out))
        return rn_fail(RN_ERR_ARG, "%s and %s cannot change places: both must keep the shape of "
                                   "their input, and the same one",
                       p->name, q->name);
    net->blocks[a] = q;
    net->blocks[b] = p;
    net->run.forward_done = 0;
    return RN_OK;
}
