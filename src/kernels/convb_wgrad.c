/* The weight gradient of a convolution on channel-blocked tensors (kernels.h):
 * dw[k][c][ky][kx] += sum over images and output pixels of x[the pixel's tap input][c] * dy[k].
 *
 * A slot is one tap of half an input block (a whole one when the output block is single)
 * against one pair of output blocks (or the last, single block): r x kbs accumulator vectors
 * that stay in registers while the microkernel (convb_wgrad_row.h) runs over a rectangle of
 * output pixels, with nothing packed or padded: the tap's border is left out by clipping the
 * rectangle, which is where the padding's zeros would have been.
 *
 * A task is up to SLOTS_MAX slots of one pair. It walks the batch a chunk of output
 * pixels at a time (whole images on small maps, bands of rows on large ones: about CHUNK_BYTES
 * of dy for the pair) and runs every slot over the chunk before the next, adding each slot's
 * sums to its accumulators in memory: the chunk's dy is read from memory once for all the
 * input channels and taps, and then from cache (one slot per task, streaming the whole batch
 * for every input channel, ran the 1x1 weight gradients of resnet50 at 25-50% of the peak).
 * Each dw value is summed by one task, chunk after chunk in order: the same bits for any
 * thread count (the chunks depend on the shape only). */
#include "kernels/convb.h"
#include "kernels/kernels.h"

enum { SLOTS_MAX = 64 };            /* accumulator slots of a task: 64 KB of stack at 16 lanes */
enum { CHUNK_BYTES = 32 * 1024 };   /* dy of a pair per chunk: with its x, within L1 + L2 */

/* The output pixels whose input at tap offset k lies inside a map of size n: [*lo, *hi). */
static void inside(int *lo, int *hi, int k, int n, int out, int stride, int pad)
{
    int a = pad - k > 0 ? (pad - k + stride - 1) / stride : 0;
    int b = (n - 1 + pad - k) >= 0 ? (n - 1 + pad - k) / stride + 1 : 0;
    *lo = a;
    *hi = b < out ? b : out;
}

/* How the batch is cut into chunks: imgs whole images at a time, or (imgs 1) bands of rows. */
typedef struct {
    int imgs, rows;
} chunking;

static chunking chunks_of(const rn_conv_shape *sh, int cb)
{
    const size_t image = (size_t)2 * sh->oh * sh->ow * cb * sizeof(float); /* a pair's dy */
    if (image <= CHUNK_BYTES) {
        const size_t imgs = CHUNK_BYTES / image;
        return (chunking){imgs < (size_t)sh->n ? (int)imgs : sh->n, sh->oh};
    }
    const size_t row = (size_t)2 * sh->ow * cb * sizeof(float);
    const size_t rows = CHUNK_BYTES / row;
    return (chunking){1, rows < 1 ? 1 : rows < (size_t)sh->oh ? (int)rows : sh->oh};
}

typedef struct {
    const rn_convb_fns *v;
    const rn_conv_shape *sh;
    const float *x, *dy;
    int planar_in, cb, cbn, kbn, taps;
} wgrad_job;

/* Slot s of the pair at output block kb: its tap, its first input channel c0 (of block cbk),
 * its r channels (0: the slot is empty) and the pair's kbs output blocks. */
typedef struct {
    int tap, cbk, c0, r, kbs;
} slot_info;

static slot_info slot_of(const wgrad_job *j, int kb, int s)
{
    const int cb = j->cb, part = s / j->taps % 2;
    slot_info o = {s % j->taps, s / j->taps / 2, 0, 0, kb + 1 < j->kbn ? 2 : 1};
    const int width = o.kbs > 1 ? cb / 2 : cb;
    if (o.kbs == 1 && part == 1) return o; /* a single block takes whole input blocks */
    o.c0 = o.cbk * cb + part * width;
    o.r = j->sh->c - o.c0 < width ? j->sh->c - o.c0 : width;
    if (o.r < 0) o.r = 0;
    return o;
}

/* Slot s of the pair at output block kb over images [i0, i0 + imgs), output rows [y0, y1),
 * added to acc. */
static void run_slot(const wgrad_job *j, int kb, int s, int i0, int imgs, int y0, int y1, float *acc)
{
    const rn_conv_shape *sh = j->sh;
    const int cb = j->cb;
    const slot_info o = slot_of(j, kb, s);
    if (!o.r) return;
    const int tap = o.tap, cbk = o.cbk, c0 = o.c0, r = o.r, kbs = o.kbs;
    const int ky = tap / sh->s, kx = tap % sh->s;
    int oy0, oy1, ox0, ox1;
    inside(&oy0, &oy1, ky, sh->h, sh->oh, sh->stride, sh->pad);
    inside(&ox0, &ox1, kx, sh->w, sh->ow, sh->stride, sh->pad);
    if (oy0 < y0) oy0 = y0;
    if (oy1 > y1) oy1 = y1;
    if (oy0 >= oy1 || ox0 >= ox1) return; /* the tap only sees padding here */
    const size_t plane = (size_t)sh->h * sh->w, oplane = (size_t)sh->oh * sh->ow * cb;
    const int iy = oy0 * sh->stride + ky - sh->pad, ix = ox0 * sh->stride + kx - sh->pad;
    rn_convb_wgrad_args a = {
        .imgs = imgs, .rows = oy1 - oy0, .cols = ox1 - ox0,
        .dyimg = (size_t)j->kbn * oplane, .dyrow = (size_t)sh->ow * cb, .dyplane = oplane,
        .accumulate = 1};
    const float *xt;
    if (j->planar_in) {
        a.ximg = (size_t)sh->c * plane, a.xrow = (size_t)sh->stride * sh->w;
        a.xstep = (size_t)sh->stride, a.cstride = plane;
        xt = j->x + (size_t)c0 * plane + (size_t)iy * sh->w + ix;
    } else {
        a.ximg = (size_t)j->cbn * plane * cb, a.xrow = (size_t)sh->stride * sh->w * cb;
        a.xstep = (size_t)sh->stride * cb, a.cstride = 1;
        xt = j->x + (size_t)cbk * plane * cb + ((size_t)iy * sh->w + ix) * cb + (c0 - cbk * cb);
    }
    xt += (size_t)i0 * a.ximg;
    const float *dyt = j->dy + (size_t)i0 * a.dyimg + (size_t)kb * oplane + ((size_t)oy0 * sh->ow + ox0) * cb;
    j->v->wgrad(&a, r, kbs, acc, xt, dyt);
}

/* Slot s's sums (acc) onto dw. */
static void add_slot(const wgrad_job *j, float *dw, int kb, int s, const float *acc)
{
    const rn_conv_shape *sh = j->sh;
    const int cb = j->cb;
    const slot_info o = slot_of(j, kb, s);
    for (int i = 0; i < o.r; i++)
        for (int b = 0; b < o.kbs; b++)
            for (int l = 0; l < cb; l++) {
                const int k = (kb + b) * cb + l;
                if (k < sh->k)
                    dw[((size_t)k * sh->c + o.c0 + i) * j->taps + o.tap] += acc[(i * o.kbs + b) * cb + l];
            }
}

static void backward_weights(float *dw, const float *dy, const float *x, int planar_in,
                             const rn_conv_shape *sh)
{
    const rn_convb_fns v = rn_convb_select();
    const int cb = v.lanes, kbn = rn_blk_count(sh->k, cb), cbn = rn_blk_count(sh->c, cb);
    const wgrad_job j = {&v, sh, x, dy, planar_in, cb, cbn, kbn, sh->r * sh->s};
    const int pairs = (kbn + 1) / 2, slots = cbn * 2 * j.taps;
    const int threads = sh->threads > 1 ? sh->threads : 1;
    /* slots per task: all of a pair's (up to SLOTS_MAX), fewer where the pairs alone would
     * leave threads idle; a function of the shape and thread count that does not change which
     * task sums a dw value in which order, only how the slots are grouped. Every task streams
     * the whole batch's dy, so no more tasks than threads: with 8 a thread (as the other
     * passes cut their work) resnet20's 32->64 stride-2 gradient on 14x14 maps read dy 16
     * times over at 2 threads and took 1.1-1.5 ms, against 0.84-0.97 ms with one a thread. */
    int per = slots < SLOTS_MAX ? slots : SLOTS_MAX;
    const int want = (threads + pairs - 1) / pairs;
    if (threads > 1 && (slots + per - 1) / per < want) per = (slots + want - 1) / want;
    if (per < 1) per = 1;
    const int groups = (slots + per - 1) / per;
    const chunking ch = chunks_of(sh, cb);
    const long tasks = (long)pairs * groups;
    /* A task takes every groups-th slot from its first, not a run of them: the second half of
     * a pair's slots is empty where the pair is one block or the input has under CB / 2
     * channels (a network's first convolution), and runs left one task all the work. */
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1) if (threads > 1)
    for (long t = 0; t < tasks; t++) {
        const int kb = 2 * (int)(t / groups), g = (int)(t % groups);
        const int count = (slots - g + groups - 1) / groups;
        float acc[SLOTS_MAX * RN_BLK_MAX_LANES * RN_BLK_MAX_LANES] __attribute__((aligned(64)));
        const size_t slot_floats = (size_t)cb * cb;
        for (size_t i = 0; i < (size_t)count * slot_floats; i++) acc[i] = 0.0f;
        for (int i0 = 0; i0 < sh->n; i0 += ch.imgs) {
            const int imgs = sh->n - i0 < ch.imgs ? sh->n - i0 : ch.imgs;
            for (int y0 = 0; y0 < sh->oh; y0 += ch.rows) {
                const int y1 = y0 + ch.rows < sh->oh ? y0 + ch.rows : sh->oh;
                for (int q = 0; q < count; q++)
                    run_slot(&j, kb, g + q * groups, i0, imgs, y0, y1,
                             acc + (size_t)q * slot_floats);
            }
        }
        for (int q = 0; q < count; q++)
            add_slot(&j, dw, kb, g + q * groups, acc + (size_t)q * slot_floats);
    }
}

/* db[k] += the sum of dy over images and pixels: each block by one thread, images in order. */
static void backward_bias(float *db, const float *dy, const rn_conv_shape *sh)
{
    const int cb = rn_blk_lanes(), kbn = rn_blk_count(sh->k, cb);
    const size_t pixels = (size_t)sh->oh * sh->ow;
    const int threads = sh->threads > 1 ? sh->threads : 1;
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int kb = 0; kb < kbn; kb++) {
        float sum[RN_BLK_MAX_LANES] = {0};
        for (int i = 0; i < sh->n; i++) {
            const float *d = dy + ((size_t)i * kbn + kb) * pixels * cb;
            for (size_t p = 0; p < pixels; p++)
                for (int l = 0; l < cb; l++) sum[l] += d[p * cb + l];
        }
        for (int l = 0; l < cb && kb * cb + l < sh->k; l++) db[kb * cb + l] += sum[l];
    }
}

void rn_convb_backward_weights(float *dw, float *db, const float *dy, const float *x,
                               const rn_conv_shape *sh)
{
    if (dw) backward_weights(dw, dy, x, 0, sh);
    if (db) backward_bias(db, dy, sh);
}

void rn_convb_backward_weights_planar_in(float *dw, float *db, const float *dy, const float *x,
                                         const rn_conv_shape *sh)
{
    if (dw) backward_weights(dw, dy, x, 1, sh);
    if (db) backward_bias(db, dy, sh);
}
