/* A network as an ONNX graph (rn_net_export_onnx): the evaluation forward of net.c, block.c and
 * seq.c, op for op. Batch norms stay BatchNormalization nodes with the running statistics (a
 * runtime folds them into the convolutions itself), and every weight keeps its torchvision
 * name as the initializer's name. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "io/onnx_export.h"
#include "nn/net.h"

#define VALUE_MAX (RN_NAME_MAX + 48)

typedef struct {
    const rn_net *net;
    rn_onnx *g;
    int cursor; /* where the last tensor was found: the walk meets them in build order */
    int relus;  /* ReLUs named so far in the current unit */
    int one;    /* the constant 1 of the highway gates is an initializer already */
} walker;

/* The registered tensor whose data pointer lives at field (&conv->w, &bn->run_var ...). */
static const rn_tensor_entry *entry_of(walker *w, float *const *field)
{
    const int n = w->net->n_tensors;
    for (int k = 0; k < n; k++) {
        int i = (w->cursor + k) % n;
        if (w->net->tensors[i].bind_data == field) {
            w->cursor = i;
            return &w->net->tensors[i];
        }
    }
    return NULL;
}

/* Adds the tensor at field as an initializer; its name goes to name. */
static int weight(walker *w, float *const *field, char name[RN_NAME_MAX])
{
    const rn_tensor_entry *e = entry_of(w, field);
    if (!e) return rn_fail(RN_ERR_ARG, "%s: a layer's tensor is not registered", w->net->arch);
    snprintf(name, RN_NAME_MAX, "%s", e->name);
    return rn_onnx_add_float(w->g, e->name, *field, e->shape, e->ndim);
}

/* Module name of a weight, "layer1.0.conv1" of "layer1.0.conv1.weight". */
static void module_of(char *out, const char *weight_name)
{
    snprintf(out, VALUE_MAX, "%s", weight_name);
    char *dot = strrchr(out, '.');
    if (dot) *dot = '\0';
}

/* Node op_type named `name` on inputs, whose output value (named as the node) replaces x. */
static int node(walker *w, const char *op, const char *name, const char *const *in, int n_in,
                char x[VALUE_MAX])
{
    int st = rn_onnx_add_node(w->g, op, name, in, n_in, name);
    if (!st) snprintf(x, VALUE_MAX, "%s", name);
    return st;
}

static int conv(walker *w, const rn_conv *c, char x[VALUE_MAX])
{
    char wname[RN_NAME_MAX], bname[RN_NAME_MAX], name[VALUE_MAX];
    int st = weight(w, &c->w, wname);
    if (!st && c->has_bias) st = weight(w, &c->b, bname);
    if (st) return st;
    module_of(name, wname);
    const char *in[3] = {x, wname, bname};
    const int64_t k[2] = {c->k, c->k}, s[2] = {c->stride, c->stride},
                  p[4] = {c->pad, c->pad, c->pad, c->pad};
    st = node(w, "Conv", name, in, c->has_bias ? 3 : 2, x);
    if (!st) st = rn_onnx_attr_ints(w->g, "kernel_shape", k, 2);
    if (!st) st = rn_onnx_attr_ints(w->g, "strides", s, 2);
    if (!st) st = rn_onnx_attr_ints(w->g, "pads", p, 4);
    return st;
}

/* Evaluation mode: the running statistics, eps as the forward's. */
static int batchnorm(walker *w, const rn_bn *bn, char x[VALUE_MAX])
{
    char n[4][RN_NAME_MAX], name[VALUE_MAX];
    int st = weight(w, &bn->w, n[0]);
    if (!st) st = weight(w, &bn->b, n[1]);
    if (!st) st = weight(w, &bn->run_mean, n[2]);
    if (!st) st = weight(w, &bn->run_var, n[3]);
    if (st) return st;
    module_of(name, n[0]);
    const char *in[5] = {x, n[0], n[1], n[2], n[3]};
    st = node(w, "BatchNormalization", name, in, 5, x);
    if (!st) st = rn_onnx_attr_float(w->g, "epsilon", RN_BN_EPS);
    return st;
}

static int unary(walker *w, const char *op, const char *name, char x[VALUE_MAX])
{
    const char *in[1] = {x};
    return node(w, op, name, in, 1, x);
}

static int relu(walker *w, const char *unit, char x[VALUE_MAX])
{
    char name[VALUE_MAX];
    snprintf(name, sizeof name, "%s.relu%d", unit, ++w->relus);
    return unary(w, "Relu", name, x);
}

/* Ops [from, to) of seq on x. */
static int seq(walker *w, const rn_seq *s, int from, int to, const char *unit, char x[VALUE_MAX])
{
    int st = RN_OK;
    for (int i = from; !st && i < to; i++) {
        const rn_op *op = &s->ops[i];
        switch (op->kind) {
        case RN_OP_CONV: st = conv(w, op->conv, x); break;
        case RN_OP_BN: st = batchnorm(w, op->bn, x); break;
        case RN_OP_RELU: st = relu(w, unit, x); break;
        case RN_OP_MAXPOOL: {
            /* seq.c's 3x3/2 pooling with one pixel of padding, floor rounding */
            const int64_t k[2] = {3, 3}, strides[2] = {2, 2}, p[4] = {1, 1, 1, 1};
            char name[VALUE_MAX];
            snprintf(name, sizeof name, "%s.maxpool", unit);
            st = unary(w, "MaxPool", name, x);
            if (!st) st = rn_onnx_attr_ints(w->g, "kernel_shape", k, 2);
            if (!st) st = rn_onnx_attr_ints(w->g, "strides", strides, 2);
            if (!st) st = rn_onnx_attr_ints(w->g, "pads", p, 4);
            break;
        }
        }
    }
    return st;
}

/* Option A (kernels/shortcut.c): every stride-th pixel from the first, then (oc - c) / 2 zero
 * channels before and the rest after. Slice with steps and a constant Pad. */
static int pad_shortcut(walker *w, const rn_block *b, char x[VALUE_MAX])
{
    char name[VALUE_MAX], k[4][VALUE_MAX];
    int st = RN_OK;
    if (b->stride > 1) {
        const int64_t starts[2] = {0, 0}, ends[2] = {INT64_MAX, INT64_MAX}, axes[2] = {2, 3},
                      steps[2] = {b->stride, b->stride}, two[1] = {2};
        const int64_t *vals[4] = {starts, ends, axes, steps};
        static const char *const leaf[4] = {"starts", "ends", "axes", "steps"};
        for (int i = 0; !st && i < 4; i++) {
            snprintf(k[i], VALUE_MAX, "%s.subsample.%s", b->name, leaf[i]);
            st = rn_onnx_add_int64(w->g, k[i], vals[i], two, 1);
        }
        const char *in[5] = {x, k[0], k[1], k[2], k[3]};
        snprintf(name, sizeof name, "%s.subsample", b->name);
        if (!st) st = node(w, "Slice", name, in, 5, x);
    }
    if (!st && b->out.c > b->in.c) {
        const int64_t before = (b->out.c - b->in.c) / 2, after = b->out.c - b->in.c - before;
        const int64_t pads[8] = {0, before, 0, 0, 0, after, 0, 0}, eight[1] = {8};
        snprintf(k[0], VALUE_MAX, "%s.pad.pads", b->name);
        st = rn_onnx_add_int64(w->g, k[0], pads, eight, 1);
        const char *in[2] = {x, k[0]};
        snprintf(name, sizeof name, "%s.pad", b->name);
        if (!st) st = node(w, "Pad", name, in, 2, x); /* mode "constant", value 0: the defaults */
    }
    return st;
}

/* The shortcut s of the tap value. */
static int shortcut(walker *w, const rn_block *b, const char *tap, char s[VALUE_MAX])
{
    snprintf(s, VALUE_MAX, "%s", tap);
    switch (b->sc) {
    case RN_SC_NONE:
    case RN_SC_IDENTITY: return RN_OK;
    case RN_SC_PAD: return pad_shortcut(w, b, s);
    case RN_SC_PROJECTION: {
        int st = conv(w, &b->proj, s);
        if (!st && b->proj_has_bn) st = batchnorm(w, &b->proj_bn, s);
        return st;
    }
    }
    return RN_OK;
}

/* A float scalar initializer. */
static int scalar(walker *w, const char *name, const float *value)
{
    return rn_onnx_add_float(w->g, name, value, NULL, 0);
}

static int binary(walker *w, const char *op, const char *name, const char *a, const char *b,
                  char out[VALUE_MAX])
{
    const char *in[2] = {a, b};
    return node(w, op, name, in, 2, out);
}

static const float one = 1.0f;

/* m = T f + (1 - T) s with T = sigmoid(gate(s)), as block.c; a deleted block's f is 0. */
static int highway_merge(walker *w, const rn_block *b, const char *f, const char *s,
                         char m[VALUE_MAX])
{
    char t[VALUE_MAX], carry[VALUE_MAX], carried[VALUE_MAX], tf[VALUE_MAX], name[VALUE_MAX];
    snprintf(t, sizeof t, "%s", s);
    int st = conv(w, &b->gate, t);
    snprintf(name, sizeof name, "%s.gate.sigmoid", b->name);
    if (!st) st = unary(w, "Sigmoid", name, t);
    if (!st && !w->one) st = scalar(w, "one", &one);
    w->one = 1;
    snprintf(name, sizeof name, "%s.gate.carry", b->name);
    if (!st) st = binary(w, "Sub", name, "one", t, carry);
    snprintf(name, sizeof name, "%s.gate.carried", b->name);
    if (!st) st = binary(w, "Mul", name, carry, s, carried);
    if (st || b->deleted) {
        snprintf(m, VALUE_MAX, "%s", carried);
        return st;
    }
    snprintf(name, sizeof name, "%s.gate.transformed", b->name);
    st = binary(w, "Mul", name, t, f, tf);
    snprintf(name, sizeof name, "%s.add", b->name);
    if (!st) st = binary(w, "Add", name, tf, carried, m);
    return st;
}

/* The merge of branch output f and shortcut s into m, as rn_block_forward in evaluation mode:
 * a stochastic-depth branch scaled by its survival probability, a deleted one left out. */
static int merge(walker *w, const rn_block *b, const char *x, const char *f, const char *s,
                 char m[VALUE_MAX])
{
    char name[VALUE_MAX], scaled[VALUE_MAX];
    if (b->kind == RN_BLOCK_PLAIN) {
        snprintf(m, VALUE_MAX, "%s", b->deleted ? x : f);
        return RN_OK;
    }
    if (b->kind == RN_BLOCK_HIGHWAY) return highway_merge(w, b, f, s, m);
    if (b->deleted) {
        snprintf(m, VALUE_MAX, "%s", s);
        return RN_OK;
    }
    int st = RN_OK;
    snprintf(scaled, sizeof scaled, "%s", f);
    if (b->survival != 1.0f) {
        char k[VALUE_MAX];
        snprintf(k, sizeof k, "%s.survival", b->name);
        snprintf(name, sizeof name, "%s.scale", b->name);
        st = scalar(w, k, &b->survival);
        if (!st) st = binary(w, "Mul", name, k, f, scaled);
    }
    snprintf(name, sizeof name, "%s.add", b->name);
    if (!st) st = binary(w, "Add", name, s, scaled, m);
    return st;
}

static int block(walker *w, const rn_block *b, char x[VALUE_MAX])
{
    char tap[VALUE_MAX], f[VALUE_MAX], s[VALUE_MAX], m[VALUE_MAX];
    w->relus = 0;
    snprintf(tap, sizeof tap, "%s", x);
    int st = seq(w, &b->branch, 0, b->tap, b->name, tap);
    snprintf(f, sizeof f, "%s", tap);
    if (!st && !b->deleted) st = seq(w, &b->branch, b->tap, b->branch.n, b->name, f);
    if (!st) st = shortcut(w, b, tap, s);
    if (!st) st = merge(w, b, x, f, s, m);
    if (!st) st = seq(w, &b->post, 0, b->post.n, b->name, m);
    if (!st) snprintf(x, VALUE_MAX, "%s", m);
    return st;
}

static int head(walker *w, char x[VALUE_MAX])
{
    char wname[RN_NAME_MAX], bname[RN_NAME_MAX];
    w->relus = 0;
    int st = seq(w, &w->net->head, 0, w->net->head.n, "head", x);
    if (!st) st = unary(w, "GlobalAveragePool", "avgpool", x);
    if (!st) st = unary(w, "Flatten", "flatten", x); /* axis 1: [N, C, 1, 1] to [N, C] */
    if (!st) st = weight(w, &w->net->fc.w, wname);
    if (!st) st = weight(w, &w->net->fc.b, bname);
    const char *in[3] = {x, wname, bname};
    /* torchvision's fc.weight is [classes, features]: y = x W^T + b */
    if (!st) st = rn_onnx_add_node(w->g, "Gemm", "fc", in, 3, "logits");
    if (!st) st = rn_onnx_attr_int(w->g, "transB", 1);
    return st;
}

/* "a,b,c" of the per-channel floats. */
static void float_list(char *buf, size_t size, const float *v, int n)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int c = 0; c < n && used < size; c++)
        used += (size_t)snprintf(buf + used, size - used, "%s%.9g", c ? "," : "", (double)v[c]);
}

/* The keys of rn_net_save's metadata, so that a deployment finds the same description. */
static int metadata(rn_onnx *g, const rn_net *net)
{
    char buf[512];
    const rn_net_options *o = &net->opt;
    int st = rn_onnx_add_meta(g, "arch", net->arch);
    if (!st) st = rn_onnx_add_meta(g, "ordering", rn_ordering_name(o->ordering));
    if (!st) st = rn_onnx_add_meta(g, "shortcut", rn_shortcut_name(o->shortcut));
    snprintf(buf, sizeof buf, "%.9g", (double)o->survival_last);
    if (!st && o->survival_last < 1.0f) st = rn_onnx_add_meta(g, "stochastic_depth", buf);
    snprintf(buf, sizeof buf, "%d", o->classes);
    if (!st) st = rn_onnx_add_meta(g, "classes", buf);
    snprintf(buf, sizeof buf, "%dx%dx%d", o->in_c, o->in_h, o->in_w);
    if (!st) st = rn_onnx_add_meta(g, "input", buf);
    if (!st && net->has_norm) {
        float_list(buf, sizeof buf, net->norm_mean, o->in_c);
        st = rn_onnx_add_meta(g, "normalize_mean", buf);
        float_list(buf, sizeof buf, net->norm_std, o->in_c);
        if (!st) st = rn_onnx_add_meta(g, "normalize_std", buf);
    }
    if (!st && net->n_labels) {
        cJSON *arr = cJSON_CreateStringArray((const char *const *)net->labels, net->n_labels);
        char *text = arr ? cJSON_PrintUnformatted(arr) : NULL;
        st = text ? rn_onnx_add_meta(g, "labels", text) : rn_fail(RN_ERR_NOMEM, "out of memory");
        free(text);
        cJSON_Delete(arr);
    }
    return st;
}

static const char doc_normalised[] =
    "resnet.c network. Input 'input': float32 [N, C, H, W] images normalised as in training: "
    "x = (pixel / 255 - normalize_mean[c]) / normalize_std[c] (metadata_props). Output 'logits': "
    "[N, classes], before softmax. Evaluation mode: batch norms use their running statistics.";
static const char doc_plain[] =
    "resnet.c network. Input 'input': float32 [N, C, H, W], as the network was trained on (the "
    "model stores no normalisation). Output 'logits': [N, classes], before softmax. Evaluation "
    "mode: batch norms use their running statistics.";

static int build(rn_onnx *g, const rn_net *net, int batch)
{
    const rn_net_options *o = &net->opt;
    const int64_t in_dims[4] = {batch ? batch : -1, o->in_c, o->in_h, o->in_w},
                  out_dims[2] = {batch ? batch : -1, o->classes};
    walker w = {.net = net, .g = g};
    char x[VALUE_MAX] = "input";
    char version[32];
    snprintf(version, sizeof version, "%s", rn_version());
    int st = rn_onnx_set_producer(g, "resnet.c", version);
    if (!st) st = rn_onnx_set_doc(g, net->has_norm ? doc_normalised : doc_plain);
    if (!st) st = metadata(g, net);
    if (!st) st = rn_onnx_add_input(g, "input", in_dims, 4, "N");
    if (!st) st = rn_onnx_add_output(g, "logits", out_dims, 2, "N");
    if (!st) st = seq(&w, &net->stem, 0, net->stem.n, "stem", x);
    for (int i = 0; !st && i < net->n_blocks; i++) st = block(&w, net->blocks[i], x);
    if (!st) st = head(&w, x);
    return st;
}

int rn_net_export_onnx(const rn_net *net, const char *path, int opset, int batch)
{
    if (!path) return rn_fail(RN_ERR_ARG, "ONNX export: no output file given");
    if (!opset) opset = RN_ONNX_OPSET_DEFAULT;
    if (opset < RN_ONNX_OPSET_MIN || opset > RN_ONNX_OPSET_MAX)
        return rn_fail(RN_ERR_ARG, "%s: ONNX opset %d is not supported (%d to %d)", path, opset,
                       RN_ONNX_OPSET_MIN, RN_ONNX_OPSET_MAX);
    if (batch < 0 || batch > RN_ONNX_MAX_BATCH)
        return rn_fail(RN_ERR_ARG, "%s: batch size %d out of range (0 = dynamic, or 1 to %d)",
                       path, batch, RN_ONNX_MAX_BATCH);
    if (!net->fc.out_dim)
        return rn_fail(RN_ERR_ARG, "%s: %s has no classifier head to export", path, net->arch);
    rn_onnx *g;
    int st = rn_onnx_create(&g, net->arch, opset);
    if (st) return rn_fail_context(st, "%s", path);
    st = build(g, net, batch);
    if (st) st = rn_fail_context(st, "%s", path);
    else st = rn_onnx_write(g, path);
    rn_onnx_free(g);
    return st;
}
