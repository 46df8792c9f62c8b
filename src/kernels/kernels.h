/* Numeric kernels: pure functions on raw float32 arrays with explicit shapes.
 *
 * Layout is NCHW (batch, channels, height, width), row-major, contiguous.
 * Conventions, so that callers never guess:
 *   - outputs come first in the argument list;
 *   - activation gradients (dx) are OVERWRITTEN;
 *   - parameter gradients (dw, db, dgamma, dbeta) are ACCUMULATED (+=), so zeroing all
 *     gradients of a network is one memset over its gradient arena;
 *   - any gradient pointer documented "may be NULL" is skipped when NULL.
 * A kernel knows nothing of layers, names or training. */
#ifndef RN_KERNELS_H
#define RN_KERNELS_H

#include <stddef.h>

#include "kernels/batchnorm_sync.h"

/* ---- matrix multiply ------------------------------------------------------------------
 * C[M,N] = alpha * op(A) * op(B) + beta * C, row-major; op(X) = X or X^T.
 * lda/ldb/ldc are the row strides of A, B, C as stored. scratch holds
 * rn_sgemm_scratch_floats(...) floats, or is NULL to have rn_sgemm allocate it; then it returns
 * RN_ERR_NOMEM (C untouched) when that memory cannot be had. With scratch given it cannot fail,
 * which is what lets a training step reserve everything before it changes the network. */
size_t rn_sgemm_scratch_floats(int trans_a, int trans_b, int m, int n, int k, float alpha,
                               float beta);
int rn_sgemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
             const float *b, int ldb, float beta, float *c, int ldc, float *scratch);

/* ---- 2-D convolution (cross-correlation, as PyTorch) ---------------------------------- */
typedef struct {
    int n, c, h, w;      /* input  [n, c, h, w] */
    int k, r, s;         /* weight [k, c, r, s] (k output channels, r x s kernel) */
    int stride, pad;     /* same in both directions; zero padding */
    int oh, ow;          /* output [n, k, oh, ow]; filled by rn_conv_shape_init */
    int threads;         /* threads the kernels may use (1 after rn_conv_shape_init); the
                          * workspace size depends on it */
    int algo;            /* rn_conv_algo, RN_CONV_AUTO after rn_conv_shape_init; the
                          * workspace size depends on it */
} rn_conv_shape;

/* How 3x3 stride-1 convolutions (forward and input gradient) are computed. AUTO: Winograd
 * F(2x2, 3x3) when both channel counts are at least 16 and the batch has at least 48 output
 * tiles of 2x2 (conv.c: WINO_MIN_CHANNELS, WINO_MIN_TILES), unless the environment variable
 * RN_WINOGRAD=0 says otherwise; DIRECT and WINOGRAD force one (tests, benchmarks). On blocks
 * (rn_convb_*), AUTO lets rn_convb_wino_tile choose the tile where Winograd pays, and
 * WINOGRAD_2X2 keeps it to 2x2 (the training forward: rn_convb_wino_training_forward). */
typedef enum {
    RN_CONV_AUTO = 0,
    RN_CONV_DIRECT = 1,
    RN_CONV_WINOGRAD = 2,
    RN_CONV_WINOGRAD_2X2 = 3
} rn_conv_algo;

/* Fills oh/ow; returns 0, or -1 for non-positive sizes or stride, a padding outside
 * [0, kernel size), or an empty output. */
int rn_conv_shape_init(rn_conv_shape *sh, int n, int c, int h, int w, int k, int r, int s,
                       int stride, int pad);
/* Floats of scratch memory that forward and backward need for this shape, batch size and
 * thread count (the same for both). Results do not depend on the thread count. */
size_t rn_conv_workspace(const rn_conv_shape *sh);
/* y = conv(x, w) + b; b may be NULL. */
void rn_conv_forward(float *y, const float *x, const float *w, const float *b,
                     const rn_conv_shape *sh, float *work);
/* The forward with its weights packed once, for inference: rn_conv_pack writes w, each output
 * channel kk's weights times scale[kk] (scale may be NULL), in the form that the forward of
 * this shape multiplies with (RN_CONV_DIRECT or RN_CONV_WINOGRAD, which rn_conv_packing tells:
 * it can depend on the batch size) into rn_conv_packed_floats(sh) floats; work as for the
 * forward. rn_conv_forward_packed computes y = conv(x, w) + b, then max(y, 0) when relu, for
 * any shape with the same packing, channels and kernel: the same bits as rn_conv_forward
 * (with the scaled weights) followed by a ReLU. */
int rn_conv_packing(const rn_conv_shape *sh);
size_t rn_conv_packed_floats(const rn_conv_shape *sh);
/* The most floats any batch size's packing of this convolution needs. */
size_t rn_conv_packed_floats_max(const rn_conv_shape *sh);
void rn_conv_pack(float *packed, const float *w, const float *scale, const rn_conv_shape *sh,
                  float *work);
void rn_conv_forward_packed(float *y, const float *x, const float *packed, const float *b,
                            int relu, const rn_conv_shape *sh, float *work);
/* dx = conv_transpose(dy, w) (overwritten), dw += ..., db += ...; each may be NULL. */
void rn_conv_backward(float *dx, float *dw, float *db, const float *dy, const float *x,
                      const float *w, const rn_conv_shape *sh, float *work);

/* ---- the channel-blocked layout (NCHW[CB]c) ---------------------------------------------
 * A tensor [n, c, h, w] as [n][ceil(c / CB)][h][w][CB]: channel ch in block ch / CB, lane
 * ch % CB, the lanes past c of the last block zero. CB = rn_blk_lanes(): 16 where the CPU has
 * AVX-512 (RN_SIMD permitting), 8 otherwise. rn_blk_floats: the floats of such a tensor. */
#define RN_BLK_MAX_LANES 16
int rn_blk_lanes(void);
/* The blocks of lanes that hold this many channels. */
static inline int rn_blk_count(int channels, int lanes) { return (channels + lanes - 1) / lanes; }
size_t rn_blk_floats(int n, int c, int h, int w);
void rn_blk_from_nchw(float *xb, const float *x, int n, int c, int h, int w);
void rn_blk_to_nchw(float *x, const float *xb, int n, int c, int h, int w);
/* The other forward operations on blocked tensors, as their planar kernels: evaluation-mode
 * batch norm (then max(y, 0) when relu), max pooling (k, stride, pad as rn_maxpool_forward),
 * global average pooling into planar features y[n, c], and shortcut A (as
 * rn_shortcut_pad_forward: oc >= c output channels, (oc - c) / 2 zero ones before). */
void rn_blk_bn_eval(float *y, const float *x, const float *gamma, const float *beta,
                    const float *run_mean, const float *run_var, float eps, int relu, int n,
                    int c, int hw);
void rn_blk_maxpool(float *y, const float *x, int n, int c, int h, int w, int k, int stride,
                    int pad, int oh, int ow);
void rn_blk_gap(float *y, const float *x, int n, int c, int hw);
void rn_blk_shortcut_pad(float *y, const float *x, int n, int c, int h, int w, int oc, int stride);
/* Their backward passes on blocks, as the planar rn_maxpool_backward (the same winner of each
 * window), rn_gap_backward (dy planar [n, c]) and rn_shortcut_pad_backward. */
void rn_blk_maxpool_backward(float *dx, const float *dy, const float *x, int n, int c, int h, int w,
                             int k, int stride, int pad, int oh, int ow);
void rn_blk_gap_backward(float *dx, const float *dy, int n, int c, int hw);
void rn_blk_shortcut_pad_backward(float *dx, const float *dy, int n, int c, int h, int w, int oc,
                                  int stride);
/* Training-mode batch normalization on blocked tensors: as rn_bn_forward_train /
 * rn_bn_relu_forward_train (relu) and rn_bn_backward_train / rn_bn_relu_backward_train
 * (relu_y non-NULL), or with train = 0 the evaluation-mode backward; work: 4 * c doubles.
 * The forward writes the scales it normalised with, gamma / sqrt(var + eps) as floats, to scale
 * (or not, where NULL). Given relu_scale (the forward's scale) and relu_shift (its beta), the
 * backward takes the ReLU's mask from x as the forward computed it, (x - mean) relu_scale +
 * relu_shift > 0, and does not read relu_y (a BN + ReLU without the residual addition): the
 * same bits, one tensor fewer read twice.
 * The same numerics as the planar kernels; the bits do not depend on the thread count.
 * sync: NULL for this batch alone, or the sums over every process's slice (synchronised batch
 * norm, as rn_bn_forward_train_allsum / rn_bn_backward_train_allsum; with one process the same
 * bits as NULL). The forward returns the values per channel its statistics cover. */
int rn_blk_bn_forward_train(float *y, float *mean, float *var, float *scale, const float *x,
                            const float *gamma, const float *beta, int n, int c, int hw, float eps,
                            int relu, double *work, const rn_bn_allsum *sync);
/* The same with a residual addition before the ReLU: y = max(BN(x) + add, 0) (or without the
 * max when relu is 0), add a blocked tensor of y's shape; the same bits as the BN's output
 * added to add by rn_add_scaled(_relu) with alpha 1, without the BN's output ever written. */
int rn_blk_bn_add_forward_train(float *y, float *mean, float *var, float *scale, const float *x,
                                const float *add, const float *gamma, const float *beta, int n,
                                int c, int hw, float eps, int relu, double *work,
                                const rn_bn_allsum *sync);
void rn_blk_bn_backward(float *dx, float *dgamma, float *dbeta, const float *dy,
                        const float *relu_y, const float *relu_scale, const float *relu_shift,
                        const float *x, const float *gamma, const float *mean, const float *var,
                        int n, int c, int hw, float eps, int train, double *work,
                        const rn_bn_allsum *sync);
/* Direct convolution of blocked tensors, any kernel, stride and padding of rn_conv_shape:
 * rn_convb_pack writes w (each output channel kk's weights times scale[kk]; scale may be
 * NULL) and the bias b (NULL: zero) into rn_convb_packed_floats(sh) floats;
 * rn_convb_forward computes y = conv(x, w) + b, then max(y, 0) when relu, with
 * rn_convb_workspace(sh) floats of work (sh->threads threads; the bits do not depend on it). */
size_t rn_convb_packed_floats(const rn_conv_shape *sh);
void rn_convb_pack(float *packed, const float *w, const float *scale, const float *b,
                   const rn_conv_shape *sh);
size_t rn_convb_workspace(const rn_conv_shape *sh);
void rn_convb_forward(float *y, const float *x, const float *packed, int relu,
                      const rn_conv_shape *sh, float *work);
/* The same with a tensor of y's shape added before the ReLU: y = max(sum + (conv(x, w) + b),
 * 0), the bits of rn_convb_forward then rn_add_scaled_relu(y, sum, y, 1) (a frozen residual
 * block's last convolution and its shortcut in one pass). */
void rn_convb_forward_add(float *y, const float *x, const float *sum, const float *packed,
                          int relu, const rn_conv_shape *sh, float *work);
/* The same from a planar input x[n, c, h, w] (a network's first convolution, on the images as
 * they come: no conversion, and for 1 or 3 channels no lanes of zeros), into a blocked y; the
 * same packing and workspace. */
void rn_convb_forward_planar_in(float *y, const float *x, const float *packed, int relu,
                                const rn_conv_shape *sh, float *work);
/* The weight gradient on blocked tensors: dw += the gradient of the weights [k, c, r, s] given
 * the blocked output gradient dy and input x (planar x[n, c, h, w] for the _planar_in one),
 * db += the sum of dy (each may be NULL), with rn_convb_backward_weights_workspace(sh) floats
 * of work (unused, and may be NULL, when dw is); sh->threads threads, the same bits whatever
 * their number. */
size_t rn_convb_backward_weights_workspace(const rn_conv_shape *sh);
void rn_convb_backward_weights(float *dw, float *db, const float *dy, const float *x,
                               const rn_conv_shape *sh, float *work);
void rn_convb_backward_weights_planar_in(float *dw, float *db, const float *dy, const float *x,
                                         const rn_conv_shape *sh, float *work);
/* The input gradient on blocked tensors: dx = the gradient of the input (overwritten) given
 * the blocked output gradient dy and the weights packed by rn_convb_backward_data_pack into
 * rn_convb_backward_data_packed_floats(sh) floats; any kernel, stride and padding, with
 * rn_convb_backward_data_workspace(sh) floats of work (sh->threads threads; the same bits
 * whatever their number). */
size_t rn_convb_backward_data_packed_floats(const rn_conv_shape *sh);
void rn_convb_backward_data_pack(float *packed, const float *w, const rn_conv_shape *sh);
size_t rn_convb_backward_data_workspace(const rn_conv_shape *sh);
void rn_convb_backward_data(float *dx, const float *dy, const float *packed,
                            const rn_conv_shape *sh, float *work);
/* Winograd F(2x2, 3x3) or F(4x4, 3x3) on blocked tensors, for the shapes rn_convb_wino_fits
 * (3x3, stride 1, pad 1): the same contract as rn_convb_pack / rn_convb_forward, with its own
 * packing (the transformed weights) and workspace (the transformed input and products). */
int rn_convb_wino_fits(const rn_conv_shape *sh);
/* ... and is faster than the direct kernel (convb_wino.c has the measurements). */
int rn_convb_wino_pays(const rn_conv_shape *sh);
/* The output tile's edge Winograd takes for sh: 4 where F(4x4, 3x3) is faster, else 2
 * (convb_wino.c has the measurements). */
int rn_convb_wino_tile(const rn_conv_shape *sh);
/* The tile a frozen network's forward takes on sh (4 or 2), or 0 for the direct kernel: the
 * tile rn_convb_wino_tile chooses, or a smaller one, where an image has tiles enough to reuse
 * the transformed weights (convb_wino.c). */
int rn_convb_wino_inference_tile(const rn_conv_shape *sh);
/* ... and the one the weight gradient takes (convb_wino.c). */
int rn_convb_wino_wgrad_tile(const rn_conv_shape *sh);
/* sh as a training forward runs it: Winograd with 2x2 tiles only, or the direct kernel where
 * that is faster (algo RN_CONV_DIRECT, for which rn_convb_wino_pays is 0; convb_wino.c has
 * why). */
rn_conv_shape rn_convb_wino_training_forward(const rn_conv_shape *sh);
/* For tests and probes: 2 or 4 takes that tile for every shape, 0 the choice above. Not to be
 * called while a convolution runs. */
void rn_convb_wino_force_tile(int m);
/* The weight gradient of such a convolution by Winograd on blocks: dw += the gradient of the
 * weights [k, c, 3, 3] given blocked dy and x, with rn_convb_wino_wgrad_workspace(sh) floats of
 * work (sh->threads threads; the same bits whatever their number). _pays: where it is used. */
int rn_convb_wino_wgrad_pays(const rn_conv_shape *sh);
/* The input gradient of such a convolution is one too, of dy with the weights transposed and
 * turned by 180 degrees, of shape t = rn_convb_wino_transposed(sh) (c and k, the maps,
 * swapped): _pack_backward_data packs them from the forward's w [k, c, 3, 3], for
 * rn_convb_wino_forward(dx, dy, packed, 0, t, work). */
rn_conv_shape rn_convb_wino_transposed(const rn_conv_shape *sh);
void rn_convb_wino_pack_backward_data(float *packed, const float *w, const rn_conv_shape *t);
size_t rn_convb_wino_wgrad_workspace(const rn_conv_shape *sh);
void rn_convb_wino_backward_weights(float *dw, const float *dy, const float *x,
                                    const rn_conv_shape *sh, float *work);
size_t rn_convb_wino_packed_floats(const rn_conv_shape *sh);
void rn_convb_wino_pack(float *packed, const float *w, const float *scale, const float *bias,
                        const rn_conv_shape *sh);
size_t rn_convb_wino_workspace(const rn_conv_shape *sh);
void rn_convb_wino_forward(float *y, const float *x, const float *packed, int relu,
                           const rn_conv_shape *sh, float *work);
void rn_convb_wino_forward_add(float *y, const float *x, const float *sum, const float *packed,
                               int relu, const rn_conv_shape *sh, float *work);
/* The FMA peak of this build's vector unit in GFLOP/s (2 per FMA lane), threads at once, the
 * best of repeated 1 ms bursts over about seconds: what the benchmarks' shares are of. */
double rn_convb_fma_peak(int threads, double seconds);

/* ---- batch normalization over (n, hw) per channel -------------------------------------
 * Training mode normalizes with the batch mean and the biased batch variance, and returns
 * both in mean[c] and var[c]; updating running statistics is the caller's job (see
 * rn_bn_update_running). Evaluation mode uses the given running statistics. */
void rn_bn_forward_train(float *y, float *mean, float *var, const float *x, const float *gamma,
                         const float *beta, int n, int c, int hw, float eps);
void rn_bn_forward_eval(float *y, const float *x, const float *gamma, const float *beta,
                        const float *run_mean, const float *run_var, int n, int c, int hw,
                        float eps);
/* running = (1 - momentum) * running + momentum * batch, with the variance made unbiased
 * (times count / (count - 1), count = n * hw), exactly as torch.nn.BatchNorm2d. */
void rn_bn_update_running(float *run_mean, float *run_var, const float *mean, const float *var,
                          int c, int count, float momentum);
/* Backward of training mode (batch statistics depend on x). dx, dgamma, dbeta may be NULL. */
void rn_bn_backward_train(float *dx, float *dgamma, float *dbeta, const float *dy, const float *x,
                          const float *gamma, const float *mean, const float *var, int n, int c,
                          int hw, float eps);
/* Backward of evaluation mode (statistics are constants). dx, dgamma, dbeta may be NULL. */
void rn_bn_backward_eval(float *dx, float *dgamma, float *dbeta, const float *dy, const float *x,
                         const float *gamma, const float *run_mean, const float *run_var, int n,
                         int c, int hw, float eps);

/* Fused with the ReLU that follows: y = max(0, bn(x)); the backward takes dy with respect to
 * that output and the output itself (relu_y), and equals rn_relu_backward followed by the
 * plain backward, bit for bit. */
void rn_bn_relu_forward_train(float *y, float *mean, float *var, const float *x,
                              const float *gamma, const float *beta, int n, int c, int hw,
                              float eps);
void rn_bn_relu_forward_eval(float *y, const float *x, const float *gamma, const float *beta,
                             const float *run_mean, const float *run_var, int n, int c, int hw,
                             float eps);
void rn_bn_relu_backward_train(float *dx, float *dgamma, float *dbeta, const float *dy,
                               const float *relu_y, const float *x, const float *gamma,
                               const float *mean, const float *var, int n, int c, int hw,
                               float eps);
void rn_bn_relu_backward_eval(float *dx, float *dgamma, float *dbeta, const float *dy,
                              const float *relu_y, const float *x, const float *gamma,
                              const float *run_mean, const float *run_var, int n, int c, int hw,
                              float eps);

/* ---- elementwise ---------------------------------------------------------------------- */
void rn_relu_forward(float *y, const float *x, size_t len);            /* y may equal x */
void rn_relu_backward(float *dx, const float *dy, const float *y, size_t len); /* uses output */
void rn_sigmoid_forward(float *y, const float *x, size_t len);
void rn_sigmoid_backward(float *dx, const float *dy, const float *y, size_t len);
/* y = a + alpha * b */
void rn_add_scaled(float *y, const float *a, const float *b, float alpha, size_t len);
/* y = max(a + alpha * b, 0): rn_add_scaled then rn_relu_forward in one pass, the same bits. */
void rn_add_scaled_relu(float *y, const float *a, const float *b, float alpha, size_t len);
/* dx = a + b where y > 0, else 0: the gradient of a ReLU (y its output) whose output gradient
 * is the sum a + b, in the sum's pass; the bits of rn_add_scaled (alpha 1) then
 * rn_relu_backward. */
void rn_add_relu_backward(float *dx, const float *a, const float *b, const float *y, size_t len);
/* y = x (not overlapping), split between threads like the loops above */
void rn_copy(float *y, const float *x, size_t len);
/* sum of a[i]^2 and of (a[i] - b[i])^2, in double, in index order (the same bits for any
 * thread count): the norms that the experiments measure */
double rn_sum_sq(const float *a, size_t len);
double rn_diff_sum_sq(const float *a, const float *b, size_t len);
/* One SGD step on p[0, len): d = g + wd p; with momentum mu != 0, buf = mu buf + d (buf = d
 * when !started) and d = buf, or d + mu buf when nesterov; then p -= lr d. */
void rn_sgd_update(float *p, const float *g, float *buf, size_t len, float lr, float wd, float mu,
                   int started, int nesterov);

/* ---- pooling -------------------------------------------------------------------------- */
/* Max pooling, square window k, pad <= k / 2 (as PyTorch requires); padded positions never
 * win.
 * Output size oh = (h + 2*pad - k) / stride + 1 (floor). */
void rn_maxpool_forward(float *y, const float *x, int n, int c, int h, int w, int k, int stride,
                        int pad, int oh, int ow);
/* dx is overwritten; the gradient goes to the first maximum of each window (row-major scan). */
void rn_maxpool_backward(float *dx, const float *dy, const float *x, int n, int c, int h, int w,
                         int k, int stride, int pad, int oh, int ow);
/* Global average pooling: y[n, c] = mean over hw of x[n, c, :]. */
void rn_gap_forward(float *y, const float *x, int n, int c, int hw);
void rn_gap_backward(float *dx, const float *dy, int n, int c, int hw);

/* ---- fully connected: y[n, k] = x[n, d] * w[k, d]^T + b[k] (b may be NULL) -----------
 * scratch: rn_fc_scratch_floats(n, d, k, threads) floats, or NULL to allocate it per call
 * (then both may return RN_ERR_NOMEM; with scratch given they cannot fail). The forward runs
 * on up to `threads` threads (call it from outside a parallel region); wt, w transposed
 * ([d][k]) or NULL, serves a few rows faster. The same bits for any count and either. */
size_t rn_fc_scratch_floats(int n, int d, int k, int threads);
int rn_fc_forward(float *y, const float *x, const float *w, const float *wt, const float *b,
                  int n, int d, int k, float *scratch, int threads);
/* dx overwritten (may be NULL), dw += , db += (may be NULL). */
int rn_fc_backward(float *dx, float *dw, float *db, const float *dy, const float *x,
                   const float *w, int n, int d, int k, float *scratch);

/* ---- softmax cross-entropy, mean over the batch ---------------------------------------
 * With label smoothing eps (Szegedy et al. 2016; 0: none): targets t = (1 - eps) * onehot +
 * eps / k, the loss -sum_j t_j log softmax_j, as torch's CrossEntropyLoss(label_smoothing=eps).
 * Returns the mean loss; dlogits (may be NULL) = (softmax - t) / n, overwritten. Labels must be
 * in [0, k); the caller checks. Accumulates in double. */
double rn_softmax_xent(float *dlogits, const float *logits, const int *labels, int n, int k,
                       float eps);

/* ---- option-A shortcut: identity with stride-s subsampling and zero-padded channels ----
 * y[n, oc, oh, ow] with oh = ceil(h / stride): y[:, pad0 + i, :, :] = x[:, i, ::stride, ::stride]
 * for i < c, zeros elsewhere; pad0 = (oc - c) / 2 (the rest of the padding goes after).
 * Requires oc >= c. */
void rn_shortcut_pad_forward(float *y, const float *x, int n, int c, int h, int w, int oc,
                             int stride);
/* dx (overwritten) = the matching slice of dy. */
void rn_shortcut_pad_backward(float *dx, const float *dy, int n, int c, int h, int w, int oc,
                              int stride);

#endif
