/* Layers with parameters, and sequences of layer operations.
 *
 * A layer's parameters, gradients and running statistics are views into the network's arenas
 * (bound after construction), and its activations are slots in the network's activation arena
 * (sized for the batch at forward time). What a layer allocates itself (a batch norm's batch
 * statistics, a frozen convolution's folded and packed weights) rn_net_free releases. */
#ifndef RN_NN_LAYERS_H
#define RN_NN_LAYERS_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/kernels.h"

typedef struct {
    int c, h, w;
} rn_shape3;

typedef struct rn_bn rn_bn;

typedef struct {
    int in_c, out_c, k, stride, pad, has_bias;
    rn_shape3 in, out;
    float *w, *b;   /* params */
    float *dw, *db; /* grads */
    /* A frozen network's (rn_net_freeze): fold_bn, the batch norm that follows this
     * convolution in every forward (or NULL), folded in as a scale of each output channel's
     * weights (fold_scale, NULL without a BN) and a bias (fold_b); packed, the scaled weights
     * and bias for the channel-blocked kernels (kernels/convb.c), Winograd's (blk_wino: its
     * tile, 2 or 4) or the direct one's (blk_wino 0); a frozen network's activations are blocked. Owned by the network while it
     * is frozen, NULL otherwise. */
    const rn_bn *fold_bn;
    float *fold_scale, *fold_b, *packed;
    int blk_wino;
    int blk_planar_in; /* the network's first convolution: reads the planar images */
    double prof_s;     /* seconds in its frozen forwards since rn_net_profile_convs, and calls */
    long prof_calls;
} rn_conv;

struct rn_bn {
    int c;
    float *w, *b, *dw, *db;
    float *run_mean, *run_var;
    int64_t *batches_tracked;
    float *batch_mean, *batch_var; /* saved by the training forward for backward */
    float *batch_scale;            /* and on blocks the scales it normalised with */
    int used_batch_stats;          /* how the last forward normalised */
};

typedef struct {
    int in_dim, out_dim;
    float *w, *b, *dw, *db;
    float *wt; /* a frozen network's: w transposed, [in_dim][out_dim]; else NULL */
} rn_fc;

typedef enum { RN_OP_CONV, RN_OP_BN, RN_OP_RELU, RN_OP_MAXPOOL } rn_op_kind;

typedef struct {
    rn_op_kind kind;
    rn_conv *conv; /* RN_OP_CONV */
    rn_bn *bn;     /* RN_OP_BN */
    rn_shape3 in, out;
} rn_op;

#define RN_SEQ_MAX 12

/* A straight chain of operations. buf[0] is the input (not owned); buf[i + 1] is the output
 * of op i, an activation slot of the network. */
typedef struct {
    rn_op ops[RN_SEQ_MAX];
    int n;
    float *buf[RN_SEQ_MAX + 1];
} rn_seq;

static inline size_t rn_shape3_size(rn_shape3 s) { return (size_t)s.c * s.h * s.w; }
/* The floats an activation slot holds per image: room for the channel-blocked layout of a
 * frozen network (channels rounded up to the widest block), which the planar one fits in. */
static inline size_t rn_shape3_slot(rn_shape3 s)
{
    return (size_t)((s.c + RN_BLK_MAX_LANES - 1) / RN_BLK_MAX_LANES * RN_BLK_MAX_LANES) * s.h * s.w;
}

#endif
