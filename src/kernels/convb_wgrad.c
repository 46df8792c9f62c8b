/* The weight gradient of a convolution on channel-blocked tensors (kernels.h):
 * dw[k][c][ky][kx] += sum over images and output pixels of x[the pixel's tap input][c] * dy[k].
 *
 * A slot is one tap of half an input block (a whole one when the output block is single)
 * against one pair of output blocks (or the last, single block): r x kbs accumulator vectors
 * that stay in registers while the microkernel (convb_wgrad_row.h) runs over a rectangle of
 * output pixels, with nothing packed or padded: the tap's border is left out by clipping the
 * rectangle, which is where the padding's zeros would have been.
 *
 * A task is a tile of slots: a run of pairs by a run of the pairs' slots, whose accumulators
 * wait in the thread's workspace between calls. It walks the batch a chunk of output pixels
 * at a time (whole images on small maps, bands of rows on large ones: about CHUNK_BYTES of dy
 * for a pair) and runs every slot of the tile over the chunk before the next: a pair's dy
 * chunk is read from memory once and then from L1 for all its slots, and the chunk's x for the
 * run of slots once and then from L2 for all the pairs. Each task reads x once for its pairs
 * and dy once for its slots, so the tile's shape is chosen (plan_of) to read the fewest bytes
 * with the accumulators a thread holds. One slot a task, all of a pair's slots (the scheme
 * before) read x from memory once for every pair: the 1x1 and strided weight gradients of
 * resnet50 ran at 20-50% of the peak.
 * Each dw value is summed by one task, chunk after chunk in order: the same bits for any
 * thread count and tiling (the chunks depend on the shape only). */
#include "kernels/convb.h"
#include "kernels/kernels.h"
#include "kernels/parallel.h"

enum { ACC_SLOTS = 256 };          /* accumulator slots of a thread: 256 KB at 16 lanes */
enum { CHUNK_BYTES = 32 * 1024 };   /* dy of a pair per chunk: with its x, within L1 + L2 */
enum { X_BYTES_PER_LANE = 32 * 1024 }; /* a chunk's x for a task's slots, at most: with the
                                        * accumulators, within L2 (512 KB at 16 lanes) */

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

/* The chunk after this one (images [i0, i0 + imgs), rows [y0, y1)) as its pixels see it: how
 * many images and rows on each pixel's counterpart lies, the output row where the pixels that
 * have one end, and which tensors a slot asks L2 for (none after the last chunk). */
typedef struct {
    int imgs, rows, until;
    int x, dy;
} chunk_ahead;

static chunk_ahead ahead_of(const rn_conv_shape *sh, int i0, int imgs, int y0, int y1)
{
    chunk_ahead a = {0, y1 - y0, 0, 0, 0};
    int rows; /* of this chunk's rows, those with counterparts */
    if (y1 < sh->oh) {
        rows = sh->oh - y1 < y1 - y0 ? sh->oh - y1 : y1 - y0;
    } else { /* the next images' first rows */
        a.imgs = imgs, a.rows = -y0;
        rows = sh->n - (i0 + imgs) >= imgs ? y1 - y0 : 0;
    }
    a.until = y0 + rows;
    a.x = a.dy = rows > 0;
    return a;
}

/* Slot s of the pair at output block kb over images [i0, i0 + imgs), output rows [y0, y1),
 * added to acc; the next chunk's x for the slot's run of input lines (by one slot of each input
 * block) and dy, as ahead says. */
static void run_slot(const wgrad_job *j, int kb, int s, int i0, int imgs, int y0, int y1,
                     chunk_ahead ahead, float *acc)
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
    const int rows_ahead = ahead.until > oy0 ? (ahead.until < oy1 ? ahead.until : oy1) - oy0 : 0;
    a.ahead = (long)rows_ahead * a.cols * imgs;
    if (ahead.x && tap == 0 && c0 == cbk * cb)
        a.x_ahead = (ptrdiff_t)a.ximg * ahead.imgs + (ptrdiff_t)a.xrow * ahead.rows;
    if (ahead.dy) a.dy_ahead = (ptrdiff_t)a.dyimg * ahead.imgs + (ptrdiff_t)a.dyrow * ahead.rows;
    /* whole rows that follow each other in x and dy (a 1x1 stride-1 convolution): one run of
     * pixels, so that small maps do not pay the microkernel's turn at each row (rows of 7:
     * 73% of the peak in the probe, 90-96% for runs of 56 or more) */
    if (a.rows > 1 && a.xrow == (size_t)a.cols * a.xstep && a.dyrow == (size_t)a.cols * cb)
        a.cols *= a.rows, a.rows = 1;
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
    /* a row of dw at a time (its r channels), not a column: the scattered adds of a column
     * took 2.0-2.8 ms of a 512->2048 1x1 gradient's 4.9-5.9 at batch 1 */
    for (int b = 0; b < o.kbs; b++)
        for (int l = 0; l < cb; l++) {
            const int k = (kb + b) * cb + l;
            if (k >= sh->k) break;
            float *d = dw + ((size_t)k * sh->c + o.c0) * j->taps + o.tap;
            for (int i = 0; i < o.r; i++) d[(size_t)i * j->taps] += acc[(i * o.kbs + b) * cb + l];
        }
}

/* A pair's slots in the order tasks take them: a double pair's all (the empty ones, the last
 * block's second half where it holds half a block or less, come last), a single block's
 * first halves (it takes whole input blocks). */
static int slot_count(const wgrad_job *j, int kbs)
{
    if (kbs == 1) return j->cbn * j->taps;
    const int last = j->sh->c - (j->cbn - 1) * j->cb;
    return (2 * j->cbn - (last <= j->cb / 2)) * j->taps;
}

static int slot_index(const wgrad_job *j, int kbs, int q)
{
    return kbs > 1 ? q : q / j->taps * 2 * j->taps + q % j->taps;
}

/* The end of a tile's run of slots [q0, q0 + g) for a pair of kbs blocks. */
static int slots_end(const wgrad_job *j, int kbs, int q0, int g)
{
    const int count = slot_count(j, kbs);
    return count < q0 + g ? count : q0 + g;
}

/* The tasks' tiles: ps pairs by g slots; sets x groups tasks. */
typedef struct {
    int ps, g, sets, groups;
} wgrad_plan;

/* The tile that reads the fewest bytes from memory (x once for each run of pairs, dy once for
 * each run of slots) with at most ACC_SLOTS accumulators and a chunk's x for the slots within
 * X_BYTES_PER_LANE * cb, weighted by how evenly the tasks fill the threads. A function of the
 * shape and thread count; the bits do not depend on it. */
static wgrad_plan plan_of(const wgrad_job *j, const chunking *ch, int threads)
{
    const rn_conv_shape *sh = j->sh;
    const int cb = j->cb, pairs = (j->kbn + 1) / 2, slots = slot_count(j, j->kbn > 1 ? 2 : 1);
    const int rows_in = (ch->rows - 1) * sh->stride + sh->r;
    const double xblock = (double)ch->imgs * (rows_in < sh->h ? rows_in : sh->h) * sh->w * cb * sizeof(float);
    const double gmax_x = (double)X_BYTES_PER_LANE * cb / xblock * 2 * j->taps; /* 2 slots a block */
    const double x = (double)sh->n * j->cbn * sh->h * sh->w * cb * sizeof(float);
    const double dy = (double)sh->n * j->kbn * sh->oh * sh->ow * cb * sizeof(float);
    /* the multiply-adds in the same unit, a vector of them (cb lanes) as 4 bytes: a core's
     * FMA units do two a cycle, about while memory brings it 8 bytes */
    const double work = (double)sh->n * sh->oh * sh->ow * j->kbn * sh->c * j->taps * 4.0;
    wgrad_plan best = {1, 1, pairs, slots};
    double best_cost = -1;
    for (int ps = 1; ps <= pairs && ps <= ACC_SLOTS; ps++)
        for (int g = 1; g <= slots && (long)ps * g <= ACC_SLOTS; g++) {
            if (g > 1 && g > gmax_x) break;
            const int sets = (pairs + ps - 1) / ps, groups = (slots + g - 1) / g;
            const long tasks = (long)sets * groups;
            const long rounds = (tasks + threads - 1) / threads;
            const double cost = (x * sets + dy * groups + work) * rounds * threads / tasks;
            if (best_cost < 0 || cost < best_cost) best_cost = cost, best = (wgrad_plan){ps, g, sets, groups};
        }
    return best;
}

/* The job and plan of a shape (x and dy are not read). */
static wgrad_plan plan_of_shape(const rn_convb_fns *v, const rn_conv_shape *sh, const float *x,
                                const float *dy, int planar_in, wgrad_job *j, chunking *ch)
{
    const int cb = v->lanes;
    *j = (wgrad_job){v, sh, x, dy, planar_in, cb, rn_blk_count(sh->c, cb), rn_blk_count(sh->k, cb),
                     sh->r * sh->s};
    *ch = chunks_of(sh, cb);
    return plan_of(j, ch, sh->threads > 1 ? sh->threads : 1);
}

/* A strided 1x1 convolution's gradient runs as a stride-1 one on the pixels it reads, gathered
 * (unit: that convolution's shape), so that a block's pixels come in one run a chunk, not in
 * rows of a few pixels each on every other line: the same products, in the same order where a
 * slot's accumulators are one set (16 lanes). With 8 lanes (4 channels x 2 blocks a slot) the
 * pixels go round two sets in the run's order, so on maps of odd width the last bits differ
 * from the strided path's (the same for any thread count still). Only with GATHER_MIN_K output
 * channels or more: with fewer, a gathered value serves too few multiply-adds for its copy
 * (16->32 on 32x32 at batch 128 took 1.15-1.27x the time gathered, 32->64 and 64->128
 * 1.03-1.10x, where 128->256 and up took 0.69-0.96x). */
enum { GATHER_MIN_K = 256 };

static int gathered(const rn_conv_shape *sh, int planar_in, rn_conv_shape *unit)
{
    if (planar_in || sh->r != 1 || sh->s != 1 || sh->stride == 1 || sh->pad) return 0;
    if (sh->k < GATHER_MIN_K) return 0;
    *unit = *sh;
    unit->stride = 1, unit->h = sh->oh, unit->w = sh->ow;
    return 1;
}

static size_t accumulator_floats(const rn_convb_fns *v, const rn_conv_shape *sh)
{
    wgrad_job j;
    chunking ch;
    const wgrad_plan pl = plan_of_shape(v, sh, NULL, NULL, 0, &j, &ch);
    const int threads = sh->threads > 1 ? sh->threads : 1;
    return (size_t)threads * pl.ps * pl.g * v->lanes * v->lanes;
}

size_t rn_convb_backward_weights_workspace(const rn_conv_shape *sh)
{
    const rn_convb_fns v = rn_convb_select();
    rn_conv_shape unit;
    if (!gathered(sh, 0, &unit)) return accumulator_floats(&v, sh);
    return accumulator_floats(&v, &unit) + rn_blk_floats(sh->n, sh->c, sh->oh, sh->ow);
}

static void backward_weights(float *dw, const float *dy, const float *x, int planar_in,
                             const rn_conv_shape *sh, float *work)
{
    const rn_convb_fns v = rn_convb_select();
    const rn_conv_shape *given = sh;
    rn_conv_shape unit;
    const int gather = gathered(sh, planar_in, &unit);
    if (gather) sh = &unit;
    wgrad_job j;
    chunking ch;
    const wgrad_plan pl = plan_of_shape(&v, sh, x, dy, planar_in, &j, &ch);
    const int cb = v.lanes, kbn = j.kbn, threads = sh->threads > 1 ? sh->threads : 1;
    const int pairs = (kbn + 1) / 2;
    const size_t slot_floats = (size_t)cb * cb, tile_floats = (size_t)pl.ps * pl.g * slot_floats;
    if (gather) { /* after the threads' accumulators, as the workspace counts it */
        float *xs = work + (size_t)threads * tile_floats;
        rn_convb_gather_strided(xs, x, 0, given->n, j.cbn, cb, given, threads);
        j.x = xs;
    }
    const long tasks = (long)pl.sets * pl.groups;
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1) if (threads > 1)
    for (long t = 0; t < tasks; t++) {
        float *acc = work + (size_t)rn_thread_id() * tile_floats;
        const int p0 = (int)(t / pl.groups) * pl.ps, q0 = (int)(t % pl.groups) * pl.g;
        const int np = pairs - p0 < pl.ps ? pairs - p0 : pl.ps;
        for (size_t i = 0; i < (size_t)np * pl.g * slot_floats; i++) acc[i] = 0.0f;
        for (int i0 = 0; i0 < sh->n; i0 += ch.imgs) {
            const int imgs = sh->n - i0 < ch.imgs ? sh->n - i0 : ch.imgs;
            for (int y0 = 0; y0 < sh->oh; y0 += ch.rows) {
                const int y1 = y0 + ch.rows < sh->oh ? y0 + ch.rows : sh->oh;
                const chunk_ahead next = ahead_of(sh, i0, imgs, y0, y1);
                for (int p = 0; p < np; p++) {
                    const int kb = 2 * (p0 + p), kbs = kb + 1 < kbn ? 2 : 1;
                    for (int q = q0, end = slots_end(&j, kbs, q0, pl.g); q < end; q++) {
                        /* x by the tile's first pair, which reads it first; dy by the pair's
                         * first slot */
                        chunk_ahead at = next;
                        at.x = at.x && p == 0;
                        at.dy = at.dy && q == q0;
                        run_slot(&j, kb, slot_index(&j, kbs, q), i0, imgs, y0, y1, at,
                                 acc + ((size_t)p * pl.g + q - q0) * slot_floats);
                    }
                }
            }
        }
        for (int p = 0; p < np; p++) {
            const int kb = 2 * (p0 + p), kbs = kb + 1 < kbn ? 2 : 1;
            for (int q = q0, end = slots_end(&j, kbs, q0, pl.g); q < end; q++)
                add_slot(&j, dw, kb, slot_index(&j, kbs, q), acc + ((size_t)p * pl.g + q - q0) * slot_floats);
        }
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
                               const rn_conv_shape *sh, float *work)
{
    if (dw) backward_weights(dw, dy, x, 0, sh, work);
    if (db) backward_bias(db, dy, sh);
}

void rn_convb_backward_weights_planar_in(float *dw, float *db, const float *dy, const float *x,
                                         const rn_conv_shape *sh, float *work)
{
    if (dw) backward_weights(dw, dy, x, 1, sh, work);
    if (db) backward_bias(db, dy, sh);
}
