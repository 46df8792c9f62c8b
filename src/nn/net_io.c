/* Networks to and from safetensors files with torchvision's names; everything that is not a
 * tensor (architecture, options, normalisation, labels) sits in __metadata__. */
#include <cjson/cJSON.h>
#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/json_check.h"
#include "core/number.h"
#include "io/safetensors.h"
#include "nn/net.h"

#define FORMAT_NAME "resnet.c"

static int parse_input_shape(const char *text, int *c, int *h, int *w)
{
    char tail;
    return sscanf(text, "%dx%dx%d%c", c, h, w, &tail) == 3 && *c > 0 && *h > 0 && *w > 0 &&
                   *h <= RN_MAX_INPUT_SIDE && *w <= RN_MAX_INPUT_SIDE
               ? 0
               : -1;
}

/* Fills the options that the caller left unset from the file's metadata, or from its tensors. */
static int options_from_file(const rn_st_file *f, rn_net_options *opt)
{
    const char *path = rn_st_path(f), *v;
    if (opt->ordering == RN_ORDER_DEFAULT && (v = rn_st_meta(f, "ordering"))) {
        rn_ordering o;
        if (rn_ordering_parse(v, &o)) return rn_fail_context(RN_ERR_FORMAT, "%s: metadata 'ordering'", path);
        opt->ordering = o;
    }
    if (opt->shortcut == RN_SHORTCUT_DEFAULT && (v = rn_st_meta(f, "shortcut"))) {
        rn_shortcut s;
        if (rn_shortcut_parse(v, &s)) return rn_fail_context(RN_ERR_FORMAT, "%s: metadata 'shortcut'", path);
        opt->shortcut = s;
    }
    /* Stochastic depth scales each branch by its survival probability at test time: a model
     * that trained with it needs the rate to evaluate as it was trained. */
    if (opt->survival_last == 1.0f && (v = rn_st_meta(f, "stochastic_depth"))) {
        char *end;
        float p = strtof(v, &end);
        if (*end || end == v || !(p > 0.0f && p <= 1.0f))
            return rn_fail(RN_ERR_FORMAT, "%s: metadata 'stochastic_depth' is not in (0, 1]: '%s'", path, v);
        opt->survival_last = p;
    }
    if (opt->classes <= 0) {
        const rn_st_entry *fc = rn_st_find(f, "fc.weight");
        if ((v = rn_st_meta(f, "classes"))) {
            char *end;
            long k = strtol(v, &end, 10);
            if (*end || k <= 0 || k > 1000000)
                return rn_fail(RN_ERR_FORMAT, "%s: metadata 'classes' is not a positive integer: '%s'", path, v);
            opt->classes = (int)k;
        } else if (fc && fc->ndim == 2) {
            opt->classes = (int)fc->shape[0]; /* a torchvision export: the classifier tells */
        }
    }
    if (opt->in_c <= 0) {
        const rn_st_entry *conv1 = rn_st_find(f, "conv1.weight");
        if ((v = rn_st_meta(f, "input"))) {
            if (parse_input_shape(v, &opt->in_c, &opt->in_h, &opt->in_w))
                return rn_fail(RN_ERR_FORMAT,
                               "%s: metadata 'input' is not CxHxW (sides up to %d): '%s'", path,
                               RN_MAX_INPUT_SIDE, v);
        } else if (conv1 && conv1->ndim == 4) {
            opt->in_c = (int)conv1->shape[1];
        }
    }
    return RN_OK;
}

/* The metadata of one of our files against the network asked for: the orderings share their
 * tensor names, and so do shortcut A and a plain network (or B and C where no shape changes),
 * so the tensors alone would let one load another's file. arch NULL and the DEFAULT options
 * ask for nothing; a file without the key (a torchvision export) is not held to it. Runs
 * before any tensor is read. */
static int check_identity(const rn_st_file *f, const char *arch, rn_ordering ordering,
                          rn_shortcut shortcut)
{
    const char *path = rn_st_path(f), *v;
    if (arch && (v = rn_st_meta(f, "arch")) && strcmp(v, arch))
        return rn_fail(RN_ERR_MISMATCH, "%s was saved as architecture '%s', this network is '%s'",
                       path, v, arch);
    if (ordering != RN_ORDER_DEFAULT && (v = rn_st_meta(f, "ordering"))) {
        rn_ordering o;
        if (rn_ordering_parse(v, &o)) return rn_fail_context(RN_ERR_FORMAT, "%s: metadata 'ordering'", path);
        if (o != ordering)
            return rn_fail(RN_ERR_MISMATCH, "%s was saved as ordering '%s', this network is '%s'",
                           path, rn_ordering_name(o), rn_ordering_name(ordering));
    }
    if (shortcut != RN_SHORTCUT_DEFAULT && (v = rn_st_meta(f, "shortcut"))) {
        rn_shortcut sc;
        if (rn_shortcut_parse(v, &sc)) return rn_fail_context(RN_ERR_FORMAT, "%s: metadata 'shortcut'", path);
        if (sc != shortcut)
            return rn_fail(RN_ERR_MISMATCH, "%s was saved with shortcut '%s', this network has '%s'",
                           path, rn_shortcut_name(sc), rn_shortcut_name(shortcut));
    }
    /* normalisation is a pair: one without the other would leave the inputs half-described */
    const int has_mean = rn_st_meta(f, "normalize_mean") != NULL;
    if (has_mean != (rn_st_meta(f, "normalize_std") != NULL))
        return rn_fail(RN_ERR_FORMAT, "%s: metadata has %s but no %s", path,
                       has_mean ? "normalize_mean" : "normalize_std",
                       has_mean ? "normalize_std" : "normalize_mean");
    return RN_OK;
}

/* "0.1,0.2,0.3" -> values; returns how many, or -1 if the text is not such a list of finite
 * numbers (a NaN or an infinity would turn every input into NaN). */
static int parse_floats(const char *text, float *out, int max)
{
    int n = 0;
    for (const char *p = text; *p; n++) {
        char item[64];
        const char *comma = strchr(p, ',');
        const size_t len = comma ? (size_t)(comma - p) : strlen(p);
        double v;
        if (n == max || len >= sizeof item) return -1;
        memcpy(item, p, len);
        item[len] = '\0';
        if (rn_parse_number(item, 0, -FLT_MAX, FLT_MAX, &v)) return -1;
        out[n] = (float)v;
        p = comma ? comma + 1 : p + len;
        if (comma && !*p) return -1; /* a trailing comma */
    }
    return n;
}

/* The metadata a file gives the network, read in full before any of it is applied. */
typedef struct {
    int has_norm;
    float mean[RN_MAX_INPUT_CHANNELS], std[RN_MAX_INPUT_CHANNELS];
    int has_labels;
    char **labels; /* n_labels copies, owned until applied */
    int n_labels;
} file_meta;

static void free_metadata(file_meta *m)
{
    for (int i = 0; m->labels && i < m->n_labels; i++) free(m->labels[i]);
    free(m->labels);
    m->labels = NULL;
}

/* Everything that can fail (a malformed value, an allocation) happens here. */
static int read_metadata(const rn_net *net, const rn_st_file *f, file_meta *out)
{
    memset(out, 0, sizeof *out);
    const char *path = rn_st_path(f);
    const char *mean = rn_st_meta(f, "normalize_mean"), *std = rn_st_meta(f, "normalize_std");
    if (mean && std) {
        int cm = parse_floats(mean, out->mean, RN_MAX_INPUT_CHANNELS),
            cs = parse_floats(std, out->std, RN_MAX_INPUT_CHANNELS);
        if (cm != net->opt.in_c || cs != net->opt.in_c)
            return rn_fail(RN_ERR_FORMAT, "%s: metadata normalize_mean/std need %d comma-separated finite numbers",
                           path, net->opt.in_c);
        for (int c = 0; c < net->opt.in_c; c++)
            if (!(out->std[c] > 0.0f))
                return rn_fail(RN_ERR_FORMAT, "%s: normalization std of channel %d must be positive",
                               path, c);
        out->has_norm = 1;
    }
    const char *labels = rn_st_meta(f, "labels");
    if (!labels) return RN_OK;
    cJSON *arr = cJSON_Parse(labels);
    if (!arr && rn_json_valid(labels))
        return rn_fail(RN_ERR_NOMEM, "%s: out of memory reading the metadata 'labels'", path);
    int n = cJSON_IsArray(arr) ? cJSON_GetArraySize(arr) : -1;
    int st = n >= 0 ? RN_OK : RN_ERR_FORMAT;
    for (int i = 0; !st && i < n; i++)
        if (!cJSON_IsString(cJSON_GetArrayItem(arr, i))) st = RN_ERR_FORMAT;
    if (st) {
        cJSON_Delete(arr);
        return rn_fail(st, "%s: metadata 'labels' is not a JSON array of strings", path);
    }
    out->has_labels = 1;
    out->labels = calloc(n > 0 ? (size_t)n : 1, sizeof *out->labels);
    int ok = out->labels != NULL;
    if (ok) out->n_labels = n;
    const cJSON *item;
    int i = 0;
    cJSON_ArrayForEach(item, arr) {
        const size_t len = strlen(item->valuestring) + 1;
        if (!ok || !(out->labels[i] = malloc(len))) {
            ok = 0;
            break;
        }
        memcpy(out->labels[i++], item->valuestring, len);
    }
    cJSON_Delete(arr);
    if (!ok) {
        free_metadata(out);
        return rn_fail(RN_ERR_NOMEM, "%s: out of memory for %d label names", path, n);
    }
    return RN_OK;
}

/* Cannot fail: the network takes the labels over. */
static void apply_metadata(rn_net *net, file_meta *m)
{
    if (m->has_norm) {
        memcpy(net->norm_mean, m->mean, sizeof net->norm_mean);
        memcpy(net->norm_std, m->std, sizeof net->norm_std);
        net->has_norm = 1;
    }
    if (m->has_labels) {
        for (int i = 0; i < net->n_labels; i++) free(net->labels[i]);
        free(net->labels);
        net->labels = m->labels;
        net->n_labels = m->n_labels;
        m->labels = NULL;
    }
}

static void shape_text(char *buf, size_t size, int ndim, const int64_t *shape)
{
    size_t used = (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < ndim && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (used < size) snprintf(buf + used, size - used, "]");
}

/* The file's tensors against the network's by name, dtype and shape. Reads only the tensor
 * list, so it also serves a network that rn_net_build made and rn_net_bind has not yet given
 * memory. */
static int check_tensors(const rn_net *net, const rn_st_file *f)
{
    const char *path = rn_st_path(f);
    for (int i = 0; i < rn_st_count(f); i++) {
        const rn_st_entry *e = rn_st_entry_at(f, i);
        int found = 0;
        for (int j = 0; !found && j < net->n_tensors; j++)
            found = !strcmp(net->tensors[j].name, e->name);
        if (!found)
            return rn_fail(RN_ERR_MISMATCH, "%s: unexpected tensor '%s' (not part of %s)", path,
                           e->name, net->arch);
    }
    for (int i = 0; i < net->n_tensors; i++) {
        const rn_tensor_entry t = net->tensors[i];
        const rn_st_entry *e = rn_st_find(f, t.name);
        if (!e) return rn_fail(RN_ERR_MISMATCH, "%s: missing tensor '%s'", path, t.name);
        const char *want = t.kind == RN_TENSOR_COUNTER ? "I64" : "F32";
        if (strcmp(e->dtype, want))
            return rn_fail(RN_ERR_MISMATCH, "%s: tensor '%s' is %s, expected %s", path, t.name,
                           e->dtype, want);
        int same = e->ndim == t.ndim;
        for (int d = 0; same && d < t.ndim; d++) same = e->shape[d] == t.shape[d];
        if (!same) {
            char got[128], exp[128];
            shape_text(got, sizeof got, e->ndim, e->shape);
            shape_text(exp, sizeof exp, t.ndim, t.shape);
            return rn_fail(RN_ERR_MISMATCH, "%s: tensor '%s' has shape %s, expected %s", path,
                           t.name, got, exp);
        }
    }
    return RN_OK;
}

static int load_tensors(rn_net *net, const rn_st_file *f)
{
    /* Every tensor checked before any is read, so that a refused file leaves the network's
     * weights as they were. */
    int st = check_tensors(net, f);
    for (int i = 0; !st && i < net->n_tensors; i++) {
        rn_tensor_info t;
        rn_net_tensor(net, i, &t);
        st = t.kind == RN_TENSOR_COUNTER ? rn_st_read_i64(f, t.name, t.i64, t.numel)
                                         : rn_st_read_f32(f, t.name, t.data, t.numel);
    }
    return st;
}

/* The network the file names, built without its arenas (rn_net_build lists the tensors and
 * allocates no parameters), and the file checked against it: a few bytes of metadata naming a
 * network of gigabytes are refused before rn_net_create allocates and initialises it. */
static int check_before_building(const rn_st_file *f, const char *arch, const rn_net_options *opt)
{
    rn_net *shadow = calloc(1, sizeof *shadow);
    if (!shadow) return rn_fail(RN_ERR_NOMEM, "%s: out of memory", rn_st_path(f));
    shadow->opt = *opt;
    snprintf(shadow->arch, sizeof shadow->arch, "%s", arch);
    int st = rn_net_build(shadow, arch);
    /* the network the file names cannot be built (an unknown name, options out of range) */
    if (st) st = rn_fail_context(st, "%s", rn_st_path(f));
    if (!st) st = check_tensors(shadow, f);
    rn_net_free(shadow);
    return st;
}

int rn_net_load(rn_net *net, const char *path)
{
    rn_st_file *f;
    int st = rn_st_open(&f, path);
    if (st) return st;
    file_meta meta = {0};
    st = check_identity(f, net->arch, net->opt.ordering, net->opt.shortcut);
    if (!st) st = read_metadata(net, f, &meta);
    if (!st) st = load_tensors(net, f);
    if (!st) apply_metadata(net, &meta);
    free_metadata(&meta);
    rn_st_close(f);
    /* a frozen network folds the weights it now holds (the old ones if the file was refused) */
    if (net->frozen) {
        const int fst = rn_net_freeze(net, 1);
        if (!st) st = fst;
    }
    return st;
}

int rn_net_open(rn_net **out, const char *path, const char *arch, const rn_net_options *opt)
{
    *out = NULL;
    rn_st_file *f;
    int st = rn_st_open(&f, path);
    if (st) return st;
    rn_net_options o;
    if (opt) o = *opt;
    else rn_net_options_init(&o);
    const char *asked = arch; /* NULL: whatever the file holds */
    if (!arch) arch = rn_st_meta(f, "arch");
    if (!arch) {
        rn_st_close(f);
        return rn_fail(RN_ERR_FORMAT,
                       "%s: no architecture in the file's metadata (a torchvision export?): give one, e.g. --arch resnet18",
                       path);
    }
    rn_net *net = NULL;
    file_meta meta = {0};
    st = check_identity(f, asked, o.ordering, o.shortcut);
    if (!st) st = options_from_file(f, &o);
    if (!st) st = check_before_building(f, arch, &o);
    if (!st) st = rn_net_create(&net, arch, &o);
    if (!st) st = read_metadata(net, f, &meta);
    if (!st) st = load_tensors(net, f);
    if (!st) apply_metadata(net, &meta);
    free_metadata(&meta);
    rn_st_close(f);
    if (st) {
        rn_net_free(net);
        return st;
    }
    *out = net;
    return RN_OK;
}

int rn_net_save(const rn_net *net, const char *path)
{
    rn_st_writer *w;
    int st = rn_st_writer_create(&w);
    if (st) return st;
    for (int i = 0; !st && i < net->n_tensors; i++) {
        rn_tensor_info t;
        rn_net_tensor(net, i, &t);
        if (t.kind == RN_TENSOR_COUNTER) st = rn_st_writer_add(w, t.name, "I64", t.ndim, t.shape, t.i64);
        else st = rn_st_writer_add(w, t.name, "F32", t.ndim, t.shape, t.data);
    }
    char buf[512];
    const rn_net_options *o = &net->opt;
    if (!st) st = rn_st_writer_meta(w, "format", FORMAT_NAME);
    if (!st) st = rn_st_writer_meta(w, "arch", net->arch);
    if (!st) st = rn_st_writer_meta(w, "ordering", rn_ordering_name(o->ordering));
    if (!st) st = rn_st_writer_meta(w, "shortcut", rn_shortcut_name(o->shortcut));
    snprintf(buf, sizeof buf, "%.9g", (double)o->survival_last);
    if (!st && o->survival_last < 1.0f) st = rn_st_writer_meta(w, "stochastic_depth", buf);
    snprintf(buf, sizeof buf, "%d", o->classes);
    if (!st) st = rn_st_writer_meta(w, "classes", buf);
    snprintf(buf, sizeof buf, "%dx%dx%d", o->in_c, o->in_h, o->in_w);
    if (!st) st = rn_st_writer_meta(w, "input", buf);
    if (!st && net->has_norm) {
        char sbuf[512];
        size_t um = 0, us = 0;
        for (int c = 0; c < o->in_c; c++) {
            um += (size_t)snprintf(buf + um, sizeof buf - um, "%s%.9g", c ? "," : "", (double)net->norm_mean[c]);
            us += (size_t)snprintf(sbuf + us, sizeof sbuf - us, "%s%.9g", c ? "," : "", (double)net->norm_std[c]);
        }
        st = rn_st_writer_meta(w, "normalize_mean", buf);
        if (!st) st = rn_st_writer_meta(w, "normalize_std", sbuf);
    }
    if (!st && net->n_labels) {
        cJSON *arr = cJSON_CreateStringArray((const char *const *)net->labels, net->n_labels);
        char *text = arr ? cJSON_PrintUnformatted(arr) : NULL;
        st = text ? rn_st_writer_meta(w, "labels", text) : rn_fail(RN_ERR_NOMEM, "out of memory");
        free(text);
        cJSON_Delete(arr);
    }
    if (!st) st = rn_st_writer_save(w, path);
    rn_st_writer_free(w);
    return st;
}
