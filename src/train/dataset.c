/* Data sets in memory: creation, copies, the seeded validation split, channel statistics, and
 * rn_dataset_load, which turns a (kind, directory) into the files of the format readers. */
#define _POSIX_C_SOURCE 200809L

#include "train/dataset.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/error.h"
#include "core/rng.h"
#include "train/dataset_internal.h"

static const char *const kind_names[] = {"fashion-mnist", "mnist", "cifar10", "cifar100",
                                         "folder"};

static const char *const fashion_names[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress",
                                              "Coat",        "Sandal",  "Shirt",    "Sneaker",
                                              "Bag",         "Ankle boot"};
static const char *const digit_names[10] = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};

int rn_data_kind_parse(const char *text, rn_data_kind *out)
{
    for (int k = 0; k < (int)(sizeof kind_names / sizeof kind_names[0]); k++) {
        if (text && strcmp(text, kind_names[k]) == 0) {
            *out = (rn_data_kind)k;
            return RN_OK;
        }
    }
    return rn_fail(RN_ERR_ARG,
                   "unknown data set '%s' (expected fashion-mnist, mnist, cifar10, cifar100 or "
                   "folder)",
                   text ? text : "(null)");
}

const char *rn_data_kind_name(rn_data_kind kind)
{
    if ((int)kind < 0 || (int)kind >= (int)(sizeof kind_names / sizeof kind_names[0]))
        return "unknown";
    return kind_names[kind];
}

const char *rn_data_default_dir(rn_data_kind kind)
{
    return kind == RN_DATA_FASHION_MNIST ? RN_FASHION_MNIST_DIR : NULL;
}

void rn_data_source_init(rn_data_source *src, rn_data_kind kind, const char *dir)
{
    memset(src, 0, sizeof *src);
    src->kind = kind;
    src->dir = dir;
}

/* ---- helpers shared with the readers ---------------------------------------------------- */

int rn_data_path(char *buf, const char *dir, const char *name)
{
    int len = snprintf(buf, RN_DATA_PATH_MAX, "%s/%s", dir, name);
    if (len < 0 || len >= RN_DATA_PATH_MAX)
        return rn_fail(RN_ERR_ARG, "%s/%s: path too long", dir, name);
    return RN_OK;
}

int rn_data_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

int rn_data_is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int rn_data_set_source(rn_dataset *d, const char *source)
{
    char *copy = strdup(source);
    if (!copy) return rn_fail(RN_ERR_NOMEM, "out of memory for the name %s", source);
    free(d->source);
    d->source = copy;
    return RN_OK;
}

void rn_data_free_names(char **names, int count)
{
    if (!names) return;
    for (int i = 0; i < count; i++) free(names[i]);
    free(names);
}

int rn_data_read_names(rn_dataset *d, const char *path)
{
    FILE *fp = fopen(path, "r");
    if (!fp) {
        if (errno == ENOENT) return RN_OK;
        return rn_fail(RN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    }
    char **names = calloc((size_t)d->classes, sizeof *names);
    if (!names) {
        fclose(fp);
        return rn_fail(RN_ERR_NOMEM, "%s: out of memory", path);
    }
    int count = 0, status = RN_OK;
    char line[1024];
    while (status == RN_OK && fgets(line, sizeof line, fp)) {
        size_t len = strlen(line);
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r' ||
                           line[len - 1] == ' ' || line[len - 1] == '\t'))
            line[--len] = '\0';
        if (len == 0) continue; /* the published batches.meta.txt ends in blank lines */
        if (count < d->classes && !(names[count] = strdup(line)))
            status = rn_fail(RN_ERR_NOMEM, "%s: out of memory", path);
        count++;
    }
    if (status == RN_OK && ferror(fp)) status = rn_fail(RN_ERR_IO, "%s: read error", path);
    fclose(fp);
    if (status == RN_OK && count != d->classes)
        status = rn_fail(RN_ERR_FORMAT, "%s: %d label names for %d classes", path, count,
                         d->classes);
    if (status != RN_OK) {
        rn_data_free_names(names, d->classes);
        return status;
    }
    rn_data_free_names(d->names, d->classes);
    d->names = names;
    return RN_OK;
}

/* ---- creation and copies ------------------------------------------------------------------ */

int rn_dataset_create(rn_dataset **out, int n, int c, int h, int w, int classes)
{
    *out = NULL;
    if (n < 0 || c <= 0 || h <= 0 || w <= 0 || classes <= 0)
        return rn_fail(RN_ERR_ARG, "bad data set shape %d x %d x %d x %d with %d classes", n, c,
                       h, w, classes);
    size_t per = (size_t)c * (size_t)h * (size_t)w;
    rn_dataset *d = calloc(1, sizeof *d);
    if (d) {
        d->pixels = malloc(per * (size_t)n + 1);
        d->labels = calloc((size_t)n + 1, sizeof *d->labels);
    }
    if (!d || !d->pixels || !d->labels) {
        rn_dataset_free(d);
        return rn_fail(RN_ERR_NOMEM, "out of memory for %d images of %d x %d x %d", n, c, h, w);
    }
    memset(d->pixels, 0, per * (size_t)n);
    d->n = n;
    d->c = c;
    d->h = h;
    d->w = w;
    d->classes = classes;
    *out = d;
    return RN_OK;
}

void rn_dataset_free(rn_dataset *d)
{
    if (!d) return;
    free(d->pixels);
    free(d->labels);
    rn_data_free_names(d->names, d->classes);
    free(d->source);
    free(d);
}

int rn_dataset_set_names(rn_dataset *d, const char *const *names)
{
    char **copy = calloc((size_t)d->classes, sizeof *copy);
    if (!copy) return rn_fail(RN_ERR_NOMEM, "out of memory for %d label names", d->classes);
    for (int i = 0; i < d->classes; i++) {
        if (!(copy[i] = strdup(names[i] ? names[i] : ""))) {
            rn_data_free_names(copy, d->classes);
            return rn_fail(RN_ERR_NOMEM, "out of memory for %d label names", d->classes);
        }
    }
    rn_data_free_names(d->names, d->classes);
    d->names = copy;
    return RN_OK;
}

int rn_dataset_select(rn_dataset **out, const rn_dataset *src, const int *index, int count)
{
    *out = NULL;
    for (int i = 0; i < count; i++)
        if (index[i] < 0 || index[i] >= src->n)
            return rn_fail(RN_ERR_ARG, "sample index %d out of range (data set of %d)", index[i],
                           src->n);
    rn_dataset *d;
    int status = rn_dataset_create(&d, count, src->c, src->h, src->w, src->classes);
    if (status != RN_OK) return status;
    size_t per = (size_t)src->c * (size_t)src->h * (size_t)src->w;
    for (int i = 0; i < count; i++) {
        memcpy(d->pixels + (size_t)i * per, src->pixels + (size_t)index[i] * per, per);
        d->labels[i] = src->labels[index[i]];
    }
    if (src->names) status = rn_dataset_set_names(d, (const char *const *)src->names);
    if (status == RN_OK && src->source) status = rn_data_set_source(d, src->source);
    if (status != RN_OK) {
        rn_dataset_free(d);
        return status;
    }
    *out = d;
    return RN_OK;
}

int rn_dataset_subset(rn_dataset **out, const rn_dataset *src, int first, int count)
{
    *out = NULL;
    if (first < 0 || count < 0 || first > src->n || count > src->n - first)
        return rn_fail(RN_ERR_ARG, "subset of %d samples from %d is outside the data set of %d",
                       count, first, src->n);
    int *index = malloc(((size_t)count + 1) * sizeof *index);
    if (!index) return rn_fail(RN_ERR_NOMEM, "out of memory for a subset of %d", count);
    for (int i = 0; i < count; i++) index[i] = first + i;
    int status = rn_dataset_select(out, src, index, count);
    free(index);
    return status;
}

int rn_dataset_split(const rn_dataset *src, int n_val, uint64_t seed, rn_dataset **train,
                     rn_dataset **val)
{
    *train = *val = NULL;
    if (n_val <= 0 || n_val >= src->n)
        return rn_fail(RN_ERR_ARG, "validation split of %d needs 0 < N < %d (the training set)",
                       n_val, src->n);
    int *perm = malloc((size_t)src->n * sizeof *perm);
    unsigned char *is_val = calloc((size_t)src->n, 1);
    int *index = malloc((size_t)src->n * sizeof *index);
    int status = RN_OK;
    if (!perm || !is_val || !index) {
        status = rn_fail(RN_ERR_NOMEM, "out of memory for a split of %d samples", src->n);
        goto done;
    }
    /* A partial Fisher-Yates shuffle: the first n_val positions are a seeded uniform choice. */
    rn_rng rng;
    rn_rng_seed(&rng, seed ^ 0x76616c5f73706c69ULL);
    for (int i = 0; i < src->n; i++) perm[i] = i;
    for (int i = 0; i < n_val; i++) {
        int j = i + (int)rn_rng_below(&rng, (uint32_t)(src->n - i));
        int t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    for (int i = 0; i < n_val; i++) is_val[perm[i]] = 1;
    int k = 0;
    for (int i = 0; i < src->n; i++)
        if (is_val[i]) index[k++] = i;
    status = rn_dataset_select(val, src, index, k);
    k = 0;
    for (int i = 0; i < src->n; i++)
        if (!is_val[i]) index[k++] = i;
    if (status == RN_OK) status = rn_dataset_select(train, src, index, k);
    if (status != RN_OK) {
        rn_dataset_free(*val);
        *val = NULL;
    }
done:
    free(perm);
    free(is_val);
    free(index);
    return status;
}

int rn_dataset_stats(const rn_dataset *d, float *mean, float *std)
{
    if (d->n <= 0) return rn_fail(RN_ERR_ARG, "statistics of an empty data set");
    size_t plane = (size_t)d->h * (size_t)d->w;
    /* A histogram per channel is exact, and 256 bins make the two-pass variance free. */
    uint64_t hist[256];
    for (int ch = 0; ch < d->c; ch++) {
        memset(hist, 0, sizeof hist);
        for (int i = 0; i < d->n; i++) {
            const uint8_t *p = d->pixels + ((size_t)i * (size_t)d->c + (size_t)ch) * plane;
            for (size_t k = 0; k < plane; k++) hist[p[k]]++;
        }
        double count = (double)d->n * (double)plane, sum = 0.0, sq = 0.0;
        for (int v = 0; v < 256; v++) sum += (double)hist[v] * (v / 255.0);
        double m = sum / count;
        for (int v = 0; v < 256; v++) sq += (double)hist[v] * (v / 255.0 - m) * (v / 255.0 - m);
        mean[ch] = (float)m;
        std[ch] = (float)sqrt(sq / count);
    }
    return RN_OK;
}

/* ---- loading by kind ---------------------------------------------------------------------- */

static int source_dir(const rn_data_source *src, const char **dir)
{
    *dir = src->dir ? src->dir : rn_data_default_dir(src->kind);
    if (!*dir)
        return rn_fail(RN_ERR_ARG, "data set %s needs a directory (--data-dir)",
                       rn_data_kind_name(src->kind));
    return RN_OK;
}

/* The .gz name first, then the raw one; a message naming both when neither is there. */
static int idx_file(char *buf, const char *dir, const char *stem)
{
    char name[256];
    snprintf(name, sizeof name, "%s.gz", stem);
    int status = rn_data_path(buf, dir, name);
    if (status != RN_OK || rn_data_exists(buf)) return status;
    status = rn_data_path(buf, dir, stem);
    if (status != RN_OK || rn_data_exists(buf)) return status;
    return rn_fail(RN_ERR_IO, "%s/%s(.gz): missing file", dir, stem);
}

static int load_idx_kind(rn_dataset **out, const rn_data_source *src, const char *dir,
                         rn_split split)
{
    const char *prefix = split == RN_SPLIT_TRAIN ? "train" : "t10k";
    char images[RN_DATA_PATH_MAX], labels[RN_DATA_PATH_MAX], stem[64];
    snprintf(stem, sizeof stem, "%s-images-idx3-ubyte", prefix);
    int status = idx_file(images, dir, stem);
    snprintf(stem, sizeof stem, "%s-labels-idx1-ubyte", prefix);
    if (status == RN_OK) status = idx_file(labels, dir, stem);
    if (status == RN_OK) status = rn_dataset_load_idx(out, images, labels, 10);
    if (status != RN_OK) return status;
    status = rn_dataset_set_names(
        *out, src->kind == RN_DATA_FASHION_MNIST ? fashion_names : digit_names);
    if (status != RN_OK) {
        rn_dataset_free(*out);
        *out = NULL;
    }
    return status;
}

/* A folder with DIR/train splits there; otherwise DIR is the training set alone. */
static int folder_split_dir(char *buf, const char *dir, rn_split split)
{
    int status = rn_data_path(buf, dir, "train");
    if (status != RN_OK) return status;
    if (!rn_data_is_dir(buf)) {
        if (split == RN_SPLIT_TEST)
            return rn_fail(RN_ERR_IO,
                           "%s: no test split (a folder data set has one only as %s/test beside "
                           "%s/train)",
                           dir, dir, dir);
        snprintf(buf, RN_DATA_PATH_MAX, "%s", dir);
        return RN_OK;
    }
    if (split == RN_SPLIT_TEST) {
        status = rn_data_path(buf, dir, "test");
        if (status == RN_OK && !rn_data_is_dir(buf))
            return rn_fail(RN_ERR_IO, "%s: missing test folder (%s/train exists)", buf, dir);
    }
    return status;
}

static int load_folder_kind(rn_dataset **out, const rn_data_source *src, const char *dir,
                            rn_split split)
{
    int c = src->c ? src->c : 3, h = src->h ? src->h : 32, w = src->w ? src->w : 32;
    char path[RN_DATA_PATH_MAX];
    int status = folder_split_dir(path, dir, split);
    if (status != RN_OK) return status;
    if (split == RN_SPLIT_TRAIN) return rn_dataset_load_folder(out, path, c, h, w, NULL, 0);
    /* The test split takes its label numbers from the training folder's classes. */
    char train_path[RN_DATA_PATH_MAX];
    char **names = NULL;
    int classes = 0;
    status = folder_split_dir(train_path, dir, RN_SPLIT_TRAIN);
    if (status == RN_OK) status = rn_data_folder_classes(train_path, &names, &classes);
    if (status == RN_OK)
        status = rn_dataset_load_folder(out, path, c, h, w, (const char *const *)names, classes);
    rn_data_free_names(names, classes);
    return status;
}

int rn_dataset_load(rn_dataset **out, const rn_data_source *src, rn_split split)
{
    *out = NULL;
    const char *dir;
    int status = source_dir(src, &dir);
    if (status != RN_OK) return status;
    if (!rn_data_is_dir(dir))
        return rn_fail(RN_ERR_IO, "%s: missing data directory for %s", dir,
                       rn_data_kind_name(src->kind));
    switch (src->kind) {
    case RN_DATA_FASHION_MNIST:
    case RN_DATA_MNIST: return load_idx_kind(out, src, dir, split);
    case RN_DATA_CIFAR10: return rn_dataset_load_cifar10(out, dir, split);
    case RN_DATA_CIFAR100: return rn_dataset_load_cifar100(out, dir, split);
    case RN_DATA_FOLDER: return load_folder_kind(out, src, dir, split);
    }
    return rn_fail(RN_ERR_ARG, "unknown data set kind %d", (int)src->kind);
}

int rn_dataset_has_split(const rn_data_source *src, rn_split split)
{
    if (src->kind != RN_DATA_FOLDER || split == RN_SPLIT_TRAIN) return 1;
    const char *dir = src->dir ? src->dir : rn_data_default_dir(src->kind);
    char train[RN_DATA_PATH_MAX], test[RN_DATA_PATH_MAX];
    if (!dir || rn_data_path(train, dir, "train") != RN_OK ||
        rn_data_path(test, dir, "test") != RN_OK)
        return 0;
    return rn_data_is_dir(train) && rn_data_is_dir(test);
}
