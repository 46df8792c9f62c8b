/* gradflow: the norm of the loss gradient at every layer of plain, residual and highway nets of
 * several depths, at initialisation and after a few hundred SGD steps. Shortcuts carry the
 * gradient to the first layers unchanged; a plain net passes it through every layer's Jacobian,
 * so what reaches its first layers changes with depth (He et al. 2016, Sec. 2; Srivastava et
 * al. 2015). Trained in memory on fixed batches of the real training data: no run folders. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/rng.h"
#include "experiments/experiment.h"

#define MAX_DEPTHS 4
#define N_KINDS 3
#define MAX_NETS (N_KINDS * MAX_DEPTHS)

static const rn_xopt opts[] = {
    {"depths", RN_XOPT_INTS, "20,56,110", "8,14", "depths of the nets (6n+2)"},
    {"stem-stride", RN_XOPT_INT, "2", "2", "1: the CIFAR nets as published; 2: a stride-2 stem "
                                           "(maps half the size, 4x cheaper; for 28x28 images)"},
    {"steps", RN_XOPT_INT, "200", "5", "SGD steps between the two measurements"},
    {"batch", RN_XOPT_INT, "128", "32", "images per step and in the measurement batch"},
    {"lr", RN_XOPT_FLOAT, "0.1", "0.1", "SGD learning rate (momentum 0.9, weight decay 1e-4)"},
    {"warmup", RN_XOPT_INT, "100", "2", "the first steps at a tenth of the rate, as He et al. "
                                        "trained their 110-layer net"},
    {NULL, 0, NULL, NULL, NULL},
};

static const char *const kinds[N_KINDS] = {"plain", "resnet", "highway"};

/* One measurement: the gradient norm of every convolution weight and at every block's input. */
typedef struct {
    int n_convs, n_blocks; /* block norms: n_blocks + 1 (the last is the head's input) */
    double *conv, *block;
    char (*names)[64];
    double loss, head_direct_sq; /* head_direct_sq: NaN where the head is not just pool + fc */
} measure;

typedef struct {
    char name[40];
    int kind, depth;
    measure at[2];    /* at initialisation, after training */
    double repeat_diff; /* largest difference between two measurements at the same weights */
    int diverged;     /* the step at which the loss stopped being finite; 0: never */
} net_result;

typedef struct {
    const rn_dataset *train;
    int *order; /* a seeded permutation of the training set */
    float mean[RN_MAX_INPUT_CHANNELS], std[RN_MAX_INPUT_CHANNELS];
    int batch, steps, warmup;
    float *x;
    int *labels;
} batches;

static void measure_free(measure *m)
{
    free(m->conv);
    free(m->block);
    free(m->names);
    memset(m, 0, sizeof *m);
}

/* Images order[start .. start + batch) (wrapping), normalised as the trainer does. */
static void make_batch(batches *b, long start)
{
    const rn_dataset *d = b->train;
    const size_t plane = (size_t)d->h * d->w;
    for (int i = 0; i < b->batch; i++) {
        const int idx = b->order[(start + i) % d->n];
        b->labels[i] = d->labels[idx];
        for (int c = 0; c < d->c; c++) {
            const uint8_t *p = d->pixels + ((size_t)idx * d->c + c) * plane;
            float *o = b->x + ((size_t)i * d->c + c) * plane;
            for (size_t k = 0; k < plane; k++) o[k] = (p[k] / 255.0f - b->mean[c]) / b->std[c];
        }
    }
}

static int is_conv_weight(const char *name)
{
    static const char *const ends[] = {"conv1.weight", "conv2.weight", "conv3.weight"};
    const size_t n = strlen(name);
    for (int i = 0; i < 3; i++) {
        const size_t e = strlen(ends[i]);
        /* the stem's "conv1.weight" or a block's "layerS.B.convK.weight" */
        if (n >= e && !strcmp(name + n - e, ends[i]) && (n == e || name[n - e - 1] == '.'))
            return 1;
    }
    return 0;
}

static double norm_of(const float *v, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)v[i] * (double)v[i];
    return sqrt(s);
}

/* The gradient at the head's input straight from the logits and the classifier, where the head
 * is global average pooling + fc: g = (softmax - onehot) / n, dpool = g W, and each of the h*w
 * positions receives dpool / (h w), so the squared norm is sum dpool^2 / (h w). */
static double head_direct(const rn_net *net, const float *logits, const int *labels, int n)
{
    rn_net_options o;
    rn_net_get_options(net, &o);
    if (o.ordering == RN_ORDER_RELU_PREACT || o.ordering == RN_ORDER_FULL_PREACT) return NAN;
    rn_tensor_info fc;
    rn_unit_info last;
    if (rn_net_find_tensor(net, "fc.weight", &fc) || rn_net_unit(net, rn_net_num_blocks(net), &last))
        return NAN;
    const int k = (int)fc.shape[0], c = (int)fc.shape[1];
    double *g = malloc((size_t)k * sizeof *g), sq = 0.0;
    if (!g) return NAN;
    for (int i = 0; i < n; i++) {
        const float *l = logits + (size_t)i * k;
        double mx = l[0], z = 0.0;
        for (int j = 1; j < k; j++) mx = l[j] > mx ? l[j] : mx;
        for (int j = 0; j < k; j++) z += exp(l[j] - mx);
        for (int j = 0; j < k; j++) g[j] = (exp(l[j] - mx) / z - (j == labels[i])) / n;
        for (int ch = 0; ch < c; ch++) {
            double dp = 0.0;
            for (int j = 0; j < k; j++) dp += g[j] * fc.data[(size_t)j * c + ch];
            sq += dp * dp;
        }
    }
    free(g);
    return sq / ((double)last.out_h * last.out_w);
}

/* Forward (training mode: batch statistics) and backward of the measurement batch. */
static int take(rn_net *net, const float *x, const int *labels, int n, measure *m)
{
    const int nb = rn_net_num_blocks(net), nt = rn_net_num_tensors(net);
    rn_net_options o;
    rn_net_get_options(net, &o);
    float *logits = malloc((size_t)n * o.classes * sizeof *logits);
    int st = logits ? RN_OK : rn_fail(RN_ERR_NOMEM, "out of memory");
    m->n_blocks = nb;
    m->block = calloc((size_t)nb + 1, sizeof *m->block);
    m->conv = calloc((size_t)nt, sizeof *m->conv);
    m->names = calloc((size_t)nt, sizeof *m->names);
    if (!st && (!m->block || !m->conv || !m->names)) st = rn_fail(RN_ERR_NOMEM, "out of memory");
    float loss = 0.0f;
    if (!st) st = rn_net_record_input_grads(net, 1);
    rn_net_zero_grad(net);
    if (!st) st = rn_net_forward(net, x, n, 1, logits);
    if (!st) st = rn_net_backward(net, labels, &loss);
    m->loss = loss;
    for (int i = 0; i < nt && !st; i++) {
        rn_tensor_info t;
        st = rn_net_tensor(net, i, &t);
        if (st || t.kind != RN_TENSOR_PARAM || !is_conv_weight(t.name)) continue;
        snprintf(m->names[m->n_convs], sizeof m->names[0], "%s", t.name);
        m->conv[m->n_convs++] = norm_of(t.grad, t.numel);
    }
    for (int b = 0; b <= nb && !st; b++) {
        double sq;
        st = rn_net_input_grad_sq(net, b, &sq);
        m->block[b] = sqrt(sq);
    }
    m->head_direct_sq = st ? NAN : head_direct(net, logits, labels, n);
    free(logits);
    return st;
}

static double max_diff(const measure *a, const measure *b)
{
    if (a->n_convs != b->n_convs || a->n_blocks != b->n_blocks) return INFINITY;
    double d = fabs(a->loss - b->loss);
    for (int i = 0; i < a->n_convs; i++) d = fmax(d, fabs(a->conv[i] - b->conv[i]));
    for (int i = 0; i <= a->n_blocks; i++) d = fmax(d, fabs(a->block[i] - b->block[i]));
    return d;
}

static void arch_name(char *out, size_t size, int kind, int depth, int stem_stride)
{
    snprintf(out, size, "%s%d%s", kinds[kind], depth, stem_stride == 2 ? "-s2" : "");
}

static int create(rn_net **net, const char *arch, const rn_dataset *d, uint64_t seed, int ordering,
                  int shortcut)
{
    rn_net_options o;
    rn_net_options_init(&o);
    o.classes = d->classes, o.in_c = d->c, o.in_h = d->h, o.in_w = d->w, o.seed = seed;
    o.ordering = ordering, o.shortcut = shortcut;
    return rn_net_create(net, arch, &o);
}

/* Measures one net at initialisation (twice: the known answer that a measurement repeats
 * exactly), trains it and measures it again. */
static int study(rn_exp *x, batches *b, net_result *r, int stem_stride, float lr, double cost)
{
    char arch[64];
    arch_name(arch, sizeof arch, r->kind, r->depth, stem_stride);
    rn_net *net;
    int st = create(&net, arch, b->train, x->set.seed, RN_ORDER_DEFAULT, RN_SHORTCUT_DEFAULT);
    if (st) return st;
    rn_sgd *opt = NULL;
    st = rn_sgd_create(&opt, net, 0.9f, 1e-4f, 0);
    const long probe_at = (long)b->train->n - b->batch; /* the permutation's tail */
    measure again = {0};
    rn_exp_set_phase(x, "measuring %s at initialisation", r->name);
    if (!st) make_batch(b, probe_at);
    if (!st) st = take(net, b->x, b->labels, b->batch, &r->at[0]);
    if (!st) st = take(net, b->x, b->labels, b->batch, &again);
    r->repeat_diff = max_diff(&r->at[0], &again);
    measure_free(&again);
    if (!st && rn_exp_work_done(x, 2 * cost)) goto done;
    rn_exp_set_phase(x, "training %s (%d steps)", r->name, b->steps);
    for (int s = 0; s < b->steps && !st; s++) {
        make_batch(b, (long)s * b->batch);
        float loss;
        st = rn_net_train_step(net, b->x, b->labels, b->batch, &loss);
        if (st) break;
        if (!isfinite(loss)) {
            r->diverged = s + 1;
            rn_exp_note(x, "%s: the loss is not finite at step %d; training stopped", r->name, s + 1);
            rn_exp_work_done(x, cost * (b->steps - s));
            break;
        }
        st = rn_sgd_step(opt, net, s < b->warmup ? 0.1f * lr : lr);
        if (!st && rn_exp_work_done(x, cost)) goto done;
    }
    rn_exp_set_phase(x, "measuring %s after training", r->name);
    if (!st) make_batch(b, probe_at);
    if (!st) st = take(net, b->x, b->labels, b->batch, &r->at[1]);
    if (!st) rn_exp_work_done(x, cost);
done:
    rn_sgd_free(opt);
    rn_net_free(net);
    return st;
}

/* The known answer: in a full pre-activation net with option-A shortcuts and every branch's
 * backward off, an identity shortcut hands the gradient on untouched, so the recorded norm at a
 * block's input equals the one at its output bit for bit (a zero-padding shortcut keeps only
 * the input's channels: at most). Rows: block, input sq, output sq, whether identity. */
typedef struct {
    int n;
    double *in_sq, *out_sq;
    int *identity;
} passthrough;

static int check_passthrough(rn_exp *x, batches *b, int depth, int stem_stride, passthrough *p)
{
    char arch[64];
    arch_name(arch, sizeof arch, 1, depth, stem_stride);
    rn_net *net;
    int st = create(&net, arch, b->train, x->set.seed, RN_ORDER_FULL_PREACT, RN_SHORTCUT_A);
    if (st) return st;
    const int nb = rn_net_num_blocks(net);
    p->n = nb;
    p->in_sq = calloc((size_t)nb, sizeof(double));
    p->out_sq = calloc((size_t)nb, sizeof(double));
    p->identity = calloc((size_t)nb, sizeof(int));
    if (!p->in_sq || !p->out_sq || !p->identity) st = rn_fail(RN_ERR_NOMEM, "out of memory");
    for (int i = 0; i < nb && !st; i++) st = rn_net_set_block_grad_way(net, i, RN_GRAD_SHORTCUT_ONLY);
    if (!st) st = rn_net_record_input_grads(net, 1);
    make_batch(b, (long)b->train->n - b->batch);
    if (!st) st = rn_net_forward(net, b->x, b->batch, 1, NULL);
    if (!st) st = rn_net_backward(net, b->labels, NULL);
    rn_unit_info prev, u;
    if (!st) st = rn_net_unit(net, 0, &prev);
    for (int i = 0; i < nb && !st; i++) {
        st = rn_net_unit(net, i + 1, &u);
        if (!st) st = rn_net_input_grad_sq(net, i, &p->in_sq[i]);
        if (!st) st = rn_net_input_grad_sq(net, i + 1, &p->out_sq[i]);
        p->identity[i] = u.out_c == prev.out_c && u.out_h == prev.out_h && u.out_w == prev.out_w;
        prev = u;
    }
    rn_net_free(net);
    return st;
}

static double first_over_last(const measure *m)
{
    return m->n_convs ? m->conv[0] / m->conv[m->n_convs - 1] : NAN;
}

static int draw(rn_exp *x, const net_result *res, int count)
{
    /* the legend: a colour per depth and a line style per kind, 6 entries where 9 (one per net)
     * covered the data; series with no points carry them */
    rn_plot_series w[2][MAX_NETS + 2 * N_KINDS], bl[2][MAX_NETS + 2 * N_KINDS];
    int maxn = 0;
    for (int i = 0; i < count; i++) {
        maxn = res[i].at[0].n_convs > maxn ? res[i].at[0].n_convs : maxn;
        maxn = res[i].at[0].n_blocks + 1 > maxn ? res[i].at[0].n_blocks + 1 : maxn;
    }
    double *idx = malloc((size_t)maxn * sizeof *idx);
    if (!idx) return rn_fail(RN_ERR_NOMEM, "out of memory");
    for (int i = 0; i < maxn; i++) idx[i] = i + 1;
    static const char *const kind_label[N_KINDS] = {"plain (dashed)", "residual (solid)", "highway (markers)"};
    char depth_label[MAX_NETS][32];
    int n_series = 0;
    for (int t = 0; t < 2; t++) {
        n_series = 0;
        for (int i = 0; i < count; i++) {
            const net_result *r = &res[i];
            const measure *m = &r->at[t];
            w[t][n_series] = (rn_plot_series){.x = idx, .y = m->conv, .n = m->n_convs,
                                              .style = r->kind == 2 ? RN_PLOT_LINE_POINTS : RN_PLOT_LINE,
                                              .color = i / N_KINDS, .dashed = r->kind == 0};
            bl[t][n_series] = w[t][n_series];
            bl[t][n_series].y = m->block;
            bl[t][n_series].n = m->n_blocks + 1;
            n_series++;
        }
        for (int d = 0; d * N_KINDS < count; d++) {
            snprintf(depth_label[d], sizeof depth_label[d], "%d layers", res[d * N_KINDS].depth);
            w[t][n_series] = (rn_plot_series){.label = depth_label[d], .x = idx, .y = idx, .n = 0,
                                              .style = RN_PLOT_LINE, .color = d};
            bl[t][n_series] = w[t][n_series];
            n_series++;
        }
        for (int k = 0; k < N_KINDS; k++) {
            w[t][n_series] = (rn_plot_series){.label = kind_label[k], .x = idx, .y = idx, .n = 0,
                                              .style = k == 2 ? RN_PLOT_LINE_POINTS : RN_PLOT_LINE,
                                              .color = 7, .dashed = k == 0};
            bl[t][n_series] = w[t][n_series];
            n_series++;
        }
    }
    char tt[2][96];
    snprintf(tt[0], sizeof tt[0], "at initialisation");
    snprintf(tt[1], sizeof tt[1], "after training");
    rn_plot_panel pw[2], pb[2];
    for (int t = 0; t < 2; t++) {
        pw[t] = (rn_plot_panel){.title = tt[t], .xlabel = "convolution (1 = the stem, input side)",
                                .ylabel = "||dL/dW|| (gradient norm of the weights)", .logy = 1,
                                .xmin = NAN, .xmax = NAN, .ymin = NAN, .ymax = NAN,
                                .series = w[t], .n_series = n_series, .legend_pos = RN_PLOT_LEGEND_AUTO};
        pb[t] = pw[t];
        pb[t].xlabel = "block input (last point: the head's)";
        pb[t].ylabel = "||dL/dx|| at the block's input";
        pb[t].series = bl[t];
    }
    rn_plot_figure f1 = {.title = "Weight gradient per layer (dashed: plain, solid: residual, "
                                  "markers: highway)",
                         .width = 1600, .height = 1000};
    int st = rn_exp_plot(x, "gradflow_weights", &f1, pw, 2);
    rn_plot_figure f2 = {.title = "Gradient at every block's input (dashed: plain, solid: "
                                  "residual, markers: highway)",
                         .width = 1600, .height = 1000};
    if (!st) st = rn_exp_plot(x, "gradflow_blocks", &f2, pb, 2);
    free(idx);
    return st;
}

static int write_outputs(rn_exp *x, const net_result *res, int count, int nd, const int *depths,
                         const passthrough *p, int steps, int classes)
{
    static const char *const when[2] = {"init", "trained"};
    rn_exp_file csv;
    int st = rn_exp_file_open(x, &csv, "results.csv");
    if (st) return st;
    rn_exp_printf(&csv, "section,net,kind,depth,when,index,name,value,expected\n");
    for (int i = 0; i < count; i++) {
        const net_result *r = &res[i];
        for (int t = 0; t < 2; t++) {
            const measure *m = &r->at[t];
            for (int k = 0; k < m->n_convs; k++)
                rn_exp_printf(&csv, "weight,%s,%s,%d,%s,%d,%s,%.9g,\n", r->name, kinds[r->kind],
                              r->depth, when[t], k + 1, m->names[k], m->conv[k]);
            for (int k = 0; k <= m->n_blocks; k++)
                rn_exp_printf(&csv, "block,%s,%s,%d,%s,%d,%s,%.9g,\n", r->name, kinds[r->kind],
                              r->depth, when[t], k + 1, k < m->n_blocks ? "block input" : "head input",
                              m->block[k]);
            rn_exp_printf(&csv, "net,%s,%s,%d,%s,,first_over_last,%.9g,\n", r->name, kinds[r->kind],
                          r->depth, when[t], first_over_last(m));
            rn_exp_printf(&csv, "net,%s,%s,%d,%s,,loss,%.9g,\n", r->name, kinds[r->kind], r->depth,
                          when[t], m->loss);
        }
    }
    /* known answers: value against expected */
    for (int i = 0; i < count; i++) {
        const net_result *r = &res[i];
        rn_exp_printf(&csv, "check,%s,%s,%d,init,,repeat_max_diff,%.17g,0\n", r->name,
                      kinds[r->kind], r->depth, r->repeat_diff);
        for (int t = 0; t < 2; t++)
            if (!isnan(r->at[t].head_direct_sq))
                rn_exp_printf(&csv, "check,%s,%s,%d,%s,,head_input_sq,%.17g,%.17g\n", r->name,
                              kinds[r->kind], r->depth, when[t],
                              r->at[t].block[r->at[t].n_blocks] * r->at[t].block[r->at[t].n_blocks],
                              r->at[t].head_direct_sq);
    }
    for (int k = 0; k < p->n; k++)
        rn_exp_printf(&csv, "check,preact%d,resnet,%d,init,%d,%s,%.17g,%.17g\n", depths[0],
                      depths[0], k + 1, p->identity[k] ? "passthrough_identity" : "passthrough_pad",
                      p->in_sq[k], p->out_sq[k]);
    st = rn_exp_file_close(&csv);
    if (!st) st = draw(x, res, count);
    if (st) return st;

    rn_exp_file sum;
    if ((st = rn_exp_summary_open(x, &sum))) return st;
    rn_exp_printf(&sum, "Gradient norms on one fixed batch of training images (training mode: batch "
                        "statistics), at initialisation and after %d SGD steps (lr %g, the first %s "
                        "at a tenth of it; momentum 0.9, weight decay 1e-4). first/last = ||dL/dW|| of the stem's convolution over "
                        "that of the last convolution: how much of the gradient reaches the input "
                        "side.\n\n",
                  steps, rn_exp_float(x, "lr"), rn_exp_text(x, "warmup"));
    rn_exp_printf(&sum, "| net | first/last at init | first/last trained | ||dL/dx|| first block / head "
                        "input, init | same, trained | loss trained |\n|---|---|---|---|---|---|\n");
    const double log_classes = log((double)classes);
    int n_chance = 0;
    for (int i = 0; i < count; i++) {
        const net_result *r = &res[i];
        double b0 = r->at[0].block[0] / r->at[0].block[r->at[0].n_blocks];
        double b1 = r->at[1].block[0] / r->at[1].block[r->at[1].n_blocks];
        const int chance = r->at[1].loss > 0.97 * log_classes;
        n_chance += chance;
        rn_exp_printf(&sum, "| %s | %.3g | %.3g | %.3g | %.3g | %.3f%s |\n", r->name,
                      first_over_last(&r->at[0]), first_over_last(&r->at[1]), b0, b1, r->at[1].loss,
                      r->diverged ? " (diverged)" : chance ? " (chance)" : "");
    }
    if (n_chance)
        rn_exp_printf(&sum, "\n(chance): the measurement batch's loss is still about ln %d = %.3f or above, what a "
                            "net that has learned nothing scores: its gradients after training are "
                            "those of a net that has not started to learn (or has collapsed).\n",
                      classes, log_classes);
    /* the claim: plain's first/last ratio, relative to residual's, falls from the shallowest to
     * the deepest depth (nets are stored depth by depth, kinds in the order of `kinds`) */
    int lo = 0, hi = 0;
    for (int d = 1; d < nd; d++) {
        if (depths[d] < depths[lo]) lo = d;
        if (depths[d] > depths[hi]) hi = d;
    }
    int held_at[2] = {0, 0};
    rn_exp_printf(&sum, "\n");
    for (int t = 0; t < 2; t++) {
        double rl = first_over_last(&res[N_KINDS * lo].at[t]) / first_over_last(&res[N_KINDS * lo + 1].at[t]);
        double rh = first_over_last(&res[N_KINDS * hi].at[t]) / first_over_last(&res[N_KINDS * hi + 1].at[t]);
        double pl = first_over_last(&res[N_KINDS * lo].at[t]), ph = first_over_last(&res[N_KINDS * hi].at[t]);
        int ok = rh < rl;
        held_at[t] = ok;
        rn_exp_printf(&sum, "- %s: plain's first/last ratio %.3g at %d layers and %.3g at %d layers; "
                            "relative to the residual net of the same depth %.3g and %.3g: %s.\n",
                      when[t], pl, depths[lo], ph, depths[hi], rl, rh,
                      ok ? "falls with depth" : "**does not fall** with depth");
    }
    for (int k = 0; k < N_KINDS; k++) {
        rn_exp_printf(&sum, "- %s, first/last by depth:", kinds[k]);
        for (int t = 0; t < 2; t++) {
            rn_exp_printf(&sum, "%s", t ? "; trained" : " at init");
            for (int d = 0; d < nd; d++)
                rn_exp_printf(&sum, " %s%.3g (%d)", d ? "-> " : "", first_over_last(&res[N_KINDS * d + k].at[t]),
                              depths[d]);
        }
        rn_exp_printf(&sum, ".\n");
    }
    const double p_lo = first_over_last(&res[N_KINDS * lo].at[0]), p_hi = first_over_last(&res[N_KINDS * hi].at[0]);
    if (p_hi > p_lo && p_hi > 1.0)
        rn_exp_printf(&sum, "- At initialisation the deeper plain net's first layer gets *more* gradient "
                            "relative to its last layer, not less: with batch norm, a deep plain net's "
                            "gradient grows toward the input (it explodes rather than vanishes).\n");
    else if (p_hi < p_lo)
        rn_exp_printf(&sum, "- At initialisation the deeper plain net's first layer gets less gradient "
                            "relative to its last layer: the gradient shrinks on its way down.\n");
    for (int i = 0; i < count; i++)
        if (res[i].diverged)
            rn_exp_printf(&sum, "- %s diverged at step %d.\n", res[i].name, res[i].diverged);
    /* At initialisation batch norm makes a deep plain net's gradient explode toward the input
     * (Yang et al. 2019), so the claim can hold after training and not before: say which. */
    const char *verdict = held_at[0] && held_at[1] ? "**held**, at initialisation and after training"
                          : held_at[1] ? "**held after training** and **did not hold at initialisation**"
                          : held_at[0] ? "**held at initialisation** and **did not hold after training**"
                                       : "**did not hold**, at initialisation or after training";
    rn_exp_printf(&sum, "\nThe claim (in plain nets the gradient reaching the first layers falls with "
                        "depth relative to residual nets) %s in this run.\n", verdict);
    if (held_at[1] && !held_at[0])
        rn_exp_printf(&sum, "At initialisation the plain nets' gradients explode toward the input "
                            "instead, which batch norm does to deep nets without shortcuts (Yang et "
                            "al. 2019, A Mean Field Theory of Batch Normalization).\n");
    /* known answers, as the check script tests them */
    double worst_rep = 0.0, worst_head = 0.0;
    int pass_ok = 1;
    for (int i = 0; i < count; i++) {
        worst_rep = fmax(worst_rep, res[i].repeat_diff);
        for (int t = 0; t < 2; t++)
            if (!isnan(res[i].at[t].head_direct_sq)) {
                double rec = res[i].at[t].block[res[i].at[t].n_blocks];
                worst_head = fmax(worst_head, fabs(rec * rec / res[i].at[t].head_direct_sq - 1.0));
            }
    }
    for (int k = 0; k < p->n; k++)
        pass_ok &= p->identity[k] ? p->in_sq[k] == p->out_sq[k] : p->in_sq[k] <= p->out_sq[k];
    rn_exp_printf(&sum, "\nKnown answers: measuring twice at the same weights differs by at most %.3g "
                        "(must be 0); the recorded gradient at the head's input against the one "
                        "computed from the logits and the classifier's weights: relative difference "
                        "at most %.2g (float rounding); in a full pre-activation resnet%d with every "
                        "branch's backward off, every identity shortcut passes the gradient on bit "
                        "for bit: %s.\n",
                  worst_rep, worst_head, depths[0], pass_ok ? "yes" : "**no**");
    rn_exp_printf(&sum, "\nFiles: results.csv (sections weight: ||dL/dW|| per convolution; block: "
                        "||dL/dx|| per block input; net: first/last and the loss; check: the known "
                        "answers), gradflow_weights.png/.svg, gradflow_blocks.png/.svg.\n");
    st = rn_exp_file_close(&sum);
    rn_exp_note(x, "the claim %s", held_at[0] && held_at[1] ? "held"
                                    : held_at[1] ? "held after training, not at initialisation"
                                    : held_at[0] ? "held at initialisation, not after training"
                                                 : "did not hold");
    return st;
}

static int run(rn_exp *x)
{
    int depths[MAX_DEPTHS];
    const int nd = rn_exp_ints(x, "depths", depths, MAX_DEPTHS);
    const int stem_stride = (int)rn_exp_int(x, "stem-stride");
    const float lr = (float)rn_exp_float(x, "lr");
    batches b = {.batch = (int)rn_exp_int(x, "batch"), .steps = (int)rn_exp_int(x, "steps"),
                 .warmup = (int)rn_exp_int(x, "warmup")};
    if (nd < 2) return rn_fail(RN_ERR_ARG, "--depths: give at least two depths");
    for (int i = 0; i < nd; i++)
        if (depths[i] < 8 || (depths[i] - 2) % 6)
            return rn_fail(RN_ERR_ARG, "--depths: %d is not of the form 6n+2 (8, 14, 20, 32, 44, 56, 110 ...)",
                           depths[i]);
    if (stem_stride != 1 && stem_stride != 2) return rn_fail(RN_ERR_ARG, "--stem-stride must be 1 or 2");
    if (b.batch < 2) return rn_fail(RN_ERR_ARG, "--batch must be at least 2");
    if (b.steps < 0) return rn_fail(RN_ERR_ARG, "--steps must not be negative");
    if (b.warmup < 0) return rn_fail(RN_ERR_ARG, "--warmup must not be negative");
    if (!(lr > 0.0f)) return rn_fail(RN_ERR_ARG, "--lr must be positive");
    const rn_dataset *eval;
    int st = rn_exp_data(x, &b.train, &eval);
    if (st) return st;
    if (b.train->c > RN_MAX_INPUT_CHANNELS)
        return rn_fail(RN_ERR_ARG, "images with more than %d channels", RN_MAX_INPUT_CHANNELS);
    if (b.batch > b.train->n) return rn_fail(RN_ERR_ARG, "--batch is larger than the training set");
    if ((st = rn_dataset_stats(b.train, b.mean, b.std))) return st;

    /* plan: a training step is about three forwards; three measurements per net */
    const int count = N_KINDS * nd;
    net_result res[MAX_NETS];
    double cost[MAX_NETS];
    memset(res, 0, sizeof res);
    for (int i = 0; i < count && !st; i++) {
        net_result *r = &res[i];
        r->depth = depths[i / N_KINDS];
        r->kind = i % N_KINDS;
        arch_name(r->name, sizeof r->name, r->kind, r->depth, stem_stride);
        rn_net *net;
        st = create(&net, r->name, b.train, x->set.seed, RN_ORDER_DEFAULT, RN_SHORTCUT_DEFAULT);
        if (st) break;
        cost[i] = 3.0 * rn_exp_net_cost(net) * b.batch;
        rn_net_free(net);
        rn_exp_plan_work(x, cost[i] * (b.steps + 3));
    }
    b.order = malloc((size_t)b.train->n * sizeof *b.order);
    b.x = malloc((size_t)b.batch * b.train->c * b.train->h * b.train->w * sizeof *b.x);
    b.labels = malloc((size_t)b.batch * sizeof *b.labels);
    if (!st && (!b.order || !b.x || !b.labels)) st = rn_fail(RN_ERR_NOMEM, "out of memory");
    if (!st) {
        rn_rng rng;
        rn_rng_seed(&rng, x->set.seed);
        for (int i = 0; i < b.train->n; i++) b.order[i] = i;
        for (int i = b.train->n - 1; i > 0; i--) {
            int j = (int)rn_rng_below(&rng, (uint32_t)i + 1), t = b.order[i];
            b.order[i] = b.order[j], b.order[j] = t;
        }
    }
    for (int i = 0; i < count && !st && !x->interrupted; i++) {
        st = study(x, &b, &res[i], stem_stride, lr, cost[i]);
        if (!st && !x->interrupted)
            rn_exp_note(x, "%s: first/last gradient norm %.3g at init, %.3g trained", res[i].name,
                        first_over_last(&res[i].at[0]), first_over_last(&res[i].at[1]));
    }
    passthrough p = {0};
    if (!st && !x->interrupted) st = check_passthrough(x, &b, depths[0], stem_stride, &p);
    if (!st && !x->interrupted)
        st = write_outputs(x, res, count, nd, depths, &p, b.steps, b.train->classes);
    for (int i = 0; i < count; i++) {
        measure_free(&res[i].at[0]);
        measure_free(&res[i].at[1]);
    }
    free(p.in_sq);
    free(p.out_sq);
    free(p.identity);
    free(b.order);
    free(b.x);
    free(b.labels);
    return st;
}

const rn_experiment rn_exp_gradflow = {
    .name = "gradflow",
    .title = "Gradient flow through plain, residual and highway nets",
    .claim = "in plain nets the gradient that reaches the first layers falls with depth relative "
             "to residual nets, whose shortcuts carry it back unchanged",
    .source = "He et al. 2016, Sec. 2-3; Srivastava et al. 2015",
    .opts = opts,
    .run = run,
};
