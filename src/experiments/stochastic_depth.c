/* stochastic-depth: training a residual net whose blocks are each skipped for a whole mini-batch
 * with a probability that grows linearly with depth (survival 1 at the input down to p_L at the
 * last block) takes less time than training it at constant depth, and at test time, with every
 * branch scaled by its survival probability, it generalises as well or better (Huang et al.
 * 2016, "Deep Networks with Stochastic Depth"). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "experiments/experiment.h"
#include "train/evaluate.h"

#define MAX_BLOCKS 512

static const rn_xopt opts[] = {
    {"arch", RN_XOPT_TEXT, "resnet56-s2", "resnet14-s2", "the residual net trained both ways"},
    {"epochs", RN_XOPT_INT, "6", "1", "epochs of both runs (lr 0.1, divided by 10 at 50% and 75%)"},
    {"survival", RN_XOPT_FLOAT, "0.5", "0.5", "p_L: the last block's survival probability (the "
                                              "first block's is 1 - (1 - p_L) / L)"},
    {"batch", RN_XOPT_INT, "128", "100", "images per step"},
    {NULL, 0, NULL, NULL, NULL},
};

enum { CONSTANT, STOCHASTIC, N_RUNS };
static const char *const run_names[N_RUNS] = {"constant-depth", "stochastic-depth"};

typedef struct {
    float p_last;               /* the option the run was trained with */
    int blocks;
    float survival[MAX_BLOCKS]; /* read back from the trained model, opened with the run's p_L */
    float rule[MAX_BLOCKS];     /* 1 - l / L (1 - p_L), l = 1..L, as the code computes it (float) */
    double depth_model;         /* sum of survival */
    double depth_file;          /* the same for the model file opened alone */
    double depth_formula;       /* L - (1 - p_L)(L + 1) / 2 */
    double macs_fraction;       /* expected multiply-adds of a training forward over the full net's */
    double train_time_s;        /* sum of the epochs' time_s */
    double err_model, loss_model; /* the final model re-evaluated, opened with the run's p_L */
    double err_file, loss_file;   /* ... and as the model file opens alone */
    rn_exp_epoch *rows;
    int n;
} run_result;

/* The trained model of run r. with_config: with the run's stochastic-depth option given
 * explicitly; without: as the model file opens alone, from the p_L it records. */
static int open_model(rn_exp *x, int r, int with_config, rn_net **net)
{
    if (!with_config) return rn_exp_open_run(x, run_names[r], net);
    const rn_exp_run_entry *e = NULL;
    for (int i = 0; i < x->n_runs; i++)
        if (!strcmp(x->runs[i].name, run_names[r])) e = &x->runs[i];
    if (!e) return rn_fail(RN_ERR_ARG, "no run named %s", run_names[r]);
    char path[RN_TRAIN_PATH_MAX + 120];
    snprintf(path, sizeof path, "%s/runs/%s/model.safetensors", x->out, e->name);
    rn_net_options o;
    rn_net_options_init(&o);
    o.survival_last = e->cfg.survival_last;
    return rn_net_open(net, path, NULL, &o);
}

static double block_depth(const rn_net *net, float *survival)
{
    double depth = 0.0;
    for (int b = 0; b < rn_net_num_blocks(net); b++) {
        rn_unit_info u;
        if (rn_net_unit(net, b + 1, &u)) return NAN;
        if (survival) survival[b] = u.survival;
        depth += u.survival;
    }
    return depth;
}

static int evaluate(rn_exp *x, rn_net *net, const rn_dataset *eval, double *err, double *loss)
{
    rn_eval_result e;
    int st = rn_evaluate(net, eval, (int)rn_exp_int(x, "batch"), 0, &e);
    if (st) return st;
    *err = e.n ? 1.0 - (double)e.correct / e.n : NAN;
    *loss = e.loss;
    rn_eval_result_free(&e);
    rn_exp_work_done(x, rn_exp_net_cost(net) * eval->n);
    return RN_OK;
}

/* Survival probabilities of the trained model and what they imply; the final model evaluated
 * both ways. */
static int inspect(rn_exp *x, int r, run_result *out, const rn_dataset *eval)
{
    rn_net *net, *file;
    int st = open_model(x, r, 1, &net);
    if (st) return st;
    if ((st = open_model(x, r, 0, &file))) {
        rn_net_free(net);
        return st;
    }
    const int nb = rn_net_num_blocks(net);
    if (nb > MAX_BLOCKS) st = rn_fail(RN_ERR_ARG, "%d blocks: at most %d", nb, MAX_BLOCKS);
    out->blocks = nb;
    const double L = nb, p = out->p_last;
    double macs = 0.0;
    for (int i = 0; i < rn_net_num_units(net) && !st; i++) {
        rn_unit_info u;
        if (!(st = rn_net_unit(net, i, &u))) macs += (double)u.survival * (double)u.macs;
    }
    for (int l = 1; l <= nb && !st; l++) out->rule[l - 1] = 1.0f - (float)l / (float)nb * (1.0f - out->p_last);
    if (!st) {
        out->depth_model = block_depth(net, out->survival);
        out->depth_file = block_depth(file, NULL);
        out->depth_formula = L - (1.0 - p) * (L + 1.0) / 2.0;
        out->macs_fraction = macs / (double)rn_net_macs(net);
        rn_exp_set_phase(x, "re-evaluating %s", run_names[r]);
        st = evaluate(x, net, eval, &out->err_model, &out->loss_model);
    }
    if (!st) st = evaluate(x, file, eval, &out->err_file, &out->loss_file);
    rn_net_free(net);
    rn_net_free(file);
    return st;
}

static int draw(rn_exp *x, const run_result *res, const char *arch)
{
    double *buf = calloc((size_t)N_RUNS * 3 * 4096, sizeof(double));
    if (!buf) return rn_fail(RN_ERR_NOMEM, "out of memory");
    rn_plot_series test[N_RUNS], train[N_RUNS];
    char labels[N_RUNS][64];
    for (int r = 0; r < N_RUNS; r++) {
        int n = res[r].n < 4096 ? res[r].n : 4096;
        double *ep = buf + (size_t)r * 3 * 4096, *te = ep + 4096, *tr = te + 4096;
        for (int k = 0; k < n; k++) {
            ep[k] = res[r].rows[k].epoch;
            te[k] = 100.0 * res[r].rows[k].eval_error;
            tr[k] = 100.0 * res[r].rows[k].train_error;
        }
        if (r == CONSTANT) snprintf(labels[r], sizeof labels[r], "constant (%d blocks)", res[r].blocks);
        else snprintf(labels[r], sizeof labels[r], "stochastic (%.2f expected)", res[r].depth_model);
        test[r] = (rn_plot_series){.label = labels[r], .x = ep, .y = te, .n = n,
                                   .style = RN_PLOT_LINE_POINTS, .color = r, .dashed = r == CONSTANT};
        train[r] = test[r];
        train[r].y = tr;
    }
    /* training time: measured, and for stochastic depth the constant run's time scaled by the
     * expected share of multiply-adds it computes */
    double bx[N_RUNS] = {1, 2}, by[N_RUNS], cx[1] = {2.15}, cy[1];
    by[CONSTANT] = res[CONSTANT].train_time_s;
    by[STOCHASTIC] = res[STOCHASTIC].train_time_s;
    cy[0] = by[CONSTANT] * res[STOCHASTIC].macs_fraction / res[CONSTANT].macs_fraction;
    rn_plot_series times[3] = {
        {.label = "measured, constant", .x = bx, .y = by, .n = 1, .style = RN_PLOT_BARS, .color = 0},
        {.label = "measured, stochastic", .x = bx + 1, .y = by + 1, .n = 1, .style = RN_PLOT_BARS,
         .color = 1},
        {.label = "from mult-adds, stochastic", .x = cx, .y = cy, .n = 1,
         .style = RN_PLOT_BARS, .color = 8},
    };
    const double top = fmax(fmax(by[0], by[1]), cy[0]);
    /* headroom above the curves for the legend */
    double lo[2] = {INFINITY, INFINITY}, hi[2] = {-INFINITY, -INFINITY};
    for (int r = 0; r < N_RUNS; r++)
        for (int k = 0; k < test[r].n; k++) {
            lo[0] = fmin(lo[0], test[r].y[k]), hi[0] = fmax(hi[0], test[r].y[k]);
            lo[1] = fmin(lo[1], train[r].y[k]), hi[1] = fmax(hi[1], train[r].y[k]);
        }
    for (int j = 0; j < 2; j++) {
        if (!(lo[j] <= hi[j])) lo[j] = 0.0, hi[j] = 100.0;
        const double span = hi[j] - lo[j] + 1.0;
        lo[j] = fmax(0.0, lo[j] - 0.05 * span);
        hi[j] += 0.45 * span;
    }
    /* survival per block: the rule as read back from both models */
    double blk[MAX_BLOCKS], sv[N_RUNS][MAX_BLOCKS];
    rn_plot_series surv[N_RUNS];
    for (int r = 0; r < N_RUNS; r++) {
        for (int b = 0; b < res[r].blocks; b++) blk[b] = b + 1, sv[r][b] = res[r].survival[b];
        surv[r] = (rn_plot_series){.label = labels[r], .x = blk, .y = sv[r], .n = res[r].blocks,
                                   .style = RN_PLOT_LINE_POINTS, .color = r, .dashed = r == CONSTANT};
    }
    rn_plot_panel p[4] = {
        {.title = "test error (after each epoch)", .xlabel = "epoch", .ylabel = "test error (%)",
         .xmin = NAN, .xmax = NAN, .ymin = lo[0], .ymax = hi[0], .series = test, .n_series = N_RUNS,
         .legend_pos = 0},
        {.title = "training error (mean over the epoch)", .xlabel = "epoch",
         .ylabel = "training error (%)", .xmin = NAN, .xmax = NAN, .ymin = lo[1], .ymax = hi[1],
         .series = train, .n_series = N_RUNS, .legend_pos = 0},
        {.title = "training wall time (sum over epochs)", .xlabel = "1: constant depth, 2: stochastic depth",
         .ylabel = "training time (s)", .xmin = 0.5, .xmax = 2.5, .ymin = 0.0,
         .ymax = 1.6 * top + 1e-3, .series = times, .n_series = 3, .legend_pos = 0},
        {.title = "survival probability of each block (trained models)", .xlabel = "block (input to output)",
         .ylabel = "probability the block is kept", .xmin = 0.5, .xmax = res[0].blocks + 0.5,
         .ymin = 0.0, .ymax = 1.15, .series = surv, .n_series = N_RUNS, .legend_pos = 3},
    };
    char title[160];
    /* no underscores: PLplot draws them as spaces */
    snprintf(title, sizeof title, "Stochastic depth (survival falling linearly to %g) against constant depth, %s",
             (double)res[STOCHASTIC].p_last, arch);
    /* two figures of two panels: PLplot's text grows with the page's height, so a grid of four
     * would crowd its labels */
    rn_plot_figure fig = {.title = title, .width = 1400, .height = 600};
    int st = rn_exp_plot(x, "stochastic_depth", &fig, p, 2);
    snprintf(title, sizeof title, "Stochastic depth: training time and survival probabilities, %s", arch);
    if (!st) st = rn_exp_plot(x, "stochastic_depth_time", &fig, p + 2, 2);
    free(buf);
    return st;
}

static int write_csv(rn_exp *x, const run_result *res)
{
    rn_exp_file f;
    int st = rn_exp_file_open(x, &f, "results.csv");
    if (st) return st;
    rn_exp_printf(&f, "section,run,survival_last,epoch,train_loss,train_error,test_loss,test_error,"
                      "time_s,block,survival,survival_rule,opened,blocks,expected_depth_model,"
                      "expected_depth_file,expected_depth_formula,expected_macs_fraction,train_time_s\n");
    for (int r = 0; r < N_RUNS; r++)
        for (int k = 0; k < res[r].n; k++) {
            const rn_exp_epoch *e = &res[r].rows[k];
            rn_exp_printf(&f, "epoch,%s,%g,%d,%.6f,%.6f,%.6f,%.6f,%.2f,,,,,,,,,,\n", run_names[r],
                          (double)res[r].p_last, e->epoch, e->train_loss, e->train_error, e->eval_loss,
                          e->eval_error, e->time_s);
        }
    for (int r = 0; r < N_RUNS; r++)
        for (int b = 0; b < res[r].blocks; b++)
            rn_exp_printf(&f, "block,%s,%g,,,,,,,%d,%.9g,%.9g,,%d,,,,,\n", run_names[r],
                          (double)res[r].p_last, b + 1, (double)res[r].survival[b],
                          (double)res[r].rule[b], res[r].blocks);
    /* the final model re-evaluated: as trained (the run's p_L) and as its file opens alone */
    for (int r = 0; r < N_RUNS; r++)
        for (int how = 0; how < 2; how++)
            rn_exp_printf(&f, "eval,%s,%g,%d,,,%.6f,%.6f,,,,,%s,%d,,,,,\n", run_names[r],
                          (double)res[r].p_last, res[r].rows[res[r].n - 1].epoch,
                          how ? res[r].loss_file : res[r].loss_model,
                          how ? res[r].err_file : res[r].err_model, how ? "file" : "config",
                          res[r].blocks);
    for (int r = 0; r < N_RUNS; r++) {
        const rn_exp_epoch *e = &res[r].rows[res[r].n - 1];
        rn_exp_printf(&f, "run,%s,%g,%d,%.6f,%.6f,%.6f,%.6f,,,,,,%d,%.9f,%.9f,%.9f,%.6f,%.2f\n",
                      run_names[r], (double)res[r].p_last, e->epoch, e->train_loss, e->train_error,
                      e->eval_loss, e->eval_error, res[r].blocks, res[r].depth_model,
                      res[r].depth_file, res[r].depth_formula, res[r].macs_fraction,
                      res[r].train_time_s);
    }
    return rn_exp_file_close(&f);
}

static int write_summary(rn_exp *x, const run_result *res, const char *arch)
{
    rn_exp_file f;
    int st = rn_exp_summary_open(x, &f);
    if (st) return st;
    const run_result *c = &res[CONSTANT], *s = &res[STOCHASTIC];
    const int L = s->blocks;
    const double p = s->p_last;
    rn_exp_printf(&f, "%s trained twice with the same seed, data order, epochs and recipe (SGD lr 0.1 "
                      "step schedule, momentum 0.9, weight decay 1e-4, batch %ld): at constant depth, "
                      "and with stochastic depth, each residual block l = 1..L (L = %d) kept for a "
                      "whole mini-batch with probability p_l = 1 - (l / L)(1 - p_L), p_L = %g, and at "
                      "test time its branch scaled by p_l.\n\n",
                  arch, rn_exp_int(x, "batch"), L, p);
    rn_exp_printf(&f, "| run | expected depth (blocks) | training error (%%) | test error (%%) | "
                      "training time (s) |\n|---|---|---|---|---|\n");
    for (int r = 0; r < N_RUNS; r++) {
        const run_result *q = &res[r];
        rn_exp_printf(&f, "| %s | %.2f of %d | %.2f | %.2f | %.1f |\n", run_names[r], q->depth_model,
                      q->blocks, 100.0 * q->rows[q->n - 1].train_error,
                      100.0 * q->rows[q->n - 1].eval_error, q->train_time_s);
    }
    rn_exp_printf(&f, "\nTest error per epoch (%%):\n\n| epoch | constant depth | stochastic depth |\n"
                      "|---|---|---|\n");
    for (int k = 0; k < c->n && k < s->n; k++)
        rn_exp_printf(&f, "| %d | %.2f | %.2f |\n", k + 1, 100.0 * c->rows[k].eval_error,
                      100.0 * s->rows[k].eval_error);
    const double ratio = c->train_time_s > 0 ? s->train_time_s / c->train_time_s : NAN;
    const double predicted = s->macs_fraction / c->macs_fraction;
    const int agree = fabs(s->depth_model - s->depth_formula) <= 1e-5 * L;
    rn_exp_printf(&f, "\n**Expected depth.** The code's rule (src/nn/zoo.c) is Huang et al.'s linear "
                      "decay, p_l = 1 - (l / L)(1 - p_L) for l = 1..L, so the expected number of "
                      "blocks a mini-batch passes through is sum_l p_l = L - (1 - p_L)(L + 1) / 2, "
                      "which for p_L = 1/2 is (3L - 1) / 4. Here L = %d: %.4f by the formula, %.4f "
                      "summed from the survival probabilities of the trained model (opened with the "
                      "run's p_L): %s. The constant-depth run's is %.0f = L.\n\n",
                  L, s->depth_formula, s->depth_model,
                  agree ? "the same up to float rounding" : "**they differ**", c->depth_model);
    rn_exp_printf(&f, "**Time.** Training took %.1f s with stochastic depth against %.1f s at constant "
                      "depth: a ratio of %.3f, %.1f%% %s (the paper: 20h42m to 15h7m for ResNet-110, "
                      "27%% less, \"a 25%% speedup\"). The multiply-adds a training step computes on "
                      "average fall to %.3f of the full net's (stem and classifier always run), the "
                      "ratio the times would have if they followed the arithmetic alone.\n\n",
                  s->train_time_s, c->train_time_s, ratio, 100.0 * fabs(1.0 - ratio),
                  ratio <= 1.0 ? "less" : "more", predicted);
    const double e_c = 100.0 * c->rows[c->n - 1].eval_error, e_s = 100.0 * s->rows[s->n - 1].eval_error;
    const int faster = ratio < 0.9, better = e_s <= e_c;
    rn_exp_printf(&f, "**Error.** Final test error %.2f%% with stochastic depth against %.2f%% at "
                      "constant depth (%+.2f points; the paper: 6.41%% to 5.25%% on CIFAR-10+ after "
                      "500 epochs). Stochastic depth is a regulariser: it pays off over long training, "
                      "where the constant-depth net overfits; in a short run it mostly slows the fall "
                      "of the training error (final training error %.2f%% against %.2f%%).\n\n",
                  e_s, e_c, e_s - e_c, 100.0 * s->rows[s->n - 1].train_error,
                  100.0 * c->rows[c->n - 1].train_error);
    rn_exp_printf(&f, "**Test-time scaling and the model file.** Re-evaluated with each block's "
                      "branch scaled by its p_l, the final stochastic-depth model gives %.2f%% test "
                      "error (the run's own last evaluation: %.2f%%). Its model.safetensors records "
                      "p_L (metadata `stochastic_depth`): opened alone (`resnet eval --model`), it "
                      "has expected depth %.2f and gives %.2f%% test error%s.\n\n",
                  100.0 * s->err_model, 100.0 * s->rows[s->n - 1].eval_error, s->depth_file,
                  100.0 * s->err_file,
                  s->err_file == s->err_model && s->depth_file == s->depth_model
                      ? ", the same: the file carries what the test-time scaling needs"
                      : ": **not** what the run's settings give");
    rn_exp_printf(&f, "- Less training time: %s\n- Test error as low or lower: %s\n\nThe claim %s in "
                      "this run.\n\nFiles: results.csv (section epoch: every epoch of both runs; "
                      "section block: each block's survival probability read back from the model and "
                      "the rule's; section eval: the final models re-evaluated with and without the "
                      "run's p_L; section run: the expected depth three ways, the expected share of "
                      "mult-adds and the training time), stochastic_depth.png / .svg (errors per "
                      "epoch), stochastic_depth_time.png / .svg (training times, survival per block), "
                      "runs/<run>/ (the training runs).\n",
                  faster ? "**holds**." : "**does not hold** (less than 10% saved).",
                  better ? "**holds**." : "**does not hold** in this run.",
                  faster && better ? "**held**" : faster || better ? "**held in part**" : "**did not hold**");
    rn_exp_note(x, "time ratio %.3f (stochastic / constant), test error %.2f%% vs %.2f%%, expected "
                   "depth %.2f of %d",
                ratio, e_s, e_c, s->depth_model, L);
    return rn_exp_file_close(&f);
}

static int run(rn_exp *x)
{
    const char *arch = rn_exp_text(x, "arch");
    const int epochs = (int)rn_exp_int(x, "epochs"), batch = (int)rn_exp_int(x, "batch");
    const double p_last = rn_exp_float(x, "survival");
    if (epochs < 1 || batch < 1) return rn_fail(RN_ERR_ARG, "--epochs and --batch must be at least 1");
    if (!(p_last > 0.0 && p_last <= 1.0)) return rn_fail(RN_ERR_ARG, "--survival must be in (0, 1], not %g", p_last);
    if (strlen(arch) >= 64) return rn_fail(RN_ERR_ARG, "--arch: name too long");
    /* only residual blocks can be skipped: the net must take a survival probability below 1 */
    rn_net *probe;
    int st = rn_net_create(&probe, arch, NULL);
    if (st) return st;
    if (rn_net_num_blocks(probe) < 1 || rn_net_set_block_survival(probe, 0, 0.5f) != RN_OK)
        st = rn_fail(RN_ERR_ARG, "--arch %s: stochastic depth needs a residual net (resnet..., "
                                 "preresnet..., wrn-...)", arch);
    rn_net_free(probe);
    if (st) return st;
    run_result *res = calloc(N_RUNS, sizeof *res);
    if (!res) return rn_fail(RN_ERR_NOMEM, "out of memory");
    for (int r = 0; r < N_RUNS && !st; r++) {
        rn_train_config cfg;
        rn_exp_train_config(x, &cfg);
        snprintf(cfg.arch, sizeof cfg.arch, "%s", arch);
        cfg.epochs = epochs;
        cfg.batch = batch;
        cfg.survival_last = r == STOCHASTIC ? (float)p_last : 1.0f;
        res[r].p_last = cfg.survival_last;
        st = rn_exp_add_run(x, run_names[r], &cfg);
    }
    const rn_dataset *train, *eval;
    if (!st) st = rn_exp_data(x, &train, &eval);
    if (!st) {
        /* four evaluations of the test set after training */
        rn_net_options o;
        rn_net_options_init(&o);
        o.classes = train->classes, o.in_c = train->c, o.in_h = train->h, o.in_w = train->w;
        st = rn_net_create(&probe, arch, &o);
        if (!st) rn_exp_plan_work(x, 2.0 * N_RUNS * rn_exp_net_cost(probe) * eval->n);
        rn_net_free(probe);
    }
    if (!st) st = rn_exp_train_runs(x);
    for (int r = 0; r < N_RUNS && !st && !x->interrupted; r++) {
        st = rn_exp_run_metrics(x, run_names[r], &res[r].rows, &res[r].n);
        if (!st && res[r].n < 1) st = rn_fail(RN_ERR_FORMAT, "run %s has no epochs", run_names[r]);
        if (!st) st = inspect(x, r, &res[r], eval);
        for (int k = 0; k < res[r].n; k++) res[r].train_time_s += res[r].rows[k].time_s;
    }
    if (!st && !x->interrupted) st = write_csv(x, res);
    if (!st && !x->interrupted) st = draw(x, res, arch);
    if (!st && !x->interrupted) st = write_summary(x, res, arch);
    for (int r = 0; r < N_RUNS; r++) free(res[r].rows);
    free(res);
    return st;
}

const rn_experiment rn_exp_stochastic_depth = {
    .name = "stochastic-depth",
    .title = "Stochastic depth: training short nets, testing deep ones",
    .claim = "dropping whole residual blocks at random during training, with survival probabilities "
             "falling linearly from 1 to p_L = 0.5, trains a deep residual net in about 25% less time "
             "than at constant depth and gives as low or lower a test error",
    .source = "Huang et al. 2016, Deep Networks with Stochastic Depth, Sec. 3-4",
    .opts = opts,
    .run = run,
};
