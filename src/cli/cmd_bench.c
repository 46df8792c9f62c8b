/* resnet bench: how fast this engine trains or runs a network, alone, through the public API.
 *
 * train: rn_net_train_step (zero_grad + forward + backward) + rn_sgd_step (momentum 0.9,
 *        weight decay 1e-4), per batch; infer: rn_net_forward in evaluation mode, per batch.
 * Input is standard-normal and labels uniform, drawn from --seed. Reports the median (min, max)
 * milliseconds per batch over the timed iterations, images/s and GFLOP/s, counting
 * 2 x rn_net_macs per image for a forward pass and 3 x that for a training step.
 *
 * --kernels: the kernel table. Every distinct convolution shape of the network (from
 * rn_net_conv_info), with how many convolutions of the network have it, timed alone at the
 * batch size through the kernels' own interface (kernels/kernels.h): forward (rn_conv_forward,
 * no bias), backward-data (rn_conv_backward, dx only) and backward-weights (rn_conv_backward,
 * dw only), each the median over the timed runs; each counts 2 x N x K x C x R x S x OH x OW
 * FLOPs.
 *
 * --layers (with --mode infer): each convolution of the frozen network timed inside the
 * forward itself (bench_layers.c). */
#define _POSIX_C_SOURCE 200809L /* isatty, getrusage */
#include <cjson/cJSON.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "core/rng.h"
#include "kernels/kernels.h"

enum { MODE_NONE, MODE_TRAIN, MODE_INFER };

static const float LR = 0.01f, MOMENTUM = 0.9f, WEIGHT_DECAY = 1e-4f;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median_of(const double *v, int n) /* v sorted */
{
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static double max_rss_mb(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru)) return 0;
    return ru.ru_maxrss / 1024.0; /* Linux: KiB */
}

static const char usage_text[] =
    "usage: resnet bench (--arch NAME | --model FILE) [network options] --batch N\n"
    "                    (--mode train|infer [--layers] | --kernels) [--input-shape CxHxW]\n"
    "                    [--threads T]"
    " [--warmup W] [--iters K] [--max-seconds S] [--json]\n"
    "Times this engine alone on random data (from --seed).\n";

static const char footer_text[] =
    "GFLOP counts 2 x multiply-adds per image for a forward pass, 3 x that for a training step;\n"
    "for a kernel, 2 x N x K x C x R x S x OH x OW, the same for each of the three.\n";

static int set_mode(void *target, const char *option, const char *value)
{
    if (!strcmp(value, "train")) *(int *)target = MODE_TRAIN;
    else if (!strcmp(value, "infer")) *(int *)target = MODE_INFER;
    else return cli_error("%s: expected train or infer, got '%s'", option, value);
    return 0;
}

/* ---- the kernel table (--kernels) ------------------------------------------------------ */

typedef struct {
    int batch, threads, warmup, iters;
    double max_seconds;
    int json;
    double peak; /* measured FMA peak at `threads` threads, GFLOP/s */
} bench_settings;

/* The training step's three passes, then the forward and weight gradient on channel-blocked
 * tensors (kernels/convb*.c: the layout the engine is moving to), which the totals leave out. */
enum { DIR_FORWARD, DIR_BACKWARD_DATA, DIR_BACKWARD_WEIGHTS, N_DIRS, DIR_FORWARD_BLOCKED = N_DIRS,
       DIR_BACKWARD_DATA_BLOCKED, DIR_BACKWARD_WEIGHTS_BLOCKED, N_TIMED };
static const char *const DIR_KEY[N_TIMED] = {"forward", "backward_data", "backward_weights",
                                             "forward_blocked", "backward_data_blocked",
                                             "backward_weights_blocked"};

/* One distinct convolution shape of the network. */
typedef struct {
    rn_conv_info info; /* the first convolution with this shape */
    int count;
    int dx_count;      /* convolutions whose input gradient training computes: all but the
                        * network's first */
    double *ms[N_TIMED]; /* sorted times of the timed runs */
    int runs[N_TIMED];
    int wino;          /* on blocks by Winograd: 1 forward and input gradient, 2 all three */
    int planar_in;     /* the network's first convolution alone: on blocks, training runs its
                        * forward and weight gradient on the planar images (rn_convb_*_planar_in),
                        * so those are what is timed, not a blocked input of 1-3 channels in
                        * 16 lanes */
    int tiles[3];      /* ... with output tiles of tiles[pass] (0: the direct kernel) */
} kernel_row;

static int same_shape(const rn_conv_info *a, const rn_conv_info *b)
{
    return a->in_c == b->in_c && a->in_h == b->in_h && a->in_w == b->in_w &&
           a->out_c == b->out_c && a->k == b->k && a->stride == b->stride && a->pad == b->pad;
}

double bench_conv_gflop(const rn_conv_info *c, int batch)
{
    return 2.0 * batch * c->out_c * c->in_c * c->k * c->k * c->out_h * c->out_w / 1e9;
}

/* The names of the convolutions of row r, as a cJSON array. */
static cJSON *row_names(const rn_net *net, const kernel_row *r)
{
    cJSON *arr = cJSON_CreateArray();
    int n = rn_net_num_convs(net);
    for (int i = 0; i < n; i++) {
        rn_conv_info c;
        if (!rn_net_conv_info(net, i, &c) && same_shape(&c, &r->info))
            cJSON_AddItemToArray(arr, cJSON_CreateString(c.name));
    }
    return arr;
}

static float *random_floats(size_t len, rn_rng *rng)
{
    float *p = rn_alloc_lines(len, sizeof(float));
    if (p)
        for (size_t i = 0; i < len; i++) p[i] = rn_rng_normal(rng);
    return p;
}

/* Times the three directions of one shape; fills r->ms and r->runs. Returns 0 or prints. */
static int time_kernel(kernel_row *r, const bench_settings *bs, uint64_t seed)
{
    const rn_conv_info *c = &r->info;
    rn_conv_shape sh;
    if (rn_conv_shape_init(&sh, bs->batch, c->in_c, c->in_h, c->in_w, c->out_c, c->k, c->k,
                           c->stride, c->pad))
        return cli_error("bench: %s: not a valid convolution shape", c->name);
    sh.threads = bs->threads;
    size_t xlen = (size_t)sh.n * sh.c * sh.h * sh.w, ylen = (size_t)sh.n * sh.k * sh.oh * sh.ow;
    size_t wlen = (size_t)sh.k * sh.c * sh.r * sh.s, work_len = rn_conv_workspace(&sh);
    rn_rng rng;
    rn_rng_seed(&rng, seed);
    float *x = random_floats(xlen, &rng), *w = random_floats(wlen, &rng);
    float *dy = random_floats(ylen, &rng), *y = rn_alloc_lines(ylen, sizeof(float));
    float *dx = rn_alloc_lines(xlen, sizeof(float)), *dw = rn_alloc_lines_zero(wlen, sizeof(float));
    float *work = rn_alloc_lines(work_len + 1, sizeof(float));
    /* the blocked forward's operands, converted before the clock starts (in the blocked engine
     * activations stay blocked); weights are packed in the timed call, as for the planar one;
     * everything on cache lines, as the network's arrays are (core/alloc.h) */
    float *xb = rn_alloc_lines(rn_blk_floats(sh.n, sh.c, sh.h, sh.w), sizeof(float));
    float *yb = rn_alloc_lines(rn_blk_floats(sh.n, sh.k, sh.oh, sh.ow), sizeof(float));
    float *wb = rn_alloc_lines(rn_convb_packed_floats(&sh), sizeof(float));
    float *workb = rn_alloc_lines(rn_convb_workspace(&sh) + 1, sizeof(float));
    float *dyb = rn_alloc_lines(rn_blk_floats(sh.n, sh.k, sh.oh, sh.ow), sizeof(float));
    float *dxb = rn_alloc_lines(rn_blk_floats(sh.n, sh.c, sh.h, sh.w), sizeof(float));
    /* where the network runs Winograd on blocks (rn_conv_run_*_blocked), the same here, its
     * forward as training runs it */
    r->planar_in = r->dx_count == 0;
    const rn_conv_shape fs = rn_convb_wino_training_forward(&sh);
    const int wino_fwd = !r->planar_in && rn_convb_wino_pays(&fs);
    const int wino = rn_convb_wino_pays(&sh);
    const int wino_wgrad = !r->planar_in && rn_convb_wino_wgrad_pays(&sh);
    const rn_conv_shape t = rn_convb_wino_transposed(&sh);
    r->wino = wino + wino_wgrad;
    r->tiles[0] = wino_fwd ? rn_convb_wino_tile(&fs) : 0;
    r->tiles[1] = wino ? rn_convb_wino_tile(&t) : 0;
    r->tiles[2] = wino_wgrad ? rn_convb_wino_wgrad_tile(&sh) : 0;
    if (wino_fwd) {
        free(wb);
        free(workb);
        wb = rn_alloc_lines(rn_convb_wino_packed_floats(&fs), sizeof(float));
        workb = rn_alloc_lines(rn_convb_wino_workspace(&fs) + 1, sizeof(float));
    }
    float *wd = rn_alloc_lines(
        wino ? rn_convb_wino_packed_floats(&t) : rn_convb_backward_data_packed_floats(&sh), sizeof(float));
    float *workd = rn_alloc_lines(
        (wino ? rn_convb_wino_workspace(&t) : rn_convb_backward_data_workspace(&sh)) + 1, sizeof(float));
    float *workg = rn_alloc_lines((wino_wgrad ? rn_convb_wino_wgrad_workspace(&sh)
                                              : rn_convb_backward_weights_workspace(&sh)) + 1,
                                  sizeof(float));
    int rc = 0;
    if (!x || !w || !dy || !y || !dx || !dw || !work || !xb || !yb || !wb || !workb || !dyb ||
        !dxb || !wd || !workd || !workg)
        rc = cli_error("bench: %s: out of memory for a batch of %d", c->name, bs->batch);
    if (!rc) rn_blk_from_nchw(xb, x, sh.n, sh.c, sh.h, sh.w);
    if (!rc) rn_blk_from_nchw(dyb, dy, sh.n, sh.k, sh.oh, sh.ow);
    for (int d = 0; !rc && d < N_TIMED; d++) {
        r->ms[d] = malloc((size_t)bs->iters * sizeof(double));
        if (!r->ms[d]) {
            rc = cli_error("out of memory");
            break;
        }
        int timed = 0;
        double spent = 0;
        for (int it = 0; it < bs->warmup + bs->iters; it++) {
            double t0 = rn_clock_s();
            if (d == DIR_FORWARD) rn_conv_forward(y, x, w, NULL, &sh, work);
            else if (d == DIR_BACKWARD_DATA) rn_conv_backward(dx, NULL, NULL, dy, x, w, &sh, work);
            else if (d == DIR_BACKWARD_WEIGHTS) rn_conv_backward(NULL, dw, NULL, dy, x, w, &sh, work);
            else if (d == DIR_FORWARD_BLOCKED && wino_fwd) { /* weights packed in the call, as a
                                                          * training step packs them */
                rn_convb_wino_pack(wb, w, NULL, NULL, &fs);
                rn_convb_wino_forward(yb, xb, wb, 0, &fs, workb);
            } else if (d == DIR_FORWARD_BLOCKED) {
                rn_convb_pack(wb, w, NULL, NULL, &sh);
                if (r->planar_in) rn_convb_forward_planar_in(yb, x, wb, 0, &sh, workb);
                else rn_convb_forward(yb, xb, wb, 0, &sh, workb);
            } else if (d == DIR_BACKWARD_DATA_BLOCKED && wino) {
                rn_convb_wino_pack_backward_data(wd, w, &t);
                rn_convb_wino_forward(dxb, dyb, wd, 0, &t, workd);
            } else if (d == DIR_BACKWARD_DATA_BLOCKED) {
                rn_convb_backward_data_pack(wd, w, &sh);
                rn_convb_backward_data(dxb, dyb, wd, &sh, workd);
            } else if (wino_wgrad) rn_convb_wino_backward_weights(dw, dyb, xb, &sh, workg);
            else if (r->planar_in) rn_convb_backward_weights_planar_in(dw, NULL, dyb, x, &sh, workg);
            else rn_convb_backward_weights(dw, NULL, dyb, xb, &sh, workg);
            double dt = rn_clock_s() - t0;
            if (it < bs->warmup) continue;
            r->ms[d][timed++] = 1e3 * dt;
            spent += dt;
            if (bs->max_seconds > 0 &&
                ((spent >= bs->max_seconds && timed >= 3) || spent >= 3 * bs->max_seconds))
                break;
        }
        qsort(r->ms[d], (size_t)timed, sizeof(double), cmp_double);
        r->runs[d] = timed;
    }
    free(workg);
    free(workd);
    free(wd);
    free(dxb);
    free(dyb);
    free(workb);
    free(wb);
    free(yb);
    free(xb);
    free(work);
    free(dw);
    free(dx);
    free(y);
    free(dy);
    free(w);
    free(x);
    return rc;
}

static double row_ms(const kernel_row *r, int d)
{
    return median_of(r->ms[d], r->runs[d]);
}

static int kernels_json(const rn_net *net, const bench_settings *bs, const kernel_row *rows,
                        int n_rows)
{
    rn_net_options o;
    rn_net_get_options(net, &o);
    cJSON *root = cJSON_CreateObject(), *arr = cJSON_CreateArray();
    cJSON_AddStringToObject(root, "arch", rn_net_arch(net));
    cJSON_AddStringToObject(root, "mode", "kernels");
    cJSON_AddNumberToObject(root, "batch", bs->batch);
    int shape[3] = {o.in_c, o.in_h, o.in_w};
    cJSON_AddItemToObject(root, "input", cJSON_CreateIntArray(shape, 3));
    cJSON_AddNumberToObject(root, "threads", bs->threads);
    cJSON_AddNumberToObject(root, "omp_threads", omp_get_max_threads());
    cJSON_AddNumberToObject(root, "warmup", bs->warmup);
    cJSON_AddNumberToObject(root, "iters", bs->iters);
    cJSON_AddNumberToObject(root, "convs", rn_net_num_convs(net));
    cJSON_AddNumberToObject(root, "fma_peak_gflop_per_s", bs->peak);
    cJSON_AddNumberToObject(root, "blocked_lanes", rn_blk_lanes());
    for (int i = 0; i < n_rows; i++) {
        const kernel_row *r = &rows[i];
        const rn_conv_info *c = &r->info;
        cJSON *j = cJSON_CreateObject();
        int in[3] = {c->in_c, c->in_h, c->in_w}, out[3] = {c->out_c, c->out_h, c->out_w};
        cJSON_AddItemToObject(j, "input", cJSON_CreateIntArray(in, 3));
        cJSON_AddItemToObject(j, "output", cJSON_CreateIntArray(out, 3));
        cJSON_AddNumberToObject(j, "kernel", c->k);
        cJSON_AddNumberToObject(j, "stride", c->stride);
        cJSON_AddNumberToObject(j, "pad", c->pad);
        cJSON_AddNumberToObject(j, "count", r->count);
        cJSON_AddNumberToObject(j, "dx_count", r->dx_count);
        cJSON_AddNumberToObject(j, "blocked_winograd", r->wino);
        cJSON_AddBoolToObject(j, "blocked_planar_in", r->planar_in);
        cJSON_AddItemToObject(j, "winograd_tiles", cJSON_CreateIntArray(r->tiles, 3));
        cJSON_AddItemToObject(j, "names", row_names(net, r));
        double gf = bench_conv_gflop(c, bs->batch);
        cJSON_AddNumberToObject(j, "gflop", gf);
        for (int d = 0; d < N_TIMED; d++) {
            cJSON *m = cJSON_CreateObject();
            double ms = row_ms(r, d);
            cJSON_AddNumberToObject(m, "ms", ms);
            cJSON_AddNumberToObject(m, "gflop_per_s", gf / (ms / 1e3));
            cJSON_AddNumberToObject(m, "peak_share", gf / (ms / 1e3) / bs->peak);
            cJSON_AddItemToObject(m, "ms_sorted", cJSON_CreateDoubleArray(r->ms[d], r->runs[d]));
            cJSON_AddItemToObject(j, DIR_KEY[d], m);
        }
        cJSON_AddItemToArray(arr, j);
    }
    cJSON_AddItemToObject(root, "rows", arr);
    char *text = cJSON_PrintUnformatted(root);
    int rc = text ? 0 : cli_error("out of memory");
    if (text) puts(text);
    free(text);
    cJSON_Delete(root);
    return rc;
}

static void kernels_table(const rn_net *net, const bench_settings *bs, const kernel_row *rows,
                          int n_rows)
{
    rn_net_options o;
    rn_net_get_options(net, &o);
    printf("bench %s kernels: batch %d, input %dx%dx%d; %d threads; %d convolutions, %d distinct "
           "shapes; %d warm-up + up to %d timed runs each, median; FMA peak %.1f GFLOP/s "
           "(measured, %d lanes)\n\n",
           rn_net_arch(net), bs->batch, o.in_c, o.in_h, o.in_w, omp_get_max_threads(),
           rn_net_num_convs(net), n_rows, bs->warmup, bs->iters, bs->peak, rn_blk_lanes());
    printf("%-3s %-24s %5s %8s | %-22s | %-22s | %-22s | %6s | %-22s | %-22s | %-22s\n", "", "",
           "", "", "forward", "backward-data", "backward-weights", "", "forward, blocked",
           "backward-data, blocked", "backward-weights, bl.");
    printf("%-3s %-24s %5s %8s |", "#", "C->K RxS/stride HxW", "count", "GFLOP");
    for (int d = 0; d < N_TIMED; d++) {
        if (d == DIR_FORWARD_BLOCKED) printf(" %6s |", "share");
        printf(" %8s %7s %4s |", "ms", "GFLOP/s", "peak");
    }
    printf("\n");
    double total[N_DIRS] = {0}, flop[N_DIRS] = {0}, all = 0;
    for (int i = 0; i < n_rows; i++)
        for (int d = 0; d < N_DIRS; d++) {
            int m = d == DIR_BACKWARD_DATA ? rows[i].dx_count : rows[i].count;
            total[d] += m * row_ms(&rows[i], d);
            flop[d] += m * bench_conv_gflop(&rows[i].info, bs->batch);
        }
    all = total[0] + total[1] + total[2];
    int starred = 0;
    for (int i = 0; i < n_rows; i++) {
        const kernel_row *r = &rows[i];
        const rn_conv_info *c = &r->info;
        char shape[64], mark[16] = "";
        if (r->wino == 2)
            snprintf(mark, sizeof mark, " W%d%d%d", r->tiles[0], r->tiles[1], r->tiles[2]);
        else if (r->wino) snprintf(mark, sizeof mark, " w%d%d", r->tiles[0], r->tiles[1]);
        else if (r->planar_in) snprintf(mark, sizeof mark, " p");
        snprintf(shape, sizeof shape, "%d->%d %dx%d/%d %dx%d%s", c->in_c, c->out_c, c->k, c->k,
                 c->stride, c->in_h, c->in_w, mark);
        double gf = bench_conv_gflop(c, bs->batch), mine = 0;
        int star = r->dx_count < r->count;
        starred |= star;
        printf("%-3d %-24s %5d %8.3f", i + 1, shape, r->count, gf);
        for (int d = 0; d < N_DIRS; d++)
            mine += (d == DIR_BACKWARD_DATA ? r->dx_count : r->count) * row_ms(r, d);
        for (int d = 0; d < N_TIMED; d++) {
            double ms = row_ms(r, d);
            if (d == DIR_FORWARD_BLOCKED) printf(" | %5.1f%%", all > 0 ? 100 * mine / all : 0);
            printf(" | %8.3f %7.1f %3.0f%%%s", ms, gf / (ms / 1e3), 100 * gf / (ms / 1e3) / bs->peak,
                   (d == DIR_BACKWARD_DATA || d == DIR_BACKWARD_DATA_BLOCKED) && star ? "*" : "");
        }
        printf(" |\n");
    }
    printf("\nthe network's convolutions (count x each), per batch:\n");
    for (int d = 0; d < N_DIRS; d++)
        printf("  %-16s %9.2f ms  %7.1f GFLOP/s\n", DIR_KEY[d], total[d],
               total[d] > 0 ? flop[d] / (total[d] / 1e3) : 0);
    printf("  %-16s %9.2f ms  %7.1f GFLOP/s\n", "training step", all,
           all > 0 ? (flop[0] + flop[1] + flop[2]) / (all / 1e3) : 0);
    for (int d = DIR_FORWARD_BLOCKED; d < N_TIMED; d++) {
        const int planar = d - DIR_FORWARD_BLOCKED;
        double blocked = 0;
        for (int i = 0; i < n_rows; i++)
            blocked += (planar == DIR_BACKWARD_DATA ? rows[i].dx_count : rows[i].count) * row_ms(&rows[i], d);
        printf("  %-16s %9.2f ms  %7.1f GFLOP/s  (%.2fx the planar pass's time)\n", DIR_KEY[d],
               blocked, blocked > 0 ? flop[planar] / (blocked / 1e3) : 0,
               blocked > 0 ? total[planar] / blocked : 0);
    }
    printf("share: of the training step's convolution time (count x all three); peak: of the FMA "
           "peak;\nblocked: on channel-blocked tensors (NCHW%dc), by the kernels training on "
           "blocks runs; each forward packs its weights, as a training step must; W: all three "
           "blocked passes by Winograd, w: forward and backward-data, with output tiles of the "
           "digits' size in that order (2: F(2x2, 3x3), 4: F(4x4, 3x3), 0: the direct kernel; "
           "GFLOP/s and peak count direct multiply-adds); p: the network's first convolution, "
           "whose blocked forward and weight gradient read the planar images, as training's "
           "do\n", rn_blk_lanes());
    if (starred)
        printf("*: holds the network's first convolution, whose input gradient training never "
               "computes (left out of the totals)\n");
}

static int bench_kernels(rn_net *net, bench_settings *bs)
{
    if (!bs->threads) bs->threads = omp_get_max_threads();
    bs->peak = rn_convb_fma_peak(bs->threads, 0.5);
    int n_convs = rn_net_num_convs(net), n_rows = 0, rc = 0;
    kernel_row *rows = calloc(n_convs ? (size_t)n_convs : 1, sizeof *rows);
    if (!rows) return cli_error("out of memory");
    for (int i = 0; i < n_convs && !rc; i++) {
        rn_conv_info c;
        if (rn_net_conv_info(net, i, &c)) {
            rc = cli_lib_error("convolution info");
            break;
        }
        int j = 0;
        while (j < n_rows && !same_shape(&rows[j].info, &c)) j++;
        if (j == n_rows) rows[n_rows++].info = c;
        rows[j].count++;
        rows[j].dx_count += i > 0;
    }
    rn_net_options o;
    rn_net_get_options(net, &o);
    const int progress = !bs->json && isatty(STDERR_FILENO);
    for (int i = 0; i < n_rows && !rc; i++) {
        if (progress) fprintf(stderr, "\r[%d/%d] %-40s", i + 1, n_rows, rows[i].info.name);
        rc = time_kernel(&rows[i], bs, o.seed ^ (0x6b65726eULL + (uint64_t)i));
    }
    if (progress) fprintf(stderr, "\r%*s\r", 50, "");
    if (!rc) {
        if (bs->json) rc = kernels_json(net, bs, rows, n_rows);
        else kernels_table(net, bs, rows, n_rows);
    }
    for (int i = 0; i < n_rows; i++)
        for (int d = 0; d < N_TIMED; d++) free(rows[i].ms[d]);
    free(rows);
    return rc;
}

int cmd_bench(int argc, char **argv)
{
    cli_net_args a;
    cli_net_args_init(&a);
    int batch = 0, threads = 0, warmup = 2, iters = 10;
    double max_seconds = 0;
    int mode = MODE_NONE, json = 0, kernels = 0, no_freeze = 0, planar = 0, layers = 0;
    const cli_opt opts[] = {
        {"--mode", "train|infer", CLI_CUSTOM, &mode, 0, 0, set_mode,
         "train: rn_net_train_step + rn_sgd_step (lr 0.01, momentum 0.9, weight decay 1e-4); "
         "infer: rn_net_forward in evaluation mode, the network frozen for inference "
         "(rn_net_freeze: BN folded into the convolutions, weights packed once, before the clock "
         "starts)", NULL},
        {"--no-freeze", NULL, CLI_FLAG, &no_freeze, 0, 0, NULL,
         "with --mode infer: the plain evaluation forward, not frozen", NULL},
        {"--layers", NULL, CLI_FLAG, &layers, 0, 0, NULL,
         "with --mode infer: where the time goes, a row per convolution of the frozen network "
         "(its mean time a call over the timed steps, GFLOP/s and share of the FMA peak, share "
         "of the forward's time)", NULL},
        {"--planar", NULL, CLI_FLAG, &planar, 0, 0, NULL,
         "with --mode train: on planar activations (default: as `resnet train` runs, on "
         "channel-blocked ones where that is faster on this CPU, rn_net_set_blocked)", NULL},
        {"--kernels", NULL, CLI_FLAG, &kernels, 0, 0, NULL,
         "the kernel table: every distinct convolution shape of the network and its count, each "
         "timed alone at the batch size: forward, backward-data (input gradient only) and "
         "backward-weights (weight gradient only); warm-up, iterations and time limit apply to "
         "each of those", NULL},
        {"--batch", "N", CLI_INT, &batch, 1, 65536, NULL, "images per step (required)", NULL},
        {"--threads", "T", CLI_INT, &threads, 1, 1024, NULL,
         "OpenMP threads (default: as the environment sets them)", NULL},
        {"--warmup", "W", CLI_INT, &warmup, 0, 1000000, NULL, "untimed steps first (default 2)", NULL},
        {"--iters", "K", CLI_INT, &iters, 1, 1000000, NULL, "timed steps (default 10)", NULL},
        {"--max-seconds", "S", CLI_NUMBER, &max_seconds, 1e-9, 1e9, NULL,
         "stop timing after S seconds once 3 steps are timed, or after 3 x S seconds whatever "
         "the count (default: no limit)", NULL},
        {"--json", NULL, CLI_FLAG, &json, 0, 0, NULL,
         "one JSON object: ms_per_batch (median), ms_min, ms_max, images_per_s, gflop_per_s, the "
         "per-step times and the settings; with --kernels, the settings and an array `rows`, one "
         "per shape", NULL},
        {NULL, NULL, CLI_FLAG, NULL, 0, 0, NULL, NULL, NULL},
    };
    const cli_verb verb = {.usage = usage_text, .opts = opts, .net = &a, .footer = footer_text};
    int r = cli_parse(&verb, argc, argv);
    if (r) return r < 0 ? 0 : r;
    const int freeze = !no_freeze;
    if (kernels && mode != MODE_NONE) return cli_error("bench: --kernels takes no --mode") + 1;
    if (!kernels && mode == MODE_NONE)
        return cli_error("bench: give --mode train, --mode infer or --kernels") + 1;
    if (!batch) return cli_error("bench: give --batch N (images per step)") + 1;
    if (layers && (mode != MODE_INFER || no_freeze))
        return cli_error("bench: --layers times a frozen network: give --mode infer, without "
                         "--no-freeze") + 1;
    if (threads) {
        omp_set_num_threads((int)threads);
    }

    rn_net *net;
    if (cli_open_net(&a, &net)) return 1;
    if (kernels) {
        bench_settings bs = {batch, threads, warmup, iters, max_seconds, json, 0.0};
        int krc = bench_kernels(net, &bs);
        rn_net_free(net);
        return krc;
    }
    rn_net_options o;
    rn_net_get_options(net, &o);
    size_t per_image = (size_t)o.in_c * o.in_h * o.in_w, len = (size_t)batch * per_image;
    float *x = malloc(len * sizeof(float));
    float *logits = malloc((size_t)batch * o.classes * sizeof(float));
    int *labels = malloc((size_t)batch * sizeof(int));
    double *times = malloc((size_t)iters * sizeof(double));
    rn_sgd *sgd = NULL;
    int rc = 0;
    if (!x || !logits || !labels || !times) rc = cli_error("out of memory");
    if (!rc && mode == MODE_TRAIN && rn_sgd_create(&sgd, net, MOMENTUM, WEIGHT_DECAY, 0))
        rc = cli_lib_error("sgd");
    if (!rc && mode == MODE_INFER && freeze && rn_net_freeze(net, 1)) rc = cli_lib_error("freeze");
    if (!rc && mode == MODE_TRAIN && rn_net_set_blocked(net, planar ? 0 : -1))
        rc = cli_lib_error("layout");
    if (!rc) {
        rn_rng rng;
        rn_rng_seed(&rng, o.seed ^ 0xbe9c4);
        for (size_t i = 0; i < len; i++) x[i] = rn_rng_normal(&rng);
        for (long i = 0; i < batch; i++) labels[i] = (int)rn_rng_below(&rng, (uint32_t)o.classes);
    }

    float loss = 0;
    int timed = 0;
    double spent = 0;
    for (long it = 0; !rc && it < warmup + iters; it++) {
        if (layers && it == warmup) rn_net_profile_convs(net, 1);
        double t0 = rn_clock_s();
        if (mode == MODE_TRAIN) {
            if (rn_net_train_step(net, x, labels, (int)batch, &loss)) rc = cli_lib_error("train step");
            else if (rn_sgd_step(sgd, net, LR)) rc = cli_lib_error("sgd step");
        } else if (rn_net_forward(net, x, (int)batch, 0, logits)) rc = cli_lib_error("forward");
        double dt = rn_clock_s() - t0;
        if (it < warmup) continue;
        times[timed++] = dt;
        spent += dt;
        /* A time limit: stop once 3 steps are timed, or regardless after 3x the limit. */
        if (max_seconds > 0 && ((spent >= max_seconds && timed >= 3) || spent >= 3 * max_seconds))
            break;
    }

    rn_net_profile_convs(net, 0);
    if (!rc) {
        qsort(times, (size_t)timed, sizeof *times, cmp_double);
        double med = median_of(times, timed);
        double macs = (double)rn_net_macs(net);
        double flop_per_image = 2.0 * macs * (mode == MODE_TRAIN ? 3 : 1);
        double ips = (double)batch / med, gflops = flop_per_image * (double)batch / med / 1e9;
        int omp_threads = omp_get_max_threads();
        const char *train_name = rn_net_blocked(net) ? "train (blocked)" : "train (planar)";
        const char *mode_name = mode == MODE_TRAIN  ? train_name
                                : rn_net_frozen(net) ? "infer (frozen)"
                                                     : "infer";
        if (json) {
            cJSON *root = cJSON_CreateObject();
            cJSON_AddStringToObject(root, "arch", rn_net_arch(net));
            cJSON_AddStringToObject(root, "mode", mode == MODE_TRAIN ? "train" : "infer");
            cJSON_AddNumberToObject(root, "batch", (double)batch);
            int shape[3] = {o.in_c, o.in_h, o.in_w};
            cJSON_AddItemToObject(root, "input", cJSON_CreateIntArray(shape, 3));
            cJSON_AddNumberToObject(root, "classes", o.classes);
            cJSON_AddNumberToObject(root, "threads", (double)threads);
            cJSON_AddNumberToObject(root, "omp_threads", omp_threads);
            cJSON_AddNumberToObject(root, "warmup", (double)warmup);
            cJSON_AddNumberToObject(root, "iters", timed);
            cJSON_AddNumberToObject(root, "ms_per_batch", 1e3 * med);
            cJSON_AddNumberToObject(root, "ms_min", 1e3 * times[0]);
            cJSON_AddNumberToObject(root, "ms_max", 1e3 * times[timed - 1]);
            cJSON_AddNumberToObject(root, "images_per_s", ips);
            cJSON_AddNumberToObject(root, "macs_per_image", macs);
            cJSON_AddNumberToObject(root, "gflop_per_batch", flop_per_image * (double)batch / 1e9);
            cJSON_AddNumberToObject(root, "gflop_per_s", gflops);
            cJSON_AddNumberToObject(root, "max_rss_mb", max_rss_mb());
            if (mode == MODE_TRAIN) cJSON_AddNumberToObject(root, "last_loss", loss);
            if (mode == MODE_TRAIN)
                cJSON_AddStringToObject(root, "layout", rn_net_blocked(net) ? "blocked" : "planar");
            else cJSON_AddBoolToObject(root, "frozen", rn_net_frozen(net));
            cJSON *arr = cJSON_CreateArray();
            for (int i = 0; i < timed; i++) cJSON_AddItemToArray(arr, cJSON_CreateNumber(1e3 * times[i]));
            cJSON_AddItemToObject(root, "ms_sorted", arr);
            if (layers) rc = bench_layers_report(net, (int)batch, omp_threads, spent, timed, root);
            char *text = cJSON_PrintUnformatted(root);
            if (text) puts(text);
            else rc = cli_error("out of memory");
            free(text);
            cJSON_Delete(root);
        } else {
            printf("bench %s %s: batch %d, input %dx%dx%d, %d classes; %d threads; "
                   "%d warm-up + %d timed steps\n",
                   rn_net_arch(net), mode_name, batch, o.in_c, o.in_h, o.in_w, o.classes,
                   omp_threads, warmup, timed);
            printf("  ms/batch  median %.2f  min %.2f  max %.2f\n", 1e3 * med, 1e3 * times[0],
                   1e3 * times[timed - 1]);
            printf("  images/s  %.1f\n", ips);
            printf("  GFLOP/s   %.2f  (%.4f GFLOP per image: %s2 x %.2f M multiply-adds)\n", gflops,
                   flop_per_image / 1e9, mode == MODE_TRAIN ? "3 x " : "", macs / 1e6);
            printf("  peak RSS  %.0f MB\n", max_rss_mb());
            if (mode == MODE_TRAIN) printf("  last loss %.4f\n", (double)loss);
            if (layers) rc = bench_layers_report(net, (int)batch, omp_threads, spent, timed, NULL);
        }
    }
    rn_sgd_free(sgd);
    free(times);
    free(labels);
    free(logits);
    free(x);
    rn_net_free(net);
    return rc;
}
