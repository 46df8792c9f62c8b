/* Winograd F(2x2, 3x3): geometry, weight transform and the run over images (winograd.h). */
#include "kernels/winograd.h"

#include <string.h>
#include "kernels/cpu.h"
#include "kernels/gemm.h"
#include "kernels/parallel.h"
#include "kernels/prefetch.h"

#define TRANSFORMS_NAME rn_wino_generic
#include "kernels/winograd_transforms.h"

/* Tiles per matrix multiply that small maps are batched up to: with fewer columns the
 * multiplies are dominated by their fixed costs (a 7x7 map has 16 tiles). */
#define WINO_MIN_COLUMNS 128

int rn_wino_make(rn_wino_geom *g, int c, int h, int w, int k, int ph, int pw, int n,
                 int threads)
{
    memset(g, 0, sizeof *g);
    g->c = c, g->h = h, g->w = w, g->k = k, g->ph = ph, g->pw = pw;
    g->oh = h + 2 * ph - 2;
    g->ow = w + 2 * pw - 2;
    if (g->oh <= 0 || g->ow <= 0 || c <= 0 || k <= 0 || n <= 0) return -1;
    g->th = (g->oh + 1) / 2;
    g->tw = (g->ow + 1) / 2;
    g->gh = g->th + 1;
    g->gw = g->tw + 1;
    g->ps = (size_t)g->gh * g->gw + 1; /* the junk tile of the last row reads one past */
    g->tiles = g->th * g->gw;
    /* as many images per multiply as reach WINO_MIN_COLUMNS, then as many groups as make
     * a multiple of the thread count, so that no thread waits for another's extra group
     * (64 images of a 4x4 map made 3 groups of 22: 2 threads ran 2 and 1) */
    const int t = threads > 1 ? threads : 1;
    int nb = (WINO_MIN_COLUMNS + g->tiles - 1) / g->tiles;
    if (nb > n) nb = n;
    int groups = (n + nb - 1) / nb;
    groups = (groups + t - 1) / t * t;
    nb = (n + groups - 1) / groups;
    g->nb = nb > 0 ? nb : 1;
    return 0;
}

size_t rn_wino_weights_floats(const rn_wino_geom *g)
{
    return 16 * rn_gemm_packed_a_floats(g->k, g->c);
}

/* U[xi] = G g G^T for every (k, c), written straight into the layout of rn_gemm_pack_a
 * (panels of GEMM_MR rows, column p of a panel at p * GEMM_MR). Computed in double. */
void rn_wino_pack(float *upack, const float *w, const rn_wino_geom *g, int threads)
{
    const size_t per = rn_gemm_packed_a_floats(g->k, g->c);
    memset(upack, 0, 16 * per * sizeof(float));
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1 && g->k * g->c >= 4096)
    for (int kk = 0; kk < g->k; kk++) {
        for (int ci = 0; ci < g->c; ci++) {
            const float *f = w + ((size_t)kk * g->c + ci) * 9;
            double t[4][3], u[4][4];
            for (int j = 0; j < 3; j++) { /* G along the rows of the kernel */
                const double f0 = f[0 * 3 + j], f1 = f[1 * 3 + j], f2 = f[2 * 3 + j];
                t[0][j] = f0;
                t[1][j] = 0.5 * (f0 + f1 + f2);
                t[2][j] = 0.5 * (f0 - f1 + f2);
                t[3][j] = f2;
            }
            for (int i = 0; i < 4; i++) { /* and along its columns */
                u[i][0] = t[i][0];
                u[i][1] = 0.5 * (t[i][0] + t[i][1] + t[i][2]);
                u[i][2] = 0.5 * (t[i][0] - t[i][1] + t[i][2]);
                u[i][3] = t[i][2];
            }
            const size_t at = (size_t)(kk / GEMM_MR) * GEMM_MR * g->c + (size_t)ci * GEMM_MR +
                              kk % GEMM_MR;
            for (int xi = 0; xi < 16; xi++) upack[xi * per + at] = (float)u[xi / 4][xi % 4];
        }
    }
}

/* V and M, and 8 floats of slack that the output transform's last vector may read (its
 * tiles past the image's last one are junk that it never stores). */
static size_t vm_floats(const rn_wino_geom *g)
{
    return 16 * (size_t)g->nb * g->tiles * ((size_t)g->c + g->k) + 8;
}

size_t rn_wino_rest_floats(const rn_wino_geom *g)
{
    return vm_floats(g) + 4 * g->ps;
}

static float *thread_scratch(float *rest, size_t rf, const rn_wino_geom *g, int slot)
{
    return rest + (size_t)slot * rf + vm_floats(g);
}

/* Images [i0, i0 + cnt) (cnt <= nb) with the V and M of slice `slot` of rest and packing
 * buffer `slot` of packs. threads > 1 splits the transforms over channels and the 16 matrix
 * multiplies between threads (called outside a parallel region; each thread's scratch is
 * then in its own slice and its own packing buffer). */
static void run_group(float *y, const float *x, const float *b, int relu, int i0, int cnt,
                      const rn_wino_geom *g, const rn_wino_transforms *tf, const float *upack,
                      const int *off, float *packs, float *rest, size_t rf, int slot,
                      int threads)
{
    const int c = g->c, k = g->k, tiles = g->tiles;
    const size_t ld = (size_t)g->nb * tiles; /* a row of V or M: nb images' tiles */
    const size_t vstride = (size_t)c * ld, mstride = (size_t)k * ld;
    const size_t xs = (size_t)c * g->h * g->w, ys = (size_t)k * g->oh * g->ow;
    float *v = rest + (size_t)slot * rf, *m = v + 16 * vstride;
    const size_t per = rn_gemm_packed_a_floats(k, c);
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1) if (threads > 1)
    for (int job = 0; job < cnt * c; job++) {
        const int i = job / c, ci = job % c;
        float *planes = thread_scratch(rest, rf, g, threads > 1 ? rn_thread_id() : slot);
        if (job + 1 < cnt * c) /* the next plane (prefetch.h) */
            rn_prefetch_read(x + (size_t)(i0 + (job + 1) / c) * xs +
                                 (size_t)((job + 1) % c) * g->h * g->w,
                             (size_t)g->h * g->w);
        tf->split(planes, g->ps, x + (size_t)(i0 + i) * xs + (size_t)ci * g->h * g->w, g->h,
                  g->w, g->ph, g->pw, g->gw);
        tf->input(v + (size_t)ci * ld + (size_t)i * tiles, vstride, planes, g->ps, g->gw, tiles);
    }
    /* the 16 products are independent: split between threads whole */
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1) if (threads > 1)
    for (int xi = 0; xi < 16; xi++) {
        rn_gemm_b bd = {v + xi * vstride, off, NULL};
        float *mine = packs + (size_t)(threads > 1 ? rn_thread_id() : slot) * GEMM_PACK_FLOATS;
        rn_gemm_packed(k, cnt * tiles, c, upack + xi * per, &bd, m + xi * mstride, (int)ld, 0,
                       mine, 1);
    }
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1) if (threads > 1)
    for (int job = 0; job < cnt * k; job++) {
        const int i = job / k, kk = job % k;
        if (job + 1 < cnt * k)
            rn_prefetch_write(y + (size_t)(i0 + (job + 1) / k) * ys +
                                  (size_t)((job + 1) % k) * g->oh * g->ow,
                              (size_t)g->oh * g->ow);
        tf->output(y + (size_t)(i0 + i) * ys + (size_t)kk * g->oh * g->ow,
                   m + (size_t)kk * ld + (size_t)i * tiles, mstride, g->th, g->gw, g->oh,
                   g->ow, b ? b[kk] : 0.0f, relu);
    }
}

void rn_wino_run(float *y, const float *x, const float *upack, const float *b, int relu, int n,
                 const rn_wino_geom *g, int *off, float *packs, float *rest, int threads)
{
    const rn_wino_transforms *tf = rn_cpu_simd() >= RN_SIMD_AVX2 ? &rn_wino_avx2 : &rn_wino_generic;
    for (int ci = 0; ci < g->c; ci++) off[ci] = ci * g->nb * g->tiles;
    const int groups = (n + g->nb - 1) / g->nb;
    const size_t rf = rn_wino_rest_floats(g);
    if (groups < threads || threads <= 1) {
        for (int gi = 0; gi < groups; gi++) {
            const int i0 = gi * g->nb, cnt = n - i0 < g->nb ? n - i0 : g->nb;
            run_group(y, x, b, relu, i0, cnt, g, tf, upack, off, packs, rest, rf, 0, threads);
        }
        return;
    }
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
    for (int gi = 0; gi < groups; gi++) {
        const int t = rn_thread_id();
        const int i0 = gi * g->nb, cnt = n - i0 < g->nb ? n - i0 : g->nb;
        run_group(y, x, b, relu, i0, cnt, g, tf, upack, off, packs, rest, rf, t, 1);
    }
}
