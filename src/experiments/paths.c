/* paths: a residual net of n blocks as an ensemble of 2^n paths (Veit et al. 2016, Sec. 5,
 * Fig. 6). A path of length k goes through the residual branch of k blocks and the shortcut of
 * the other n - k. For each k, sampled paths are followed in the backward pass of a trained net
 * and the gradient they bring to the first block's input is measured; C(n, k) paths have length
 * k, so the gradient that each length carries in all is mean magnitude(k) x C(n, k). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/rng.h"
#include "experiments/experiment.h"
/* Only for backward_path_branch_only() below: the public API can send a block's gradient through
 * its shortcut only, or through both ways, but not through its branch only. */

#define MAX_BLOCKS 64

static const rn_xopt opts[] = {
    {"arch", RN_XOPT_TEXT, "resnet56-s2", "resnet14-s2",
     "the residual net to train and take apart (resnet110-s2: 54 blocks as in the paper)"},
    {"epochs", RN_XOPT_INT, "4", "3", "training epochs (lr 0.1, divided by 10 at 50% and 75%)"},
    {"samples", RN_XOPT_INT, "20", "3", "random paths measured per path length"},
    {"batch", RN_XOPT_INT, "64", "16", "test images in the measured backward pass"},
    {NULL, 0, NULL, NULL, NULL},
};

/* The gradient at the first block's input after a backward pass in which block b sends it
 * through way[b]; the forward pass (evaluation mode) is the caller's and stays unchanged. */
static int backward_path(rn_net *net, const rn_grad_way *way, const int *labels, double *norm)
{
    const int nb = rn_net_num_blocks(net);
    int st = RN_OK;
    for (int b = 0; b < nb && !st; b++) st = rn_net_set_block_grad_way(net, b, way[b]);
    rn_net_zero_grad(net);
    if (!st) st = rn_net_backward(net, labels, NULL);
    for (int b = 0; b < nb; b++) rn_net_set_block_grad_way(net, b, RN_GRAD_BOTH);
    double sq = NAN;
    if (!st) st = rn_net_input_grad_sq(net, 0, &sq);
    *norm = sqrt(sq);
    return st;
}

/* C(n, k) exactly (n <= 64 keeps every intermediate below 2^64 for the k <= n/2 side). */
static uint64_t binomial(int n, int k)
{
    if (k < 0 || k > n) return 0;
    if (k > n - k) k = n - k;
    uint64_t c = 1;
    for (int i = 1; i <= k; i++) c = c / i * (uint64_t)(n - k + i) + c % i * (uint64_t)(n - k + i) / i;
    return c;
}

typedef struct {
    int n, samples;
    double *norm;  /* [(n + 1) * samples] */
    char *chosen;  /* [(n + 1) * samples * (n + 1)]: the blocks on each path as '0'/'1' text */
    double mean[MAX_BLOCKS + 1], sd[MAX_BLOCKS + 1], lo[MAX_BLOCKS + 1], hi[MAX_BLOCKS + 1];
    double length_frac[MAX_BLOCKS + 1], grad_frac[MAX_BLOCKS + 1];
    uint64_t count[MAX_BLOCKS + 1];
    double full_before, full_after, all_both;
    double test_error;
} path_stats;

/* The smallest k at which the cumulative distribution reaches q. */
static int quantile(const double *frac, int n, double q)
{
    double c = 0.0;
    for (int k = 0; k <= n; k++) {
        c += frac[k];
        if (c >= q - 1e-12) return k;
    }
    return n;
}

static int measure(rn_exp *x, rn_net *net, path_stats *p, double pass_cost)
{
    const rn_dataset *train, *eval;
    int st = rn_exp_data(x, &train, &eval);
    if (st) return st;
    const int bsz = (int)rn_exp_int(x, "batch"), n = p->n, S = p->samples;
    if (bsz > eval->n) return rn_fail(RN_ERR_ARG, "--batch %d is larger than the test set (%d)", bsz, eval->n);
    float mean[RN_MAX_INPUT_CHANNELS], sd[RN_MAX_INPUT_CHANNELS];
    if (eval->c > RN_MAX_INPUT_CHANNELS)
        return rn_fail(RN_ERR_ARG, "images with more than %d channels", RN_MAX_INPUT_CHANNELS);
    if (!rn_net_get_normalization(net, mean, sd) && (st = rn_dataset_stats(train, mean, sd))) return st;
    const size_t plane = (size_t)eval->h * eval->w;
    float *img = malloc((size_t)bsz * eval->c * plane * sizeof *img);
    int *labels = malloc((size_t)bsz * sizeof *labels);
    if (!img || !labels) st = rn_fail(RN_ERR_NOMEM, "out of memory");
    /* the first test images, normalised as in training */
    for (int i = 0; i < bsz && !st; i++) {
        labels[i] = eval->labels[i];
        for (int c = 0; c < eval->c; c++)
            for (size_t k = 0; k < plane; k++) {
                const size_t at = ((size_t)i * eval->c + c) * plane + k;
                img[at] = (eval->pixels[at] / 255.0f - mean[c]) / sd[c];
            }
    }
    if (!st) st = rn_net_record_input_grads(net, 1);
    if (!st) st = rn_net_forward(net, img, bsz, 0, NULL);
    /* the full backward, untouched: every block sends its gradient both ways */
    if (!st) st = rn_net_backward(net, labels, NULL);
    double sq = NAN;
    if (!st) st = rn_net_input_grad_sq(net, 0, &sq);
    p->full_before = sqrt(sq);
    rn_grad_way way[MAX_BLOCKS];
    int pick[MAX_BLOCKS];
    rn_rng rng;
    rn_rng_seed(&rng, x->set.seed ^ 0x9a7b5ULL);
    rn_exp_set_phase(x, "following sampled paths backward");
    for (int k = 0; k <= n && !st && !x->interrupted; k++) {
        for (int s = 0; s < S && !st; s++) {
            /* k distinct blocks: the first k of a seeded shuffle */
            for (int b = 0; b < n; b++) pick[b] = b;
            for (int i = 0; i < k; i++) {
                int j = i + (int)rn_rng_below(&rng, (uint32_t)(n - i)), t = pick[i];
                pick[i] = pick[j], pick[j] = t;
            }
            for (int b = 0; b < n; b++) way[b] = RN_GRAD_SHORTCUT_ONLY;
            for (int i = 0; i < k; i++) way[pick[i]] = RN_GRAD_BRANCH_ONLY;
            const size_t at = (size_t)k * S + s;
            char *text = p->chosen + at * (n + 1);
            for (int b = 0; b < n; b++) text[b] = way[b] == RN_GRAD_BRANCH_ONLY ? '1' : '0';
            text[n] = 0;
            st = backward_path(net, way, labels, &p->norm[at]);
        }
        if (!st && rn_exp_work_done(x, pass_cost * S)) break;
    }
    if (!st && !x->interrupted) {
        for (int b = 0; b < n; b++) way[b] = RN_GRAD_BOTH;
        st = backward_path(net, way, labels, &p->all_both);
        rn_net_zero_grad(net);
        if (!st) st = rn_net_backward(net, labels, NULL);
        if (!st) st = rn_net_input_grad_sq(net, 0, &sq);
        p->full_after = sqrt(sq);
    }
    free(img);
    free(labels);
    return st;
}

static void summarise(path_stats *p)
{
    const int n = p->n, S = p->samples;
    double total = 0.0;
    for (int k = 0; k <= n; k++) {
        const double *v = p->norm + (size_t)k * S;
        p->mean[k] = rn_exp_mean(v, S);
        p->sd[k] = rn_exp_std(v, S);
        p->lo[k] = p->hi[k] = v[0];
        for (int s = 1; s < S; s++) p->lo[k] = fmin(p->lo[k], v[s]), p->hi[k] = fmax(p->hi[k], v[s]);
        p->count[k] = binomial(n, k);
        p->length_frac[k] = (double)p->count[k] / ldexp(1.0, n);
        p->grad_frac[k] = p->mean[k] * (double)p->count[k];
        total += p->grad_frac[k];
    }
    for (int k = 0; k <= n; k++) p->grad_frac[k] /= total;
}

/* Least-squares slope of log10(mean magnitude) against k. */
static double log_slope(const path_stats *p)
{
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    int m = 0;
    for (int k = 0; k <= p->n; k++) {
        if (!(p->mean[k] > 0)) continue;
        double y = log10(p->mean[k]);
        sx += k, sy += y, sxx += (double)k * k, sxy += k * y;
        m++;
    }
    return m > 1 ? (m * sxy - sx * sy) / (m * sxx - sx * sx) : NAN;
}

static int draw(rn_exp *x, const path_stats *p, const char *arch, int k_lo, int k_hi)
{
    double ks[MAX_BLOCKS + 1];
    for (int k = 0; k <= p->n; k++) ks[k] = k;
    rn_plot_series dist[2] = {
        {.label = "paths of this length: C(n,k)/2#un#d", .x = ks, .y = p->length_frac,
         .n = p->n + 1, .style = RN_PLOT_LINE_POINTS, .color = 0},
        {.label = "the gradient they carry, in all", .x = ks, .y = p->grad_frac,
         .n = p->n + 1, .style = RN_PLOT_LINE_POINTS, .color = 1},
    };
    rn_plot_series mag = {.label = "mean of the sampled paths (bars: min..max)", .x = ks,
                          .y = p->mean, .n = p->n + 1, .style = RN_PLOT_LINE_POINTS, .color = 1,
                          .lo = p->lo, .hi = p->hi};
    const double marks[2] = {k_lo, k_hi};
    char t0[128];
    snprintf(t0, sizeof t0, "(a) paths and gradient by length (dotted: 90%% of it, k = %d..%d)", k_lo, k_hi);
    /* room above the data for the legends */
    double fmax_ = 0.0, glo = INFINITY, ghi = 0.0;
    for (int k = 0; k <= p->n; k++) {
        fmax_ = fmax(fmax_, fmax(p->length_frac[k], p->grad_frac[k]));
        if (p->lo[k] > 0) glo = fmin(glo, p->lo[k]);
        ghi = fmax(ghi, p->hi[k]);
    }
    const double gspan = glo < ghi ? log10(ghi / glo) + 0.2 : 1.0;
    rn_plot_panel panels[2] = {
        {.title = t0, .xlabel = "path length k (residual branches on the path)",
         .ylabel = "fraction of all paths / of the gradient", .xmin = -0.5, .xmax = p->n + 0.5, .ymin = 0, .ymax = 1.4 * fmax_,
         .series = dist, .n_series = 2, .legend_pos = 0, .vlines = marks, .n_vlines = 2},
        {.title = "(b) gradient through one path of length k",
         .xlabel = "path length k (residual branches on the path)",
         .ylabel = "||dL/dx||, first block's input", .logy = 1, .xmin = -0.5,
         .xmax = p->n + 0.5, .ymin = glo / pow(10.0, 0.05 * gspan),
         .ymax = ghi * pow(10.0, 0.3 * gspan), .series = &mag, .n_series = 1, .legend_pos = 0},
    };
    char title[160];
    snprintf(title, sizeof title, "%s (%d blocks) as an ensemble of 2#u%d#d paths: which paths carry the gradient?",
             arch, p->n, p->n);
    rn_plot_figure fig = {.title = title, .width = 1500, .height = 650};
    return rn_exp_plot(x, "paths", &fig, panels, 2);
}

static int write_outputs(rn_exp *x, path_stats *p, const char *arch)
{
    const int n = p->n, S = p->samples;
    summarise(p);
    rn_exp_file csv;
    int st = rn_exp_file_open(x, &csv, "results.csv");
    if (st) return st;
    rn_exp_printf(&csv, "section,name,k,sample,blocks,n_paths,length_fraction,grad_norm,grad_std,"
                        "grad_min,grad_max,grad_fraction\n");
    for (int k = 0; k <= n; k++)
        for (int s = 0; s < S; s++) {
            const size_t at = (size_t)k * S + s;
            rn_exp_printf(&csv, "sample,path,%d,%d,%s,,,%.17g,,,,\n", k, s + 1,
                          p->chosen + at * (n + 1), p->norm[at]);
        }
    for (int k = 0; k <= n; k++)
        rn_exp_printf(&csv, "length,paths of length k,%d,,,%llu,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g\n", k,
                      (unsigned long long)p->count[k], p->length_frac[k], p->mean[k], p->sd[k],
                      p->lo[k], p->hi[k], p->grad_frac[k]);
    /* known answers: the full backward before and after all the paths, and through the path
     * code with every block sending its gradient both ways: the same value, bit for bit */
    rn_exp_printf(&csv, "check,full_backward_before,%d,,,,,%.17g,,,,\n", n, p->full_before);
    rn_exp_printf(&csv, "check,full_backward_after,%d,,,,,%.17g,,,,\n", n, p->full_after);
    rn_exp_printf(&csv, "check,every_block_both_ways,%d,,,,,%.17g,,,,\n", n, p->all_both);
    st = rn_exp_file_close(&csv);

    const int k_lo = quantile(p->grad_frac, n, 0.05), k_hi = quantile(p->grad_frac, n, 0.95);
    const int b_lo = quantile(p->length_frac, n, 0.05), b_hi = quantile(p->length_frac, n, 0.95);
    const int k_med = quantile(p->grad_frac, n, 0.5);
    int k_mode = 0;
    for (int k = 1; k <= n; k++)
        if (p->grad_frac[k] > p->grad_frac[k_mode]) k_mode = k;
    double share = 0.0;
    for (int k = k_lo; k <= k_hi; k++) share += p->length_frac[k];
    const double slope = log_slope(p);
    if (!st) st = draw(x, p, arch, k_lo, k_hi);
    if (st) return st;

    rn_exp_file sum;
    if ((st = rn_exp_summary_open(x, &sum))) return st;
    rn_exp_printf(&sum, "%s (%d blocks) trained for %s epochs: test error %.2f%%. On %s test images "
                        "(evaluation mode), %d random paths per length k were followed backward: "
                        "through the residual branch of k blocks and the shortcut of the other %d.\n\n",
                  arch, n, rn_exp_text(x, "epochs"), 100.0 * p->test_error, rn_exp_text(x, "batch"),
                  S, n);
    rn_exp_printf(&sum, "| | path lengths (k) |\n|---|---|\n");
    rn_exp_printf(&sum, "| all 2^%d paths: middle 90%% (binomial) | %d..%d (mean %.1f) |\n", n, b_lo, b_hi, n / 2.0);
    rn_exp_printf(&sum, "| paths carrying 90%% of the gradient | %d..%d (median %d, peak %d) |\n", k_lo,
                  k_hi, k_med, k_mode);
    rn_exp_printf(&sum, "| share of all paths in that range | %.3g%% |\n", 100.0 * share);
    rn_exp_printf(&sum, "| gradient per path, each extra block on the path | x %.3g (log-linear fit) |\n",
                  pow(10.0, slope));
    rn_exp_printf(&sum, "| mean gradient through one path: k = 0 / k = %d / k = %d | %.3g / %.3g / %.3g |\n\n",
                  n / 2, n, p->mean[0], p->mean[n / 2], p->mean[n]);
    const int falls = slope < 0, shorter = k_med < n / 2.0, strong = k_hi < b_lo;
    rn_exp_printf(&sum, "- The gradient through one path %s with its length (about x %.3g per block; "
                        "Veit et al. find an exponential fall).\n",
                  falls ? "falls" : "**does not fall**", pow(10.0, slope));
    rn_exp_printf(&sum, "- The gradient comes mostly from paths of %d..%d blocks, median %d, against a "
                        "typical path length of %.1f: the effective paths are %s%s. (Veit et al., 54 "
                        "blocks: 5..17 against 27.)\n",
                  k_lo, k_hi, k_med, n / 2.0, shorter ? "shorter than the typical path" : "**not** shorter",
                  strong ? ", and the whole range lies below the binomial's own 90% range" : "");
    rn_exp_printf(&sum, "\nThe claim %s in this run.\n", falls && shorter ? "**held**" : "**did not hold**");
    rn_exp_printf(&sum, "\nKnown answers: the number of paths of length k is C(%d, k) and the length "
                        "distribution sums to 1; the full backward gives %.9g at the first block's "
                        "input before the paths, %.9g after them, and %.9g through the path code with "
                        "every block passing its gradient both ways (must be equal bit for bit).\n",
                  n, p->full_before, p->full_after, p->all_both);
    rn_exp_printf(&sum, "\nFiles: results.csv (section sample: every path followed, its blocks as 0/1 "
                        "from the input side; length: per k the number of paths, their share, the "
                        "gradient's mean, spread and share; check: the known answers), paths.png/.svg, "
                        "runs/%s/ (the training run).\n", arch);
    st = rn_exp_file_close(&sum);
    rn_exp_note(x, "90%% of the gradient from paths of %d..%d blocks of %d; the claim %s", k_lo, k_hi,
                n, falls && shorter ? "held" : "did not hold");
    return st;
}

static int run(rn_exp *x)
{
    const char *arch = rn_exp_text(x, "arch");
    const int samples = (int)rn_exp_int(x, "samples"), batch = (int)rn_exp_int(x, "batch");
    if (strncmp(arch, "resnet", 6))
        return rn_fail(RN_ERR_ARG, "--arch: '%s' is not a residual net (resnetD or resnetD-s2)", arch);
    if (samples < 1) return rn_fail(RN_ERR_ARG, "--samples must be at least 1");
    if (batch < 1) return rn_fail(RN_ERR_ARG, "--batch must be positive");
    rn_train_config cfg;
    rn_exp_train_config(x, &cfg);
    snprintf(cfg.arch, sizeof cfg.arch, "%s", arch);
    cfg.epochs = (int)rn_exp_int(x, "epochs");
    cfg.batch = 128;
    int st = rn_exp_add_run(x, arch, &cfg);
    if (st) return st;

    /* plan the measuring too: each backward pass about two forwards */
    const rn_dataset *train, *eval;
    if ((st = rn_exp_data(x, &train, &eval))) return st;
    rn_net_options o;
    rn_net_options_init(&o);
    o.classes = train->classes, o.in_c = train->c, o.in_h = train->h, o.in_w = train->w;
    rn_net *net;
    if ((st = rn_net_create(&net, arch, &o))) return st;
    const int n = rn_net_num_blocks(net);
    const double pass_cost = 2.0 * rn_exp_net_cost(net) * batch;
    rn_net_free(net);
    if (n > MAX_BLOCKS) return rn_fail(RN_ERR_ARG, "--arch: %s has %d blocks; at most %d", arch, n, MAX_BLOCKS);
    rn_exp_plan_work(x, pass_cost * ((n + 1.0) * samples + 3.0));

    if ((st = rn_exp_train_runs(x)) || x->interrupted) return st;
    if ((st = rn_exp_open_run(x, arch, &net))) return st;
    path_stats p = {.n = n, .samples = samples};
    p.norm = calloc((size_t)(n + 1) * samples, sizeof *p.norm);
    p.chosen = calloc((size_t)(n + 1) * samples * (n + 1), 1);
    if (!p.norm || !p.chosen) st = rn_fail(RN_ERR_NOMEM, "out of memory");
    rn_exp_epoch *rows = NULL;
    int nrows = 0;
    if (!st) st = rn_exp_run_metrics(x, arch, &rows, &nrows);
    p.test_error = nrows ? rows[nrows - 1].eval_error : NAN;
    free(rows);
    if (!st && rn_net_num_blocks(net) != n) st = rn_fail(RN_ERR_MISMATCH, "the trained %s has another block count", arch);
    if (!st) st = measure(x, net, &p, pass_cost);
    if (!st && !x->interrupted) st = write_outputs(x, &p, arch);
    rn_net_free(net);
    free(p.norm);
    free(p.chosen);
    return st;
}

const rn_experiment rn_exp_paths = {
    .name = "paths",
    .title = "Residual networks as ensembles of short paths",
    .claim = "the gradient through a path falls exponentially with the number of residual branches "
             "on it, so almost all of a residual net's gradient comes from paths much shorter than "
             "the typical one",
    .source = "Veit et al. 2016, Sec. 5, Fig. 6",
    .opts = opts,
    .run = run,
};
