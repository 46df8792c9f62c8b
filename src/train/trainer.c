#define _POSIX_C_SOURCE 200809L /* clock_gettime, fsync */
/* The trainer (see trainer.h). */
#include "train/trainer.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/atomic_file.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/json_check.h"
#include "dist/dist.h"
#include "nn/data_parallel.h"
#include "train/checkpoint.h"
#include "train/evaluate.h"
#include "train/loader.h"

/* Seeds of the independent random streams, all derived from the one --seed. */
#define SEED_LOADER 0x6c6f61646572ULL /* "loader" */
#define SEED_SPLIT 0x73706c6974ULL    /* "split" */

/* ---- configuration -------------------------------------------------------------------------- */
void rn_train_config_augment(const rn_train_config *cfg, int w, int *crop_pad, int *flip)
{
    rn_loader_default_augment(cfg->data, w, crop_pad, flip);
    if (cfg->crop_pad >= 0) *crop_pad = cfg->crop_pad;
    if (cfg->flip >= 0) *flip = cfg->flip;
}

/* ---- data ------------------------------------------------------------------------------------ */
int rn_train_load_data(const rn_train_config *cfg, rn_dataset **train, rn_dataset **eval,
                       const char **eval_name)
{
    *train = *eval = NULL;
    *eval_name = "";
    rn_data_source src;
    rn_data_source_init(&src, cfg->data, cfg->data_dir[0] ? cfg->data_dir : NULL);
    src.c = cfg->in_c, src.h = cfg->in_h, src.w = cfg->in_w;
    rn_dataset *all = NULL, *test = NULL;
    int st = rn_dataset_load(&all, &src, RN_SPLIT_TRAIN);
    if (!st && cfg->subset && cfg->subset < all->n) {
        rn_dataset *sub;
        st = rn_dataset_subset(&sub, all, 0, cfg->subset);
        rn_dataset_free(all);
        all = st ? NULL : sub;
    }
    if (!st && cfg->val) {
        if (cfg->val >= all->n) {
            st = rn_fail(RN_ERR_ARG, "--val %d leaves no training images (the training set has %d)",
                         cfg->val, all->n);
        } else {
            rn_dataset *tr, *va;
            st = rn_dataset_split(all, cfg->val, cfg->seed ^ SEED_SPLIT, &tr, &va);
            if (!st) {
                rn_dataset_free(all);
                all = tr;
                *eval = va;
                *eval_name = "val";
            }
        }
    } else if (!st && rn_dataset_has_split(&src, RN_SPLIT_TEST)) {
        st = rn_dataset_load(&test, &src, RN_SPLIT_TEST);
        if (!st && cfg->subset && cfg->subset < test->n) {
            rn_dataset *sub;
            st = rn_dataset_subset(&sub, test, 0, cfg->subset);
            rn_dataset_free(test);
            test = st ? NULL : sub;
        }
        if (!st) {
            *eval = test;
            *eval_name = "test";
        }
    }
    if (st) {
        rn_dataset_free(all);
        rn_dataset_free(*eval);
        *eval = NULL;
        return st;
    }
    *train = all;
    return RN_OK;
}

/* ---- the trainer ----------------------------------------------------------------------------- */
struct rn_trainer {
    rn_train_config cfg;
    char dir[RN_TRAIN_PATH_MAX];
    char checkpoint_path[RN_TRAIN_PATH_MAX + 32], metrics_path[RN_TRAIN_PATH_MAX + 32],
        model_path[RN_TRAIN_PATH_MAX + 32];
    const rn_dataset *train, *eval;
    const char *eval_name;
    rn_net *net;
    rn_sgd *sgd;
    rn_loader *loader;
    rn_schedule sched;
    int batches;      /* per epoch */
    long total_steps;
    float *logits;    /* [batch, classes] */
    float *accum;     /* gradient sum over micro-batches (accum > 1) */
    int classes;
    rn_train_state s;
    cJSON *metrics;   /* array of the metrics.jsonl lines (strings) */
    int restored;
    /* A run or a restore failed part-way (the network, its statistics or the position may have
     * moved without the checkpoint): runs are refused until a restore succeeds. */
    int failed;
    /* Data parallelism (one of `size` processes, each with its slice of every batch); size 1
     * leaves everything below unused. Only rank 0 writes files. */
    rn_dist *dist;
    int rank, size;
    rn_bn_allsum bn;     /* sync batch norm's sums over the processes (not with --bn local) */
    float *buffers;      /* --bn local: the running statistics, averaged over the processes */
    size_t n_buffers;
    rn_dataset *eval_part; /* this process's share of the evaluation set (NULL: none) */
    int stop_agreed;     /* a process was asked to stop: all stop at the same step */
    double comm_mark;    /* rn_dist_comm_seconds at the start of the epoch */
    /* The gradients' sum in buckets while the backward goes on: block_lo[i], where block i's
     * parameters start (the blocks' are one range, in order, after the stem's and before the
     * head's); the gradients [sent, params) are queued. n_blocks 0: one sum after the backward. */
    size_t *block_lo;
    int n_blocks;
    size_t sent;
    int hook_st;
};

rn_net *rn_trainer_net(rn_trainer *t) { return t->net; }

void rn_trainer_free(rn_trainer *t)
{
    if (!t) return;
    rn_loader_free(t->loader);
    rn_sgd_free(t->sgd);
    rn_net_free(t->net);
    rn_dataset_free(t->eval_part);
    free(t->block_lo);
    free(t->bn.buf);
    free(t->buffers);
    free(t->logits);
    free(t->accum);
    cJSON_Delete(t->metrics);
    free(t);
}

int rn_trainer_create(rn_trainer **out, const rn_train_config *cfg, const char *run_dir,
                      const rn_dataset *train, const rn_dataset *eval, const char *eval_name)
{
    return rn_trainer_create_dist(out, cfg, run_dir, train, eval, eval_name, NULL);
}

/* ---- data parallelism ------------------------------------------------------------------------ */
static void bn_sum(void *ctx, double *buf, int n)
{
    /* a failure of MPI ends the job (dist.h); memory for its scratch was reserved up front */
    (void)rn_dist_sum_double(ctx, buf, (size_t)n);
}

/* Gradients of at least this many floats go as one bucket (a block's are never split). */
#define BUCKET_FLOATS 65536

/* After block i's backward its gradients, and those of every block after it and of the head,
 * are final: queued as one bucket once they make BUCKET_FLOATS. Where buckets begin depends on
 * the network alone, so the sums' order of additions does too. */
static void block_grads_done(void *ctx, int block)
{
    rn_trainer *t = ctx;
    const size_t lo = t->block_lo[block];
    if (t->hook_st || block == 0 || t->sent - lo < BUCKET_FLOATS) {
        if (!t->hook_st) t->hook_st = rn_dist_sum_progress(t->dist);
        return;
    }
    t->hook_st = rn_dist_sum_start(t->dist, rn_net_grads(t->net) + lo, t->sent - lo);
    t->sent = lo;
}

/* Buckets need the blocks' parameters in order, one range after another; otherwise the
 * gradients are summed in one piece after the backward. */
static int setup_buckets(rn_trainer *t)
{
    const int n = rn_net_num_blocks(t->net);
    if (n < 1 || n + 2 >= RN_DIST_MAX_QUEUED) return RN_OK;
    t->block_lo = malloc((size_t)n * sizeof *t->block_lo);
    if (!t->block_lo) return rn_fail(RN_ERR_NOMEM, "out of memory");
    size_t prev_hi = 0;
    for (int i = 0; i < n; i++) {
        size_t lo, hi;
        if (rn_net_block_param_range(t->net, i, &lo, &hi) || (i && lo != prev_hi)) {
            rn_clear_error();
            free(t->block_lo);
            t->block_lo = NULL;
            return RN_OK;
        }
        t->block_lo[i] = lo;
        prev_hi = hi;
    }
    t->n_blocks = n;
    rn_net_set_block_grads_hook(t->net, block_grads_done, t);
    return rn_dist_sum_reserve(t->dist, rn_net_num_params(t->net));
}

/* What a run of several processes needs that one process does not: refusals of what it cannot
 * split, this process's share of the evaluation set, the sums of sync batch norm, the buffer of
 * --bn local's running statistics. Local: no message is exchanged. */
static int setup_parallel(rn_trainer *t, const rn_train_config *cfg)
{
    const int p = t->size;
    if (cfg->batch % p)
        return rn_fail(RN_ERR_ARG, "--batch %d does not split evenly over %d processes: give a "
                                   "multiple of %d",
                       cfg->batch, p, p);
    const int last = t->train->n % cfg->batch;
    if (last && last < p)
        return rn_fail(RN_ERR_ARG, "the last batch of each epoch would have %d image%s (%d training "
                                   "images in batches of %d), fewer than the %d processes: change "
                                   "--batch or --subset",
                       last, last == 1 ? "" : "s", t->train->n, cfg->batch, p);
    if (cfg->accum > 1)
        return rn_fail(RN_ERR_ARG, "--accum %d: gradient accumulation does not run over several "
                                   "processes (each already holds 1/%d of the batch)",
                       cfg->accum, p);
    int st = RN_OK;
    if (t->eval) {
        const long n = t->eval->n, lo = n * t->rank / p, hi = n * (t->rank + 1) / p;
        if (hi > lo) {
            st = rn_dataset_subset(&t->eval_part, t->eval, (int)lo, (int)(hi - lo));
            if (st) return st;
        }
    }
    st = setup_buckets(t);
    if (st) return st;
    if (!cfg->bn_local) {
        t->bn.cap = 2 * rn_net_max_bn_channels(t->net) + 1;
        t->bn.buf = malloc((size_t)t->bn.cap * sizeof *t->bn.buf);
        if (!t->bn.buf) return rn_fail(RN_ERR_NOMEM, "out of memory");
        t->bn.sum = bn_sum;
        t->bn.ctx = t->dist;
        rn_net_set_bn_allsum(t->net, &t->bn);
    } else {
        for (int i = 0; i < rn_net_num_tensors(t->net); i++) {
            rn_tensor_info info;
            rn_net_tensor(t->net, i, &info);
            if (info.kind == RN_TENSOR_BUFFER) t->n_buffers += info.numel;
        }
        t->buffers = malloc((t->n_buffers + 1) * sizeof *t->buffers);
        if (!t->buffers) return rn_fail(RN_ERR_NOMEM, "out of memory");
    }
    return RN_OK;
}

/* --bn local: every process's running statistics become their mean over the processes (the
 * same bits on each), so that evaluation and checkpoints do not depend on the rank. */
static int average_buffers(rn_trainer *t)
{
    size_t off = 0;
    for (int pass = 0; pass < 2; pass++) {
        off = 0;
        for (int i = 0; i < rn_net_num_tensors(t->net); i++) {
            rn_tensor_info info;
            rn_net_tensor(t->net, i, &info);
            if (info.kind != RN_TENSOR_BUFFER) continue;
            for (size_t j = 0; j < info.numel; j++) {
                if (pass == 0) t->buffers[off + j] = info.data[j];
                else info.data[j] = t->buffers[off + j] / (float)t->size;
            }
            off += info.numel;
        }
        if (pass == 0) {
            int st = rn_dist_sum_float(t->dist, t->buffers, off);
            if (st) return st;
        }
    }
    return RN_OK;
}

/* A hash of every tensor of the network (parameters, buffers, counters). */
static uint64_t net_hash(const rn_net *net)
{
    uint64_t h = RN_DIST_HASH_INIT;
    for (int i = 0; i < rn_net_num_tensors(net); i++) {
        rn_tensor_info info;
        rn_net_tensor(net, i, &info);
        if (info.data) h = rn_dist_hash(h, info.data, info.numel * sizeof *info.data);
        if (info.i64) h = rn_dist_hash(h, info.i64, info.numel * sizeof *info.i64);
    }
    return h;
}

static uint64_t data_hash(uint64_t h, const rn_dataset *d)
{
    if (!d) return rn_dist_hash(h, "none", 4);
    const int shape[5] = {d->n, d->c, d->h, d->w, d->classes};
    h = rn_dist_hash(h, shape, sizeof shape);
    h = rn_dist_hash(h, d->pixels, (size_t)d->n * d->c * d->h * d->w);
    return rn_dist_hash(h, d->labels, (size_t)d->n * sizeof *d->labels);
}

int rn_trainer_check_ranks(rn_trainer *t, const char *when)
{
    if (t->size == 1) return RN_OK;
    int same;
    int st = rn_dist_same_u64(t->dist, net_hash(t->net), &same);
    if (!st && !same)
        st = rn_fail(RN_ERR_MISMATCH, "%s: the %d processes' networks differ (weights, batch norm "
                                      "statistics or counters)",
                     when, t->size);
    return st;
}

/* Before the first step: the same configuration, the same data and the same starting state on
 * every process, or none of them starts. The thread count may differ, and so may the data's
 * folder (machines may keep it in different places): its contents are compared instead. */
static int check_same_start(rn_trainer *t)
{
    rn_train_config c = t->cfg;
    c.threads = 0;
    c.data_dir[0] = 0;
    char *json = rn_train_config_to_json(&c);
    if (!json) return rn_fail(RN_ERR_NOMEM, "out of memory");
    uint64_t h = rn_dist_hash(RN_DIST_HASH_INIT, json, strlen(json));
    free(json);
    int same;
    int st = rn_dist_same_u64(t->dist, h, &same);
    if (!st && !same)
        return rn_fail(RN_ERR_MISMATCH, "the %d processes were started with different training "
                                        "options: every process must run the same command",
                       t->size);
    h = data_hash(data_hash(RN_DIST_HASH_INIT, t->train), t->eval);
    if (!st) st = rn_dist_same_u64(t->dist, h, &same);
    if (!st && !same)
        return rn_fail(RN_ERR_MISMATCH, "the %d processes read different data (images, labels or "
                                        "their number differ): give every process the same files",
                       t->size);
    h = rn_dist_hash(RN_DIST_HASH_INIT, &t->s.step, sizeof t->s.step);
    if (!st) st = rn_dist_same_u64(t->dist, h, &same);
    if (!st && !same)
        return rn_fail(RN_ERR_MISMATCH, "the %d processes start from different positions (their "
                                        "checkpoints differ)",
                       t->size);
    return st ? st : rn_trainer_check_ranks(t, "at the start");
}

int rn_trainer_create_dist(rn_trainer **out, const rn_train_config *cfg, const char *run_dir,
                           const rn_dataset *train, const rn_dataset *eval, const char *eval_name,
                           rn_dist *dist)
{
    *out = NULL;
    int st = rn_train_config_check(cfg);
    if (st) return st;
    if (strlen(run_dir) >= RN_TRAIN_PATH_MAX) return rn_fail(RN_ERR_ARG, "run folder name too long");
    if (train->n < 1) return rn_fail(RN_ERR_ARG, "the training set is empty");
    if (cfg->in_c > 0 && (cfg->in_c != train->c || cfg->in_h != train->h || cfg->in_w != train->w))
        return rn_fail(RN_ERR_MISMATCH, "--input-shape %dx%dx%d does not fit the data's %dx%dx%d images",
                       cfg->in_c, cfg->in_h, cfg->in_w, train->c, train->h, train->w);
    if (train->c > RN_MAX_INPUT_CHANNELS)
        return rn_fail(RN_ERR_ARG, "images with %d channels: at most %d", train->c,
                       RN_MAX_INPUT_CHANNELS);
    rn_trainer *t = calloc(1, sizeof *t);
    if (!t) return rn_fail(RN_ERR_NOMEM, "out of memory");
    t->cfg = *cfg;
    snprintf(t->dir, sizeof t->dir, "%s", run_dir);
    snprintf(t->checkpoint_path, sizeof t->checkpoint_path, "%s/checkpoint.safetensors", run_dir);
    snprintf(t->metrics_path, sizeof t->metrics_path, "%s/metrics.jsonl", run_dir);
    snprintf(t->model_path, sizeof t->model_path, "%s/model.safetensors", run_dir);
    t->train = train;
    t->eval = eval;
    t->eval_name = eval ? eval_name : NULL;
    t->classes = train->classes;
    t->dist = dist;
    t->rank = rn_dist_rank(dist);
    t->size = rn_dist_size(dist);

    rn_net_options no;
    rn_net_options_init(&no);
    no.classes = train->classes;
    no.in_c = train->c, no.in_h = train->h, no.in_w = train->w;
    no.ordering = cfg->ordering;
    no.shortcut = cfg->shortcut;
    no.zero_init_last_bn = cfg->zero_init_last_bn;
    no.survival_last = cfg->survival_last;
    no.gate_bias = cfg->gate_bias;
    no.seed = cfg->seed;
    float mean[RN_MAX_INPUT_CHANNELS], std[RN_MAX_INPUT_CHANNELS];
    st = rn_net_create(&t->net, cfg->arch, &no);
    /* on channel-blocked activations where that is faster (rn_net_set_blocked) */
    if (!st) st = rn_net_set_blocked(t->net, -1);
    if (!st) st = rn_dataset_stats(train, mean, std);
    if (!st) {
        /* A constant channel (std 0) would divide by zero: leave it unscaled. */
        for (int c = 0; c < train->c; c++)
            if (!(std[c] > 1e-6f)) std[c] = 1.0f;
        st = rn_net_set_normalization(t->net, mean, std);
    }
    if (!st && train->names) st = rn_net_set_labels(t->net, (const char *const *)train->names, train->classes);
    if (!st) st = rn_net_set_label_smoothing(t->net, cfg->label_smoothing);
    if (!st && eval) st = rn_check_data_fits(t->net, eval, eval_name && eval_name[0] ? eval_name : NULL);
    if (!st) st = rn_sgd_create(&t->sgd, t->net, cfg->momentum, cfg->weight_decay, cfg->nesterov);
    if (!st && !cfg->decay_1d) st = rn_sgd_set_decay_1d(t->sgd, t->net, 0);
    if (!st) {
        rn_loader_options lo;
        rn_loader_options_init(&lo, 1);
        lo.batch = cfg->batch;
        rn_train_config_augment(cfg, train->w, &lo.crop_pad, &lo.flip);
        lo.erase = cfg->erase;
        lo.seed = cfg->seed ^ SEED_LOADER;
        lo.mean = mean;
        lo.std = std;
        lo.part = t->rank;
        lo.parts = t->size;
        st = rn_loader_create(&t->loader, train, &lo);
    }
    if (!st && t->size > 1) st = setup_parallel(t, cfg);
    if (!st) {
        t->batches = rn_loader_num_batches(t->loader);
        t->total_steps = (long)t->batches * cfg->epochs;
        long warm = lround((double)cfg->warmup * t->batches);
        rn_train_config_schedule(cfg, &t->sched, t->total_steps, warm);
        st = rn_schedule_check(&t->sched);
    }
    if (!st) {
        t->logits = malloc((size_t)cfg->batch * (size_t)t->classes * sizeof *t->logits);
        if (cfg->accum > 1) t->accum = malloc((rn_net_num_params(t->net) + 1) * sizeof *t->accum);
        t->metrics = cJSON_CreateArray();
        if (!t->logits || (cfg->accum > 1 && !t->accum) || !t->metrics)
            st = rn_fail(RN_ERR_NOMEM, "out of memory");
    }
    if (st) {
        rn_trainer_free(t);
        return st;
    }
    rn_net_get_rng_state(t->net, t->s.rng);
    *out = t;
    return RN_OK;
}

/* ---- files ----------------------------------------------------------------------------------- */
/* metrics.jsonl from the metrics array. */
static int write_metrics_file(rn_trainer *t)
{
    if (t->rank) return RN_OK;
    size_t cap = 64, len = 0;
    char *all = malloc(cap);
    if (!all) return rn_fail(RN_ERR_NOMEM, "out of memory");
    all[0] = 0;
    int st = RN_OK;
    for (int i = 0; !st && i < cJSON_GetArraySize(t->metrics); i++) {
        const char *line = cJSON_GetStringValue(cJSON_GetArrayItem(t->metrics, i));
        size_t l = line ? strlen(line) : 0;
        if (line && len + l + 2 > cap) {
            while (len + l + 2 > cap) cap *= 2;
            char *grown = realloc(all, cap);
            if (grown) all = grown;
            else line = NULL;
        }
        if (!line) {
            st = rn_fail(RN_ERR_NOMEM, "out of memory");
            break;
        }
        memcpy(all + len, line, l);
        all[len + l] = '\n';
        len += l + 1;
        all[len] = 0;
    }
    if (!st) st = rn_atomic_write(t->metrics_path, all, strlen(all));
    free(all);
    return st;
}

static int append_metrics_line(rn_trainer *t, const char *line)
{
    if (t->rank) return RN_OK;
    FILE *f = fopen(t->metrics_path, "a");
    int ok = f && fprintf(f, "%s\n", line) > 0 && fflush(f) == 0;
    int e = errno;
    if (f && fclose(f) != 0 && ok) ok = 0, e = errno; /* the cause is fclose's, not a stale errno */
    if (!ok) return rn_fail(RN_ERR_IO, "%s: cannot append: %s", t->metrics_path, strerror(e));
    return RN_OK;
}

static int save_checkpoint(rn_trainer *t)
{
    if (t->rank) return RN_OK;
    rn_train_state s = t->s;
    s.sgd_started = rn_sgd_started(t->sgd);
    rn_net_get_rng_state(t->net, s.rng);
    char *metrics = cJSON_PrintUnformatted(t->metrics);
    if (!metrics) return rn_fail(RN_ERR_NOMEM, "out of memory");
    int st = rn_checkpoint_save(t->checkpoint_path, t->net, t->sgd, &t->cfg, &s, metrics);
    free(metrics);
    return st;
}

int rn_trainer_restore(rn_trainer *t)
{
    char *metrics = NULL;
    rn_train_state s;
    /* A checkpoint that fails to load changes nothing; one that loads leaves the network ahead
     * of the trainer's position until the rest below is in place. */
    int st = rn_checkpoint_load(t->checkpoint_path, t->net, t->sgd, &s, &metrics);
    if (!st) t->failed = 1;
    if (!st && (s.epoch > t->cfg.epochs || s.batch > t->batches ||
                s.step != (long)s.epoch * t->batches + s.batch))
        st = rn_fail(RN_ERR_MISMATCH,
                     "%s: position (epoch %d, batch %d, step %ld) does not fit this run's %d epochs of %d batches",
                     t->checkpoint_path, s.epoch, s.batch, s.step, t->cfg.epochs, t->batches);
    cJSON *m = NULL;
    if (!st) {
        m = cJSON_Parse(metrics);
        int ok = cJSON_IsArray(m);
        for (int i = 0; ok && i < cJSON_GetArraySize(m); i++) ok = cJSON_IsString(cJSON_GetArrayItem(m, i));
        if (!m && rn_json_valid(metrics))
            st = rn_fail(RN_ERR_NOMEM, "%s: out of memory reading the metrics", t->checkpoint_path);
        else if (!ok)
            st = rn_fail(RN_ERR_FORMAT, "%s: the metrics are not a list of lines", t->checkpoint_path);
    }
    free(metrics);
    if (st) {
        cJSON_Delete(m);
        return st;
    }
    cJSON_Delete(t->metrics);
    t->metrics = m;
    t->s = s;
    t->restored = 1;
    st = write_metrics_file(t);
    t->failed = st != RN_OK;
    return st;
}

/* ---- one optimizer step ------------------------------------------------------------------------ */
static int check_finite(rn_trainer *t, double loss)
{
    const rn_train_state *s = &t->s;
    if (!isfinite(loss))
        return rn_fail(RN_ERR_NUMERIC, "step %ld (epoch %d, batch %d): the loss is %s", s->step + 1,
                       s->epoch + 1, s->batch + 1, isnan(loss) ? "NaN" : "infinite");
    const float *g = rn_net_grads(t->net);
    size_t n = rn_net_num_params(t->net);
    float sum = 0.0f;
    for (size_t i = 0; i < n; i++) sum += g[i] * 0.0f; /* NaN or Inf anywhere makes it NaN */
    if (sum == 0.0f) return RN_OK;
    for (int i = 0; i < rn_net_num_tensors(t->net); i++) {
        rn_tensor_info info;
        rn_net_tensor(t->net, i, &info);
        if (info.kind != RN_TENSOR_PARAM) continue;
        for (size_t j = 0; j < info.numel; j++)
            if (!isfinite(info.grad[j]))
                return rn_fail(RN_ERR_NUMERIC, "step %ld (epoch %d, batch %d): the gradient of '%s' is %s",
                               s->step + 1, s->epoch + 1, s->batch + 1, info.name,
                               isnan(info.grad[j]) ? "NaN" : "infinite");
    }
    return rn_fail(RN_ERR_NUMERIC, "step %ld: a gradient is NaN or infinite", s->step + 1);
}

int rn_train_forward_backward(rn_net *net, const float *x, const int *labels, int n, int parts,
                              float *logits, float *accum, double *loss)
{
    if (n < 1 || parts < 1) return rn_fail(RN_ERR_ARG, "a batch needs images and parts");
    if (parts > n) parts = n;
    rn_net_options o;
    rn_net_get_options(net, &o);
    const size_t image = (size_t)o.in_c * o.in_h * o.in_w;
    if (parts == 1) {
        float l;
        rn_net_zero_grad(net);
        int st = rn_net_forward(net, x, n, 1, logits);
        if (!st) st = rn_net_backward(net, labels, &l);
        if (!st) *loss = l; /* l is set only when both passes ran */
        return st;
    }
    const size_t np = rn_net_num_params(net);
    float *g = rn_net_grads(net);
    memset(accum, 0, np * sizeof *accum);
    double total = 0.0;
    for (int k = 0, off = 0; k < parts; k++) {
        const int m = n / parts + (k < n % parts);
        float l;
        rn_net_zero_grad(net);
        int st = rn_net_forward(net, x + (size_t)off * image, m, 1,
                                logits ? logits + (size_t)off * o.classes : NULL);
        if (!st) st = rn_net_backward(net, labels + off, &l);
        if (st) return st;
        /* the batch's mean loss weighs each micro-batch's mean by its share of the images */
        const float w = (float)m / (float)n;
        for (size_t i = 0; i < np; i++) accum[i] += w * g[i];
        total += (double)l * m;
        off += m;
    }
    memcpy(g, accum, np * sizeof *accum);
    *loss = total / n;
    return RN_OK;
}

static long count_correct(const rn_trainer *t, const rn_batch *b);

/* After each process's forward and backward of its slice: the gradients summed over the
 * processes (each slice's loss gradient was scaled by its share, so the sum is the global
 * batch's mean loss's), and the global batch's loss, correct count and size; whether any
 * process was asked to stop travels along. */
static int combine_step(rn_trainer *t, const rn_train_hooks *hooks, const rn_batch *b,
                        double *loss, long *correct, int *seen)
{
    int st = t->hook_st;
    if (!st && t->n_blocks) { /* the rest (the stem's, and blocks not yet a bucket), then all */
        st = rn_dist_sum_start(t->dist, rn_net_grads(t->net), t->sent);
        if (!st) st = rn_dist_sum_wait(t->dist);
    } else if (!st) {
        st = rn_dist_sum_float(t->dist, rn_net_grads(t->net), rn_net_num_params(t->net));
    }
    double v[3] = {*loss * b->n, (double)*correct, hooks && hooks->stop && *hooks->stop ? 1.0 : 0.0};
    if (!st) st = rn_dist_sum_double(t->dist, v, 3);
    *loss = v[0] / b->total;
    *correct = (long)v[1];
    *seen = b->total;
    t->stop_agreed = v[2] > 0.0;
    return st;
}

static long count_correct(const rn_trainer *t, const rn_batch *b)
{
    long correct = 0;
    for (int i = 0; i < b->n; i++) {
        const float *z = t->logits + (size_t)i * t->classes;
        int best = 0;
        for (int j = 1; j < t->classes; j++)
            if (z[j] > z[best]) best = j;
        correct += best == b->labels[i];
    }
    return correct;
}

/* The evaluation set's loss and error; with several processes each evaluates its share and
 * the sums are added up. */
static int evaluate(rn_trainer *t, double *loss, double *error)
{
    rn_eval_result r;
    int st;
    if (t->size == 1) {
        st = rn_evaluate(t->net, t->eval, t->cfg.batch, 0, &r);
        if (st) return st;
        *loss = r.loss;
        *error = r.n ? 1.0 - (double)r.correct / r.n : 0.0;
        return RN_OK;
    }
    double v[3] = {0.0, 0.0, 0.0}; /* loss sum, correct, images */
    if (t->eval_part) {
        st = rn_evaluate(t->net, t->eval_part, t->cfg.batch, 0, &r);
        if (st) return st;
        v[0] = r.loss * r.n, v[1] = (double)r.correct, v[2] = r.n;
    }
    st = rn_dist_sum_double(t->dist, v, 3);
    *loss = v[2] > 0 ? v[0] / v[2] : 0.0;
    *error = v[2] > 0 ? 1.0 - v[1] / v[2] : 0.0;
    return st;
}

static int end_epoch(rn_trainer *t, const rn_train_hooks *hooks, float lr)
{
    rn_train_state *s = &t->s;
    rn_epoch_metrics m = {0};
    m.epoch = s->epoch + 1;
    m.train_loss = s->seen ? s->loss_sum / s->seen : 0.0;
    m.train_error = s->seen ? 1.0 - (double)s->correct / s->seen : 0.0;
    m.lr = lr;
    m.time_s = s->time_s;
    m.data_s = s->data_s;
    m.images_per_s = s->time_s > 0 ? s->seen / s->time_s : 0.0;
    m.eval_loss = m.eval_error = NAN;
    if (t->eval) {
        double t0 = rn_clock_s();
        int st = evaluate(t, &m.eval_loss, &m.eval_error);
        if (st) return rn_fail_context(st, "evaluating after epoch %d", m.epoch);
        m.eval_name = t->eval_name;
        m.eval_s = rn_clock_s() - t0;
    }
    /* Each addition allocates: a line is written whole or not at all. */
    cJSON *o = cJSON_CreateObject();
    char key[32];
    int ok = o && cJSON_AddNumberToObject(o, "epoch", m.epoch) &&
             cJSON_AddNumberToObject(o, "train_loss", m.train_loss) &&
             cJSON_AddNumberToObject(o, "train_error", m.train_error);
    if (ok && m.eval_name) {
        snprintf(key, sizeof key, "%s_loss", m.eval_name);
        ok = cJSON_AddNumberToObject(o, key, m.eval_loss) != NULL;
        snprintf(key, sizeof key, "%s_error", m.eval_name);
        ok = ok && cJSON_AddNumberToObject(o, key, m.eval_error);
    }
    ok = ok && cJSON_AddNumberToObject(o, "lr", m.lr) && cJSON_AddNumberToObject(o, "time_s", m.time_s) &&
         cJSON_AddNumberToObject(o, "data_time_s", m.data_s) &&
         cJSON_AddNumberToObject(o, "eval_time_s", m.eval_s) &&
         cJSON_AddNumberToObject(o, "images_per_s", m.images_per_s);
    if (ok && t->size > 1) {
        m.processes = t->size;
        m.comm_s = rn_dist_comm_seconds(t->dist) - t->comm_mark;
        ok = cJSON_AddNumberToObject(o, "processes", t->size) &&
             cJSON_AddNumberToObject(o, "comm_time_s", m.comm_s);
    }
    char *line = ok ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    cJSON *item = line ? cJSON_CreateString(line) : NULL;
    free(line);
    if (!item) return rn_fail(RN_ERR_NOMEM, "out of memory");
    cJSON_AddItemToArray(t->metrics, item);

    s->epoch++;
    s->batch = 0;
    s->loss_sum = 0.0;
    s->correct = s->seen = 0;
    s->time_s = s->data_s = 0.0;
    char when[64];
    snprintf(when, sizeof when, "after epoch %d", m.epoch);
    int st = rn_trainer_check_ranks(t, when);
    if (!st) st = save_checkpoint(t);
    if (!st) st = append_metrics_line(t, cJSON_GetStringValue(item));
    if (st) return st;
    if (hooks && hooks->on_epoch) hooks->on_epoch(hooks->ctx, &m);
    return RN_OK;
}

int rn_trainer_run(rn_trainer *t, const rn_train_hooks *hooks, rn_train_outcome *outcome)
{
    rn_train_outcome dummy;
    if (!outcome) outcome = &dummy;
    memset(outcome, 0, sizeof *outcome);
    rn_train_state *s = &t->s;
    if (t->failed)
        return rn_fail(RN_ERR_ARG, "%s: an earlier run or restore of this trainer failed part-way: "
                                   "resume with rn_trainer_restore", t->dir);
    int st = RN_OK;
    if (t->size > 1) st = check_same_start(t);
    if (!st && !t->restored && s->step == 0) {
        /* A fresh run: claim the folder with a checkpoint of the initial state. */
        st = save_checkpoint(t);
        if (!st) st = write_metrics_file(t);
        if (!st) t->restored = 1;
    }
    const double session_start = rn_clock_s();
    float lr = rn_schedule_lr(&t->sched, s->step > 0 ? s->step - 1 : 0);
    while (!st && s->epoch < t->cfg.epochs) {
        st = rn_loader_start(t->loader, s->epoch, s->batch);
        double last = rn_clock_s();
        t->comm_mark = rn_dist_comm_seconds(t->dist);
        while (!st) {
            /* several processes stop together, one step after any of them was asked to */
            const int stop_now = t->size > 1 ? t->stop_agreed : hooks && hooks->stop && *hooks->stop;
            if (stop_now ||
                (hooks && hooks->stop_at_step > 0 && outcome->steps_run >= hooks->stop_at_step)) {
                st = save_checkpoint(t);
                if (!st) outcome->interrupted = 1;
                goto done;
            }
            rn_batch b;
            st = rn_loader_next(t->loader, &b);
            if (st || b.n == 0) break;
            double loss;
            long correct = 0;
            int seen = b.n;
            if (t->size > 1) {
                rn_net_set_loss_grad_scale(t->net, (float)b.n / (float)b.total);
                t->sent = rn_net_num_params(t->net);
                t->hook_st = RN_OK;
            }
            st = rn_train_forward_backward(t->net, b.x, b.labels, b.n, t->cfg.accum, t->logits,
                                           t->accum, &loss);
            if (!st) correct = count_correct(t, &b);
            if (!st && t->size > 1) st = combine_step(t, hooks, &b, &loss, &correct, &seen);
            if (!st) st = check_finite(t, loss);
            if (st) break;
            if (t->cfg.clip_grad_norm > 0) rn_net_clip_grad_norm(t->net, t->cfg.clip_grad_norm);
            lr = rn_schedule_lr(&t->sched, s->step);
            st = rn_sgd_step(t->sgd, t->net, lr);
            if (!st && t->buffers) st = average_buffers(t);
            if (st) break;
            s->step++;
            s->batch++;
            outcome->steps_run++;
            s->loss_sum += loss * seen;
            s->correct += correct;
            s->seen += seen;
            double now = rn_clock_s();
            s->time_s += now - last;
            s->data_s += b.wait_s;
            last = now;
            if (hooks && hooks->on_step) {
                rn_train_progress p;
                p.epoch = s->epoch, p.epochs = t->cfg.epochs;
                p.batch = s->batch, p.batches = t->batches;
                p.step = s->step, p.total_steps = t->total_steps;
                p.loss = s->loss_sum / s->seen;
                p.accuracy = (double)s->correct / s->seen;
                p.lr = lr;
                p.images_per_s = s->time_s > 0 ? s->seen / s->time_s : 0.0;
                double per_step = (now - session_start) / outcome->steps_run;
                p.eta_s = per_step * (double)(t->total_steps - s->step);
                p.time_s = s->time_s;
                p.data_s = s->data_s;
                hooks->on_step(hooks->ctx, &p);
            }
        }
        if (!st) st = end_epoch(t, hooks, lr);
    }
    if (!st) {
        st = rn_net_save(t->net, t->model_path);
        if (!st) outcome->finished = 1;
    }
done:
    outcome->epoch = s->epoch;
    outcome->batch = s->batch;
    outcome->step = s->step;
    t->failed = st != RN_OK;
    return st;
}
