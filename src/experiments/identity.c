/* identity: deep stacks of blocks asked to learn y = x. A residual block reaches the identity
 * by driving its branch to zero; a plain block has to build it out of convolutions, batch norms
 * and ReLUs, and a deep stack of such approximations is hard to train (He et al. 2015, Sec. 3.1).
 * No data set: every step draws fresh random images, the same ones for every stack. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/rng.h"
#include "experiments/experiment.h"
#include "nn/stack.h"

#define MAX_DEPTHS 6
#define N_STACKS (2 * MAX_DEPTHS)

/* Choices, from short runs at the full sizes (16 channels, 16x16, batch 32, 1500 steps):
 * - ordering full-preact: in the original ordering the ReLU after the addition and a branch that
 *   starts at unit variance against inputs of standard deviation 0.29 leave the deep residual
 *   stacks stuck (lr 0.1: residual30 0.27 and residual60 0.55, plain30/60 0.25); with nothing
 *   after the addition the shortcut is a clean identity (He et al. 2016).
 * - lr 0.1: residual60 (full-preact) ends at 0.088 with lr 0.03, 0.050 with 0.05, 1.7e-4 with 0.1
 *   (below 0.01 from step 50), and diverges with 0.2. The plain stacks end at 0.25 (a constant
 *   output at the mean) with every rate tried, 0.03 to 0.2 here and 0.05 to 2 at 10 layers, in
 *   both orderings; only 2 and 4 layers do better (original ordering, lr 1: 0.009 and 0.057;
 *   full-preact, lr 0.1: plain4 0.22), which is why the default depths start at 4 layers. */
static const rn_xopt opts[] = {
    {"layers", RN_XOPT_INTS, "4,10,30,60", "4,10",
     "depths of the stacks in 3x3 convolutions (2 per block: 10 layers = 5 blocks), increasing"},
    {"channels", RN_XOPT_INT, "16", "8", "channels of every map"},
    {"size", RN_XOPT_INT, "16", "8", "height and width of the maps"},
    {"steps", RN_XOPT_INT, "1500", "300", "SGD steps per stack (fresh random images each step)"},
    {"batch", RN_XOPT_INT, "32", "16", "images per step"},
    {"lr", RN_XOPT_FLOAT, "0.1", "0.1", "SGD learning rate (momentum 0.9, no weight decay)"},
    {"ordering", RN_XOPT_TEXT, "full-preact", "full-preact",
     "block ordering: full-preact (nothing after the addition), original (a ReLU after it), "
     "relu-before-add, relu-preact"},
    {"threshold", RN_XOPT_FLOAT, "0.01", "0.01",
     "relative error ||y-x||^2/||x||^2 counted as having learned the identity"},
    {NULL, 0, NULL, NULL, NULL},
};

typedef struct {
    char name[40];
    const char *kind; /* "plain", "residual" or "control" */
    int layers, blocks;
    int n_rec;
    double *rec_step, *rec_err; /* the recorded training curve */
    double final_train;         /* mean training relative error over the last tenth of the steps */
    double eval_err;            /* fresh images, evaluation mode */
    int steps_to;               /* first step below the threshold; -1: never */
    int diverged;               /* the step at which the error stopped being finite; 0: never */
    double *branch, *change;    /* per block: ||F(x)||/||x||, ||y-x||/||x|| */
    double med_branch, med_change;
} stack_result;

static void result_free(stack_result *r)
{
    free(r->rec_step);
    free(r->rec_err);
    free(r->branch);
    free(r->change);
}

/* ||y - x||^2 / ||x||^2, summed in double in index order. */
static double rel_error(const float *y, const float *x, size_t len)
{
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < len; i++) {
        double d = (double)y[i] - (double)x[i];
        num += d * d;
        den += (double)x[i] * (double)x[i];
    }
    return num / den;
}

static void fill_uniform(rn_rng *rng, float *x, size_t len)
{
    for (size_t i = 0; i < len; i++) x[i] = rn_rng_uniform(rng);
}

static int cmp_double(const void *a, const void *b)
{
    double p = *(const double *)a, q = *(const double *)b;
    return (p > q) - (p < q);
}

static double median(const double *v, int n)
{
    if (n <= 0) return NAN;
    double *s = malloc((size_t)n * sizeof *s);
    if (!s) return NAN;
    memcpy(s, v, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp_double);
    double m = n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
    free(s);
    return m;
}

typedef struct {
    int channels, size, steps, batch;
    float lr;
    int ordering;
    double threshold, step_cost; /* multiply-adds of one training step per block */
    uint64_t seed;
} setup;

/* The stack's error on fresh images in evaluation mode, and every block's norms. */
static int evaluate(rn_net *net, const setup *s, const float *ex, stack_result *r)
{
    const size_t len = (size_t)s->batch * s->channels * s->size * s->size;
    const float *y;
    int st = rn_stack_forward(net, ex, s->batch, 0, &y);
    if (st) return st;
    r->eval_err = rel_error(y, ex, len);
    r->branch = calloc((size_t)r->blocks, sizeof *r->branch);
    r->change = calloc((size_t)r->blocks, sizeof *r->change);
    if (!r->branch || !r->change) return rn_fail(RN_ERR_NOMEM, "out of memory");
    for (int b = 0; b < r->blocks && !st; b++) {
        rn_block_probe p;
        st = rn_net_probe_block(net, b, &p);
        r->branch[b] = sqrt(p.branch_sq / p.input_sq);
        r->change[b] = sqrt(p.change_sq / p.input_sq);
    }
    r->med_branch = median(r->branch, r->blocks);
    r->med_change = median(r->change, r->blocks);
    return st;
}

/* Trains one stack on y = x and measures it; returns RN_OK with x->interrupted when stopped. */
static int train_stack(rn_exp *x, const setup *s, rn_stack_kind kind, stack_result *r,
                       const float *ex)
{
    const size_t len = (size_t)s->batch * s->channels * s->size * s->size;
    rn_net *net = NULL;
    rn_sgd *opt = NULL;
    float *in = malloc(len * sizeof *in), *dy = malloc(len * sizeof *dy);
    const int every = s->steps >= 100 ? s->steps / 100 : 1;
    const int max_rec = s->steps / every + 2;
    r->rec_step = malloc((size_t)max_rec * sizeof *r->rec_step);
    r->rec_err = malloc((size_t)max_rec * sizeof *r->rec_err);
    int st = in && dy && r->rec_step && r->rec_err ? RN_OK : rn_fail(RN_ERR_NOMEM, "out of memory");
    if (!st) st = rn_stack_create(&net, kind, r->blocks, s->channels, s->size, s->size,
                                  s->ordering, s->seed);
    if (!st) st = rn_sgd_create(&opt, net, 0.9f, 0.0f, 0);
    rn_rng rng;
    rn_rng_seed(&rng, s->seed); /* every stack sees the same images */
    const int tail = s->steps >= 10 ? s->steps / 10 : 1;
    double tail_sum = 0.0;
    r->steps_to = -1;
    rn_exp_set_phase(x, "training %s to be the identity", r->name);
    for (int step = 1; step <= s->steps && !st; step++) {
        fill_uniform(&rng, in, len);
        const float *y;
        st = rn_stack_forward(net, in, s->batch, 1, &y);
        if (st) break;
        const double err = rel_error(y, in, len);
        if (step == 1 || step % every == 0 || step == s->steps) {
            r->rec_step[r->n_rec] = step;
            r->rec_err[r->n_rec++] = err;
        }
        if (!isfinite(err)) {
            /* a diverged stack stops here: its curve ends, its final error is infinite */
            r->diverged = step;
            tail_sum = INFINITY;
            rn_exp_note(x, "%s: the error is not finite at step %d; training stopped", r->name, step);
            rn_exp_work_done(x, s->step_cost * r->blocks * (s->steps - step + 1));
            break;
        }
        if (r->steps_to < 0 && err < s->threshold) r->steps_to = step;
        if (step > s->steps - tail) tail_sum += err;
        /* the loss 0.5 mean((y - x)^2): dy = (y - x) / count */
        const float inv = 1.0f / (float)len;
        for (size_t i = 0; i < len; i++) dy[i] = (y[i] - in[i]) * inv;
        rn_net_zero_grad(net);
        st = rn_stack_backward(net, dy);
        if (!st) st = rn_sgd_step(opt, net, s->lr);
        if (!st && rn_exp_work_done(x, s->step_cost * r->blocks)) break;
    }
    r->final_train = tail_sum / tail;
    if (!st && !x->interrupted) st = evaluate(net, s, ex, r);
    rn_sgd_free(opt);
    rn_net_free(net);
    free(in);
    free(dy);
    return st;
}

/* The known answer: with gamma = beta = 0 in every branch's second batch norm a branch adds
 * exactly zero (that BN ends the branch, or is followed by a ReLU and a convolution without bias,
 * both of which keep 0 at 0), and a ReLU after the addition passes x >= 0 unchanged: y = x. */
static int zeroed_control(const setup *s, stack_result *r, const float *ex)
{
    rn_net *net;
    int st = rn_stack_create(&net, RN_STACK_RESIDUAL, r->blocks, s->channels, s->size, s->size,
                             s->ordering, s->seed);
    if (st) return st;
    for (int b = 0; b < r->blocks && !st; b++)
        for (int k = 0; k < 2 && !st; k++) {
            char name[64];
            snprintf(name, sizeof name, "layer1.%d.bn2.%s", b, k ? "bias" : "weight");
            rn_tensor_info t;
            st = rn_net_find_tensor(net, name, &t);
            if (!st) memset(t.data, 0, t.numel * sizeof(float));
        }
    r->steps_to = -1;
    r->final_train = NAN;
    if (!st) st = evaluate(net, s, ex, r);
    rn_net_free(net);
    return st;
}

static int draw(rn_exp *x, const stack_result *res, int count, int nd, const setup *s)
{
    rn_plot_series curves[N_STACKS + 1];
    for (int i = 0; i < count; i++) {
        const stack_result *r = &res[i];
        curves[i] = (rn_plot_series){.label = r->name, .x = r->rec_step, .y = r->rec_err,
                                     .n = r->n_rec, .style = RN_PLOT_LINE, .color = i / 2,
                                     .dashed = !strcmp(r->kind, "plain")};
    }
    const double tx[2] = {1, s->steps}, ty[2] = {s->threshold, s->threshold};
    char tlabel[48];
    snprintf(tlabel, sizeof tlabel, "threshold %g", s->threshold);
    curves[count] = (rn_plot_series){.label = tlabel, .x = tx, .y = ty, .n = 2,
                                     .style = RN_PLOT_LINE, .color = 7, .dashed = 1};
    rn_plot_panel loss = {
        .title = "training error on fresh random images (dashed: plain, solid: residual)",
        .xlabel = "SGD step", .ylabel = "relative error ||y-x||#u2#d/||x||#u2#d", .logy = 1,
        .xmin = NAN, .xmax = NAN, .ymin = NAN, .ymax = NAN, .series = curves,
        .n_series = count + 1, .legend_pos = RN_PLOT_LEGEND_AUTO};
    rn_plot_figure fig = {.title = "Learning y = x with deep stacks of plain and of residual blocks",
                          .width = 1100, .height = 700};
    int st = rn_exp_plot(x, "identity_loss", &fig, &loss, 1);
    if (st) return st;

    /* per-block norms of the deepest plain and residual stacks */
    const stack_result *deep[2] = {&res[2 * (nd - 1)], &res[2 * (nd - 1) + 1]};
    int maxb = deep[0]->blocks;
    double *idx = malloc((size_t)maxb * sizeof *idx);
    if (!idx) return rn_fail(RN_ERR_NOMEM, "out of memory");
    for (int b = 0; b < maxb; b++) idx[b] = b + 1;
    rn_plot_series br[2], ch[2];
    for (int k = 0; k < 2; k++) {
        br[k] = (rn_plot_series){.label = deep[k]->name, .x = idx, .y = deep[k]->branch,
                                 .n = deep[k]->blocks, .style = RN_PLOT_LINE_POINTS,
                                 .color = nd - 1, .dashed = !k};
        ch[k] = br[k];
        ch[k].y = deep[k]->change;
    }
    rn_plot_panel panels[2] = {
        {.title = "branch: ||F(x)||/||x|| (plain: the block's output before its last ReLU)",
         .xlabel = "block (input side = 1)", .ylabel = "||F(x)|| / ||x||", .logy = 1, .xmin = NAN,
         .xmax = NAN, .ymin = NAN, .ymax = NAN, .series = br, .n_series = 2, .legend_pos = RN_PLOT_LEGEND_AUTO},
        {.title = "distance from the identity: ||y-x||/||x|| per block", .xlabel = "block (input side = 1)",
         .ylabel = "||y - x|| / ||x||", .logy = 1, .xmin = NAN, .xmax = NAN, .ymin = NAN,
         .ymax = NAN, .series = ch, .n_series = 2, .legend_pos = RN_PLOT_LEGEND_AUTO},
    };
    rn_plot_figure fig2 = {.title = "Per-block norms after training, on fresh images (evaluation mode)",
                           .width = 1400, .height = 600};
    st = rn_exp_plot(x, "identity_blocks", &fig2, panels, 2);
    free(idx);
    return st;
}

static void csv_final(rn_exp_file *f, const stack_result *r, int steps)
{
    char to[24];
    if (r->steps_to >= 0) snprintf(to, sizeof to, "%d", r->steps_to);
    else snprintf(to, sizeof to, "never");
    rn_exp_printf(f, "final,%s,%s,%d,%d,%d,,%.9g,%.9g,%.9g,%.9g,%s\n", r->name, r->kind, r->layers,
                  r->blocks, strcmp(r->kind, "control") ? steps : 0, r->eval_err, r->final_train,
                  r->med_branch, r->med_change, to);
}

static int write_outputs(rn_exp *x, const stack_result *res, int count, const stack_result *ctl,
                         int nd, const setup *s)
{
    rn_exp_file csv;
    int st = rn_exp_file_open(x, &csv, "results.csv");
    if (st) return st;
    rn_exp_printf(&csv, "section,stack,kind,layers,blocks,step,block,rel_error,final_train_rel_error,"
                        "branch_ratio,change_ratio,steps_to_threshold\n");
    for (int i = 0; i < count; i++)
        for (int k = 0; k < res[i].n_rec; k++)
            rn_exp_printf(&csv, "curve,%s,%s,%d,%d,%.0f,,%.9g,,,,\n", res[i].name, res[i].kind,
                          res[i].layers, res[i].blocks, res[i].rec_step[k], res[i].rec_err[k]);
    for (int i = 0; i <= count; i++) {
        const stack_result *r = i < count ? &res[i] : ctl;
        for (int b = 0; b < r->blocks && r->branch; b++)
            rn_exp_printf(&csv, "block,%s,%s,%d,%d,,%d,,,%.9g,%.9g,\n", r->name, r->kind, r->layers,
                          r->blocks, b + 1, r->branch[b], r->change[b]);
    }
    for (int i = 0; i < count; i++) csv_final(&csv, &res[i], s->steps);
    csv_final(&csv, ctl, s->steps);
    st = rn_exp_file_close(&csv);
    if (!st) st = draw(x, res, count, nd, s);
    if (st) return st;

    rn_exp_file sum;
    if ((st = rn_exp_summary_open(x, &sum))) return st;
    rn_exp_printf(&sum, "Every stack (basic blocks of two 3x3 convolutions, %s ordering) learns y = x "
                        "on fresh uniform random images (%d channels, %dx%d), loss 0.5 mean((y-x)^2), "
                        "SGD lr %g momentum 0.9, %d steps of %d images. Relative error = "
                        "||y-x||^2/||x||^2.\n\n",
                  rn_ordering_name(s->ordering), s->channels, s->size, s->size, (double)s->lr,
                  s->steps, s->batch);
    rn_exp_printf(&sum, "| stack | layers | blocks | training error (last %d%% of steps) | error on fresh "
                        "images (eval mode) | steps to %g | median ||F(x)||/||x|| | median ||y-x||/||x|| |\n"
                        "|---|---|---|---|---|---|---|---|\n",
                  10, s->threshold);
    for (int i = 0; i <= count; i++) {
        const stack_result *r = i < count ? &res[i] : ctl;
        char to[24];
        if (r->steps_to >= 0) snprintf(to, sizeof to, "%d", r->steps_to);
        else snprintf(to, sizeof to, i < count ? "never" : "-");
        char tr[32];
        if (i < count) snprintf(tr, sizeof tr, "%.3g", r->final_train);
        else snprintf(tr, sizeof tr, "- (not trained)");
        rn_exp_printf(&sum, "| %s | %d | %d | %s | %.3g | %s | %.3g | %.3g |\n", r->name, r->layers,
                      r->blocks, tr, r->eval_err, to, r->med_branch, r->med_change);
    }
    int res_better = 1;
    rn_exp_printf(&sum, "\n");
    for (int d = 0; d < nd; d++) {
        const stack_result *p = &res[2 * d], *q = &res[2 * d + 1];
        int better = q->final_train < p->final_train;
        res_better &= better;
        rn_exp_printf(&sum, "- %d layers: residual %.3g against plain %.3g: the residual stack is %s.\n",
                      p->layers, q->final_train, p->final_train, better ? "better" : "**not** better");
    }
    /* as in degradation: the deepest plain stack against the shallowest */
    const stack_result *p_lo = &res[0], *p_hi = &res[2 * (nd - 1)];
    const int plain_worse = nd > 1 && p_hi->final_train > p_lo->final_train;
    if (nd > 1)
        rn_exp_printf(&sum, "- plain, %d layers against %d layers: %.3g against %.3g: %s.\n", p_hi->layers,
                      p_lo->layers, p_hi->final_train, p_lo->final_train,
                      plain_worse ? "worse with depth" : "**not** worse with depth");
    /* 0.25 is what a constant output at the mean 1/2 scores: E(x - 1/2)^2 / E x^2 = (1/12) / (1/3) */
    int at_mean = 0;
    for (int i = 0; i < count; i++) at_mean += fabs(res[i].final_train - 0.25) < 0.025;
    if (at_mean)
        rn_exp_printf(&sum, "- %d of the %d stacks ended near 0.25, the error of a constant output at the "
                            "images' mean (E(x-1/2)^2 / E x^2 = 1/4): they learned the mean, not the "
                            "identity.\n", at_mean, count);
    for (int i = 0; i < count; i++)
        if (res[i].diverged)
            rn_exp_printf(&sum, "- %s diverged at step %d (its error stopped being finite).\n",
                          res[i].name, res[i].diverged);
    const int held = res_better && plain_worse;
    rn_exp_printf(&sum, "\nThe claim (every residual stack ends with a lower training error than the plain "
                        "stack of the same depth, and the deepest plain stack ends worse than the "
                        "shallowest) %s in this run.\n",
                  held ? "**held**" : "**did not fully hold**");
    rn_exp_printf(&sum, "\nKnown answer: %s, a residual stack whose second batch norm in every branch has "
                        "gamma = beta = 0 (so every branch adds exactly 0), maps x to x: relative error "
                        "%.3g (must be 0), median ||F(x)||/||x|| %.3g (must be 0).\n",
                  ctl->name, ctl->eval_err, ctl->med_branch);
    rn_exp_printf(&sum, "\nA residual block is the identity when its branch is zero; a plain block's "
                        "F(x) is its whole output before the last ReLU, the identity when it equals x "
                        "(ratio 1). ||y-x||/||x|| compares both kinds.\n\nFiles: results.csv (section "
                        "curve: the training batch's error every few steps; block: per-block norms "
                        "after training on fresh images in evaluation mode; final: one row per stack), "
                        "identity_loss.png/.svg, identity_blocks.png/.svg.\n");
    st = rn_exp_file_close(&sum);
    rn_exp_note(x, "the claim %s: final training errors", held ? "held" : "did not fully hold");
    return st;
}

static int run(rn_exp *x)
{
    int layers[MAX_DEPTHS];
    const int nd = rn_exp_ints(x, "layers", layers, MAX_DEPTHS);
    setup s = {.channels = (int)rn_exp_int(x, "channels"), .size = (int)rn_exp_int(x, "size"),
               .steps = (int)rn_exp_int(x, "steps"), .batch = (int)rn_exp_int(x, "batch"),
               .lr = (float)rn_exp_float(x, "lr"), .threshold = rn_exp_float(x, "threshold"),
               .seed = x->set.seed};
    if (nd < 1) return rn_fail(RN_ERR_ARG, "--layers: give at least one depth");
    rn_ordering ord;
    if (rn_ordering_parse(rn_exp_text(x, "ordering"), &ord) || ord == RN_ORDER_DEFAULT)
        return rn_fail(RN_ERR_ARG, "--ordering: '%s' is not one of original, bn-after-add, "
                                   "relu-before-add, relu-preact, full-preact",
                       rn_exp_text(x, "ordering"));
    if (ord == RN_ORDER_BN_AFTER_ADD)
        return rn_fail(RN_ERR_ARG, "--ordering bn-after-add: a batch norm after the addition renormalises "
                                   "every block's output, so no stack of them is the identity");
    s.ordering = ord;
    for (int i = 0; i < nd; i++) {
        if (layers[i] < 2 || layers[i] % 2 || layers[i] > 2000)
            return rn_fail(RN_ERR_ARG, "--layers: %d is not an even number of layers in 2..2000 "
                                       "(2 per block)", layers[i]);
        if (i && layers[i] <= layers[i - 1])
            return rn_fail(RN_ERR_ARG, "--layers: give the depths in increasing order");
    }
    if (s.channels < 1 || s.channels > 512) return rn_fail(RN_ERR_ARG, "--channels must be in 1..512");
    if (s.size < 2 || s.size > 256) return rn_fail(RN_ERR_ARG, "--size must be in 2..256");
    if (s.steps < 1) return rn_fail(RN_ERR_ARG, "--steps must be positive");
    if (s.batch < 2) return rn_fail(RN_ERR_ARG, "--batch must be at least 2 (batch norm)");
    if (!(s.lr > 0.0f)) return rn_fail(RN_ERR_ARG, "--lr must be positive");
    if (!(s.threshold > 0.0)) return rn_fail(RN_ERR_ARG, "--threshold must be positive");

    /* two 3x3 convolutions per block, a training step about three forwards */
    s.step_cost = 3.0 * 2.0 * 9.0 * s.channels * s.channels * s.size * s.size * s.batch;
    double total_blocks = 0;
    for (int i = 0; i < nd; i++) total_blocks += 2.0 * layers[i] / 2;
    rn_exp_plan_work(x, s.step_cost * total_blocks * s.steps);

    const size_t len = (size_t)s.batch * s.channels * s.size * s.size;
    float *ex = malloc(len * sizeof *ex);
    stack_result res[N_STACKS], ctl;
    memset(res, 0, sizeof res);
    memset(&ctl, 0, sizeof ctl);
    int st = ex ? RN_OK : rn_fail(RN_ERR_NOMEM, "out of memory");
    if (!st) {
        rn_rng er;
        rn_rng_seed(&er, s.seed ^ 0x5eed0fe7a15e7ULL); /* evaluation images: not the training ones */
        fill_uniform(&er, ex, len);
    }
    const int count = 2 * nd;
    for (int i = 0; i < count && !st && !x->interrupted; i++) {
        stack_result *r = &res[i];
        const int residual = i % 2;
        r->kind = residual ? "residual" : "plain";
        r->layers = layers[i / 2];
        r->blocks = r->layers / 2;
        snprintf(r->name, sizeof r->name, "%s%d", r->kind, r->layers);
        st = train_stack(x, &s, residual ? RN_STACK_RESIDUAL : RN_STACK_PLAIN, r, ex);
        if (!st && !x->interrupted)
            rn_exp_note(x, "%s: training error %.3g, %s", r->name, r->final_train,
                        r->steps_to >= 0 ? "reached the threshold" : "never reached the threshold");
    }
    if (!st && !x->interrupted) {
        ctl.kind = "control";
        ctl.layers = layers[nd - 1];
        ctl.blocks = ctl.layers / 2;
        snprintf(ctl.name, sizeof ctl.name, "residual%d-zeroed", ctl.layers);
        st = zeroed_control(&s, &ctl, ex);
    }
    if (!st && !x->interrupted) st = write_outputs(x, res, count, &ctl, nd, &s);
    for (int i = 0; i < count; i++) result_free(&res[i]);
    result_free(&ctl);
    free(ex);
    return st;
}

const rn_experiment rn_exp_identity = {
    .name = "identity",
    .title = "Learning the identity with deep stacks",
    .claim = "a stack of residual blocks learns the identity mapping easily at any depth, while a "
             "stack of plain nonlinear layers finds it harder the deeper it is",
    .source = "He et al. 2015, Sec. 3.1",
    .opts = opts,
    .run = run,
};
