/* orderings: where batch norm and ReLU sit in a residual unit matters; keeping the shortcut a
 * clean identity (full pre-activation) trains best and BN after the addition worst (He et al.
 * 2016, "Identity Mappings in Deep Residual Networks", Fig. 4, Table 2). The five orderings of one
 * net are trained with the same budget and recipe and compared with the paper's test errors. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "experiments/experiment.h"

#define N_UNITS 5

static const rn_xopt opts[] = {
    {"depth", RN_XOPT_INT, "20", "8", "depth of the residual net (6n+2), the same for all five "
                                      "orderings"},
    {"stem-stride", RN_XOPT_INT, "2", "2", "1: the CIFAR nets as published; 2: a stride-2 stem "
                                           "(maps half the size, 4x cheaper; for 28x28 images)"},
    {"epochs", RN_XOPT_INT, "6", "1", "epochs of every run (lr 0.1, divided by 10 at 50% and 75%)"},
    {"batch", RN_XOPT_INT, "128", "100", "images per step"},
    {NULL, 0, NULL, NULL, NULL},
};

/* Indexed by rn_ordering. Table 2 of He et al. 2016: CIFAR-10 test error (%), median of 5 runs. */
static const struct {
    const char *letter, *label;
    double paper110, paper164;
} units[N_UNITS] = {
    {"a", "original", 6.61, 5.93},
    {"b", "BN after addition", 8.17, 6.50},
    {"c", "ReLU before addition", 7.84, 6.14},
    {"d", "ReLU-only pre-activation", 6.71, 5.91},
    {"e", "full pre-activation", 6.37, 5.46},
};

typedef struct {
    char name[32];          /* rn_ordering_name: the run's folder */
    char stored[32];        /* the ordering the trained model's file states */
    size_t params, conv, bn, fc, other;
    rn_exp_epoch *rows;
    int n;
    double train_err, test_err; /* final epoch, % */
    int rank, rank110, rank164; /* 1 = lowest test error */
} unit_result;

/* Ranks (1 = lowest) of v[0..n-1]; ties keep the table's order. */
static void ranks(const double *v, int n, int *out)
{
    for (int i = 0; i < n; i++) {
        out[i] = 1;
        for (int j = 0; j < n; j++)
            if (v[j] < v[i] || (v[j] == v[i] && j < i)) out[i]++;
    }
}

static double spearman(const int *a, const int *b, int n)
{
    double d2 = 0.0;
    for (int i = 0; i < n; i++) d2 += (double)(a[i] - b[i]) * (a[i] - b[i]);
    return 1.0 - 6.0 * d2 / ((double)n * ((double)n * n - 1.0));
}

/* The letters in rank order, e.g. "e < a < d < c < b". */
static void order_text(const int *rank, char *out, size_t size)
{
    out[0] = 0;
    for (int r = 1; r <= N_UNITS; r++)
        for (int i = 0; i < N_UNITS; i++)
            if (rank[i] == r) {
                size_t len = strlen(out);
                snprintf(out + len, size - len, "%s(%s)", r > 1 ? " < " : "", units[i].letter);
            }
}

/* The ordering the model file states and its parameters by kind, read back from the file. */
static int inspect(rn_exp *x, unit_result *u)
{
    rn_net *net;
    int st = rn_exp_open_run(x, u->name, &net);
    if (st) return st;
    rn_net_options o;
    rn_net_get_options(net, &o);
    snprintf(u->stored, sizeof u->stored, "%s", rn_ordering_name((rn_ordering)o.ordering));
    u->params = rn_net_num_params(net);
    for (int i = 0; i < rn_net_num_tensors(net) && !st; i++) {
        rn_tensor_info t;
        if ((st = rn_net_tensor(net, i, &t)) || t.kind != RN_TENSOR_PARAM) continue;
        if (t.ndim == 4) u->conv += t.numel;
        else if (!strncmp(t.name, "fc.", 3)) u->fc += t.numel;
        else if (strstr(t.name, "bn") || strstr(t.name, "downsample.1")) u->bn += t.numel;
        else u->other += t.numel;
    }
    rn_net_free(net);
    return st;
}

/* The units' colours and labels, the same in both figures. */
static rn_plot_series unit_series(int i, const char *label, const double *xv, const double *yv, int n,
                                  rn_plot_style style)
{
    return (rn_plot_series){.label = label, .x = xv, .y = yv, .n = n, .style = style, .color = i,
                            .dashed = i == 1 && style != RN_PLOT_BARS};
}

static int draw(rn_exp *x, const unit_result *res, int depth)
{
    double *buf = calloc((size_t)N_UNITS * 3 * 4096, sizeof(double));
    if (!buf) return rn_fail(RN_ERR_NOMEM, "out of memory");
    rn_plot_series train[N_UNITS], test[N_UNITS];
    char labels[N_UNITS][64];
    for (int i = 0; i < N_UNITS; i++) {
        const unit_result *r = &res[i];
        int n = r->n < 4096 ? r->n : 4096;
        double *ep = buf + (size_t)i * 3 * 4096, *tr = ep + 4096, *te = tr + 4096;
        for (int k = 0; k < n; k++) {
            ep[k] = r->rows[k].epoch;
            tr[k] = 100.0 * r->rows[k].train_error;
            te[k] = 100.0 * r->rows[k].eval_error;
        }
        snprintf(labels[i], sizeof labels[i], "(%s) %s", units[i].letter, units[i].label);
        train[i] = unit_series(i, labels[i], ep, tr, n, RN_PLOT_LINE_POINTS);
        test[i] = unit_series(i, labels[i], ep, te, n, RN_PLOT_LINE_POINTS);
    }
    rn_plot_panel p1[2] = {
        {.title = "training error (mean over each epoch's batches)", .xlabel = "epoch",
         .ylabel = "training error (%)", .xmin = NAN, .xmax = NAN, .ymin = NAN, .ymax = NAN,
         .series = train, .n_series = N_UNITS, .legend_pos = 0},
        {.title = "test error (after each epoch)", .xlabel = "epoch", .ylabel = "test error (%)",
         .xmin = NAN, .xmax = NAN, .ymin = NAN, .ymax = NAN, .series = test, .n_series = N_UNITS,
         .legend_pos = 0},
    };
    char title[160];
    snprintf(title, sizeof title, "Five residual-unit orderings of ResNet-%d, same budget and recipe", depth);
    rn_plot_figure fig = {.title = title, .width = 1400, .height = 600};
    int st = rn_exp_plot(x, "orderings", &fig, p1, 2);

    /* Final test errors grouped by source (ours, paper 110, paper 164), one colour per unit as
     * above: the rank order within each group is what compares across data sets and depths. */
    double gx[N_UNITS][3], gy[N_UNITS][3], gd[N_UNITS][3], top = 0.0, dlo = 0.0, dhi = 0.0;
    for (int i = 0; i < N_UNITS; i++) {
        const double v[3] = {res[i].test_err, units[i].paper110, units[i].paper164};
        const double a[3] = {res[0].test_err, units[0].paper110, units[0].paper164};
        for (int g = 0; g < 3; g++) {
            gx[i][g] = g + 1 + 0.14 * (i - 2);
            gy[i][g] = v[g];
            gd[i][g] = v[g] - a[g];
            top = fmax(top, v[g]);
            dlo = fmin(dlo, gd[i][g]), dhi = fmax(dhi, gd[i][g]);
        }
    }
    rn_plot_series bars[N_UNITS], diff[N_UNITS];
    for (int i = 0; i < N_UNITS; i++) {
        bars[i] = unit_series(i, labels[i], gx[i], gy[i], 3, RN_PLOT_BARS);
        diff[i] = unit_series(i, labels[i], gx[i], gd[i], 3, RN_PLOT_BARS);
    }
    static const char *xl = "1: ours, 2: paper ResNet-110, 3: paper ResNet-164";
    /* the legend needs room above the bars */
    rn_plot_panel p2[2] = {
        {.title = "final test error", .xlabel = xl, .ylabel = "test error (%)", .xmin = 0.5,
         .xmax = 3.5, .ymin = 0.0, .ymax = 1.7 * top + 0.1, .series = bars, .n_series = N_UNITS,
         .legend_pos = 0},
        {.title = "final test error minus that of (a) original", .xlabel = xl,
         .ylabel = "difference (percentage points)", .xmin = 0.5, .xmax = 3.5, .ymin = dlo - 0.1,
         .ymax = dhi + 1.2 * (dhi - dlo) + 0.1, .series = diff, .n_series = N_UNITS, .legend_pos = 0},
    };
    char title2[200];
    snprintf(title2, sizeof title2, "Final test error: ours (ResNet-%d, %s) against He et al. 2016, "
                                    "Table 2 (CIFAR-10)", depth, rn_data_kind_name(x->set.data));
    rn_plot_figure fig2 = {.title = title2, .width = 1500, .height = 650};
    if (!st) st = rn_exp_plot(x, "orderings_final", &fig2, p2, 2);
    free(buf);
    return st;
}

static int write_csv(rn_exp *x, const unit_result *res, int depth)
{
    rn_exp_file f;
    int st = rn_exp_file_open(x, &f, "results.csv");
    if (st) return st;
    rn_exp_printf(&f, "section,ordering,unit,depth,epoch,train_loss,train_error,test_loss,test_error,"
                      "time_s,stored_ordering,params,conv_params,bn_params,fc_params,other_params,"
                      "paper_110,paper_164,rank,rank_110,rank_164\n");
    for (int i = 0; i < N_UNITS; i++)
        for (int k = 0; k < res[i].n; k++) {
            const rn_exp_epoch *e = &res[i].rows[k];
            rn_exp_printf(&f, "epoch,%s,%s,%d,%d,%.6f,%.6f,%.6f,%.6f,%.2f,,,,,,,,,,,\n", res[i].name,
                          units[i].letter, depth, e->epoch, e->train_loss, e->train_error,
                          e->eval_loss, e->eval_error, e->time_s);
        }
    for (int i = 0; i < N_UNITS; i++) {
        const unit_result *r = &res[i];
        const rn_exp_epoch *e = &r->rows[r->n - 1];
        double t = 0;
        for (int k = 0; k < r->n; k++) t += r->rows[k].time_s;
        rn_exp_printf(&f, "final,%s,%s,%d,%d,%.6f,%.6f,%.6f,%.6f,%.2f,%s,%zu,%zu,%zu,%zu,%zu,%.2f,%.2f,"
                          "%d,%d,%d\n",
                      r->name, units[i].letter, depth, e->epoch, e->train_loss, e->train_error,
                      e->eval_loss, e->eval_error, t, r->stored, r->params, r->conv, r->bn, r->fc,
                      r->other, units[i].paper110, units[i].paper164, r->rank, r->rank110, r->rank164);
    }
    return rn_exp_file_close(&f);
}

static int write_summary(rn_exp *x, const unit_result *res, int depth, int test_n)
{
    rn_exp_file f;
    int st = rn_exp_summary_open(x, &f);
    if (st) return st;
    rn_exp_printf(&f, "Five runs of ResNet-%d, one per residual-unit ordering (Fig. 4 of the paper), "
                      "each with the same seed, data order, epochs and recipe (SGD lr 0.1 step "
                      "schedule, momentum 0.9, weight decay 1e-4, batch %ld). Errors are the final "
                      "epoch's; the paper's are CIFAR-10 test errors (median of 5 runs).\n\n",
                  depth, rn_exp_int(x, "batch"));
    rn_exp_printf(&f, "| unit | ordering | parameters | training error (%%) | test error (%%) | rank | "
                      "paper ResNet-110 (%%) | rank | paper ResNet-164 (%%) | rank |\n"
                      "|---|---|---|---|---|---|---|---|---|---|\n");
    for (int i = 0; i < N_UNITS; i++) {
        const unit_result *r = &res[i];
        rn_exp_printf(&f, "| (%s) %s | %s | %zu | %.2f | %.2f | %d | %.2f | %d | %.2f | %d |\n",
                      units[i].letter, units[i].label, r->stored, r->params, r->train_err, r->test_err,
                      r->rank, units[i].paper110, r->rank110, units[i].paper164, r->rank164);
    }
    int rk[N_UNITS], r110[N_UNITS], r164[N_UNITS];
    double lo = INFINITY, hi = -INFINITY, mean = 0;
    for (int i = 0; i < N_UNITS; i++) {
        rk[i] = res[i].rank, r110[i] = res[i].rank110, r164[i] = res[i].rank164;
        lo = fmin(lo, res[i].test_err), hi = fmax(hi, res[i].test_err);
        mean += res[i].test_err / N_UNITS;
    }
    char o_ours[96], o_110[96], o_164[96];
    order_text(rk, o_ours, sizeof o_ours);
    order_text(r110, o_110, sizeof o_110);
    order_text(r164, o_164, sizeof o_164);
    /* sampling noise of one test error alone (binomial), and of a difference of two */
    const double p = mean / 100.0, se = test_n > 0 ? 100.0 * sqrt(p * (1 - p) / test_n) : NAN;
    rn_exp_printf(&f, "\nRank order of the test error (best first):\n\n- ours: %s (Spearman's rho "
                      "against ResNet-110 %.2f, against ResNet-164 %.2f)\n- paper ResNet-110: %s\n- "
                      "paper ResNet-164: %s\n\n",
                  o_ours, spearman(rk, r110, N_UNITS), spearman(rk, r164, N_UNITS), o_110, o_164);
    rn_exp_printf(&f, "Our five test errors span %.2f points (%.2f to %.2f); the paper's span 1.80 "
                      "points at 110 layers and 1.04 at 164. With %d test images one test error "
                      "carries a sampling noise of about %.2f points (binomial standard error), a "
                      "difference of two about %.2f, before any seed-to-seed variation (one seed "
                      "each here).\n\n",
                  hi - lo, lo, hi, test_n, se, sqrt(2.0) * se);
    const int b_worst = res[1].rank == N_UNITS, e_best = res[4].rank == 1;
    const int big = hi - lo > 2.0 * sqrt(2.0) * se;
    rn_exp_printf(&f, "- (b) BN after addition, the paper's worst at both depths: %s here (rank %d of "
                      "5, %+.2f points against (a)). %s\n",
                  b_worst ? "also the worst" : "not the worst", res[1].rank,
                  res[1].test_err - res[0].test_err, b_worst ? "**Agrees.**" : "**Does not agree.**");
    rn_exp_printf(&f, "- (e) full pre-activation, the paper's best at both depths: %s here (rank %d, "
                      "%+.2f points against (a)). %s\n",
                  e_best ? "also the best" : "not the best", res[4].rank,
                  res[4].test_err - res[0].test_err, e_best ? "**Agrees.**" : "**Does not agree.**");
    rn_exp_printf(&f, "- Final training errors: (e) %.2f%% against (a) %.2f%%; the paper saw "
                      "pre-activation end with a slightly *higher* training loss but a lower test "
                      "error (better regularisation through the BN at each branch's input).\n",
                  res[4].train_err, res[0].train_err);
    rn_exp_printf(&f, "- The spread of our five is %s twice the noise of a difference (%.2f points): "
                      "%s\n\n",
                  big ? "more than" : "within", 2.0 * sqrt(2.0) * se,
                  big ? "the ordering made a measurable difference in this run."
                      : "at this depth and budget the orderings are indistinguishable, as expected: "
                        "the paper's effects come from 110 to 1001 layers, where the shortcut's "
                        "clean identity path is what lets the signal through.");
    rn_exp_printf(&f, "All five orderings of this net have the same number of parameters (%zu: %zu "
                      "in convolutions, %zu in batch norms, %zu in the classifier): with option A "
                      "shortcuts, (e) drops the stem's BN and moves each unit's first BN to its "
                      "input (fewer channels in a downsampling unit), and its final BN before "
                      "pooling makes up exactly the difference; the orderings differ only in where "
                      "the operations sit.\n\n",
                  res[0].params, res[0].conv, res[0].bn, res[0].fc);
    rn_exp_printf(&f, "The claim %s in this run.\n\nFiles: results.csv (section epoch: every epoch "
                      "of every run; section final: final errors, the ordering each model file "
                      "states, parameters by kind, the paper's errors and the ranks), orderings.png "
                      "/ .svg (errors per epoch), orderings_final.png / .svg (ours against the "
                      "paper), runs/<ordering>/ (the training runs).\n",
                  b_worst && e_best ? "**held**"
                  : b_worst || e_best ? "**held in part**"
                                      : "**did not hold**");
    rn_exp_note(x, "test error (a)..(e): %.2f %.2f %.2f %.2f %.2f%%; order %s", res[0].test_err,
                res[1].test_err, res[2].test_err, res[3].test_err, res[4].test_err, o_ours);
    return rn_exp_file_close(&f);
}

static int run(rn_exp *x)
{
    const int depth = (int)rn_exp_int(x, "depth"), stem = (int)rn_exp_int(x, "stem-stride");
    const int epochs = (int)rn_exp_int(x, "epochs"), batch = (int)rn_exp_int(x, "batch");
    if (depth < 8 || (depth - 2) % 6)
        return rn_fail(RN_ERR_ARG, "--depth: %d is not of the form 6n+2 (8, 14, 20, 32, 44, 56, 110 ...)", depth);
    if (stem != 1 && stem != 2) return rn_fail(RN_ERR_ARG, "--stem-stride must be 1 or 2");
    if (epochs < 1 || batch < 1) return rn_fail(RN_ERR_ARG, "--epochs and --batch must be at least 1");
    unit_result res[N_UNITS];
    memset(res, 0, sizeof res);
    int st = RN_OK;
    for (int i = 0; i < N_UNITS && !st; i++) {
        snprintf(res[i].name, sizeof res[i].name, "%s", rn_ordering_name((rn_ordering)i));
        rn_train_config cfg;
        rn_exp_train_config(x, &cfg);
        snprintf(cfg.arch, sizeof cfg.arch, "resnet%d%s", depth, stem == 2 ? "-s2" : "");
        cfg.ordering = i;
        cfg.epochs = epochs;
        cfg.batch = batch;
        st = rn_exp_add_run(x, res[i].name, &cfg);
    }
    if (!st) st = rn_exp_train_runs(x);
    if (st || x->interrupted) return st;
    const rn_dataset *train, *eval;
    st = rn_exp_data(x, &train, &eval);
    for (int i = 0; i < N_UNITS && !st; i++) {
        st = rn_exp_run_metrics(x, res[i].name, &res[i].rows, &res[i].n);
        if (!st && res[i].n < 1) st = rn_fail(RN_ERR_FORMAT, "run %s has no epochs", res[i].name);
        if (!st) st = inspect(x, &res[i]);
        if (!st && strcmp(res[i].stored, res[i].name))
            st = rn_fail(RN_ERR_MISMATCH, "run %s: its model states ordering %s", res[i].name, res[i].stored);
        if (!st) {
            res[i].train_err = 100.0 * res[i].rows[res[i].n - 1].train_error;
            res[i].test_err = 100.0 * res[i].rows[res[i].n - 1].eval_error;
        }
    }
    if (!st) {
        double ours[N_UNITS], p110[N_UNITS], p164[N_UNITS];
        int r[3][N_UNITS];
        for (int i = 0; i < N_UNITS; i++)
            ours[i] = res[i].test_err, p110[i] = units[i].paper110, p164[i] = units[i].paper164;
        ranks(ours, N_UNITS, r[0]);
        ranks(p110, N_UNITS, r[1]);
        ranks(p164, N_UNITS, r[2]);
        for (int i = 0; i < N_UNITS; i++)
            res[i].rank = r[0][i], res[i].rank110 = r[1][i], res[i].rank164 = r[2][i];
        st = write_csv(x, res, depth);
    }
    if (!st) st = draw(x, res, depth);
    if (!st) st = write_summary(x, res, depth, eval->n);
    for (int i = 0; i < N_UNITS; i++) free(res[i].rows);
    return st;
}

const rn_experiment rn_exp_orderings = {
    .name = "orderings",
    .title = "Where BN and ReLU go in a residual unit",
    .claim = "of five orderings of batch norm, ReLU and addition in a residual unit, BN after the "
             "addition (b) is the worst and full pre-activation (e), which leaves the shortcut a "
             "clean identity, the best",
    .source = "He et al. 2016, Identity Mappings in Deep Residual Networks, Fig. 4, Table 2",
    .opts = opts,
    .run = run,
};
