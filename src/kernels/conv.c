/* 2-D convolution (cross-correlation) as matrix multiplies on rn_gemm (gemm.h).
 *
 * "Shifted rows": the input is copied into zero-padded planes. At stride 1, one plane per
 * channel of width Wp = w + 2*pad: output pixel (oy, ox) sits at q = oy*Wp + ox and reads tap
 * (ky, kx) of channel ci at ci*plane + ky*Wp + kx + q, so each row of the im2col matrix is a
 * contiguous run of the padded input: the GEMM packs it straight from there, and
 *   Y'[k, q] = W[k, (ci, ky, kx)] * Xpad[ci*plane + ky*Wp + kx + q]
 * computes columns ow .. Wp - 1 of every output row as junk, dropped afterwards.
 * At stride st the padded input is split into st*st phase planes per channel (padded pixel
 * (py, px) into plane (py % st, px % st) at (py / st, px / st)), each of width ceil(Wp / st):
 * tap (ky, kx) then reads plane (ky % st, kx % st) shifted by (ky / st, kx / st), contiguous
 * again, with no im2col matrix.
 * The stride-1 input gradient is the same operation on dy with the weights transposed and
 * flipped and padding r - 1 - pad; the strided one is a GEMM into columns and col2im. The
 * weight gradient is computed transposed, dW^T = X dy'^T: the shifted rows X read in place,
 * times dy' (dy on the output grid, junk columns zero), which alone is packed.
 *
 * Threads: images are split between threads (each with its own slice of the workspace);
 * with fewer images than threads the matrix multiplies themselves are split. Weight
 * gradients are summed per fixed group of images, then the groups in order, so that no
 * result depends on the thread count. */
#include "kernels/kernels.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "kernels/gemm.h"
#include "kernels/winograd.h"
#include "kernels/parallel.h"
#include "kernels/prefetch.h"

/* Images per weight-gradient partial sum: fixed, so the summation order is too. */
#define DW_GROUP 8
/* Output-grid pixels that the weight gradient's multiply aims for (dw_geom). */
#define DW_DEPTH 256


int rn_conv_shape_init(rn_conv_shape *sh, int n, int c, int h, int w, int k, int r, int s,
                       int stride, int pad)
{
    memset(sh, 0, sizeof *sh);
    sh->n = n;
    sh->c = c;
    sh->h = h;
    sh->w = w;
    sh->k = k;
    sh->r = r;
    sh->s = s;
    sh->stride = stride;
    sh->pad = pad;
    sh->threads = 1;
    if (n <= 0 || c <= 0 || h <= 0 || w <= 0 || k <= 0 || r <= 0 || s <= 0 || stride <= 0 ||
        pad < 0 || pad >= r || pad >= s)
        return -1;
    int eh = h + 2 * pad - r, ew = w + 2 * pad - s;
    if (eh < 0 || ew < 0) return -1;
    sh->oh = eh / stride + 1;
    sh->ow = ew / stride + 1;
    return 0;
}

/* ---- the shifted-rows geometry ------------------------------------------------------- */
typedef struct {
    int c, h, w, k, r, s, st;  /* a convolution of one image */
    int ph, pw;                /* padding: top and bottom, left and right */
    int hp, wp;                /* the padded input */
    int gh, gw;                /* one phase plane: rows, and the width of the output grid */
    int oh, ow;
    int side, ld;              /* images side by side in each plane row; row stride side * gw */
    size_t plane;              /* gh * ld */
    size_t xpad;               /* floats of the phase planes, with slack for the last taps */
    size_t ypad;               /* floats of the output on the grid */
} rows_geom;

static rows_geom rows_make(int c, int h, int w, int k, int r, int s, int st, int ph, int pw)
{
    rows_geom g;
    g.c = c, g.h = h, g.w = w, g.k = k, g.r = r, g.s = s, g.st = st, g.ph = ph, g.pw = pw;
    g.hp = h + 2 * ph;
    g.wp = w + 2 * pw;
    g.gh = (g.hp + st - 1) / st;
    g.gw = (g.wp + st - 1) / st;
    g.oh = (g.hp - r) / st + 1;
    g.ow = (g.wp - s) / st + 1;
    g.side = 1;
    g.ld = g.gw;
    g.plane = (size_t)g.gh * g.gw;
    g.xpad = (size_t)c * st * st * g.plane + (size_t)s;
    g.ypad = (size_t)k * g.oh * g.gw;
    return g;
}

/* The same geometry with `side` images side by side in every row of the planes, image i in
 * columns [i * gw, (i + 1) * gw): a tap's run of the output grid then crosses all of them,
 * because each image's valid outputs read only its own columns, and its junk columns read
 * the next image's, which are multiplied by zero. A stride-1 "same" convolution (2 * pw =
 * s - 1) lets neighbours share their zero columns: image i's right padding is image i + 1's
 * left, so gw = w + pw. The last image's right padding is the next row's left (or the next
 * plane's top row, or the slack): zero too. A 4x4 map's grid then holds 4 valid columns in
 * 5, not in 6. */
static rows_geom rows_side(rows_geom g, int side)
{
    g.side = side;
    const int shared = side > 1 && g.st == 1 && g.pw > 0 && 2 * g.pw == g.s - 1;
    if (shared) g.gw = g.w + g.pw;
    g.ld = side * g.gw;
    g.plane = (size_t)g.gh * g.ld;
    g.xpad = (size_t)g.c * g.st * g.st * g.plane + (size_t)g.s;
    g.ypad = (size_t)g.k * g.oh * g.ld;
    return g;
}

/* Copies channel ci of x (one image) into its zeroed phase planes xc, starting at column col0:
 * padded pixel (py, px) goes to plane (py % st, px % st) at row py / st, column px / st. */
static void pad_channel(float *xc, const float *x, const rows_geom *g, int ci, int col0)
{
    const int st = g->st;
    const float *src = x + (size_t)ci * g->h * g->w;
    if (st == 1) {
        float *row = xc + (size_t)g->ph * g->ld + col0 + g->pw;
        for (int y = 0; y < g->h; y++)
            memcpy(row + (size_t)y * g->ld, src + (size_t)y * g->w, (size_t)g->w * sizeof(float));
        return;
    }
    /* Column phase b outside the row loop, and the row's plane and plane row stepped rather
     * than divided: integer divisions per row were a third of this copy's time. */
    for (int b = 0; b < st; b++) {
        const int x0 = ((b - g->pw) % st + st) % st; /* first x with (x + pw) % st == b */
        const int count = (g->w - x0 + st - 1) / st;
        const size_t col = (size_t)col0 + (size_t)(x0 + g->pw) / st;
        int a = g->ph % st, pr = g->ph / st; /* padded row y + ph: plane a, row pr */
        for (int y = 0; y < g->h; y++) {
            const float *restrict s0 = src + (size_t)y * g->w + x0;
            float *restrict d = xc + ((size_t)a * st + b) * g->plane + (size_t)pr * g->ld + col;
            if (st == 2) /* a constant stride, which GCC vectorises */
                for (int j = 0; j < count; j++) d[j] = s0[2 * j];
            else
                for (int j = 0; j < count; j++) d[j] = s0[(size_t)j * st];
            if (++a == st) a = 0, pr++;
        }
    }
}

/* Copies the g->side images of x (consecutive) into zeroed phase planes. threads > 1: split
 * over channels (called outside a parallel region). */
static void pad_input(float *xp, const float *x, const rows_geom *g, int threads)
{
    const size_t per_channel = (size_t)g->st * g->st * g->plane;
    const size_t xs = (size_t)g->c * g->h * g->w;
    memset(xp + (size_t)g->c * per_channel, 0, (size_t)g->s * sizeof(float));
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1) if (threads > 1)
    for (int ci = 0; ci < g->c; ci++) {
        float *xc = xp + ci * per_channel;
        memset(xc, 0, per_channel * sizeof(float));
        for (int i = 0; i < g->side; i++) {
            const int nc = i + 1 < g->side ? ci : ci + 1, ni = i + 1 < g->side ? i + 1 : 0;
            if (nc < g->c) /* the next plane (prefetch.h) */
                rn_prefetch_read(x + ni * xs + (size_t)nc * g->h * g->w, (size_t)g->h * g->w);
            pad_channel(xc, x + i * xs, g, ci, i * g->gw);
        }
    }
}

/* The im2col row offsets: row (ci, ky, kx) starts at plane (ci, ky % st, kx % st), row
 * ky / st, column kx / st. */
static void rows_offsets(int *off, const rows_geom *g)
{
    const int st = g->st;
    int i = 0;
    for (int ci = 0; ci < g->c; ci++)
        for (int ky = 0; ky < g->r; ky++)
            for (int kx = 0; kx < g->s; kx++)
                off[i++] = (int)((((size_t)ci * st + ky % st) * st + kx % st) * g->plane) +
                           ky / st * g->ld + kx / st;
}

static int rows_pointwise(const rows_geom *g)
{
    return g->r == 1 && g->s == 1 && g->st == 1 && g->ph == 0 && g->pw == 0;
}

/* count <= g->side consecutive images: y[i, k, oh, ow] = conv(x) (+ b), then max(y, 0) when
 * relu; wp the weights packed by rows_pack. xp and yp are scratch (g->xpad, g->ypad floats). */
static void rows_images(float *y, const float *x, int count, const float *wp, const float *b,
                        int relu, const rows_geom *g, const int *off, float *xp, float *yp,
                        float *pack, int threads)
{
    const int crs = g->c * g->r * g->s;
    const int pointwise = rows_pointwise(g);
    const float *src = x;
    if (!pointwise) {
        rows_geom gi = *g;
        gi.side = count;
        pad_input(xp, x, &gi, threads); /* zeroes the absent images' columns too */
        src = xp;
    }
    float *out = pointwise ? y : yp;
    const int q = g->oh * g->ld;
    rn_gemm_b bd = {src, off, NULL};
    rn_gemm_packed(g->k, q, crs, wp, &bd, out, q, 0, pack, threads);
    const size_t p = (size_t)g->oh * g->ow, ys = (size_t)g->k * p;
    for (int m = 0; m < count; m++)
        for (int kk = 0; kk < g->k; kk++) {
            const float bk = b ? b[kk] : 0.0f;
            float *yk = y + m * ys + kk * p;
            if (pointwise) {
                if (b)
                    for (size_t j = 0; j < p; j++) yk[j] += bk;
                if (relu)
                    for (size_t j = 0; j < p; j++) yk[j] = yk[j] > 0.0f ? yk[j] : 0.0f;
                continue;
            }
            for (int oy = 0; oy < g->oh; oy++) {
                const float *row = yp + ((size_t)kk * g->oh + oy) * g->ld + (size_t)m * g->gw;
                float *dst = yk + (size_t)oy * g->ow;
                if (relu)
                    for (int ox = 0; ox < g->ow; ox++) {
                        const float v = row[ox] + bk;
                        dst[ox] = v > 0.0f ? v : 0.0f;
                    }
                else
                    for (int ox = 0; ox < g->ow; ox++) dst[ox] = row[ox] + bk;
            }
        }
}

/* Per-thread scratch of the shifted-rows path besides the packing buffer, in floats. */
static size_t rows_rest_floats(const rows_geom *g)
{
    return g->xpad + g->ypad;
}

static int threads_of(const rn_conv_shape *sh)
{
    return sh->threads > 1 ? sh->threads : 1;
}

/* Images side by side in the forward's planes (rows_side): a power of two, as many as keep the
 * output grid within FWD_WIDTH columns and leave every thread a group. One 7x7 image's grid
 * is 20-63 columns wide, so its multiply ran strips of 16 a few times each, the last one
 * partly empty. The junk columns' cost is unchanged; every output's sum is the same. */
#define FWD_WIDTH 256
#define FWD_SIDE_MAX 8

/* Images side by side: the largest power of two up to cap whose side * per_image stays within
 * width. */
static int side_by_side(size_t per_image, size_t width, long cap)
{
    int side = 1;
    while (side * 2 <= cap && (size_t)side * 2 * per_image <= width) side *= 2;
    return side;
}

static rows_geom run_geom(rows_geom g, int n, int threads)
{
    if (rows_pointwise(&g)) return g;
    const long cap = n / (threads > 1 ? threads : 1);
    return rows_side(g, side_by_side((size_t)g.oh * g.gw, FWD_WIDTH,
                                     cap < FWD_SIDE_MAX ? cap : FWD_SIDE_MAX));
}

/* The weights w[k, c, r, s] of the shifted-rows path packed for its multiply. */
static void rows_pack(float *wp, const float *w, const rows_geom *g, int threads)
{
    rn_gemm_pack_a(wp, w, g->c * g->r * g->s, g->k, g->c * g->r * g->s, threads);
}

/* n images through the shifted-rows path (g: one image's geometry), then max(y, 0) when relu.
 * w: the weights packed by rows_pack; packs: threads packing buffers; rest: threads slices of
 * rows_rest_floats(run_geom); off: crs ints. */
static void rows_run(float *y, const float *x, const float *w, const float *b, int relu, int n,
                     const rows_geom *g1, int *off, float *packs, float *rest, int threads)
{
    const rows_geom gs = run_geom(*g1, n, threads), *g = &gs;
    const size_t rf = rows_rest_floats(g);
    rows_offsets(off, g);
    const size_t xs = (size_t)g->c * g->h * g->w, ys = (size_t)g->k * g->oh * g->ow;
    const int side = g->side, groups = (n + side - 1) / side;
    if (groups < threads || threads <= 1) {
        for (int i = 0; i < n; i += side)
            rows_images(y + i * ys, x + i * xs, n - i < side ? n - i : side, w, b, relu, g, off,
                        rest, rest + g->xpad, packs, threads);
        return;
    }
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
    for (int gi = 0; gi < groups; gi++) {
        const int t = rn_thread_id(), i = gi * side;
        float *mine = rest + (size_t)t * rf;
        rows_images(y + i * ys, x + i * xs, n - i < side ? n - i : side, w, b, relu, g, off, mine,
                    mine + g->xpad, packs + (size_t)t * GEMM_PACK_FLOATS, 1);
    }
}

/* ---- the strided input gradient ---------------------------------------------------------- */

/* The phase planes of one channel of the padded input gradient (as the forward's: padded
 * pixel (py, px) in plane (py % st, px % st), row py / st, column px / st). */
typedef struct {
    int gh, gw;    /* rows and columns of one plane */
    size_t plane;  /* gh * gw */
} col_planes;

static col_planes col_planes_of(const rn_conv_shape *sh)
{
    col_planes cp;
    const int st = sh->stride;
    cp.gh = (sh->h + 2 * sh->pad + st - 1) / st;
    cp.gw = (sh->w + 2 * sh->pad + st - 1) / st;
    cp.plane = (size_t)cp.gh * cp.gw;
    return cp;
}

/* Row y of channel plane set p (padding dropped) into dx_row. Stride 2 spelled out as output
 * pairs, which GCC vectorises; any other stride one column phase at a time. */
static void unsplit_row(float *restrict dx_row, const float *restrict p, const col_planes *cp,
                        int y, const rn_conv_shape *sh)
{
    const int st = sh->stride, pad = sh->pad, w = sh->w;
    const int py = y + pad;
    const float *rows = p + (size_t)(py % st) * st * cp->plane + (size_t)(py / st) * cp->gw;
    if (st == 2) {
        /* x = 2j lands in column phase pad % 2 at column j + pad / 2, x = 2j + 1 in the other
         * at column j + (pad + 1) / 2 */
        const float *restrict ev = rows + (size_t)(pad & 1) * cp->plane + pad / 2;
        const float *restrict od = rows + (size_t)((pad + 1) & 1) * cp->plane + (pad + 1) / 2;
        for (int j = 0; j < w / 2; j++) {
            dx_row[2 * j] = ev[j];
            dx_row[2 * j + 1] = od[j];
        }
        if (w & 1) dx_row[w - 1] = ev[w / 2];
        return;
    }
    for (int b = 0; b < st; b++) {
        const int x0 = ((b - pad) % st + st) % st; /* first x with (x + pad) % st == b */
        const float *src = rows + (size_t)b * cp->plane + (x0 + pad) / st;
        for (int x = x0, j = 0; x < w; x += st, j++) dx_row[x] = src[j];
    }
}

/* dx[c, h, w] = col2im(col), col[(ci, ky, kx), ld] with this image's oh * ow columns first in
 * each row: overwrites dx. Each tap's row is added to its phase plane as contiguous runs
 * (tap (ky, kx) at output (oy, ox) is plane (ky % st, kx % st), row oy + ky / st, column
 * ox + kx / st), then the planes are interleaved into dx: the scatter with the stride,
 * straight into dx, took 47% of a 16->32 3x3/2 input gradient at 28x28. Every pixel sums its
 * taps in the same order as before (ky, then kx, from zero). planes: st * st * plane
 * floats. */
static void col2im(float *dx, const float *col, size_t ld, const rn_conv_shape *sh,
                   float *planes)
{
    const int c = sh->c, h = sh->h, w = sh->w, r = sh->r, s = sh->s;
    const int oh = sh->oh, ow = sh->ow, st = sh->stride;
    const col_planes cp = col_planes_of(sh);
    for (int ci = 0; ci < c; ci++) {
        memset(planes, 0, (size_t)st * st * cp.plane * sizeof(float));
        for (int ky = 0; ky < r; ky++) {
            for (int kx = 0; kx < s; kx++) {
                const float *src = col + ((size_t)(ci * r + ky) * s + kx) * ld;
                float *dst = planes + (size_t)((ky % st) * st + kx % st) * cp.plane +
                             (size_t)(ky / st) * cp.gw + kx / st;
                for (int oy = 0; oy < oh; oy++) {
                    const float *restrict sr = src + (size_t)oy * ow;
                    float *restrict dr = dst + (size_t)oy * cp.gw;
                    for (int ox = 0; ox < ow; ox++) dr[ox] += sr[ox];
                }
            }
        }
        float *xc = dx + (size_t)ci * h * w;
        for (int y = 0; y < h; y++) unsplit_row(xc + (size_t)y * w, planes, &cp, y, sh);
    }
}

/* Images side by side in the strided input gradient's multiply, as in the forward (run_geom),
 * while the columns stay within COL_MAX_FLOATS (half of L2), since col2im reads them back
 * (measured: 32->64 3x3/2 at 14x14, b64, best of 12 rounds 2.92 -> 2.59 ms with 4 images side
 * by side; 64->128 at 7x7 with 8, past the cap, 3.6-4.2 against 3.3 ms in one A/B, within
 * the noise of 1, 2 and 4 in another). */
#define COL_MAX_FLOATS 65536
static int col_side(const rn_conv_shape *sh)
{
    const size_t p = (size_t)sh->oh * sh->ow, crs = (size_t)sh->c * sh->r * sh->s;
    long cap = sh->n / threads_of(sh);
    if (cap > FWD_SIDE_MAX) cap = FWD_SIDE_MAX;
    if ((size_t)cap > COL_MAX_FLOATS / (crs * p)) cap = (long)(COL_MAX_FLOATS / (crs * p));
    return side_by_side(p, FWD_WIDTH, cap);
}

/* Per-thread scratch of the strided input gradient: the columns, the images' dy side by side,
 * and col2im's phase planes. */
static size_t col_floats(const rn_conv_shape *sh)
{
    const size_t p = (size_t)sh->oh * sh->ow, side = (size_t)col_side(sh);
    const size_t planes = (size_t)sh->stride * sh->stride * col_planes_of(sh).plane;
    return ((size_t)sh->c * sh->r * sh->s + (side > 1 ? (size_t)sh->k : 0)) * side * p + planes;
}

/* ---- workspace ---------------------------------------------------------------------------- */

static rows_geom fwd_geom(const rn_conv_shape *sh)
{
    return rows_make(sh->c, sh->h, sh->w, sh->k, sh->r, sh->s, sh->stride, sh->pad, sh->pad);
}

/* The input gradient of a stride-1 convolution as a stride-1 convolution of dy. */
static rows_geom bwd_geom(const rn_conv_shape *sh)
{
    return rows_make(sh->k, sh->oh, sh->ow, sh->c, sh->r, sh->s, 1, sh->r - 1 - sh->pad,
                     sh->s - 1 - sh->pad);
}

/* The weight gradient's geometry: the forward's with up to DW_GROUP images side by side, a
 * power of two (so that groups of DW_GROUP split evenly), as many as keep the multiply's depth
 * (pixels of the output grid) within DW_DEPTH. On small maps one image alone is a shallow multiply
 * that reloads its crs x k accumulators for a few dozen multiply-adds each. */
static rows_geom dw_geom(const rn_conv_shape *sh)
{
    const rows_geom g = fwd_geom(sh);
    return rows_side(g, side_by_side((size_t)g.oh * g.gw, DW_DEPTH, DW_GROUP));
}

/* The workspace: shared part (offsets, flipped weights, weight-gradient partials), then one
 * packing buffer per thread, then one slice of the rest per thread. */
typedef struct {
    int *off;
    float *wflip, *wpack, *partials, *packs, *rest;
    size_t rest_floats;
} conv_work;

/* When Winograd wins (RN_CONV_AUTO): with fewer channels its 16 matrix multiplies are too
 * thin, and with fewer tiles in the whole batch too narrow, while the weight transform, paid
 * per call, outweighs them (measured, resnet50 at batch 1: 512 channels at 7x7, 20 tiles,
 * 3x slower than direct; 256 at 14x14, 56 tiles, 15% faster). */
#define WINO_MIN_CHANNELS 16
#define WINO_MIN_TILES 48

/* Read once per process, under pthread_once: several threads may ask first at the same time. */
static int wino_allowed_cached;
static pthread_once_t wino_once = PTHREAD_ONCE_INIT;

static void wino_read_env(void)
{
    const char *v = getenv("RN_WINOGRAD");
    wino_allowed_cached = !(v && !strcmp(v, "0"));
}

static int wino_allowed(void)
{
    pthread_once(&wino_once, wino_read_env);
    return wino_allowed_cached;
}

/* 1 and *wg when this stride-1 geometry of sh goes through Winograd. */
static int wino_geom(rn_wino_geom *wg, const rn_conv_shape *sh, const rows_geom *g)
{
    if (g->r != 3 || g->s != 3 || g->st != 1 || sh->algo == RN_CONV_DIRECT) return 0;
    if (sh->algo == RN_CONV_AUTO &&
        (g->c < WINO_MIN_CHANNELS || g->k < WINO_MIN_CHANNELS || !wino_allowed()))
        return 0;
    if (rn_wino_make(wg, g->c, g->h, g->w, g->k, g->ph, g->pw, sh->n, threads_of(sh)) != 0)
        return 0;
    return sh->algo == RN_CONV_WINOGRAD || (size_t)sh->n * wg->th * wg->tw >= WINO_MIN_TILES;
}

static size_t max_size(size_t a, size_t b)
{
    return a > b ? a : b;
}

static size_t rest_floats(const rn_conv_shape *sh)
{
    rows_geom f = fwd_geom(sh), d = dw_geom(sh);
    rn_wino_geom wg;
    const int t = threads_of(sh);
    rows_geom fs = run_geom(f, sh->n, t);
    size_t a = rows_rest_floats(&fs);                         /* forward */
    a = max_size(a, rows_rest_floats(&d) + (size_t)sh->k);    /* weight gradient (+ k offsets) */
    if (wino_geom(&wg, sh, &f)) a = max_size(a, rn_wino_rest_floats(&wg));
    size_t b = col_floats(sh);       /* the strided input gradient */
    if (sh->stride == 1) {
        rows_geom bk = bwd_geom(sh), bks = run_geom(bk, sh->n, t);
        b = rows_rest_floats(&bks);
        if (wino_geom(&wg, sh, &bk)) b = max_size(b, rn_wino_rest_floats(&wg));
    }
    return max_size(a, b);
}

/* Floats of packed weights: the forward's, the input gradient's, or Winograd's. */
static size_t wpack_floats(const rn_conv_shape *sh)
{
    const int crs = sh->c * sh->r * sh->s, krs = sh->k * sh->r * sh->s;
    size_t n = rn_gemm_packed_a_floats(sh->k, crs);
    n = max_size(n, rn_gemm_packed_a_floats(sh->c, krs));
    n = max_size(n, rn_gemm_packed_a_floats(crs, sh->k));
    rows_geom f = fwd_geom(sh), bk = bwd_geom(sh);
    rn_wino_geom wg;
    if (wino_geom(&wg, sh, &f)) n = max_size(n, rn_wino_weights_floats(&wg));
    if (sh->stride == 1 && wino_geom(&wg, sh, &bk)) n = max_size(n, rn_wino_weights_floats(&wg));
    return n;
}

static conv_work carve(const rn_conv_shape *sh, float *work, size_t *total)
{
    const size_t t = (size_t)threads_of(sh);
    const size_t crs = (size_t)sh->c * sh->r * sh->s, krs = (size_t)sh->k * sh->r * sh->s;
    const size_t wsize = (size_t)sh->k * crs;
    const size_t groups = (size_t)(sh->n + DW_GROUP - 1) / DW_GROUP;
    const size_t rf = rest_floats(sh);
    const size_t o_wflip = crs > krs ? crs : krs; /* the offsets are ints, one float each */
    const size_t wpack = wpack_floats(sh);
    const size_t o_wpack = o_wflip + wsize;
    const size_t o_partials = o_wpack + wpack;
    const size_t o_packs = o_partials + groups * wsize;
    const size_t o_rest = o_packs + t * GEMM_PACK_FLOATS;
    if (total) *total = o_rest + t * rf;
    conv_work cw = {NULL, NULL, NULL, NULL, NULL, NULL, rf};
    if (work) {
        cw.off = (int *)work;
        cw.wflip = work + o_wflip;
        cw.wpack = work + o_wpack;
        cw.partials = work + o_partials;
        cw.packs = work + o_packs;
        cw.rest = work + o_rest;
    }
    return cw;
}

size_t rn_conv_workspace(const rn_conv_shape *sh)
{
    size_t total = 0;
    (void)carve(sh, NULL, &total);
    return total;
}

/* ---- forward ------------------------------------------------------------------------------ */

int rn_conv_packing(const rn_conv_shape *sh)
{
    rows_geom g = fwd_geom(sh);
    rn_wino_geom wg;
    return wino_geom(&wg, sh, &g) ? RN_CONV_WINOGRAD : RN_CONV_DIRECT;
}

size_t rn_conv_packed_floats(const rn_conv_shape *sh)
{
    rows_geom g = fwd_geom(sh);
    rn_wino_geom wg;
    if (wino_geom(&wg, sh, &g)) return rn_wino_weights_floats(&wg);
    return rn_gemm_packed_a_floats(sh->k, sh->c * sh->r * sh->s);
}

size_t rn_conv_packed_floats_max(const rn_conv_shape *sh)
{
    rn_conv_shape any = *sh;
    any.algo = RN_CONV_DIRECT;
    size_t n = rn_conv_packed_floats(&any);
    if (sh->algo != RN_CONV_DIRECT) {
        any.algo = RN_CONV_WINOGRAD; /* whatever the batch size */
        n = max_size(n, rn_conv_packed_floats(&any));
    }
    return n;
}

void rn_conv_pack(float *packed, const float *w, const float *scale, const rn_conv_shape *sh,
                  float *work)
{
    if (scale) { /* the scaled copy goes where the input gradient keeps its flipped weights */
        conv_work cw = carve(sh, work, NULL);
        const size_t per = (size_t)sh->c * sh->r * sh->s;
        for (int kk = 0; kk < sh->k; kk++)
            for (size_t j = 0; j < per; j++)
                cw.wflip[kk * per + j] = w[kk * per + j] * scale[kk];
        w = cw.wflip;
    }
    rows_geom g = fwd_geom(sh);
    rn_wino_geom wg;
    if (wino_geom(&wg, sh, &g)) rn_wino_pack(packed, w, &wg, threads_of(sh));
    else rows_pack(packed, w, &g, threads_of(sh));
}

void rn_conv_forward_packed(float *y, const float *x, const float *packed, const float *b,
                            int relu, const rn_conv_shape *sh, float *work)
{
    conv_work cw = carve(sh, work, NULL);
    rows_geom g = fwd_geom(sh);
    rn_wino_geom wg;
    if (wino_geom(&wg, sh, &g))
        rn_wino_run(y, x, packed, b, relu, sh->n, &wg, cw.off, cw.packs, cw.rest, threads_of(sh));
    else
        rows_run(y, x, packed, b, relu, sh->n, &g, cw.off, cw.packs, cw.rest, threads_of(sh));
}

void rn_conv_forward(float *y, const float *x, const float *w, const float *b,
                     const rn_conv_shape *sh, float *work)
{
    conv_work cw = carve(sh, work, NULL);
    rn_conv_pack(cw.wpack, w, NULL, sh, work);
    rn_conv_forward_packed(y, x, cw.wpack, b, 0, sh, work);
}

/* ---- backward ----------------------------------------------------------------------------- */

/* Weight gradient of images [i0, i1) into part[crs, k] (transposed; overwritten):
 * part[j, kk] = sum over pixels q of X[j, q] * dy'[kk, q], with row j of the im2col matrix X
 * read in place (a run of the phase planes of g->side images side by side, or of x for a
 * pointwise convolution one image at a time) and dy' = dy on the output grid, junk columns
 * and absent images zero. The small dy' is packed, the large X never is. */
static void dw_group(float *part, const float *dy, const float *x, int i0, int i1,
                     const rn_conv_shape *sh, const rows_geom *g, const int *off, float *pack,
                     float *rest, int threads)
{
    const int crs = sh->c * sh->r * sh->s, p = sh->oh * sh->ow;
    const size_t xs = (size_t)sh->c * sh->h * sh->w, ys = (size_t)sh->k * p;
    const int in_place = rows_pointwise(g) && g->side == 1;
    const int q = in_place ? p : g->oh * g->ld;
    int *dy_off = (int *)rest + (in_place ? 0 : g->xpad + g->ypad);
    for (int kk = 0; kk < sh->k; kk++) dy_off[kk] = kk * q;
    for (int i = i0; i < i1; i += g->side) {
        const int count = i1 - i < g->side ? i1 - i : g->side;
        const float *a = dy + i * ys, *src = x + i * xs;
        if (!in_place) {
            float *dyp = rest + g->xpad;
            rows_geom gi = *g;
            gi.side = count;
            pad_input(rest, src, &gi, threads);
            for (int kk = 0; kk < sh->k; kk++) { /* each float of dy' written once */
                if (kk + 1 < sh->k)
                    for (int m = 0; m < count; m++)
                        rn_prefetch_read(a + m * ys + (size_t)(kk + 1) * p, (size_t)p);
                for (int oy = 0; oy < g->oh; oy++) {
                    float *row = dyp + ((size_t)kk * g->oh + oy) * g->ld;
                    for (int m = 0; m < count; m++) {
                        memcpy(row + (size_t)m * g->gw,
                               a + m * ys + (size_t)kk * p + (size_t)oy * g->ow,
                               (size_t)g->ow * sizeof(float));
                        memset(row + (size_t)m * g->gw + g->ow, 0,
                               (size_t)(g->gw - g->ow) * sizeof(float));
                    }
                    memset(row + (size_t)count * g->gw, 0,
                           (size_t)(g->ld - count * g->gw) * sizeof(float));
                }
            }
            a = dyp;
            src = rest;
        }
        rn_gemm_b bd = {a, NULL, dy_off};
        if (!in_place && g->st == 1 && g->r == 3 && g->s == 3)
            rn_gemm_taps_a(crs, sh->k, q, src, off, g->ld, &bd, part, sh->k, i > i0, pack,
                           threads);
        else
            rn_gemm_rows_a(crs, sh->k, q, src, off, &bd, part, sh->k, i > i0, pack, threads);
    }
}

/* Group 0's partials become the sum of all groups, added in group order for every element.
 * Reading the groups element-wise in contiguous chunks (not one strided dot per element)
 * keeps this a streaming pass: strided, it took 10% of a resnet14-w32-s2 training step. */
static void sum_partials(float *part, int groups, size_t wsize, int threads)
{
    enum { CHUNK = 1024 };
    const long chunks = (long)((wsize + CHUNK - 1) / CHUNK);
    const int split = threads > 1 && (size_t)groups * wsize >= RN_OMP_MIN_WORK;
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1) if (split)
    for (long ch = 0; ch < chunks; ch++) {
        const size_t e0 = (size_t)ch * CHUNK;
        const size_t n = wsize - e0 < CHUNK ? wsize - e0 : CHUNK;
        float acc[CHUNK];
        for (size_t e = 0; e < n; e++) acc[e] = 0.0f;
        for (int gi = 0; gi < groups; gi++) {
            const float *pg = part + (size_t)gi * wsize + e0;
            for (size_t e = 0; e < n; e++) acc[e] += pg[e];
        }
        memcpy(part + e0, acc, n * sizeof(float));
    }
}

/* dw[kk, j] += part[j, kk], in blocks of rows of part so that its lines stay in cache. */
static void add_transposed(float *dw, const float *part, int crs, int k, int threads)
{
    enum { ROWS = 16 };
    const int split = threads > 1 && (size_t)crs * k >= RN_OMP_MIN_WORK;
#pragma omp parallel for num_threads(threads) schedule(dynamic, 4) if (split)
    for (int j0 = 0; j0 < crs; j0 += ROWS) {
        const int j1 = j0 + ROWS < crs ? j0 + ROWS : crs;
        for (int kk = 0; kk < k; kk++) {
            float *d = dw + (size_t)kk * crs;
            for (int j = j0; j < j1; j++) d[j] += part[(size_t)j * k + kk];
        }
    }
}

static void weight_grad(float *dw, const float *dy, const float *x, const rn_conv_shape *sh,
                        const conv_work *cw, int threads)
{
    const int crs = sh->c * sh->r * sh->s, p = sh->oh * sh->ow;
    const size_t wsize = (size_t)sh->k * crs;
    const int groups = (sh->n + DW_GROUP - 1) / DW_GROUP;
    const rows_geom g = dw_geom(sh);
    if (!rows_pointwise(&g) || g.side > 1) {
        rows_offsets(cw->off, &g);
    } else {
        for (int j = 0; j < crs; j++) cw->off[j] = j * p;
    }
    /* Fewer groups than threads: the groups one after another, each multiply threaded. Not as
     * an inactive parallel region (if clause false): libgomp starts fresh threads for every
     * parallel region nested in one, which made a small batch's step 100 times slower. */
    if (groups < threads || threads <= 1) {
        for (int gi = 0; gi < groups; gi++) {
            const int i1 = (gi + 1) * DW_GROUP < sh->n ? (gi + 1) * DW_GROUP : sh->n;
            dw_group(cw->partials + (size_t)gi * wsize, dy, x, gi * DW_GROUP, i1, sh, &g, cw->off,
                     cw->packs, cw->rest, threads);
        }
    } else {
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
        for (int gi = 0; gi < groups; gi++) {
            const int t = rn_thread_id();
            const int i1 = (gi + 1) * DW_GROUP < sh->n ? (gi + 1) * DW_GROUP : sh->n;
            dw_group(cw->partials + (size_t)gi * wsize, dy, x, gi * DW_GROUP, i1, sh, &g, cw->off,
                     cw->packs + (size_t)t * GEMM_PACK_FLOATS,
                     cw->rest + (size_t)t * cw->rest_floats, 1);
        }
    }
    sum_partials(cw->partials, groups, wsize, threads);
    add_transposed(dw, cw->partials, crs, sh->k, threads);
}

/* Images gi * side .. of the strided input gradient: a multiply into thread t's column buffer,
 * then col2im. */
static void strided_group(float *dx, const float *dy, const rn_conv_shape *sh, const conv_work *cw,
                          int gi, int side, int t, int threads)
{
    const int crs = sh->c * sh->r * sh->s, p = sh->oh * sh->ow;
    const size_t xs = (size_t)sh->c * sh->h * sh->w, ys = (size_t)sh->k * p;
    const size_t ld = (size_t)side * p;
    const int i0 = gi * side;
    const int count = sh->n - i0 < side ? sh->n - i0 : side;
    float *dcol = cw->rest + (size_t)t * cw->rest_floats;
    const float *b = dy + i0 * ys;
    if (side > 1) { /* dy'[kk, m * p + j] = dy[i0 + m, kk, j], absent images zero */
        float *dyp = dcol + (size_t)crs * ld;
        for (int kk = 0; kk < sh->k; kk++)
            for (int m = 0; m < side; m++) {
                float *d = dyp + kk * ld + (size_t)m * p;
                if (m < count)
                    memcpy(d, b + m * ys + (size_t)kk * p, (size_t)p * sizeof(float));
                else
                    memset(d, 0, (size_t)p * sizeof(float));
            }
        b = dyp;
    }
    rn_gemm_b bd = {b, cw->off, NULL};
    rn_gemm_packed(crs, (int)ld, sh->k, cw->wpack, &bd, dcol, (int)ld, 0,
                   cw->packs + (size_t)t * GEMM_PACK_FLOATS, threads);
    float *planes = dcol + (size_t)(crs + (side > 1 ? sh->k : 0)) * ld;
    for (int m = 0; m < count; m++)
        col2im(dx + (i0 + m) * xs, dcol + (size_t)m * p, ld, sh, planes);
}

static void strided_input_grad(float *dx, const float *dy, const rn_conv_shape *sh,
                               const conv_work *cw, int threads)
{
    const int crs = sh->c * sh->r * sh->s, p = sh->oh * sh->ow;
    const int side = col_side(sh), groups = (sh->n + side - 1) / side;
    const size_t ld = (size_t)side * p;
    for (int kk = 0; kk < sh->k; kk++) cw->off[kk] = (int)(kk * ld);
    rn_gemm_pack_a(cw->wpack, cw->wflip, sh->k, crs, sh->k, threads);
    /* as in weight_grad: no parallel region around threaded multiplies */
    if (groups < threads || threads <= 1) {
        for (int gi = 0; gi < groups; gi++) strided_group(dx, dy, sh, cw, gi, side, 0, threads);
    } else {
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
        for (int gi = 0; gi < groups; gi++) strided_group(dx, dy, sh, cw, gi, side, rn_thread_id(), 1);
    }
}

void rn_conv_backward(float *dx, float *dw, float *db, const float *dy, const float *x,
                      const float *w, const rn_conv_shape *sh, float *work)
{
    conv_work cw = carve(sh, work, NULL);
    const int threads = threads_of(sh);
    const int k = sh->k, c = sh->c, r = sh->r, s = sh->s, crs = c * r * s;
    const size_t p = (size_t)sh->oh * sh->ow;
    if (db) {
        for (int kk = 0; kk < k; kk++) {
            double acc = 0.0;
            for (int i = 0; i < sh->n; i++) {
                const float *dyk = dy + ((size_t)i * k + kk) * p;
                for (size_t j = 0; j < p; j++) acc += dyk[j];
            }
            db[kk] += (float)acc;
        }
    }
    if (dw) weight_grad(dw, dy, x, sh, &cw, threads);
    if (!dx) return;
    const int split = threads > 1 && (size_t)k * crs >= RN_OMP_MIN_WORK;
    if (sh->stride != 1) {
#pragma omp parallel for num_threads(threads) schedule(static) if (split)
        for (int j = 0; j < crs; j++) /* w^T: [crs, k] */
            for (int kk = 0; kk < k; kk++) cw.wflip[(size_t)j * k + kk] = w[(size_t)kk * crs + j];
        strided_input_grad(dx, dy, sh, &cw, threads);
        return;
    }
    /* wflip[ci, kk, ky, kx] = w[kk, ci, r-1-ky, s-1-kx] */
#pragma omp parallel for num_threads(threads) schedule(static) if (split)
    for (int ci = 0; ci < c; ci++)
        for (int kk = 0; kk < k; kk++)
            for (int ky = 0; ky < r; ky++)
                for (int kx = 0; kx < s; kx++)
                    cw.wflip[(((size_t)ci * k + kk) * r + ky) * s + kx] =
                        w[(((size_t)kk * c + ci) * r + (r - 1 - ky)) * s + (s - 1 - kx)];
    rows_geom g = bwd_geom(sh);
    rn_wino_geom wg;
    if (wino_geom(&wg, sh, &g)) {
        rn_wino_pack(cw.wpack, cw.wflip, &wg, threads);
        rn_wino_run(dx, dy, cw.wpack, NULL, 0, sh->n, &wg, cw.off, cw.packs, cw.rest, threads);
    } else {
        rows_pack(cw.wpack, cw.wflip, &g, threads);
        rows_run(dx, dy, cw.wpack, NULL, 0, sh->n, &g, cw.off, cw.packs, cw.rest, threads);
    }
}
