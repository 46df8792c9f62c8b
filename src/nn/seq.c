/* Chains of layer operations (conv, BN, ReLU, max pool): building from a pattern, running
 * forward, and back-propagating over any sub-range. Block orderings are patterns, not code. */
#include <string.h>

#include "core/error.h"
#include "kernels/kernels.h"
#include "nn/net.h"
#ifdef _OPENMP
#include <omp.h>
#endif

static const float bn_eps = RN_BN_EPS;
static const float bn_momentum = 0.1f;

int rn_seq_build(rn_net *net, rn_seq *seq, const char *pattern, rn_conv *convs, int *next_conv,
                 rn_bn *bns, int *next_bn, const char *prefix, rn_shape3 *shape)
{
    for (const char *p = pattern; *p; p++) {
        if (*p == ' ') continue;
        if (seq->n == RN_SEQ_MAX) return rn_fail(RN_ERR_ARG, "%s: too many operations", prefix);
        rn_op *op = &seq->ops[seq->n];
        memset(op, 0, sizeof *op);
        op->in = *shape;
        op->out = *shape;
        switch (*p) {
        case 'C':
            op->kind = RN_OP_CONV;
            op->conv = &convs[(*next_conv)++];
            if (op->conv->in.c != shape->c || op->conv->in.h != shape->h ||
                op->conv->in.w != shape->w)
                return rn_fail(RN_ERR_ARG, "%s: convolution built for another input shape", prefix);
            op->out = op->conv->out;
            break;
        case 'B':
            op->kind = RN_OP_BN;
            op->bn = &bns[(*next_bn)++];
            if (op->bn->c != shape->c)
                return rn_fail(RN_ERR_ARG, "%s: batch norm built for %d channels, not %d", prefix,
                               op->bn->c, shape->c);
            break;
        case 'R': op->kind = RN_OP_RELU; break;
        case 'M':
            op->kind = RN_OP_MAXPOOL;
            op->out.h = (shape->h + 2 - 3) / 2 + 1;
            op->out.w = (shape->w + 2 - 3) / 2 + 1;
            if (op->out.h < 1 || op->out.w < 1)
                return rn_fail(RN_ERR_ARG, "%s: input too small for max pooling", prefix);
            break;
        default: return rn_fail(RN_ERR_ARG, "%s: unknown operation '%c'", prefix, *p);
        }
        int st = rn_net_add_act(net, &seq->buf[seq->n + 1], op->out);
        if (st) return st;
        *shape = op->out;
        seq->n++;
    }
    return RN_OK;
}

rn_conv_shape rn_conv_shape_of(const rn_conv *conv, int n, int threads)
{
    rn_conv_shape sh;
    rn_conv_shape_init(&sh, n, conv->in_c, conv->in.h, conv->in.w, conv->out_c, conv->k, conv->k,
                       conv->stride, conv->pad);
    sh.threads = threads;
    return sh;
}

int rn_net_threads(void)
{
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

static rn_conv_shape conv_shape(const rn_net *net, const rn_conv *conv)
{
    return rn_conv_shape_of(conv, net->run.n, net->run.work_threads);
}

void rn_conv_run_forward(rn_net *net, rn_conv *conv, float *y, const float *x)
{
    if (net->blocked) {
        rn_conv_run_forward_blocked(net, conv, y, x);
        return;
    }
    rn_conv_shape sh = conv_shape(net, conv);
    rn_conv_forward(y, x, conv->w, conv->has_bias ? conv->b : NULL, &sh, net->run.work);
}

void rn_conv_run_backward(rn_net *net, rn_conv *conv, float *dx, const float *dy, const float *x)
{
    if (net->blocked) {
        rn_conv_run_backward_blocked(net, conv, dx, dy, x);
        return;
    }
    rn_conv_shape sh = conv_shape(net, conv);
    rn_conv_backward(dx, conv->dw, conv->has_bias ? conv->db : NULL, dy, x, conv->w, &sh,
                     net->run.work);
}

/* Training on blocks, add (a residual addition after the BN, before the ReLU) or not. */
static void bn_forward_train_blocked(rn_net *net, rn_bn *bn, float *y, const float *x,
                                     const float *add, rn_shape3 s, int relu)
{
    const int count = rn_blk_bn_add_forward_train(y, bn->batch_mean, bn->batch_var, bn->batch_scale,
                                                  x, add, bn->w, bn->b, net->run.n, s.c, s.h * s.w,
                                                  bn_eps, relu, (double *)net->run.work,
                                                  net->run.bn_allsum);
    bn->used_batch_stats = 1;
    rn_bn_update_running(bn->run_mean, bn->run_var, bn->batch_mean, bn->batch_var, s.c, count,
                         bn_momentum);
    (*bn->batches_tracked)++;
}

/* relu: the BN is followed by a ReLU, computed in the same pass (y is then its output). */
static void bn_forward(rn_net *net, rn_bn *bn, float *y, const float *x, rn_shape3 s, int relu)
{
    int hw = s.h * s.w;
    if (net->frozen) { /* a batch norm no convolution took in: on the blocks */
        bn->used_batch_stats = 0;
        rn_blk_bn_eval(y, x, bn->w, bn->b, bn->run_mean, bn->run_var, bn_eps, relu, net->run.n,
                       s.c, hw);
        return;
    }
    bn->used_batch_stats = net->run.training;
    if (net->blocked) { /* training on blocks */
        if (net->run.training) {
            bn_forward_train_blocked(net, bn, y, x, NULL, s, relu);
        } else {
            rn_blk_bn_eval(y, x, bn->w, bn->b, bn->run_mean, bn->run_var, bn_eps, relu, net->run.n,
                           s.c, hw);
        }
        return;
    }
    if (net->run.training) {
        int count = net->run.n * hw;
        if (net->run.bn_allsum) /* data-parallel: the statistics of every process's slice */
            count = rn_bn_forward_train_allsum(y, bn->batch_mean, bn->batch_var, x, bn->w, bn->b,
                                               net->run.n, s.c, hw, bn_eps, relu,
                                               net->run.bn_allsum);
        else
            (relu ? rn_bn_relu_forward_train : rn_bn_forward_train)(
                y, bn->batch_mean, bn->batch_var, x, bn->w, bn->b, net->run.n, s.c, hw, bn_eps);
        rn_bn_update_running(bn->run_mean, bn->run_var, bn->batch_mean, bn->batch_var, s.c,
                             count, bn_momentum);
        (*bn->batches_tracked)++;
    } else {
        (relu ? rn_bn_relu_forward_eval : rn_bn_forward_eval)(
            y, x, bn->w, bn->b, bn->run_mean, bn->run_var, net->run.n, s.c, hw, bn_eps);
    }
}

void rn_bn_run_forward(rn_net *net, rn_bn *bn, float *y, const float *x, rn_shape3 s)
{
    bn_forward(net, bn, y, x, s, 0);
}

int rn_bn_adds(const rn_net *net)
{
    return net->blocked && net->run.training && !net->frozen;
}

void rn_bn_run_forward_add_relu(rn_net *net, rn_bn *bn, float *y, const float *x, const float *add,
                                rn_shape3 s)
{
    bn_forward_train_blocked(net, bn, y, x, add, s, 1);
}

/* relu_y: the output of a ReLU fused after the BN (dy is then with respect to it), or NULL. */
static void bn_backward(rn_net *net, rn_bn *bn, float *dx, const float *dy, const float *relu_y,
                        const float *x, rn_shape3 s)
{
    int hw = s.h * s.w;
    if (net->blocked) {
        const int train = bn->used_batch_stats;
        /* after a training forward the ReLU's mask comes from x and the scales it normalised
         * with, not from reading its output (a BN + ReLU here never had a residual addition) */
        const int from_x = train && relu_y;
        rn_blk_bn_backward(dx, bn->dw, bn->db, dy, relu_y, from_x ? bn->batch_scale : NULL,
                           from_x ? bn->b : NULL, x, bn->w,
                           train ? bn->batch_mean : bn->run_mean, train ? bn->batch_var : bn->run_var,
                           net->run.n, s.c, hw, bn_eps, train, (double *)net->run.work,
                           net->run.bn_allsum);
        return;
    }
    if (bn->used_batch_stats && net->run.bn_allsum) {
        rn_bn_backward_train_allsum(dx, bn->dw, bn->db, dy, relu_y, x, bn->w, bn->batch_mean,
                                    bn->batch_var, net->run.n, s.c, hw, bn_eps, net->run.bn_allsum);
    } else if (bn->used_batch_stats) {
        if (relu_y)
            rn_bn_relu_backward_train(dx, bn->dw, bn->db, dy, relu_y, x, bn->w, bn->batch_mean,
                                      bn->batch_var, net->run.n, s.c, hw, bn_eps);
        else
            rn_bn_backward_train(dx, bn->dw, bn->db, dy, x, bn->w, bn->batch_mean,
                                 bn->batch_var, net->run.n, s.c, hw, bn_eps);
    } else {
        if (relu_y)
            rn_bn_relu_backward_eval(dx, bn->dw, bn->db, dy, relu_y, x, bn->w, bn->run_mean,
                                     bn->run_var, net->run.n, s.c, hw, bn_eps);
        else
            rn_bn_backward_eval(dx, bn->dw, bn->db, dy, x, bn->w, bn->run_mean, bn->run_var,
                                net->run.n, s.c, hw, bn_eps);
    }
}

void rn_bn_run_backward(rn_net *net, rn_bn *bn, float *dx, const float *dy, const float *x,
                        rn_shape3 s)
{
    bn_backward(net, bn, dx, dy, NULL, x, s);
}

/* Op i is a BN followed by a ReLU, both in [lo, hi): they run as one kernel, and the BN's own
 * output slot (buf[i + 1]) is never written. */
static int fused_bn_relu(const rn_seq *seq, int i, int lo, int hi)
{
    return i >= lo && i + 1 < hi && seq->ops[i].kind == RN_OP_BN &&
           seq->ops[i + 1].kind == RN_OP_RELU;
}

/* A frozen network's convolution at op i, with the BN folded into it and a ReLU after them
 * when both are in [i, to): the number of ops it computed. */
static int frozen_conv(rn_net *net, rn_seq *seq, int i, int to)
{
    rn_conv *conv = seq->ops[i].conv;
    int last = i;
    if (conv->fold_bn) last++; /* within the range: freezing folds none across a range's end */
    const int relu = last + 1 < to && seq->ops[last + 1].kind == RN_OP_RELU;
    last += relu;
    rn_conv_run_frozen(net, conv, seq->buf[last + 1], seq->buf[i], relu);
    return last - i + 1;
}

void rn_seq_forward(rn_net *net, rn_seq *seq, const float *x, int from, int to)
{
    if (from == 0) seq->buf[0] = (float *)x;
    for (int i = from; i < to; i++) {
        rn_op *op = &seq->ops[i];
        const float *in = seq->buf[i];
        float *out = seq->buf[i + 1];
        size_t len = rn_net_act_len(net, op->out);
        if (net->frozen && op->kind == RN_OP_CONV) {
            i += frozen_conv(net, seq, i, to) - 1;
            continue;
        }
        if (fused_bn_relu(seq, i, from, to)) {
            bn_forward(net, op->bn, seq->buf[i + 2], in, op->in, 1);
            i++;
            continue;
        }
        switch (op->kind) {
        case RN_OP_CONV: rn_conv_run_forward(net, op->conv, out, in); break;
        case RN_OP_BN: rn_bn_run_forward(net, op->bn, out, in, op->in); break;
        case RN_OP_RELU: rn_relu_forward(out, in, len); break;
        case RN_OP_MAXPOOL:
            (rn_net_layout(net) ? rn_blk_maxpool : rn_maxpool_forward)(out, in, net->run.n, op->in.c,
                                                                 op->in.h, op->in.w, 3, 2, 1,
                                                                 op->out.h, op->out.w);
            break;
        }
    }
}

const float *rn_seq_backward(rn_net *net, rn_seq *seq, const float *dy, int from, int to,
                             float *p, float *q, int need_dx)
{
    const float *cur = dy;
    for (int i = from - 1; i >= to; i--) {
        rn_op *op = &seq->ops[i];
        float *dx = (cur == p) ? q : p;
        const float *in = seq->buf[i];
        int want = need_dx || i > to;
        if (fused_bn_relu(seq, i - 1, to, from)) {
            want = need_dx || i - 1 > to;
            bn_backward(net, seq->ops[i - 1].bn, want ? dx : NULL, cur, seq->buf[i + 1],
                        seq->buf[i - 1], seq->ops[i - 1].in);
            cur = dx;
            i--;
            continue;
        }
        switch (op->kind) {
        case RN_OP_CONV: rn_conv_run_backward(net, op->conv, want ? dx : NULL, cur, in); break;
        case RN_OP_BN: rn_bn_run_backward(net, op->bn, want ? dx : NULL, cur, in, op->in); break;
        case RN_OP_RELU:
            if (want) rn_relu_backward(dx, cur, seq->buf[i + 1], rn_net_act_len(net, op->out));
            break;
        case RN_OP_MAXPOOL:
            if (want)
                (net->blocked ? rn_blk_maxpool_backward : rn_maxpool_backward)(
                    dx, cur, in, net->run.n, op->in.c, op->in.h, op->in.w, 3, 2, 1, op->out.h,
                    op->out.w);
            break;
        }
        cur = dx;
    }
    return cur;
}

uint64_t rn_conv_macs(const rn_conv *conv)
{
    return (uint64_t)conv->out_c * conv->in_c * conv->k * conv->k * conv->out.h * conv->out.w;
}

size_t rn_seq_params(const rn_seq *seq)
{
    size_t total = 0;
    for (int i = 0; i < seq->n; i++) {
        const rn_op *op = &seq->ops[i];
        if (op->kind == RN_OP_CONV)
            total += (size_t)op->conv->out_c * op->conv->in_c * op->conv->k * op->conv->k +
                     (op->conv->has_bias ? (size_t)op->conv->out_c : 0);
        if (op->kind == RN_OP_BN) total += 2 * (size_t)op->bn->c;
    }
    return total;
}

uint64_t rn_seq_macs(const rn_seq *seq)
{
    uint64_t total = 0;
    for (int i = 0; i < seq->n; i++)
        if (seq->ops[i].kind == RN_OP_CONV) total += rn_conv_macs(seq->ops[i].conv);
    return total;
}
