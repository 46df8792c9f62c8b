/* highway: a highway block lets through T(x) of its transform and carries 1 - T(x) of its input,
 * y = T H(x) + (1 - T) x with T = sigmoid(W_T x + b_T), a learned, per-example, per-unit gate
 * (Srivastava et al. 2015, "Training Very Deep Networks"). Trained beside a residual net of the
 * same depth and budget; afterwards the gates are read over the test images: how open they are
 * on average, how much they vary from image to image, and where their biases went. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "experiments/experiment.h"
#include "train/loader.h"

#define MAX_BLOCKS 256
#define N_BINS 100 /* histogram of T over [0, 1]: percentiles without storing every value */

static const rn_xopt opts[] = {
    {"depth", RN_XOPT_INT, "20", "8", "depth of the highway and the residual net (6n+2)"},
    {"stem-stride", RN_XOPT_INT, "2", "2", "1: the CIFAR nets as published; 2: a stride-2 stem "
                                           "(maps half the size, 4x cheaper; for 28x28 images)"},
    {"epochs", RN_XOPT_INT, "10", "1", "epochs of both runs (lr 0.1, divided by 10 at 50% and 75%)"},
    {"gate-bias", RN_XOPT_FLOAT, "-2", "-2", "initial bias of every transform gate (Srivastava et "
                                             "al.: -1, -2, -3 for depths of about 10, 20, 30)"},
    {"batch", RN_XOPT_INT, "128", "100", "images per step (and per measured batch)"},
    {"eval-images", RN_XOPT_INT, "10000", "1000", "test images the gates are read on (the first N)"},
    {NULL, 0, NULL, NULL, NULL},
};

enum { HIGHWAY, RESIDUAL, N_NETS };
enum { TRAINED, INIT, N_WHEN };
static const char *const when_names[N_WHEN] = {"trained", "init"};

typedef struct {
    int n;
    char name[MAX_BLOCKS][32];
    int stage[MAX_BLOCKS];
    size_t units[MAX_BLOCKS]; /* c * h * w of the block's output: one gate each */
} structure;

/* Running sums over images for one block: all in a fixed order, so any thread count gives the
 * same bits. */
typedef struct {
    int64_t hist[N_BINS];
    double sum;
    double *usum, *usq; /* per unit, over images */
    float tmin, tmax;
    long images;
} gate_acc;

typedef struct {
    double mean, p10, p50, p90, tmin, tmax;
    double open;        /* share of values T >= 0.5 */
    double selectivity; /* mean over units of the standard deviation of T across images */
    double bias_mean, bias_min, bias_max;
    int64_t count;
} gate_row;

typedef struct {
    char name[32];
    rn_exp_epoch *rows;
    int n;
} net_result;

static int read_structure(const rn_net *net, structure *s)
{
    s->n = rn_net_num_blocks(net);
    if (s->n > MAX_BLOCKS) return rn_fail(RN_ERR_ARG, "%d blocks: at most %d", s->n, MAX_BLOCKS);
    int st = RN_OK;
    for (int i = 0; i < s->n && !st; i++) {
        rn_unit_info u;
        if ((st = rn_net_unit(net, i + 1, &u))) break;
        snprintf(s->name[i], sizeof s->name[i], "%s", u.name);
        s->stage[i] = u.stage;
        s->units[i] = (size_t)u.out_c * u.out_h * u.out_w;
    }
    return st;
}

/* The value below which a share q of the histogram's mass lies, linear within a bin. */
static double percentile(const int64_t *hist, int64_t total, double q)
{
    const double target = q * (double)total;
    double cum = 0.0;
    for (int b = 0; b < N_BINS; b++) {
        if (hist[b] > 0 && cum + (double)hist[b] >= target)
            return (b + (target - cum) / (double)hist[b]) / N_BINS;
        cum += (double)hist[b];
    }
    return 1.0;
}

/* The gate biases of block `name` (its "<name>.gate.bias"). */
static int bias_stats(const rn_net *net, const char *name, gate_row *g)
{
    char full[64];
    snprintf(full, sizeof full, "%s.gate.bias", name);
    rn_tensor_info t;
    int st = rn_net_find_tensor(net, full, &t);
    if (st) return st;
    double sum = 0.0;
    g->bias_min = INFINITY, g->bias_max = -INFINITY;
    for (size_t i = 0; i < t.numel; i++) {
        sum += t.data[i];
        g->bias_min = fmin(g->bias_min, t.data[i]);
        g->bias_max = fmax(g->bias_max, t.data[i]);
    }
    g->bias_mean = t.numel ? sum / (double)t.numel : NAN;
    return RN_OK;
}

static void summarise(const gate_acc *a, size_t units, gate_row *g)
{
    int64_t total = 0, open = 0;
    for (int b = 0; b < N_BINS; b++) {
        total += a->hist[b];
        if (b >= N_BINS / 2) open += a->hist[b];
    }
    g->count = total;
    g->mean = total ? a->sum / (double)total : NAN;
    g->p10 = percentile(a->hist, total, 0.10);
    g->p50 = percentile(a->hist, total, 0.50);
    g->p90 = percentile(a->hist, total, 0.90);
    g->tmin = a->tmin, g->tmax = a->tmax;
    g->open = total ? (double)open / (double)total : NAN;
    double sel = 0.0;
    const double n = (double)a->images;
    for (size_t u = 0; u < units; u++) {
        double var = n > 1 ? (a->usq[u] - a->usum[u] * a->usum[u] / n) / (n - 1) : 0.0;
        sel += sqrt(var > 0 ? var : 0.0);
    }
    g->selectivity = units ? sel / (double)units : NAN;
}

/* Runs the images through net and accumulates every block's gates: in evaluation mode, or with
 * batch statistics (train != 0) for the net at initialisation, whose running statistics (0, 1)
 * would normalise nothing. */
static int measure(rn_exp *x, rn_net *net, const structure *s, const rn_dataset *data, int batch,
                   int train, gate_row *out)
{
    gate_acc *acc = calloc((size_t)s->n, sizeof *acc);
    if (!acc) return rn_fail(RN_ERR_NOMEM, "out of memory");
    int st = RN_OK;
    for (int i = 0; i < s->n && !st; i++) {
        acc[i].usum = calloc(s->units[i], sizeof(double));
        acc[i].usq = calloc(s->units[i], sizeof(double));
        acc[i].tmin = INFINITY, acc[i].tmax = -INFINITY;
        if (!acc[i].usum || !acc[i].usq) st = rn_fail(RN_ERR_NOMEM, "out of memory");
    }
    rn_loader *loader = NULL;
    if (!st) st = rn_exp_eval_loader(net, data, batch, &loader);
    const double cost = rn_exp_net_cost(net);
    while (!st) {
        rn_batch b;
        if ((st = rn_loader_next(loader, &b)) || b.n == 0) break;
        if ((st = rn_net_forward(net, b.x, b.n, train, NULL))) break;
        for (int i = 0; i < s->n && !st; i++) {
            const float *t;
            size_t count;
            if ((st = rn_net_block_gates(net, i, &t, &count))) break;
            if (count != s->units[i] * (size_t)b.n) {
                st = rn_fail(RN_ERR_MISMATCH, "%s: %zu gate values for %d images", s->name[i], count, b.n);
                break;
            }
            gate_acc *a = &acc[i];
            for (int img = 0; img < b.n; img++) {
                const float *ti = t + (size_t)img * s->units[i];
                for (size_t u = 0; u < s->units[i]; u++) {
                    const float v = ti[u];
                    int bin = (int)(v * N_BINS);
                    a->hist[bin < 0 ? 0 : bin >= N_BINS ? N_BINS - 1 : bin]++;
                    a->sum += v;
                    a->usum[u] += v;
                    a->usq[u] += (double)v * v;
                    a->tmin = fminf(a->tmin, v), a->tmax = fmaxf(a->tmax, v);
                }
            }
            a->images += b.n;
        }
        if (!st && rn_exp_work_done(x, cost * b.n)) break;
    }
    rn_loader_free(loader);
    for (int i = 0; i < s->n && !st; i++) {
        summarise(&acc[i], s->units[i], &out[i]);
        st = bias_stats(net, s->name[i], &out[i]);
    }
    for (int i = 0; i < s->n; i++) free(acc[i].usum), free(acc[i].usq);
    free(acc);
    return st;
}


/* ---- outputs ------------------------------------------------------------------------------------ */
static int draw(rn_exp *x, const net_result *res, const structure *s, gate_row *const g[N_WHEN],
                int depth, double gate_bias)
{
    double *buf = calloc((size_t)N_NETS * 3 * 4096, sizeof(double));
    if (!buf) return rn_fail(RN_ERR_NOMEM, "out of memory");
    rn_plot_series train[N_NETS], test[N_NETS];
    char labels[N_NETS][48];
    for (int m = 0; m < N_NETS; m++) {
        int n = res[m].n < 4096 ? res[m].n : 4096;
        double *ep = buf + (size_t)m * 3 * 4096, *tr = ep + 4096, *te = tr + 4096;
        for (int k = 0; k < n; k++) {
            ep[k] = res[m].rows[k].epoch;
            tr[k] = 100.0 * res[m].rows[k].train_error;
            te[k] = 100.0 * res[m].rows[k].eval_error;
        }
        snprintf(labels[m], sizeof labels[m], "%s-%d", m == HIGHWAY ? "highway" : "residual", depth);
        train[m] = (rn_plot_series){.label = labels[m], .x = ep, .y = tr, .n = n,
                                    .style = RN_PLOT_LINE_POINTS, .color = m, .dashed = m == RESIDUAL};
        test[m] = train[m];
        test[m].y = te;
    }
    rn_plot_panel pe[2] = {
        {.title = "training error (mean over the epoch)", .xlabel = "epoch",
         .ylabel = "training error (%)", .xmin = NAN, .xmax = NAN, .ymin = NAN, .ymax = NAN,
         .series = train, .n_series = N_NETS, .legend_pos = 0},
        {.title = "test error (after each epoch)", .xlabel = "epoch", .ylabel = "test error (%)",
         .xmin = NAN, .xmax = NAN, .ymin = NAN, .ymax = NAN, .series = test, .n_series = N_NETS,
         .legend_pos = 0},
    };
    char title[160];
    snprintf(title, sizeof title, "Highway against residual net, %d layers, same budget", depth);
    rn_plot_figure fig = {.title = title, .width = 1400, .height = 600};
    int st = rn_exp_plot(x, "highway", &fig, pe, 2);
    free(buf);
    if (st) return st;

    /* gates per block: trained and initial side by side (the initial ones shifted right) */
    double bx[N_WHEN][MAX_BLOCKS], mean[N_WHEN][MAX_BLOCKS], lo[N_WHEN][MAX_BLOCKS],
        hi[N_WHEN][MAX_BLOCKS], sel[N_WHEN][MAX_BLOCKS], bias[N_WHEN][MAX_BLOCKS],
        bmin[N_WHEN][MAX_BLOCKS], bmax[N_WHEN][MAX_BLOCKS];
    double vl[8];
    int nv = 0;
    for (int w = 0; w < N_WHEN; w++)
        for (int i = 0; i < s->n; i++) {
            bx[w][i] = i + 1 + 0.2 * w;
            mean[w][i] = g[w][i].mean, lo[w][i] = g[w][i].p10, hi[w][i] = g[w][i].p90;
            sel[w][i] = g[w][i].selectivity;
            bias[w][i] = g[w][i].bias_mean, bmin[w][i] = g[w][i].bias_min, bmax[w][i] = g[w][i].bias_max;
        }
    for (int i = 1; i < s->n && nv < 8; i++)
        if (s->stage[i] != s->stage[i - 1]) vl[nv++] = i + 0.6; /* before each downsampling block */
    rn_plot_series gs[4] = {
        {.label = "trained: mean T (bars: 10th-90th percentile)", .x = bx[0], .y = mean[0], .n = s->n,
         .style = RN_PLOT_LINE_POINTS, .color = 0, .lo = lo[0], .hi = hi[0]},
        {.label = "initial: mean T (same)", .x = bx[1], .y = mean[1], .n = s->n,
         .style = RN_PLOT_LINE_POINTS, .color = 7, .dashed = 1, .lo = lo[1], .hi = hi[1]},
        {.label = "trained: std of T across images", .x = bx[0], .y = sel[0], .n = s->n,
         .style = RN_PLOT_LINE_POINTS, .color = 1},
        {.label = "initial: std of T across images", .x = bx[1], .y = sel[1], .n = s->n,
         .style = RN_PLOT_LINE_POINTS, .color = 1, .dashed = 1},
    };
    rn_plot_series bs[2] = {
        {.label = "trained (bars: min-max over channels)", .x = bx[0], .y = bias[0], .n = s->n,
         .style = RN_PLOT_LINE_POINTS, .color = 0, .lo = bmin[0], .hi = bmax[0]},
        {.label = "initial", .x = bx[1], .y = bias[1], .n = s->n, .style = RN_PLOT_LINE_POINTS,
         .color = 7, .dashed = 1},
    };
    double blo = gate_bias, bhi = gate_bias;
    for (int i = 0; i < s->n; i++) blo = fmin(blo, bmin[0][i]), bhi = fmax(bhi, bmax[0][i]);
    rn_plot_panel pg[2] = {
        {.title = "transform gate T per block, over the test images", .xlabel = "block (dotted: stage boundaries)",
         .ylabel = "gate value T (0: carry the input, 1: transform)", .xmin = 0.5, .xmax = s->n + 0.7,
         .ymin = 0.0, .ymax = 1.45, .series = gs, .n_series = 4, .legend_pos = 0, .vlines = vl,
         .n_vlines = nv},
        {.title = "gate bias per block (mean over channels)", .xlabel = "block (dotted: stage boundaries)",
         .ylabel = "bias b_T", .xmin = 0.5, .xmax = s->n + 0.7, .ymin = blo - 0.1 * (bhi - blo + 1),
         .ymax = bhi + 0.6 * (bhi - blo + 1), .series = bs, .n_series = 2, .legend_pos = 0,
         .vlines = vl, .n_vlines = nv},
    };
    snprintf(title, sizeof title, "Highway-%d transform gates: trained against initial (bias %g)", depth,
             gate_bias);
    return rn_exp_plot(x, "highway_gates", &fig, pg, 2);
}

static int write_csv(rn_exp *x, const net_result *res, const structure *s, gate_row *const g[N_WHEN],
                     int images)
{
    rn_exp_file f;
    int st = rn_exp_file_open(x, &f, "results.csv");
    if (st) return st;
    rn_exp_printf(&f, "section,net,when,epoch,train_loss,train_error,test_loss,test_error,time_s,block,"
                      "name,stage,units,images,count,gate_mean,gate_p10,gate_p50,gate_p90,gate_min,"
                      "gate_max,open_share,selectivity,bias_mean,bias_min,bias_max\n");
    for (int m = 0; m < N_NETS; m++)
        for (int k = 0; k < res[m].n; k++) {
            const rn_exp_epoch *e = &res[m].rows[k];
            rn_exp_printf(&f, "epoch,%s,trained,%d,%.6f,%.6f,%.6f,%.6f,%.2f,,,,,,,,,,,,,,,,,\n",
                          res[m].name, e->epoch, e->train_loss, e->train_error, e->eval_loss,
                          e->eval_error, e->time_s);
        }
    for (int w = 0; w < N_WHEN; w++)
        for (int i = 0; i < s->n; i++) {
            const gate_row *r = &g[w][i];
            rn_exp_printf(&f, "gates,%s,%s,,,,,,,%d,%s,%d,%zu,%d,%lld,%.9f,%.6f,%.6f,%.6f,%.9g,%.9g,%.9f,"
                              "%.9f,%.9g,%.9g,%.9g\n",
                          res[HIGHWAY].name, when_names[w], i + 1, s->name[i], s->stage[i], s->units[i],
                          images, (long long)r->count, r->mean, r->p10, r->p50, r->p90, r->tmin, r->tmax,
                          r->open, r->selectivity, r->bias_mean, r->bias_min, r->bias_max);
        }
    return rn_exp_file_close(&f);
}

static int count_blocks(const structure *s, gate_row *const g[N_WHEN], int (*test)(const gate_row *, const gate_row *))
{
    int n = 0;
    for (int i = 0; i < s->n; i++) n += test(&g[TRAINED][i], &g[INIT][i]);
    return n;
}
static int bias_fell(const gate_row *t, const gate_row *i) { return t->bias_mean < i->bias_mean; }
static int more_selective(const gate_row *t, const gate_row *i) { return t->selectivity > i->selectivity; }
static int active(const gate_row *t, const gate_row *i) { (void)i; return t->mean >= 0.1; }

static int write_summary(rn_exp *x, const net_result *res, const structure *s,
                         gate_row *const g[N_WHEN], int images, double gate_bias)
{
    rn_exp_file f;
    int st = rn_exp_summary_open(x, &f);
    if (st) return st;
    rn_exp_printf(&f, "A highway net and a residual net of the same depth, trained with the same "
                      "seed, data order, epochs and recipe (SGD lr 0.1 step schedule, momentum 0.9, "
                      "weight decay 1e-4, batch %ld). Each highway block computes y = T H(x) + (1 - T) "
                      "x with T = sigmoid(W_T x + b_T), a 1x1 convolution of its input with one gate "
                      "per output unit, b_T starting at %g.\n\n",
                  rn_exp_int(x, "batch"), gate_bias);
    rn_exp_printf(&f, "| net | training error (%%) | test error (%%) | training time (s) |\n"
                      "|---|---|---|---|\n");
    for (int m = 0; m < N_NETS; m++) {
        double t = 0;
        for (int k = 0; k < res[m].n; k++) t += res[m].rows[k].time_s;
        rn_exp_printf(&f, "| %s | %.2f | %.2f | %.1f |\n", res[m].name,
                      100.0 * res[m].rows[res[m].n - 1].train_error,
                      100.0 * res[m].rows[res[m].n - 1].eval_error, t);
    }
    rn_exp_printf(&f, "\nTransform gates over the first %d test images (the trained net in evaluation "
                      "mode, the initial one with each batch's statistics), per block: "
                      "the mean of T, its 10th / 50th / 90th percentiles over all images and units, "
                      "the share of values T >= 0.5, the selectivity (the mean over units of the "
                      "standard deviation of T across images: how much a gate's opening depends on "
                      "the example), and the mean gate bias; the initial net's values in parentheses.\n\n",
                  images);
    rn_exp_printf(&f, "| block | mean T | p10 / p50 / p90 | T >= 0.5 | selectivity | bias |\n"
                      "|---|---|---|---|---|---|\n");
    for (int i = 0; i < s->n; i++) {
        const gate_row *t = &g[TRAINED][i], *o = &g[INIT][i];
        rn_exp_printf(&f, "| %s | %.3f (%.3f) | %.3f / %.3f / %.3f | %.1f%% (%.1f%%) | %.3f (%.3f) | "
                          "%.3f (%.3f) |\n",
                      s->name[i], t->mean, o->mean, t->p10, t->p50, t->p90, 100.0 * t->open,
                      100.0 * o->open, t->selectivity, o->selectivity, t->bias_mean, o->bias_mean);
    }
    const int fell = count_blocks(s, g, bias_fell), sel = count_blocks(s, g, more_selective);
    const int act = count_blocks(s, g, active);
    double tmin = INFINITY, tmax = -INFINITY;
    for (int i = 0; i < s->n; i++) tmin = fmin(tmin, g[TRAINED][i].mean), tmax = fmax(tmax, g[TRAINED][i].mean);
    const int h_fell = 2 * fell > s->n, h_sel = 2 * sel > s->n && 2 * act > s->n;
    rn_exp_printf(&f, "\n- Gate biases: in %d of %d blocks the mean bias ended below its initial %g "
                      "(Srivastava et al. saw the biases decrease further during training). %s\n",
                  fell, s->n, gate_bias, h_fell ? "**Shows here.**" : "**Does not show here.**");
    rn_exp_printf(&f, "- Active on average, selective per example: the trained gates' mean T lies "
                      "between %.3f and %.3f over the blocks (%d of %d blocks at 0.1 or more; "
                      "sigmoid(%g) = %.3f at the start), and in %d of %d blocks a gate's value varies "
                      "more from image to image than at initialisation. %s\n",
                  tmin, tmax, act, s->n, gate_bias, 1.0 / (1.0 + exp(-gate_bias)), sel, s->n,
                  h_sel ? "**Shows here.**" : "**Does not fully show here.**");
    const double eh = 100.0 * res[HIGHWAY].rows[res[HIGHWAY].n - 1].eval_error;
    const double er = 100.0 * res[RESIDUAL].rows[res[RESIDUAL].n - 1].eval_error;
    rn_exp_printf(&f, "- Highway against residual at the same depth and budget: %.2f%% against "
                      "%.2f%% test error (%+.2f points). A residual block adds H(x) and x at full weight: "
                      "it is a highway block with both its transform and its carry gate fixed open "
                      "(which the coupled T and 1 - T cannot express), whose identity path never "
                      "closes.\n\n",
                  eh, er, eh - er);
    rn_exp_printf(&f, "**The LSTM analogy.** A highway block is an LSTM's cell update laid along depth "
                      "instead of time: T plays the input gate (how much of the new candidate H(x) is "
                      "let through) and 1 - T the forget gate (how much of the old state x is carried "
                      "on). A negative initial bias keeps T small, so at the start every block mostly "
                      "carries its input, as an LSTM with a positive forget-gate bias starts by "
                      "remembering: information and gradients cross many blocks unchanged until the "
                      "gates learn, per example and per unit, where to transform.\n\n");
    rn_exp_printf(&f, "The claim %s in this run.\n\nFiles: results.csv (section epoch: every epoch of "
                      "both runs; section gates: per block, for the trained highway net and the same "
                      "net at initialisation, the statistics above with min and max of T and of the "
                      "biases), highway.png / .svg (errors per epoch), highway_gates.png / .svg (gates "
                      "and biases per block), runs/<net>/ (the training runs).\n",
                  h_fell && h_sel ? "**held**" : h_fell || h_sel ? "**held in part**" : "**did not hold**");
    rn_exp_note(x, "highway %.2f%% vs residual %.2f%% test error; biases fell in %d of %d blocks, gates "
                   "more selective in %d", eh, er, fell, s->n, sel);
    return rn_exp_file_close(&f);
}

static int run(rn_exp *x)
{
    const int depth = (int)rn_exp_int(x, "depth"), stem = (int)rn_exp_int(x, "stem-stride");
    const int epochs = (int)rn_exp_int(x, "epochs"), batch = (int)rn_exp_int(x, "batch");
    const double gate_bias = rn_exp_float(x, "gate-bias");
    const long want = rn_exp_int(x, "eval-images");
    if (depth < 8 || (depth - 2) % 6)
        return rn_fail(RN_ERR_ARG, "--depth: %d is not of the form 6n+2 (8, 14, 20, 32, 44, 56, 110 ...)", depth);
    if (stem != 1 && stem != 2) return rn_fail(RN_ERR_ARG, "--stem-stride must be 1 or 2");
    if (epochs < 1 || batch < 1 || want < 1)
        return rn_fail(RN_ERR_ARG, "--epochs, --batch and --eval-images must be at least 1");
    if (!isfinite(gate_bias) || fabs(gate_bias) > 50) return rn_fail(RN_ERR_ARG, "--gate-bias must be in [-50, 50]");

    net_result res[N_NETS];
    memset(res, 0, sizeof res);
    structure *s = calloc(1, sizeof *s);
    gate_row *g[N_WHEN] = {calloc(MAX_BLOCKS, sizeof(gate_row)), calloc(MAX_BLOCKS, sizeof(gate_row))};
    rn_train_config cfg[N_NETS];
    int st = s && g[0] && g[1] ? RN_OK : rn_fail(RN_ERR_NOMEM, "out of memory");
    const rn_dataset *train = NULL, *eval = NULL;
    if (!st) st = rn_exp_data(x, &train, &eval);
    for (int m = 0; m < N_NETS && !st; m++) {
        snprintf(res[m].name, sizeof res[m].name, "%s%d", m == HIGHWAY ? "highway" : "resnet", depth);
        rn_exp_train_config(x, &cfg[m]);
        snprintf(cfg[m].arch, sizeof cfg[m].arch, "%.31s%s", res[m].name, stem == 2 ? "-s2" : "");
        cfg[m].epochs = epochs;
        cfg[m].batch = batch;
        cfg[m].gate_bias = (float)gate_bias; /* the residual net has no gates: no effect there */
        st = rn_exp_add_run(x, res[m].name, &cfg[m]);
    }
    rn_net *init = NULL, *trained = NULL;
    if (!st) st = rn_exp_create_initial(&cfg[HIGHWAY], train, &init);
    if (!st) st = read_structure(init, s);
    rn_dataset *sub = NULL;
    const int images = st ? 0 : want < eval->n ? (int)want : eval->n;
    if (!st && images < eval->n) st = rn_dataset_subset(&sub, eval, 0, images);
    const rn_dataset *data = sub ? sub : eval;
    if (!st) rn_exp_plan_work(x, 2.0 * rn_exp_net_cost(init) * images);
    if (!st) st = rn_exp_train_runs(x);
    if (!st && !x->interrupted) {
        rn_exp_set_phase(x, "reading the gates of the trained highway net");
        st = rn_exp_open_run(x, res[HIGHWAY].name, &trained);
        if (!st) st = measure(x, trained, s, data, batch, 0, g[TRAINED]);
    }
    if (!st && !x->interrupted) {
        rn_exp_set_phase(x, "reading the gates of the initial highway net");
        st = measure(x, init, s, data, batch, 1, g[INIT]);
    }
    for (int m = 0; m < N_NETS && !st && !x->interrupted; m++) {
        st = rn_exp_run_metrics(x, res[m].name, &res[m].rows, &res[m].n);
        if (!st && res[m].n < 1) st = rn_fail(RN_ERR_FORMAT, "run %s has no epochs", res[m].name);
    }
    if (!st && !x->interrupted) st = write_csv(x, res, s, g, images);
    if (!st && !x->interrupted) st = draw(x, res, s, g, depth, gate_bias);
    if (!st && !x->interrupted) st = write_summary(x, res, s, g, images, gate_bias);
    rn_net_free(init);
    rn_net_free(trained);
    rn_dataset_free(sub);
    for (int m = 0; m < N_NETS; m++) free(res[m].rows);
    free(g[0]);
    free(g[1]);
    free(s);
    return st;
}

const rn_experiment rn_exp_highway = {
    .name = "highway",
    .title = "Highway networks: learned gates on the shortcut",
    .claim = "in a highway net, whose blocks let through T(x) of their transform and carry 1 - T(x) "
             "of their input, the learned transform gates are active on average but selective per "
             "example, and their biases fall below their negative initial value during training",
    .source = "Srivastava et al. 2015, Training Very Deep Networks, Sec. 4.1, Fig. 2",
    .opts = opts,
    .run = run,
};
