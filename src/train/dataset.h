/* Data sets held in memory: uint8 pixels [n, c, h, w], int32 labels, class count and (when
 * known) label names. Every loader decodes the whole split up front, so the training loop only
 * ever touches memory; the background loader (loader.h) does augmentation and normalisation.
 *
 * Sources and the files each one reads (DIR = rn_data_source.dir):
 *   fashion-mnist, mnist  DIR/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]; the .gz name is
 *                         tried first. Default DIR for fashion-mnist: RN_FASHION_MNIST_DIR
 *                         (Debian's dataset-fashion-mnist); mnist has no default.
 *   cifar10               DIR/data_batch_{1..5}.bin (train), DIR/test_batch.bin (test); records
 *                         of 1 label byte + 3072 pixel bytes; names from DIR/batches.meta.txt when
 *                         present, else the published ten.
 *   cifar100              DIR/train.bin, DIR/test.bin; records of coarse label, fine label, 3072
 *                         bytes; the fine labels (100 classes) are used; names from
 *                         DIR/fine_label_names.txt when present, else the published hundred.
 *   folder                DIR/<class>/<image>.{png,jpg,jpeg} (case-insensitive extension; other
 *                         files are ignored). When DIR/train exists, the train split is DIR/train
 *                         and the test split DIR/test; otherwise DIR itself is the train split and
 *                         there is no test split (hold out a validation split instead). Classes
 *                         are the train split's sub-folder names in strcmp order, so the test split
 *                         uses the same label numbers; a test sub-folder unknown to train is an
 *                         error. Images are decoded by io/image.h (libpng, libjpeg-turbo; the
 *                         format is told by the file's first bytes, not its extension; at most
 *                         16384 pixels on a side), converted to c channels (1 = grey, 3 = RGB;
 *                         alpha dropped) and resized to h x w.
 *
 * Errors (RN_ERR_IO for files that cannot be opened or read, RN_ERR_FORMAT for files that are
 * not what they claim) carry a message that names the file and what is wrong. */
#ifndef RN_TRAIN_DATASET_H
#define RN_TRAIN_DATASET_H

#include <stddef.h>
#include <stdint.h>

#define RN_FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"

typedef enum {
    RN_DATA_FASHION_MNIST = 0,
    RN_DATA_MNIST = 1,
    RN_DATA_CIFAR10 = 2,
    RN_DATA_CIFAR100 = 3,
    RN_DATA_FOLDER = 4,
} rn_data_kind;

typedef enum {
    RN_SPLIT_TRAIN = 0,
    RN_SPLIT_TEST = 1,
} rn_split;

/* "fashion-mnist", "mnist", "cifar10", "cifar100", "folder". */
int rn_data_kind_parse(const char *text, rn_data_kind *out);
const char *rn_data_kind_name(rn_data_kind kind);
/* The directory used when none is given, or NULL when the kind has none. */
const char *rn_data_default_dir(rn_data_kind kind);

typedef struct {
    rn_data_kind kind;
    const char *dir; /* NULL: rn_data_default_dir(kind), an error when that is NULL too */
    int c, h, w;     /* folder only: the shape every image is converted to (the model's input);
                        0 means 3 x 32 x 32. Ignored by the fixed-shape formats. */
} rn_data_source;

void rn_data_source_init(rn_data_source *src, rn_data_kind kind, const char *dir);

typedef struct {
    int n, c, h, w;
    int classes;
    uint8_t *pixels; /* [n, c, h, w] */
    int32_t *labels; /* [n], each in [0, classes) */
    char **names;    /* [classes] label names, or NULL when the source has none */
    char *source;    /* what it was read from (a file or directory), for messages; may be NULL */
} rn_dataset;

/* Loads one split of a source. */
int rn_dataset_load(rn_dataset **out, const rn_data_source *src, rn_split split);
/* 1 when the source has that split (a folder without DIR/train has no test split), else 0.
 * Does not validate the files. */
int rn_dataset_has_split(const rn_data_source *src, rn_split split);

/* The format readers behind rn_dataset_load, for callers that have the exact files. */
/* IDX pair, gzip or raw (zlib reads both); labels must be < classes. No names. */
int rn_dataset_load_idx(rn_dataset **out, const char *images_path, const char *labels_path,
                        int classes);
int rn_dataset_load_cifar10(rn_dataset **out, const char *dir, rn_split split);
int rn_dataset_load_cifar100(rn_dataset **out, const char *dir, rn_split split);
/* One folder of class sub-folders. class_names (count classes, sorted or not) fixes the label
 * numbering, as for a test split; NULL takes the sorted sub-folder names. */
int rn_dataset_load_folder(rn_dataset **out, const char *dir, int c, int h, int w,
                           const char *const *class_names, int classes);

/* An empty (zero-filled) data set with room for n images; names NULL. For synthetic data. */
int rn_dataset_create(rn_dataset **out, int n, int c, int h, int w, int classes);
void rn_dataset_free(rn_dataset *d);
/* Copies names (classes entries) into d, replacing any it had. */
int rn_dataset_set_names(rn_dataset *d, const char *const *names);

/* New data sets made of copies of src's samples (names copied too). */
int rn_dataset_subset(rn_dataset **out, const rn_dataset *src, int first, int count);
int rn_dataset_select(rn_dataset **out, const rn_dataset *src, const int *index, int count);
/* Holds out n_val samples (0 < n_val < n) chosen by a shuffle seeded with `seed`: the same seed
 * always picks the same samples. Both parts keep src's order; together they are src. */
int rn_dataset_split(const rn_dataset *src, int n_val, uint64_t seed, rn_dataset **train,
                     rn_dataset **val);

/* Per-channel mean and standard deviation (population, divide by N) of the pixels scaled to
 * [0, 1], accumulated in double: the values to store with rn_net_set_normalization. mean and
 * std hold d->c floats each. */
int rn_dataset_stats(const rn_dataset *d, float *mean, float *std);

/* Decodes one image file (PNG, JPEG or binary PGM/PPM, through rn_image_read in io/image.h, with
 * its limits and errors) into out [c, h, w], converted and resized exactly as the folder loader
 * does, so `predict` sees what training saw. */
int rn_image_load(const char *path, int c, int h, int w, uint8_t *out);

#endif
