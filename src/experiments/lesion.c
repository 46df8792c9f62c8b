/* lesion: a trained residual net survives the deletion of single blocks and degrades smoothly
 * as more are deleted, as an ensemble of many paths would, while a plain net of the same depth
 * collapses to chance when one layer goes (Veit et al. 2016, Sec. 4-5, Figs. 3-5). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/rng.h"
#include "experiments/experiment.h"
#include "train/evaluate.h"

#define MAX_BLOCKS 256

static const rn_xopt opts[] = {
    {"depth", RN_XOPT_INT, "56", "14", "depth of the residual and the plain net (6n+2)"},
    {"stem-stride", RN_XOPT_INT, "2", "2", "1: the CIFAR nets as published; 2: a stride-2 stem "
                                           "(maps half the size, 4x cheaper; for 28x28 images)"},
    {"epochs", RN_XOPT_INT, "2", "1", "epochs of both training runs (lr 0.1, divided by 10 at 50% "
                                      "and 75%)"},
    {"batch", RN_XOPT_INT, "128", "32", "images per training step (and per evaluation batch)"},
    {"draws", RN_XOPT_INT, "5", "2", "random sets of k deleted blocks drawn for each k"},
    {"eval-images", RN_XOPT_INT, "10000", "1000", "test images behind every error (the first N)"},
    {NULL, 0, NULL, NULL, NULL},
};

/* What is measured: the same list for both nets. */
typedef enum { T_NONE, T_SINGLE, T_RANDOM, T_SWAP, T_CTRL_SWAP, T_CTRL_UNDELETE } test_kind;
static const char *const test_names[] = {"none", "single", "random", "swap", "control-swap-twice",
                                         "control-undelete"};

typedef struct {
    test_kind kind;
    int k, draw, block; /* block: the deleted one (single), the first of the pair (swaps) */
    int *del;           /* k block indices (into the shared pool) */
} trial;

typedef struct {
    int n;                    /* blocks */
    char name[MAX_BLOCKS][32];
    int keeps[MAX_BLOCKS];    /* output shape == input shape */
    int shape[MAX_BLOCKS][3]; /* output c, h, w */
    double macs[MAX_BLOCKS], total;
} structure;

typedef struct {
    char name[32];
    int residual;
    double *err, *loss; /* per trial; NaN where skipped */
} net_result;

static int read_structure(const rn_net *net, structure *s)
{
    s->n = rn_net_num_blocks(net);
    if (s->n > MAX_BLOCKS) return rn_fail(RN_ERR_ARG, "%d blocks: at most %d", s->n, MAX_BLOCKS);
    s->total = (double)rn_net_macs(net);
    rn_unit_info prev, u;
    int st = rn_net_unit(net, 0, &prev);
    for (int i = 0; i < s->n && !st; i++) {
        if ((st = rn_net_unit(net, i + 1, &u))) break;
        snprintf(s->name[i], sizeof s->name[i], "%s", u.name);
        s->keeps[i] = u.out_c == prev.out_c && u.out_h == prev.out_h && u.out_w == prev.out_w;
        s->shape[i][0] = u.out_c, s->shape[i][1] = u.out_h, s->shape[i][2] = u.out_w;
        s->macs[i] = (double)u.macs;
        prev = u;
    }
    return st;
}

static int swappable(const structure *s, int i)
{
    return i + 1 < s->n && s->keeps[i] && s->keeps[i + 1] && s->shape[i][0] == s->shape[i + 1][0] &&
           s->shape[i][1] == s->shape[i + 1][1] && s->shape[i][2] == s->shape[i + 1][2];
}

/* A plain block that changes the shape has nothing to fall back on: it cannot be deleted. */
static int skipped(const structure *s, const trial *t, int residual)
{
    return !residual && t->kind == T_SINGLE && !s->keeps[t->block];
}

/* The forward cost of one evaluation image with the trial's deletions (shortcuts ignored). */
static double trial_cost(const structure *s, const trial *t)
{
    double c = s->total;
    if (t->kind == T_SINGLE) c -= s->macs[t->block];
    if (t->kind == T_RANDOM)
        for (int j = 0; j < t->k; j++) c -= s->macs[t->del[j]];
    return c;
}

/* Builds the list: no deletion, each single block, `draws` random k-subsets of the candidates
 * for every k (from the experiment's seed), each swappable neighbour pair, two controls. */
static int plan_trials(const rn_exp *x, const structure *s, int draws, trial **out, int *count,
                       int **pool, int *n_cand)
{
    int cand[MAX_BLOCKS], nc = 0, n_swaps = 0;
    for (int i = 0; i < s->n; i++) {
        if (s->keeps[i]) cand[nc++] = i;
        n_swaps += swappable(s, i);
    }
    if (nc < 1) return rn_fail(RN_ERR_ARG, "no block keeps its shape: nothing to delete at random");
    const int max = 1 + s->n + nc * draws + n_swaps + 2;
    trial *t = calloc((size_t)max, sizeof *t);
    int *del = malloc((size_t)nc * (size_t)draws * (size_t)(nc + 1) / 2 * sizeof *del + sizeof *del);
    if (!t || !del) {
        free(t);
        free(del);
        return rn_fail(RN_ERR_NOMEM, "out of memory");
    }
    int n = 0, used = 0;
    t[n++] = (trial){.kind = T_NONE, .block = -1};
    for (int i = 0; i < s->n; i++) t[n++] = (trial){.kind = T_SINGLE, .k = 1, .block = i};
    rn_rng rng;
    rn_rng_seed(&rng, x->set.seed);
    for (int k = 1; k <= nc; k++)
        for (int d = 0; d < draws; d++) {
            /* a partial Fisher-Yates shuffle of the candidates: the first k are the draw */
            int perm[MAX_BLOCKS];
            memcpy(perm, cand, (size_t)nc * sizeof *perm);
            for (int j = 0; j < k; j++) {
                int r = j + (int)rn_rng_below(&rng, (uint32_t)(nc - j));
                int tmp = perm[j];
                perm[j] = perm[r], perm[r] = tmp;
            }
            /* sorted, so that the CSV names them in order */
            for (int a = 1; a < k; a++)
                for (int b = a; b > 0 && perm[b - 1] > perm[b]; b--) {
                    int tmp = perm[b];
                    perm[b] = perm[b - 1], perm[b - 1] = tmp;
                }
            memcpy(del + used, perm, (size_t)k * sizeof *del);
            t[n++] = (trial){.kind = T_RANDOM, .k = k, .draw = d, .block = -1, .del = del + used};
            used += k;
        }
    int first_swap = -1;
    for (int i = 0; i < s->n; i++)
        if (swappable(s, i)) {
            if (first_swap < 0) first_swap = i;
            t[n++] = (trial){.kind = T_SWAP, .block = i};
        }
    if (first_swap >= 0) t[n++] = (trial){.kind = T_CTRL_SWAP, .block = first_swap};
    t[n++] = (trial){.kind = T_CTRL_UNDELETE, .k = 0, .block = cand[0]};
    *out = t;
    *count = n;
    *pool = del;
    *n_cand = nc;
    return RN_OK;
}

/* Applies (on = 1) or undoes (on = 0) a trial's change to the net. */
static int apply(rn_net *net, const trial *t, int on)
{
    int st = RN_OK;
    switch (t->kind) {
    case T_NONE: break;
    case T_SINGLE: st = rn_net_set_block_deleted(net, t->block, on); break;
    case T_RANDOM:
        for (int j = 0; j < t->k && !st; j++) st = rn_net_set_block_deleted(net, t->del[j], on);
        break;
    case T_SWAP: st = rn_net_swap_blocks(net, t->block, t->block + 1); break; /* its own inverse */
    case T_CTRL_SWAP:
        /* swapped and swapped back: must measure exactly as no change */
        if (on) {
            st = rn_net_swap_blocks(net, t->block, t->block + 1);
            if (!st) st = rn_net_swap_blocks(net, t->block, t->block + 1);
        }
        break;
    case T_CTRL_UNDELETE:
        if (on) {
            st = rn_net_set_block_deleted(net, t->block, 1);
            if (!st) st = rn_net_set_block_deleted(net, t->block, 0);
        }
        break;
    }
    return st;
}

static int measure_net(rn_exp *x, net_result *r, const structure *s, const trial *t, int n_trials,
                       const rn_dataset *data, int batch)
{
    rn_net *net;
    int st = rn_exp_open_run(x, r->name, &net);
    if (st) return st;
    for (int i = 0; i < n_trials && !st; i++) {
        r->err[i] = r->loss[i] = NAN;
        if (skipped(s, &t[i], r->residual)) continue;
        rn_exp_set_phase(x, "lesions of %s: %s (%d of %d)", r->name, test_names[t[i].kind], i + 1, n_trials);
        if ((st = apply(net, &t[i], 1))) break;
        rn_eval_result e;
        st = rn_evaluate(net, data, batch, 0, &e);
        if (!st) {
            r->err[i] = e.n ? 1.0 - (double)e.correct / e.n : NAN;
            r->loss[i] = e.loss;
            rn_eval_result_free(&e);
            st = apply(net, &t[i], 0);
        }
        if (!st && rn_exp_work_done(x, trial_cost(s, &t[i]) * data->n)) break;
    }
    rn_net_free(net);
    if (st) return rn_fail(st, "lesions of %s: %s", r->name, rn_last_error());
    return RN_OK;
}

/* ---- outputs ------------------------------------------------------------------------------------ */
static int cmp_double(const void *a, const void *b)
{
    double p = *(const double *)a, q = *(const double *)b;
    return (p > q) - (p < q);
}

static double median(double *v, int n)
{
    if (n <= 0) return NAN;
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Mean and sample s.d. of the random draws at k. */
static void random_stats(const net_result *r, const trial *t, int n_trials, int k, double *mean,
                         double *sd)
{
    double v[64];
    int n = 0;
    for (int i = 0; i < n_trials; i++)
        if (t[i].kind == T_RANDOM && t[i].k == k && n < 64) v[n++] = r->err[i];
    *mean = rn_exp_mean(v, n);
    *sd = rn_exp_std(v, n);
}

static int write_csv(rn_exp *x, const net_result *res, const structure *s, const trial *t,
                     int n_trials, int n_cand, int images)
{
    rn_exp_file f;
    int st = rn_exp_file_open(x, &f, "results.csv");
    if (st) return st;
    rn_exp_printf(&f, "net,kind,test,k,draw,block,blocks,downsampling,status,test_error,test_loss,"
                      "error_sd,images\n");
    for (int m = 0; m < 2; m++) {
        const net_result *r = &res[m];
        const char *kind = r->residual ? "residual" : "plain";
        for (int i = 0; i < n_trials; i++) {
            const trial *q = &t[i];
            char names[MAX_BLOCKS * 12] = "none";
            if (q->kind == T_SINGLE || q->kind == T_CTRL_UNDELETE)
                snprintf(names, sizeof names, "%s", s->name[q->block]);
            else if (q->kind == T_SWAP || q->kind == T_CTRL_SWAP)
                snprintf(names, sizeof names, "%s+%s", s->name[q->block], s->name[q->block + 1]);
            else if (q->kind == T_RANDOM) {
                size_t len = 0;
                for (int j = 0; j < q->k && len < sizeof names; j++)
                    len += (size_t)snprintf(names + len, sizeof names - len, "%s%s", j ? "+" : "",
                                            s->name[q->del[j]]);
            }
            const int down = q->kind == T_SINGLE && !s->keeps[q->block];
            if (skipped(s, q, r->residual))
                rn_exp_printf(&f, "%s,%s,%s,%d,%d,%d,%s,%d,skipped,,,,%d\n", r->name, kind,
                              test_names[q->kind], q->k, q->draw, q->block, names, down, images);
            else
                rn_exp_printf(&f, "%s,%s,%s,%d,%d,%d,%s,%d,ok,%.6f,%.9g,,%d\n", r->name, kind,
                              test_names[q->kind], q->k, q->draw, q->block, names, down, r->err[i],
                              r->loss[i], images);
        }
        for (int k = 1; k <= n_cand; k++) {
            double mean, sd;
            random_stats(r, t, n_trials, k, &mean, &sd);
            rn_exp_printf(&f, "%s,%s,random-mean,%d,-1,-1,mean of the draws,0,ok,%.6f,,%.6f,%d\n",
                          r->name, kind, k, mean, sd, images);
        }
    }
    return rn_exp_file_close(&f);
}

/* A dashed horizontal line at y from x0 to x1 (4 doubles of storage at p). */
static rn_plot_series hline(double *p, double x0, double x1, double y, int color, const char *label)
{
    p[0] = x0, p[1] = x1, p[2] = p[3] = y;
    return (rn_plot_series){.label = label, .x = p, .y = p + 2, .n = 2, .style = RN_PLOT_LINE,
                            .color = color, .dashed = 1};
}

/* Four panels: single deletions, k random deletions (which carries the legend: its lower right
 * is empty when the claim holds), swaps, and the residual net's single deletions and swaps on
 * their own scale. Colours: plain 0, residual 1, chance 7. */
static int draw(rn_exp *x, const net_result *res, const structure *s, const trial *t, int n_trials,
                int n_cand, int draws, double chance)
{
    const int nb = s->n;
    double *buf = calloc((size_t)(nb + n_cand + 8) * 24, sizeof *buf);
    if (!buf) return rn_fail(RN_ERR_NOMEM, "out of memory");
    double *p = buf;
    double vl[MAX_BLOCKS];
    int n_vl = 0;
    for (int i = 0; i < nb; i++)
        if (!s->keeps[i]) vl[n_vl++] = i;
    rn_plot_series single[5], random[5], swaps[5], zoom[3];
    static char labels[2][2][160], chance_label[64], zl[3][96];
    const double lo_b = -0.5, hi_b = nb - 0.5;
    double *sx[2], *sy[2], *wx[2], *wy[2];
    int n_sw = 0;
    for (int m = 0; m < 2; m++) {
        const net_result *r = &res[m];
        sx[m] = p, sy[m] = p + nb;
        p += 2 * nb;
        for (int i = 0; i < n_trials; i++)
            if (t[i].kind == T_SINGLE) sx[m][t[i].block] = t[i].block, sy[m][t[i].block] = 100.0 * r->err[i];
        double *rx = p, *ry = p + n_cand, *rlo = p + 2 * n_cand, *rhi = p + 3 * n_cand;
        p += 4 * n_cand;
        for (int k = 1; k <= n_cand; k++) {
            double mean, sd;
            random_stats(r, t, n_trials, k, &mean, &sd);
            rx[k - 1] = k, ry[k - 1] = 100.0 * mean;
            rlo[k - 1] = 100.0 * (mean - sd), rhi[k - 1] = 100.0 * (mean + sd);
        }
        wx[m] = p, wy[m] = p + nb;
        p += 2 * nb;
        n_sw = 0;
        for (int i = 0; i < n_trials; i++)
            if (t[i].kind == T_SWAP) wx[m][n_sw] = t[i].block + 0.5, wy[m][n_sw++] = 100.0 * r->err[i];
        snprintf(labels[m][0], sizeof labels[m][0], "%s (%s)", r->name, r->residual ? "residual" : "plain");
        snprintf(labels[m][1], sizeof labels[m][1], "%s intact: %.2f%%", r->name, 100.0 * r->err[0]);
        single[m] = (rn_plot_series){.x = sx[m], .y = sy[m], .n = nb, .style = RN_PLOT_LINE_POINTS, .color = m};
        random[m] = (rn_plot_series){.label = labels[m][0], .x = rx, .y = ry, .n = n_cand,
                                     .style = RN_PLOT_LINE_POINTS, .color = m, .lo = rlo, .hi = rhi};
        swaps[m] = (rn_plot_series){.x = wx[m], .y = wy[m], .n = n_sw, .style = RN_PLOT_POINTS, .color = m};
        single[2 + m] = hline(p, lo_b, hi_b, 100.0 * r->err[0], m, NULL);
        random[2 + m] = hline(p + 4, 0.5, n_cand + 0.5, 100.0 * r->err[0], m, labels[m][1]);
        swaps[2 + m] = hline(p + 8, lo_b, hi_b, 100.0 * r->err[0], m, NULL);
        p += 12;
    }
    snprintf(chance_label, sizeof chance_label, "chance (%.0f%% error)", chance);
    single[4] = hline(p, lo_b, hi_b, chance, 7, NULL);
    random[4] = hline(p + 4, 0.5, n_cand + 0.5, chance, 7, chance_label);
    swaps[4] = hline(p + 8, lo_b, hi_b, chance, 7, NULL);
    p += 12;
    /* the residual net alone, on a scale that shows its small changes; room above for the legend */
    const double base = 100.0 * res[1].err[0];
    double ylo = base, yhi = base;
    for (int i = 0; i < nb; i++)
        if (isfinite(sy[1][i])) ylo = fmin(ylo, sy[1][i]), yhi = fmax(yhi, sy[1][i]);
    for (int i = 0; i < n_sw; i++) ylo = fmin(ylo, wy[1][i]), yhi = fmax(yhi, wy[1][i]);
    const double span = yhi - ylo > 0.5 ? yhi - ylo : 0.5;
    snprintf(zl[0], sizeof zl[0], "%s: one block deleted", res[1].name);
    snprintf(zl[1], sizeof zl[1], "%s: pair (i, i+1) swapped", res[1].name);
    snprintf(zl[2], sizeof zl[2], "%s intact: %.2f%%", res[1].name, base);
    zoom[0] = single[1], zoom[0].label = zl[0];
    zoom[1] = swaps[1], zoom[1].label = zl[1], zoom[1].color = 2;
    zoom[2] = hline(p, lo_b, hi_b, base, 1, zl[2]);
    static char rtitle[128], ztitle[128];
    snprintf(rtitle, sizeof rtitle, "Random deletions, %d draws per k", draws);
    snprintf(ztitle, sizeof ztitle, "%s alone, zoomed", res[1].name);
    rn_plot_panel panels[4] = {
        {.title = "One block deleted (dotted: downsampling)",
         .xlabel = "deleted block (index from 0)", .ylabel = "test error (%)", .xmin = lo_b,
         .xmax = hi_b, .ymin = 0, .ymax = 100, .series = single, .n_series = 5, .vlines = vl,
         .n_vlines = n_vl},
        {.title = rtitle, .xlabel = "k: blocks deleted at random",
         .ylabel = "test error (%), mean +- s.d.", .xmin = 0.5, .xmax = n_cand + 0.5, .ymin = 0, .ymax = 100,
         .series = random, .n_series = 5, .legend_pos = 2},
        {.title = "Swapping blocks i and i+1", .xlabel = "swapped pair (i, i+1), drawn at i + 0.5",
         .ylabel = "test error (%)", .xmin = lo_b, .xmax = hi_b, .ymin = 0, .ymax = 100,
         .series = swaps, .n_series = 5, .vlines = vl, .n_vlines = n_vl},
        {.title = ztitle, .xlabel = "deleted block, or swapped pair at i + 0.5",
         .ylabel = "test error (%)", .xmin = lo_b, .xmax = hi_b, .ymin = ylo - 0.1 * span,
         .ymax = yhi + 0.8 * span, .series = zoom, .n_series = 3, .legend_pos = 0, .vlines = vl,
         .n_vlines = n_vl},
    };
    rn_plot_figure fig = {.title = "Lesions: test error after deleting or swapping blocks of trained nets",
                          .width = 1600, .height = 1400, .cols = 2};
    int st = rn_exp_plot(x, "lesion", &fig, panels, 4);
    free(buf);
    return st;
}

/* Median and worst error of single deletions of blocks that keep their shape. */
static void single_stats(const net_result *r, const structure *s, const trial *t, int n_trials,
                         double *med, double *worst, int *worst_block)
{
    double v[MAX_BLOCKS];
    int n = 0;
    *worst = -1.0, *worst_block = -1;
    for (int i = 0; i < n_trials; i++)
        if (t[i].kind == T_SINGLE && s->keeps[t[i].block]) {
            v[n++] = r->err[i];
            if (r->err[i] > *worst) *worst = r->err[i], *worst_block = t[i].block;
        }
    *med = median(v, n);
}

static int write_summary(rn_exp *x, const net_result *res, const structure *s, const trial *t,
                         int n_trials, int n_cand, int images, double chance)
{
    rn_exp_file f;
    int st = rn_exp_summary_open(x, &f);
    if (st) return st;
    /* k = 1, n/4, n/2 (without repeats when n is small) */
    int ks[3], nk = 0;
    const int want[3] = {1, n_cand / 4, n_cand / 2};
    for (int q = 0; q < 3; q++)
        if (want[q] >= 1 && (!nk || want[q] > ks[nk - 1])) ks[nk++] = want[q];
    double med[2], worst[2], at[2][3], sd[2][3];
    int wb[2];
    rn_exp_printf(&f, "Test error (%%) on %d test images, in evaluation mode; %d of the %d blocks "
                      "keep their shape: the candidates for random deletions.\n\n| net | intact | "
                      "one block deleted: median | worst |",
                  images, n_cand, s->n);
    for (int q = 0; q < nk; q++) rn_exp_printf(&f, " k = %d random |", ks[q]);
    rn_exp_printf(&f, " pair swapped: median |\n|---|---|---|---|");
    for (int q = 0; q < nk; q++) rn_exp_printf(&f, "---|");
    rn_exp_printf(&f, "---|\n");
    for (int m = 1; m >= 0; m--) {
        single_stats(&res[m], s, t, n_trials, &med[m], &worst[m], &wb[m]);
        double sw[MAX_BLOCKS];
        int n_sw = 0;
        for (int i = 0; i < n_trials; i++)
            if (t[i].kind == T_SWAP) sw[n_sw++] = res[m].err[i];
        rn_exp_printf(&f, "| %s | %.2f | %.2f | %.2f (%s) |", res[m].name, 100 * res[m].err[0],
                      100 * med[m], 100 * worst[m], wb[m] >= 0 ? s->name[wb[m]] : "-");
        for (int q = 0; q < nk; q++) {
            random_stats(&res[m], t, n_trials, ks[q], &at[m][q], &sd[m][q]);
            rn_exp_printf(&f, " %.2f +- %.2f |", 100 * at[m][q], 100 * sd[m][q]);
        }
        if (n_sw) rn_exp_printf(&f, " %.2f |\n", 100 * median(sw, n_sw));
        else rn_exp_printf(&f, " (no pair) |\n");
    }
    rn_exp_printf(&f, "\n(one block: the blocks that keep their shape; k random: mean +- s.d. over "
                      "the draws.) Downsampling blocks of %s, deleted alone:",
                  res[1].name);
    for (int i = 0; i < n_trials; i++)
        if (t[i].kind == T_SINGLE && !s->keeps[t[i].block])
            rn_exp_printf(&f, " %s %.2f%%;", s->name[t[i].block], 100 * res[1].err[i]);
    rn_exp_printf(&f, " in %s they cannot be deleted (nothing would carry their input on).\n\n",
                  res[0].name);

    /* res[0] plain, res[1] residual. Smooth: one block costs the residual net at most 2 points
     * (median), and k = n/2 deletions cost it less than the plain net. Collapse: one block takes
     * the plain net at least 80% of the way from its own error to chance (median). */
    const int kh = nk - 1;
    const double base_r = res[1].err[0], base_p = res[0].err[0], c = chance / 100.0;
    const int smooth = med[1] - base_r <= 0.02 && at[1][kh] < at[0][kh];
    const int trained = base_p < c - 0.05;
    const double way = trained ? (med[0] - base_p) / (c - base_p) : NAN; /* 0 unharmed, 1 chance */
    const int collapse = trained && way >= 0.8;
    rn_exp_printf(&f, "- residual: deleting one block raises the error from %.2f%% to a median of "
                      "%.2f%% (worst %.2f%%); %d random deletions give %.2f%%, against %.2f%% for "
                      "the plain net. **%s**\n",
                  100 * base_r, 100 * med[1], 100 * worst[1], ks[kh], 100 * at[1][kh],
                  100 * at[0][kh],
                  smooth ? "Degrades smoothly, as an ensemble would."
                         : "Does not degrade smoothly in this run.");
    if (trained)
        rn_exp_printf(&f, "- plain: deleting one block raises the error from %.2f%% to a median of "
                          "%.2f%%, %.0f%% of the way to chance (%.0f%%). **%s**\n",
                      100 * base_p, 100 * med[0], 100 * way, chance,
                      collapse ? "Collapses to near chance."
                      : way >= 0.4 ? "Badly hurt, but not at chance in this run."
                                   : "Does not collapse in this run.");
    else
        rn_exp_printf(&f, "- plain: %.2f%% error before any deletion: at chance (%.0f%%) already, "
                          "so this run cannot show a collapse. **Not shown.**\n",
                      100 * base_p, chance);
    int same = 1;
    for (int m = 0; m < 2; m++)
        for (int i = 0; i < n_trials; i++)
            if (t[i].kind == T_CTRL_SWAP || t[i].kind == T_CTRL_UNDELETE)
                same &= res[m].err[i] == res[m].err[0] && res[m].loss[i] == res[m].loss[0];
    rn_exp_printf(&f, "- controls (known answer): swapping a pair twice, and deleting and restoring "
                      "a block, give %s error and loss as the intact net.\n",
                  same ? "exactly the same" : "**NOT** the same");
    rn_exp_printf(&f, "\nThe claim %s in this run%s.\n\nFiles: results.csv (every evaluation: "
                      "test = none, single, random, swap, the controls, and random-mean per k), "
                      "lesion.png / .svg, runs/<net>/ (the training runs).\n",
                  smooth && collapse ? "**held**" : "**did not fully hold**",
                  x->set.quick ? " (quick mode: nets trained for moments on a subset; only the "
                                 "full mode tests the claim)" : "");
    rn_exp_note(x, "%s: %.2f%% intact, %.2f%% median with one block deleted; %s: %.2f%% -> %.2f%%",
                res[1].name, 100 * base_r, 100 * med[1], res[0].name, 100 * base_p, 100 * med[0]);
    return rn_exp_file_close(&f);
}

static int run(rn_exp *x)
{
    const int depth = (int)rn_exp_int(x, "depth"), stem = (int)rn_exp_int(x, "stem-stride");
    const int draws = (int)rn_exp_int(x, "draws"), epochs = (int)rn_exp_int(x, "epochs");
    const int batch = (int)rn_exp_int(x, "batch");
    long want_images = rn_exp_int(x, "eval-images");
    if (depth < 8 || (depth - 2) % 6)
        return rn_fail(RN_ERR_ARG, "--depth: %d is not of the form 6n+2 (8, 14, 20, 32, 44, 56, 110 ...)", depth);
    if (stem != 1 && stem != 2) return rn_fail(RN_ERR_ARG, "--stem-stride must be 1 or 2");
    if (draws < 1 || draws > 64) return rn_fail(RN_ERR_ARG, "--draws must be 1 to 64");
    if (epochs < 1 || batch < 1 || want_images < 1)
        return rn_fail(RN_ERR_ARG, "--epochs, --batch and --eval-images must be at least 1");

    net_result res[2];
    memset(res, 0, sizeof res);
    structure *s = calloc(2, sizeof *s);
    if (!s) return rn_fail(RN_ERR_NOMEM, "out of memory");
    const rn_dataset *train, *eval;
    int st = rn_exp_data(x, &train, &eval);
    for (int m = 0; m < 2 && !st; m++) { /* 0: plain, 1: residual */
        res[m].residual = m;
        snprintf(res[m].name, sizeof res[m].name, "%s%d", m ? "resnet" : "plain", depth);
        rn_train_config cfg;
        rn_exp_train_config(x, &cfg);
        snprintf(cfg.arch, sizeof cfg.arch, "%.31s%s", res[m].name, stem == 2 ? "-s2" : "");
        cfg.epochs = epochs;
        cfg.batch = batch;
        st = rn_exp_add_run(x, res[m].name, &cfg);
        rn_net_options o;
        rn_net_options_init(&o);
        o.classes = train->classes, o.in_c = train->c, o.in_h = train->h, o.in_w = train->w;
        rn_net *net = NULL;
        if (!st) st = rn_net_create(&net, cfg.arch, &o);
        if (!st) st = read_structure(net, &s[m]);
        rn_net_free(net);
    }
    if (!st && (s[0].n != s[1].n || memcmp(s[0].keeps, s[1].keeps, sizeof s[0].keeps)))
        st = rn_fail(RN_ERR_ARG, "the plain and the residual net differ in their blocks' shapes");

    trial *t = NULL;
    int *pool = NULL, n_trials = 0, n_cand = 0;
    if (!st) st = plan_trials(x, &s[1], draws, &t, &n_trials, &pool, &n_cand);
    rn_dataset *sub = NULL;
    const int images = st ? 0 : want_images < eval->n ? (int)want_images : eval->n;
    if (!st && images < eval->n) st = rn_dataset_subset(&sub, eval, 0, images);
    const rn_dataset *data = sub ? sub : eval;
    for (int m = 0; m < 2 && !st; m++) {
        res[m].err = malloc((size_t)n_trials * sizeof(double));
        res[m].loss = malloc((size_t)n_trials * sizeof(double));
        if (!res[m].err || !res[m].loss) st = rn_fail(RN_ERR_NOMEM, "out of memory");
        for (int i = 0; i < n_trials && !st; i++)
            if (!skipped(&s[m], &t[i], m)) rn_exp_plan_work(x, trial_cost(&s[m], &t[i]) * images);
    }
    if (!st) st = rn_exp_train_runs(x);
    for (int m = 1; m >= 0 && !st && !x->interrupted; m--)
        st = measure_net(x, &res[m], &s[m], t, n_trials, data, batch);
    if (!st && !x->interrupted) {
        const double chance = 100.0 * (1.0 - 1.0 / train->classes);
        st = write_csv(x, res, &s[1], t, n_trials, n_cand, images);
        if (!st) st = draw(x, res, &s[1], t, n_trials, n_cand, draws, chance);
        if (!st) st = write_summary(x, res, &s[1], t, n_trials, n_cand, images, chance);
    }
    for (int m = 0; m < 2; m++) free(res[m].err), free(res[m].loss);
    free(t);
    free(pool);
    free(s);
    rn_dataset_free(sub);
    return st;
}

const rn_experiment rn_exp_lesion = {
    .name = "lesion",
    .title = "Lesions: deleting and swapping blocks of a trained net",
    .claim = "deleting single blocks of a trained residual net barely changes its test error and "
             "deleting more degrades it smoothly, like an ensemble of shallower paths, while a plain "
             "net of the same depth collapses to chance when any one of its blocks is deleted",
    .source = "Veit et al. 2016, Sec. 4-5, Figs. 3-5",
    .opts = opts,
    .run = run,
};
