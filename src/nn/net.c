#define _POSIX_C_SOURCE 200809L /* strdup, strcasecmp */
/* The network: creation, forward, backward, and access to its tensors and structure. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/error.h"
#include "kernels/kernels.h"
#include "nn/net.h"

void rn_net_options_init(rn_net_options *opt)
{
    memset(opt, 0, sizeof *opt);
    opt->classes = 0; /* 0: the architecture's default (10 CIFAR, 1000 ImageNet) */
    opt->ordering = RN_ORDER_DEFAULT;
    opt->shortcut = RN_SHORTCUT_DEFAULT;
    opt->gate_bias = -2.0f;
    opt->survival_last = 1.0f;
    opt->seed = 1;
}

static const char *const ordering_names[5] = {"original", "bn-after-add", "relu-before-add",
                                              "relu-preact", "full-preact"};

int rn_ordering_parse(const char *text, rn_ordering *out)
{
    for (int i = 0; i < 5; i++) {
        char letter[2] = {(char)('a' + i), 0};
        if (!strcasecmp(text, ordering_names[i]) || !strcasecmp(text, letter)) {
            *out = (rn_ordering)i;
            return RN_OK;
        }
    }
    return rn_fail(RN_ERR_ARG,
                   "unknown block ordering '%s' (original, bn-after-add, relu-before-add, "
                   "relu-preact, full-preact, or a-e)",
                   text);
}

const char *rn_ordering_name(rn_ordering ordering)
{
    return ordering >= 0 && ordering < 5 ? ordering_names[ordering] : "default";
}

int rn_shortcut_parse(const char *text, rn_shortcut *out)
{
    if (text[0] && !text[1]) {
        char c = (char)(text[0] & ~0x20);
        if (c >= 'A' && c <= 'C') {
            *out = (rn_shortcut)(c - 'A');
            return RN_OK;
        }
    }
    return rn_fail(RN_ERR_ARG, "unknown shortcut option '%s' (A, B or C)", text);
}

const char *rn_shortcut_name(rn_shortcut shortcut)
{
    static const char *const names[3] = {"A", "B", "C"};
    return shortcut >= 0 && shortcut < 3 ? names[shortcut] : "default";
}

static void free_bn(rn_bn *bn)
{
    free(bn->batch_mean);
    free(bn->batch_var);
    free(bn->batch_scale);
}

void rn_net_free(rn_net *net)
{
    if (!net) return;
    rn_net_freeze(net, 0);
    for (int i = 0; i < net->n_blocks; i++) {
        rn_block *b = net->blocks[i];
        for (int j = 0; j < 3; j++) free_bn(&b->bn[j]);
        free_bn(&b->proj_bn);
        free(b);
    }
    free(net->blocks);
    free(net->run.input_grad_sq);
    free_bn(&net->stem_bn);
    free_bn(&net->head_bn);
    free(net->tensors);
    free(net->slots);
    free(net->params);
    free(net->grads);
    free(net->buffers);
    free(net->counters);
    free(net->run.act);
    free(net->run.work);
    free(net->convs);
    for (int i = 0; i < 8; i++) free(net->run.grad.all[i]);
    for (int i = 0; i < net->n_labels; i++) free(net->labels[i]);
    free(net->labels);
    free(net);
}

int rn_net_create(rn_net **out, const char *arch, const rn_net_options *opt)
{
    *out = NULL;
    if (!arch) return rn_fail(RN_ERR_ARG, "no architecture given");
    rn_net *net = calloc(1, sizeof *net);
    if (!net) return rn_fail(RN_ERR_NOMEM, "out of memory");
    if (opt) net->opt = *opt;
    else rn_net_options_init(&net->opt);
    snprintf(net->arch, sizeof net->arch, "%s", arch);
    int st = rn_net_build(net, arch);
    if (!st) st = rn_net_bind(net);
    if (st) {
        rn_net_free(net);
        return st;
    }
    rn_rng_seed(&net->rng, net->opt.seed);
    rn_net_init_weights(net);
    *out = net;
    return RN_OK;
}

const char *rn_net_arch(const rn_net *net) { return net->arch; }
void rn_net_get_options(const rn_net *net, rn_net_options *opt) { *opt = net->opt; }

int rn_net_forward(rn_net *net, const float *x, int n, int training, float *logits)
{
    if (!net->fc.out_dim)
        return rn_fail(RN_ERR_ARG, "%s has no classifier head: run it with rn_stack_forward",
                       net->arch);
    if (n <= 0) return rn_fail(RN_ERR_ARG, "batch size must be positive, not %d", n);
    if (training && net->frozen)
        return rn_fail(RN_ERR_ARG, "this network is frozen for inference (rn_net_freeze): it "
                                   "cannot run a training forward");
    if (training && n == 1 && net->opt.in_h * net->opt.in_w == 1)
        return rn_fail(RN_ERR_ARG, "training batch norm needs more than one value per channel");
    int st = rn_net_reserve_batch(net, n);
    if (st) return st;
    net->run.forward_done = 0; /* until this pass has filled every activation */
    net->run.n = n;
    net->run.training = training != 0;
    rn_seq_forward(net, &net->stem, x, 0, net->stem.n);
    const float *h = net->stem.n ? rn_seq_output(&net->stem) : x;
    for (int i = 0; i < net->n_blocks; i++) {
        rn_block_forward(net, net->blocks[i], h);
        h = rn_block_output(net->blocks[i]);
    }
    rn_seq_forward(net, &net->head, h, 0, net->head.n);
    const rn_shape3 last = net->n_blocks ? net->blocks[net->n_blocks - 1]->out : net->stem.ops[net->stem.n - 1].out;
    h = net->head.n ? rn_seq_output(&net->head) : h;
    (rn_net_layout(net) ? rn_blk_gap : rn_gap_forward)(net->run.pooled, h, n, last.c, last.h * last.w);
    st = rn_fc_forward(net->run.logits, net->run.pooled, net->fc.w, net->fc.wt, net->fc.b, n,
                       net->fc.in_dim,
                       net->fc.out_dim, net->run.work, net->run.work_threads);
    if (st) return st;
    if (logits) memcpy(logits, net->run.logits, (size_t)n * net->fc.out_dim * sizeof(float));
    net->run.forward_done = 1;
    return RN_OK;
}

int rn_net_backward(rn_net *net, const int *labels, float *loss)
{
    if (net->frozen)
        return rn_fail(RN_ERR_ARG,
                       "a network frozen for inference (rn_net_freeze) has no backward");
    if (!net->run.forward_done) return rn_fail(RN_ERR_ARG, "backward without a forward pass");
    if (!net->fc.out_dim)
        return rn_fail(RN_ERR_ARG, "%s has no classifier head: use rn_stack_backward", net->arch);
    int n = net->run.n, k = net->fc.out_dim;
    for (int i = 0; i < n; i++)
        if (labels[i] < 0 || labels[i] >= k)
            return rn_fail(RN_ERR_ARG, "label %d of sample %d is outside [0, %d)", labels[i], i, k);
    rn_grad_buffers *g = &net->run.grad;
    double l = rn_softmax_xent(g->carry[0], net->run.logits, labels, n, k, net->label_smoothing);
    if (loss) *loss = (float)l;
    if (net->run.loss_grad_scale != 0.0f) /* data-parallel: the mean over the global batch */
        for (size_t i = 0; i < (size_t)n * k; i++) g->carry[0][i] *= net->run.loss_grad_scale;
    int st = rn_fc_backward(g->carry[1], net->fc.dw, net->fc.db, g->carry[0], net->run.pooled,
                            net->fc.w, n, net->fc.in_dim, k, net->run.work);
    if (st) return st;
    rn_shape3 last = net->blocks[net->n_blocks - 1]->out;
    (net->blocked ? rn_blk_gap_backward : rn_gap_backward)(g->carry[0], g->carry[1], n, last.c,
                                                           last.h * last.w);
    /* the head's ping-pong borrows carry[1], which the blocks need only after it */
    const float *dy = rn_seq_backward(net, &net->head, g->carry[0], net->head.n, 0, g->carry[1],
                                      g->seq[0], 1);
    size_t len = rn_net_act_len(net, last);
    if (dy != g->carry[0]) memcpy(g->carry[0], dy, len * sizeof(float));
    int cur = 0, masked = 0;
    if (net->run.input_grad_sq) net->run.input_grad_sq[net->n_blocks] = rn_sum_sq(g->carry[0], len);
    for (int i = net->n_blocks - 1; i >= 0; i--) {
        /* the ReLU ending the block before in this block's last pass, unless the gradient
         * between the blocks is measured */
        const int mask =
            i > 0 && !net->run.input_grad_sq && rn_block_ends_in_relu(net->blocks[i - 1]);
        masked =
            rn_block_backward(net, net->blocks[i], g->carry[cur], masked, g->carry[1 - cur], mask);
        cur = 1 - cur;
        if (net->run.block_grads_done) net->run.block_grads_done(net->run.block_grads_ctx, i);
        if (net->run.input_grad_sq)
            net->run.input_grad_sq[i] =
                rn_sum_sq(g->carry[cur], rn_net_act_len(net, net->blocks[i]->in));
    }
    /* The stem's input gradient is not needed: skip its first convolution's dx. */
    rn_seq_backward(net, &net->stem, g->carry[cur], net->stem.n, 0, g->seq[0], g->seq[1], 0);
    return RN_OK;
}

int rn_net_set_label_smoothing(rn_net *net, float eps)
{
    if (!(eps >= 0.0f && eps < 1.0f))
        return rn_fail(RN_ERR_ARG, "label smoothing must be in [0, 1), not %g", (double)eps);
    net->label_smoothing = eps;
    return RN_OK;
}

float rn_net_label_smoothing(const rn_net *net) { return net->label_smoothing; }

void rn_net_get_rng_state(const rn_net *net, uint64_t state[4])
{
    memcpy(state, net->rng.s, sizeof net->rng.s);
}

void rn_net_set_rng_state(rn_net *net, const uint64_t state[4])
{
    memcpy(net->rng.s, state, sizeof net->rng.s);
}

void rn_net_zero_grad(rn_net *net) { memset(net->grads, 0, net->n_params * sizeof(float)); }

int rn_net_train_step(rn_net *net, const float *x, const int *labels, int n, float *loss)
{
    rn_net_zero_grad(net);
    int st = rn_net_forward(net, x, n, 1, NULL);
    return st ? st : rn_net_backward(net, labels, loss);
}

size_t rn_net_num_params(const rn_net *net) { return net->n_params; }
float *rn_net_params(rn_net *net) { return net->params; }
float *rn_net_grads(rn_net *net) { return net->grads; }
int rn_net_num_tensors(const rn_net *net) { return net->n_tensors; }

int rn_net_tensor(const rn_net *net, int index, rn_tensor_info *out)
{
    if (index < 0 || index >= net->n_tensors)
        return rn_fail(RN_ERR_ARG, "tensor index %d out of range", index);
    const rn_tensor_entry *e = &net->tensors[index];
    memset(out, 0, sizeof *out);
    out->name = e->name;
    out->kind = e->kind;
    out->ndim = e->ndim;
    memcpy(out->shape, e->shape, sizeof out->shape);
    out->numel = e->numel;
    switch (e->kind) {
    case RN_TENSOR_PARAM:
        out->data = net->params + e->offset;
        out->grad = net->grads + e->offset;
        break;
    case RN_TENSOR_BUFFER: out->data = net->buffers + e->offset; break;
    case RN_TENSOR_COUNTER: out->i64 = net->counters + e->offset; break;
    }
    return RN_OK;
}

int rn_net_find_tensor(const rn_net *net, const char *name, rn_tensor_info *out)
{
    for (int i = 0; i < net->n_tensors; i++)
        if (!strcmp(net->tensors[i].name, name)) return rn_net_tensor(net, i, out);
    return rn_fail(RN_ERR_ARG, "%s has no tensor named '%s'", net->arch, name);
}

/* ---- structure ---------------------------------------------------------------------------- */
int rn_net_num_units(const rn_net *net) { return net->n_blocks + 2; }
int rn_net_num_blocks(const rn_net *net) { return net->n_blocks; }

int rn_net_unit(const rn_net *net, int index, rn_unit_info *out)
{
    if (index < 0 || index > net->n_blocks + 1)
        return rn_fail(RN_ERR_ARG, "unit index %d out of range", index);
    memset(out, 0, sizeof *out);
    out->survival = 1.0f;
    rn_shape3 s;
    if (index == 0) {
        snprintf(out->name, sizeof out->name, "stem");
        s = net->stem.n ? net->stem.ops[net->stem.n - 1].out
                        : (rn_shape3){net->opt.in_c, net->opt.in_h, net->opt.in_w};
        out->params = rn_seq_params(&net->stem);
        out->macs = rn_seq_macs(&net->stem);
    } else if (index <= net->n_blocks) {
        const rn_block *b = net->blocks[index - 1];
        snprintf(out->name, sizeof out->name, "%s", b->name);
        out->stage = b->stage;
        s = b->out;
        out->params = rn_block_params(b);
        out->macs = rn_block_macs(b);
        out->survival = b->survival;
        out->deleted = b->deleted;
    } else {
        snprintf(out->name, sizeof out->name, "head");
        out->stage = net->n_stages + 1;
        s = (rn_shape3){net->fc.out_dim, 1, 1};
        out->params = rn_seq_params(&net->head) + (size_t)net->fc.in_dim * net->fc.out_dim +
                      (size_t)net->fc.out_dim;
        out->macs = (uint64_t)net->fc.in_dim * net->fc.out_dim;
    }
    out->out_c = s.c;
    out->out_h = s.h;
    out->out_w = s.w;
    return RN_OK;
}

uint64_t rn_net_macs(const rn_net *net)
{
    uint64_t total = 0;
    rn_unit_info u;
    for (int i = 0; i < rn_net_num_units(net); i++)
        if (!rn_net_unit(net, i, &u)) total += u.macs;
    return total;
}

static int check_block(const rn_net *net, int block)
{
    if (block < 0 || block >= net->n_blocks)
        return rn_fail(RN_ERR_ARG, "block %d out of range (the network has %d)", block,
                       net->n_blocks);
    if (net->blocks[block]->kind == RN_BLOCK_PLAIN)
        return rn_fail(RN_ERR_ARG, "%s is a plain block: without a shortcut it cannot be skipped",
                       net->blocks[block]->name);
    return RN_OK;
}

int rn_net_set_block_deleted(rn_net *net, int block, int deleted)
{
    /* A plain block whose output has its input's shape can be deleted too: the input goes on
     * unchanged (Veit et al. 2016 delete layers of VGG nets so). */
    if (block >= 0 && block < net->n_blocks && net->blocks[block]->kind == RN_BLOCK_PLAIN) {
        const rn_block *b = net->blocks[block];
        if (b->in.c != b->out.c || b->in.h != b->out.h || b->in.w != b->out.w)
            return rn_fail(RN_ERR_ARG, "%s is a plain block that changes the shape (%dx%dx%d to "
                                       "%dx%dx%d): it cannot be deleted",
                           b->name, b->in.c, b->in.h, b->in.w, b->out.c, b->out.h, b->out.w);
        net->blocks[block]->deleted = deleted != 0;
        return RN_OK;
    }
    int st = check_block(net, block);
    if (!st) net->blocks[block]->deleted = deleted != 0;
    return st;
}

int rn_net_set_block_survival(rn_net *net, int block, float survival)
{
    int st = check_block(net, block);
    if (st) return st;
    if (!(survival > 0.0f && survival <= 1.0f))
        return rn_fail(RN_ERR_ARG, "survival probability must be in (0, 1], not %g", (double)survival);
    if (net->blocks[block]->kind != RN_BLOCK_RESIDUAL && survival != 1.0f)
        return rn_fail(RN_ERR_ARG, "stochastic depth applies to residual blocks only");
    net->blocks[block]->survival = survival;
    return RN_OK;
}

/* ---- metadata carried in files -------------------------------------------------------------- */
int rn_net_set_normalization(rn_net *net, const float *mean, const float *std)
{
    for (int c = 0; c < net->opt.in_c; c++)
        if (!(std[c] > 0.0f))
            return rn_fail(RN_ERR_ARG, "normalization std of channel %d must be positive", c);
    memcpy(net->norm_mean, mean, (size_t)net->opt.in_c * sizeof(float));
    memcpy(net->norm_std, std, (size_t)net->opt.in_c * sizeof(float));
    net->has_norm = 1;
    return RN_OK;
}

int rn_net_get_normalization(const rn_net *net, float *mean, float *std)
{
    if (!net->has_norm) return 0;
    memcpy(mean, net->norm_mean, (size_t)net->opt.in_c * sizeof(float));
    memcpy(std, net->norm_std, (size_t)net->opt.in_c * sizeof(float));
    return 1;
}

int rn_net_set_labels(rn_net *net, const char *const *names, int count)
{
    char **copy = calloc(count > 0 ? (size_t)count : 1, sizeof *copy);
    if (!copy) return rn_fail(RN_ERR_NOMEM, "out of memory");
    for (int i = 0; i < count; i++) {
        copy[i] = strdup(names[i] ? names[i] : "");
        if (!copy[i]) {
            for (int j = 0; j < i; j++) free(copy[j]);
            free(copy);
            return rn_fail(RN_ERR_NOMEM, "out of memory");
        }
    }
    for (int i = 0; i < net->n_labels; i++) free(net->labels[i]);
    free(net->labels);
    net->labels = copy;
    net->n_labels = count;
    return RN_OK;
}

const char *rn_net_label(const rn_net *net, int index)
{
    return index >= 0 && index < net->n_labels ? net->labels[index] : NULL;
}
