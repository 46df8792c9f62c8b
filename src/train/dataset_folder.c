/* A folder of class sub-folders of images. Listings are sorted with strcmp so the label
 * numbers and the sample order never depend on the file system's directory order. */
#define _POSIX_C_SOURCE 200809L

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "core/error.h"
#include "train/dataset.h"
#include "train/dataset_internal.h"

typedef struct {
    char **items;
    int count, cap;
} name_list;

static void list_free(name_list *l)
{
    rn_data_free_names(l->items, l->count);
    l->items = NULL;
    l->count = l->cap = 0;
}

static int list_push(name_list *l, const char *name)
{
    if (l->count == l->cap) {
        int cap = l->cap ? 2 * l->cap : 16;
        char **grown = realloc(l->items, (size_t)cap * sizeof *grown);
        if (!grown) return rn_fail(RN_ERR_NOMEM, "out of memory listing %s", name);
        l->items = grown;
        l->cap = cap;
    }
    if (!(l->items[l->count] = strdup(name))) return rn_fail(RN_ERR_NOMEM, "out of memory");
    l->count++;
    return RN_OK;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int is_image_name(const char *name)
{
    const char *dot = strrchr(name, '.');
    return dot && (strcasecmp(dot, ".png") == 0 || strcasecmp(dot, ".jpg") == 0 ||
                   strcasecmp(dot, ".jpeg") == 0);
}

/* The entries of dir that are directories (want_dirs) or image files, sorted. */
static int list_dir(const char *dir, int want_dirs, name_list *out)
{
    DIR *d = opendir(dir);
    if (!d)
        return rn_fail(RN_ERR_IO, "%s: %s", dir,
                       errno == ENOENT ? "missing directory" : strerror(errno));
    int status = RN_OK;
    struct dirent *de;
    char path[RN_DATA_PATH_MAX];
    while (status == RN_OK && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.') continue; /* ".", "..", and hidden files */
        status = rn_data_path(path, dir, de->d_name);
        if (status != RN_OK) break;
        struct stat st;
        if (stat(path, &st) != 0) continue; /* a dangling link is not an image */
        if (want_dirs ? S_ISDIR(st.st_mode) : (S_ISREG(st.st_mode) && is_image_name(de->d_name)))
            status = list_push(out, de->d_name);
    }
    closedir(d);
    if (status != RN_OK) {
        list_free(out);
        return status;
    }
    if (out->count > 1) qsort(out->items, (size_t)out->count, sizeof *out->items, by_name);
    return RN_OK;
}

int rn_data_folder_classes(const char *dir, char ***names, int *count)
{
    *names = NULL;
    *count = 0;
    name_list l = {0};
    int status = list_dir(dir, 1, &l);
    if (status != RN_OK) return status;
    if (l.count == 0) {
        list_free(&l);
        return rn_fail(RN_ERR_FORMAT, "%s: no class sub-folders (expected %s/<class>/<image>)",
                       dir, dir);
    }
    *names = l.items;
    *count = l.count;
    return RN_OK;
}

/* Every image of the data set as a path and a label, in class order then name order. */
typedef struct {
    name_list paths;
    int *labels;
} sample_list;

static int collect(const char *dir, char **classes, int nclasses, char **folders, int nfolders,
                   sample_list *s)
{
    char class_dir[RN_DATA_PATH_MAX], path[RN_DATA_PATH_MAX];
    int status = RN_OK, cap = 0;
    for (int f = 0; status == RN_OK && f < nfolders; f++) {
        int label = -1;
        for (int k = 0; k < nclasses; k++)
            if (strcmp(classes[k], folders[f]) == 0) label = k;
        status = rn_data_path(class_dir, dir, folders[f]);
        if (status != RN_OK) break;
        if (label < 0) {
            status = rn_fail(RN_ERR_FORMAT, "%s: class folder not among the %d training classes",
                             class_dir, nclasses);
            break;
        }
        name_list files = {0};
        status = list_dir(class_dir, 0, &files);
        if (status == RN_OK && files.count == 0)
            status = rn_fail(RN_ERR_FORMAT,
                             "%s: empty class folder (no .png, .jpg or .jpeg images)", class_dir);
        for (int i = 0; status == RN_OK && i < files.count; i++) {
            status = rn_data_path(path, class_dir, files.items[i]);
            if (status == RN_OK) status = list_push(&s->paths, path);
            if (status == RN_OK && s->paths.count > cap) {
                cap = s->paths.cap;
                int *grown = realloc(s->labels, (size_t)cap * sizeof *grown);
                if (!grown) status = rn_fail(RN_ERR_NOMEM, "out of memory listing %s", class_dir);
                else s->labels = grown;
            }
            if (status == RN_OK) s->labels[s->paths.count - 1] = label;
        }
        list_free(&files);
    }
    return status;
}

int rn_dataset_load_folder(rn_dataset **out, const char *dir, int c, int h, int w,
                           const char *const *class_names, int classes)
{
    *out = NULL;
    if (c != 1 && c != 3)
        return rn_fail(RN_ERR_ARG, "%s: images convert to 1 or 3 channels, not %d", dir, c);
    if (class_names && classes <= 0)
        return rn_fail(RN_ERR_ARG, "%s: a class list needs at least one class", dir);
    char **folders = NULL, **owned = NULL;
    int nfolders = 0;
    int status = rn_data_folder_classes(dir, &folders, &nfolders);
    if (status != RN_OK) return status;
    char **names = folders;
    if (class_names) {
        /* A private copy, so that the lookup below needs no const casts. */
        owned = calloc((size_t)classes, sizeof *owned);
        status = owned ? RN_OK : rn_fail(RN_ERR_NOMEM, "out of memory");
        for (int k = 0; status == RN_OK && k < classes; k++)
            if (!(owned[k] = strdup(class_names[k])))
                status = rn_fail(RN_ERR_NOMEM, "out of memory");
        names = owned;
    } else {
        classes = nfolders;
    }
    sample_list s = {{0}, NULL};
    rn_dataset *d = NULL;
    if (status == RN_OK) status = collect(dir, names, classes, folders, nfolders, &s);
    if (status == RN_OK) status = rn_dataset_create(&d, s.paths.count, c, h, w, classes);
    size_t per = (size_t)c * (size_t)h * (size_t)w;
    for (int i = 0; status == RN_OK && i < s.paths.count; i++) {
        status = rn_image_load(s.paths.items[i], c, h, w, d->pixels + (size_t)i * per);
        d->labels[i] = s.labels[i];
    }
    if (status == RN_OK) status = rn_dataset_set_names(d, (const char *const *)names);
    if (status == RN_OK) status = rn_data_set_source(d, dir);
    list_free(&s.paths);
    free(s.labels);
    rn_data_free_names(folders, nfolders);
    if (owned) rn_data_free_names(owned, classes);
    if (status != RN_OK) {
        rn_dataset_free(d);
        return status;
    }
    *out = d;
    return RN_OK;
}
