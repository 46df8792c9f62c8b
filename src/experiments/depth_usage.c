/* depth-usage: how much each block of a trained residual net changes its input. The ratio
 * ||F(x)|| / ||x|| of the residual branch to the block's input, over the test images, shows which
 * blocks refine the signal a little, which replace much of it, and which the net has learned to
 * (nearly) skip; the same measured at initialisation shows what training changed (He et al.
 * 2015, Sec. 4.2, Fig. 7: residual functions are small, the more so the deeper the net). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "experiments/experiment.h"
#include "train/loader.h"

#define MAX_BLOCKS 512
#define SMALL 0.1 /* ||F|| / ||x|| below this: the block is nearly skipped */

static const rn_xopt opts[] = {
    {"arch", RN_XOPT_TEXT, "resnet56-s2", "resnet14-s2", "the residual net to train and measure"},
    {"epochs", RN_XOPT_INT, "6", "1", "epochs of training (lr 0.1, divided by 10 at 50% and 75%)"},
    {"batch", RN_XOPT_INT, "128", "32", "images per training step (and per measured batch)"},
    {"eval-images", RN_XOPT_INT, "10000", "1000", "test images measured (the first N)"},
    {NULL, 0, NULL, NULL, NULL},
};

enum { TRAINED, INIT, CONTROL, N_NETS };
static const char *const net_names[N_NETS] = {"trained", "init", "control"};

typedef struct {
    double sx, sf;      /* sums over images of ||x||^2 and ||F(x)||^2 */
    double ratio_sum;   /* sum over batches of ||F|| / ||x|| within the batch */
    double cx, cf;      /* elements summed */
    int batches;
} block_sums;

typedef struct {
    int n;
    char name[MAX_BLOCKS][32];
    int stage[MAX_BLOCKS], down[MAX_BLOCKS];
} structure;

static double ratio_of(const block_sums *b) { return b->sx > 0 ? sqrt(b->sf) / sqrt(b->sx) : NAN; }

static int read_structure(const rn_net *net, structure *s)
{
    s->n = rn_net_num_blocks(net);
    if (s->n > MAX_BLOCKS) return rn_fail(RN_ERR_ARG, "%d blocks: at most %d", s->n, MAX_BLOCKS);
    rn_unit_info prev, u;
    int st = rn_net_unit(net, 0, &prev);
    for (int i = 0; i < s->n && !st; i++) {
        if ((st = rn_net_unit(net, i + 1, &u))) break;
        snprintf(s->name[i], sizeof s->name[i], "%s", u.name);
        s->stage[i] = u.stage;
        s->down[i] = u.out_c != prev.out_c || u.out_h != prev.out_h || u.out_w != prev.out_w;
        prev = u;
    }
    return st;
}

/* Runs the images through net batch by batch and sums each block's probe: in evaluation mode,
 * or with batch statistics (train != 0) for a net at initialisation, whose running statistics
 * (mean 0, variance 1) would normalise nothing and let the signal grow block after block as no
 * training step ever sees it. */
static int measure(rn_exp *x, rn_net *net, const rn_dataset *data, int batch, int train, block_sums *out)
{
    const int nb = rn_net_num_blocks(net);
    memset(out, 0, (size_t)nb * sizeof *out);
    rn_loader *loader = NULL;
    int st = rn_exp_eval_loader(net, data, batch, &loader);
    const double cost = rn_exp_net_cost(net);
    while (!st) {
        rn_batch b;
        if ((st = rn_loader_next(loader, &b)) || b.n == 0) break;
        if ((st = rn_net_forward(net, b.x, b.n, train, NULL))) break;
        for (int i = 0; i < nb && !st; i++) {
            rn_block_probe p;
            if ((st = rn_net_probe_block(net, i, &p))) break;
            rn_unit_info u;
            if ((st = rn_net_unit(net, i + 1, &u))) break;
            out[i].sx += p.input_sq;
            out[i].sf += p.branch_sq;
            out[i].cx += (double)p.count;
            out[i].cf += (double)u.out_c * u.out_h * u.out_w * b.n;
            out[i].ratio_sum += p.input_sq > 0 ? sqrt(p.branch_sq / p.input_sq) : 0.0;
            out[i].batches++;
        }
        if (!st && rn_exp_work_done(x, cost * b.n)) break;
    }
    rn_loader_free(loader);
    return st;
}

/* The middle block that keeps its shape: the control's. */
static int control_block(const structure *s)
{
    for (int d = 0; d < s->n; d++) {
        int i = s->n / 2 + (d % 2 ? -(d + 1) / 2 : d / 2);
        if (i >= 0 && i < s->n && !s->down[i]) return i;
    }
    return 0;
}

/* Zeroes gamma and beta of the last batch norm inside block `name`'s branch (bnK with the
 * highest K; not the projection's): its branch then outputs exactly 0. */
static int zero_last_bn(rn_net *net, const char *name)
{
    const size_t len = strlen(name);
    int best = -1;
    for (int i = 0; i < rn_net_num_tensors(net); i++) {
        rn_tensor_info t;
        if (rn_net_tensor(net, i, &t)) continue;
        int k;
        char rest[16];
        if (!strncmp(t.name, name, len) && t.name[len] == '.' &&
            sscanf(t.name + len + 1, "bn%d.%15s", &k, rest) == 2 && k > best)
            best = k;
    }
    if (best < 0) return rn_fail(RN_ERR_ARG, "%s has no batch norm in its branch", name);
    static const char *const parts[2] = {"weight", "bias"};
    for (int j = 0; j < 2; j++) {
        char full[96];
        snprintf(full, sizeof full, "%s.bn%d.%s", name, best, parts[j]);
        rn_tensor_info t;
        int st = rn_net_find_tensor(net, full, &t);
        if (st) return st;
        memset(t.data, 0, t.numel * sizeof *t.data);
    }
    return RN_OK;
}


/* ---- outputs ------------------------------------------------------------------------------------ */
static int write_csv(rn_exp *x, const structure *s, block_sums *const sums[N_NETS], int ctrl, int images)
{
    rn_exp_file f;
    int st = rn_exp_file_open(x, &f, "results.csv");
    if (st) return st;
    rn_exp_printf(&f, "net,block,name,stage,downsampling,zeroed,x_norm,f_norm,ratio,"
                      "batch_ratio_mean,x_rms,f_rms,batches,images\n");
    for (int m = 0; m < N_NETS; m++)
        for (int i = 0; i < s->n; i++) {
            const block_sums *b = &sums[m][i];
            rn_exp_printf(&f, "%s,%d,%s,%d,%d,%d,%.9g,%.9g,%.9g,%.9g,%.9g,%.9g,%d,%d\n", net_names[m],
                          i, s->name[i], s->stage[i], s->down[i], m == CONTROL && i == ctrl,
                          sqrt(b->sx), sqrt(b->sf), ratio_of(b),
                          b->batches ? b->ratio_sum / b->batches : NAN,
                          b->cx > 0 ? sqrt(b->sx / b->cx) : NAN, b->cf > 0 ? sqrt(b->sf / b->cf) : NAN,
                          b->batches, images);
        }
    return rn_exp_file_close(&f);
}

static int draw(rn_exp *x, const structure *s, block_sums *const sums[N_NETS], const char *arch)
{
    const int n = s->n;
    double *buf = malloc((size_t)n * 7 * sizeof *buf);
    if (!buf) return rn_fail(RN_ERR_NOMEM, "out of memory");
    double *bx = buf, *rt = bx + n, *ri = rt + n, *xt = ri + n, *xi = xt + n, *ft = xi + n, *fi = ft + n;
    double vl[MAX_BLOCKS];
    int n_vl = 0;
    for (int i = 0; i < n; i++) {
        const block_sums *t = &sums[TRAINED][i], *z = &sums[INIT][i];
        bx[i] = i;
        rt[i] = ratio_of(t), ri[i] = ratio_of(z);
        xt[i] = sqrt(t->sx / t->cx), xi[i] = sqrt(z->sx / z->cx);
        ft[i] = sqrt(t->sf / t->cf), fi[i] = sqrt(z->sf / z->cf);
        if (s->down[i]) vl[n_vl++] = i;
    }
    /* whole decades, so that the log axes are labelled, with an empty decade at the bottom for
     * the legends */
    double lo_r = INFINITY, hi_r = 1.0, lo_v = INFINITY, hi_v = 0.0;
    for (int i = 0; i < n; i++) {
        const double r[2] = {rt[i], ri[i]}, v[4] = {xt[i], xi[i], ft[i], fi[i]};
        for (int k = 0; k < 2; k++)
            if (r[k] > 0) lo_r = fmin(lo_r, r[k]), hi_r = fmax(hi_r, r[k]);
        for (int k = 0; k < 4; k++)
            if (v[k] > 0) lo_v = fmin(lo_v, v[k]), hi_v = fmax(hi_v, v[k]);
    }
    if (!isfinite(lo_r)) lo_r = SMALL;
    if (!isfinite(lo_v) || !(hi_v > 0)) lo_v = 0.1, hi_v = 1.0;
    const double r0 = pow(10, floor(log10(fmin(lo_r, SMALL))) - 1), r1 = pow(10, ceil(log10(hi_r * 1.01)));
    const double v0 = pow(10, floor(log10(lo_v)) - 1), v1 = pow(10, ceil(log10(hi_v * 1.01)));
    double guide[4] = {-0.5, n - 0.5, SMALL, SMALL};
    rn_plot_series ratio[3] = {
        {.label = "trained", .x = bx, .y = rt, .n = n, .style = RN_PLOT_LINE_POINTS, .color = 1},
        {.label = "at initialisation", .x = bx, .y = ri, .n = n, .style = RN_PLOT_LINE_POINTS,
         .color = 0, .dashed = 1},
        {.label = "0.1: nearly skipped below", .x = guide, .y = guide + 2, .n = 2,
         .style = RN_PLOT_LINE, .color = 7, .dashed = 1},
    };
    rn_plot_series rms[4] = {
        {.label = "x (block input), trained", .x = bx, .y = xt, .n = n, .style = RN_PLOT_LINE_POINTS, .color = 1},
        {.label = "x, at initialisation", .x = bx, .y = xi, .n = n, .style = RN_PLOT_LINE_POINTS,
         .color = 0, .dashed = 1},
        {.label = "F(x) (branch), trained", .x = bx, .y = ft, .n = n, .style = RN_PLOT_LINE_POINTS, .color = 3},
        {.label = "F(x), at initialisation", .x = bx, .y = fi, .n = n, .style = RN_PLOT_LINE_POINTS,
         .color = 2, .dashed = 1},
    };
    rn_plot_panel panels[2] = {
        {.title = "Branch against input (dotted: downsampling)", .xlabel = "block (index from 0)",
         .ylabel = "||F(x)|| / ||x|| (log scale)", .logy = 1, .xmin = -0.5, .xmax = n - 0.5,
         .ymin = r0, .ymax = r1, .series = ratio, .n_series = 3, .legend_pos = 2, .vlines = vl,
         .n_vlines = n_vl},
        {.title = "Root mean square per element", .xlabel = "block (index from 0)",
         .ylabel = "RMS (normalised units, log scale)", .logy = 1, .xmin = -0.5, .xmax = n - 0.5,
         .ymin = v0, .ymax = v1, .series = rms, .n_series = 4, .legend_pos = 2, .vlines = vl,
         .n_vlines = n_vl},
    };
    char title[128];
    snprintf(title, sizeof title, "How much each block of %s changes its input", arch);
    rn_plot_figure fig = {.title = title, .width = 1600, .height = 750};
    int st = rn_exp_plot(x, "depth_usage", &fig, panels, 2);
    free(buf);
    return st;
}

static int cmp_double(const void *a, const void *b)
{
    double p = *(const double *)a, q = *(const double *)b;
    return (p > q) - (p < q);
}

static double median_ratio(const structure *s, const block_sums *b, int skip_down)
{
    double v[MAX_BLOCKS];
    int n = 0;
    for (int i = 0; i < s->n; i++)
        if (!(skip_down && s->down[i])) v[n++] = ratio_of(&b[i]);
    if (!n) return NAN;
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static int write_summary(rn_exp *x, const structure *s, block_sums *const sums[N_NETS], int ctrl,
                         int images, int batch, double test_error)
{
    rn_exp_file f;
    int st = rn_exp_summary_open(x, &f);
    if (st) return st;
    const block_sums *tr = sums[TRAINED], *in = sums[INIT];
    int order[MAX_BLOCKS];
    for (int i = 0; i < s->n; i++) order[i] = i;
    for (int a = 1; a < s->n; a++) /* by trained ratio, smallest first (stable) */
        for (int b = a; b > 0 && ratio_of(&tr[order[b - 1]]) > ratio_of(&tr[order[b]]); b--) {
            int t = order[b];
            order[b] = order[b - 1], order[b - 1] = t;
        }
    rn_exp_printf(&f, "||F(x)|| / ||x|| per block: the residual branch against the block's input, "
                      "each the root of a sum over %d test images; the trained net in evaluation "
                      "mode, the net at initialisation with the statistics of each batch of %d (as "
                      "its first training step sees them: its running statistics, mean 0 and "
                      "variance 1, would normalise nothing). The trained net's test error is "
                      "%.2f%%.\n\nThe blocks the trained net uses least:\n\n"
                      "| block | trained | at initialisation |\n|---|---|---|\n",
                  images, batch, 100 * test_error);
    const int shown = s->n < 5 ? s->n : 5;
    for (int j = 0; j < shown; j++) {
        int i = order[j];
        rn_exp_printf(&f, "| %s%s | %.4f | %.4f |\n", s->name[i], s->down[i] ? " (downsampling)" : "",
                      ratio_of(&tr[i]), ratio_of(&in[i]));
    }
    int small_t = 0, small_i = 0, fell = 0;
    for (int i = 0; i < s->n; i++) {
        small_t += ratio_of(&tr[i]) < SMALL;
        small_i += ratio_of(&in[i]) < SMALL;
        fell += ratio_of(&tr[i]) < ratio_of(&in[i]);
    }
    const double med_t = median_ratio(s, tr, 0), med_i = median_ratio(s, in, 0);
    const int big = order[s->n - 1];
    rn_exp_printf(&f, "\n- median ratio over the %d blocks: **%.4f trained**, %.4f at initialisation "
                      "(%.2fx); the largest: %s, %.4f.\n",
                  s->n, med_t, med_i, med_i > 0 ? med_t / med_i : NAN, s->name[big], ratio_of(&tr[big]));
    rn_exp_printf(&f, "- blocks below %.2f (nearly skipped): %d of %d trained, %d at initialisation; "
                      "training lowered the ratio of %d blocks and raised it in %d.\n",
                  SMALL, small_t, s->n, small_i, fell, s->n - fell);
    rn_exp_printf(&f, "- downsampling blocks (their branch carries the new channels):");
    for (int i = 0; i < s->n; i++)
        if (s->down[i]) rn_exp_printf(&f, " %s %.4f;", s->name[i], ratio_of(&tr[i]));
    rn_exp_printf(&f, "\n");

    /* known answer: the control's zeroed branch is exactly 0, and the blocks before it see
     * exactly the trained net's inputs */
    const block_sums *c = sums[CONTROL];
    int same_before = 1;
    for (int i = 0; i < ctrl; i++) same_before &= c[i].sx == tr[i].sx && c[i].sf == tr[i].sf;
    const int zero = c[ctrl].sf == 0.0;
    rn_exp_printf(&f, "- control (known answer): with the last batch norm of %s's branch zeroed "
                      "(gamma = beta = 0, on a reloaded copy) its ratio is %s, and the %d blocks "
                      "before it measure %s the trained net's.\n",
                  s->name[ctrl], zero ? "exactly 0" : "**NOT 0**", ctrl,
                  same_before ? "exactly as" : "**differently from**");

    const int refine = med_t < 1.0, skip = ratio_of(&tr[order[0]]) < SMALL;
    rn_exp_printf(&f, "\nIn this run the trained net's branches are %s its inputs (median %.3f), "
                      "and %s. The claim %s in this run%s.\n\nFiles: results.csv (per net: trained, "
                      "init, control; per block: norms, ratios, RMS values), depth_usage.png / .svg, "
                      "runs/ (the training run).\n",
                  refine ? "small next to" : "not small next to", med_t,
                  skip ? "some blocks are nearly skipped" : "no block is nearly skipped (none below "
                                                            "0.1)",
                  refine && skip ? "**held**" : refine ? "**held only in part**" : "**did not hold**",
                  x->set.quick ? " (quick mode: a net trained for moments on a subset; the full mode "
                                 "tests the claim)" : "");
    rn_exp_note(x, "median ||F||/||x|| %.4f trained, %.4f at initialisation; smallest %s %.4f", med_t,
                med_i, s->name[order[0]], ratio_of(&tr[order[0]]));
    return rn_exp_file_close(&f);
}

static int run(rn_exp *x)
{
    const int epochs = (int)rn_exp_int(x, "epochs"), batch = (int)rn_exp_int(x, "batch");
    const long want = rn_exp_int(x, "eval-images");
    if (epochs < 1 || batch < 1 || want < 1)
        return rn_fail(RN_ERR_ARG, "--epochs, --batch and --eval-images must be at least 1");
    const rn_dataset *train, *eval;
    int st = rn_exp_data(x, &train, &eval);
    if (st) return st;
    rn_train_config cfg;
    rn_exp_train_config(x, &cfg);
    snprintf(cfg.arch, sizeof cfg.arch, "%s", rn_exp_text(x, "arch"));
    cfg.epochs = epochs;
    cfg.batch = batch;
    const char *run_name = cfg.arch;

    structure *s = calloc(1, sizeof *s);
    block_sums *sums[N_NETS] = {NULL, NULL, NULL};
    rn_net *net = NULL;
    rn_dataset *sub = NULL;
    if (!s) return rn_fail(RN_ERR_NOMEM, "out of memory");
    st = rn_exp_add_run(x, run_name, &cfg);
    if (!st) st = rn_exp_create_initial(&cfg, train, &net);
    if (!st) st = read_structure(net, s);
    if (!st && s->n < 1) st = rn_fail(RN_ERR_ARG, "%s has no blocks to measure", cfg.arch);
    const int images = st ? 0 : want < eval->n ? (int)want : eval->n;
    if (!st && images < eval->n) st = rn_dataset_subset(&sub, eval, 0, images);
    const rn_dataset *data = sub ? sub : eval;
    for (int m = 0; m < N_NETS && !st; m++)
        if (!(sums[m] = calloc((size_t)s->n, sizeof *sums[m]))) st = rn_fail(RN_ERR_NOMEM, "out of memory");
    if (!st) rn_exp_plan_work(x, N_NETS * rn_exp_net_cost(net) * images);
    if (!st) st = rn_exp_train_runs(x);
    const int ctrl = control_block(s);
    if (!st && !x->interrupted) {
        rn_exp_set_phase(x, "measuring %s at initialisation", cfg.arch);
        st = measure(x, net, data, batch, 1, sums[INIT]);
    }
    rn_net_free(net);
    net = NULL;
    if (!st && !x->interrupted) {
        rn_exp_set_phase(x, "measuring the trained %s", cfg.arch);
        st = rn_exp_open_run(x, run_name, &net);
        if (!st) st = measure(x, net, data, batch, 0, sums[TRAINED]);
        rn_net_free(net);
        net = NULL;
    }
    if (!st && !x->interrupted) {
        rn_exp_set_phase(x, "measuring the control (%s's branch zeroed)", s->name[ctrl]);
        st = rn_exp_open_run(x, run_name, &net);
        if (!st) st = zero_last_bn(net, s->name[ctrl]);
        if (!st) st = measure(x, net, data, batch, 0, sums[CONTROL]);
        rn_net_free(net);
        net = NULL;
    }
    double test_error = NAN;
    if (!st && !x->interrupted) {
        rn_exp_epoch *rows;
        int n;
        st = rn_exp_run_metrics(x, run_name, &rows, &n);
        if (!st && n > 0) test_error = rows[n - 1].eval_error;
        if (!st) free(rows);
    }
    if (!st && !x->interrupted) st = write_csv(x, s, sums, ctrl, images);
    if (!st && !x->interrupted) st = draw(x, s, sums, cfg.arch);
    if (!st && !x->interrupted) st = write_summary(x, s, sums, ctrl, images, batch, test_error);
    for (int m = 0; m < N_NETS; m++) free(sums[m]);
    free(s);
    rn_dataset_free(sub);
    return st;
}

const rn_experiment rn_exp_depth_usage = {
    .name = "depth-usage",
    .title = "How much of its depth a trained residual net uses",
    .claim = "the residual branches of a trained net are small next to their inputs (the blocks "
             "refine the signal rather than replace it), and some blocks are nearly skipped",
    .source = "He et al. 2015, Sec. 4.2, Fig. 7; Veit et al. 2016; Greff et al. 2017",
    .opts = opts,
    .run = run,
};
