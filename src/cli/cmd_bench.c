/* resnet bench: how fast this engine trains or runs a network, alone, through the public API.
 *
 * train: rn_net_train_step (zero_grad + forward + backward) + rn_sgd_step (momentum 0.9,
 *        weight decay 1e-4), per batch; infer: rn_net_forward in evaluation mode, per batch.
 * Input is standard-normal and labels uniform, drawn from --seed. Reports the median (min, max)
 * milliseconds per batch over the timed iterations, images/s and GFLOP/s, counting
 * 2 x rn_net_macs per image for a forward pass and 3 x that for a training step. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include <cjson/cJSON.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "cli/cli.h"
#include "core/rng.h"

enum { MODE_NONE, MODE_TRAIN, MODE_INFER };

static const float LR = 0.01f, MOMENTUM = 0.9f, WEIGHT_DECAY = 1e-4f;

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

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

static void usage_text(void)
{
    puts("usage: resnet bench (--arch NAME | --model FILE) [network options] --batch N\n"
         "                    --mode train|infer [--input CxHxW] [--threads T] [--warmup W]\n"
         "                    [--iters K] [--max-seconds S] [--json]\n"
         "Times this engine alone on random data (from --seed):\n"
         "  train  rn_net_train_step + rn_sgd_step (lr 0.01, momentum 0.9, weight decay 1e-4)\n"
         "  infer  rn_net_forward in evaluation mode\n"
         "--batch N        images per step (required)\n"
         "--input CxHxW    input shape (default: the network's)\n"
         "--threads T      OpenMP and OpenBLAS threads (default: as the environment sets them)\n"
         "--warmup W       untimed steps first (default 2)\n"
         "--iters K        timed steps (default 10)\n"
         "--max-seconds S  stop timing after S seconds once 3 steps are timed, or after 3 x S\n"
         "                 seconds whatever the count (default: no limit)\n"
         "--json           one JSON object: ms_per_batch (median), ms_min, ms_max, images_per_s,\n"
         "                 gflop_per_s, the per-step times and the settings\n"
         "GFLOP counts 2 x multiply-adds per image for a forward pass, 3 x that for a training step.");
}

int cmd_bench(int argc, char **argv)
{
    cli_net_args a;
    cli_net_args_init(&a);
    long batch = 0, threads = 0, warmup = 2, iters = 10;
    double max_seconds = 0;
    int mode = MODE_NONE, json = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--input")) argv[i] = "--input-shape"; /* bench takes a shape */
        int r = cli_net_arg(&a, argc, argv, &i);
        if (r < 0) return 2;
        if (r) continue;
        const char *o = argv[i], *v;
        if (!strcmp(o, "--json")) json = 1;
        else if (!strcmp(o, "--help")) {
            usage_text();
            return 0;
        } else if (!strcmp(o, "--batch") || !strcmp(o, "--threads") || !strcmp(o, "--warmup") ||
                   !strcmp(o, "--iters") || !strcmp(o, "--mode") || !strcmp(o, "--max-seconds")) {
            if (!(v = cli_value(argc, argv, &i))) return 2;
            if (!strcmp(o, "--batch")) {
                if (cli_parse_int(o, v, 1, 65536, &batch)) return 2;
            } else if (!strcmp(o, "--threads")) {
                if (cli_parse_int(o, v, 1, 1024, &threads)) return 2;
            } else if (!strcmp(o, "--warmup")) {
                if (cli_parse_int(o, v, 0, 1000000, &warmup)) return 2;
            } else if (!strcmp(o, "--iters")) {
                if (cli_parse_int(o, v, 1, 1000000, &iters)) return 2;
            } else if (!strcmp(o, "--max-seconds")) {
                char *end;
                max_seconds = strtod(v, &end);
                if (end == v || *end || !(max_seconds > 0 && max_seconds < 1e9))
                    return cli_error("--max-seconds: expected a positive number, got '%s'", v) + 1;
            } else if (!strcmp(v, "train")) mode = MODE_TRAIN;
            else if (!strcmp(v, "infer")) mode = MODE_INFER;
            else return cli_error("--mode: expected train or infer, got '%s'", v) + 1;
        } else return cli_error("bench: unknown option '%s'", o) + 1;
    }
    if (mode == MODE_NONE) return cli_error("bench: give --mode train or --mode infer") + 1;
    if (!batch) return cli_error("bench: give --batch N (images per step)") + 1;
    if (threads) {
        omp_set_num_threads((int)threads);
    }

    rn_net *net;
    if (cli_open_net(&a, &net)) return 1;
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
        double t0 = now_s();
        if (mode == MODE_TRAIN) {
            if (rn_net_train_step(net, x, labels, (int)batch, &loss)) rc = cli_lib_error("train step");
            else if (rn_sgd_step(sgd, net, LR)) rc = cli_lib_error("sgd step");
        } else if (rn_net_forward(net, x, (int)batch, 0, logits)) rc = cli_lib_error("forward");
        double dt = now_s() - t0;
        if (it < warmup) continue;
        times[timed++] = dt;
        spent += dt;
        /* A time limit: stop once 3 steps are timed, or regardless after 3x the limit. */
        if (max_seconds > 0 && ((spent >= max_seconds && timed >= 3) || spent >= 3 * max_seconds))
            break;
    }

    if (!rc) {
        qsort(times, (size_t)timed, sizeof *times, cmp_double);
        double med = median_of(times, timed);
        double macs = (double)rn_net_macs(net);
        double flop_per_image = 2.0 * macs * (mode == MODE_TRAIN ? 3 : 1);
        double ips = (double)batch / med, gflops = flop_per_image * (double)batch / med / 1e9;
        int omp_threads = omp_get_max_threads();
        const char *mode_name = mode == MODE_TRAIN ? "train" : "infer";
        if (json) {
            cJSON *root = cJSON_CreateObject();
            cJSON_AddStringToObject(root, "arch", rn_net_arch(net));
            cJSON_AddStringToObject(root, "mode", mode_name);
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
            cJSON *arr = cJSON_CreateArray();
            for (int i = 0; i < timed; i++) cJSON_AddItemToArray(arr, cJSON_CreateNumber(1e3 * times[i]));
            cJSON_AddItemToObject(root, "ms_sorted", arr);
            char *text = cJSON_PrintUnformatted(root);
            if (text) puts(text);
            else rc = cli_error("out of memory");
            free(text);
            cJSON_Delete(root);
        } else {
            printf("bench %s %s: batch %ld, input %dx%dx%d, %d classes; %d threads; "
                   " %ld warm-up + %d timed steps\n",
                   rn_net_arch(net), mode_name, batch, o.in_c, o.in_h, o.in_w, o.classes,
                   omp_threads, warmup, timed);
            printf("  ms/batch  median %.2f  min %.2f  max %.2f\n", 1e3 * med, 1e3 * times[0],
                   1e3 * times[timed - 1]);
            printf("  images/s  %.1f\n", ips);
            printf("  GFLOP/s   %.2f  (%.4f GFLOP per image: %s2 x %.2f M multiply-adds)\n", gflops,
                   flop_per_image / 1e9, mode == MODE_TRAIN ? "3 x " : "", macs / 1e6);
            printf("  peak RSS  %.0f MB\n", max_rss_mb());
            if (mode == MODE_TRAIN) printf("  last loss %.4f\n", (double)loss);
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
