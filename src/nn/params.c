/* Named tensors and activation slots: registered while a network is built, then bound to a
 * few large arenas (parameters, gradients, buffers, counters, activations). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "kernels/kernels.h"
#include "nn/net.h"

int rn_net_add_tensor(rn_net *net, const char *name, rn_tensor_kind kind, int ndim,
                      const int64_t *shape, float **bind_data, float **bind_grad,
                      int64_t **bind_i64)
{
    if (strlen(name) >= RN_NAME_MAX) return rn_fail(RN_ERR_ARG, "tensor name too long: %s", name);
    if (net->n_tensors == net->cap_tensors) {
        int cap = net->cap_tensors ? 2 * net->cap_tensors : 64;
        rn_tensor_entry *t = realloc(net->tensors, (size_t)cap * sizeof *t);
        if (!t) return rn_fail(RN_ERR_NOMEM, "out of memory registering tensors");
        net->tensors = t;
        net->cap_tensors = cap;
    }
    rn_tensor_entry *e = &net->tensors[net->n_tensors++];
    memset(e, 0, sizeof *e);
    strcpy(e->name, name);
    e->kind = kind;
    e->ndim = ndim;
    e->numel = 1;
    for (int i = 0; i < ndim; i++) {
        e->shape[i] = shape[i];
        e->numel *= (size_t)shape[i];
    }
    e->bind_data = bind_data;
    e->bind_grad = bind_grad;
    e->bind_i64 = bind_i64;
    switch (kind) {
    case RN_TENSOR_PARAM: e->offset = net->n_params; net->n_params += e->numel; break;
    case RN_TENSOR_BUFFER: e->offset = net->n_buffers; net->n_buffers += e->numel; break;
    case RN_TENSOR_COUNTER: e->offset = net->n_counters; net->n_counters += e->numel; break;
    }
    return RN_OK;
}

static int add_named(rn_net *net, const char *prefix, const char *leaf, rn_tensor_kind kind,
                     int ndim, const int64_t *shape, float **data, float **grad, int64_t **i64)
{
    char name[RN_NAME_MAX * 2];
    snprintf(name, sizeof name, "%s.%s", prefix, leaf);
    return rn_net_add_tensor(net, name, kind, ndim, shape, data, grad, i64);
}

int rn_net_add_conv(rn_net *net, rn_conv *conv, const char *name, int in_c, int out_c, int k,
                    int stride, int has_bias, rn_shape3 in)
{
    conv->in_c = in_c;
    conv->out_c = out_c;
    conv->k = k;
    conv->stride = stride;
    conv->pad = (k - 1) / 2;
    conv->has_bias = has_bias;
    conv->in = in;
    conv->out.c = out_c;
    conv->out.h = (in.h + 2 * conv->pad - k) / stride + 1;
    conv->out.w = (in.w + 2 * conv->pad - k) / stride + 1;
    if (in.c != in_c || conv->out.h < 1 || conv->out.w < 1)
        return rn_fail(RN_ERR_ARG, "%s: input %dx%dx%d is too small for a %dx%d/%d convolution",
                       name, in.c, in.h, in.w, k, k, stride);
    int64_t wshape[4] = {out_c, in_c, k, k};
    int st = add_named(net, name, "weight", RN_TENSOR_PARAM, 4, wshape, &conv->w, &conv->dw, NULL);
    if (!st && has_bias) {
        int64_t bshape[1] = {out_c};
        st = add_named(net, name, "bias", RN_TENSOR_PARAM, 1, bshape, &conv->b, &conv->db, NULL);
    }
    if (!st && net->n_convs == net->cap_convs) {
        int cap = net->cap_convs ? 2 * net->cap_convs : 32;
        rn_conv **cs = realloc(net->convs, (size_t)cap * sizeof *cs);
        if (!cs) return rn_fail(RN_ERR_NOMEM, "out of memory registering %s", name);
        net->convs = cs;
        net->cap_convs = cap;
    }
    if (!st) net->convs[net->n_convs++] = conv;
    return st;
}

int rn_net_add_bn(rn_net *net, rn_bn *bn, const char *name, int c)
{
    int64_t shape[1] = {c};
    bn->c = c;
    bn->batch_mean = calloc((size_t)c, sizeof(float));
    bn->batch_var = calloc((size_t)c, sizeof(float));
    bn->batch_scale = calloc((size_t)c, sizeof(float));
    if (!bn->batch_mean || !bn->batch_var || !bn->batch_scale)
        return rn_fail(RN_ERR_NOMEM, "out of memory for %s", name);
    int st = add_named(net, name, "weight", RN_TENSOR_PARAM, 1, shape, &bn->w, &bn->dw, NULL);
    if (!st) st = add_named(net, name, "bias", RN_TENSOR_PARAM, 1, shape, &bn->b, &bn->db, NULL);
    if (!st)
        st = add_named(net, name, "running_mean", RN_TENSOR_BUFFER, 1, shape, &bn->run_mean,
                       NULL, NULL);
    if (!st)
        st = add_named(net, name, "running_var", RN_TENSOR_BUFFER, 1, shape, &bn->run_var, NULL,
                       NULL);
    if (!st)
        st = add_named(net, name, "num_batches_tracked", RN_TENSOR_COUNTER, 0, NULL, NULL, NULL,
                       &bn->batches_tracked);
    return st;
}

int rn_net_add_fc(rn_net *net, rn_fc *fc, const char *name, int in_dim, int out_dim)
{
    int64_t wshape[2] = {out_dim, in_dim}, bshape[1] = {out_dim};
    fc->in_dim = in_dim;
    fc->out_dim = out_dim;
    int st = add_named(net, name, "weight", RN_TENSOR_PARAM, 2, wshape, &fc->w, &fc->dw, NULL);
    if (!st) st = add_named(net, name, "bias", RN_TENSOR_PARAM, 1, bshape, &fc->b, &fc->db, NULL);
    return st;
}

static int add_slot(rn_net *net, float **bind, size_t per_image, size_t per_image_blk)
{
    if (net->n_slots == net->cap_slots) {
        int cap = net->cap_slots ? 2 * net->cap_slots : 64;
        rn_act_slot *s = realloc(net->slots, (size_t)cap * sizeof *s);
        if (!s) return rn_fail(RN_ERR_NOMEM, "out of memory registering activations");
        net->slots = s;
        net->cap_slots = cap;
    }
    net->slots[net->n_slots].per_image = per_image;
    net->slots[net->n_slots].per_image_blk = per_image_blk;
    net->slots[net->n_slots].bind = bind;
    net->slots[net->n_slots].block = net->slot_block;
    net->n_slots++;
    net->act_per_image += per_image;
    net->act_per_image_blk += per_image_blk;
    if (per_image > net->max_tensor) net->max_tensor = per_image;
    if (per_image_blk > net->max_tensor_blk) net->max_tensor_blk = per_image_blk;
    return RN_OK;
}

int rn_net_add_slot(rn_net *net, float **bind, size_t per_image)
{
    return add_slot(net, bind, per_image, per_image);
}

int rn_net_add_act(rn_net *net, float **bind, rn_shape3 s)
{
    return add_slot(net, bind, rn_shape3_size(s), rn_shape3_slot(s));
}

int rn_net_bind(rn_net *net)
{
    /* One allocation each, so zeroing gradients is one memset and SGD is one loop. calloc,
     * not rn_alloc_lines: the kernels read the weights through their packed copies, and
     * calloc's fresh pages stay untouched until used (an inference never touches the
     * gradients: zeroed by hand, resnet50's 100 MB of them were resident). */
    net->params = calloc(net->n_params ? net->n_params : 1, sizeof(float));
    net->grads = calloc(net->n_params ? net->n_params : 1, sizeof(float));
    net->buffers = calloc(net->n_buffers ? net->n_buffers : 1, sizeof(float));
    net->counters = calloc(net->n_counters ? net->n_counters : 1, sizeof(int64_t));
    if (!net->params || !net->grads || !net->buffers || !net->counters)
        return rn_fail(RN_ERR_NOMEM, "out of memory for %zu parameters", net->n_params);
    for (int i = 0; i < net->n_tensors; i++) {
        rn_tensor_entry *e = &net->tensors[i];
        switch (e->kind) {
        case RN_TENSOR_PARAM:
            *e->bind_data = net->params + e->offset;
            *e->bind_grad = net->grads + e->offset;
            break;
        case RN_TENSOR_BUFFER: *e->bind_data = net->buffers + e->offset; break;
        case RN_TENSOR_COUNTER: *e->bind_i64 = net->counters + e->offset; break;
        }
    }
    return RN_OK;
}

/* Is slot s its block's output? */
static int block_output_slot(const rn_net *net, const rn_act_slot *s)
{
    return s->block && s->bind == rn_block_output_bind(net->blocks[s->block - 1]);
}

/* Floats an image of the activation arena takes. A frozen network (layout 1) runs forward only,
 * and a block's forward reads only the block before's output and its own activations: the
 * blocks' outputs take turns in two buffers, each the size of the largest (outs, per image),
 * and their other activations share one arena the size of the largest block's (inner). A block
 * that writes its output over its input (rn_block_in_place) keeps the buffer of the block
 * before, so that its output is its input's memory. resnet50's inference at batch 16, 2
 * threads, peaked at 530 MB resident this way, 657 with an arena for the blocks of even and one
 * for those of odd index (933 with a slot for every activation, on another machine). */
static size_t act_layout(const rn_net *net, int layout, size_t *outs, size_t *inner)
{
    *outs = *inner = 0;
    if (layout != 1) return layout ? net->act_per_image_blk : net->act_per_image;
    size_t other = 0, in_block = 0;
    for (int i = 0; i < net->n_slots; i++) {
        const rn_act_slot *s = &net->slots[i];
        if (!s->block) {
            other += s->per_image_blk;
            continue;
        }
        if (i == 0 || net->slots[i - 1].block != s->block) in_block = 0;
        if (block_output_slot(net, s)) {
            if (s->per_image_blk > *outs) *outs = s->per_image_blk;
            continue;
        }
        in_block += s->per_image_blk;
        if (in_block > *inner) *inner = in_block;
    }
    return other + 2 * *outs + *inner;
}

/* Binds a frozen network's slots as act_layout lays them out (per_image floats an image, the
 * other slots first, then the two output buffers, then the arena), from p. */
static void bind_frozen(rn_net *net, float *p, int n, size_t per_image, size_t outs, size_t inner)
{
    float *const arena = p + (per_image - inner) * n, *at = arena;
    float *const out[2] = {arena - 2 * outs * n, arena - outs * n};
    int block = 0, turn = 1; /* the first block's output goes to out[0] */
    for (int i = 0; i < net->n_slots; i++) {
        const rn_act_slot *s = &net->slots[i];
        if (!s->block) {
            *s->bind = p;
            p += s->per_image_blk * (size_t)n;
            continue;
        }
        if (s->block != block) { /* a block's slots are registered together, in order */
            block = s->block;
            at = arena;
            if (!(block > 1 && rn_block_in_place(net, net->blocks[block - 1]))) turn = !turn;
        }
        if (block_output_slot(net, s)) {
            *s->bind = out[turn];
            continue;
        }
        *s->bind = at;
        at += s->per_image_blk * (size_t)n;
    }
}

int rn_net_reserve_batch(rn_net *net, int n)
{
    const int threads = rn_net_threads();
    const int layout = rn_net_layout(net);
    if (n <= net->run.batch_cap && threads == net->run.work_threads &&
        layout == net->run.work_layout)
        return RN_OK;
    if (n < net->run.batch_cap) n = net->run.batch_cap;
    net->run.work_floats = 0;
    net->run.work_threads = threads;
    net->run.work_layout = layout;
    for (int i = 0; i < net->n_convs; i++) {
        const rn_conv *c = net->convs[i];
        rn_conv_shape sh = rn_conv_shape_of(c, n, threads);
        size_t f = layout == 1   ? rn_conv_frozen_work(c, n, threads)
                   : layout == 2 ? rn_conv_blocked_work(c, n, threads)
                                 : rn_conv_workspace(&sh);
        /* training on blocks: a batch norm's sums, 4 doubles a channel (rn_blk_bn_*) */
        const size_t bn = layout == 2 ? 8 * (size_t)(c->in_c > c->out_c ? c->in_c : c->out_c) : 0;
        if (bn > f) f = bn;
        if (f > net->run.work_floats) net->run.work_floats = f;
    }
    /* The classifier shares the convolutions' workspace (it runs after the last convolution
     * forward and before the first backward), so a training step allocates nothing. */
    if (net->fc.out_dim) {
        size_t f = rn_fc_scratch_floats(n, net->fc.in_dim, net->fc.out_dim, threads);
        if (f > net->run.work_floats) net->run.work_floats = f;
    }
    /* The last forward's activations go with the old arrays: a backward (or a probe) after
     * this point, even after a failed allocation, needs a new forward first. */
    net->run.forward_done = 0;
    for (int i = 0; i < net->n_slots; i++) *net->slots[i].bind = NULL;
    free(net->run.act);
    free(net->run.work);
    for (int i = 0; i < 8; i++) free(net->run.grad.all[i]);
    memset(net->run.grad.all, 0, sizeof net->run.grad.all);
    net->run.batch_cap = 0;
    /* a frozen network keeps the planar size: it never runs a backward */
    const size_t max_tensor = layout == 2 ? net->max_tensor_blk : net->max_tensor;
    size_t outs, inner;
    const size_t per_image = act_layout(net, layout, &outs, &inner);
    net->run.act = rn_alloc_lines(per_image * (size_t)n, sizeof(float));
    net->run.work = rn_alloc_lines(net->run.work_floats + 1, sizeof(float));
    int ok = net->run.act && net->run.work;
    for (int i = 0; ok && i < 8; i++) {
        net->run.grad.all[i] = rn_alloc_lines(max_tensor * (size_t)n, sizeof(float));
        ok = net->run.grad.all[i] != NULL;
    }
    if (!ok)
        return rn_fail(RN_ERR_NOMEM, "out of memory for activations of a batch of %d (%.1f MiB)",
                       n, (double)(per_image + 9 * max_tensor) * n * 4 / 1048576.0);
    float *p = net->run.act;
    if (layout == 1) {
        bind_frozen(net, p, n, per_image, outs, inner);
    } else {
        for (int i = 0; i < net->n_slots; i++) {
            *net->slots[i].bind = p;
            p += (layout ? net->slots[i].per_image_blk : net->slots[i].per_image) * (size_t)n;
        }
    }
    net->run.batch_cap = n;
    return RN_OK;
}
