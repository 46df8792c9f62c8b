/* CIFAR-10 and CIFAR-100, "binary version": fixed-size records of label byte(s) followed by a
 * 32 x 32 RGB image stored as three 1024-byte planes, which is already [c, h, w]. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "train/dataset.h"
#include "train/dataset_internal.h"

#define CIFAR_PIXELS 3072

static const char *const cifar10_names[10] = {"airplane", "automobile", "bird",  "cat",  "deer",
                                              "dog",      "frog",       "horse", "ship", "truck"};

static const char *const cifar100_names[100] = {
    "apple",      "aquarium_fish", "baby",        "bear",         "beaver",    "bed",
    "bee",        "beetle",        "bicycle",     "bottle",       "bowl",      "boy",
    "bridge",     "bus",           "butterfly",   "camel",        "can",       "castle",
    "caterpillar", "cattle",       "chair",       "chimpanzee",   "clock",     "cloud",
    "cockroach",  "couch",         "crab",        "crocodile",    "cup",       "dinosaur",
    "dolphin",    "elephant",      "flatfish",    "forest",       "fox",       "girl",
    "hamster",    "house",         "kangaroo",    "keyboard",     "lamp",      "lawn_mower",
    "leopard",    "lion",          "lizard",      "lobster",      "man",       "maple_tree",
    "motorcycle", "mountain",      "mouse",       "mushroom",     "oak_tree",  "orange",
    "orchid",     "otter",         "palm_tree",   "pear",         "pickup_truck", "pine_tree",
    "plain",      "plate",         "poppy",       "porcupine",    "possum",    "rabbit",
    "raccoon",    "ray",           "road",        "rocket",       "rose",      "sea",
    "seal",       "shark",         "shrew",       "skunk",        "skyscraper", "snail",
    "snake",      "spider",        "squirrel",    "streetcar",    "sunflower", "sweet_pepper",
    "table",      "tank",          "telephone",   "television",   "tiger",     "tractor",
    "train",      "trout",         "tulip",       "turtle",       "wardrobe",  "whale",
    "willow_tree", "wolf",         "woman",       "worm"};

typedef struct {
    int label_bytes; /* 1 (CIFAR-10) or 2 (CIFAR-100: coarse, fine) */
    int classes;     /* of the label that is kept, the last one */
    int coarse;      /* classes of the first label byte when there are two */
} cifar_format;

/* The number of records in path, or an error when it is missing or not whole records. */
static int count_records(const char *path, const cifar_format *f, long *records)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return rn_fail(RN_ERR_IO, "%s: %s", path,
                       errno == ENOENT ? "missing file" : strerror(errno));
    long size = -1;
    if (fseek(fp, 0, SEEK_END) == 0) size = ftell(fp);
    fclose(fp);
    long rec = f->label_bytes + CIFAR_PIXELS;
    if (size < 0) return rn_fail(RN_ERR_IO, "%s: cannot determine the size", path);
    if (size == 0) return rn_fail(RN_ERR_FORMAT, "%s: empty file", path);
    if (size % rec != 0)
        return rn_fail(RN_ERR_FORMAT,
                       "%s: truncated: %ld bytes is not a whole number of %ld-byte records", path,
                       size, rec);
    *records = size / rec;
    return RN_OK;
}

/* Reads the records of path into d from sample `first` on. */
static int read_records(const char *path, const cifar_format *f, rn_dataset *d, int first,
                        long records)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) return rn_fail(RN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    unsigned char rec[2 + CIFAR_PIXELS];
    size_t len = (size_t)f->label_bytes + CIFAR_PIXELS;
    int status = RN_OK;
    for (long r = 0; status == RN_OK && r < records; r++) {
        if (fread(rec, 1, len, fp) != len) {
            status = rn_fail(RN_ERR_IO, "%s: read error at record %ld", path, r);
            break;
        }
        int label = rec[f->label_bytes - 1];
        if (f->label_bytes == 2 && rec[0] >= f->coarse)
            status = rn_fail(RN_ERR_FORMAT, "%s: record %ld: coarse label %d out of range (%d)",
                             path, r, rec[0], f->coarse);
        else if (label >= f->classes)
            status = rn_fail(RN_ERR_FORMAT, "%s: record %ld: label %d out of range (%d classes)",
                             path, r, label, f->classes);
        size_t i = (size_t)first + (size_t)r;
        memcpy(d->pixels + i * CIFAR_PIXELS, rec + f->label_bytes, CIFAR_PIXELS);
        d->labels[i] = label;
    }
    fclose(fp);
    return status;
}

static int load_files(rn_dataset **out, const char *dir, const char *const *files, int nfiles,
                      const cifar_format *f, const char *names_file,
                      const char *const *default_names)
{
    *out = NULL;
    char path[RN_DATA_PATH_MAX];
    long records[8], total = 0;
    int status = RN_OK;
    for (int i = 0; status == RN_OK && i < nfiles; i++) {
        status = rn_data_path(path, dir, files[i]);
        if (status == RN_OK) status = count_records(path, f, &records[i]);
        total += records[i];
    }
    if (status != RN_OK) return status;
    if (total > 0x7fffffffL) return rn_fail(RN_ERR_FORMAT, "%s: too many records", dir);
    rn_dataset *d;
    status = rn_dataset_create(&d, (int)total, 3, 32, 32, f->classes);
    if (status != RN_OK) return status;
    int first = 0;
    for (int i = 0; status == RN_OK && i < nfiles; i++) {
        status = rn_data_path(path, dir, files[i]);
        if (status == RN_OK) status = read_records(path, f, d, first, records[i]);
        first += (int)records[i];
    }
    if (status == RN_OK) status = rn_data_path(path, dir, names_file);
    if (status == RN_OK) status = rn_data_read_names(d, path);
    if (status == RN_OK && !d->names) status = rn_dataset_set_names(d, default_names);
    if (status == RN_OK) status = rn_data_set_source(d, dir);
    if (status != RN_OK) {
        rn_dataset_free(d);
        return status;
    }
    *out = d;
    return RN_OK;
}

int rn_dataset_load_cifar10(rn_dataset **out, const char *dir, rn_split split)
{
    static const char *const train[] = {"data_batch_1.bin", "data_batch_2.bin",
                                        "data_batch_3.bin", "data_batch_4.bin",
                                        "data_batch_5.bin"};
    static const char *const test[] = {"test_batch.bin"};
    const cifar_format f = {1, 10, 0};
    return split == RN_SPLIT_TRAIN
               ? load_files(out, dir, train, 5, &f, "batches.meta.txt", cifar10_names)
               : load_files(out, dir, test, 1, &f, "batches.meta.txt", cifar10_names);
}

int rn_dataset_load_cifar100(rn_dataset **out, const char *dir, rn_split split)
{
    const char *const file[] = {split == RN_SPLIT_TRAIN ? "train.bin" : "test.bin"};
    const cifar_format f = {2, 100, 20};
    return load_files(out, dir, file, 1, &f, "fine_label_names.txt", cifar100_names);
}
