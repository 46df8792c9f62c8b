/* The blocked matrix multiply (see gemm.h) and rn_sgemm on top of it. */
#include "kernels/gemm.h"

#include <stdlib.h>
#include <string.h>
#include "core/error.h"
#include "kernels/cpu.h"
#include "kernels/kernels.h"
#ifdef _OPENMP
#include <omp.h>
#endif

static rn_gemm_ukernel pick_ukernel(void)
{
    switch (rn_cpu_simd()) {
    case RN_SIMD_AVX512: return rn_gemm_ukernel_avx512;
    case RN_SIMD_AVX2: return rn_gemm_ukernel_avx2;
    default: return rn_gemm_ukernel_generic;
    }
}

static rn_gemm_ukernel_rows pick_ukernel_rows(void)
{
    switch (rn_cpu_simd()) {
    case RN_SIMD_AVX512: return rn_gemm_ukernel_rows_avx512;
    case RN_SIMD_AVX2: return rn_gemm_ukernel_rows_avx2;
    default: return rn_gemm_ukernel_rows_generic;
    }
}

static rn_gemm_ukernel_arows pick_ukernel_arows(void)
{
    switch (rn_cpu_simd()) {
    case RN_SIMD_AVX512: return rn_gemm_ukernel_arows_avx512;
    case RN_SIMD_AVX2: return rn_gemm_ukernel_arows_avx2;
    default: return rn_gemm_ukernel_arows_generic;
    }
}

/* Packs B[k0 .. k0+kc, j0 .. j0+nc] into strips of GEMM_NR columns, each strip kc rows of
 * GEMM_NR floats; the columns past nc in the last strip are zero. */
static void pack_b(float *dst, const rn_gemm_b *b, int k0, int kc, int j0, int nc)
{
    for (int s = 0; s < nc; s += GEMM_NR) {
        const int w = nc - s < GEMM_NR ? nc - s : GEMM_NR;
        float *d = dst + (size_t)s * kc;
        if (b->row_off) {
            for (int p = 0; p < kc; p++) {
                const float *src = b->src + b->row_off[k0 + p] + j0 + s;
                float *dp = d + (size_t)p * GEMM_NR;
                if (w == GEMM_NR) {
                    memcpy(dp, src, GEMM_NR * sizeof(float));
                } else {
                    for (int j = 0; j < w; j++) dp[j] = src[j];
                    for (int j = w; j < GEMM_NR; j++) dp[j] = 0.0f;
                }
            }
        } else if (w == GEMM_NR && rn_cpu_simd() >= RN_SIMD_AVX2) {
            rn_gemm_pack_cols_avx2(d, b->src, b->col_off + j0 + s, k0, kc);
        } else {
            for (int j = 0; j < GEMM_NR; j++) {
                if (j >= w) {
                    for (int p = 0; p < kc; p++) d[(size_t)p * GEMM_NR + j] = 0.0f;
                    continue;
                }
                const float *src = b->src + b->col_off[j0 + s + j] + k0;
                for (int p = 0; p < kc; p++) d[(size_t)p * GEMM_NR + j] = src[p];
            }
        }
    }
}

/* A packed in panels of GEMM_MR rows, each panel k groups of GEMM_MR floats (column p of its
 * rows side by side); the rows past m in the last panel are zero. */
size_t rn_gemm_packed_a_floats(int m, int k)
{
    return (size_t)((m + GEMM_MR - 1) / GEMM_MR) * GEMM_MR * (size_t)k;
}

static void pack_a_panel(float *dst, const float *a, int lda, int mr, int k0, int kc)
{
    for (int p = 0; p < kc; p++) {
        for (int i = 0; i < mr; i++) dst[p * GEMM_MR + i] = a[(size_t)i * lda + k0 + p];
        for (int i = mr; i < GEMM_MR; i++) dst[p * GEMM_MR + i] = 0.0f;
    }
}

void rn_gemm_pack_a(float *dst, const float *a, int lda, int m, int k, int threads)
{
    const int panels = (m + GEMM_MR - 1) / GEMM_MR;
#pragma omp parallel for num_threads(threads) schedule(dynamic, 4) \
    if (threads > 1 && (size_t)m * k >= ((size_t)1 << 16))
    for (int p = 0; p < panels; p++) {
        const int i0 = p * GEMM_MR;
        pack_a_panel(dst + (size_t)i0 * k, a + (size_t)i0 * lda, lda,
                     m - i0 < GEMM_MR ? m - i0 : GEMM_MR, 0, k);
    }
}

typedef struct {
    int m, n, k;
    const float *a; /* raw, with lda, or packed (lda == 0), or in place (a_off) */
    int lda;
    const int *a_off; /* in place: row i of A at a + a_off[i] */
    int taps_ld;      /* in place, rows in groups of a 3x3 window's taps (rn_gemm_taps_a), or 0 */
    const rn_gemm_b *b;
    float *c;
    int ldc, accumulate;
} gemm_args;

/* One work item: the columns of block jb (ncb wide), the row panels [p0, p1). In rows mode
 * with few panels the full strips of B are read in place and only a partial last strip is
 * packed: packing costs about as much as the multiply-adds of three panels, while with many
 * panels the packed block's locality wins (measured: resnet20 training, 16-64 output channels,
 * 10% faster in place; resnet50 inference, 64-2048, 25% slower in place). */
#define GEMM_IN_PLACE_PANELS 4
typedef struct {
    rn_gemm_ukernel packed;
    rn_gemm_ukernel_rows rows;   /* B in place */
    rn_gemm_ukernel_arows arows; /* A in place */
    /* two full strips at once, or NULL (then one at a time) */
    rn_gemm_ukernel2 packed2;
    rn_gemm_ukernel2_rows rows2;
    rn_gemm_ukernel2_arows arows2;
    rn_gemm_ukernel_taps taps; /* a 3x3 window's nine rows, one or two strips, or NULL */
} ukernels;

/* C rows [0, m) in groups of nine taps (g->taps_ld), columns [j0, j0 + nc) of the packed
 * block: the full strips two or one at a time, a partial one as panels of 6 and 3 rows. */
static void run_taps(const ukernels *uk, const gemm_args *g, const float *pack, int j0, int nc,
                     int k0, int kc, int acc)
{
    const int full = nc / GEMM_NR * GEMM_NR;
    for (int r0 = 0; r0 < g->m; r0 += 9) {
        const float *a = g->a + g->a_off[r0] + k0;
        float *cr = g->c + (size_t)r0 * g->ldc + j0;
        int s = 0;
        for (; s + 2 * GEMM_NR <= full; s += 2 * GEMM_NR)
            uk->taps(kc, a, g->taps_ld, pack + (size_t)s * kc, cr + s, g->ldc, 2, acc);
        for (; s < full; s += GEMM_NR)
            uk->taps(kc, a, g->taps_ld, pack + (size_t)s * kc, cr + s, g->ldc, 1, acc);
        for (int h = 0; full < nc && h < 9; h += GEMM_MR) {
            const int mr = 9 - h < GEMM_MR ? 9 - h : GEMM_MR;
            const float *arow[GEMM_MR];
            for (int i = 0; i < mr; i++) arow[i] = g->a + g->a_off[r0 + h + i] + k0;
            uk->arows(kc, arow, pack + (size_t)full * kc, cr + (size_t)h * g->ldc + full, g->ldc,
                      mr, nc - full, acc);
        }
    }
}

static void run_item(const ukernels *uk, const gemm_args *g, float *pack, int ncb, int jb,
                     int p0, int p1)
{
    const int j0 = jb * ncb;
    const int nc = g->n - j0 < ncb ? g->n - j0 : ncb;
    const int direct = g->b->row_off != NULL && !g->a_off && p1 - p0 <= GEMM_IN_PLACE_PANELS;
    const int full = direct ? nc / GEMM_NR * GEMM_NR : 0; /* columns read in place */
    float *apack = pack + (size_t)GEMM_KC * GEMM_NC;
    for (int k0 = 0; k0 < g->k; k0 += GEMM_KC) {
        const int kc = g->k - k0 < GEMM_KC ? g->k - k0 : GEMM_KC;
        if (full < nc) pack_b(pack, g->b, k0, kc, j0 + full, nc - full);
        const int acc = g->accumulate || k0 > 0;
        if (g->taps_ld && uk->taps && p0 == 0 && (size_t)p1 * GEMM_MR >= (size_t)g->m) {
            run_taps(uk, g, pack, j0, nc, k0, kc, acc);
            continue;
        }
        for (int panel = p0; panel < p1; panel++) {
            const int i0 = panel * GEMM_MR;
            const int mr = g->m - i0 < GEMM_MR ? g->m - i0 : GEMM_MR;
            float *cp = g->c + (size_t)i0 * g->ldc + j0;
            if (g->a_off) {
                const float *arow[GEMM_MR];
                for (int i = 0; i < mr; i++) arow[i] = g->a + g->a_off[i0 + i] + k0;
                int s = 0;
                if (uk->arows2)
                    for (; s + 2 * GEMM_NR <= nc; s += 2 * GEMM_NR)
                        uk->arows2(kc, arow, pack + (size_t)s * kc, cp + s, g->ldc, mr, acc);
                for (; s < nc; s += GEMM_NR) {
                    const int nr = nc - s < GEMM_NR ? nc - s : GEMM_NR;
                    uk->arows(kc, arow, pack + (size_t)s * kc, cp + s, g->ldc, mr, nr, acc);
                }
                continue;
            }
            const float *ap;
            if (g->lda) {
                pack_a_panel(apack, g->a + (size_t)i0 * g->lda, g->lda, mr, k0, kc);
                ap = apack;
            } else {
                ap = g->a + (size_t)i0 * g->k + (size_t)k0 * GEMM_MR;
            }
            int s = 0;
            if (uk->rows2)
                for (; s + 2 * GEMM_NR <= full; s += 2 * GEMM_NR)
                    uk->rows2(kc, ap, g->b->src + j0 + s, g->b->row_off + k0, cp + s, g->ldc, mr,
                              acc);
            for (; s < full; s += GEMM_NR)
                uk->rows(kc, ap, g->b->src + j0 + s, g->b->row_off + k0, cp + s, g->ldc, mr, acc);
            s = full;
            if (uk->packed2)
                for (; s + 2 * GEMM_NR <= nc; s += 2 * GEMM_NR)
                    uk->packed2(kc, ap, pack + (size_t)(s - full) * kc, cp + s, g->ldc, mr, acc);
            for (; s < nc; s += GEMM_NR) {
                const int nr = nc - s < GEMM_NR ? nc - s : GEMM_NR;
                uk->packed(kc, ap, pack + (size_t)(s - full) * kc, cp + s, g->ldc, mr, nr, acc);
            }
        }
    }
}

static void gemm_run(const gemm_args *g, float *pack, int threads)
{
    if (g->m <= 0 || g->n <= 0) return;
    if (g->k <= 0) {
        if (!g->accumulate)
            for (int i = 0; i < g->m; i++)
                memset(g->c + (size_t)i * g->ldc, 0, (size_t)g->n * sizeof(float));
        return;
    }
    const int wide = rn_cpu_simd() == RN_SIMD_AVX512;
    const ukernels uk = {pick_ukernel(),
                         pick_ukernel_rows(),
                         pick_ukernel_arows(),
                         wide ? rn_gemm_ukernel2_avx512 : NULL,
                         wide ? rn_gemm_ukernel2_rows_avx512 : NULL,
                         wide ? rn_gemm_ukernel2_arows_avx512 : NULL,
                         wide ? rn_gemm_ukernel_taps_avx512 : NULL};
    /* Enough items for the threads to balance: narrower column blocks first (down to one
     * strip), then rows, whose split repeats the packing of B. */
    int ncb = GEMM_NC;
    if (threads > 1 && (g->n + ncb - 1) / ncb < 2 * threads) {
        const int want = (g->n + 2 * threads - 1) / (2 * threads);
        ncb = (want + GEMM_NR - 1) / GEMM_NR * GEMM_NR;
    }
    const int nblocks = (g->n + ncb - 1) / ncb;
    const int panels = (g->m + GEMM_MR - 1) / GEMM_MR;
    int chunks = 1;
    if (threads > 1 && nblocks < 4 * threads) {
        chunks = (4 * threads + nblocks - 1) / nblocks;
        if (chunks > panels) chunks = panels;
    }
    const int items = nblocks * chunks;
    if (threads <= 1 || items == 1) {
        for (int jb = 0; jb < nblocks; jb++) run_item(&uk, g, pack, ncb, jb, 0, panels);
        return;
    }
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
    for (int it = 0; it < items; it++) {
        int tid = 0;
#ifdef _OPENMP
        tid = omp_get_thread_num();
#endif
        const int jb = it / chunks, ch = it % chunks;
        const int p0 = (int)((long)panels * ch / chunks), p1 = (int)((long)panels * (ch + 1) / chunks);
        run_item(&uk, g, pack + (size_t)tid * GEMM_PACK_FLOATS, ncb, jb, p0, p1);
    }
}

void rn_gemm(int m, int n, int k, const float *a, int lda, const rn_gemm_b *b, float *c,
             int ldc, int accumulate, float *pack, int threads)
{
    gemm_args g = {m, n, k, a, lda > 0 ? lda : 1, NULL, 0, b, c, ldc, accumulate};
    gemm_run(&g, pack, threads);
}

void rn_gemm_rows_a(int m, int n, int k, const float *a_src, const int *a_off, const rn_gemm_b *b,
                    float *c, int ldc, int accumulate, float *pack, int threads)
{
    gemm_args g = {m, n, k, a_src, 0, a_off, 0, b, c, ldc, accumulate};
    gemm_run(&g, pack, threads);
}

void rn_gemm_taps_a(int m, int n, int k, const float *a_src, const int *a_off, int taps_ld,
                    const rn_gemm_b *b, float *c, int ldc, int accumulate, float *pack,
                    int threads)
{
    gemm_args g = {m, n, k, a_src, 0, a_off, m % 9 == 0 ? taps_ld : 0, b, c, ldc, accumulate};
    gemm_run(&g, pack, threads);
}

void rn_gemm_packed(int m, int n, int k, const float *ap, const rn_gemm_b *b, float *c, int ldc,
                    int accumulate, float *pack, int threads)
{
    gemm_args g = {m, n, k, ap, 0, NULL, 0, b, c, ldc, accumulate};
    gemm_run(&g, pack, threads);
}

/* Scratch layout of rn_sgemm: the packing panel, A transposed, the unscaled product, then the
 * int row offsets of B (allocated storage takes the type of what is stored in it). */
typedef struct {
    size_t at, t, offs;
} sgemm_sizes;

static sgemm_sizes sgemm_sizes_of(int trans_a, int trans_b, int m, int n, int k, float alpha,
                                  float beta)
{
    const int direct = alpha == 1.0f && (beta == 0.0f || beta == 1.0f);
    sgemm_sizes z = {trans_a ? (size_t)m * k : 0, direct ? 0 : (size_t)m * n,
                     (size_t)((trans_b ? n : k) > 0 ? (trans_b ? n : k) : 1)};
    return z;
}

size_t rn_sgemm_scratch_floats(int trans_a, int trans_b, int m, int n, int k, float alpha,
                               float beta)
{
    if (m <= 0 || n <= 0) return 0;
    const sgemm_sizes z = sgemm_sizes_of(trans_a, trans_b, m, n, k, alpha, beta);
    _Static_assert(sizeof(int) <= sizeof(float), "an int offset fits in a float's slot");
    return GEMM_PACK_FLOATS + z.at + z.t + z.offs;
}

int rn_sgemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
             const float *b, int ldb, float beta, float *c, int ldc, float *scratch)
{
    if (m <= 0 || n <= 0) return RN_OK;
    const int direct = alpha == 1.0f && (beta == 0.0f || beta == 1.0f);
    const sgemm_sizes z = sgemm_sizes_of(trans_a, trans_b, m, n, k, alpha, beta);
    const size_t floats = rn_sgemm_scratch_floats(trans_a, trans_b, m, n, k, alpha, beta);
    float *own = NULL;
    if (!scratch) {
        /* An error, not a slower loop with other rounding: the same call must give the same bits. */
        scratch = own = malloc(floats * sizeof(float));
        if (!own)
            return rn_fail(RN_ERR_NOMEM, "matrix multiply [%d x %d] x [%d x %d]: out of memory for "
                           "%zu floats of scratch", m, k, k, n, floats);
    }
    float *pack = scratch, *at = scratch + GEMM_PACK_FLOATS, *t = at + z.at;
    int *off = (int *)(void *)(t + z.t);
    if (trans_a) {
        for (int i = 0; i < m; i++)
            for (int p = 0; p < k; p++) at[(size_t)i * k + p] = a[(size_t)p * lda + i];
        a = at;
        lda = k;
    }
    const int offs = trans_b ? n : k;
    for (int i = 0; i < offs; i++) off[i] = i * ldb;
    rn_gemm_b bd = {b, trans_b ? NULL : off, trans_b ? off : NULL};
    if (direct) {
        rn_gemm(m, n, k, a, lda, &bd, c, ldc, beta == 1.0f, pack, 1);
    } else {
        rn_gemm(m, n, k, a, lda, &bd, t, n, 0, pack, 1);
        for (int i = 0; i < m; i++) {
            float *ci = c + (size_t)i * ldc;
            const float *ti = t + (size_t)i * n;
            for (int j = 0; j < n; j++)
                ci[j] = alpha * ti[j] + (beta == 0.0f ? 0.0f : beta * ci[j]);
        }
    }
    free(own);
    return RN_OK;
}
