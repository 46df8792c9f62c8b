/* Checkpoints (see checkpoint.h). */
#include "train/checkpoint.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/json_check.h"
#include "io/safetensors.h"

#define CHECKPOINT_VERSION 1

/* The normalisation as the metadata holds it; 0 when the network has none. */
static int norm_text(const rn_net *net, char *mean_buf, char *std_buf, size_t size)
{
    rn_net_options o;
    rn_net_get_options(net, &o);
    float mean[RN_MAX_INPUT_CHANNELS], std[RN_MAX_INPUT_CHANNELS];
    if (!rn_net_get_normalization(net, mean, std)) return 0;
    size_t um = 0, us = 0;
    for (int c = 0; c < o.in_c && c < RN_MAX_INPUT_CHANNELS && um < size && us < size; c++) {
        um += (size_t)snprintf(mean_buf + um, size - um, "%s%.9g", c ? "," : "", (double)mean[c]);
        us += (size_t)snprintf(std_buf + us, size - us, "%s%.9g", c ? "," : "", (double)std[c]);
    }
    return 1;
}

/* The model metadata, as rn_net_save writes it. */
static int add_model_meta(rn_st_writer *w, const rn_net *net)
{
    rn_net_options o;
    rn_net_get_options(net, &o);
    char buf[512], sbuf[512];
    int st = rn_st_writer_meta(w, "format", "resnet.c");
    if (!st) st = rn_st_writer_meta(w, "arch", rn_net_arch(net));
    if (!st) st = rn_st_writer_meta(w, "ordering", rn_ordering_name(o.ordering));
    if (!st) st = rn_st_writer_meta(w, "shortcut", rn_shortcut_name(o.shortcut));
    snprintf(buf, sizeof buf, "%d", o.classes);
    if (!st) st = rn_st_writer_meta(w, "classes", buf);
    snprintf(buf, sizeof buf, "%dx%dx%d", o.in_c, o.in_h, o.in_w);
    if (!st) st = rn_st_writer_meta(w, "input", buf);
    if (!st && norm_text(net, buf, sbuf, sizeof buf)) {
        st = rn_st_writer_meta(w, "normalize_mean", buf);
        if (!st) st = rn_st_writer_meta(w, "normalize_std", sbuf);
    }
    int n_labels = 0;
    while (rn_net_label(net, n_labels)) n_labels++;
    if (!st && n_labels) {
        const char **names = malloc((size_t)n_labels * sizeof *names);
        cJSON *arr = NULL;
        if (names) {
            for (int i = 0; i < n_labels; i++) names[i] = rn_net_label(net, i);
            arr = cJSON_CreateStringArray(names, n_labels);
        }
        char *text = arr ? cJSON_PrintUnformatted(arr) : NULL;
        st = text ? rn_st_writer_meta(w, "labels", text) : rn_fail(RN_ERR_NOMEM, "out of memory");
        free(text);
        cJSON_Delete(arr);
        free(names);
    }
    return st;
}

static int add_u64_hex(cJSON *arr, uint64_t v)
{
    char buf[24];
    snprintf(buf, sizeof buf, "%016" PRIx64, v);
    return cJSON_AddItemToArray(arr, cJSON_CreateString(buf)) ? 0 : -1;
}

/* 1 when added (cJSON allocates the item and a copy of the key). */
static int add_exact(cJSON *o, const char *key, double v)
{
    char buf[40];
    snprintf(buf, sizeof buf, "%.17g", v);
    return cJSON_AddStringToObject(o, key, buf) != NULL;
}

int rn_checkpoint_save(const char *path, rn_net *net, rn_sgd *sgd, const rn_train_config *cfg,
                       const rn_train_state *state, const char *metrics)
{
    rn_st_writer *w;
    int st = rn_st_writer_create(&w);
    if (st) return st;
    for (int i = 0; !st && i < rn_net_num_tensors(net); i++) {
        rn_tensor_info t;
        rn_net_tensor(net, i, &t);
        if (t.kind == RN_TENSOR_COUNTER) st = rn_st_writer_add(w, t.name, "I64", t.ndim, t.shape, t.i64);
        else st = rn_st_writer_add(w, t.name, "F32", t.ndim, t.shape, t.data);
    }
    size_t n;
    float *buf = rn_sgd_momentum_buffer(sgd, &n);
    int64_t shape[1] = {(int64_t)n};
    if (!st) st = rn_st_writer_add(w, RN_CHECKPOINT_MOMENTUM, "F32", 1, shape, buf);
    if (!st) st = add_model_meta(w, net);

    char *cfg_json = rn_train_config_to_json(cfg);
    cJSON *root = cJSON_CreateObject(), *s = cJSON_CreateObject(), *rng = cJSON_CreateArray();
    cJSON *cj = cfg_json ? cJSON_Parse(cfg_json) : NULL;
    cJSON *mj = cJSON_Parse(metrics ? metrics : "[]");
    int ok = root && s && rng && cj && cJSON_IsArray(mj);
    for (int i = 0; ok && i < 4; i++) ok = !add_u64_hex(rng, state->rng[i]);
    /* Every addition allocates and is checked: a key missing for want of memory would make a
     * checkpoint that cannot be resumed. An item belongs to its parent once added, so its own
     * pointer is cleared then (the cleanup below deletes what was not). */
    ok = ok && cJSON_AddNumberToObject(root, "version", CHECKPOINT_VERSION);
    ok = ok && cJSON_AddItemToObject(root, "config", cj) && !(cj = NULL);
    ok = ok && cJSON_AddNumberToObject(s, "epoch", state->epoch);
    ok = ok && cJSON_AddNumberToObject(s, "batch", state->batch);
    ok = ok && cJSON_AddNumberToObject(s, "step", (double)state->step);
    ok = ok && cJSON_AddNumberToObject(s, "sgd_started", state->sgd_started);
    ok = ok && cJSON_AddItemToObject(s, "rng", rng) && !(rng = NULL);
    /* doubles as exact text: cJSON prints 15 digits when they are merely close */
    ok = ok && add_exact(s, "loss_sum", state->loss_sum);
    ok = ok && cJSON_AddNumberToObject(s, "correct", (double)state->correct);
    ok = ok && cJSON_AddNumberToObject(s, "seen", (double)state->seen);
    ok = ok && add_exact(s, "time_s", state->time_s);
    ok = ok && add_exact(s, "data_s", state->data_s);
    ok = ok && cJSON_AddItemToObject(root, "state", s) && !(s = NULL);
    ok = ok && cJSON_AddItemToObject(root, "metrics", mj) && !(mj = NULL);
    char *text = ok ? cJSON_PrintUnformatted(root) : NULL;
    if (!st && !text) st = rn_fail(RN_ERR_NOMEM, "%s: cannot build the checkpoint metadata", path);
    if (!st) st = rn_st_writer_meta(w, "checkpoint", text);
    free(text);
    cJSON_Delete(root);
    cJSON_Delete(s);
    cJSON_Delete(rng);
    cJSON_Delete(cj);
    cJSON_Delete(mj);
    free(cfg_json);
    if (!st) st = rn_st_writer_save(w, path);
    rn_st_writer_free(w);
    return st;
}

/* The "checkpoint" metadata of an open file, parsed into *out; a status with a message when
 * it is absent or bad, or memory ran out. */
static int checkpoint_json(const rn_st_file *f, cJSON **out)
{
    *out = NULL;
    const char *path = rn_st_path(f);
    const char *text = rn_st_meta(f, "checkpoint");
    if (!text) return rn_fail(RN_ERR_FORMAT, "%s: not a checkpoint (no 'checkpoint' metadata)", path);
    cJSON *root = cJSON_Parse(text);
    if (!root && rn_json_valid(text))
        return rn_fail(RN_ERR_NOMEM, "%s: out of memory reading the checkpoint metadata", path);
    cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "version");
    if (!cJSON_IsNumber(v) || v->valuedouble != CHECKPOINT_VERSION ||
        !cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(root, "config")) ||
        !cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(root, "state"))) {
        cJSON_Delete(root);
        return rn_fail(RN_ERR_FORMAT, "%s: the checkpoint metadata is not a version %d checkpoint",
                       path, CHECKPOINT_VERSION);
    }
    *out = root;
    return RN_OK;
}

/* A number, or a number written as exact text. */
static int get_number(const cJSON *obj, const char *key, double *out, const char *path)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    char *end = NULL;
    if (cJSON_IsNumber(v)) *out = v->valuedouble;
    else if (cJSON_IsString(v)) *out = strtod(v->valuestring, &end);
    if (!(cJSON_IsNumber(v) || (cJSON_IsString(v) && end != v->valuestring && !*end)))
        return rn_fail(RN_ERR_FORMAT, "%s: checkpoint state lacks the number '%s'", path, key);
    return RN_OK;
}

static int read_state(const cJSON *s, rn_train_state *state, const char *path)
{
    double v[9];
    static const char *const keys[9] = {"epoch", "batch", "step",    "sgd_started", "loss_sum",
                                        "correct", "seen", "time_s", "data_s"};
    for (int i = 0; i < 9; i++) {
        int st = get_number(s, keys[i], &v[i], path);
        if (st) return st;
    }
    /* the counters become int and long: a value beyond them would not survive the conversion */
    static const int counters[5] = {0, 1, 2, 5, 6};
    for (int i = 0; i < 5; i++) {
        int k = counters[i];
        if (!(fabs(v[k]) <= (k < 2 ? INT_MAX : 9e18)))
            return rn_fail(RN_ERR_FORMAT, "%s: checkpoint state '%s' is out of range (%g)", path,
                           keys[k], v[k]);
    }
    memset(state, 0, sizeof *state);
    state->epoch = (int)v[0];
    state->batch = (int)v[1];
    state->step = (long)v[2];
    state->sgd_started = v[3] != 0.0;
    state->loss_sum = v[4];
    state->correct = (long)v[5];
    state->seen = (long)v[6];
    state->time_s = v[7];
    state->data_s = v[8];
    const cJSON *rng = cJSON_GetObjectItemCaseSensitive(s, "rng");
    if (!cJSON_IsArray(rng) || cJSON_GetArraySize(rng) != 4)
        return rn_fail(RN_ERR_FORMAT, "%s: checkpoint state lacks the random state", path);
    for (int i = 0; i < 4; i++) {
        const cJSON *item = cJSON_GetArrayItem(rng, i);
        char *end;
        if (!cJSON_IsString(item)) return rn_fail(RN_ERR_FORMAT, "%s: bad random state", path);
        state->rng[i] = strtoull(item->valuestring, &end, 16);
        if (*end || end == item->valuestring) return rn_fail(RN_ERR_FORMAT, "%s: bad random state", path);
    }
    if (state->epoch < 0 || state->batch < 0 || state->step < 0)
        return rn_fail(RN_ERR_FORMAT, "%s: checkpoint position is negative", path);
    return RN_OK;
}

int rn_checkpoint_read_config(const char *path, rn_train_config *cfg, int *epoch, int *batch,
                              long *step)
{
    rn_st_file *f;
    int st = rn_st_open(&f, path);
    if (st) return st;
    cJSON *root;
    st = checkpoint_json(f, &root);
    if (st) {
        rn_st_close(f);
        return st;
    }
    char *cfg_text = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(root, "config"));
    st = cfg_text ? rn_train_config_from_json(cfg, cfg_text) : rn_fail(RN_ERR_NOMEM, "out of memory");
    if (st) rn_fail_context(st, "%s: checkpoint configuration", path);
    rn_train_state state;
    if (!st) st = read_state(cJSON_GetObjectItemCaseSensitive(root, "state"), &state, path);
    if (!st) {
        if (epoch) *epoch = state.epoch;
        if (batch) *batch = state.batch;
        if (step) *step = state.step;
    }
    free(cfg_text);
    cJSON_Delete(root);
    rn_st_close(f);
    return st;
}

/* The file's tensor `name` has t's dtype and shape. */
static int check_tensor(const rn_st_file *f, const rn_tensor_info *t, const char *name,
                        const char *dtype)
{
    const char *path = rn_st_path(f);
    const rn_st_entry *e = rn_st_find(f, name);
    if (!e) return rn_fail(RN_ERR_MISMATCH, "%s: missing tensor '%s'", path, name);
    int same = !strcmp(e->dtype, dtype) && e->ndim == t->ndim;
    for (int d = 0; same && d < t->ndim; d++) same = e->shape[d] == t->shape[d];
    if (!same)
        return rn_fail(RN_ERR_MISMATCH, "%s: tensor '%s' does not have the network's dtype and shape",
                       path, name);
    return RN_OK;
}

/* pass 0 checks the tensor, pass 1 reads it into dst. */
static int read_tensor(const rn_st_file *f, const rn_tensor_info *t, const char *name,
                       const char *dtype, void *dst, int pass)
{
    int st = check_tensor(f, t, name, dtype);
    if (st || !pass) return st;
    return strcmp(dtype, "I64") ? rn_st_read_f32(f, name, dst, t->numel)
                                : rn_st_read_i64(f, name, dst, t->numel);
}

int rn_checkpoint_load(const char *path, rn_net *net, rn_sgd *sgd, rn_train_state *state,
                       char **metrics)
{
    if (metrics) *metrics = NULL;
    rn_st_file *f;
    int st = rn_st_open(&f, path);
    if (st) return st;
    cJSON *root;
    st = checkpoint_json(f, &root);
    if (!st) st = read_state(cJSON_GetObjectItemCaseSensitive(root, "state"), state, path);
    const char *arch = rn_st_meta(f, "arch");
    if (!st && (!arch || strcmp(arch, rn_net_arch(net))))
        st = rn_fail(RN_ERR_MISMATCH, "%s: checkpoint of '%s', not of %s", path, arch ? arch : "?",
                     rn_net_arch(net));
    /* The normalisation is computed from the training images: a different value means the data
     * changed since the run began, and the resumed run could not end as the uninterrupted one. */
    char mean[512], std[512];
    if (!st && norm_text(net, mean, std, sizeof mean)) {
        const char *m = rn_st_meta(f, "normalize_mean"), *s = rn_st_meta(f, "normalize_std");
        if (!m || !s || strcmp(m, mean) || strcmp(s, std))
            st = rn_fail(RN_ERR_MISMATCH,
                         "%s: the training data changed since the run began (their mean/std are now "
                         "%s / %s, the run's %s / %s)",
                         path, mean, std, m ? m : "none", s ? s : "none");
    }
    /* Whatever can fail (a tensor that does not fit, the metrics' copy) fails before the first
     * tensor is read: a refused checkpoint leaves the network and the optimizer as they were. */
    const cJSON *m = st ? NULL : cJSON_GetObjectItemCaseSensitive(root, "metrics");
    if (!st && !cJSON_IsArray(m)) st = rn_fail(RN_ERR_FORMAT, "%s: checkpoint metrics are not a list", path);
    if (!st && metrics && !(*metrics = cJSON_PrintUnformatted(m)))
        st = rn_fail(RN_ERR_NOMEM, "%s: out of memory copying the metrics", path);
    size_t n;
    float *buf = rn_sgd_momentum_buffer(sgd, &n);
    rn_tensor_info mom = {.name = RN_CHECKPOINT_MOMENTUM, .ndim = 1, .shape = {(int64_t)n}, .numel = n};
    for (int pass = 0; !st && pass < 2; pass++) {
        for (int i = 0; !st && i < rn_net_num_tensors(net); i++) {
            rn_tensor_info t;
            rn_net_tensor(net, i, &t);
            if (t.kind == RN_TENSOR_COUNTER) st = read_tensor(f, &t, t.name, "I64", t.i64, pass);
            else st = read_tensor(f, &t, t.name, "F32", t.data, pass);
        }
        if (!st) st = read_tensor(f, &mom, RN_CHECKPOINT_MOMENTUM, "F32", buf, pass);
    }
    if (!st) {
        rn_sgd_set_started(sgd, state->sgd_started);
        rn_net_set_rng_state(net, state->rng);
    } else if (metrics) {
        free(*metrics);
        *metrics = NULL;
    }
    cJSON_Delete(root);
    rn_st_close(f);
    return st;
}
