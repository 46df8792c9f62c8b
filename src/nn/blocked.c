/* Training on channel-blocked activations (rn_net_set_blocked): the convolutions' forward,
 * input gradient and weight gradient on blocks (kernels/convb*.c), their weights packed into
 * the workspace on every call, since a training step changes them. Batch norm, pooling and the
 * shortcuts take their blocked kernels where they run (seq.c, block.c, net.c). */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "kernels/cpu.h"
#include "kernels/kernels.h"
#include "nn/net.h"

/* Packed weights first, then the kernel's workspace, 16 floats apart for alignment. */
static size_t round16(size_t f) { return (f + 15) / 16 * 16; }

/* Winograd for the forward and input gradient where it pays, as a frozen network chooses
 * (rn_convb_wino_pays), and for the weight gradient where its sums fit
 * (rn_convb_wino_wgrad_pays); the direct kernels elsewhere. */
static int use_wino(const rn_conv *conv, const rn_conv_shape *sh)
{
    return !conv->blk_planar_in && rn_convb_wino_pays(sh);
}

/* The forward's shape, as training runs it (rn_convb_wino_training_forward). */
static rn_conv_shape forward_shape(const rn_conv *conv, int n, int threads)
{
    const rn_conv_shape sh = rn_conv_shape_of(conv, n, threads);
    return rn_convb_wino_training_forward(&sh);
}

size_t rn_conv_blocked_work(const rn_conv *conv, int n, int threads)
{
    const rn_conv_shape sh = rn_conv_shape_of(conv, n, threads);
    const rn_conv_shape fs = forward_shape(conv, n, threads);
    size_t fwd, bwd;
    if (use_wino(conv, &fs))
        fwd = round16(rn_convb_wino_packed_floats(&fs)) + rn_convb_wino_workspace(&fs);
    else fwd = round16(rn_convb_packed_floats(&sh)) + rn_convb_workspace(&sh);
    if (use_wino(conv, &sh)) {
        const rn_conv_shape t = rn_convb_wino_transposed(&sh);
        bwd = round16(rn_convb_wino_packed_floats(&t)) + rn_convb_wino_workspace(&t);
        /* the weight gradient's, after the input gradient's in the same space */
        if (rn_convb_wino_wgrad_pays(&sh) && rn_convb_wino_wgrad_workspace(&sh) > bwd)
            bwd = rn_convb_wino_wgrad_workspace(&sh);
    } else {
        bwd = round16(rn_convb_backward_data_packed_floats(&sh)) + rn_convb_backward_data_workspace(&sh);
    }
    /* the direct weight gradient's, after the input gradient's in the same space */
    if (!(use_wino(conv, &sh) && rn_convb_wino_wgrad_pays(&sh)) &&
        rn_convb_backward_weights_workspace(&sh) > bwd)
        bwd = rn_convb_backward_weights_workspace(&sh);
    return fwd > bwd ? fwd : bwd;
}

void rn_conv_run_forward_blocked(rn_net *net, rn_conv *conv, float *y, const float *x)
{
    rn_conv_shape sh = forward_shape(conv, net->run.n, net->run.work_threads);
    const float *bias = conv->has_bias ? conv->b : NULL;
    float *packed = net->run.work;
    if (use_wino(conv, &sh)) {
        rn_convb_wino_pack(packed, conv->w, NULL, bias, &sh);
        rn_convb_wino_forward(y, x, packed, 0, &sh, packed + round16(rn_convb_wino_packed_floats(&sh)));
        return;
    }
    float *work = packed + round16(rn_convb_packed_floats(&sh));
    rn_convb_pack(packed, conv->w, NULL, bias, &sh);
    (conv->blk_planar_in ? rn_convb_forward_planar_in : rn_convb_forward)(y, x, packed, 0, &sh, work);
}

void rn_conv_run_backward_blocked(rn_net *net, rn_conv *conv, float *dx, const float *dy,
                                  const float *x)
{
    rn_conv_shape sh = rn_conv_shape_of(conv, net->run.n, net->run.work_threads);
    if (dx && use_wino(conv, &sh)) {
        const rn_conv_shape t = rn_convb_wino_transposed(&sh);
        float *packed = net->run.work;
        rn_convb_wino_pack_backward_data(packed, conv->w, &t);
        rn_convb_wino_forward(dx, dy, packed, 0, &t, packed + round16(rn_convb_wino_packed_floats(&t)));
    } else if (dx) {
        float *packed = net->run.work;
        float *work = packed + round16(rn_convb_backward_data_packed_floats(&sh));
        rn_convb_backward_data_pack(packed, conv->w, &sh);
        rn_convb_backward_data(dx, dy, packed, &sh, work);
    }
    if (use_wino(conv, &sh) && rn_convb_wino_wgrad_pays(&sh)) {
        if (conv->dw) rn_convb_wino_backward_weights(conv->dw, dy, x, &sh, net->run.work);
        if (conv->has_bias) rn_convb_backward_weights(NULL, conv->db, dy, x, &sh, NULL);
        return;
    }
    (conv->blk_planar_in ? rn_convb_backward_weights_planar_in : rn_convb_backward_weights)(
        conv->dw, conv->has_bias ? conv->db : NULL, dy, x, &sh, net->run.work);
}

/* Where training on blocks pays (measured, docs/performance.md): with AVX-512's 16-lane blocks
 * and, since its batch norm's loops run on vectors (they had been scalar there), AVX2's 8-lane
 * ones (the AVX2 build on the Xeon: 0.63-0.74x the planar engine's step); not in the portable
 * build, unmeasured. RN_BLOCKED=0 or 1 overrides. */
static int blocked_by_default(void)
{
    const char *e = getenv("RN_BLOCKED");
    if (e && (!strcmp(e, "0") || !strcmp(e, "1"))) return e[0] == '1';
    return rn_cpu_simd() != RN_SIMD_GENERIC;
}

int rn_net_set_blocked(rn_net *net, int on)
{
    if (on < 0) on = blocked_by_default();
    if (on && net->frozen)
        return rn_fail(RN_ERR_ARG, "a frozen network already runs on blocks, for inference only");
    if (on && (!net->fc.out_dim || !net->stem.n))
        return rn_fail(RN_ERR_ARG, "%s has no %s: it runs planar", net->arch,
                       net->fc.out_dim ? "stem convolution" : "classifier head");
    net->blocked = on != 0;
    /* the first convolution reads the planar images */
    net->stem_conv.blk_planar_in = net->blocked;
    net->run.forward_done = 0;
    return RN_OK;
}

int rn_net_blocked(const rn_net *net) { return net->blocked; }
