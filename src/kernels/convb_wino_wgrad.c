/* The weight gradient of a 3x3 stride-1 pad-1 convolution by Winograd F(m x m, 3x3) on
 * channel-blocked tensors (kernels.h), m = 2 or 4 as rn_convb_wino_wgrad_tile chooses. The forward
 * computes each m x m output tile as A^T [U (.) V] A with U = G g G^T and V = B^T d B
 * (convb_wino.c), so
 *   dg[k][c] = G^T ( sum over tiles of (A dY A^T)[k] (.) V[c] ) G:
 * the input tiles' transform V, the output gradient's A dY A^T ((m + 2)^2 vectors from an
 * m x m tile), and for each position a sum over tiles of their products, which is the direct
 * weight gradient's microkernel (convb_wgrad_row.h) with tiles for pixels: (m + 2)^2 x C x K
 * multiply-adds a tile where the direct gradient does 9 m^2 x C x K.
 *
 * The tiles are cut into fixed ranges (as many as the shape asks, not the threads); a task sums
 * one range, in chunks that keep its transforms in cache, into that range's own accumulators;
 * the ranges' sums are then added in order (in double), so the bits do not depend on the
 * thread count. */
#include <stdint.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "kernels/convb.h"
#include "kernels/kernels.h"

enum { MAX_SEGMENTS = 16, TILES_PER_SEGMENT = 256 };

/* Ranges: one per TILES_PER_SEGMENT tiles, 2 to MAX_SEGMENTS. Adding up a range's sums costs as
 * much as about 16 of its tiles, so few tiles take few ranges (resnet8-w32-s2's 128-channel
 * 4x4 layers ran at 0.82x the direct kernel with 16); the count depends on the shape alone. */
static int segments_of(long tiles)
{
    const long s = tiles / TILES_PER_SEGMENT;
    return s < 2 ? 2 : s > MAX_SEGMENTS ? MAX_SEGMENTS : (int)s;
}

static long tiles_of(const rn_conv_shape *sh, int m)
{
    return (long)sh->n * ((sh->oh + m - 1) / m) * ((sh->ow + m - 1) / m);
}

/* One range's sums: per position, output-block pair, input block and half block, the
 * microkernel's accumulators (channels x blocks x CB floats, at most CB x CB). */
static size_t slot_count(int positions, int cbn, int kbn)
{
    return (size_t)positions * ((kbn + 1) / 2) * cbn * 2;
}

static size_t slot_index(int p, int pair, int cbk, int part, int pairs, int cbn)
{
    return (((size_t)p * pairs + pair) * cbn + cbk) * 2 + part;
}

/* The ranges' accumulators take up to MAX_SEGMENTS x (m + 2)^2 x C x K floats: 16 MB at 128
 * channels with m = 2, 38 MB with m = 4, so wider layers keep the direct kernel. */
int rn_convb_wino_wgrad_pays(const rn_conv_shape *sh)
{
    return rn_convb_wino_pays(sh) && sh->c <= 128 && sh->k <= 128;
}

static size_t per_thread_floats(int positions, int cbn, int kbn, int ct, int cb)
{
    return (size_t)positions * (rn_convb_wino_position_floats(cbn, ct, cb) +
                                rn_convb_wino_position_floats(kbn, ct, cb));
}

size_t rn_convb_wino_wgrad_workspace(const rn_conv_shape *sh)
{
    const int cb = rn_blk_lanes(), cbn = rn_blk_count(sh->c, cb), kbn = rn_blk_count(sh->k, cb);
    const int threads = sh->threads > 1 ? sh->threads : 1;
    const int m = rn_convb_wino_wgrad_tile(sh), positions = (m + 2) * (m + 2);
    const int ct = rn_convb_wino_chunk_tiles(cbn + kbn, cb, positions);
    const size_t range_floats = slot_count(positions, cbn, kbn) * cb * cb;
    /* the ranges' sums, the threads' transforms, their total in double (and its alignment) */
    return (size_t)(segments_of(tiles_of(sh, m)) + 2) * range_floats +
           (size_t)threads * per_thread_floats(positions, cbn, kbn, ct, cb) + 1;
}

/* What slot (p, pair, cbk, part) holds: r input channels from *first against kbs output
 * blocks from 2 * pair; 0 when no range fills it (the half of a single output block's slot
 * that is not used, or channels past c). */
static int slot_channels(int pair, int cbk, int part, int cb, int kbn, int c, int *first, int *kbs)
{
    const int kb = 2 * pair, width = kb + 1 < kbn ? cb / 2 : cb;
    *kbs = kb + 1 < kbn ? 2 : 1;
    *first = cbk * cb + part * width;
    const int r = c - *first < width ? c - *first : width;
    return (*kbs == 1 && part == 1) || r <= 0 ? 0 : r;
}

/* Tiles [t0, t1) into one range's accumulators acc, through the calling thread's v and g. */
static void range(float *acc, const float *dy, const float *x, const rn_conv_shape *sh, long t0,
                  long t1, float *v, float *g, int ct, const rn_convb_fns *f,
                  const rn_convb_wino_fns *tf)
{
    const int cb = f->lanes, cbn = rn_blk_count(sh->c, cb), kbn = rn_blk_count(sh->k, cb);
    const int pairs = (kbn + 1) / 2, tm = tf->m;
    const int tw = (sh->ow + tm - 1) / tm, th = (sh->oh + tm - 1) / tm;
    rn_convb_tile at = rn_convb_tile_at(t0, th, tw);
    for (long c0 = t0; c0 < t1; c0 += ct) {
        const int nt = (int)(t1 - c0 < ct ? t1 - c0 : ct);
        const size_t vblock = (size_t)nt * cb;
        const size_t vpos = rn_convb_wino_position_floats(cbn, nt, cb);
        const size_t gpos = rn_convb_wino_position_floats(kbn, nt, cb);
        for (int j = 0; j < nt; j++, rn_convb_tile_next(&at)) {
            for (int b = 0; b < cbn; b++)
                tf->in(v + b * vblock + (size_t)j * cb, vpos,
                       x + ((size_t)at.i * cbn + b) * sh->h * sh->w * cb, sh->h, sh->w, at.ty, at.tx);
            for (int b = 0; b < kbn; b++)
                tf->dy(g + b * vblock + (size_t)j * cb, gpos,
                       dy + ((size_t)at.i * kbn + b) * sh->oh * sh->ow * cb, sh->oh, sh->ow, at.ty,
                       at.tx);
        }
        /* the range's first chunk starts the sums: nothing to clear beforehand */
        const rn_convb_wgrad_args a = {.imgs = 1, .rows = 1, .cols = nt, .xstep = (size_t)cb,
                                       .cstride = 1, .dyplane = vblock, .accumulate = c0 > t0};
        for (int p = 0; p < tf->positions; p++)
            for (int pair = 0; pair < pairs; pair++)
                for (int cbk = 0; cbk < cbn; cbk++)
                    for (int part = 0; part < 2; part++) {
                        int first, kbs;
                        const int r = slot_channels(pair, cbk, part, cb, kbn, sh->c, &first, &kbs);
                        if (!r) continue;
                        f->wgrad(&a, r, kbs, acc + slot_index(p, pair, cbk, part, pairs, cbn) * cb * cb,
                                 v + p * vpos + (size_t)first / cb * vblock + first % cb,
                                 g + p * gpos + 2 * pair * vblock);
                    }
    }
}

/* dw += G^T du G for the output blocks of pair and the input block cbk: the positions of a
 * (k, c) are nslots / (m + 2)^2 slots apart. m is a constant where this is inlined. */
static inline __attribute__((always_inline)) void finish(const int m, float *dw, const double *du,
                                                         const rn_conv_shape *sh, size_t nslots,
                                                         int cb, int pair, int cbk)
{
    const int side = m + 2, kbn = rn_blk_count(sh->k, cb), cbn = rn_blk_count(sh->c, cb);
    const int pairs = (kbn + 1) / 2;
    const size_t slot_floats = (size_t)cb * cb, pstride = nslots / (side * side) * slot_floats;
    for (int part = 0; part < 2; part++) {
        int first, kbs;
        const int r = slot_channels(pair, cbk, part, cb, kbn, sh->c, &first, &kbs);
        const double *u0 = du + slot_index(0, pair, cbk, part, pairs, cbn) * slot_floats;
        for (int i = 0; i < r; i++)
            for (int b = 0; b < kbs; b++) {
                /* a position's CB lanes (output channels) are contiguous: read them together,
                 * since the positions lie a multiple of 4 KiB apart */
                const double *u = u0 + (size_t)(i * kbs + b) * cb;
                double t[3][6][RN_BLK_MAX_LANES];
#pragma GCC unroll 3
                for (int e = 0; e < 3; e++) /* G^T du */
                    for (int j = 0; j < side; j++) {
                        double *te = t[e][j];
                        for (int l = 0; l < cb; l++) te[l] = 0.0;
#pragma GCC unroll 6
                        for (int q = 0; q < side; q++) {
                            const double g = RN_CONVB_WINO_G(m, q, e);
                            const double *uq = u + (q * side + j) * pstride;
                            for (int l = 0; l < cb; l++) te[l] += g * uq[l];
                        }
                    }
                for (int l = 0; l < cb; l++) {
                    const int k = (2 * pair + b) * cb + l;
                    if (k >= sh->k) break;
                    float *dk = dw + ((size_t)k * sh->c + first + i) * 9;
#pragma GCC unroll 3
                    for (int e = 0; e < 3; e++) /* (G^T du) G */
#pragma GCC unroll 3
                        for (int col = 0; col < 3; col++) {
                            double sum = 0.0;
#pragma GCC unroll 6
                            for (int j = 0; j < side; j++)
                                sum += t[e][j][l] * RN_CONVB_WINO_G(m, j, col);
                            dk[e * 3 + col] += (float)sum;
                        }
                }
            }
    }
}

void rn_convb_wino_backward_weights(float *dw, const float *dy, const float *x,
                                    const rn_conv_shape *sh, float *work)
{
    const rn_convb_fns f = rn_convb_select();
    const int tm = rn_convb_wino_wgrad_tile(sh);
    const rn_convb_wino_fns *tf = rn_convb_wino_pick(&f, tm);
    const int cb = f.lanes, cbn = rn_blk_count(sh->c, cb), kbn = rn_blk_count(sh->k, cb);
    const int pairs = (kbn + 1) / 2, threads = sh->threads > 1 ? sh->threads : 1;
    const int ct = rn_convb_wino_chunk_tiles(cbn + kbn, cb, tf->positions);
    const long tiles = tiles_of(sh, tm);
    const int segments = segments_of(tiles);
    const size_t nslots = slot_count(tf->positions, cbn, kbn), slot_floats = (size_t)cb * cb;
    const size_t range_floats = nslots * slot_floats;
    float *sums = work, *scratch = sums + segments * range_floats;
    const size_t per_thread = per_thread_floats(tf->positions, cbn, kbn, ct, cb);
    float *end = scratch + threads * per_thread;
    double *du = (double *)(end + (uintptr_t)end % sizeof(double) / sizeof(float)); /* aligned */
#pragma omp parallel num_threads(threads) if (threads > 1)
    {
        int me = 0;
#ifdef _OPENMP
        me = omp_get_thread_num();
#endif
        float *v = scratch + me * per_thread;
        float *g = v + tf->positions * rn_convb_wino_position_floats(cbn, ct, cb);
#pragma omp for schedule(dynamic, 1)
        for (int s = 0; s < segments; s++)
            range(sums + s * range_floats, dy, x, sh, tiles * s / segments,
                  tiles * (s + 1) / segments, v, g, ct, &f, tf);
        /* the ranges' sums in order, slot by slot (the floats a slot holds are contiguous) */
#pragma omp for schedule(static)
        for (size_t slot = 0; slot < nslots; slot++) {
            int first, kbs;
            const int part = (int)(slot % 2), cbk = (int)(slot / 2 % cbn);
            const int pair = (int)(slot / 2 / cbn % pairs);
            const int r = slot_channels(pair, cbk, part, cb, kbn, sh->c, &first, &kbs);
            const size_t used = (size_t)r * kbs * cb;
            double *d = du + slot * slot_floats;
            for (size_t j = 0; j < used; j++) d[j] = 0.0;
            for (int s = 0; s < segments; s++) {
                if (tiles * (s + 1) / segments == tiles * s / segments) continue; /* no tiles */
                const float *a = sums + s * range_floats + slot * slot_floats;
                for (size_t j = 0; j < used; j++) d[j] += a[j];
            }
        }
    }
    /* dg = G^T du G per (k, c), the block pairs on the threads (each writes its own weights) */
    const int tasks = pairs * cbn;
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1 && tasks > 1)
    for (int task = 0; task < tasks; task++) {
        if (tm == 4) finish(4, dw, du, sh, nslots, cb, task / cbn, task % cbn);
        else finish(2, dw, du, sh, nslots, cb, task / cbn, task % cbn);
    }
}
