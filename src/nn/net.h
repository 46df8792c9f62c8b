/* The network's internal structure: shared by the files of src/nn/ only. */
#ifndef RN_NN_NET_H
#define RN_NN_NET_H

#include "core/rng.h"
#include "kernels/batchnorm_sync.h"
#include "kernels/kernels.h"
#include "nn/layers.h"
#include "resnet.h"

#define RN_NAME_MAX 64

/* ---- named tensors: registered while building, bound once the arenas exist ------------- */
typedef struct {
    char name[RN_NAME_MAX];
    rn_tensor_kind kind;
    int ndim;
    int64_t shape[4];
    size_t numel;
    size_t offset;      /* into params (and grads), buffers, or counters, by kind */
    float **bind_data;  /* where to store the data pointer once bound */
    float **bind_grad;
    int64_t **bind_i64;
} rn_tensor_entry;

/* Activation slots: per-image float counts, bound to the activation arena per batch size; a
 * frozen network's activations, and those of one that trains on blocks, are channel-blocked
 * and take per_image_blk. */
typedef struct {
    size_t per_image, per_image_blk;
    float **bind;
    int block; /* 1 + the index of the block that registered it, or 0 (stem, head, features) */
} rn_act_slot;

/* ---- blocks ---------------------------------------------------------------------------- */
typedef enum { RN_BLOCK_PLAIN, RN_BLOCK_RESIDUAL, RN_BLOCK_HIGHWAY } rn_block_kind;
typedef enum { RN_SC_NONE, RN_SC_IDENTITY, RN_SC_PAD, RN_SC_PROJECTION } rn_sc_kind;

typedef struct {
    char name[32]; /* "layer2.0" */
    int stage;
    rn_block_kind kind;
    int bottleneck;
    int stride;
    rn_shape3 in, out;
    rn_conv conv[3];
    rn_bn bn[3];
    int n_conv, n_bn;
    rn_seq branch, post;
    int tap; /* the branch buffer the shortcut reads: 0 = the block input */
    rn_sc_kind sc;
    rn_conv proj;
    rn_bn proj_bn;
    int proj_has_bn;
    rn_conv gate;
    /* activation slots */
    float *sc_out;    /* shortcut output (pad or projection) */
    float *proj_mid;  /* projection conv output before its BN */
    float *gate_t;    /* highway gate T = sigmoid(gate(s)) */
    float *merged;    /* input of the post ops */
    const float *s;   /* the shortcut tensor of the last forward */
    float survival;
    int deleted;
    int dropped; /* branch skipped in the last forward */
    float scale; /* branch scale in the last forward */
    int grad_way;        /* rn_grad_way: the backward through the branch, the shortcut or both */
} rn_block;

/* ---- the network ------------------------------------------------------------------------ */
/* A backward's gradient buffers, each for a batch of the largest activation, by role. */
typedef union {
    float *all[8]; /* for allocating and freeing them together */
    struct {
        float *carry[2]; /* the gradient handed from unit to unit (stem, blocks, head) */
        float *seq[2];   /* inside a unit: the ping-pong of an op sequence's backward */
        float *shortcut; /* a highway block's gradient at its shortcut's output */
        float *tap;      /* a block's gradient at the shortcut's tap (input or pre-activation) */
        float *branch;   /* the gradient into a scaled (stochastic depth) or gated branch */
        float *temp;     /* a gate's pre-activation gradient; the shortcut's backward */
    };
} rn_grad_buffers;

/* What running a batch uses and leaves behind: sized by rn_net_reserve_batch for batch_cap
 * images, none of it in a model file. */
typedef struct {
    float *act;           /* the activation arena, for batch_cap images (slots point into it) */
    int batch_cap;
    rn_grad_buffers grad;
    float *work;          /* convolution (and classifier) workspace, for batch_cap images and
                           * work_threads */
    size_t work_floats;
    int work_threads;
    int work_layout;      /* sized for the kernels of this layout (rn_net_layout) */
    float *pooled;        /* [n, fc.in_dim], in the arena */
    float *logits;        /* [n, classes], in the arena */
    int n;                /* the last forward's batch */
    int training;         /* ... and its mode */
    int forward_done;     /* it filled every activation: a backward may follow */
    /* rn_net_record_input_grads: the squared norm of the gradient at each block's input (and,
     * at [n_blocks], the head's) from the last backward; NULL when not recording */
    double *input_grad_sq;
    /* Data-parallel training (data_parallel.h): training-mode batch norms take their statistics
     * over every process's slice through bn_allsum (NULL: this batch alone), and the loss
     * gradient is scaled by loss_grad_scale (0: not), this slice's share of the global batch. */
    const rn_bn_allsum *bn_allsum;
    float loss_grad_scale;
    /* Called by the backward after each block's (counting down), so that the gradients it
     * finished can travel while the rest is computed (NULL: not). */
    void (*block_grads_done)(void *ctx, int block);
    void *block_grads_ctx;
} rn_net_run;

struct rn_net {
    /* ---- what the model file describes: the architecture, its options and tensors ---- */
    char arch[RN_NAME_MAX];
    rn_net_options opt; /* resolved: no defaults left */
    int imagenet_layout;

    rn_tensor_entry *tensors;
    int n_tensors, cap_tensors;
    size_t n_params, n_buffers, n_counters;
    float *params, *grads, *buffers;
    int64_t *counters;

    rn_conv stem_conv;
    rn_bn stem_bn;
    rn_seq stem;
    rn_block **blocks;
    int n_blocks;
    int n_stages;
    rn_bn head_bn;
    rn_seq head;
    rn_fc fc;

    int has_norm;
    float norm_mean[RN_MAX_INPUT_CHANNELS], norm_std[RN_MAX_INPUT_CHANNELS];
    char **labels;
    int n_labels;

    /* ---- derived from the structure: the activations' layout, the convolutions ---- */
    rn_act_slot *slots;
    int n_slots, cap_slots;
    int slot_block;       /* the `block` of the slots being registered */
    size_t act_per_image, act_per_image_blk; /* sums over slots */
    size_t max_tensor;    /* largest per-image activation, sizes the gradient buffers */
    size_t max_tensor_blk; /* ... channel-blocked */
    rn_conv **convs;      /* every convolution, to size the workspace */
    int n_convs, cap_convs;

    /* ---- how it runs: settings, random state and the run state ---- */
    int frozen; /* rn_net_freeze: batch norms folded into the convolutions, weights packed */
    int profile; /* rn_net_profile_convs: frozen convolutions timed */
    int blocked; /* rn_net_set_blocked: trains and evaluates on channel-blocked activations */
    float label_smoothing; /* loss of rn_net_backward: 0 = plain cross-entropy */
    rn_rng rng;            /* stochastic depth's draws; saved in checkpoints */
    rn_net_run run;
};

/* params.c: registration and arenas */
int rn_net_add_tensor(rn_net *net, const char *name, rn_tensor_kind kind, int ndim,
                      const int64_t *shape, float **bind_data, float **bind_grad,
                      int64_t **bind_i64);
int rn_net_add_conv(rn_net *net, rn_conv *conv, const char *name, int in_c, int out_c, int k,
                    int stride, int has_bias, rn_shape3 in);
int rn_net_add_bn(rn_net *net, rn_bn *bn, const char *name, int c);
int rn_net_add_fc(rn_net *net, rn_fc *fc, const char *name, int in_dim, int out_dim);
/* A slot of per_image floats in either layout (pooled features, logits); an activation of
 * shape s, planar or channel-blocked. */
int rn_net_add_slot(rn_net *net, float **bind, size_t per_image);
int rn_net_add_act(rn_net *net, float **bind, rn_shape3 s);
int rn_net_bind(rn_net *net);
int rn_net_reserve_batch(rn_net *net, int n);

/* seq.c: building and running chains of operations */
/* Appends ops described by `pattern` (C = next conv of convs, B = next BN, R = ReLU,
 * M = 3x3/2 max pool), registering output slots. *shape is the input, updated to the
 * output; the caller has already configured the convs' channels and strides. */
int rn_seq_build(rn_net *net, rn_seq *seq, const char *pattern, rn_conv *convs, int *next_conv,
                 rn_bn *bns, int *next_bn, const char *prefix, rn_shape3 *shape);
void rn_seq_forward(rn_net *net, rn_seq *seq, const float *x, int from, int to);
static inline const float *rn_seq_output(const rn_seq *seq) { return seq->buf[seq->n]; }
/* Back-propagates from the gradient `dy` at buf[from] to buf[to], ping-ponging between
 * p and q; returns the buffer holding the gradient at buf[to] (dy itself if from == to).
 * need_dx == 0 skips the input gradient of op `to` (for the stem's first convolution). */
const float *rn_seq_backward(rn_net *net, rn_seq *seq, const float *dy, int from, int to,
                             float *p, float *q, int need_dx);
size_t rn_seq_params(const rn_seq *seq);
uint64_t rn_seq_macs(const rn_seq *seq);
uint64_t rn_conv_macs(const rn_conv *conv);
/* The kernel's shape of a convolution for n images and a thread count. */
rn_conv_shape rn_conv_shape_of(const rn_conv *conv, int n, int threads);
/* The threads the kernels will use now (OpenMP's current setting). */
int rn_net_threads(void);
void rn_conv_run_forward(rn_net *net, rn_conv *conv, float *y, const float *x);
/* Batch norm's epsilon, as torch.nn.BatchNorm2d's default. */
#define RN_BN_EPS 1e-5f

/* A frozen network's convolution (freeze.c): y = conv(x) with the BN after it folded in (if
 * any), then max(y, 0) when relu. */
/* A frozen network's convolution on blocked tensors (then max(y, 0) when relu), and the
 * workspace floats it needs for a batch of n on threads. */
void rn_conv_run_frozen(rn_net *net, rn_conv *conv, float *y, const float *x, int relu);
/* The same with sum (a tensor of y's shape) added before the ReLU, in the kernel's own pass:
 * the bits of rn_add_scaled_relu(y, sum, y, 1) after it. Not for the first convolution. */
void rn_conv_run_frozen_add(rn_net *net, rn_conv *conv, float *y, const float *x,
                            const float *sum, int relu);
size_t rn_conv_frozen_work(const rn_conv *conv, int n, int threads);
/* The layout of the activations: 0 planar, 1 channel-blocked (frozen or rn_net_set_blocked),
 * 2 channel-blocked for training (its workspace holds the training kernels'). */
static inline int rn_net_layout(const rn_net *net)
{
    return net->frozen ? 1 : net->blocked ? 2 : 0;
}
/* The floats of an activation of shape s for the last forward's batch, in the layout it ran
 * in: planar, or channel-blocked. */
static inline size_t rn_net_act_len(const rn_net *net, rn_shape3 s)
{
    return (rn_net_layout(net) ? rn_blk_floats(1, s.c, s.h, s.w) : rn_shape3_size(s)) * (size_t)net->run.n;
}
/* blocked.c: a network that trains on blocks. Its convolutions pack their weights into the
 * workspace on every call (the weights change every step) and run the blocked kernels; the
 * workspace floats that needs for a batch of n on threads. */
void rn_conv_run_forward_blocked(rn_net *net, rn_conv *conv, float *y, const float *x);
void rn_conv_run_backward_blocked(rn_net *net, rn_conv *conv, float *dx, const float *dy,
                                  const float *x);
size_t rn_conv_blocked_work(const rn_conv *conv, int n, int threads);
void rn_conv_run_backward(rn_net *net, rn_conv *conv, float *dx, const float *dy,
                          const float *x);
void rn_bn_run_forward(rn_net *net, rn_bn *bn, float *y, const float *x, rn_shape3 s);
/* y = max(BN(x) + add, 0) in the BN's own pass, which it can be where rn_bn_adds (training
 * on blocks). */
int rn_bn_adds(const rn_net *net);
void rn_bn_run_forward_add_relu(rn_net *net, rn_bn *bn, float *y, const float *x, const float *add,
                                rn_shape3 s);
void rn_bn_run_backward(rn_net *net, rn_bn *bn, float *dx, const float *dy, const float *x,
                        rn_shape3 s);

/* block.c */
typedef struct {
    rn_block_kind kind;
    int bottleneck;
    int ordering;
    int shortcut; /* rn_shortcut; ignored for plain blocks */
    int stride;
    int mid_c, out_c;
} rn_block_spec;
int rn_block_build(rn_net *net, rn_block *b, const char *name, int stage, rn_shape3 in,
                   const rn_block_spec *spec);
void rn_block_forward(rn_net *net, rn_block *b, const float *x);
/* dx receives the gradient w.r.t. the block input; uses the run's gradient buffers but carry.
 * dy_masked: dy has been through the ReLU that ends the block already (the next block's
 * backward applied it, returning 1), and the block skips it. mask_input: the block may apply
 * the ReLU that ends the block before it (rn_block_ends_in_relu), whose output is this block's
 * input, in its last pass; returns 1 where it did, 0 where dx is the plain gradient. */
int rn_block_backward(rn_net *net, rn_block *b, const float *dy, int dy_masked, float *dx,
                      int mask_input);
int rn_block_ends_in_relu(const rn_block *b);
const float *rn_block_output(const rn_block *b);
/* The slot of the block's output (where rn_block_output's pointer is bound). */
float **rn_block_output_bind(rn_block *b);
/* A frozen block whose last convolution adds the identity shortcut, the block's input, in its
 * own pass: it may write its output over its input, and does but for the first block, whose
 * input may be the caller's (rn_net_reserve_batch binds the two together). */
int rn_block_in_place(const rn_net *net, const rn_block *b);
size_t rn_block_params(const rn_block *b);
uint64_t rn_block_macs(const rn_block *b);

/* zoo.c */
int rn_net_build(rn_net *net, const char *arch);
void rn_net_init_weights(rn_net *net);
void rn_block_init_weights(rn_net *net, rn_block *b);

#endif
