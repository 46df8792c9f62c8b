/* resnet.c — plain, highway and residual networks in C.
 *
 * One public header. Every function returns a status (RN_OK = 0) unless it says otherwise;
 * on failure rn_last_error() holds a readable message (per thread). Tensors are float32,
 * NCHW (batch, channels, height, width), contiguous. Nothing in the library prints or exits.
 */
#ifndef RESNET_H
#define RESNET_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Using the library in a program
 *
 * Threads. A network belongs to one thread at a time: calls on one rn_net (or rn_sgd) must not
 * overlap, but different networks may be used from different threads at once. Each call runs
 * its loops on rn_threads() threads (OpenMP's count for the calling thread: OMP_NUM_THREADS, or
 * rn_set_threads); results are the same bits for any thread count.
 * Lifetimes. Pointers a function returns stay valid as long as what they came from:
 * rn_net_arch, rn_net_label, rn_net_params, rn_net_grads, rn_net_tensor's views and
 * rn_sgd_momentum_buffer until the net (optimizer) is freed; rn_net_block_gates until the next
 * forward; rn_last_error until the next failing call on the same thread; rn_version,
 * rn_arch_names, rn_ordering_name and rn_shortcut_name for ever. rn_tensor_load's data is the
 * caller's, to free().
 * Limits. At most RN_MAX_INPUT_CHANNELS (16) input channels and RN_MAX_INPUT_SIDE (16384)
 * pixels on a side; any input size within them that the architecture can take (each stride-2
 * stage halves it, rounding up). Files: see rn_net_open and rn_tensor_load.
 * Environment. RN_SIMD=generic or =avx2 holds the kernels to portable C or to AVX2 on a CPU that
 * has more (default: the best the CPU has: AVX-512, AVX2 + FMA, portable C); RN_WINOGRAD=0 turns
 * the Winograd 3x3 convolutions off (same results within float rounding, slower). Both are read
 * once, at the first call that needs them.
 */

/* The library's version, written here only (the Makefile reads it for the shared object's name
 * and resnet.pc). A program can compare it with rn_version(), the version of the library it runs
 * with; the shared object's soname changes with the major version. */
#define RN_VERSION_MAJOR 0
#define RN_VERSION_MINOR 1
#define RN_VERSION_PATCH 0

/* The input a network takes: channels and pixels on a side (each side's square times the
 * widest layer's channels must stay within the int arithmetic of the shapes). */
#define RN_MAX_INPUT_CHANNELS 16
#define RN_MAX_INPUT_SIDE 16384

/* What the shared library exports: the functions declared here and nothing else (it is built
 * with -fvisibility=hidden). */
#if defined(__GNUC__) || defined(__clang__)
#define RN_API __attribute__((visibility("default")))
#else
#define RN_API
#endif

enum rn_status {
    RN_OK = 0,
    RN_ERR_ARG = 1,      /* a bad argument or option */
    RN_ERR_NOMEM = 2,    /* an allocation failed */
    RN_ERR_IO = 3,       /* a file could not be opened, read or written */
    RN_ERR_FORMAT = 4,   /* a file is not what it claims to be */
    RN_ERR_MISMATCH = 5, /* a file does not fit the network (names, shapes, dtypes) */
    RN_ERR_NUMERIC = 6,  /* training produced NaN or infinity */
};

/* The message of the last failure on this thread. */
RN_API const char *rn_last_error(void);
/* "MAJOR.MINOR.PATCH" of the library that is running; static storage. */
RN_API const char *rn_version(void);
/* The number of threads the calling thread's library calls use (n >= 1), and that number. */
RN_API int rn_set_threads(int n);
RN_API int rn_threads(void);

/* ---- options ----------------------------------------------------------------------------
 * The block orderings of He et al. 2016, "Identity Mappings in Deep Residual Networks",
 * Fig. 4 (a)-(e). */
typedef enum {
    RN_ORDER_DEFAULT = -1,       /* the architecture's own */
    RN_ORDER_ORIGINAL = 0,       /* (a) conv-BN-ReLU-conv-BN, add, ReLU */
    RN_ORDER_BN_AFTER_ADD = 1,   /* (b) conv-BN-ReLU-conv, add, BN-ReLU */
    RN_ORDER_RELU_BEFORE_ADD = 2,/* (c) conv-BN-ReLU-conv-BN-ReLU, add */
    RN_ORDER_RELU_PREACT = 3,    /* (d) ReLU-conv-BN-ReLU-conv-BN, add */
    RN_ORDER_FULL_PREACT = 4,    /* (e) BN-ReLU-conv-BN-ReLU-conv, add */
} rn_ordering;

typedef enum {
    RN_SHORTCUT_DEFAULT = -1,
    RN_SHORTCUT_A = 0, /* identity; subsample + zero-padded channels where the shape changes */
    RN_SHORTCUT_B = 1, /* identity; 1x1 projection where the shape changes */
    RN_SHORTCUT_C = 2, /* 1x1 projection on every block */
} rn_shortcut;

typedef struct {
    int classes;              /* 0: the family's (10 CIFAR, 1000 ImageNet) */
    int in_c, in_h, in_w;     /* 0: the family's (3 x 32 x 32 CIFAR, 3 x 224 x 224 ImageNet) */
    int ordering;             /* rn_ordering */
    int shortcut;             /* rn_shortcut */
    int zero_init_last_bn;    /* start every residual branch at F(x) = 0 */
    float gate_bias;          /* initial bias of highway gates, default -2 */
    float survival_last;      /* stochastic depth: survival probability of the last block,
                                 linearly decaying from 1 (Huang et al. 2016); 1 = off */
    uint64_t seed;            /* initialisation and stochastic-depth randomness */
} rn_net_options;

RN_API void rn_net_options_init(rn_net_options *opt);

/* "original", "bn-after-add", "relu-before-add", "relu-preact", "full-preact" (also a..e). */
RN_API int rn_ordering_parse(const char *text, rn_ordering *out);
RN_API const char *rn_ordering_name(rn_ordering ordering);
/* "A", "B", "C" */
RN_API int rn_shortcut_parse(const char *text, rn_shortcut *out);
RN_API const char *rn_shortcut_name(rn_shortcut shortcut);

/* The architecture names rn_net_create accepts, NULL-terminated (wrn-D-K is a pattern). */
RN_API const char *const *rn_arch_names(void);

/* ---- networks ---------------------------------------------------------------------------- */
typedef struct rn_net rn_net;

/* Builds `arch` ("resnet20", "resnet50", "preresnet164", "highway56", "wrn-16-4", ...) with
 * fresh torchvision-style initialisation. opt may be NULL for the defaults. */
RN_API int rn_net_create(rn_net **net, const char *arch, const rn_net_options *opt);
RN_API void rn_net_free(rn_net *net);

/* Opens a weights file. Files written by rn_net_save carry their architecture; a plain
 * torchvision state_dict file needs `arch` (and opt for classes / input shape). When arch is
 * given it wins over the file's metadata. Every tensor must match by name, shape and dtype. */
RN_API int rn_net_open(rn_net **net, const char *path, const char *arch, const rn_net_options *opt);
/* Loads weights into an existing network (strict, as rn_net_open); a file refused for any of
 * its tensors changes no weight. */
RN_API int rn_net_load(rn_net *net, const char *path);
/* Writes weights and metadata as safetensors, atomically (temporary file + rename). */
RN_API int rn_net_save(const rn_net *net, const char *path);
/* Writes the network's evaluation forward as an ONNX model (protobuf), atomically: Conv,
 * BatchNormalization (running statistics), Relu, MaxPool, Add, Slice + Pad (shortcut A),
 * Sigmoid/Sub/Mul (highway gates), Mul by the survival probability (stochastic depth),
 * GlobalAveragePool, Flatten, Gemm; initializers carry the torchvision tensor names. Input
 * "input" [N, C, H, W] float32, already normalised as in training (the mean and std, with the
 * rest of rn_net_save's metadata, are in the model's metadata_props); output "logits"
 * [N, classes], before softmax. opset: RN_ONNX_OPSET_MIN..MAX, 0 for RN_ONNX_OPSET_DEFAULT;
 * batch: 0 for a dynamic batch dimension "N", else that fixed size (1..RN_ONNX_MAX_BATCH). */
#define RN_ONNX_OPSET_MIN 11
#define RN_ONNX_OPSET_MAX 17
#define RN_ONNX_OPSET_DEFAULT 13
#define RN_ONNX_MAX_BATCH 1048576
RN_API int rn_net_export_onnx(const rn_net *net, const char *path, int opset, int batch);

RN_API const char *rn_net_arch(const rn_net *net);
RN_API void rn_net_get_options(const rn_net *net, rn_net_options *opt);

/* Per-channel input normalisation and label names: carried in the file's metadata. */
RN_API int rn_net_set_normalization(rn_net *net, const float *mean, const float *std);
/* Returns 1 and fills mean/std (in_c floats each) if set, 0 if not. */
RN_API int rn_net_get_normalization(const rn_net *net, float *mean, float *std);
RN_API int rn_net_set_labels(rn_net *net, const char *const *names, int count);
/* NULL when not set or out of range. */
RN_API const char *rn_net_label(const rn_net *net, int index);

/* ---- running ----------------------------------------------------------------------------- */
/* Forward pass on x [n, in_c, in_h, in_w]; writes logits [n, classes] when logits != NULL.
 * training != 0: batch statistics (running ones updated), stochastic depth active, and the
 * activations kept for rn_net_backward. training == 0: evaluation mode. */
RN_API int rn_net_forward(rn_net *net, const float *x, int n, int training, float *logits);
/* Inference: folds every batch norm that directly follows a convolution into that
 * convolution's weights and bias (with the ReLU after them in the same pass) and packs the
 * weights once, so that evaluation forwards skip both; the logits agree with the unfrozen
 * evaluation forward to float rounding. While frozen, the weights and running statistics
 * must not change except through rn_net_load (which folds the new ones), and training
 * forwards and rn_net_backward fail. frozen = 0 returns to the plain forward and frees the
 * folded copies (about 2-3 times the convolution weights' memory). */
RN_API int rn_net_freeze(rn_net *net, int frozen);
RN_API int rn_net_frozen(const rn_net *net);
/* on = 1: training and evaluation forwards and the backward run on channel-blocked
 * activations (NCHW16c with AVX-512, NCHW8c otherwise), where the convolution kernels keep the
 * FMA units busier; the results agree with the planar run's to float rounding. on = 0: planar
 * (the default). on = -1: blocked where that is the faster engine on this CPU (AVX-512, AVX2), unless
 * the environment variable RN_BLOCKED is 0 or 1. The block probes (rn_net_probe_block,
 * rn_net_block_gates) need the planar layout.
 * A network with a stem and a classifier head only; not while frozen. */
RN_API int rn_net_set_blocked(rn_net *net, int on);
RN_API int rn_net_blocked(const rn_net *net);
/* Mean softmax cross-entropy of the last forward against labels; adds the gradient of that
 * loss to every parameter gradient (call rn_net_zero_grad first). loss may be NULL. */
RN_API int rn_net_backward(rn_net *net, const int *labels, float *loss);
RN_API void rn_net_zero_grad(rn_net *net);
/* Label smoothing of the loss in rn_net_backward: targets (1 - eps) * onehot + eps / classes,
 * as torch.nn.CrossEntropyLoss(label_smoothing=eps). 0 (the default) is plain cross-entropy. */
RN_API int rn_net_set_label_smoothing(rn_net *net, float eps);
RN_API float rn_net_label_smoothing(const rn_net *net);
/* The state of the network's random generator (stochastic depth draws from it during training):
 * saved in checkpoints so that a resumed run draws the same numbers. */
RN_API void rn_net_get_rng_state(const rn_net *net, uint64_t state[4]);
RN_API void rn_net_set_rng_state(rn_net *net, const uint64_t state[4]);
/* zero_grad + forward (training) + backward. */
RN_API int rn_net_train_step(rn_net *net, const float *x, const int *labels, int n, float *loss);

/* ---- parameters ---------------------------------------------------------------------------
 * All trainable parameters live in ONE float array, their gradients in another of the same
 * length, so optimizers are one flat loop. Each named tensor is a view into them. */
RN_API size_t rn_net_num_params(const rn_net *net);
RN_API float *rn_net_params(rn_net *net);
RN_API float *rn_net_grads(rn_net *net);

typedef enum {
    RN_TENSOR_PARAM = 0,   /* trainable: data in rn_net_params, grad in rn_net_grads */
    RN_TENSOR_BUFFER = 1,  /* float state such as BN running statistics; grad is NULL */
    RN_TENSOR_COUNTER = 2, /* int64 state (BN num_batches_tracked); data NULL, i64 set */
} rn_tensor_kind;

typedef struct {
    const char *name; /* torchvision's state_dict name, e.g. "layer2.0.downsample.0.weight" */
    rn_tensor_kind kind;
    int ndim;
    int64_t shape[4];
    size_t numel;
    float *data;
    float *grad;
    int64_t *i64;
} rn_tensor_info;

RN_API int rn_net_num_tensors(const rn_net *net);
RN_API int rn_net_tensor(const rn_net *net, int index, rn_tensor_info *out);
/* Returns RN_ERR_ARG (with a message) when no tensor has that name. */
RN_API int rn_net_find_tensor(const rn_net *net, const char *name, rn_tensor_info *out);

/* ---- structure, for summaries and experiments ---------------------------------------------
 * A network is a stem, a sequence of blocks, and a head (pooling + classifier). */
typedef struct {
    char name[32];       /* "stem", "layer2.0", "head" */
    int stage;           /* 0 for the stem, 1.. for block stages, stages + 1 for the head */
    int out_c, out_h, out_w;
    size_t params;       /* trainable parameters */
    uint64_t macs;       /* multiply-adds per image (convolutions and fully connected) */
    float survival;      /* stochastic-depth survival probability (1 for stem and head) */
    int deleted;         /* removed at test time (lesion) */
} rn_unit_info;

RN_API int rn_net_num_units(const rn_net *net);
RN_API int rn_net_unit(const rn_net *net, int index, rn_unit_info *out);
RN_API uint64_t rn_net_macs(const rn_net *net);
/* Lesion studies: a deleted block passes its shortcut only (y = post(shortcut(x))).
 * index counts blocks from 0 (unit index - 1). */
RN_API int rn_net_num_blocks(const rn_net *net);
RN_API int rn_net_set_block_deleted(rn_net *net, int block, int deleted);
RN_API int rn_net_set_block_survival(rn_net *net, int block, float survival);

/* Swaps the places of two blocks with the same input and output shape (Veit et al. 2016's
 * reordering); swapping them again restores the network. Weights keep their names. */
RN_API int rn_net_swap_blocks(rn_net *net, int a, int b);

/* ---- probes, for experiments ----------------------------------------------------------------
 * Measurements of the last forward (evaluation or training mode) over its whole batch. */
typedef struct {
    double input_sq;  /* ||x||^2: the block's input */
    double branch_sq; /* ||F(x)||^2: the residual (or highway) branch as it was added, scaled by
                         its stochastic-depth factor, 0 when skipped; a plain block's branch is
                         its whole output before the last ReLU, whose identity is F(x) = x */
    double change_sq; /* ||y - x||^2: the block's output against its input; NaN where the block
                         changes the shape */
    double gate_mean; /* highway blocks: the mean gate value T over the batch; NaN otherwise */
    size_t count;     /* elements of x (n images) */
} rn_block_probe;
RN_API int rn_net_probe_block(const rn_net *net, int block, rn_block_probe *out);
/* A highway block's gate values T of the last forward ([n, c, h, w] of the block's output);
 * valid until the next forward. */
RN_API int rn_net_block_gates(const rn_net *net, int block, const float **t, size_t *count);
/* Which way a block's backward sends the gradient; the forward is unchanged. With a choice per
 * block, one backward follows one path of the ensemble view (Veit et al. 2016).
 * RN_GRAD_SHORTCUT_ONLY: as if the branch were absent (plain blocks have no shortcut and refuse
 * it); RN_GRAD_BRANCH_ONLY: as if the shortcut were absent (for a highway block that includes the
 * gate's gradient to its input, which the gate reads from the shortcut; a plain block's gradient
 * takes its branch anyway). Every block starts at RN_GRAD_BOTH. */
typedef enum { RN_GRAD_BOTH = 0, RN_GRAD_BRANCH_ONLY = 1, RN_GRAD_SHORTCUT_ONLY = 2 } rn_grad_way;
RN_API int rn_net_set_block_grad_way(rn_net *net, int block, rn_grad_way way);
/* on != 0: every following backward records the squared L2 norm of the loss gradient with
 * respect to each block's input, read with rn_net_input_grad_sq (block = rn_net_num_blocks(net):
 * the last block's output). Off by default: it costs one pass over each block's input. */
RN_API int rn_net_record_input_grads(rn_net *net, int on);
RN_API int rn_net_input_grad_sq(const rn_net *net, int block, double *sq);

/* Every convolution, in the order the network was built (the stem's first): its shapes, for
 * kernel benchmarks and summaries. The kernel is k x k, padding pad on every side. */
typedef struct {
    char name[64];           /* torchvision's module name, e.g. "layer2.0.downsample.0" */
    int in_c, in_h, in_w;    /* input per image */
    int out_c, out_h, out_w; /* output per image */
    int k, stride, pad;
    int has_bias;
} rn_conv_info;

RN_API int rn_net_num_convs(const rn_net *net);
RN_API int rn_net_conv_info(const rn_net *net, int index, rn_conv_info *out);
/* Where a frozen network's inference time goes, layer by layer (`resnet bench --mode infer
 * --layers`): on != 0 zeroes every convolution's time and starts timing each call in the frozen
 * forward (rn_net_freeze; an unfrozen forward is not timed), 0 stops. rn_net_conv_time: the
 * seconds convolution `index` (numbered as by rn_net_conv_info) took and its calls since; a
 * call's time includes its fused bias, ReLU and shortcut addition. */
RN_API int rn_net_profile_convs(rn_net *net, int on);
RN_API int rn_net_conv_time(const rn_net *net, int index, double *seconds, long *calls);

/* ---- tensor files -------------------------------------------------------------------------
 * One float32 tensor in a safetensors file: how inputs and outputs travel (see `resnet forward`).
 * rn_tensor_load allocates *data (release it with free()); ndim <= 4. */
RN_API int rn_tensor_load(const char *path, const char *name, float **data, int64_t shape[4], int *ndim);
/* Writes a file holding the one tensor, atomically. */
RN_API int rn_tensor_save(const char *path, const char *name, const float *data, const int64_t *shape,
                   int ndim);

/* ---- optimisation --------------------------------------------------------------------------
 * SGD with momentum and weight decay exactly as torch.optim.SGD (decay on every parameter):
 *   g = grad + wd * p;  buf = momentum * buf + g (buf = g on the first step);  p -= lr * buf
 * (nesterov: p -= lr * (g + momentum * buf)). */
typedef struct rn_sgd rn_sgd;
RN_API int rn_sgd_create(rn_sgd **opt, const rn_net *net, float momentum, float weight_decay,
                  int nesterov);
RN_API void rn_sgd_free(rn_sgd *opt);
RN_API int rn_sgd_step(rn_sgd *opt, rn_net *net, float lr);
/* decay = 0: no weight decay on one-dimensional parameters (batch-norm weights and biases,
 * biases of convolutions, the classifier and highway gates), the usual exemption of Goyal et al.
 * 2017; multi-dimensional weights keep it. decay = 1 (the default) decays every parameter.
 * Same as torch.optim.SGD with two parameter groups. */
RN_API int rn_sgd_set_decay_1d(rn_sgd *opt, const rn_net *net, int decay);

/* Gradient clipping as torch.nn.utils.clip_grad_norm_: when the L2 norm of all parameter
 * gradients together exceeds max_norm (> 0), every gradient is multiplied by
 * max_norm / (norm + 1e-6). Returns that norm, before clipping (max_norm <= 0: only measures).
 * Call it between rn_net_backward and rn_sgd_step. */
RN_API double rn_net_clip_grad_norm(rn_net *net, float max_norm);

/* The optimizer's state, for checkpoints: the momentum buffer (rn_net_num_params floats, in the
 * order of rn_net_params; *count receives that number) and whether a step has filled it. */
RN_API float *rn_sgd_momentum_buffer(rn_sgd *opt, size_t *count);
RN_API int rn_sgd_started(const rn_sgd *opt);
RN_API void rn_sgd_set_started(rn_sgd *opt, int started);

#ifdef __cplusplus
}
#endif
#endif
