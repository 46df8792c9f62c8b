/* The batch loader. One background thread fills a ring of prefetch + 1 batch slots: the caller
 * holds the slot of the batch it was last given, the thread may fill the next `prefetch`.
 * Batches carry the generation of the rn_loader_start that asked for them, so a batch begun
 * before a restart is finished and thrown away rather than interrupted. */
#define _POSIX_C_SOURCE 200809L

#include "train/loader.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/error.h"
#include "core/rng.h"

struct rn_loader {
    const rn_dataset *data;
    rn_loader_options opt; /* mean and std pointers cleared: the table below replaces them */
    float *lut;            /* [c][256]: (v / 255 - mean) / std, so a pixel costs one load */
    int *perm;             /* [n] the current epoch's order */
    int per, nbatches, nslots;
    float *x;              /* [nslots][batch * per] */
    int *labels, *index;   /* [nslots][batch] */
    int *slot_batch;       /* the batch a slot holds once ready, for generation slot_gen */
    unsigned *slot_gen;

    pthread_mutex_t mu;
    pthread_cond_t work, ready;
    pthread_t thread;
    int has_thread, sync_init;
    double wait_total; /* touched only by the caller's thread */
    /* guarded by mu */
    int stop, started, busy;
    unsigned gen;
    int epoch, next_make, next_take;
};

void rn_loader_options_init(rn_loader_options *opt, int training)
{
    memset(opt, 0, sizeof *opt);
    opt->batch = 128;
    opt->shuffle = training != 0;
    opt->prefetch = 2;
}

void rn_loader_default_augment(rn_data_kind kind, int w, int *crop_pad, int *flip)
{
    switch (kind) {
    case RN_DATA_CIFAR10:
    case RN_DATA_CIFAR100: *crop_pad = 4, *flip = 1; break;
    /* Fashion-MNIST: pad 2 + flip, the augmentation of every recipe of 20 epochs or more that
     * was best on a 5000-image validation split (docs/results.md). In short runs it costs as
     * much as it gives or more (resnet8-w32-s2, 8 epochs: 6.88% validation error with it, 6.88%
     * without; resnet8, 7 epochs: 8.8% with it, 7.5% without): those may say --no-crop
     * --no-flip. MNIST: none; digits must not be mirrored, and crops were not measured there. */
    case RN_DATA_FASHION_MNIST: *crop_pad = 2, *flip = 1; break;
    case RN_DATA_MNIST: *crop_pad = 0, *flip = 0; break;
    default: *crop_pad = w / 8, *flip = 1; break;
    }
}

/* ---- randomness: pure functions of (seed, epoch, position) -------------------------------- */

static uint64_t mix64(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* The tag keeps the epoch's shuffle and its samples' augmentation independent streams. */
static uint64_t stream_seed(uint64_t seed, uint64_t tag, uint64_t epoch, uint64_t pos)
{
    return mix64(mix64(mix64(seed ^ tag) ^ epoch) ^ pos);
}

#define TAG_ORDER 0x6f72646572ULL
#define TAG_SAMPLE 0x73616d706c65ULL

static void epoch_order(rn_loader *l, int epoch)
{
    int n = l->data->n;
    for (int i = 0; i < n; i++) l->perm[i] = i;
    if (!l->opt.shuffle) return;
    rn_rng rng;
    rn_rng_seed(&rng, stream_seed(l->opt.seed, TAG_ORDER, (uint64_t)epoch, 0));
    for (int i = n - 1; i > 0; i--) {
        int j = (int)rn_rng_below(&rng, (uint32_t)i + 1);
        int t = l->perm[i];
        l->perm[i] = l->perm[j];
        l->perm[j] = t;
    }
}

static int batch_size(const rn_loader *l, int k)
{
    int left = l->data->n - k * l->opt.batch;
    return left < l->opt.batch ? left : l->opt.batch;
}

/* This part's rows of batch k: [*lo, return value). */
static int part_rows(const rn_loader *l, int k, int *lo)
{
    const long n = batch_size(l, k), parts = l->opt.parts > 1 ? l->opt.parts : 1;
    *lo = (int)(n * l->opt.part / parts);
    return (int)(n * (l->opt.part + 1) / parts);
}

/* Writes sample `src` into out [c, h, w], cropped at offset (dy, dx), mirrored, normalised. */
static void put_sample(const rn_loader *l, float *out, int src, int dy, int dx, int flip)
{
    const rn_dataset *d = l->data;
    const uint8_t *img = d->pixels + (size_t)src * (size_t)l->per;
    for (int ch = 0; ch < d->c; ch++) {
        const float *lut = l->lut + ch * 256;
        const uint8_t *plane = img + (size_t)ch * (size_t)d->h * (size_t)d->w;
        for (int y = 0; y < d->h; y++) {
            float *row = out + ((size_t)ch * (size_t)d->h + (size_t)y) * (size_t)d->w;
            int sy = y + dy;
            if (sy < 0 || sy >= d->h) {
                for (int x = 0; x < d->w; x++) row[x] = lut[0];
                continue;
            }
            const uint8_t *srow = plane + (size_t)sy * (size_t)d->w;
            for (int x = 0; x < d->w; x++) {
                int sx = (flip ? d->w - 1 - x : x) + dx;
                row[x] = lut[sx >= 0 && sx < d->w ? srow[sx] : 0];
            }
        }
    }
}

/* Random erasing: the area and aspect ratio of Zhong et al. (2017), up to 10 tries for a
 * rectangle that fits (as torchvision's RandomErasing), every channel's pixels random. Draws
 * come after the crop and flip draws, so erasing leaves those unchanged. */
static void erase_sample(const rn_loader *l, float *out, rn_rng *rng)
{
    const rn_dataset *d = l->data;
    if (!(rn_rng_uniform(rng) < l->opt.erase)) return;
    for (int attempt = 0; attempt < 10; attempt++) {
        const double area = (0.02 + 0.38 * rn_rng_uniform(rng)) * d->h * d->w;
        const double ratio = exp(log(0.3) + 2.0 * log(1.0 / 0.3) * rn_rng_uniform(rng));
        const int eh = (int)lround(sqrt(area * ratio)), ew = (int)lround(sqrt(area / ratio));
        if (eh < 1 || ew < 1 || eh > d->h || ew > d->w) continue;
        const int y0 = (int)rn_rng_below(rng, (uint32_t)(d->h - eh + 1));
        const int x0 = (int)rn_rng_below(rng, (uint32_t)(d->w - ew + 1));
        for (int ch = 0; ch < d->c; ch++)
            for (int y = y0; y < y0 + eh; y++) {
                float *row = out + ((size_t)ch * (size_t)d->h + (size_t)y) * (size_t)d->w;
                for (int x = x0; x < x0 + ew; x++)
                    row[x] = l->lut[ch * 256 + rn_rng_below(rng, 256)];
            }
        return;
    }
}

static void fill(rn_loader *l, int slot, int epoch, int k)
{
    int lo, hi = part_rows(l, k, &lo), pad = l->opt.crop_pad;
    float *x = l->x + (size_t)slot * (size_t)l->opt.batch * (size_t)l->per;
    int *labels = l->labels + (size_t)slot * (size_t)l->opt.batch;
    int *index = l->index + (size_t)slot * (size_t)l->opt.batch;
    for (int i = 0; i < hi - lo; i++) {
        int pos = k * l->opt.batch + lo + i, src = l->perm[pos];
        rn_rng rng;
        rn_rng_seed(&rng, stream_seed(l->opt.seed, TAG_SAMPLE, (uint64_t)epoch, (uint64_t)pos));
        /* Always three draws, so switching crop or flip off leaves the other one unchanged. */
        int dy = (int)rn_rng_below(&rng, 2u * (uint32_t)pad + 1) - pad;
        int dx = (int)rn_rng_below(&rng, 2u * (uint32_t)pad + 1) - pad;
        int flip = (int)rn_rng_below(&rng, 2) && l->opt.flip;
        put_sample(l, x + (size_t)i * (size_t)l->per, src, dy, dx, flip);
        if (l->opt.erase > 0.0f) erase_sample(l, x + (size_t)i * (size_t)l->per, &rng);
        labels[i] = l->data->labels[src];
        index[i] = src;
    }
}

/* ---- the background thread ---------------------------------------------------------------- */

static void *worker(void *arg)
{
    rn_loader *l = arg;
    pthread_mutex_lock(&l->mu);
    for (;;) {
        while (!l->stop && !(l->started && l->next_make < l->nbatches &&
                             l->next_make < l->next_take + l->opt.prefetch))
            pthread_cond_wait(&l->work, &l->mu);
        if (l->stop) break;
        int k = l->next_make++, epoch = l->epoch, slot = k % l->nslots;
        unsigned gen = l->gen;
        l->busy = 1;
        pthread_mutex_unlock(&l->mu);
        fill(l, slot, epoch, k);
        pthread_mutex_lock(&l->mu);
        l->busy = 0;
        if (gen == l->gen) {
            l->slot_batch[slot] = k;
            l->slot_gen[slot] = gen;
        }
        pthread_cond_broadcast(&l->ready); /* a waiting rn_loader_start needs !busy too */
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

/* ---- the API -------------------------------------------------------------------------------- */

int rn_loader_create(rn_loader **out, const rn_dataset *data, const rn_loader_options *opt)
{
    *out = NULL;
    if (!data || data->n < 0 || data->c <= 0)
        return rn_fail(RN_ERR_ARG, "loader: no data set");
    if (opt->batch <= 0 || opt->crop_pad < 0 || opt->crop_pad > 4096 || opt->prefetch < 0 ||
        opt->prefetch > 64 || !(opt->erase >= 0.0f && opt->erase <= 1.0f) || opt->parts < 0 ||
        opt->part < 0 || (opt->part > 0 && opt->part >= opt->parts))
        return rn_fail(RN_ERR_ARG,
                       "loader: bad options (batch %d must be > 0, crop padding %d in 0..4096, "
                       "prefetch %d in 0..64, erasing probability %g in [0, 1], part %d of %d)",
                       opt->batch, opt->crop_pad, opt->prefetch, (double)opt->erase, opt->part,
                       opt->parts);
    for (int ch = 0; opt->std && ch < data->c; ch++)
        if (!(opt->std[ch] > 0.0f))
            return rn_fail(RN_ERR_ARG, "loader: std of channel %d is %g, must be > 0", ch,
                           (double)opt->std[ch]);
    rn_loader *l = calloc(1, sizeof *l);
    if (!l) return rn_fail(RN_ERR_NOMEM, "loader: out of memory");
    l->data = data;
    l->opt = *opt;
    l->opt.mean = l->opt.std = NULL;
    l->per = data->c * data->h * data->w;
    l->nbatches = opt->drop_last ? data->n / opt->batch : (data->n + opt->batch - 1) / opt->batch;
    l->nslots = opt->prefetch + 1;
    size_t slots = (size_t)l->nslots * (size_t)opt->batch;
    l->lut = malloc((size_t)data->c * 256 * sizeof *l->lut);
    l->perm = malloc(((size_t)data->n + 1) * sizeof *l->perm);
    l->x = malloc(slots * (size_t)l->per * sizeof *l->x);
    l->labels = malloc(slots * sizeof *l->labels);
    l->index = malloc(slots * sizeof *l->index);
    l->slot_batch = malloc((size_t)l->nslots * sizeof *l->slot_batch);
    l->slot_gen = calloc((size_t)l->nslots, sizeof *l->slot_gen);
    if (!l->lut || !l->perm || !l->x || !l->labels || !l->index || !l->slot_batch ||
        !l->slot_gen) {
        const int nslots = l->nslots; /* read before l is freed */
        rn_loader_free(l);
        return rn_fail(RN_ERR_NOMEM, "loader: out of memory for %d batches of %d images",
                       nslots, opt->batch);
    }
    for (int ch = 0; ch < data->c; ch++) {
        float mean = opt->mean ? opt->mean[ch] : 0.0f, std = opt->std ? opt->std[ch] : 1.0f;
        for (int v = 0; v < 256; v++) l->lut[ch * 256 + v] = ((float)v / 255.0f - mean) / std;
    }
    for (int s = 0; s < l->nslots; s++) l->slot_batch[s] = -1;
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->work, NULL);
    pthread_cond_init(&l->ready, NULL);
    l->sync_init = 1;
    if (opt->prefetch > 0) {
        if (pthread_create(&l->thread, NULL, worker, l) != 0) {
            rn_loader_free(l);
            return rn_fail(RN_ERR_NOMEM, "loader: cannot start the background thread");
        }
        l->has_thread = 1;
    }
    *out = l;
    return RN_OK;
}

void rn_loader_free(rn_loader *l)
{
    if (!l) return;
    if (l->has_thread) {
        pthread_mutex_lock(&l->mu);
        l->stop = 1;
        pthread_cond_broadcast(&l->work);
        pthread_mutex_unlock(&l->mu);
        pthread_join(l->thread, NULL); /* lets a batch in progress finish into its own slot */
    }
    if (l->sync_init) {
        pthread_mutex_destroy(&l->mu);
        pthread_cond_destroy(&l->work);
        pthread_cond_destroy(&l->ready);
    }
    free(l->lut);
    free(l->perm);
    free(l->x);
    free(l->labels);
    free(l->index);
    free(l->slot_batch);
    free(l->slot_gen);
    free(l);
}

int rn_loader_num_batches(const rn_loader *l) { return l->nbatches; }

int rn_loader_start(rn_loader *l, int epoch, int batch)
{
    if (epoch < 0 || batch < 0 || batch > l->nbatches)
        return rn_fail(RN_ERR_ARG, "loader: cannot start epoch %d at batch %d (%d per epoch)",
                       epoch, batch, l->nbatches);
    pthread_mutex_lock(&l->mu);
    l->gen++;
    /* Paused, the thread cannot take another job (with the old order and the new generation)
     * in the moment between finishing its current one and our rewriting the order. */
    l->started = 0;
    while (l->busy) pthread_cond_wait(&l->ready, &l->mu); /* it may be reading perm */
    for (int s = 0; s < l->nslots; s++) l->slot_batch[s] = -1;
    epoch_order(l, epoch);
    l->epoch = epoch;
    l->next_make = l->next_take = batch;
    l->started = 1;
    pthread_cond_broadcast(&l->work);
    pthread_mutex_unlock(&l->mu);
    return RN_OK;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int rn_loader_next(rn_loader *l, rn_batch *b)
{
    memset(b, 0, sizeof *b);
    double t0 = now_s();
    pthread_mutex_lock(&l->mu);
    if (!l->started) {
        pthread_mutex_unlock(&l->mu);
        return rn_fail(RN_ERR_ARG, "loader: rn_loader_next before rn_loader_start");
    }
    int k = l->next_take, epoch = l->epoch;
    b->epoch = epoch;
    b->batch = k;
    if (k >= l->nbatches) {
        pthread_mutex_unlock(&l->mu);
        return RN_OK;
    }
    int slot = k % l->nslots;
    /* Taking batch k gives back the slot of batch k - 1, which the thread may now refill. */
    l->next_take = k + 1;
    if (l->has_thread) {
        pthread_cond_broadcast(&l->work);
        while (!(l->slot_batch[slot] == k && l->slot_gen[slot] == l->gen))
            pthread_cond_wait(&l->ready, &l->mu);
        pthread_mutex_unlock(&l->mu);
    } else {
        pthread_mutex_unlock(&l->mu);
        fill(l, slot, epoch, k);
    }
    b->x = l->x + (size_t)slot * (size_t)l->opt.batch * (size_t)l->per;
    b->labels = l->labels + (size_t)slot * (size_t)l->opt.batch;
    b->index = l->index + (size_t)slot * (size_t)l->opt.batch;
    int lo;
    b->n = part_rows(l, k, &lo) - lo;
    b->total = batch_size(l, k);
    b->wait_s = now_s() - t0;
    l->wait_total += b->wait_s;
    return RN_OK;
}

double rn_loader_wait_seconds(const rn_loader *l) { return l->wait_total; }

void rn_loader_reset_wait(rn_loader *l) { l->wait_total = 0.0; }
