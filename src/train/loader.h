/* Batches of float32 images [b, c, h, w] from an in-memory data set: seeded shuffle per epoch,
 * random crop with zero padding and horizontal flip, normalisation (x / 255 - mean) / std,
 * prepared on a background thread while the caller computes.
 *
 * Everything random is a pure function of (seed, epoch, position in the epoch): the epoch's
 * order of (seed, epoch), each sample's crop offset and flip of (seed, epoch, position). So the
 * batches never depend on thread timing, and rn_loader_start(l, E, K) gives exactly the batches
 * K, K+1, ... that an uninterrupted epoch E gives (with the same data set, batch size and
 * options). A checkpoint needs only (seed, epoch, next batch) to restore the data order.
 *
 * Padding is pixel value 0, normalised like every other pixel (as torchvision's RandomCrop
 * before Normalize). The crop keeps the image size: the output is the h x w window at a random
 * offset in [-pad, pad] on each axis. Flip mirrors the cropped window. Erasing then replaces a
 * rectangle of it by uniformly random pixel values (0..255, normalised like the rest). */
#ifndef RN_TRAIN_LOADER_H
#define RN_TRAIN_LOADER_H

#include <stdint.h>

#include "train/dataset.h"

typedef struct {
    int batch;         /* images per batch, > 0 */
    int shuffle;       /* a new seeded order every epoch; 0 keeps the data set's order */
    int crop_pad;      /* random crop with this zero padding; 0 = no crop */
    int flip;          /* random horizontal flip with probability 1/2 */
    float erase;       /* random erasing (Zhong et al. 2017): with this probability a rectangle
                          of 2-40% of the image, aspect ratio 0.3-3.3, becomes random pixels;
                          0 = never */
    int drop_last;     /* drop the last partial batch of an epoch */
    uint64_t seed;
    int prefetch;      /* batches prepared ahead on the background thread; 0 = no thread, each
                          batch is made inside rn_loader_next */
    const float *mean; /* per channel (data set's c), copied at create; NULL = 0 */
    const float *std;  /* per channel, copied at create; NULL = 1 */
    /* Data parallelism: of each batch of n images, only rows [part * n / parts, (part + 1) * n
     * / parts), the same bits as those rows of the whole batch; parts 0 or 1: all of it. */
    int part, parts;
} rn_loader_options;

/* training != 0: batch 128, shuffle, drop_last 0, no augmentation (set crop_pad / flip, e.g.
 * from rn_loader_default_augment), prefetch 2, seed 0.
 * training == 0 (evaluation): batch 128, no shuffle, no augmentation, keep the last batch. */
void rn_loader_options_init(rn_loader_options *opt, int training);
/* Sensible augmentation for a data set of this kind and image width: CIFAR pad 4 + flip,
 * none for Fashion-MNIST and MNIST (short runs learn faster without; a long run asks for pad 2,
 * plus flip for Fashion-MNIST only: digits are not mirror-symmetric), folder pad w/8 + flip. */
void rn_loader_default_augment(rn_data_kind kind, int w, int *crop_pad, int *flip);

typedef struct {
    const float *x;      /* [n, c, h, w] */
    const int *labels;   /* [n] */
    const int *index;    /* [n] the data set index of each image */
    int n;               /* images in this batch (this part's rows); 0 at the end of the epoch */
    int total;           /* images in the whole batch (all parts) */
    int epoch, batch;    /* which batch of which epoch this is */
    double wait_s;       /* seconds the caller waited in rn_loader_next for it */
} rn_batch;

typedef struct rn_loader rn_loader;

/* data must stay alive and unchanged until rn_loader_free. The loader starts nothing until
 * rn_loader_start. */
int rn_loader_create(rn_loader **out, const rn_dataset *data, const rn_loader_options *opt);
/* Safe at any time, also while the background thread is preparing a batch. */
void rn_loader_free(rn_loader *l);

/* Batches per epoch (the last partial one counted unless drop_last). */
int rn_loader_num_batches(const rn_loader *l);
/* Begins epoch `epoch` (any number >= 0) at batch `batch` (0 <= batch <= num_batches), dropping
 * whatever was prepared before. */
int rn_loader_start(rn_loader *l, int epoch, int batch);
/* The next batch of the current epoch; b->n == 0 once the epoch is over. The batch's arrays stay
 * valid until the next rn_loader_next, rn_loader_start or rn_loader_free. */
int rn_loader_next(rn_loader *l, rn_batch *b);
/* Total seconds callers waited in rn_loader_next since create (or the last reset). */
double rn_loader_wait_seconds(const rn_loader *l);
void rn_loader_reset_wait(rn_loader *l);

#endif
