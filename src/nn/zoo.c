/* The architecture zoo: names to layouts (docs/architecture.md), and torchvision's
 * initialisation. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "nn/net.h"

typedef struct {
    int imagenet;        /* 7x7/2 stem + max pool, four stages, 64.. channels */
    rn_block_kind kind;
    int bottleneck;
    int ordering, shortcut;
    int stages;
    int blocks[4];
    int width[4];        /* basic: output channels; bottleneck: mid channels (out = 4x) */
    int stem_c;
    int stem_stride;
} rn_layout;

static const char *const arch_names[] = {
    "resnet20", "resnet32", "resnet44", "resnet56", "resnet110", "resnet1202",
    "plain20", "plain32", "plain44", "plain56", "plain110",
    "highway20", "highway56", "highway110",
    "preresnet110", "preresnet164", "preresnet1001",
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "plain18", "plain34",
    "wrn-D-K", NULL,
};

const char *const *rn_arch_names(void) { return arch_names; }

static int parse_int(const char *s, int *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    /* resnet1202 is the deepest of the papers; a name of depth 84400 took 2 GB to list */
    if (end == s || *end || v <= 0 || v > 10000) return -1;
    *out = (int)v;
    return 0;
}

static void cifar_layout(rn_layout *l, int n, int bottleneck, int w0)
{
    l->imagenet = 0;
    l->bottleneck = bottleneck;
    l->stages = 3;
    l->stem_c = 16;
    l->stem_stride = 1;
    for (int i = 0; i < 3; i++) {
        l->blocks[i] = n;
        l->width[i] = w0 << i;
    }
}

static int imagenet_layout(rn_layout *l, int depth)
{
    static const struct { int depth, bottleneck, blocks[4]; } table[] = {
        {18, 0, {2, 2, 2, 2}},  {34, 0, {3, 4, 6, 3}},   {50, 1, {3, 4, 6, 3}},
        {101, 1, {3, 4, 23, 3}}, {152, 1, {3, 8, 36, 3}},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        if (table[i].depth != depth) continue;
        l->imagenet = 1;
        l->bottleneck = table[i].bottleneck;
        l->stages = 4;
        l->stem_c = 64;
        l->stem_stride = 2;
        for (int s = 0; s < 4; s++) {
            l->blocks[s] = table[i].blocks[s];
            l->width[s] = 64 << s;
        }
        return 0;
    }
    return -1;
}

/* A CIFAR-layout name with a variant: resnetD-wW (W, 2W, 4W channels and a W-channel stem
 * instead of 16) and/or -s2 (a stride-2 stem: every map half the size, for the cost of the
 * base net at 4x the width when W = 32). */
static int cifar_variant(rn_layout *l, const char *digits, const char *variant)
{
    int depth, w = 16, stride = 1;
    char num[16];
    snprintf(num, sizeof num, "%.*s", (int)(variant - digits), digits);
    rn_layout imagenet;
    if (parse_int(num, &depth) || depth < 8 || (depth - 2) % 6 || !imagenet_layout(&imagenet, depth))
        return -1; /* resnet50-w32 would read as a variant of the ImageNet resnet50 */
    const char *p = variant;
    if (!strncmp(p, "-w", 2)) {
        char *end;
        long v = strtol(p + 2, &end, 10);
        if (end == p + 2 || v < 1 || v > 1024) return -1;
        w = (int)v;
        p = end;
    }
    if (!strncmp(p, "-s", 2)) {
        if (strcmp(p + 2, "1") && strcmp(p + 2, "2")) return -1;
        stride = p[2] - '0';
        p += 3;
    }
    if (*p || p == variant) return -1;
    cifar_layout(l, (depth - 2) / 6, 0, w);
    l->stem_c = w;
    l->stem_stride = stride;
    return 0;
}

static int parse_arch(const char *arch, rn_layout *l)
{
    int depth, k;
    memset(l, 0, sizeof *l);
    l->kind = RN_BLOCK_RESIDUAL;
    l->ordering = RN_ORDER_ORIGINAL;
    l->shortcut = RN_SHORTCUT_A;
    if (!strncmp(arch, "wrn-", 4)) {
        char buf[32];
        snprintf(buf, sizeof buf, "%s", arch + 4);
        char *dash = strchr(buf, '-');
        if (!dash) return -1;
        *dash = '\0';
        if (parse_int(buf, &depth) || parse_int(dash + 1, &k) || depth < 10 || (depth - 4) % 6)
            return -1;
        cifar_layout(l, (depth - 4) / 6, 0, 16 * k);
        l->ordering = RN_ORDER_FULL_PREACT;
        l->shortcut = RN_SHORTCUT_B;
        return 0;
    }
    const char *digits;
    if (!strncmp(arch, "preresnet", 9)) digits = arch + 9;
    else if (!strncmp(arch, "resnet", 6)) digits = arch + 6;
    else if (!strncmp(arch, "plain", 5)) digits = arch + 5;
    else if (!strncmp(arch, "highway", 7)) digits = arch + 7;
    else return -1;
    if (!strncmp(arch, "plain", 5)) l->kind = RN_BLOCK_PLAIN;
    if (!strncmp(arch, "highway", 7)) l->kind = RN_BLOCK_HIGHWAY;
    const char *variant = strchr(digits, '-');
    if (variant) return strncmp(arch, "preresnet", 9) ? cifar_variant(l, digits, variant) : -1;
    if (parse_int(digits, &depth)) return -1;

    if (!strncmp(arch, "preresnet", 9)) {
        l->ordering = RN_ORDER_FULL_PREACT;
        l->shortcut = RN_SHORTCUT_B;
        /* 9n+2 layers of bottlenecks (164, 1001, and small ones such as 11 for tests);
         * 6n+2 of basic blocks (110) where both fit below 164. */
        if ((depth - 2) % 9 == 0 && (depth >= 164 || (depth - 2) % 6))
            cifar_layout(l, (depth - 2) / 9, 1, 16);
        else if (depth >= 8 && (depth - 2) % 6 == 0) cifar_layout(l, (depth - 2) / 6, 0, 16);
        else return -1;
        return 0;
    }
    /* The ImageNet depths win over 6n+2 (resnet50, resnet152), but plain nets have no
     * bottleneck layout: plain50 is the CIFAR one. */
    if (l->kind != RN_BLOCK_HIGHWAY && !imagenet_layout(l, depth) &&
        !(l->kind == RN_BLOCK_PLAIN && l->bottleneck)) {
        l->shortcut = RN_SHORTCUT_B;
        return 0;
    }
    if (depth < 8 || (depth - 2) % 6) return -1;
    cifar_layout(l, (depth - 2) / 6, 0, 16);
    return 0;
}

int rn_net_build(rn_net *net, const char *arch)
{
    rn_layout l;
    if (parse_arch(arch, &l))
        return rn_fail(RN_ERR_ARG,
                       "unknown architecture '%s' (try resnet20..1202, plain20..110, highway20..110,"
                       " preresnet110/164/1001, resnet18..152, plain18/34, wrn-D-K, resnetD-wW-s2)",
                       arch);
    rn_net_options *o = &net->opt;
    if (o->ordering == RN_ORDER_DEFAULT) o->ordering = l.ordering;
    if (o->shortcut == RN_SHORTCUT_DEFAULT) o->shortcut = l.shortcut;
    if (o->classes <= 0) o->classes = l.imagenet ? 1000 : 10;
    if (o->in_c <= 0) o->in_c = 3;
    if (o->in_h <= 0) o->in_h = l.imagenet ? 224 : 32;
    if (o->in_w <= 0) o->in_w = l.imagenet ? 224 : 32;
    if (o->ordering < 0 || o->ordering > 4) return rn_fail(RN_ERR_ARG, "unknown block ordering %d", o->ordering);
    if (o->shortcut < 0 || o->shortcut > 2) return rn_fail(RN_ERR_ARG, "unknown shortcut option %d", o->shortcut);
    if (o->in_c > RN_MAX_INPUT_CHANNELS)
        return rn_fail(RN_ERR_ARG, "at most %d input channels, not %d", RN_MAX_INPUT_CHANNELS,
                       o->in_c);
    if (o->in_h > RN_MAX_INPUT_SIDE || o->in_w > RN_MAX_INPUT_SIDE)
        return rn_fail(RN_ERR_ARG, "input of %d x %d pixels: at most %d on a side", o->in_h,
                       o->in_w, RN_MAX_INPUT_SIDE);
    if (!(o->survival_last > 0.0f && o->survival_last <= 1.0f))
        return rn_fail(RN_ERR_ARG, "stochastic-depth survival must be in (0, 1], not %g",
                       (double)o->survival_last);
    net->imagenet_layout = l.imagenet;
    net->n_stages = l.stages;

    int st;
    rn_shape3 shape = {o->in_c, o->in_h, o->in_w};
    int preact = o->ordering == RN_ORDER_FULL_PREACT;
    int k = l.imagenet ? 7 : 3, stride = l.stem_stride;
    st = rn_net_add_conv(net, &net->stem_conv, "conv1", o->in_c, l.stem_c, k, stride, 0, shape);
    if (st) return st;
    const char *stem = l.imagenet ? "CBRM" : preact ? "C" : "CBR";
    if (strchr(stem, 'B')) {
        st = rn_net_add_bn(net, &net->stem_bn, "bn1", l.stem_c);
        if (st) return st;
    }
    int nc = 0, nb = 0;
    st = rn_seq_build(net, &net->stem, stem, &net->stem_conv, &nc, &net->stem_bn, &nb, "stem", &shape);
    if (st) return st;

    int total = 0;
    for (int s = 0; s < l.stages; s++) total += l.blocks[s];
    net->blocks = calloc((size_t)total, sizeof *net->blocks);
    if (!net->blocks) return rn_fail(RN_ERR_NOMEM, "out of memory for %d blocks", total);
    rn_block_spec spec = {.kind = l.kind, .bottleneck = l.bottleneck, .ordering = o->ordering,
                          .shortcut = o->shortcut};
    for (int s = 0; s < l.stages; s++) {
        for (int i = 0; i < l.blocks[s]; i++) {
            char name[32];
            snprintf(name, sizeof name, "layer%d.%d", s + 1, i);
            spec.stride = (i == 0 && s > 0) ? 2 : 1;
            spec.mid_c = l.width[s];
            spec.out_c = l.bottleneck ? 4 * l.width[s] : l.width[s];
            rn_block *b = calloc(1, sizeof *b);
            if (!b) return rn_fail(RN_ERR_NOMEM, "out of memory for block %s", name);
            net->blocks[net->n_blocks++] = b;
            st = rn_block_build(net, b, name, s + 1, shape, &spec);
            if (st) return st;
            shape = b->out;
            /* Huang et al. 2016: survival decays linearly from 1 to survival_last. */
            if (l.kind == RN_BLOCK_RESIDUAL)
                b->survival = 1.0f - (float)net->n_blocks / (float)total * (1.0f - o->survival_last);
        }
    }

    const char *head = preact ? "BR" : o->ordering == RN_ORDER_RELU_PREACT ? "R" : "";
    if (strchr(head, 'B')) {
        st = rn_net_add_bn(net, &net->head_bn, "bn_final", shape.c);
        if (st) return st;
    }
    nc = nb = 0;
    st = rn_seq_build(net, &net->head, head, NULL, &nc, &net->head_bn, &nb, "head", &shape);
    if (st) return st;
    st = rn_net_add_fc(net, &net->fc, "fc", shape.c, o->classes);
    if (st) return st;
    st = rn_net_add_slot(net, &net->run.pooled, (size_t)shape.c);
    if (!st) st = rn_net_add_slot(net, &net->run.logits, (size_t)o->classes);
    return st;
}

static void init_conv(rn_net *net, rn_conv *c)
{
    /* Kaiming normal, fan_out mode, ReLU gain: std = sqrt(2 / (out_c * k * k)). */
    float std = sqrtf(2.0f / (float)(c->out_c * c->k * c->k));
    size_t len = (size_t)c->out_c * c->in_c * c->k * c->k;
    for (size_t i = 0; i < len; i++) c->w[i] = std * rn_rng_normal(&net->rng);
}

static void init_bn(rn_bn *bn, float gamma)
{
    for (int i = 0; i < bn->c; i++) {
        bn->w[i] = gamma;
        bn->b[i] = 0.0f;
        bn->run_mean[i] = 0.0f;
        bn->run_var[i] = 1.0f;
    }
    *bn->batches_tracked = 0;
}

void rn_net_init_weights(rn_net *net)
{
    init_conv(net, &net->stem_conv);
    if (net->stem_bn.c) init_bn(&net->stem_bn, 1.0f);
    for (int i = 0; i < net->n_blocks; i++) rn_block_init_weights(net, net->blocks[i]);
    if (net->head_bn.c) init_bn(&net->head_bn, 1.0f);
    /* nn.Linear: weight and bias uniform in +-1/sqrt(fan_in). */
    float bound = 1.0f / sqrtf((float)net->fc.in_dim);
    size_t len = (size_t)net->fc.in_dim * net->fc.out_dim;
    for (size_t i = 0; i < len; i++) net->fc.w[i] = bound * (2.0f * rn_rng_uniform(&net->rng) - 1.0f);
    for (int i = 0; i < net->fc.out_dim; i++)
        net->fc.b[i] = bound * (2.0f * rn_rng_uniform(&net->rng) - 1.0f);
}

void rn_block_init_weights(rn_net *net, rn_block *b)
{
    for (int j = 0; j < b->n_conv; j++) init_conv(net, &b->conv[j]);
    for (int j = 0; j < b->n_bn; j++) init_bn(&b->bn[j], 1.0f);
    if (b->sc == RN_SC_PROJECTION) {
        init_conv(net, &b->proj);
        if (b->proj_has_bn) init_bn(&b->proj_bn, 1.0f);
    }
    if (b->kind == RN_BLOCK_HIGHWAY) {
        init_conv(net, &b->gate);
        for (int c = 0; c < b->gate.out_c; c++) b->gate.b[c] = net->opt.gate_bias;
    }
    if (net->opt.zero_init_last_bn && b->kind != RN_BLOCK_PLAIN) {
        /* The last BN inside the branch: F(x) = 0 at the start in every ordering. */
        for (int j = b->branch.n - 1; j >= 0; j--) {
            if (b->branch.ops[j].kind != RN_OP_BN) continue;
            for (int c = 0; c < b->branch.ops[j].bn->c; c++) b->branch.ops[j].bn->w[c] = 0.0f;
            break;
        }
    }
}
