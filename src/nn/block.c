/* Blocks: a branch F, a shortcut, a merge (plain, residual, highway) and post ops.
 * The five orderings of He et al. 2016 are rows of a table of op patterns. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "kernels/kernels.h"
#include "nn/net.h"

/* C = conv, B = batch norm, R = ReLU. Indexed by rn_ordering. */
static const struct {
    const char *basic_branch, *bottleneck_branch, *post;
} orderings[5] = {
    [RN_ORDER_ORIGINAL] = {"CBRCB", "CBRCBRCB", "R"},
    [RN_ORDER_BN_AFTER_ADD] = {"CBRC", "CBRCBRC", "BR"},
    [RN_ORDER_RELU_BEFORE_ADD] = {"CBRCBR", "CBRCBRCBR", ""},
    [RN_ORDER_RELU_PREACT] = {"RCBRCB", "RCBRCBRCB", ""},
    [RN_ORDER_FULL_PREACT] = {"BRCBRC", "BRCBRCBRC", ""},
};

/* Channels of each BN in order of appearance, walking the same pattern. */
static void bn_channels(const char *branch, const char *post, const rn_conv *convs, int in_c,
                        int *chan, int *count)
{
    int c = in_c, nc = 0;
    *count = 0;
    for (const char *p = branch; *p; p++) {
        if (*p == 'C') c = convs[nc++].out_c;
        if (*p == 'B') chan[(*count)++] = c;
    }
    for (const char *p = post; *p; p++)
        if (*p == 'B') chan[(*count)++] = c;
}

static int build(rn_net *net, rn_block *b, const char *name, int stage, rn_shape3 in,
                 const rn_block_spec *spec);

/* The activations it registers are marked as this block's (rn_act_slot.block): in a frozen
 * network every block's inner activations share one arena, and the blocks' outputs take turns
 * in two buffers (rn_net_reserve_batch). */
int rn_block_build(rn_net *net, rn_block *b, const char *name, int stage, rn_shape3 in,
                   const rn_block_spec *spec)
{
    net->slot_block = net->n_blocks; /* the caller has counted this block in */
    const int st = build(net, b, name, stage, in, spec);
    net->slot_block = 0;
    return st;
}

static int build(rn_net *net, rn_block *b, const char *name, int stage, rn_shape3 in,
                 const rn_block_spec *spec)
{
    char pfx[96];
    int st;
    memset(b, 0, sizeof *b);
    snprintf(b->name, sizeof b->name, "%s", name);
    b->stage = stage;
    b->kind = spec->kind;
    b->bottleneck = spec->bottleneck;
    b->in = in;
    b->stride = spec->stride;
    b->survival = 1.0f;
    b->scale = 1.0f;
    if (spec->ordering < 0 || spec->ordering > 4)
        return rn_fail(RN_ERR_ARG, "%s: unknown block ordering %d", name, spec->ordering);

    /* Convolutions: basic 3x3 (stride) + 3x3; bottleneck 1x1 + 3x3 (stride) + 1x1. */
    if (spec->bottleneck) {
        rn_shape3 s = in;
        snprintf(pfx, sizeof pfx, "%s.conv1", name);
        st = rn_net_add_conv(net, &b->conv[0], pfx, in.c, spec->mid_c, 1, 1, 0, s);
        if (st) return st;
        s = b->conv[0].out;
        snprintf(pfx, sizeof pfx, "%s.conv2", name);
        st = rn_net_add_conv(net, &b->conv[1], pfx, spec->mid_c, spec->mid_c, 3, spec->stride, 0, s);
        if (st) return st;
        s = b->conv[1].out;
        snprintf(pfx, sizeof pfx, "%s.conv3", name);
        st = rn_net_add_conv(net, &b->conv[2], pfx, spec->mid_c, spec->out_c, 1, 1, 0, s);
        if (st) return st;
        b->n_conv = 3;
    } else {
        snprintf(pfx, sizeof pfx, "%s.conv1", name);
        st = rn_net_add_conv(net, &b->conv[0], pfx, in.c, spec->out_c, 3, spec->stride, 0, in);
        if (st) return st;
        snprintf(pfx, sizeof pfx, "%s.conv2", name);
        st = rn_net_add_conv(net, &b->conv[1], pfx, spec->out_c, spec->out_c, 3, 1, 0,
                             b->conv[0].out);
        if (st) return st;
        b->n_conv = 2;
    }
    b->out = b->conv[b->n_conv - 1].out;

    const char *branch = spec->bottleneck ? orderings[spec->ordering].bottleneck_branch
                                          : orderings[spec->ordering].basic_branch;
    const char *post = orderings[spec->ordering].post;
    int chan[4], nbn;
    bn_channels(branch, post, b->conv, in.c, chan, &nbn);
    for (int i = 0; i < nbn; i++) {
        snprintf(pfx, sizeof pfx, "%s.bn%d", name, i + 1);
        st = rn_net_add_bn(net, &b->bn[i], pfx, chan[i]);
        if (st) return st;
    }
    b->n_bn = nbn;

    int next_conv = 0, next_bn = 0;
    rn_shape3 shape = in;
    st = rn_seq_build(net, &b->branch, branch, b->conv, &next_conv, b->bn, &next_bn, name, &shape);
    if (st) return st;

    /* Shortcut. */
    int shape_changes = in.c != b->out.c || in.h != b->out.h || in.w != b->out.w;
    if (spec->kind == RN_BLOCK_PLAIN) b->sc = RN_SC_NONE;
    else if (spec->shortcut == RN_SHORTCUT_C) b->sc = RN_SC_PROJECTION;
    else if (!shape_changes) b->sc = RN_SC_IDENTITY;
    else if (spec->shortcut == RN_SHORTCUT_B) b->sc = RN_SC_PROJECTION;
    else b->sc = RN_SC_PAD;
    if (b->sc == RN_SC_PAD && (b->out.c < in.c || b->out.h != (in.h + spec->stride - 1) / spec->stride ||
                               b->out.w != (in.w + spec->stride - 1) / spec->stride))
        return rn_fail(RN_ERR_ARG, "%s: option A cannot map %dx%dx%d to %dx%dx%d", name, in.c,
                       in.h, in.w, b->out.c, b->out.h, b->out.w);
    if (b->sc == RN_SC_PROJECTION) {
        int preact = spec->ordering == RN_ORDER_RELU_PREACT || spec->ordering == RN_ORDER_FULL_PREACT;
        /* Under full pre-activation the projection shares the branch's leading BN-ReLU. */
        b->tap = spec->ordering == RN_ORDER_FULL_PREACT ? 2 : 0;
        rn_shape3 tap_shape = b->branch.ops[b->tap].in;
        snprintf(pfx, sizeof pfx, "%s.downsample.0", name);
        st = rn_net_add_conv(net, &b->proj, pfx, in.c, b->out.c, 1, spec->stride, 0, tap_shape);
        if (st) return st;
        if (b->proj.out.h != b->out.h || b->proj.out.w != b->out.w)
            return rn_fail(RN_ERR_ARG, "%s: projection output does not match the branch", name);
        b->proj_has_bn = !preact;
        if (b->proj_has_bn) {
            snprintf(pfx, sizeof pfx, "%s.downsample.1", name);
            st = rn_net_add_bn(net, &b->proj_bn, pfx, b->out.c);
            if (st) return st;
            st = rn_net_add_act(net, &b->proj_mid, b->out);
            if (st) return st;
        }
    }
    if (b->sc == RN_SC_PAD || b->sc == RN_SC_PROJECTION) {
        st = rn_net_add_act(net, &b->sc_out, b->out);
        if (st) return st;
    }
    if (spec->kind == RN_BLOCK_HIGHWAY) {
        snprintf(pfx, sizeof pfx, "%s.gate", name);
        st = rn_net_add_conv(net, &b->gate, pfx, b->out.c, b->out.c, 1, 1, 1, b->out);
        if (st) return st;
        st = rn_net_add_act(net, &b->gate_t, b->out);
        if (st) return st;
    }
    st = rn_net_add_act(net, &b->merged, b->out);
    if (st) return st;
    shape = b->out;
    return rn_seq_build(net, &b->post, post, b->conv, &next_conv, b->bn, &next_bn, name, &shape);
}

float **rn_block_output_bind(rn_block *b)
{
    return b->post.n ? &b->post.buf[b->post.n] : &b->merged;
}

const float *rn_block_output(const rn_block *b)
{
    return b->post.n ? b->post.buf[b->post.n] : b->merged;
}

/* A frozen block's branch ending in a convolution (its BN folded in, if any): that
 * convolution's op, or -1. */
static int frozen_last_conv(const rn_net *net, const rn_block *b)
{
    const int nb = b->branch.n;
    if (!net->frozen || nb <= b->tap) return -1;
    const rn_op *last = &b->branch.ops[nb - 1];
    if (last->kind == RN_OP_CONV) return nb - 1;
    if (last->kind == RN_OP_BN && nb - 2 >= b->tap && b->branch.ops[nb - 2].kind == RN_OP_CONV &&
        b->branch.ops[nb - 2].conv->fold_bn == last->bn)
        return nb - 2;
    return -1;
}

/* Each output value then reads its own shortcut value, and nothing else reads the input after
 * the block's first convolution: the identity shortcut from the block's input itself (tap 0),
 * one ReLU after the addition, in the last convolution's pass (rn_block_forward's ci). The
 * other ways a frozen block merges (dropped, scaled by its survival) go value by value too. */
int rn_block_in_place(const rn_net *net, const rn_block *b)
{
    return b->kind == RN_BLOCK_RESIDUAL && b->sc == RN_SC_IDENTITY && b->tap == 0 &&
           b->post.n == 1 && b->post.ops[0].kind == RN_OP_RELU && frozen_last_conv(net, b) >= 0;
}

void rn_block_forward(rn_net *net, rn_block *b, const float *x)
{
    size_t len = rn_net_act_len(net, b->out);
    b->dropped = b->deleted;
    if (net->run.training && !b->dropped && b->survival < 1.0f)
        b->dropped = rn_rng_uniform(&net->rng) >= b->survival;
    /* At test time a stochastic-depth branch is scaled by its survival probability. */
    b->scale = b->dropped ? 0.0f : (net->run.training ? 1.0f : b->survival);

    /* A ReLU right after the addition is computed in the addition's pass: the sum itself (m)
     * is then never written, and nothing reads it (the ReLU's backward reads its output). */
    const int add_relu = b->kind == RN_BLOCK_RESIDUAL && b->post.n > 0 &&
                         b->post.ops[0].kind == RN_OP_RELU;
    /* And where the branch ends in a BN, the addition is in the BN's pass when it can be
     * (rn_bn_adds): the branch's output is then never written either (its backward reads the
     * BN's input; probes read planar networks, where this does not run). */
    const int nb = b->branch.n;
    const rn_op *last = nb > b->tap ? &b->branch.ops[nb - 1] : NULL;
    const int bn_add = add_relu && !b->dropped && b->scale == 1.0f && last &&
                       last->kind == RN_OP_BN && b->sc != RN_SC_NONE && rn_bn_adds(net);
    /* In a frozen network the addition and the ReLU are in the last convolution's own pass
     * (rn_conv_run_frozen_add): a separate pass over the sum took 5% of resnet50's inference. */
    const int ci = add_relu && !b->dropped && b->scale == 1.0f && b->sc != RN_SC_NONE
                       ? frozen_last_conv(net, b)
                       : -1;
    rn_seq_forward(net, &b->branch, x, 0, b->dropped ? b->tap : ci >= 0 ? ci : bn_add ? nb - 1 : nb);
    const float *f = rn_seq_output(&b->branch);
    const float *tap = b->branch.buf[b->tap];

    switch (b->sc) {
    case RN_SC_NONE: b->s = NULL; break;
    case RN_SC_IDENTITY: b->s = tap; break;
    case RN_SC_PAD:
        (rn_net_layout(net) ? rn_blk_shortcut_pad : rn_shortcut_pad_forward)(
            b->sc_out, tap, net->run.n, b->in.c, b->in.h, b->in.w, b->out.c, b->stride);
        b->s = b->sc_out;
        break;
    case RN_SC_PROJECTION:
        if (net->frozen) {
            rn_conv_run_frozen(net, &b->proj, b->sc_out, tap, 0);
        } else if (b->proj_has_bn) {
            rn_conv_run_forward(net, &b->proj, b->proj_mid, tap);
            rn_bn_run_forward(net, &b->proj_bn, b->sc_out, b->proj_mid, b->out);
        } else {
            rn_conv_run_forward(net, &b->proj, b->sc_out, tap);
        }
        b->s = b->sc_out;
        break;
    }

    float *m = b->merged;
    if (ci >= 0 || bn_add) { /* the sum and its ReLU written straight into the ReLU's slot */
        if (ci >= 0)
            rn_conv_run_frozen_add(net, b->branch.ops[ci].conv, b->post.buf[1], b->branch.buf[ci],
                                   b->s, 1);
        else
            rn_bn_run_forward_add_relu(net, last->bn, b->post.buf[1], b->branch.buf[nb - 1], b->s,
                                       last->in);
        b->post.buf[0] = m;
        rn_seq_forward(net, &b->post, m, 1, b->post.n);
        return;
    }
    if (b->kind == RN_BLOCK_PLAIN && b->dropped) {
        /* a deleted plain block (lesion): its input goes on unchanged */
        memcpy(m, x, len * sizeof(float));
        b->post.buf[0] = m;
        rn_seq_forward(net, &b->post, m, 0, b->post.n);
        return;
    }
    if (b->kind == RN_BLOCK_PLAIN) {
        memcpy(m, f, len * sizeof(float));
    } else if (add_relu) {
        if (b->dropped) rn_relu_forward(b->post.buf[1], b->s, len);
        else rn_add_scaled_relu(b->post.buf[1], b->s, f, b->scale, len);
    } else if (b->kind == RN_BLOCK_RESIDUAL) {
        if (b->dropped) memcpy(m, b->s, len * sizeof(float));
        else rn_add_scaled(m, b->s, f, b->scale, len);
    } else { /* highway: m = T f + (1 - T) s, T = sigmoid(gate(s)) */
        if (net->frozen) rn_conv_run_frozen(net, &b->gate, b->gate_t, b->s, 0);
        else rn_conv_run_forward(net, &b->gate, b->gate_t, b->s);
        rn_sigmoid_forward(b->gate_t, b->gate_t, len);
        for (size_t i = 0; i < len; i++) {
            float t = b->gate_t[i], fi = b->dropped ? 0.0f : f[i];
            m[i] = t * fi + (1.0f - t) * b->s[i];
        }
    }
    b->post.buf[0] = m;
    rn_seq_forward(net, &b->post, m, add_relu, b->post.n);
}

/* Gradient w.r.t. the shortcut's input (the tap), from ds; written to out. An identity
 * shortcut's is ds itself, which rn_block_backward reads where it lies. */
static void shortcut_backward(rn_net *net, rn_block *b, const float *ds, float *out, float *tmp)
{
    const float *tap = b->branch.buf[b->tap];
    switch (b->sc) {
    case RN_SC_NONE:
    case RN_SC_IDENTITY: break;
    case RN_SC_PAD:
        (net->blocked ? rn_blk_shortcut_pad_backward : rn_shortcut_pad_backward)(
            out, ds, net->run.n, b->in.c, b->in.h, b->in.w, b->out.c, b->stride);
        break;
    case RN_SC_PROJECTION:
        if (b->proj_has_bn) {
            rn_bn_run_backward(net, &b->proj_bn, tmp, ds, b->proj_mid, b->out);
            rn_conv_run_backward(net, &b->proj, out, tmp, tap);
        } else {
            rn_conv_run_backward(net, &b->proj, out, ds, tap);
        }
        break;
    }
}

int rn_block_ends_in_relu(const rn_block *b)
{
    return b->post.n > 0 && b->post.ops[b->post.n - 1].kind == RN_OP_RELU;
}

int rn_block_backward(rn_net *net, rn_block *b, const float *dy, int dy_masked, float *dx,
                      int mask_input)
{
    rn_grad_buffers *g = &net->run.grad;
    size_t len = rn_net_act_len(net, b->out);
    const float *dm = rn_seq_backward(net, &b->post, dy, b->post.n - (dy_masked ? 1 : 0), 0,
                                      g->seq[0], g->seq[1], 1);
    const float *df = NULL;
    const float *ds = NULL; /* the shortcut's output gradient */
    const int through_branch = !b->dropped && b->grad_way != RN_GRAD_SHORTCUT_ONLY;
    const int through_shortcut = b->sc != RN_SC_NONE && b->grad_way != RN_GRAD_BRANCH_ONLY;

    if (b->kind == RN_BLOCK_PLAIN && b->dropped) {
        rn_copy(dx, dm, len);
        return 0;
    }
    if (b->kind == RN_BLOCK_PLAIN) {
        df = dm;
    } else if (b->kind == RN_BLOCK_RESIDUAL) {
        /* the shortcut's gradient is dm itself, read below before the branch can overwrite it */
        ds = dm;
        if (through_branch) {
            if (b->scale != 1.0f) {
                for (size_t i = 0; i < len; i++) g->branch[i] = b->scale * dm[i];
                df = g->branch;
            } else {
                df = dm;
            }
        }
    } else {
        /* dT = dm (f - s), d gate_pre = dT T (1 - T), ds = dm (1 - T) + gate^T d gate_pre */
        const float *f = rn_seq_output(&b->branch);
        float *dpre = g->temp, *dfh = g->branch, *dsh = g->shortcut;
        for (size_t i = 0; i < len; i++) {
            float t = b->gate_t[i], fi = b->dropped ? 0.0f : f[i];
            dpre[i] = dm[i] * (fi - b->s[i]) * t * (1.0f - t);
            dfh[i] = dm[i] * t;
            dsh[i] = dm[i] * (1.0f - t);
        }
        rn_conv_run_backward(net, &b->gate, g->tap, dpre, b->s);
        rn_add_scaled(dsh, dsh, g->tap, 1.0f, len);
        ds = dsh;
        if (through_branch) df = dfh;
    }

    /* Shortcut first: the branch's ping-pong may overwrite dm. An identity shortcut's gradient
     * is ds itself: the ping-pong then takes the two of g->seq and g->tap that ds is not in,
     * rather than ds being copied out of its way (a pass over the block's output per block). */
    float *p = g->seq[0], *q = g->seq[1];
    const float *dtap = g->tap;
    size_t tap_len = rn_net_act_len(net, b->branch.ops[b->tap].in);
    if (through_shortcut && b->sc == RN_SC_IDENTITY) {
        dtap = ds;
        if (ds == p) p = g->tap;
        else if (ds == q) q = g->tap;
    } else if (through_shortcut) {
        shortcut_backward(net, b, ds, g->tap, g->temp);
    } else if (!df) {
        memset(g->tap, 0, tap_len * sizeof(float)); /* a dropped block, branch only: no way */
    }

    const float *gtap = dtap;
    if (df) {
        /* The branch has ops after the tap, so its gradient lands in p or q. */
        float *gb = (float *)rn_seq_backward(net, &b->branch, df, b->branch.n, b->tap, p, q, 1);
        if (through_shortcut && b->tap == 0) {
            /* the tap is the block's input: the sum is dx, no copy after it, and where asked
             * the gradient of the ReLU whose output the input is (a pass fewer) */
            if (mask_input) {
                rn_add_relu_backward(dx, gb, dtap, b->branch.buf[0], tap_len);
                return 1;
            }
            rn_add_scaled(dx, gb, dtap, 1.0f, tap_len);
            return 0;
        }
        if (through_shortcut) rn_add_scaled(gb, gb, dtap, 1.0f, tap_len);
        gtap = gb;
    }
    const float *gx = rn_seq_backward(net, &b->branch, gtap, b->tap, 0, p, q, 1);
    rn_copy(dx, gx, rn_net_act_len(net, b->in));
    return 0;
}

size_t rn_block_params(const rn_block *b)
{
    size_t total = rn_seq_params(&b->branch) + rn_seq_params(&b->post);
    if (b->sc == RN_SC_PROJECTION)
        total += (size_t)b->proj.out_c * b->proj.in_c + (b->proj_has_bn ? 2 * (size_t)b->out.c : 0);
    if (b->kind == RN_BLOCK_HIGHWAY) total += (size_t)b->out.c * b->out.c + b->out.c;
    /* A post-op BN also appears in the block's BN list only once: counted by the post seq. */
    return total;
}

uint64_t rn_block_macs(const rn_block *b)
{
    uint64_t total = rn_seq_macs(&b->branch);
    if (b->sc == RN_SC_PROJECTION) total += rn_conv_macs(&b->proj);
    if (b->kind == RN_BLOCK_HIGHWAY) total += rn_conv_macs(&b->gate);
    return total;
}
