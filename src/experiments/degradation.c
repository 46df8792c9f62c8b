/* degradation: plain nets get worse on their own training data as they get deeper; residual
 * nets of the same depths do not (He et al. 2015, Fig. 6). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "experiments/experiment.h"

#define MAX_DEPTHS 6

static const rn_xopt opts[] = {
    {"depths", RN_XOPT_INTS, "20,56", "8,20", "depths of the plain and residual nets (6n+2)"},
    {"epochs", RN_XOPT_INT, "6", "2", "epochs of every run (lr 0.1, divided by 10 at 50% and 75%)"},
    {"stem-stride", RN_XOPT_INT, "2", "2", "1: the CIFAR nets as published; 2: a stride-2 stem "
                                           "(maps half the size, 4x cheaper; for 28x28 images)"},
    {"batch", RN_XOPT_INT, "128", "100", "images per step"},
    {NULL, 0, NULL, NULL, NULL},
};

typedef struct {
    char name[32];
    int depth, residual;
    rn_exp_epoch *rows;
    int n;
} net_result;

static double final_error(const net_result *r, int train)
{
    if (!r->n) return NAN;
    return 100.0 * (train ? r->rows[r->n - 1].train_error : r->rows[r->n - 1].eval_error);
}

static int draw(rn_exp *x, net_result *res, int count)
{
    rn_plot_series train[2 * MAX_DEPTHS], test[2 * MAX_DEPTHS];
    double *buf = calloc((size_t)count * 3, sizeof(double) * 4096);
    if (!buf) return rn_fail(RN_ERR_NOMEM, "out of memory");
    int depth_colour = 0;
    for (int i = 0; i < count; i++) {
        net_result *r = &res[i];
        int n = r->n < 4096 ? r->n : 4096;
        double *ep = buf + (size_t)i * 3 * 4096, *tr = ep + 4096, *te = tr + 4096;
        for (int k = 0; k < n; k++) {
            ep[k] = r->rows[k].epoch;
            tr[k] = 100.0 * r->rows[k].train_error;
            te[k] = 100.0 * r->rows[k].eval_error;
        }
        depth_colour = i / 2;
        train[i] = (rn_plot_series){.label = r->name, .x = ep, .y = tr, .n = n,
                                    .style = RN_PLOT_LINE_POINTS, .color = depth_colour,
                                    .dashed = !r->residual};
        test[i] = train[i];
        test[i].y = te;
    }
    rn_plot_panel panels[2] = {
        {.title = "training error (dashed: plain, solid: residual)", .xlabel = "epoch",
         .ylabel = "training error (%)", .xmin = NAN, .xmax = NAN, .ymin = NAN, .ymax = NAN,
         .series = train, .n_series = count, .legend_pos = RN_PLOT_LEGEND_AUTO},
        {.title = "test error", .xlabel = "epoch", .ylabel = "test error (%)", .xmin = NAN,
         .xmax = NAN, .ymin = NAN, .ymax = NAN, .series = test, .n_series = count, .legend_pos = RN_PLOT_LEGEND_AUTO},
    };
    rn_plot_figure fig = {.title = "Degradation: plain against residual nets of the same depths, same recipe and budget",
                          .width = 1400, .height = 600};
    int st = rn_exp_plot(x, "degradation", &fig, panels, 2);
    free(buf);
    return st;
}

static int run(rn_exp *x)
{
    int depths[MAX_DEPTHS];
    int nd = rn_exp_ints(x, "depths", depths, MAX_DEPTHS);
    const int stem_stride = (int)rn_exp_int(x, "stem-stride");
    if (stem_stride != 1 && stem_stride != 2) return rn_fail(RN_ERR_ARG, "--stem-stride must be 1 or 2");
    if (nd < 2) return rn_fail(RN_ERR_ARG, "--depths: give at least two depths");
    net_result res[2 * MAX_DEPTHS];
    memset(res, 0, sizeof res);
    int st = RN_OK;
    for (int i = 0; i < nd && !st; i++) {
        if (depths[i] < 8 || (depths[i] - 2) % 6)
            return rn_fail(RN_ERR_ARG, "--depths: %d is not of the form 6n+2 (8, 14, 20, 32, 44, 56, 110 ...)",
                           depths[i]);
        for (int residual = 0; residual < 2 && !st; residual++) {
            net_result *r = &res[2 * i + residual];
            r->depth = depths[i];
            r->residual = residual;
            snprintf(r->name, sizeof r->name, "%s%d", residual ? "resnet" : "plain", depths[i]);
            rn_train_config cfg;
            rn_exp_train_config(x, &cfg);
            snprintf(cfg.arch, sizeof cfg.arch, "%.31s%s", r->name, stem_stride == 2 ? "-s2" : "");
            cfg.epochs = (int)rn_exp_int(x, "epochs");
            cfg.batch = (int)rn_exp_int(x, "batch");
            st = rn_exp_add_run(x, r->name, &cfg);
        }
    }
    if (!st) st = rn_exp_train_runs(x);
    if (st || x->interrupted) return st;
    const int count = 2 * nd;
    for (int i = 0; i < count && !st; i++) st = rn_exp_run_metrics(x, res[i].name, &res[i].rows, &res[i].n);

    rn_exp_file csv;
    if (!st) st = rn_exp_file_open(x, &csv, "results.csv");
    if (!st) {
        rn_exp_printf(&csv, "net,kind,depth,epoch,train_loss,train_error,test_loss,test_error,time_s\n");
        for (int i = 0; i < count; i++)
            for (int k = 0; k < res[i].n; k++) {
                const rn_exp_epoch *e = &res[i].rows[k];
                rn_exp_printf(&csv, "%s,%s,%d,%d,%.6f,%.6f,%.6f,%.6f,%.2f\n", res[i].name,
                              res[i].residual ? "residual" : "plain", res[i].depth, e->epoch,
                              e->train_loss, e->train_error, e->eval_loss, e->eval_error, e->time_s);
            }
        st = rn_exp_file_close(&csv);
    }
    if (!st) st = draw(x, res, count);

    rn_exp_file sum;
    if (!st) st = rn_exp_summary_open(x, &sum);
    if (!st) {
        rn_exp_printf(&sum, "| net | depth | training error (%%) | test error (%%) | training time (s) |\n"
                            "|---|---|---|---|---|\n");
        for (int i = 0; i < count; i++) {
            double t = 0;
            for (int k = 0; k < res[i].n; k++) t += res[i].rows[k].time_s;
            rn_exp_printf(&sum, "| %s | %d | %.2f | %.2f | %.0f |\n", res[i].name, res[i].depth,
                          final_error(&res[i], 1), final_error(&res[i], 0), t);
        }
        /* the claim compares the shallowest and the deepest of each kind */
        int lo = 0, hi = 0;
        for (int i = 1; i < nd; i++) {
            if (depths[i] < depths[lo]) lo = i;
            if (depths[i] > depths[hi]) hi = i;
        }
        double p_lo = final_error(&res[2 * lo], 1), p_hi = final_error(&res[2 * hi], 1);
        double r_lo = final_error(&res[2 * lo + 1], 1), r_hi = final_error(&res[2 * hi + 1], 1);
        int plain_holds = p_hi > p_lo, res_holds = r_hi <= r_lo;
        rn_exp_printf(&sum, "\nFinal-epoch training error (the mean over the last epoch's batches, "
                            "augmented as in training):\n\n");
        rn_exp_printf(&sum, "- plain: %d layers %.2f%% against %d layers %.2f%%: the deeper plain net "
                            "trains %s. **%s**\n",
                      depths[hi], p_hi, depths[lo], p_lo, plain_holds ? "worse" : "no worse",
                      plain_holds ? "Degradation shows." : "Degradation does not show in this run.");
        rn_exp_printf(&sum, "- residual: %d layers %.2f%% against %d layers %.2f%%: the deeper residual "
                            "net trains %s. **%s**\n",
                      depths[hi], r_hi, depths[lo], r_lo, res_holds ? "as well or better" : "worse",
                      res_holds ? "Holds." : "Does not hold in this run.");
        rn_exp_printf(&sum, "\nThe claim %s in this run.\n\nFiles: results.csv (every epoch of every run), "
                            "degradation.png / .svg, runs/<net>/ (the training runs).\n",
                      plain_holds && res_holds ? "**held**" : "**did not fully hold**");
        st = rn_exp_file_close(&sum);
        rn_exp_note(x, "plain %d vs %d: %.2f%% vs %.2f%% training error; residual %.2f%% vs %.2f%%",
                    depths[hi], depths[lo], p_hi, p_lo, r_hi, r_lo);
    }
    for (int i = 0; i < count; i++) free(res[i].rows);
    return st;
}

const rn_experiment rn_exp_degradation = {
    .name = "degradation",
    .title = "The degradation problem",
    .claim = "a deeper plain net has a higher training error than a shallower one, while a deeper "
             "residual net has a lower one",
    .source = "He et al. 2015, Sec. 4.2, Fig. 6",
    .opts = opts,
    .run = run,
};
