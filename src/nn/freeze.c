/* Frozen networks, for inference: every batch norm that follows a convolution folded into that
 * convolution's weights and bias, the weights packed once for the convolution kernels instead
 * of on every call (rn_net_freeze in resnet.h), and the activations in the channel-blocked
 * layout (kernels.h) from the input's conversion to the pooled features: there the kernels
 * keep the FMA units fed from registers (docs/performance.md). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "core/error.h"
#include "kernels/kernels.h"
#include "nn/net.h"

static void unfreeze_conv(rn_conv *conv)
{
    free(conv->fold_scale);
    free(conv->fold_b);
    free(conv->packed);
    conv->fold_scale = conv->fold_b = conv->packed = NULL;
    conv->fold_bn = NULL;
    conv->blk_wino = conv->blk_planar_in = 0;
}

/* The BN right after each convolution of seq, wherever there is one, except across op cut:
 * a dropped block's forward stops at its tap, and a folded convolution cannot leave its BN
 * out (its packed weights hold it). */
static void find_bns(rn_seq *seq, int cut)
{
    for (int i = 0; i + 1 < seq->n; i++)
        if (seq->ops[i].kind == RN_OP_CONV && seq->ops[i + 1].kind == RN_OP_BN && i + 1 != cut)
            seq->ops[i].conv->fold_bn = seq->ops[i + 1].bn;
}

/* The shape the frozen kernels run: Winograd's 2x2 tiles where 4x4 ones do not pay for an
 * image (rn_convb_wino_inference_tile). */
static rn_conv_shape frozen_shape(const rn_conv *conv, int n, int threads)
{
    rn_conv_shape sh = rn_conv_shape_of(conv, n, threads);
    if (conv->blk_wino == 2) sh.algo = RN_CONV_WINOGRAD_2X2;
    return sh;
}

/* w' = w * s and b' = (b - mean) * s + beta per output channel, s = gamma / sqrt(var + eps):
 * the evaluation-mode BN of the convolution's output (s and b' computed in double). The
 * scaled weights themselves exist only packed. */
static int fold_conv(rn_conv *conv, int planar_in)
{
    const int k = conv->out_c;
    const rn_bn *bn = conv->fold_bn;
    rn_conv_shape sh = rn_conv_shape_of(conv, 1, 1);
    const int tile = planar_in ? 0 : rn_convb_wino_inference_tile(&sh);
    conv->blk_wino = tile;
    sh = frozen_shape(conv, 1, 1);
    const int wino = tile != 0;
    if (!conv->fold_b) { /* a frozen network folded again keeps its arrays */
        conv->fold_scale = bn ? malloc((size_t)k * sizeof(float)) : NULL;
        conv->fold_b = malloc((size_t)k * sizeof(float));
        conv->packed = rn_alloc_lines(wino ? rn_convb_wino_packed_floats(&sh) : rn_convb_packed_floats(&sh),
                                      sizeof(float));
        if ((bn && !conv->fold_scale) || !conv->fold_b || !conv->packed)
            return rn_fail(RN_ERR_NOMEM, "out of memory freezing the network");
    }
    conv->blk_planar_in = planar_in;
    for (int kk = 0; kk < k; kk++) {
        const double b = conv->has_bias ? conv->b[kk] : 0.0;
        if (!bn) {
            conv->fold_b[kk] = (float)b;
            continue;
        }
        const double s = bn->w[kk] / sqrt((double)bn->run_var[kk] + (double)RN_BN_EPS);
        conv->fold_scale[kk] = (float)s;
        conv->fold_b[kk] = (float)((b - bn->run_mean[kk]) * s + bn->b[kk]);
    }
    (wino ? rn_convb_wino_pack : rn_convb_pack)(conv->packed, conv->w, conv->fold_scale, conv->fold_b, &sh);
    return RN_OK;
}

int rn_net_freeze(rn_net *net, int frozen)
{
    /* Folding a frozen network again (rn_net_load's new weights) reuses its arrays, so it
     * allocates nothing and cannot fail after the weights have changed. */
    if (!(frozen && net->frozen)) {
        for (int i = 0; i < net->n_convs; i++) unfreeze_conv(net->convs[i]);
        free(net->fc.wt);
        net->fc.wt = NULL;
        net->frozen = 0;
        net->stem_conv.blk_planar_in = net->blocked; /* training on blocks, if set, again */
    }
    if (!frozen) return RN_OK;
    find_bns(&net->stem, -1);
    find_bns(&net->head, -1);
    for (int i = 0; i < net->n_blocks; i++) {
        rn_block *b = net->blocks[i];
        find_bns(&b->branch, b->tap);
        find_bns(&b->post, -1);
        if (b->sc == RN_SC_PROJECTION && b->proj_has_bn) b->proj.fold_bn = &b->proj_bn;
    }
    for (int i = 0; i < net->n_convs; i++) {
        rn_conv *c = net->convs[i];
        /* the first convolution reads the planar images themselves */
        int st = fold_conv(c, c == &net->stem_conv);
        if (st) {
            rn_net_freeze(net, 0);
            return st;
        }
    }
    if (net->fc.out_dim) {
        const int d = net->fc.in_dim, k = net->fc.out_dim;
        if (!net->fc.wt) net->fc.wt = malloc((size_t)d * k * sizeof(float));
        if (!net->fc.wt) {
            rn_net_freeze(net, 0);
            return rn_fail(RN_ERR_NOMEM, "out of memory freezing the network");
        }
        for (int j = 0; j < k; j++)
            for (int p = 0; p < d; p++) net->fc.wt[(size_t)p * k + j] = net->fc.w[(size_t)j * d + p];
    }
    net->frozen = 1;
    net->run.forward_done = 0;
    return RN_OK;
}

int rn_net_frozen(const rn_net *net) { return net->frozen; }

size_t rn_conv_frozen_work(const rn_conv *conv, int n, int threads)
{
    rn_conv_shape sh = frozen_shape(conv, n, threads);
    return conv->blk_wino ? rn_convb_wino_workspace(&sh) : rn_convb_workspace(&sh);
}

static void profiled(const rn_net *net, rn_conv *conv, double t0)
{
    if (!net->profile) return;
    conv->prof_s += rn_clock_s() - t0;
    conv->prof_calls++;
}

void rn_conv_run_frozen(rn_net *net, rn_conv *conv, float *y, const float *x, int relu)
{
    const double t0 = net->profile ? rn_clock_s() : 0.0;
    rn_conv_shape sh = frozen_shape(conv, net->run.n, net->run.work_threads);
    if (conv->blk_planar_in) rn_convb_forward_planar_in(y, x, conv->packed, relu, &sh, net->run.work);
    else (conv->blk_wino ? rn_convb_wino_forward : rn_convb_forward)(y, x, conv->packed, relu, &sh,
                                                                      net->run.work);
    profiled(net, conv, t0);
}

void rn_conv_run_frozen_add(rn_net *net, rn_conv *conv, float *y, const float *x,
                            const float *sum, int relu)
{
    const double t0 = net->profile ? rn_clock_s() : 0.0;
    rn_conv_shape sh = frozen_shape(conv, net->run.n, net->run.work_threads);
    (conv->blk_wino ? rn_convb_wino_forward_add : rn_convb_forward_add)(y, x, sum, conv->packed,
                                                                        relu, &sh, net->run.work);
    profiled(net, conv, t0);
}
