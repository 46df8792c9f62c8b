/* Tests of src/kernels: forward values against naive reference loops and hand-computed
 * examples, backward against central finite differences, and the overwrite (dx) /
 * accumulate (dw, db, dgamma, dbeta) conventions.
 *
 * Finite differences: each backward is checked with the loss L = sum_i r_i * y_i (r a fixed
 * random tensor, L accumulated in double), so dL/dy = r is passed as dy; softmax_xent is
 * checked against its own returned loss. The error of a central difference is truncation,
 * O(eps^2 * f'''), plus rounding noise of the loss divided by 2*eps. Measured with eps swept
 * over 3e-4 .. 3e-2 (worst error over the checked coordinates):
 *   - every kernel with a float32 forward is dominated by the rounding noise of y (roughly
 *     6e-8 * |y| per output the step touches): conv, fc, gap, maxpool, relu, shortcut and BN
 *     eval are exactly linear in the checked variable (away from relu kinks and maxpool ties),
 *     and BN train (in x) and sigmoid are smooth enough that truncation stays below the noise
 *     up to eps = 3e-2 (BN train dx: 2.4e-2 at eps 3e-4, 7e-3 at 1e-3, 6e-4 at 1e-2, 3e-4 at
 *     3e-2; sigmoid: 1.1e-2, 1.4e-3, 1.3e-4, 1.4e-4). So EPS_FLOAT = 1e-2 for all of them;
 *     measured worst errors are then <= 1.6e-3 (conv 7x7 dx), most 1e-6 .. 5e-4;
 *   - softmax_xent computes in double from float logits, so its noise is negligible and
 *     truncation dominates (6e-8 at eps 3e-4, 2e-7 at 1e-3, 1.6e-5 at 1e-2): EPS_DOUBLE = 1e-3.
 * The tolerance FD_TOL = 1e-2 is thus >= 6x above every measured worst case, while a
 * wrong gradient (a dropped term, a misrouted index) gives errors of O(0.1..1). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/batchnorm_rows.h"
#include "kernels/cpu.h"
#include "kernels/gemm.h"
#include "kernels/kernels.h"
#include "kernels/winograd.h"
#include "support/check.h"

#define FD_TOL 1e-2
#define EPS_FLOAT 1e-2f
#define EPS_DOUBLE 1e-3f
#define FD_MAX_CHECKS 150

/* ---- helpers ------------------------------------------------------------------------- */

static float *alloc_f(size_t n)
{
    float *p = malloc(sizeof(float) * (n ? n : 1));
    assert_non_null(p);
    return p;
}

static float *alloc_nan(size_t n)
{
    float *p = alloc_f(n);
    for (size_t i = 0; i < n; i++) p[i] = NAN;
    return p;
}

static float *alloc_zero(size_t n)
{
    float *p = calloc(n ? n : 1, sizeof(float));
    assert_non_null(p);
    return p;
}

static double dot_d(const float *a, const float *b, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * (double)b[i];
    return s;
}

static void check_fd(const char *what, rn_test_loss_fn loss, void *ctx, float *x,
                     const float *grad, size_t n, float eps, uint64_t seed)
{
    size_t worst = 0;
    const double err = rn_test_fd_check(loss, ctx, x, grad, n, eps, FD_MAX_CHECKS, seed, &worst);
    print_message("    fd %-44s worst %.2e (at %zu of %zu, eps %.0e)\n", what, err, worst, n,
                  (double)eps);
    assert_true(err <= FD_TOL); /* false on NaN too */
}

static void assert_rel(const char *what, const float *a, const float *ref, size_t n, double tol)
{
    const double e = rn_test_rel_err(a, ref, n);
    if (!(e <= tol)) print_message("    %s: relative error %.3e > %.1e\n", what, e, tol);
    assert_true(e <= tol);
}

static void assert_close(double a, double b, double tol)
{
    if (!(fabs(a - b) <= tol)) print_message("    %.9g != %.9g (tol %.1e)\n", a, b, tol);
    assert_true(fabs(a - b) <= tol);
}

/* ---- sgemm --------------------------------------------------------------------------- */

static void test_sgemm_all_transposes(void **state)
{
    (void)state;
    const int m = 5, n = 7, k = 6, pad = 3;
    for (int ta = 0; ta < 2; ta++) {
        for (int tb = 0; tb < 2; tb++) {
            /* Stored shapes: A is m x k (or k x m), B is k x n (or n x k); padded rows. */
            const int arows = ta ? k : m, acols = ta ? m : k;
            const int brows = tb ? n : k, bcols = tb ? k : n;
            const int lda = acols + pad, ldb = bcols + pad, ldc = n + pad;
            float *a = alloc_f((size_t)arows * lda), *b = alloc_f((size_t)brows * ldb);
            float *c = alloc_f((size_t)m * ldc), *ref = alloc_f((size_t)m * ldc);
            rn_test_fill_normal(a, (size_t)arows * lda, 1, 1.0f);
            rn_test_fill_normal(b, (size_t)brows * ldb, 2, 1.0f);
            rn_test_fill_normal(c, (size_t)m * ldc, 3, 1.0f);
            memcpy(ref, c, sizeof(float) * (size_t)m * ldc);
            for (int i = 0; i < m; i++) {
                for (int j = 0; j < n; j++) {
                    double s = 0.0;
                    for (int p = 0; p < k; p++) {
                        const float av = ta ? a[(size_t)p * lda + i] : a[(size_t)i * lda + p];
                        const float bv = tb ? b[(size_t)j * ldb + p] : b[(size_t)p * ldb + j];
                        s += (double)av * bv;
                    }
                    ref[(size_t)i * ldc + j] = (float)(0.7 * s + 0.3 * ref[(size_t)i * ldc + j]);
                }
            }
            float *c2 = alloc_f((size_t)m * ldc);
            memcpy(c2, c, sizeof(float) * (size_t)m * ldc);
            assert_int_equal(rn_sgemm(ta, tb, m, n, k, 0.7f, a, lda, b, ldb, 0.3f, c, ldc, NULL), 0);
            assert_rel("sgemm", c, ref, (size_t)m * ldc, 1e-6);
            /* the caller's scratch gives the same bits as the scratch it allocates */
            float *scratch = alloc_nan(rn_sgemm_scratch_floats(ta, tb, m, n, k, 0.7f, 0.3f));
            assert_int_equal(rn_sgemm(ta, tb, m, n, k, 0.7f, a, lda, b, ldb, 0.3f, c2, ldc, scratch), 0);
            assert_memory_equal(c2, c, sizeof(float) * (size_t)m * ldc);
            free(scratch);
            free(c2);
            free(a);
            free(b);
            free(c);
            free(ref);
        }
    }
}

/* rn_gemm_rows_a (A read in place through row offsets, B packed from columns) against double
 * loops: rows in any order and overlapping, m not a multiple of the 6-row panel, n with a
 * partial 16-column strip, k over one 256-deep block; accumulate on and off; 1, 2 and 3
 * threads give the same bits. */
static void test_gemm_rows_a(void **state)
{
    (void)state;
    const int m = 17, n = 21, k = 300, src_len = 4000, ldc = n + 2;
    float *src = alloc_f(src_len), *bsrc = alloc_f((size_t)n * k);
    float *c0 = alloc_f((size_t)m * ldc), *c = alloc_f((size_t)m * ldc);
    float *ref = alloc_f((size_t)m * ldc), *c1 = alloc_f((size_t)m * ldc);
    float *pack = alloc_f(3 * GEMM_PACK_FLOATS);
    int a_off[17], b_off[21];
    for (int i = 0; i < m; i++) a_off[i] = (i * 211) % (src_len - k); /* scattered, overlapping */
    for (int j = 0; j < n; j++) b_off[j] = (n - 1 - j) * k;           /* columns reversed */
    rn_test_fill_normal(src, src_len, 51, 1.0f);
    rn_test_fill_normal(bsrc, (size_t)n * k, 52, 1.0f);
    rn_test_fill_normal(c0, (size_t)m * ldc, 53, 1.0f);
    const rn_gemm_b b = {bsrc, NULL, b_off};
    for (int acc = 0; acc <= 1; acc++) {
        for (int i = 0; i < m; i++)
            for (int j = 0; j < ldc; j++) {
                double s = acc ? c0[(size_t)i * ldc + j] : 0.0;
                for (int p = 0; p < k; p++)
                    s += (double)src[a_off[i] + p] * bsrc[b_off[j < n ? j : 0] + p];
                ref[(size_t)i * ldc + j] = j < n ? (float)s : c0[(size_t)i * ldc + j];
            }
        for (int threads = 1; threads <= 3; threads++) {
            memcpy(c, c0, (size_t)m * ldc * sizeof(float));
            rn_gemm_rows_a(m, n, k, src, a_off, &b, c, ldc, acc, pack, threads);
            assert_rel("rows_a", c, ref, (size_t)m * ldc, 1e-5);
            if (threads == 1) memcpy(c1, c, (size_t)m * ldc * sizeof(float));
            else assert_memory_equal(c, c1, (size_t)m * ldc * sizeof(float));
        }
    }
    free(src);
    free(bsrc);
    free(c0);
    free(c);
    free(ref);
    free(c1);
    free(pack);
}

/* ---- convolution --------------------------------------------------------------------- */

typedef struct {
    rn_conv_shape sh;
    float *x, *w, *b, *y, *r, *work;
    size_t ny;
} conv_ctx;

static double conv_loss(void *p)
{
    conv_ctx *c = p;
    rn_conv_forward(c->y, c->x, c->w, c->b, &c->sh, c->work);
    return dot_d(c->r, c->y, c->ny);
}

static void conv_naive(float *y, const float *x, const float *w, const float *b,
                       const rn_conv_shape *sh)
{
    for (int i = 0; i < sh->n; i++)
        for (int k = 0; k < sh->k; k++)
            for (int oy = 0; oy < sh->oh; oy++)
                for (int ox = 0; ox < sh->ow; ox++) {
                    double s = b ? b[k] : 0.0;
                    for (int c = 0; c < sh->c; c++)
                        for (int ky = 0; ky < sh->r; ky++)
                            for (int kx = 0; kx < sh->s; kx++) {
                                const int iy = oy * sh->stride - sh->pad + ky;
                                const int ix = ox * sh->stride - sh->pad + kx;
                                if (iy < 0 || iy >= sh->h || ix < 0 || ix >= sh->w) continue;
                                s += (double)x[(((size_t)i * sh->c + c) * sh->h + iy) * sh->w +
                                               ix] *
                                     w[(((size_t)k * sh->c + c) * sh->r + ky) * sh->s + kx];
                            }
                    y[(((size_t)i * sh->k + k) * sh->oh + oy) * sh->ow + ox] = (float)s;
                }
}

static void conv_case_algo(int n, int c, int h, int w, int k, int r, int s, int stride, int pad,
                           int with_bias, rn_conv_algo algo)
{
    conv_ctx cx;
    memset(&cx, 0, sizeof cx);
    assert_int_equal(rn_conv_shape_init(&cx.sh, n, c, h, w, k, r, s, stride, pad), 0);
    cx.sh.algo = algo;
    assert_int_equal(cx.sh.oh, (h + 2 * pad - r) / stride + 1);
    assert_int_equal(cx.sh.ow, (w + 2 * pad - s) / stride + 1);
    print_message("  conv n%d c%d %dx%d k%d %dx%d s%d p%d %s%s -> %dx%d\n", n, c, h, w, k, r, s,
                  stride, pad, with_bias ? "bias" : "no bias",
                  algo == RN_CONV_WINOGRAD ? " winograd" : "", cx.sh.oh, cx.sh.ow);
    const size_t nx = (size_t)n * c * h * w, nw = (size_t)k * c * r * s;
    cx.ny = (size_t)n * k * cx.sh.oh * cx.sh.ow;
    const size_t nwork = rn_conv_workspace(&cx.sh);
    cx.x = alloc_f(nx);
    cx.w = alloc_f(nw);
    cx.b = with_bias ? alloc_f((size_t)k) : NULL;
    cx.y = alloc_f(cx.ny);
    cx.r = alloc_f(cx.ny);
    cx.work = nwork ? alloc_f(nwork) : NULL;
    float *ref = alloc_f(cx.ny);
    rn_test_fill_normal(cx.x, nx, 11, 1.0f);
    rn_test_fill_normal(cx.w, nw, 12, 1.0f / sqrtf((float)(c * r * s)));
    if (cx.b) rn_test_fill_normal(cx.b, (size_t)k, 13, 0.5f);
    rn_test_fill_normal(cx.r, cx.ny, 14, 1.0f);

    /* forward against the direct 7-loop convolution */
    rn_conv_forward(cx.y, cx.x, cx.w, cx.b, &cx.sh, cx.work);
    conv_naive(ref, cx.x, cx.w, cx.b, &cx.sh);
    assert_rel("conv forward", cx.y, ref, cx.ny, 1e-5);

    /* backward: dx starts as garbage (NaN) and must be overwritten; dw, db start at 0 */
    float *dx = alloc_nan(nx), *dw = alloc_zero(nw), *db = with_bias ? alloc_zero((size_t)k) : NULL;
    rn_conv_backward(dx, dw, db, cx.r, cx.x, cx.w, &cx.sh, cx.work);
    check_fd("conv dx", conv_loss, &cx, cx.x, dx, nx, EPS_FLOAT, 101);
    check_fd("conv dw", conv_loss, &cx, cx.w, dw, nw, EPS_FLOAT, 102);
    if (with_bias) check_fd("conv db", conv_loss, &cx, cx.b, db, (size_t)k, EPS_FLOAT, 103);

    /* conventions: a second call overwrites dx (from other garbage) and accumulates dw, db */
    float *dx2 = alloc_f(nx), *dw2 = alloc_f(nw), *db2 = with_bias ? alloc_f((size_t)k) : NULL;
    for (size_t i = 0; i < nx; i++) dx2[i] = 1e30f;
    memcpy(dw2, dw, sizeof(float) * nw);
    if (db2) memcpy(db2, db, sizeof(float) * (size_t)k);
    rn_conv_backward(dx2, dw2, db2, cx.r, cx.x, cx.w, &cx.sh, cx.work);
    assert_rel("conv dx overwritten", dx2, dx, nx, 1e-7);
    for (size_t i = 0; i < nw; i++) dw[i] *= 2.0f;
    assert_rel("conv dw accumulates", dw2, dw, nw, 1e-6);
    if (db2) {
        for (int i = 0; i < k; i++) db[i] *= 2.0f;
        assert_rel("conv db accumulates", db2, db, (size_t)k, 1e-6);
    }
    /* optional outputs: dx and db may be NULL; dw alone still accumulates the same */
    float *dw3 = alloc_zero(nw);
    rn_conv_backward(NULL, dw3, NULL, cx.r, cx.x, cx.w, &cx.sh, cx.work);
    for (size_t i = 0; i < nw; i++) dw3[i] *= 2.0f;
    assert_rel("conv dw alone", dw3, dw, nw, 1e-6);

    free(cx.x);
    free(cx.w);
    free(cx.b);
    free(cx.y);
    free(cx.r);
    free(cx.work);
    free(ref);
    free(dx);
    free(dw);
    free(db);
    free(dx2);
    free(dw2);
    free(db2);
    free(dw3);
}

static void conv_case(int n, int c, int h, int w, int k, int r, int s, int stride, int pad,
                      int with_bias)
{
    conv_case_algo(n, c, h, w, k, r, s, stride, pad, with_bias, RN_CONV_AUTO);
}

/* Winograd F(2x2, 3x3) forced on small shapes: forward against direct loops, the gradients
 * against finite differences; odd and even sizes (partial tiles), padding 1 and 0 (whose
 * input gradient pads by 2), one image and several, rows of up to 18 tiles. */
static void test_conv_winograd(void **state)
{
    (void)state;
    conv_case_algo(2, 3, 5, 7, 4, 3, 3, 1, 1, 1, RN_CONV_WINOGRAD);
    conv_case_algo(3, 4, 8, 6, 5, 3, 3, 1, 1, 0, RN_CONV_WINOGRAD);
    conv_case_algo(1, 2, 7, 9, 3, 3, 3, 1, 0, 1, RN_CONV_WINOGRAD);
    conv_case_algo(2, 3, 3, 3, 2, 3, 3, 1, 1, 0, RN_CONV_WINOGRAD);
    /* rows of more than 8 tiles (the output transform's vectors run past a row's end, and
     * must not run past the map's) */
    conv_case_algo(2, 2, 9, 35, 3, 3, 3, 1, 1, 1, RN_CONV_WINOGRAD);
    conv_case_algo(1, 2, 10, 20, 2, 3, 3, 1, 1, 0, RN_CONV_WINOGRAD);
}

static void test_conv_shape(void **state)
{
    (void)state;
    rn_conv_shape sh;
    assert_int_equal(rn_conv_shape_init(&sh, 1, 3, 7, 8, 4, 3, 3, 2, 1), 0);
    assert_int_equal(sh.oh, 4);
    assert_int_equal(sh.ow, 4);
    assert_int_equal(rn_conv_shape_init(&sh, 1, 3, 224, 224, 64, 7, 7, 2, 3), 0);
    assert_int_equal(sh.oh, 112);
    /* the workspace grows with the thread count (a slice of scratch per thread) */
    const size_t one = rn_conv_workspace(&sh);
    sh.threads = 2;
    assert_true(rn_conv_workspace(&sh) > one);
    assert_int_equal(rn_conv_shape_init(&sh, 1, 3, 2, 8, 4, 5, 5, 1, 0), -1); /* empty */
    assert_int_equal(rn_conv_shape_init(&sh, 1, 3, 8, 8, 4, 3, 3, 0, 1), -1); /* stride 0 */
    assert_int_equal(rn_conv_shape_init(&sh, 1, 3, 8, 8, 4, 3, 3, 1, 3), -1); /* pad >= 3 */
}

static void test_conv_3x3_s1_p1(void **state)
{
    (void)state;
    conv_case(2, 3, 5, 7, 4, 3, 3, 1, 1, 1);
    conv_case(2, 3, 5, 7, 4, 3, 3, 1, 1, 0);
}

static void test_conv_3x3_s2_p1(void **state)
{
    (void)state;
    conv_case(2, 3, 7, 5, 5, 3, 3, 2, 1, 1);
    conv_case(2, 4, 8, 8, 3, 3, 3, 2, 1, 0);
    conv_case(2, 3, 10, 11, 4, 3, 3, 3, 1, 1); /* stride 3: nine phase planes */
    conv_case(2, 2, 9, 8, 3, 5, 5, 2, 2, 0);   /* taps 2 apart in one phase plane */
}

static void test_conv_1x1(void **state)
{
    (void)state;
    conv_case(2, 4, 7, 5, 6, 1, 1, 2, 0, 0); /* projection shortcut: im2col subsamples */
    conv_case(2, 4, 7, 5, 6, 1, 1, 2, 0, 1);
    conv_case(2, 4, 5, 7, 3, 1, 1, 1, 0, 1); /* pointwise: GEMM on x directly */
}

static void test_conv_7x7_s2_p3(void **state)
{
    (void)state;
    conv_case(2, 3, 11, 13, 4, 7, 7, 2, 3, 1);
    conv_case(1, 2, 9, 9, 3, 7, 7, 2, 3, 0);
}

static void test_conv_rect_kernel(void **state)
{
    (void)state;
    conv_case(2, 2, 6, 5, 3, 3, 2, 1, 1, 1);
    conv_case(2, 2, 6, 5, 3, 2, 3, 1, 1, 0);
    conv_case(2, 2, 6, 7, 3, 3, 3, 1, 0, 1); /* no padding, stride 1 */
}

/* Direct loops for the three products of a convolution, accumulated in double. */
static void conv_backward_naive(float *dx, float *dw, float *db, const float *dy, const float *x,
                                const float *w, const rn_conv_shape *sh)
{
    const size_t nx = (size_t)sh->n * sh->c * sh->h * sh->w, nw = (size_t)sh->k * sh->c * sh->r * sh->s;
    double *ax = calloc(nx, sizeof(double)), *aw = calloc(nw, sizeof(double));
    double *ab = calloc((size_t)sh->k, sizeof(double));
    assert_non_null(ax);
    assert_non_null(aw);
    assert_non_null(ab);
    for (int i = 0; i < sh->n; i++)
        for (int k = 0; k < sh->k; k++)
            for (int oy = 0; oy < sh->oh; oy++)
                for (int ox = 0; ox < sh->ow; ox++) {
                    const double g = dy[(((size_t)i * sh->k + k) * sh->oh + oy) * sh->ow + ox];
                    ab[k] += g;
                    for (int c = 0; c < sh->c; c++)
                        for (int ky = 0; ky < sh->r; ky++)
                            for (int kx = 0; kx < sh->s; kx++) {
                                const int iy = oy * sh->stride - sh->pad + ky;
                                const int ix = ox * sh->stride - sh->pad + kx;
                                if (iy < 0 || iy >= sh->h || ix < 0 || ix >= sh->w) continue;
                                const size_t xi = (((size_t)i * sh->c + c) * sh->h + iy) * sh->w + ix;
                                const size_t wi = (((size_t)k * sh->c + c) * sh->r + ky) * sh->s + kx;
                                ax[xi] += g * w[wi];
                                aw[wi] += g * x[xi];
                            }
                }
    for (size_t i = 0; i < nx; i++) dx[i] = (float)ax[i];
    for (size_t i = 0; i < nw; i++) dw[i] = (float)aw[i];
    for (int k = 0; k < sh->k; k++) db[k] = (float)ab[k];
    free(ax);
    free(aw);
    free(ab);
}

/* Shapes large enough for every blocking path of the matrix multiply (several k and column
 * blocks, row and column tails, several weight-gradient groups of images): forward and the
 * three gradients against direct loops, and bit-identical results for 1, 2 and 3 threads. */
static void conv_blocked_case_algo(int n, int c, int h, int w, int k, int r, int stride, int pad,
                                   rn_conv_algo algo)
{
    rn_conv_shape sh;
    assert_int_equal(rn_conv_shape_init(&sh, n, c, h, w, k, r, r, stride, pad), 0);
    sh.algo = algo;
    print_message("  blocked conv n%d c%d %dx%d k%d %dx%d s%d p%d%s\n", n, c, h, w, k, r, r,
                  stride, pad, algo == RN_CONV_WINOGRAD ? " winograd" : "");
    const size_t nx = (size_t)n * c * h * w, nw = (size_t)k * c * r * r;
    const size_t ny = (size_t)n * k * sh.oh * sh.ow;
    float *x = alloc_f(nx), *wt = alloc_f(nw), *b = alloc_f((size_t)k), *dy = alloc_f(ny);
    float *ref_y = alloc_f(ny), *ref_dx = alloc_f(nx), *ref_dw = alloc_f(nw), *ref_db = alloc_f((size_t)k);
    rn_test_fill_normal(x, nx, 21, 1.0f);
    rn_test_fill_normal(wt, nw, 22, 1.0f / sqrtf((float)(c * r * r)));
    rn_test_fill_normal(b, (size_t)k, 23, 0.5f);
    rn_test_fill_normal(dy, ny, 24, 1.0f);
    conv_naive(ref_y, x, wt, b, &sh);
    conv_backward_naive(ref_dx, ref_dw, ref_db, dy, x, wt, &sh);
    float *first[4] = {NULL, NULL, NULL, NULL};
    for (int threads = 1; threads <= 3; threads++) {
        sh.threads = threads;
        float *work = alloc_f(rn_conv_workspace(&sh));
        float *y = alloc_f(ny), *dx = alloc_nan(nx), *dw = alloc_zero(nw), *db = alloc_zero((size_t)k);
        rn_conv_forward(y, x, wt, b, &sh, work);
        rn_conv_backward(dx, dw, db, dy, x, wt, &sh, work);
        assert_rel("blocked conv forward", y, ref_y, ny, 1e-5);
        assert_rel("blocked conv dx", dx, ref_dx, nx, 1e-5);
        assert_rel("blocked conv dw", dw, ref_dw, nw, 1e-5);
        assert_rel("blocked conv db", db, ref_db, (size_t)k, 1e-5);
        float *got[4] = {y, dx, dw, db};
        const size_t len[4] = {ny, nx, nw, (size_t)k};
        for (int j = 0; j < 4; j++) {
            if (threads == 1) {
                first[j] = got[j];
                continue;
            }
            assert_memory_equal(got[j], first[j], len[j] * sizeof(float));
            free(got[j]);
        }
        free(work);
    }
    for (int j = 0; j < 4; j++) free(first[j]);
    free(x);
    free(wt);
    free(b);
    free(dy);
    free(ref_y);
    free(ref_dx);
    free(ref_dw);
    free(ref_db);
}

static void conv_blocked_case(int n, int c, int h, int w, int k, int r, int stride, int pad)
{
    conv_blocked_case_algo(n, c, h, w, k, r, stride, pad, RN_CONV_AUTO);
}

/* The fused BN + ReLU kernels against the two kernels one after the other: the same bits. */
static void test_bn_relu_fused(void **state)
{
    (void)state;
    const int n = 3, c = 5, hw = 37; /* hw not a multiple of the 8 partial sums */
    const size_t len = (size_t)n * c * hw;
    float *x = alloc_f(len), *dy = alloc_f(len), *gamma = alloc_f(c), *beta = alloc_f(c);
    float *rm = alloc_f(c), *rv = alloc_f(c), *mean = alloc_f(c), *var = alloc_f(c);
    float *mean2 = alloc_f(c), *var2 = alloc_f(c);
    float *y = alloc_f(len), *yr = alloc_f(len), *yf = alloc_f(len);
    float *dr = alloc_f(len), *dx = alloc_f(len), *dxf = alloc_f(len);
    float *dg = alloc_zero(c), *db = alloc_zero(c), *dgf = alloc_zero(c), *dbf = alloc_zero(c);
    rn_test_fill_normal(x, len, 31, 1.0f);
    rn_test_fill_normal(dy, len, 32, 1.0f);
    rn_test_fill_normal(gamma, c, 33, 1.0f);
    rn_test_fill_normal(beta, c, 34, 1.0f);
    rn_test_fill_normal(rm, c, 35, 0.3f);
    for (int i = 0; i < c; i++) rv[i] = 0.5f + 0.1f * (float)i;
    for (int train = 0; train <= 1; train++) {
        if (train) {
            rn_bn_forward_train(y, mean, var, x, gamma, beta, n, c, hw, 1e-5f);
            rn_bn_relu_forward_train(yf, mean2, var2, x, gamma, beta, n, c, hw, 1e-5f);
            assert_memory_equal(mean, mean2, c * sizeof(float));
            assert_memory_equal(var, var2, c * sizeof(float));
        } else {
            rn_bn_forward_eval(y, x, gamma, beta, rm, rv, n, c, hw, 1e-5f);
            rn_bn_relu_forward_eval(yf, x, gamma, beta, rm, rv, n, c, hw, 1e-5f);
        }
        rn_relu_forward(yr, y, len);
        assert_memory_equal(yr, yf, len * sizeof(float));
        rn_relu_backward(dr, dy, yr, len);
        if (train) {
            rn_bn_backward_train(dx, dg, db, dr, x, gamma, mean, var, n, c, hw, 1e-5f);
            rn_bn_relu_backward_train(dxf, dgf, dbf, dy, yf, x, gamma, mean, var, n, c, hw, 1e-5f);
        } else {
            rn_bn_backward_eval(dx, dg, db, dr, x, gamma, rm, rv, n, c, hw, 1e-5f);
            rn_bn_relu_backward_eval(dxf, dgf, dbf, dy, yf, x, gamma, rm, rv, n, c, hw, 1e-5f);
        }
        assert_memory_equal(dx, dxf, len * sizeof(float));
        assert_memory_equal(dg, dgf, c * sizeof(float));
        assert_memory_equal(db, dbf, c * sizeof(float));
    }
    float *all[] = {x, dy, gamma, beta, rm, rv, mean, var, mean2, var2, y, yr, yf, dr, dx, dxf,
                    dg, db, dgf, dbf};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) free(all[i]);
}

/* Batch normalization's row loops give the same bits in the portable and the AVX2 build
 * (their summation order is fixed by the code, batchnorm_rows.h): lengths with and without a
 * tail, masked and unmasked, one row and enough rows that the float partial sums are added
 * into double more than once; and the sums agree with plain double loops. */
static void test_bn_rows_builds_agree(void **state)
{
    (void)state;
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) skip();
    const rn_bn_rows *g = &rn_bn_rows_generic, *a = &rn_bn_rows_avx2;
    enum { MAXLEN = 53, ROWS = 24, CS = MAXLEN + 3, ALL = ROWS * CS };
    static float x[ALL], dy[ALL], ry[ALL], y1[ALL], y2[ALL];
    rn_test_fill_normal(x, ALL, 41, 2.0f);
    rn_test_fill_normal(dy, ALL, 42, 1.0f);
    rn_test_fill_normal(ry, ALL, 43, 1.0f);
    for (int i = 0; i < ALL; i++) x[i] += 3.0f; /* a mean away from zero */
    const int lens[] = {1, 7, 8, 16, 37, 49, 53}, rows[] = {1, 5, ROWS};
    const double mu = 2.9;
    for (size_t t = 0; t < sizeof lens / sizeof lens[0]; t++)
        for (size_t ri = 0; ri < sizeof rows / sizeof rows[0]; ri++) {
            const int len = lens[t], n = rows[ri];
            double rs = 0.0, rq = 0.0, rg[2] = {0.0, 0.0}, rgx[2] = {0.0, 0.0};
            for (int i = 0; i < n; i++)
                for (int j = 0; j < len; j++) {
                    const double v = x[i * CS + j], d = dy[i * CS + j];
                    rs += v;
                    rq += (v - mu) * (v - mu);
                    rg[0] += d;
                    rgx[0] += d * (v - mu);
                    rg[1] += ry[i * CS + j] > 0.0f ? d : 0.0;
                    rgx[1] += ry[i * CS + j] > 0.0f ? d * (v - mu) : 0.0;
                }
            const double sum = g->sum(x, n, CS, len), sq = g->sqdev(x, n, CS, len, mu);
            assert_true(sum == a->sum(x, n, CS, len));
            assert_true(sq == a->sqdev(x, n, CS, len, mu));
            assert_true(fabs(sum - rs) <= 1e-5 * (fabs(rs) + n * len));
            assert_true(fabs(sq - rq) <= 1e-5 * rq);
            for (int relu = 0; relu <= 1; relu++) {
                const float *mask = relu ? ry : NULL;
                double s1, s2, p1, p2;
                g->grad_sums(dy, mask, x, n, CS, len, mu, &s1, &p1);
                a->grad_sums(dy, mask, x, n, CS, len, mu, &s2, &p2);
                assert_true(s1 == s2 && p1 == p2);
                assert_true(fabs(s1 - rg[relu]) <= 1e-5 * n * len);
                assert_true(fabs(p1 - rgx[relu]) <= 1e-5 * n * len);
                if (n > 1) continue; /* the element passes work on one row */
                g->normalize(y1, x, len, 2.9f, 1.3f, -0.2f, relu);
                a->normalize(y2, x, len, 2.9f, 1.3f, -0.2f, relu);
                assert_memory_equal(y1, y2, len * sizeof(float));
                g->dx(y1, dy, mask, x, len, 0.7f, 0.01f, 2.9f, 0.03f);
                a->dx(y2, dy, mask, x, len, 0.7f, 0.01f, 2.9f, 0.03f);
                assert_memory_equal(y1, y2, len * sizeof(float));
            }
        }
}

/* Winograd's output transform gives the same bits in the portable and the AVX2 build (GCC
 * vector types, the same float operations), and writes exactly the map: odd and even sizes,
 * rows of up to 18 tiles (vectors that run past a row's end), with and without ReLU. */
static void test_wino_output_builds_agree(void **state)
{
    (void)state;
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) skip();
    const int sizes[][2] = {{1, 1}, {4, 4}, {7, 7}, {14, 14}, {9, 35}, {28, 28}, {20, 17}};
    for (size_t t = 0; t < sizeof sizes / sizeof sizes[0]; t++) {
        const int oh = sizes[t][0], ow = sizes[t][1];
        const int th = (oh + 1) / 2, gw = (ow + 1) / 2 + 1;
        const size_t mstride = (size_t)th * gw + 8; /* 8: the slack the transform may read */
        float *m = malloc(16 * mstride * sizeof(float));
        float *y1 = malloc(((size_t)oh * ow + 1) * sizeof(float));
        float *y2 = malloc(((size_t)oh * ow + 1) * sizeof(float));
        assert_non_null(m);
        assert_non_null(y1);
        assert_non_null(y2);
        rn_test_fill_normal(m, 16 * mstride, 51 + (unsigned)t, 1.0f);
        for (int relu = 0; relu <= 1; relu++) {
            y1[oh * ow] = y2[oh * ow] = 12345.0f; /* the float after the map stays */
            rn_wino_generic.output(y1, m, mstride, th, gw, oh, ow, 0.25f, relu);
            rn_wino_avx2.output(y2, m, mstride, th, gw, oh, ow, 0.25f, relu);
            assert_memory_equal(y1, y2, ((size_t)oh * ow + 1) * sizeof(float));
            assert_true(y1[oh * ow] == 12345.0f);
            /* pixel (1, 0), in tile 0, against A^T M A written out */
            if (oh >= 2 && ow >= 2) {
                const float *c = m; /* tile 0 of each matrix at c[xi * mstride] */
                float s[4][2];
                for (int i = 0; i < 4; i++) {
                    const float m0 = c[(4 * i) * mstride], m1 = c[(4 * i + 1) * mstride];
                    const float m2 = c[(4 * i + 2) * mstride], m3 = c[(4 * i + 3) * mstride];
                    s[i][0] = m0 + m1 + m2;
                    s[i][1] = m1 - m2 - m3;
                }
                float want = s[1][0] - s[2][0] - s[3][0] + 0.25f;
                if (relu && !(want > 0.0f)) want = 0.0f;
                assert_true(y1[ow] == want);
            }
        }
        free(m);
        free(y1);
        free(y2);
    }
}

/* The AVX-512 microkernels give the AVX2 ones' bits (the same fused multiply-adds per element
 * in the same order): every row count, full and partial strips, overwrite and accumulate, B
 * packed and read in place (rows mode), A packed and read in place (arows), depths of 1 to
 * past GEMM_KC; and the two-strip kernels the bits of two calls of the AVX2 one-strip ones. On
 * a CPU without AVX-512 there is nothing to compare: skipped. */
static void test_gemm_ukernels_avx512_agree(void **state)
{
    (void)state;
    if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx2") ||
        !__builtin_cpu_supports("fma"))
        skip();
    enum { KMAX = GEMM_KC + 9, W = 2 * GEMM_NR, LDC = W + 5, LDB = W + 3 };
    static float ap[KMAX * GEMM_MR], arows[GEMM_MR][KMAX], bp[KMAX * W], bsrc[KMAX * LDB];
    static float c0[GEMM_MR * LDC], c1[GEMM_MR * LDC], c2[GEMM_MR * LDC];
    static int off[KMAX];
    rn_test_fill_normal(ap, KMAX * GEMM_MR, 51, 1.0f);
    rn_test_fill_normal(&arows[0][0], GEMM_MR * KMAX, 52, 1.0f);
    rn_test_fill_normal(bp, KMAX * W, 53, 1.0f);
    rn_test_fill_normal(bsrc, KMAX * LDB, 54, 1.0f);
    rn_test_fill_normal(c0, GEMM_MR * LDC, 55, 1.0f);
    for (int p = 0; p < KMAX; p++) off[p] = (p * 7 % KMAX) * LDB + p % 3;
    const float *arow[GEMM_MR];
    for (int i = 0; i < GEMM_MR; i++) arow[i] = arows[i];
    const int kcs[] = {1, 5, 64, KMAX}, nrs[] = {GEMM_NR, 9, 1};
    int compared = 0;
    for (size_t t = 0; t < sizeof kcs / sizeof kcs[0]; t++)
        for (int mr = 1; mr <= GEMM_MR; mr++)
            for (size_t u = 0; u < sizeof nrs / sizeof nrs[0]; u++)
                for (int acc = 0; acc <= 1; acc++)
                    for (int kind = 0; kind < 6; kind++) {
                        const int kc = kcs[t], nr = nrs[u];
                        const float *bp2 = bp + (size_t)kc * GEMM_NR; /* the next strip */
                        if (kind != 0 && kind != 2 && nr != GEMM_NR) continue; /* full strips */
                        memcpy(c1, c0, sizeof c1);
                        memcpy(c2, c0, sizeof c2);
                        if (kind == 0) {
                            rn_gemm_ukernel_avx2(kc, ap, bp, c1, LDC, mr, nr, acc);
                            rn_gemm_ukernel_avx512(kc, ap, bp, c2, LDC, mr, nr, acc);
                        } else if (kind == 1) {
                            rn_gemm_ukernel_rows_avx2(kc, ap, bsrc, off, c1, LDC, mr, acc);
                            rn_gemm_ukernel_rows_avx512(kc, ap, bsrc, off, c2, LDC, mr, acc);
                        } else if (kind == 2) {
                            rn_gemm_ukernel_arows_avx2(kc, arow, bp, c1, LDC, mr, nr, acc);
                            rn_gemm_ukernel_arows_avx512(kc, arow, bp, c2, LDC, mr, nr, acc);
                        } else if (kind == 3) {
                            rn_gemm_ukernel_avx2(kc, ap, bp, c1, LDC, mr, GEMM_NR, acc);
                            rn_gemm_ukernel_avx2(kc, ap, bp2, c1 + GEMM_NR, LDC, mr, GEMM_NR, acc);
                            rn_gemm_ukernel2_avx512(kc, ap, bp, c2, LDC, mr, acc);
                        } else if (kind == 4) {
                            rn_gemm_ukernel_rows_avx2(kc, ap, bsrc, off, c1, LDC, mr, acc);
                            rn_gemm_ukernel_rows_avx2(kc, ap, bsrc + GEMM_NR, off, c1 + GEMM_NR, LDC,
                                                      mr, acc);
                            rn_gemm_ukernel2_rows_avx512(kc, ap, bsrc, off, c2, LDC, mr, acc);
                        } else {
                            rn_gemm_ukernel_arows_avx2(kc, arow, bp, c1, LDC, mr, GEMM_NR, acc);
                            rn_gemm_ukernel_arows_avx2(kc, arow, bp2, c1 + GEMM_NR, LDC, mr,
                                                       GEMM_NR, acc);
                            rn_gemm_ukernel2_arows_avx512(kc, arow, bp, c2, LDC, mr, acc);
                        }
                        /* also the untouched rows and columns around the block */
                        assert_memory_equal(c1, c2, sizeof c1);
                        assert_true(memcmp(c1, c0, sizeof c1) != 0);
                        compared++;
                    }
    assert_int_equal(compared, 4 * GEMM_MR * (3 * 2 * 2 + 2 * 4));
}

/* The AVX-512 kernel on a 3x3 window's nine rows (three row pointers, the kx shift a
 * displacement) gives the bits of the AVX2 one-strip kernel on the same nine rows, one and
 * two strips, overwriting and accumulating, and writes nothing else of C. */
static void test_gemm_taps_kernel_agrees(void **state)
{
    (void)state;
    if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx2") ||
        !__builtin_cpu_supports("fma"))
        skip();
    enum { KMAX = GEMM_KC + 7, LD = KMAX + 11, W = 2 * GEMM_NR, LDC = W + 5, ROWS = 11 };
    static float plane[3 * LD + 2], bp[KMAX * W], c0[ROWS * LDC], c1[ROWS * LDC], c2[ROWS * LDC];
    rn_test_fill_normal(plane, 3 * LD + 2, 61, 1.0f);
    rn_test_fill_normal(bp, KMAX * W, 62, 1.0f);
    rn_test_fill_normal(c0, ROWS * LDC, 63, 1.0f);
    const float *arow[9];
    for (int t = 0; t < 9; t++) arow[t] = plane + (t / 3) * LD + t % 3;
    const int kcs[] = {1, 6, 100, KMAX};
    for (size_t u = 0; u < sizeof kcs / sizeof kcs[0]; u++)
        for (int strips = 1; strips <= 2; strips++)
            for (int acc = 0; acc <= 1; acc++) {
                const int kc = kcs[u];
                memcpy(c1, c0, sizeof c1);
                memcpy(c2, c0, sizeof c2);
                float *b1 = c1 + LDC, *b2 = c2 + LDC; /* a row of C above the block stays */
                for (int s = 0; s < strips; s++)
                    for (int h = 0; h < 9; h += GEMM_MR)
                        rn_gemm_ukernel_arows_avx2(kc, arow + h, bp + (size_t)s * kc * GEMM_NR,
                                                   b1 + (size_t)h * LDC + s * GEMM_NR, LDC,
                                                   9 - h < GEMM_MR ? 9 - h : GEMM_MR, GEMM_NR,
                                                   acc);
                rn_gemm_ukernel_taps_avx512(kc, plane, LD, bp, b2, LDC, strips, acc);
                assert_memory_equal(c1, c2, sizeof c1);
                assert_true(memcmp(c1, c0, sizeof c1) != 0);
            }
}

/* RN_SIMD=generic must select the portable kernels: tools/run-tests.sh runs this program a
 * second time that way, and this check makes sure that run tested what it claims to. */
static void test_simd_selection(void **state)
{
    (void)state;
    const char *want = getenv("RN_SIMD");
    const rn_simd got = rn_cpu_simd();
    /* the rule of cpu.c, from the CPU's own flags: RN_SIMD=generic holds to portable C,
     * RN_SIMD=avx2 to AVX2 where the CPU has it, and otherwise the best the CPU has */
    rn_simd expect = RN_SIMD_GENERIC;
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    const int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (want && !strcmp(want, "generic")) expect = RN_SIMD_GENERIC;
    else if (!avx2) expect = RN_SIMD_GENERIC;
    else if (want && !strcmp(want, "avx2")) expect = RN_SIMD_AVX2;
    else expect = __builtin_cpu_supports("avx512f") ? RN_SIMD_AVX512 : RN_SIMD_AVX2;
#endif
    assert_int_equal(got, expect);
    print_message("  kernels: %s%s\n",
                  got == RN_SIMD_AVX512 ? "AVX-512 (microkernels) + AVX2 + FMA"
                  : got == RN_SIMD_AVX2 ? "AVX2 + FMA"
                                        : "portable C",
                  want ? " (RN_SIMD set)" : "");
}

static void test_conv_blocked_and_threads(void **state)
{
    (void)state;
    conv_blocked_case(17, 35, 19, 18, 13, 3, 1, 1); /* crs 315 > KC, q 342 > NC, 3 groups */
    conv_blocked_case(9, 20, 15, 15, 70, 3, 2, 1);  /* strided, 12 row panels */
    conv_blocked_case(10, 300, 6, 6, 7, 1, 1, 0);   /* pointwise, crs 300 */
    conv_blocked_case(3, 3, 30, 30, 8, 7, 2, 3);    /* the ImageNet stem's shape, small */
    conv_blocked_case(9, 40, 13, 13, 24, 1, 2, 0);  /* projection shortcut, odd size */
    /* Winograd: 16 matrix multiplies of 40 x 300 x 70 (k blocks, row panels, column tails);
     * a 7x7 map whose images are batched, in groups that change with the thread count */
    conv_blocked_case_algo(5, 300, 10, 9, 40, 3, 1, 1, RN_CONV_WINOGRAD);
    conv_blocked_case(11, 24, 7, 7, 20, 3, 1, 1);
    conv_blocked_case_algo(11, 24, 7, 7, 20, 3, 1, 1, RN_CONV_DIRECT);
    /* direct weight gradients with images side by side: 8 of 4x4 (groups 8, 8, 3); none for a
     * pointwise 17x17 (read in place); the cases above put 4 (7x7, projection, pointwise 6x6)
     * or 2 (strided 15x15) side by side, with partial last groups */
    conv_blocked_case_algo(19, 16, 4, 4, 24, 3, 1, 1, RN_CONV_DIRECT);
    conv_blocked_case(19, 16, 4, 4, 24, 3, 1, 1); /* the same, forward by Winograd */
    conv_blocked_case(3, 20, 17, 17, 9, 1, 1, 0);
    /* stride 2 onto 4- and 3-pixel rows, several rows a call (the microkernel's fixed offsets) */
    conv_blocked_case_algo(3, 24, 8, 8, 40, 3, 2, 1, RN_CONV_DIRECT);
    conv_blocked_case(3, 24, 6, 6, 40, 1, 2, 0);
    /* one image: 2 and 3 threads split its multiply and its output pass (bias, compaction) */
    conv_blocked_case(1, 20, 9, 9, 24, 3, 1, 1);
    conv_blocked_case(1, 20, 9, 9, 24, 3, 2, 1);
    conv_blocked_case(1, 40, 7, 7, 24, 1, 1, 0);
}

/* The forward with weights packed once (rn_conv_pack + rn_conv_forward_packed) gives the bits
 * of rn_conv_forward followed by a ReLU, and with scaled weights those of the forward with the
 * weights scaled beforehand, on every path: Winograd, direct stride 1 (images side
 * by side), strided, pointwise, strided pointwise; 1 and 2 threads. */
static void packed_case(int n, int c, int hw, int k, int r, int stride, int algo, int threads)
{
    rn_conv_shape sh;
    assert_int_equal(rn_conv_shape_init(&sh, n, c, hw, hw, k, r, r, stride, r / 2), 0);
    sh.algo = algo;
    sh.threads = threads;
    const size_t xl = (size_t)n * c * hw * hw, yl = (size_t)n * k * sh.oh * sh.ow;
    float *x = alloc_f(xl), *w = alloc_f((size_t)k * c * r * r), *b = alloc_f((size_t)k);
    float *ref = alloc_f(yl), *got = alloc_f(yl), *work = alloc_f(rn_conv_workspace(&sh));
    float *packed = alloc_f(rn_conv_packed_floats_max(&sh));
    assert_true(rn_conv_packed_floats(&sh) <= rn_conv_packed_floats_max(&sh));
    rn_test_fill_normal(x, xl, 31, 1.0f);
    rn_test_fill_normal(w, (size_t)k * c * r * r, 32, 0.3f);
    rn_test_fill_normal(b, (size_t)k, 33, 0.5f);
    rn_conv_forward(ref, x, w, b, &sh, work);
    rn_conv_pack(packed, w, NULL, &sh, work);
    rn_conv_forward_packed(got, x, packed, b, 0, &sh, work);
    assert_memory_equal(got, ref, yl * sizeof(float));
    int negative = 0;
    for (size_t i = 0; i < yl; i++) {
        negative += ref[i] < 0.0f;
        ref[i] = ref[i] > 0.0f ? ref[i] : 0.0f;
    }
    assert_true(negative > 0);
    rn_conv_forward_packed(got, x, packed, b, 1, &sh, work);
    assert_memory_equal(got, ref, yl * sizeof(float));
    /* a scale per output channel: as the forward with the scaled weights */
    float *scale = alloc_f((size_t)k);
    rn_test_fill_uniform(scale, (size_t)k, 34, 0.5f, 2.0f);
    const size_t per = (size_t)c * r * r;
    rn_conv_pack(packed, w, scale, &sh, work);
    for (int kk = 0; kk < k; kk++)
        for (size_t j = 0; j < per; j++) w[kk * per + j] *= scale[kk];
    rn_conv_forward(ref, x, w, b, &sh, work);
    rn_conv_forward_packed(got, x, packed, b, 0, &sh, work);
    assert_memory_equal(got, ref, yl * sizeof(float));
    free(x), free(w), free(b), free(ref), free(got), free(work), free(packed), free(scale);
}

static void test_conv_packed(void **state)
{
    (void)state;
    for (int t = 1; t <= 2; t++) {
        packed_case(6, 20, 9, 24, 3, 1, RN_CONV_WINOGRAD, t);
        packed_case(6, 20, 9, 24, 3, 1, RN_CONV_DIRECT, t);
        packed_case(1, 20, 9, 24, 3, 1, RN_CONV_AUTO, t); /* too few tiles: direct */
        packed_case(5, 8, 11, 12, 3, 2, RN_CONV_AUTO, t);
        packed_case(4, 30, 6, 10, 1, 1, RN_CONV_AUTO, t);
        packed_case(4, 12, 7, 16, 1, 2, RN_CONV_AUTO, t);
        packed_case(3, 3, 20, 8, 7, 2, RN_CONV_AUTO, t);
    }
}

/* ---- channel-blocked convolution ------------------------------------------------------ */

/* rn_convb_forward on blocked tensors against double loops on the planar ones: scale, bias and
 * ReLU, channel counts that do not fill a block, every kernel and stride of the zoo, output rows
 * longer and shorter than the microkernel's; 1, 2 and 3 threads give the same bits, and the
 * lanes past the channels stay zero. */
/* wino: 0 the direct kernel, 1 Winograd, 2 the direct kernel from the planar input */
static void convb_case_as(int n, int c, int h, int w, int k, int r, int stride, int pad, int relu,
                          int wino)
{
    rn_conv_shape sh;
    assert_int_equal(rn_conv_shape_init(&sh, n, c, h, w, k, r, r, stride, pad), 0);
    const size_t xl = (size_t)n * c * h * w, yl = (size_t)n * k * sh.oh * sh.ow;
    const size_t xbl = rn_blk_floats(n, c, h, w), ybl = rn_blk_floats(n, k, sh.oh, sh.ow);
    float *x = alloc_f(xl), *wt = alloc_f((size_t)k * c * r * r), *b = alloc_f((size_t)k);
    float *scale = alloc_f((size_t)k), *xb = alloc_nan(xbl), *got = alloc_f(yl);
    float *packed = alloc_nan(wino == 1 ? rn_convb_wino_packed_floats(&sh) : rn_convb_packed_floats(&sh));
    rn_test_fill_normal(x, xl, 41, 1.0f);
    rn_test_fill_normal(wt, (size_t)k * c * r * r, 42, 0.3f);
    rn_test_fill_normal(b, (size_t)k, 43, 0.5f);
    rn_test_fill_uniform(scale, (size_t)k, 44, 0.5f, 2.0f);
    rn_blk_from_nchw(xb, x, n, c, h, w);
    (wino == 1 ? rn_convb_wino_pack : rn_convb_pack)(packed, wt, scale, b, &sh);
    float *yb[3];
    for (int t = 1; t <= 3; t++) {
        sh.threads = t;
        float *work = alloc_nan((wino == 1 ? rn_convb_wino_workspace(&sh) : rn_convb_workspace(&sh)) + 1);
        yb[t - 1] = alloc_nan(ybl);
        if (wino == 2) rn_convb_forward_planar_in(yb[t - 1], x, packed, relu, &sh, work);
        else (wino == 1 ? rn_convb_wino_forward : rn_convb_forward)(yb[t - 1], xb, packed, relu, &sh, work);
        free(work);
        if (t > 1) assert_memory_equal(yb[t - 1], yb[0], ybl * sizeof(float));
    }
    const int cb = rn_blk_lanes(), kbn = (k + cb - 1) / cb;
    for (size_t i = 0; i < ybl; i++) { /* lanes past k */
        const int lane = (int)(i % (size_t)cb), block = (int)(i / ((size_t)sh.oh * sh.ow * cb)) % kbn;
        if (block * cb + lane >= k && yb[0][i] != 0.0f) fail_msg("padding lane %zu is %g", i, yb[0][i]);
    }
    rn_blk_to_nchw(got, yb[0], n, k, sh.oh, sh.ow);
    /* measured worst of (error - 1e-6) / mag, all three SIMD builds: 9.6e-8 for Winograd
     * F(2x2, 3x3); F(4x4, 3x3), whose transforms scale a 6x6 tile's values by up to 100 and add
     * 36 products into each output, 3.1e-6, and 1.0e-5 with one input channel, where an
     * output's own 9 products can be small beside the rest of its tile's */
    const double tol = wino == 1 && rn_convb_wino_tile(&sh) == 4 ? 3e-5 : 1e-5;
    for (int i = 0; i < n; i++)
        for (int kk = 0; kk < k; kk++)
            for (int oy = 0; oy < sh.oh; oy++)
                for (int ox = 0; ox < sh.ow; ox++) {
                    double sum = 0.0, mag = 0.0;
                    for (int ch = 0; ch < c; ch++)
                        for (int ky = 0; ky < r; ky++)
                            for (int kx = 0; kx < r; kx++) {
                                const int iy = oy * stride + ky - pad, ix = ox * stride + kx - pad;
                                if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                                const double t = (double)x[(((size_t)i * c + ch) * h + iy) * w + ix] *
                                                 wt[(((size_t)kk * c + ch) * r + ky) * r + kx] * scale[kk];
                                sum += t;
                                mag += fabs(t);
                            }
                    sum += b[kk];
                    if (relu && sum < 0.0) sum = 0.0;
                    const float g = got[(((size_t)i * k + kk) * sh.oh + oy) * sh.ow + ox];
                    if (!(fabs(g - sum) <= tol * (mag + fabs(b[kk])) + 1e-6))
                        fail_msg("%dx%d/%d %d->%d: image %d channel %d (%d, %d): %.8g, expected %.8g",
                                 r, r, stride, c, k, i, kk, oy, ox, g, sum);
                }
    for (int t = 0; t < 3; t++) free(yb[t]);
    free(x), free(wt), free(b), free(scale), free(xb), free(got), free(packed);
}

static void convb_case(int n, int c, int h, int w, int k, int r, int stride, int pad, int relu)
{
    convb_case_as(n, c, h, w, k, r, stride, pad, relu, 0);
}

static void test_convb_forward(void **state)
{
    (void)state;
    convb_case(2, 16, 9, 11, 32, 3, 1, 1, 0);  /* 3x3/1, full blocks, two output blocks */
    convb_case(3, 20, 8, 30, 24, 3, 1, 1, 1);  /* partial blocks, rows longer than the kernel's */
    convb_case(2, 16, 9, 9, 48, 3, 2, 1, 1);   /* 3x3/2, odd map, an odd number of output blocks */
    convb_case(2, 40, 7, 7, 16, 1, 1, 0, 0);   /* 1x1 */
    convb_case(3, 24, 14, 14, 80, 1, 1, 0, 1); /* 1x1 as one row: segments, a partial one */
    convb_case(2, 24, 10, 10, 40, 1, 2, 0, 1); /* 1x1/2 projection */
    convb_case(1, 3, 23, 21, 16, 7, 2, 3, 1);  /* the ImageNet stem: 3 channels, 7x7/2 */
    convb_case(4, 1, 28, 28, 16, 3, 1, 1, 1);  /* one input channel (Fashion-MNIST) */
    /* 17 images: an image a task at 1 and 2 threads, groups of 3 images at 3 (convb.c) */
    convb_case(17, 20, 9, 9, 48, 3, 2, 1, 1);
    convb_case(17, 24, 6, 6, 40, 1, 2, 0, 0);
    convb_case_as(17, 3, 12, 12, 16, 3, 1, 1, 0, 2);
    /* a network's first convolution, straight from the planar images */
    convb_case_as(1, 3, 23, 21, 16, 7, 2, 3, 1, 2);
    convb_case_as(2, 3, 16, 16, 24, 3, 1, 1, 0, 2);
    convb_case_as(3, 1, 28, 28, 32, 3, 2, 1, 1, 2);
    convb_case_as(2, 3, 8, 8, 16, 1, 1, 0, 1, 2);
    convb_case_as(2, 20, 9, 9, 16, 3, 1, 1, 1, 2); /* more channels than a block */
    convb_case_as(2, 20, 6, 6, 24, 1, 2, 0, 0, 2);
    /* rows of 2 to 6 pixels: a call takes as many rows as the microkernel holds (convb.c) */
    convb_case(17, 20, 7, 7, 40, 3, 2, 1, 1); /* 4x4 out: rows by 2, 16 or 8 lanes */
    convb_case(2, 16, 6, 6, 32, 3, 1, 1, 0);  /* rows of 6 in bands of 4 rows */
    convb_case(3, 16, 3, 3, 16, 3, 1, 1, 1);  /* 3 rows of 3 */
    convb_case(2, 16, 2, 5, 32, 3, 1, 1, 0);  /* 2 rows of 5 */
    convb_case(17, 16, 5, 2, 48, 3, 1, 1, 0); /* 5 rows of 2: an odd last call */
    /* weights outweighing the output: wide calls (14 pixels with 16 lanes, convb.c) */
    convb_case(1, 64, 14, 14, 64, 3, 2, 1, 1); /* rows of 7 by two */
    convb_case(1, 32, 28, 28, 32, 3, 2, 1, 0); /* a row of 14 a call */
    convb_case(1, 64, 7, 7, 48, 1, 1, 0, 1);   /* 1x1: 49 pixels in calls of 12 and 13 */
    convb_case(17, 64, 28, 4, 32, 3, 2, 1, 1); /* an image a task: 14 rows of 2 by seven */
    /* strided 1x1: the input gathered, then run as a pointwise convolution (convb.c) */
    convb_case(3, 20, 9, 7, 24, 1, 2, 0, 1);   /* an odd map: the last row and column read */
    convb_case(2, 16, 10, 11, 40, 1, 3, 0, 0); /* stride 3 */
    convb_case(1, 64, 14, 14, 48, 1, 2, 0, 1); /* weights outweighing the output: wide calls */
    /* four output blocks a call where the build has that kernel (AVX-512; convb.c quad_calls):
     * full input blocks, output blocks in fours, maps of 196 pixels and more */
    convb_case(2, 32, 14, 14, 64, 1, 1, 0, 1);  /* 196 pixels in calls of 5 and 6 */
    convb_case(3, 16, 15, 15, 128, 1, 1, 0, 0); /* 225 pixels, eight output blocks */
    convb_case(17, 48, 14, 15, 64, 1, 1, 0, 1); /* one image's segments for a task */
    convb_case(2, 32, 28, 28, 64, 1, 2, 0, 1);  /* strided: 196 gathered pixels */
}

/* rn_convb_backward_weights against double loops: dw and db accumulate onto what they hold,
 * every kernel and stride of the zoo, channel counts that fill no block, an odd number of
 * output blocks (the single last one), the planar input of a network's first convolution;
 * 1, 2 and 3 threads give the same bits. */
enum { WGRAD_BLOCKED, WGRAD_PLANAR_IN, WGRAD_WINOGRAD };

static void convb_wgrad_case(int n, int c, int h, int w, int k, int r, int stride, int pad,
                             int how)
{
    const int planar_in = how == WGRAD_PLANAR_IN;
    rn_conv_shape sh;
    assert_int_equal(rn_conv_shape_init(&sh, n, c, h, w, k, r, r, stride, pad), 0);
    const size_t xl = (size_t)n * c * h * w, dyl = (size_t)n * k * sh.oh * sh.ow;
    const size_t wl = (size_t)k * c * r * r;
    float *x = alloc_f(xl), *dy = alloc_f(dyl), *w0 = alloc_f(wl), *b0 = alloc_f((size_t)k);
    float *xb = alloc_nan(rn_blk_floats(n, c, h, w)), *dyb = alloc_nan(rn_blk_floats(n, k, sh.oh, sh.ow));
    rn_test_fill_normal(x, xl, 51, 1.0f);
    rn_test_fill_normal(dy, dyl, 52, 1.0f);
    rn_test_fill_normal(w0, wl, 53, 0.5f);
    rn_test_fill_normal(b0, (size_t)k, 54, 0.5f);
    rn_blk_from_nchw(xb, x, n, c, h, w);
    rn_blk_from_nchw(dyb, dy, n, k, sh.oh, sh.ow);
    float *dw[3], *db[3];
    for (int t = 1; t <= 3; t++) {
        sh.threads = t;
        dw[t - 1] = alloc_f(wl), db[t - 1] = alloc_f((size_t)k);
        memcpy(dw[t - 1], w0, wl * sizeof(float));
        memcpy(db[t - 1], b0, (size_t)k * sizeof(float));
        if (how == WGRAD_WINOGRAD) {
            float *work = alloc_nan(rn_convb_wino_wgrad_workspace(&sh));
            rn_convb_wino_backward_weights(dw[t - 1], dyb, xb, &sh, work);
            rn_convb_backward_weights(NULL, db[t - 1], dyb, xb, &sh, NULL);
            free(work);
        } else {
            float *work = alloc_nan(rn_convb_backward_weights_workspace(&sh));
            if (planar_in) rn_convb_backward_weights_planar_in(dw[t - 1], db[t - 1], dyb, x, &sh, work);
            else rn_convb_backward_weights(dw[t - 1], db[t - 1], dyb, xb, &sh, work);
            free(work);
        }
        if (t > 1) {
            assert_memory_equal(dw[t - 1], dw[0], wl * sizeof(float));
            assert_memory_equal(db[t - 1], db[0], (size_t)k * sizeof(float));
        }
    }
    for (int kk = 0; kk < k; kk++) {
        double bsum = b0[kk], bmag = fabs(b0[kk]);
        for (int i = 0; i < n; i++)
            for (size_t p = 0; p < (size_t)sh.oh * sh.ow; p++) {
                const double d = dy[((size_t)i * k + kk) * sh.oh * sh.ow + p];
                bsum += d, bmag += fabs(d);
            }
        if (!(fabs(db[0][kk] - bsum) <= 1e-5 * bmag + 1e-6))
            fail_msg("db[%d] = %.8g, expected %.8g", kk, db[0][kk], bsum);
        for (int ch = 0; ch < c; ch++)
            for (int ky = 0; ky < r; ky++)
                for (int kx = 0; kx < r; kx++) {
                    const size_t wi = (((size_t)kk * c + ch) * r + ky) * r + kx;
                    double sum = w0[wi], mag = fabs(w0[wi]);
                    for (int i = 0; i < n; i++)
                        for (int oy = 0; oy < sh.oh; oy++)
                            for (int ox = 0; ox < sh.ow; ox++) {
                                const int iy = oy * stride + ky - pad, ix = ox * stride + kx - pad;
                                if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                                const double t = (double)x[(((size_t)i * c + ch) * h + iy) * w + ix] *
                                                 dy[(((size_t)i * k + kk) * sh.oh + oy) * sh.ow + ox];
                                sum += t, mag += fabs(t);
                            }
                    if (!(fabs(dw[0][wi] - sum) <= 1e-5 * mag + 1e-6))
                        fail_msg("%dx%d/%d %d->%d: dw[%d][%d][%d][%d] = %.8g, expected %.8g", r, r,
                                 stride, c, k, kk, ch, ky, kx, dw[0][wi], sum);
                }
    }
    for (int t = 0; t < 3; t++) free(dw[t]), free(db[t]);
    free(x), free(dy), free(w0), free(b0), free(xb), free(dyb);
}

static void test_convb_backward_weights(void **state)
{
    (void)state;
    convb_wgrad_case(3, 16, 9, 11, 32, 3, 1, 1, WGRAD_BLOCKED);  /* 3x3/1, two output blocks */
    convb_wgrad_case(2, 20, 8, 10, 24, 3, 1, 1, WGRAD_BLOCKED);  /* partial blocks */
    convb_wgrad_case(2, 16, 9, 9, 48, 3, 2, 1, WGRAD_BLOCKED);   /* 3x3/2, odd map, odd number of blocks */
    convb_wgrad_case(2, 40, 7, 7, 16, 1, 1, 0, WGRAD_BLOCKED);   /* 1x1 */
    convb_wgrad_case(2, 24, 10, 10, 40, 1, 2, 0, WGRAD_BLOCKED); /* 1x1/2 projection */
    convb_wgrad_case(1, 3, 23, 21, 16, 7, 2, 3, WGRAD_PLANAR_IN);  /* the ImageNet stem from planar images */
    convb_wgrad_case(4, 1, 28, 28, 16, 3, 1, 1, WGRAD_PLANAR_IN);  /* one channel (Fashion-MNIST) */
    convb_wgrad_case(2, 3, 16, 16, 24, 3, 1, 1, WGRAD_PLANAR_IN);  /* CIFAR's first convolution */
    convb_wgrad_case(2, 20, 6, 6, 24, 3, 2, 1, WGRAD_PLANAR_IN);   /* planar input wider than a block */
    /* the batch in chunks (convb_wgrad.c): bands of rows on large maps, the taps' rectangles
     * clipped at the bands' edges; several images a chunk on small maps, the last chunk short;
     * more slots than a task holds (the stem's 49 taps) */
    convb_wgrad_case(2, 40, 24, 24, 48, 1, 1, 0, WGRAD_BLOCKED);
    convb_wgrad_case(2, 20, 40, 36, 24, 3, 2, 1, WGRAD_BLOCKED);
    convb_wgrad_case(20, 16, 4, 4, 16, 3, 1, 1, WGRAD_BLOCKED);
    convb_wgrad_case(2, 3, 46, 46, 16, 7, 2, 3, WGRAD_PLANAR_IN);
    /* tasks of tiles (convb_wgrad.c, plan_of) on one thread as well: more pairs by slots than
     * a thread's accumulators hold (9 pairs, the last single, by 33 slots, the last half
     * empty), and wide rows whose chunk's x for all the slots would not fit the budget */
    convb_wgrad_case(2, 264, 3, 3, 264, 1, 1, 0, WGRAD_BLOCKED);
    convb_wgrad_case(1, 320, 2, 1000, 48, 1, 1, 0, WGRAD_BLOCKED);
    /* a strided 1x1 convolution with 256 output channels or more runs on its pixels gathered
     * (convb_wgrad.c): an odd map, an input block half filled, a single last output block */
    convb_wgrad_case(3, 24, 9, 11, 264, 1, 2, 0, WGRAD_BLOCKED);
    convb_wgrad_case(2, 32, 8, 8, 256, 1, 2, 0, WGRAD_BLOCKED);
}

/* The input gradient's Winograd weights, packed straight from the forward's (transposed and
 * turned by 180 degrees inside the packing), are those of the explicitly flipped copy; and
 * rn_convb_wino_transposed swaps the channels and the maps. */
static void test_convb_wino_pack_backward_data(void **state)
{
    (void)state;
    rn_conv_shape sh;
    assert_int_equal(rn_conv_shape_init(&sh, 2, 20, 9, 7, 40, 3, 3, 1, 1), 0);
    const rn_conv_shape t = rn_convb_wino_transposed(&sh);
    assert_true(t.c == 40 && t.k == 20 && t.h == sh.oh && t.w == sh.ow && t.oh == 9 && t.ow == 7);
    rn_convb_wino_force_tile(4); /* the larger packing */
    const size_t wl = (size_t)sh.k * sh.c * 9, pl = rn_convb_wino_packed_floats(&t);
    float *w = alloc_f(wl), *flipped = alloc_f(wl), *a = alloc_nan(pl), *b = alloc_nan(pl);
    rn_test_fill_normal(w, wl, 91, 1.0f);
    for (int k = 0; k < sh.k; k++)
        for (int c = 0; c < sh.c; c++)
            for (int tap = 0; tap < 9; tap++)
                flipped[((size_t)c * sh.k + k) * 9 + 8 - tap] = w[((size_t)k * sh.c + c) * 9 + tap];
    for (int m = 2; m <= 4; m += 2) {
        rn_convb_wino_force_tile(m);
        const size_t used = rn_convb_wino_packed_floats(&t);
        assert_true(used <= pl);
        rn_convb_wino_pack_backward_data(a, w, &t);
        rn_convb_wino_pack(b, flipped, NULL, NULL, &t);
        assert_memory_equal(a, b, used * sizeof(float));
    }
    rn_convb_wino_force_tile(0);
    free(w), free(flipped), free(a), free(b);
}

/* The weight gradient by Winograd on blocks against double loops: odd maps (tiles past the
 * edge), partial and odd numbers of blocks, a map of 2x3, and a batch whose ranges (16 with
 * F(2x2, 3x3), 5 with F(4x4, 3x3)) each take several chunks; 1, 2 and 3 threads give the same
 * bits. */
static void test_convb_wino_backward_weights(void **state)
{
    (void)state;
    for (int m = 2; m <= 4; m += 2) { /* F(2x2, 3x3), then F(4x4, 3x3) */
        rn_convb_wino_force_tile(m);
        convb_wgrad_case(3, 16, 9, 11, 32, 3, 1, 1, WGRAD_WINOGRAD);
        convb_wgrad_case(2, 20, 8, 10, 24, 3, 1, 1, WGRAD_WINOGRAD);
        convb_wgrad_case(2, 48, 7, 7, 40, 3, 1, 1, WGRAD_WINOGRAD);
        convb_wgrad_case(5, 16, 2, 3, 16, 3, 1, 1, WGRAD_WINOGRAD);
        convb_wgrad_case(20, 16, 32, 32, 16, 3, 1, 1, WGRAD_WINOGRAD);
    }
    rn_convb_wino_force_tile(0);
    /* F(4x4, 3x3)'s sums of 36 positions stay within the L2 cache up to 64 channels */
    rn_conv_shape sh;
    assert_int_equal(rn_conv_shape_init(&sh, 1, 64, 8, 8, 64, 3, 3, 1, 1), 0);
    assert_int_equal(rn_convb_wino_wgrad_tile(&sh), 4);
    assert_int_equal(rn_conv_shape_init(&sh, 1, 128, 8, 8, 64, 3, 3, 1, 1), 0);
    assert_int_equal(rn_convb_wino_wgrad_tile(&sh), 2);
}

/* rn_convb_backward_data against double loops: stride 1 and 2, 3x3 and 1x1 (whose odd pixels
 * at stride 2 no tap reaches), odd and even maps, channel counts that fill no block, an odd
 * number of input blocks; 1, 2 and 3 threads give the same bits and the lanes past c are
 * zero. */
static void convb_dgrad_case(int n, int c, int h, int w, int k, int r, int stride, int pad)
{
    rn_conv_shape sh;
    assert_int_equal(rn_conv_shape_init(&sh, n, c, h, w, k, r, r, stride, pad), 0);
    const size_t xl = (size_t)n * c * h * w, dyl = (size_t)n * k * sh.oh * sh.ow;
    const size_t wl = (size_t)k * c * r * r, xbl = rn_blk_floats(n, c, h, w);
    float *dy = alloc_f(dyl), *wt = alloc_f(wl), *got = alloc_f(xl);
    float *dyb = alloc_nan(rn_blk_floats(n, k, sh.oh, sh.ow));
    float *packed = alloc_nan(rn_convb_backward_data_packed_floats(&sh));
    rn_test_fill_normal(dy, dyl, 61, 1.0f);
    rn_test_fill_normal(wt, wl, 62, 0.5f);
    rn_blk_from_nchw(dyb, dy, n, k, sh.oh, sh.ow);
    rn_convb_backward_data_pack(packed, wt, &sh);
    float *dx[3];
    for (int t = 1; t <= 3; t++) {
        sh.threads = t;
        float *work = alloc_nan(rn_convb_backward_data_workspace(&sh) + 1);
        dx[t - 1] = alloc_nan(xbl);
        rn_convb_backward_data(dx[t - 1], dyb, packed, &sh, work);
        free(work);
        if (t > 1) assert_memory_equal(dx[t - 1], dx[0], xbl * sizeof(float));
    }
    const int cb = rn_blk_lanes(), cbn = (c + cb - 1) / cb;
    for (size_t i = 0; i < xbl; i++) {
        const int lane = (int)(i % (size_t)cb), block = (int)(i / ((size_t)h * w * cb)) % cbn;
        if (block * cb + lane >= c && dx[0][i] != 0.0f) fail_msg("padding lane %zu is %g", i, dx[0][i]);
    }
    rn_blk_to_nchw(got, dx[0], n, c, h, w);
    for (int i = 0; i < n; i++)
        for (int ch = 0; ch < c; ch++)
            for (int iy = 0; iy < h; iy++)
                for (int ix = 0; ix < w; ix++) {
                    double sum = 0.0, mag = 0.0;
                    for (int kk = 0; kk < k; kk++)
                        for (int ky = 0; ky < r; ky++)
                            for (int kx = 0; kx < r; kx++) {
                                const int ty = iy + pad - ky, tx = ix + pad - kx;
                                if (ty < 0 || tx < 0 || ty % stride || tx % stride) continue;
                                const int oy = ty / stride, ox = tx / stride;
                                if (oy >= sh.oh || ox >= sh.ow) continue;
                                const double t = (double)dy[(((size_t)i * k + kk) * sh.oh + oy) * sh.ow + ox] *
                                                 wt[(((size_t)kk * c + ch) * r + ky) * r + kx];
                                sum += t, mag += fabs(t);
                            }
                    const float g = got[(((size_t)i * c + ch) * h + iy) * w + ix];
                    if (!(fabs(g - sum) <= 1e-5 * mag + 1e-6))
                        fail_msg("%dx%d/%d %d->%d: dx image %d channel %d (%d, %d): %.8g, expected %.8g",
                                 r, r, stride, c, k, i, ch, iy, ix, g, sum);
                }
    for (int t = 0; t < 3; t++) free(dx[t]);
    free(dy), free(wt), free(got), free(dyb), free(packed);
}

static void test_convb_backward_data(void **state)
{
    (void)state;
    convb_dgrad_case(2, 16, 9, 11, 32, 3, 1, 1);  /* 3x3/1 */
    convb_dgrad_case(3, 20, 8, 30, 24, 3, 1, 1);  /* partial blocks, long rows */
    convb_dgrad_case(2, 48, 9, 9, 16, 3, 2, 1);   /* 3x3/2 on an odd map, three input blocks */
    convb_dgrad_case(2, 16, 10, 8, 32, 3, 2, 1);  /* 3x3/2 on an even map */
    convb_dgrad_case(2, 40, 7, 7, 16, 1, 1, 0);   /* 1x1 */
    convb_dgrad_case(2, 24, 10, 10, 40, 1, 2, 0); /* 1x1/2: odd pixels get no gradient */
    convb_dgrad_case(1, 20, 9, 9, 24, 1, 2, 0);   /* 1x1/2 on an odd map */
    convb_dgrad_case(1, 16, 23, 21, 16, 7, 2, 3); /* 7x7/2 */
    /* 17 images: an image a task at 1 and 2 threads, groups of 3 images at 3 (convb_bwd.c) */
    convb_dgrad_case(17, 20, 9, 9, 48, 3, 2, 1);
    convb_dgrad_case(17, 24, 6, 6, 40, 1, 2, 0);
    convb_dgrad_case(17, 16, 8, 8, 16, 3, 1, 1);
    /* phases of 4 and 3 pixels a row, taken several rows a call (convb.c) */
    convb_dgrad_case(17, 40, 7, 7, 48, 3, 2, 1);
    convb_dgrad_case(2, 16, 4, 4, 16, 3, 1, 1);
    /* 1x1/1 through the forward's pointwise path with 16 lanes (convb_bwd.c): four blocks of
     * dx a call (64 and 128 channels, 196 pixels or more), two (a 7x7 map, 40 channels; and
     * dy's last block partial) */
    convb_dgrad_case(2, 64, 14, 14, 32, 1, 1, 0);
    convb_dgrad_case(3, 128, 15, 15, 48, 1, 1, 0);
    convb_dgrad_case(17, 64, 14, 15, 16, 1, 1, 0);
    convb_dgrad_case(2, 40, 7, 7, 64, 1, 1, 0);
    convb_dgrad_case(2, 64, 14, 14, 40, 1, 1, 0);
    /* and 1x1/2 and /3 (dx at the pixels read, scattered between zeros) */
    convb_dgrad_case(2, 64, 28, 28, 32, 1, 2, 0);
    convb_dgrad_case(2, 64, 29, 27, 48, 1, 2, 0);
    convb_dgrad_case(17, 64, 27, 28, 16, 1, 2, 0);
    convb_dgrad_case(2, 24, 10, 11, 40, 1, 3, 0);
}

/* A BN case's inputs from seed on: x (of scale x_scale around x_mean), another tensor of x's
 * shape (dy, a shortcut), gamma and beta, and the two tensors on blocks. */
static void fill_bn_case(float *x, float *other, float *xb, float *otherb, float *gamma,
                         float *beta, int n, int c, int hw, int seed, float x_scale, float x_mean)
{
    const size_t len = (size_t)n * c * hw;
    rn_test_fill_normal(x, len, seed, x_scale);
    for (size_t i = 0; i < len; i++) x[i] += x_mean;
    rn_test_fill_normal(other, len, seed + 1, 1.0f);
    rn_test_fill_normal(gamma, c, seed + 2, 1.0f);
    rn_test_fill_normal(beta, c, seed + 3, 1.0f);
    rn_blk_from_nchw(xb, x, n, c, hw, 1);
    rn_blk_from_nchw(otherb, other, n, c, hw, 1);
}

/* Training-mode BN on blocks against the planar kernels (themselves checked against double
 * loops above): forward with and without the fused ReLU, backward through it or not, training
 * and evaluation; 1, 2 and 3 threads give the same bits. The sums run in another order than
 * the planar ones, so the two agree to rounding; measured worst (all three SIMD builds): y and
 * dx 1.1e-7 of their largest value, mean and variance 5e-7, dgamma and dbeta 7.7e-6 of
 * themselves (float sums of 27,000 terms that mostly cancel). */
static void test_blk_bn_train(void **state)
{
    (void)state;
    const int n = 9, c = 20, hw = 300; /* a partial block; runs of 256 pixels and a tail */
    const size_t len = (size_t)n * c * hw, blen = rn_blk_floats(n, c, hw, 1);
    float *x = alloc_f(len), *dy = alloc_f(len), *gamma = alloc_f(c), *beta = alloc_f(c);
    float *y = alloc_f(len), *dx = alloc_f(len), *mean = alloc_f(c), *var = alloc_f(c);
    float *xb = alloc_f(blen), *dyb = alloc_f(blen), *got = alloc_f(len);
    double *work = malloc(4 * (size_t)c * sizeof(double));
    /* x with a mean well away from 0 */
    fill_bn_case(x, dy, xb, dyb, gamma, beta, n, c, hw, 71, 1.0f, 3.0f);
    for (int relu = 0; relu <= 1; relu++)
        for (int train = 0; train <= 1; train++) {
            float *yb[3], *dxb[3], bmean[3][20], bvar[3][20], dg[3][20], dbeta[3][20], bscale[20];
            float pdg[20] = {0}, pdb[20] = {0};
            (relu ? rn_bn_relu_forward_train : rn_bn_forward_train)(y, mean, var, x, gamma, beta, n,
                                                                    c, hw, 1e-5f);
            if (relu) rn_bn_relu_backward_train(dx, pdg, pdb, dy, y, x, gamma, mean, var, n, c, hw, 1e-5f);
            else if (train) rn_bn_backward_train(dx, pdg, pdb, dy, x, gamma, mean, var, n, c, hw, 1e-5f);
            else rn_bn_backward_eval(dx, pdg, pdb, dy, x, gamma, mean, var, n, c, hw, 1e-5f);
            if (relu && !train) continue; /* covered by the unfused evaluation case */
            for (int t = 1; t <= 3; t++) {
                omp_set_num_threads(t);
                yb[t - 1] = alloc_f(blen), dxb[t - 1] = alloc_f(blen);
                memset(dg[t - 1], 0, sizeof dg[0]), memset(dbeta[t - 1], 0, sizeof dbeta[0]);
                rn_blk_bn_forward_train(yb[t - 1], bmean[t - 1], bvar[t - 1], bscale, xb, gamma, beta,
                                        n, c, hw, 1e-5f, relu, work, NULL);
                /* evaluation backward with the planar batch's statistics, as above */
                rn_blk_bn_backward(dxb[t - 1], dg[t - 1], dbeta[t - 1], dyb, relu ? yb[t - 1] : NULL,
                                   NULL, NULL, xb, gamma, train ? bmean[t - 1] : mean,
                                   train ? bvar[t - 1] : var, n, c, hw, 1e-5f, train, work, NULL);
                if (relu && train) {
                    /* the ReLU's mask from x and the forward's scales: the same bits, the
                     * ReLU's output not read */
                    float *dx2 = alloc_f(blen), dg2[20] = {0}, db2[20] = {0};
                    rn_blk_bn_backward(dx2, dg2, db2, dyb, NULL, bscale, beta, xb, gamma,
                                       bmean[t - 1], bvar[t - 1], n, c, hw, 1e-5f, 1, work, NULL);
                    assert_memory_equal(dx2, dxb[t - 1], blen * sizeof(float));
                    assert_memory_equal(dg2, dg[t - 1], sizeof dg2);
                    assert_memory_equal(db2, dbeta[t - 1], sizeof db2);
                    free(dx2);
                }
                if (t == 1) continue;
                assert_memory_equal(yb[t - 1], yb[0], blen * sizeof(float));
                assert_memory_equal(dxb[t - 1], dxb[0], blen * sizeof(float));
                assert_memory_equal(dg[t - 1], dg[0], sizeof dg[0]);
                assert_memory_equal(bmean[t - 1], bmean[0], sizeof bmean[0]);
            }
            omp_set_num_threads(1);
            for (int ch = 0; ch < c; ch++) {
                assert_close(bmean[0][ch], mean[ch], 1e-6 * 3);
                assert_close(bvar[0][ch], var[ch], 1e-6);
                assert_close(dg[0][ch], pdg[ch], 3e-5 * fabs(pdg[ch]));
                assert_close(dbeta[0][ch], pdb[ch], 3e-5 * fabs(pdb[ch]));
            }
            double ymax = 0, dmax = 0;
            for (size_t i = 0; i < len; i++) ymax = fmax(ymax, fabs(y[i])), dmax = fmax(dmax, fabs(dx[i]));
            rn_blk_to_nchw(got, yb[0], n, c, hw, 1);
            for (size_t i = 0; i < len; i++) assert_close(got[i], y[i], 1e-6 * ymax);
            rn_blk_to_nchw(got, dxb[0], n, c, hw, 1);
            for (size_t i = 0; i < len; i++) assert_close(got[i], dx[i], 1e-6 * dmax);
            for (size_t i = 0; i < blen; i++) /* lanes past c */
                if ((int)(i / ((size_t)hw * 16)) % 2 == 1 && rn_blk_lanes() == 16 && i % 16 >= 4 &&
                    (yb[0][i] != 0.0f || dxb[0][i] != 0.0f))
                    fail_msg("padding lane %zu is %g / %g", i, yb[0][i], dxb[0][i]);
            for (int t = 0; t < 3; t++) free(yb[t]), free(dxb[t]);
        }
    omp_set_num_threads(1);
    free(x), free(dy), free(gamma), free(beta), free(y), free(dx), free(mean), free(var);
    free(xb), free(dyb), free(got), free(work);
}

/* The residual addition in the BN's pass: the bits of the BN's output added to the shortcut
 * by rn_add_scaled_relu (rn_add_scaled without the ReLU), at 1 and 2 threads; statistics as
 * the BN alone. */
static void test_blk_bn_add(void **state)
{
    (void)state;
    const int n = 5, c = 20, hw = 300;
    const size_t blen = rn_blk_floats(n, c, hw, 1), len = (size_t)n * c * hw;
    float *x = alloc_f(len), *s = alloc_f(len), *xb = alloc_f(blen), *sb = alloc_f(blen);
    float *y = alloc_f(blen), *want = alloc_f(blen), *got = alloc_f(blen);
    float gamma[20], beta[20], m0[20], v0[20], m1[20], v1[20];
    double work[4 * 20];
    fill_bn_case(x, s, xb, sb, gamma, beta, n, c, hw, 91, 2.0f, 0.0f);
    for (int relu = 0; relu <= 1; relu++)
        for (int t = 1; t <= 2; t++) {
            omp_set_num_threads(t);
            rn_blk_bn_forward_train(y, m0, v0, NULL, xb, gamma, beta, n, c, hw, 1e-5f, 0, work, NULL);
            (relu ? rn_add_scaled_relu : rn_add_scaled)(want, sb, y, 1.0f, blen);
            memset(got, 0xff, blen * sizeof(float));
            rn_blk_bn_add_forward_train(got, m1, v1, NULL, xb, sb, gamma, beta, n, c, hw, 1e-5f, relu,
                                        work, NULL);
            assert_memory_equal(got, want, blen * sizeof(float));
            assert_memory_equal(m1, m0, sizeof m0);
            assert_memory_equal(v1, v0, sizeof v0);
        }
    omp_set_num_threads(1);
    free(x), free(s), free(xb), free(sb), free(y), free(want), free(got);
}

/* The blocked statistics against double two-pass ones where the mean dwarfs the spread (1000 +
 * 40 c, spread 0.5) and moves between images (7 an image) and along each image (0.003 a pixel,
 * so that the runs of 256 pixels differ). Measured worst (all three SIMD builds): mean 1.5e-7 of
 * itself, variance 2.6e-7; the planar kernels' 3.9e-8 and 4.9e-8. */
static void test_blk_bn_stats(void **state)
{
    (void)state;
    const int n = 9, c = 20, hw = 299; /* runs of 256 and 43 pixels */
    const size_t len = (size_t)n * c * hw, blen = rn_blk_floats(n, c, hw, 1);
    float *x = alloc_f(len), *xb = alloc_f(blen), *y = alloc_f(blen), *py = alloc_f(len);
    float gamma[20], beta[20], mean[20], var[20], pmean[20], pvar[20];
    double work[4 * 20], worst_m = 0, worst_v = 0, worst_pm = 0, worst_pv = 0;
    rn_test_fill_normal(x, len, 17, 0.5f);
    for (int i = 0; i < n; i++)
        for (int ch = 0; ch < c; ch++)
            for (int p = 0; p < hw; p++)
                x[((size_t)i * c + ch) * hw + p] += 1000.0f + 40.0f * ch + 7.0f * i + 0.003f * p;
    for (int ch = 0; ch < c; ch++) gamma[ch] = 1.0f, beta[ch] = 0.0f;
    rn_blk_from_nchw(xb, x, n, c, hw, 1);
    rn_blk_bn_forward_train(y, mean, var, NULL, xb, gamma, beta, n, c, hw, 1e-5f, 0, work, NULL);
    rn_bn_forward_train(py, pmean, pvar, x, gamma, beta, n, c, hw, 1e-5f);
    for (int ch = 0; ch < c; ch++) {
        double s = 0, q = 0;
        for (int i = 0; i < n; i++)
            for (int p = 0; p < hw; p++) s += x[((size_t)i * c + ch) * hw + p];
        const double mu = s / ((double)n * hw);
        for (int i = 0; i < n; i++)
            for (int p = 0; p < hw; p++) {
                const double d = x[((size_t)i * c + ch) * hw + p] - mu;
                q += d * d;
            }
        const double v = q / ((double)n * hw);
        worst_m = fmax(worst_m, fabs(mean[ch] - mu) / mu);
        worst_v = fmax(worst_v, fabs(var[ch] - v) / v);
        worst_pm = fmax(worst_pm, fabs(pmean[ch] - mu) / mu);
        worst_pv = fmax(worst_pv, fabs(pvar[ch] - v) / v);
    }
    print_message("    blocked statistics: mean %.1e, variance %.1e of themselves (planar %.1e, %.1e)\n",
                  worst_m, worst_v, worst_pm, worst_pv);
    assert_true(worst_m <= 5e-7);
    assert_true(worst_v <= 1e-6);
    free(x), free(xb), free(y), free(py);
}

/* The blocked backward passes of max pooling (ties and a NaN: the planar scan's winner),
 * global average pooling and shortcut A give the planar kernels' bits. */
static void test_blk_backward_ops(void **state)
{
    (void)state;
    const int n = 2, c = 20, h = 9, w = 7, oc = 48, cb = rn_blk_lanes();
    const int ph = (h + 2 - 3) / 2 + 1, pw = (w + 2 - 3) / 2 + 1;
    const int sh_ = (h + 1) / 2, sw = (w + 1) / 2;
    const size_t xl = (size_t)n * c * h * w;
    float *x = alloc_f(xl), *dy = alloc_f((size_t)n * oc * h * w), *ref = alloc_f(xl);
    float *xb = alloc_f(rn_blk_floats(n, c, h, w)), *dyb = alloc_f(rn_blk_floats(n, oc, h, w));
    float *dxb = alloc_f(rn_blk_floats(n, c, h, w)), *got = alloc_f(xl);
    rn_test_fill_normal(x, xl, 81, 1.0f);
    for (size_t i = 0; i < xl; i++) x[i] = floorf(x[i] * 2.0f); /* ties */
    x[5] = NAN;
    rn_test_fill_normal(dy, (size_t)n * oc * h * w, 82, 1.0f);
    rn_blk_from_nchw(xb, x, n, c, h, w);
    /* max pooling 3x3/2 pad 1 */
    rn_blk_from_nchw(dyb, dy, n, c, ph, pw);
    rn_maxpool_backward(ref, dy, x, n, c, h, w, 3, 2, 1, ph, pw);
    rn_blk_maxpool_backward(dxb, dyb, xb, n, c, h, w, 3, 2, 1, ph, pw);
    rn_blk_to_nchw(got, dxb, n, c, h, w);
    assert_memory_equal(got, ref, xl * sizeof(float));
    /* global average pooling: dy planar [n, c] */
    rn_gap_backward(ref, dy, n, c, h * w);
    rn_blk_gap_backward(dxb, dy, n, c, h * w);
    rn_blk_to_nchw(got, dxb, n, c, h, w);
    assert_memory_equal(got, ref, xl * sizeof(float));
    /* shortcut A, 20 -> 48 channels at stride 2 */
    rn_blk_from_nchw(dyb, dy, n, oc, sh_, sw);
    rn_shortcut_pad_backward(ref, dy, n, c, h, w, oc, 2);
    rn_blk_shortcut_pad_backward(dxb, dyb, n, c, h, w, oc, 2);
    rn_blk_to_nchw(got, dxb, n, c, h, w);
    assert_memory_equal(got, ref, xl * sizeof(float));
    for (size_t i = 0; i < rn_blk_floats(n, c, h, w); i++) /* lanes past c */
        if ((int)(i / ((size_t)h * w * cb)) % rn_blk_count(c, cb) == rn_blk_count(c, cb) - 1 &&
            (int)(i % cb) >= c % cb && c % cb && dxb[i] != 0.0f)
            fail_msg("padding lane %zu is %g", i, dxb[i]);
    free(x), free(dy), free(ref), free(xb), free(dyb), free(dxb), free(got);
}

/* Winograd on blocks against the same double loops: odd and even maps (partial tiles), channel
 * counts that fill no block, one channel, wide layers whose tiles go in several chunks. */
static void test_convb_wino_forward(void **state)
{
    (void)state;
    for (int m = 2; m <= 4; m += 2) { /* F(2x2, 3x3), then F(4x4, 3x3) */
        rn_convb_wino_force_tile(m);
        convb_case_as(2, 16, 8, 8, 32, 3, 1, 1, 0, 1);
        convb_case_as(3, 20, 9, 11, 24, 3, 1, 1, 1, 1);
        convb_case_as(1, 1, 28, 28, 16, 3, 1, 1, 1, 1);
        convb_case_as(2, 48, 7, 7, 40, 3, 1, 1, 1, 1);
        convb_case_as(1, 16, 30, 30, 16, 3, 1, 1, 0, 1);
        convb_case_as(2, 24, 2, 3, 16, 3, 1, 1, 0, 1);     /* a map smaller than a tile */
        /* several chunks of tiles, a partial one */
        convb_case_as(1, 256, 13, 14, 192, 3, 1, 1, 1, 1);
    }
    /* weights outweighing the transforms: wide calls, 28 tiles by 14 (one thread) and 14 (two) */
    rn_convb_wino_force_tile(2);
    convb_case_as(1, 128, 14, 8, 64, 3, 1, 1, 1, 1);
    rn_convb_wino_force_tile(0);
    rn_convb_wino_force_tile(0);
    /* the choice: the tile with fewer positions over the map, F(2x2, 3x3) on a tie */
    const int maps[][3] = {{2, 2, 2}, {3, 3, 4}, {4, 4, 4},   {5, 5, 2},
                           {6, 6, 2}, {7, 7, 4}, {8, 8, 4}, {32, 32, 4}};
    for (size_t i = 0; i < sizeof maps / sizeof maps[0]; i++) {
        rn_conv_shape sh;
        assert_int_equal(rn_conv_shape_init(&sh, 1, 16, maps[i][0], maps[i][1], 16, 3, 3, 1, 1), 0);
        assert_int_equal(rn_convb_wino_tile(&sh), maps[i][2]);
        /* its ReLUs: 2x2 tiles only, or the direct kernel (16 channels on some CPUs) */
        const rn_conv_shape fs = rn_convb_wino_training_forward(&sh);
        assert_true(!rn_convb_wino_pays(&fs) || rn_convb_wino_tile(&fs) == 2);
        rn_conv_shape wide;
        assert_int_equal(rn_conv_shape_init(&wide, 1, 32, maps[i][0], maps[i][1], 32, 3, 3, 1, 1), 0);
        const rn_conv_shape fw = rn_convb_wino_training_forward(&wide);
        assert_int_equal(rn_convb_wino_tile(&fw), 2);
        assert_int_equal(rn_convb_wino_pays(&fw), rn_convb_wino_pays(&wide));
    }
}

/* rn_convb_forward_add and rn_convb_wino_forward_add: the same bits as the forward then
 * rn_add_scaled_relu with the shortcut (a frozen residual block's last convolution), on 1 and
 * 2 threads: the direct kernel (rows, several rows a call, a 1x1 map as one row, stride 2, a
 * strided 1x1 on its gathered input) and Winograd with either tile; and with the output written
 * over the shortcut. */
static void convb_add_case(int n, int c, int hw, int k, int r, int stride, int wino)
{
    rn_conv_shape sh;
    assert_int_equal(rn_conv_shape_init(&sh, n, c, hw, hw, k, r, r, stride, r / 2), 0);
    if (wino) rn_convb_wino_force_tile(wino);
    const size_t xl = (size_t)n * c * hw * hw, yl = (size_t)n * k * sh.oh * sh.ow;
    const size_t ybl = rn_blk_floats(n, k, sh.oh, sh.ow);
    float *x = alloc_f(xl), *wt = alloc_f((size_t)k * c * r * r), *b = alloc_f((size_t)k);
    float *s = alloc_f(yl), *xb = alloc_nan(rn_blk_floats(n, c, hw, hw)), *sb = alloc_nan(ybl);
    float *packed = alloc_nan(wino ? rn_convb_wino_packed_floats(&sh) : rn_convb_packed_floats(&sh));
    rn_test_fill_normal(x, xl, 71, 1.0f);
    rn_test_fill_normal(wt, (size_t)k * c * r * r, 72, 0.3f);
    rn_test_fill_normal(b, (size_t)k, 73, 0.5f);
    rn_test_fill_normal(s, yl, 74, 1.0f);
    rn_blk_from_nchw(xb, x, n, c, hw, hw);
    rn_blk_from_nchw(sb, s, n, k, sh.oh, sh.ow);
    (wino ? rn_convb_wino_pack : rn_convb_pack)(packed, wt, NULL, b, &sh);
    float *ref = alloc_nan(ybl), *got = alloc_nan(ybl);
    for (int t = 1; t <= 2; t++) {
        sh.threads = t;
        float *work = alloc_nan((wino ? rn_convb_wino_workspace(&sh) : rn_convb_workspace(&sh)) + 1);
        (wino ? rn_convb_wino_forward : rn_convb_forward)(ref, xb, packed, 0, &sh, work);
        rn_add_scaled_relu(ref, sb, ref, 1.0f, ybl);
        (wino ? rn_convb_wino_forward_add : rn_convb_forward_add)(got, xb, sb, packed, 1, &sh, work);
        assert_memory_equal(got, ref, ybl * sizeof(float));
        /* in place: the output written over the shortcut (a frozen identity block) */
        memcpy(got, sb, ybl * sizeof(float));
        (wino ? rn_convb_wino_forward_add : rn_convb_forward_add)(got, xb, got, packed, 1, &sh, work);
        assert_memory_equal(got, ref, ybl * sizeof(float));
        free(work);
    }
    rn_convb_wino_force_tile(0);
    free(x), free(wt), free(b), free(s), free(xb), free(sb), free(packed), free(ref), free(got);
}

static void test_convb_forward_add(void **state)
{
    (void)state;
    convb_add_case(17, 20, 9, 40, 3, 1, 0); /* an image a task, rows of 9 */
    convb_add_case(2, 16, 4, 32, 3, 1, 0);  /* groups of images, 2 rows of 4 a call */
    convb_add_case(2, 24, 9, 48, 3, 2, 0);  /* stride 2 */
    convb_add_case(2, 40, 7, 24, 1, 1, 0);  /* 1x1: the map as one row */
    convb_add_case(2, 24, 9, 40, 1, 2, 0);  /* 1x1/2: gathered, a group of images */
    convb_add_case(17, 24, 8, 40, 1, 2, 0); /* an image a task */
    convb_add_case(2, 32, 14, 64, 1, 1, 0);  /* 1x1 in calls of four output blocks */
    convb_add_case(3, 16, 9, 32, 3, 1, 2);  /* Winograd F(2x2, 3x3) */
    convb_add_case(3, 16, 9, 32, 3, 1, 4);  /* F(4x4, 3x3) */
}

/* The tile a frozen network's forward takes (rn_convb_wino_inference_tile): Winograd's
 * transformed weights larger than the L2 cache only where an image has 32 tiles of them, with
 * 16 lanes; with 8, the tile the shape chooses wherever Winograd pays. */
static void inference_tile_case(int c, int hw, int expected)
{
    rn_conv_shape sh;
    assert_int_equal(rn_conv_shape_init(&sh, 1, c, hw, hw, c, 3, 3, 1, 1), 0);
    if (rn_blk_lanes() != 16) expected = rn_convb_wino_pays(&sh) ? rn_convb_wino_tile(&sh) : 0;
    if (rn_convb_wino_inference_tile(&sh) != expected)
        fail_msg("%d channels on %dx%d: tile %d, expected %d", c, hw, hw,
                 rn_convb_wino_inference_tile(&sh), expected);
}

static void test_convb_wino_inference_tile(void **state)
{
    (void)state;
    inference_tile_case(64, 8, 4);   /* resnet20's last stage: 590 KB of 4x4 weights */
    inference_tile_case(64, 56, 4);  /* resnet50's first stage: 196 tiles of 4x4 an image */
    inference_tile_case(128, 28, 4); /* 2.4 MB, 49 tiles */
    inference_tile_case(256, 14, 2); /* 9.4 MB for 16 tiles of 4x4; 4.2 MB for 49 of 2x2 */
    inference_tile_case(512, 7, 2);  /* 4 tiles of 4x4 (37.7 MB), 16 of 2x2 (16.8 MB) */
    inference_tile_case(512, 5, 0);  /* 9 tiles of 2x2: the direct kernel */
    inference_tile_case(512, 1, 0);  /* no Winograd on 1x1 maps */
}

/* Where the transformed weights outweigh the transforms of a small batch's tiles, a thread
 * takes its share of them as one chunk, more than the chunk of a larger batch: a workspace
 * sized for the larger batch (as a network reserves it) must hold the smaller one's chunks.
 * 128 channels on 14x14 with 2x2 tiles: 1 MB of weights, 16 KB of transforms a tile, 49 tiles
 * an image; one image one chunk of 49 (of 25 on 2 threads), two images chunks of 32. The output
 * the same bits with either workspace, the floats past the larger one's end untouched. */
static void test_convb_wino_small_batch_chunks(void **state)
{
    (void)state;
    const int c = 128, hw = 14, guard = 64;
    rn_convb_wino_force_tile(2);
    rn_conv_shape one, two;
    assert_int_equal(rn_conv_shape_init(&one, 1, c, hw, hw, c, 3, 3, 1, 1), 0);
    assert_int_equal(rn_conv_shape_init(&two, 2, c, hw, hw, c, 3, 3, 1, 1), 0);
    const size_t xl = (size_t)c * hw * hw, ybl = rn_blk_floats(1, c, hw, hw);
    float *x = alloc_f(xl), *wt = alloc_f((size_t)c * c * 9), *xb = alloc_nan(ybl);
    float *packed = alloc_nan(rn_convb_wino_packed_floats(&one));
    rn_test_fill_normal(x, xl, 91, 1.0f);
    rn_test_fill_normal(wt, (size_t)c * c * 9, 92, 0.05f);
    rn_blk_from_nchw(xb, x, 1, c, hw, hw);
    rn_convb_wino_pack(packed, wt, NULL, NULL, &one);
    float *ref = alloc_nan(ybl), *got = alloc_nan(ybl);
    for (int t = 1; t <= 2; t++) {
        one.threads = two.threads = t;
        const size_t w1 = rn_convb_wino_workspace(&one), w2 = rn_convb_wino_workspace(&two);
        assert_true(w2 >= w1);
        float *work1 = alloc_nan(w1), *work2 = alloc_f(w2 + guard);
        for (int i = 0; i < guard; i++) work2[w2 + i] = 1234.5f;
        rn_convb_wino_forward(ref, xb, packed, 1, &one, work1);
        rn_convb_wino_forward(got, xb, packed, 1, &one, work2);
        assert_memory_equal(got, ref, ybl * sizeof(float));
        for (int i = 0; i < guard; i++) assert_true(work2[w2 + i] == 1234.5f);
        free(work1), free(work2);
    }
    rn_convb_wino_force_tile(0);
    free(x), free(wt), free(xb), free(packed), free(ref), free(got);
}

/* A batch of few tiles whose weights outweigh their transforms is shared out by output blocks
 * on more than one thread (128->80 channels on 5x5 maps: 9 tiles of 2x2 at batch 1; 18 at
 * batch 2 are shared out by tiles): the same bits as one thread, with a shortcut added and
 * without, the last output block alone in its pair, and nothing written past the workspace. */
static void test_convb_wino_by_blocks(void **state)
{
    (void)state;
    const int c = 128, k = 80, hw = 5, guard = 64;
    rn_convb_wino_force_tile(2);
    for (int n = 1; n <= 2; n++) {
        rn_conv_shape sh;
        assert_int_equal(rn_conv_shape_init(&sh, n, c, hw, hw, k, 3, 3, 1, 1), 0);
        const size_t xl = (size_t)n * c * hw * hw, xbl = rn_blk_floats(n, c, hw, hw);
        const size_t ybl = rn_blk_floats(n, k, hw, hw);
        float *x = alloc_f(xl), *wt = alloc_f((size_t)k * c * 9), *bias = alloc_f((size_t)k);
        float *xb = alloc_nan(xbl), *sum = alloc_f(ybl);
        float *packed = alloc_nan(rn_convb_wino_packed_floats(&sh));
        rn_test_fill_normal(x, xl, 93, 1.0f);
        rn_test_fill_normal(wt, (size_t)k * c * 9, 94, 0.05f);
        rn_test_fill_normal(bias, (size_t)k, 95, 0.1f);
        rn_test_fill_normal(sum, ybl, 96, 1.0f);
        rn_blk_from_nchw(xb, x, n, c, hw, hw);
        rn_convb_wino_pack(packed, wt, NULL, bias, &sh);
        float *ref = alloc_nan(ybl), *ref_add = alloc_nan(ybl);
        float *got = alloc_nan(ybl), *got_add = alloc_nan(ybl);
        for (int t = 1; t <= 3; t++) {
            sh.threads = t;
            const size_t ws = rn_convb_wino_workspace(&sh);
            float *work = alloc_f(ws + guard);
            for (int i = 0; i < guard; i++) work[ws + i] = 1234.5f;
            float *y = t == 1 ? ref : got, *y_add = t == 1 ? ref_add : got_add;
            rn_convb_wino_forward(y, xb, packed, 1, &sh, work);
            rn_convb_wino_forward_add(y_add, xb, sum, packed, 0, &sh, work);
            if (t > 1) {
                assert_memory_equal(got, ref, ybl * sizeof(float));
                assert_memory_equal(got_add, ref_add, ybl * sizeof(float));
            }
            for (int i = 0; i < guard; i++) assert_true(work[ws + i] == 1234.5f);
            free(work);
        }
        free(x), free(wt), free(bias), free(xb), free(sum), free(packed);
        free(ref), free(ref_add), free(got), free(got_add);
    }
    rn_convb_wino_force_tile(0);
}

/* The blocked layout's other operations against the planar kernels, through the conversions:
 * channel counts that fill no block, odd maps; lanes past the channels zero. */
static void assert_blk_equal(const char *what, const float *yb, const float *ref, int n, int c,
                             int h, int w, double tol)
{
    const size_t len = (size_t)n * c * h * w, blen = rn_blk_floats(n, c, h, w);
    float *back = alloc_f(len), *again = alloc_f(blen);
    rn_blk_to_nchw(back, yb, n, c, h, w);
    if (tol == 0.0) assert_memory_equal(back, ref, len * sizeof(float));
    else assert_rel(what, back, ref, len, tol);
    rn_blk_from_nchw(again, back, n, c, h, w); /* padding lanes: zero, as the conversion writes them */
    assert_memory_equal(again, yb, blen * sizeof(float));
    free(back), free(again);
}

static void test_blk_ops(void **state)
{
    (void)state;
    const int n = 3, c = 20, h = 9, w = 7, oc = 40;
    const size_t len = (size_t)n * c * h * w, blen = rn_blk_floats(n, c, h, w);
    float *x = alloc_f(len), *xb = alloc_nan(blen), *ref = alloc_f((size_t)n * oc * h * w);
    float *yb = alloc_nan(rn_blk_floats(n, oc, h, w));
    rn_test_fill_normal(x, len, 51, 1.0f);
    rn_blk_from_nchw(xb, x, n, c, h, w);
    float g[20], b[20], m[20], v[20];
    rn_test_fill_uniform(g, 20, 52, 0.5f, 1.5f);
    rn_test_fill_normal(b, 20, 53, 0.3f);
    rn_test_fill_normal(m, 20, 54, 0.3f);
    rn_test_fill_uniform(v, 20, 55, 0.5f, 2.0f);
    for (int relu = 0; relu < 2; relu++) {
        (relu ? rn_bn_relu_forward_eval : rn_bn_forward_eval)(ref, x, g, b, m, v, n, c, h * w, 1e-5f);
        rn_blk_bn_eval(yb, xb, g, b, m, v, 1e-5f, relu, n, c, h * w);
        assert_blk_equal("blocked bn", yb, ref, n, c, h, w, 1e-6);
    }
    /* max pooling as the planar scan, to the bit: NaNs, ties of 0 and -0 (the first wins), a
     * channel all below zero (the padding never wins); the stem's 3/2/1 and other windows */
    for (size_t i = 0; i < len; i += 37) x[i] = NAN;
    for (size_t i = 5; i < len; i += 11) x[i] = i % 2 ? -0.0f : 0.0f;
    for (size_t i = 0; i < (size_t)h * w; i++) x[(size_t)3 * h * w + i] = -1.0f - (float)(i % 5);
    rn_blk_from_nchw(xb, x, n, c, h, w);
    static const int windows[][3] = {{3, 2, 1}, {3, 1, 1}, {2, 2, 0}, {3, 3, 2}};
    for (int q = 0; q < 4; q++) {
        const int k = windows[q][0], st = windows[q][1], pd = windows[q][2];
        const int oh = (h + 2 * pd - k) / st + 1, ow = (w + 2 * pd - k) / st + 1;
        rn_maxpool_forward(ref, x, n, c, h, w, k, st, pd, oh, ow);
        rn_blk_maxpool(yb, xb, n, c, h, w, k, st, pd, oh, ow);
        assert_blk_equal("blocked maxpool", yb, ref, n, c, oh, ow, 0.0);
    }
    rn_test_fill_normal(x, len, 51, 1.0f);
    rn_blk_from_nchw(xb, x, n, c, h, w);
    float pooled[3 * 20], pooled_b[3 * 20];
    rn_gap_forward(pooled, x, n, c, h * w);
    rn_blk_gap(pooled_b, xb, n, c, h * w);
    assert_memory_equal(pooled_b, pooled, sizeof pooled);
    for (int stride = 1; stride <= 2; stride++) {
        const int sh = (h + stride - 1) / stride, sw = (w + stride - 1) / stride;
        rn_shortcut_pad_forward(ref, x, n, c, h, w, oc, stride);
        rn_blk_shortcut_pad(yb, xb, n, c, h, w, oc, stride);
        assert_blk_equal("blocked shortcut A", yb, ref, n, oc, sh, sw, 0.0);
    }
    free(x), free(xb), free(ref), free(yb);
}

/* ---- batch normalization ------------------------------------------------------------- */

typedef struct {
    float *x, *gamma, *beta, *y, *mean, *var, *rm, *rv, *r;
    int n, c, hw;
    float eps;
    int train;
} bn_ctx;

static double bn_loss(void *p)
{
    bn_ctx *b = p;
    if (b->train)
        rn_bn_forward_train(b->y, b->mean, b->var, b->x, b->gamma, b->beta, b->n, b->c, b->hw,
                            b->eps);
    else
        rn_bn_forward_eval(b->y, b->x, b->gamma, b->beta, b->rm, b->rv, b->n, b->c, b->hw,
                           b->eps);
    return dot_d(b->r, b->y, (size_t)b->n * b->c * b->hw);
}

static void bn_setup(bn_ctx *b, int n, int c, int hw, int train)
{
    memset(b, 0, sizeof *b);
    b->n = n;
    b->c = c;
    b->hw = hw;
    b->eps = 1e-5f;
    b->train = train;
    const size_t len = (size_t)n * c * hw;
    b->x = alloc_f(len);
    b->y = alloc_f(len);
    b->r = alloc_f(len);
    b->gamma = alloc_f((size_t)c);
    b->beta = alloc_f((size_t)c);
    b->mean = alloc_f((size_t)c);
    b->var = alloc_f((size_t)c);
    b->rm = alloc_f((size_t)c);
    b->rv = alloc_f((size_t)c);
    /* per-channel offsets and scales, so that statistics differ between channels */
    rn_test_fill_normal(b->x, len, 21, 1.0f);
    for (int i = 0; i < n; i++)
        for (int ch = 0; ch < c; ch++)
            for (int j = 0; j < hw; j++) {
                float *v = &b->x[((size_t)i * c + ch) * hw + j];
                *v = *v * (0.5f + 0.5f * ch) + (float)ch - 1.0f;
            }
    rn_test_fill_uniform(b->gamma, (size_t)c, 22, 0.5f, 1.5f);
    rn_test_fill_normal(b->beta, (size_t)c, 23, 0.5f);
    rn_test_fill_normal(b->rm, (size_t)c, 24, 1.0f);
    rn_test_fill_uniform(b->rv, (size_t)c, 25, 0.5f, 2.0f);
    rn_test_fill_normal(b->r, len, 26, 1.0f);
}

static void bn_free(bn_ctx *b)
{
    free(b->x);
    free(b->y);
    free(b->r);
    free(b->gamma);
    free(b->beta);
    free(b->mean);
    free(b->var);
    free(b->rm);
    free(b->rv);
}

static void test_bn_forward_train_values(void **state)
{
    (void)state;
    bn_ctx b;
    bn_setup(&b, 3, 4, 35, 1);
    /* channel 3 sits far from zero: a one-pass E[x^2]-E[x]^2 in float would lose it */
    for (int i = 0; i < b.n; i++)
        for (int j = 0; j < b.hw; j++) b.x[((size_t)i * b.c + 3) * b.hw + j] += 1000.0f;
    rn_bn_forward_train(b.y, b.mean, b.var, b.x, b.gamma, b.beta, b.n, b.c, b.hw, b.eps);
    const double m = (double)b.n * b.hw;
    for (int ch = 0; ch < b.c; ch++) {
        double s = 0.0, ss = 0.0;
        for (int i = 0; i < b.n; i++)
            for (int j = 0; j < b.hw; j++) s += b.x[((size_t)i * b.c + ch) * b.hw + j];
        const double mu = s / m;
        for (int i = 0; i < b.n; i++)
            for (int j = 0; j < b.hw; j++) {
                const double d = b.x[((size_t)i * b.c + ch) * b.hw + j] - mu;
                ss += d * d;
            }
        const double var = ss / m; /* biased */
        assert_close(b.mean[ch], mu, 1e-6 * (1.0 + fabs(mu)));
        assert_close(b.var[ch], var, 1e-6 * var);
        const double invstd = 1.0 / sqrt(var + b.eps);
        for (int i = 0; i < b.n; i++)
            for (int j = 0; j < b.hw; j++) {
                const size_t at = ((size_t)i * b.c + ch) * b.hw + j;
                const double want = b.gamma[ch] * (b.x[at] - mu) * invstd + b.beta[ch];
                /* float x - float mean costs ~ulp(1000) / std on the offset channel */
                assert_close(b.y[at], want, ch == 3 ? 2e-4 : 2e-6);
            }
    }
    bn_free(&b);
}

static void test_bn_forward_eval_values(void **state)
{
    (void)state;
    bn_ctx b;
    bn_setup(&b, 2, 3, 10, 0);
    rn_bn_forward_eval(b.y, b.x, b.gamma, b.beta, b.rm, b.rv, b.n, b.c, b.hw, b.eps);
    for (int i = 0; i < b.n; i++)
        for (int ch = 0; ch < b.c; ch++)
            for (int j = 0; j < b.hw; j++) {
                const size_t at = ((size_t)i * b.c + ch) * b.hw + j;
                const double want =
                    b.gamma[ch] * (b.x[at] - b.rm[ch]) / sqrt(b.rv[ch] + (double)b.eps) +
                    b.beta[ch];
                assert_close(b.y[at], want, 2e-6 * (1.0 + fabs(want)));
            }
    bn_free(&b);
}

static void test_bn_update_running(void **state)
{
    (void)state;
    float rm[2] = {0.0f, 1.0f}, rv[2] = {1.0f, 2.0f};
    const float mean[2] = {1.0f, 2.0f}, var[2] = {4.0f, 9.0f};
    rn_bn_update_running(rm, rv, mean, var, 2, 5, 0.1f);
    assert_close(rm[0], 0.1, 1e-7);
    assert_close(rm[1], 0.9 * 1.0 + 0.1 * 2.0, 1e-6);
    assert_close(rv[0], 0.9 * 1.0 + 0.1 * 4.0 * 5.0 / 4.0, 1e-6); /* unbiased: * 5/4 */
    assert_close(rv[1], 0.9 * 2.0 + 0.1 * 9.0 * 5.0 / 4.0, 1e-6);
    /* count == 1: the variance is used as is */
    float rm1[1] = {0.0f}, rv1[1] = {1.0f};
    rn_bn_update_running(rm1, rv1, mean, var, 1, 1, 0.1f);
    assert_close(rm1[0], 0.1, 1e-7);
    assert_close(rv1[0], 0.9 + 0.4, 1e-6);
}

static void bn_backward_case(int train)
{
    bn_ctx b;
    bn_setup(&b, 3, 4, 35, train); /* M = 105, odd hw = 5x7 */
    const size_t len = (size_t)b.n * b.c * b.hw;
    bn_loss(&b); /* fills mean/var in training mode */
    float *dx = alloc_nan(len), *dg = alloc_zero((size_t)b.c), *dbt = alloc_zero((size_t)b.c);
    if (train)
        rn_bn_backward_train(dx, dg, dbt, b.r, b.x, b.gamma, b.mean, b.var, b.n, b.c, b.hw,
                             b.eps);
    else
        rn_bn_backward_eval(dx, dg, dbt, b.r, b.x, b.gamma, b.rm, b.rv, b.n, b.c, b.hw, b.eps);
    check_fd(train ? "bn train dx" : "bn eval dx", bn_loss, &b, b.x, dx, len,
             EPS_FLOAT, 201);
    check_fd(train ? "bn train dgamma" : "bn eval dgamma", bn_loss, &b, b.gamma, dg,
             (size_t)b.c, EPS_FLOAT, 202);
    check_fd(train ? "bn train dbeta" : "bn eval dbeta", bn_loss, &b, b.beta, dbt, (size_t)b.c,
             EPS_FLOAT, 203);

    /* conventions: dx overwritten, dgamma/dbeta accumulate; dx may be NULL */
    bn_loss(&b);
    float *dx2 = alloc_f(len), *dg2 = alloc_f((size_t)b.c), *dbt2 = alloc_f((size_t)b.c);
    for (size_t i = 0; i < len; i++) dx2[i] = -7.0f;
    memcpy(dg2, dg, sizeof(float) * (size_t)b.c);
    memcpy(dbt2, dbt, sizeof(float) * (size_t)b.c);
    if (train) {
        rn_bn_backward_train(dx2, dg2, dbt2, b.r, b.x, b.gamma, b.mean, b.var, b.n, b.c, b.hw,
                             b.eps);
        rn_bn_backward_train(NULL, dg2, dbt2, b.r, b.x, b.gamma, b.mean, b.var, b.n, b.c, b.hw,
                             b.eps);
    } else {
        rn_bn_backward_eval(dx2, dg2, dbt2, b.r, b.x, b.gamma, b.rm, b.rv, b.n, b.c, b.hw,
                            b.eps);
        rn_bn_backward_eval(NULL, dg2, dbt2, b.r, b.x, b.gamma, b.rm, b.rv, b.n, b.c, b.hw,
                            b.eps);
    }
    assert_rel("bn dx overwritten", dx2, dx, len, 1e-7);
    for (int i = 0; i < b.c; i++) {
        dg[i] *= 3.0f;
        dbt[i] *= 3.0f;
    }
    assert_rel("bn dgamma accumulates", dg2, dg, (size_t)b.c, 1e-6);
    assert_rel("bn dbeta accumulates", dbt2, dbt, (size_t)b.c, 1e-6);
    if (train) {
        /* batch-statistics backward: per channel, dx sums to 0 and is orthogonal to xhat */
        for (int ch = 0; ch < b.c; ch++) {
            double s = 0.0, sx = 0.0, scale = 0.0;
            for (int i = 0; i < b.n; i++)
                for (int j = 0; j < b.hw; j++) {
                    const size_t at = ((size_t)i * b.c + ch) * b.hw + j;
                    s += dx[at];
                    sx += dx[at] * (b.x[at] - b.mean[ch]);
                    scale += fabs(dx[at]) * (1.0 + fabs(b.x[at] - b.mean[ch]));
                }
            assert_true(fabs(s) <= 1e-5 * scale);
            assert_true(fabs(sx) <= 1e-5 * scale);
        }
    }
    free(dx);
    free(dg);
    free(dbt);
    free(dx2);
    free(dg2);
    free(dbt2);
    bn_free(&b);
}

static void test_bn_backward_train(void **state)
{
    (void)state;
    bn_backward_case(1);
}

static void test_bn_backward_eval(void **state)
{
    (void)state;
    bn_backward_case(0);
}

/* ---- elementwise --------------------------------------------------------------------- */

typedef struct {
    float *x, *y, *r;
    size_t len;
    int sigmoid;
} act_ctx;

static double act_loss(void *p)
{
    act_ctx *a = p;
    if (a->sigmoid)
        rn_sigmoid_forward(a->y, a->x, a->len);
    else
        rn_relu_forward(a->y, a->x, a->len);
    return dot_d(a->r, a->y, a->len);
}

static void test_relu(void **state)
{
    (void)state;
    const size_t len = 2 * 3 * 5 * 7;
    act_ctx a = {alloc_f(len), alloc_f(len), alloc_f(len), len, 0};
    /* |x| in [0.05, 1.05): the eps = 1e-2 steps never cross the kink at 0 */
    rn_test_fill_uniform(a.x, len, 31, 0.05f, 1.05f);
    float *sign = alloc_f(len);
    rn_test_fill_uniform(sign, len, 32, -1.0f, 1.0f);
    for (size_t i = 0; i < len; i++)
        if (sign[i] < 0.0f) a.x[i] = -a.x[i];
    rn_test_fill_normal(a.r, len, 33, 1.0f);
    act_loss(&a);
    for (size_t i = 0; i < len; i++) assert_true(a.y[i] == (a.x[i] > 0.0f ? a.x[i] : 0.0f));
    float *dx = alloc_nan(len);
    rn_relu_backward(dx, a.r, a.y, len);
    check_fd("relu dx", act_loss, &a, a.x, dx, len, EPS_FLOAT, 301);
    /* in place (y == x), and zero input gives zero gradient */
    float *z = alloc_f(len);
    memcpy(z, a.x, sizeof(float) * len);
    rn_relu_forward(z, z, len);
    assert_memory_equal(z, a.y, sizeof(float) * len);
    const float zero = 0.0f, one = 1.0f;
    float g = NAN;
    rn_relu_backward(&g, &one, &zero, 1);
    assert_true(g == 0.0f);
    free(a.x);
    free(a.y);
    free(a.r);
    free(sign);
    free(dx);
    free(z);
}

static void test_sigmoid(void **state)
{
    (void)state;
    const size_t len = 3 * 4 * 9;
    act_ctx a = {alloc_f(len), alloc_f(len), alloc_f(len), len, 1};
    rn_test_fill_normal(a.x, len, 41, 2.0f);
    rn_test_fill_normal(a.r, len, 42, 1.0f);
    act_loss(&a);
    for (size_t i = 0; i < len; i++) assert_close(a.y[i], 1.0 / (1.0 + exp(-a.x[i])), 1e-7);
    float *dx = alloc_nan(len);
    rn_sigmoid_backward(dx, a.r, a.y, len);
    check_fd("sigmoid dx", act_loss, &a, a.x, dx, len, EPS_FLOAT, 401);
    /* saturation: no overflow, no NaN */
    const float big[4] = {0.0f, 100.0f, -100.0f, -1000.0f};
    float out[4];
    rn_sigmoid_forward(out, big, 4);
    assert_true(out[0] == 0.5f);
    assert_true(out[1] == 1.0f);
    assert_true(out[2] >= 0.0f && out[2] < 1e-40f);
    assert_true(out[3] == 0.0f);
    free(a.x);
    free(a.y);
    free(a.r);
    free(dx);
}

static void test_add_scaled(void **state)
{
    (void)state;
    float a[5] = {1, 2, 3, 4, 5}, b[5] = {1, -1, 0.5f, 2, 0}, y[5];
    rn_add_scaled(y, a, b, 2.0f, 5);
    const float want[5] = {3, 0, 4, 8, 5};
    assert_memory_equal(y, want, sizeof want);
    rn_add_scaled(a, a, b, -1.0f, 5); /* in place */
    const float want2[5] = {0, 3, 2.5f, 2, 5};
    assert_memory_equal(a, want2, sizeof want2);
}

/* ---- pooling ------------------------------------------------------------------------- */

typedef struct {
    float *x, *y, *r;
    int n, c, h, w, k, stride, pad, oh, ow;
} pool_ctx;

static double maxpool_loss(void *p)
{
    pool_ctx *q = p;
    rn_maxpool_forward(q->y, q->x, q->n, q->c, q->h, q->w, q->k, q->stride, q->pad, q->oh, q->ow);
    return dot_d(q->r, q->y, (size_t)q->n * q->c * q->oh * q->ow);
}

static void test_maxpool_padding_values(void **state)
{
    (void)state;
    /* all-negative 3x3 input, k3 s2 p1: a padded zero would win every window if allowed */
    const float x[9] = {-1, -2, -3, -4, -5, -6, -7, -8, -9};
    float y[4];
    rn_maxpool_forward(y, x, 1, 1, 3, 3, 3, 2, 1, 2, 2);
    const float want[4] = {-1, -2, -4, -5};
    assert_memory_equal(y, want, sizeof want);
    /* ties go to the first maximum in row-major order; dx is overwritten */
    const float t[4] = {1, 1, 1, 1}, one = 1.0f;
    float dx[4] = {NAN, NAN, NAN, NAN}, yt;
    rn_maxpool_forward(&yt, t, 1, 1, 2, 2, 2, 1, 0, 1, 1);
    assert_true(yt == 1.0f);
    rn_maxpool_backward(dx, &one, t, 1, 1, 2, 2, 2, 1, 0, 1, 1);
    const float wantdx[4] = {1, 0, 0, 0};
    assert_memory_equal(dx, wantdx, sizeof wantdx);
    /* overlapping windows sharing one maximum: its gradient is the sum */
    const float x2[9] = {0, 0, 0, 0, 5, 0, 0, 0, 0}, dy2[4] = {1, 2, 3, 4};
    float y2[4], dx2[9];
    rn_maxpool_forward(y2, x2, 1, 1, 3, 3, 2, 1, 0, 2, 2);
    const float want2[4] = {5, 5, 5, 5};
    assert_memory_equal(y2, want2, sizeof want2);
    rn_maxpool_backward(dx2, dy2, x2, 1, 1, 3, 3, 2, 1, 0, 2, 2);
    const float wantdx2[9] = {0, 0, 0, 0, 10, 0, 0, 0, 0};
    assert_memory_equal(dx2, wantdx2, sizeof wantdx2);
}

/* Windows inside the plane and at its border agree with a plain scan, bit for bit: the first
 * of equal values wins (-0 before +0 stays -0) and a NaN wins and propagates. The shapes
 * cover the vector loops over a row's inner windows (stride 1, 2 and 3; rows of 1 to 19 inner
 * windows) and the scalar ones at the borders. */
static void test_maxpool_inside_and_border(void **state)
{
    (void)state;
    const int shapes[][5] = {/* h, w, k, stride, pad */
                             {9, 11, 3, 2, 1},  {12, 40, 3, 2, 1}, {7, 37, 3, 1, 1},
                             {8, 38, 2, 2, 0},  {10, 35, 3, 3, 1}, {5, 4, 3, 2, 1},
                             {6, 23, 1, 1, 0},  {3, 3, 3, 1, 0}};
    for (size_t sh = 0; sh < sizeof shapes / sizeof shapes[0]; sh++) {
        const int H = shapes[sh][0], W = shapes[sh][1], K = shapes[sh][2];
        const int S = shapes[sh][3], P = shapes[sh][4];
        const int OH = (H + 2 * P - K) / S + 1, OW = (W + 2 * P - K) / S + 1;
        const size_t nx = (size_t)2 * H * W;
        float *x = alloc_f(nx), *y = alloc_nan((size_t)2 * OH * OW);
        rn_test_fill_normal(x, nx, 41 + (unsigned)sh, 1.0f);
        for (size_t i = 0; i < nx; i += 7) x[i] = -0.0f;
        for (size_t i = 3; i < nx; i += 7) x[i] = 0.0f;
        x[(H / 2) * W + W / 2] = NAN;
        x[H * W + W + 1] = NAN; /* a border window of the second plane */
        for (size_t i = 0; i < nx; i += 5) x[i] = -fabsf(x[i]); /* some windows all negative */
        rn_maxpool_forward(y, x, 1, 2, H, W, K, S, P, OH, OW);
        for (int pl = 0; pl < 2; pl++)
            for (int oy = 0; oy < OH; oy++)
                for (int ox = 0; ox < OW; ox++) {
                    float best = 0.0f;
                    int have = 0;
                    for (int ky = 0; ky < K; ky++)
                        for (int kx = 0; kx < K; kx++) {
                            const int iy = oy * S - P + ky, ix = ox * S - P + kx;
                            if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                            const float v = x[(pl * H + iy) * W + ix];
                            if (!have || v > best || (isnan(v) && !isnan(best))) best = v;
                            have = 1;
                        }
                    if (memcmp(&y[(pl * OH + oy) * OW + ox], &best, sizeof best) != 0)
                        fail_msg("maxpool %dx%d k%d s%d p%d: plane %d (%d, %d) is %g, want %g",
                                 H, W, K, S, P, pl, oy, ox, (double)y[(pl * OH + oy) * OW + ox],
                                 (double)best);
                }
        free(x);
        free(y);
    }
}

static void test_maxpool_backward(void **state)
{
    (void)state;
    pool_ctx q = {0};
    q.n = 2;
    q.c = 3;
    q.h = 9;
    q.w = 11;
    q.k = 3;
    q.stride = 2;
    q.pad = 1;
    q.oh = (q.h + 2 * q.pad - q.k) / q.stride + 1;
    q.ow = (q.w + 2 * q.pad - q.k) / q.stride + 1;
    assert_int_equal(q.oh, 5);
    assert_int_equal(q.ow, 6);
    const size_t nx = (size_t)q.n * q.c * q.h * q.w, ny = (size_t)q.n * q.c * q.oh * q.ow;
    q.x = alloc_f(nx);
    q.y = alloc_f(ny);
    q.r = alloc_f(ny);
    /* distinct values 0.05 apart (a seeded shuffle of a ramp), so eps = 1e-2 steps never
     * change any window's winner */
    float *key = alloc_f(nx);
    rn_test_fill_uniform(key, nx, 51, 0.0f, 1.0f);
    for (size_t i = 0; i < nx; i++) {
        size_t rank = 0;
        for (size_t j = 0; j < nx; j++) rank += key[j] < key[i] || (key[j] == key[i] && j < i);
        q.x[i] = 0.05f * (float)rank - 10.0f;
    }
    rn_test_fill_normal(q.r, ny, 52, 1.0f);
    maxpool_loss(&q);
    float *dx = alloc_nan(nx);
    rn_maxpool_backward(dx, q.r, q.x, q.n, q.c, q.h, q.w, q.k, q.stride, q.pad, q.oh, q.ow);
    check_fd("maxpool 3x3/2/1 dx", maxpool_loss, &q, q.x, dx, nx, EPS_FLOAT, 501);
    free(q.x);
    free(q.y);
    free(q.r);
    free(key);
    free(dx);
}

typedef struct {
    float *x, *y, *r;
    int n, c, hw;
} gap_ctx;

static double gap_loss(void *p)
{
    gap_ctx *g = p;
    rn_gap_forward(g->y, g->x, g->n, g->c, g->hw);
    return dot_d(g->r, g->y, (size_t)g->n * g->c);
}

static void test_gap(void **state)
{
    (void)state;
    gap_ctx g = {NULL, NULL, NULL, 2, 5, 49};
    const size_t nx = (size_t)g.n * g.c * g.hw, ny = (size_t)g.n * g.c;
    g.x = alloc_f(nx);
    g.y = alloc_f(ny);
    g.r = alloc_f(ny);
    rn_test_fill_normal(g.x, nx, 61, 1.0f);
    rn_test_fill_normal(g.r, ny, 62, 1.0f);
    gap_loss(&g);
    for (size_t p = 0; p < ny; p++) {
        double s = 0.0;
        for (int j = 0; j < g.hw; j++) s += g.x[p * g.hw + j];
        assert_close(g.y[p], s / g.hw, 1e-6);
    }
    float *dx = alloc_nan(nx);
    rn_gap_backward(dx, g.r, g.n, g.c, g.hw);
    check_fd("gap dx", gap_loss, &g, g.x, dx, nx, EPS_FLOAT, 601);
    free(g.x);
    free(g.y);
    free(g.r);
    free(dx);
}

/* ---- fully connected ----------------------------------------------------------------- */

typedef struct {
    float *x, *w, *b, *y, *r;
    int n, d, k;
} fc_ctx;

static double fc_loss(void *p)
{
    fc_ctx *f = p;
    rn_fc_forward(f->y, f->x, f->w, NULL, f->b, f->n, f->d, f->k, NULL, 1);
    return dot_d(f->r, f->y, (size_t)f->n * f->k);
}

/* A layer large enough to be split among threads (resnet50's is 2048 -> 1000): the outputs
 * of 1, 2 and 3 threads, with the caller's scratch and without, from the weights as stored
 * and transposed, are the same bits, and match a sum in double. */
static void test_fc_threads(void)
{
    const int n = 2, d = 700, k = 1000;
    float *x = alloc_f((size_t)n * d), *w = alloc_f((size_t)k * d), *b = alloc_f((size_t)k);
    float *y1 = alloc_nan((size_t)n * k), *y = alloc_nan((size_t)n * k);
    rn_test_fill_normal(x, (size_t)n * d, 81, 1.0f);
    rn_test_fill_normal(w, (size_t)k * d, 82, 0.05f);
    rn_test_fill_normal(b, (size_t)k, 83, 0.5f);
    assert_int_equal(rn_fc_forward(y1, x, w, NULL, b, n, d, k, NULL, 1), 0);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < k; j += 37) {
            double s = b[j];
            for (int p = 0; p < d; p++) s += (double)x[i * d + p] * w[(size_t)j * d + p];
            assert_close(y1[i * k + j], s, 1e-4);
        }
    assert_true(rn_fc_scratch_floats(n, d, k, 2) > rn_fc_scratch_floats(n, d, k, 1));
    float *wt = alloc_nan((size_t)k * d);
    for (int j = 0; j < k; j++)
        for (int p = 0; p < d; p++) wt[(size_t)p * k + j] = w[(size_t)j * d + p];
    for (int t = 1; t <= 3; t++) {
        float *scratch = alloc_nan(rn_fc_scratch_floats(n, d, k, t));
        for (int own = 0; own < 2; own++)
            for (int trans = 0; trans < 2; trans++) {
                for (size_t i = 0; i < (size_t)n * k; i++) y[i] = NAN;
                assert_int_equal(rn_fc_forward(y, x, w, trans ? wt : NULL, b, n, d, k,
                                               own ? scratch : NULL, t), 0);
                assert_memory_equal(y, y1, sizeof(float) * n * k);
            }
        free(scratch);
    }
    free(wt);
    free(x);
    free(w);
    free(b);
    free(y1);
    free(y);
}

static void test_fc(void **state)
{
    (void)state;
    fc_ctx f = {NULL, NULL, NULL, NULL, NULL, 3, 17, 5};
    const size_t nx = (size_t)f.n * f.d, nw = (size_t)f.k * f.d, ny = (size_t)f.n * f.k;
    f.x = alloc_f(nx);
    f.w = alloc_f(nw);
    f.b = alloc_f((size_t)f.k);
    f.y = alloc_f(ny);
    f.r = alloc_f(ny);
    rn_test_fill_normal(f.x, nx, 71, 1.0f);
    rn_test_fill_normal(f.w, nw, 72, 0.25f);
    rn_test_fill_normal(f.b, (size_t)f.k, 73, 0.5f);
    rn_test_fill_normal(f.r, ny, 74, 1.0f);
    fc_loss(&f);
    for (int i = 0; i < f.n; i++)
        for (int j = 0; j < f.k; j++) {
            double s = f.b[j];
            for (int p = 0; p < f.d; p++) s += (double)f.x[i * f.d + p] * f.w[j * f.d + p];
            assert_close(f.y[i * f.k + j], s, 1e-5);
        }
    float *dx = alloc_nan(nx), *dw = alloc_zero(nw), *db = alloc_zero((size_t)f.k);
    rn_fc_backward(dx, dw, db, f.r, f.x, f.w, f.n, f.d, f.k, NULL);
    check_fd("fc dx", fc_loss, &f, f.x, dx, nx, EPS_FLOAT, 701);
    check_fd("fc dw", fc_loss, &f, f.w, dw, nw, EPS_FLOAT, 702);
    check_fd("fc db", fc_loss, &f, f.b, db, (size_t)f.k, EPS_FLOAT, 703);
    /* conventions */
    float *dx2 = alloc_f(nx), *dw2 = alloc_f(nw), *db2 = alloc_f((size_t)f.k);
    for (size_t i = 0; i < nx; i++) dx2[i] = 3.0f;
    memcpy(dw2, dw, sizeof(float) * nw);
    memcpy(db2, db, sizeof(float) * (size_t)f.k);
    /* the caller's scratch (as the network passes its workspace) gives the same bits */
    float *scratch = alloc_nan(rn_fc_scratch_floats(f.n, f.d, f.k, 1));
    rn_fc_backward(dx2, dw2, db2, f.r, f.x, f.w, f.n, f.d, f.k, scratch);
    rn_fc_backward(NULL, dw2, NULL, f.r, f.x, f.w, f.n, f.d, f.k, scratch);
    free(scratch);
    assert_rel("fc dx overwritten", dx2, dx, nx, 1e-7);
    for (size_t i = 0; i < nw; i++) dw[i] *= 3.0f;
    for (int i = 0; i < f.k; i++) db[i] *= 2.0f;
    assert_rel("fc dw accumulates", dw2, dw, nw, 1e-6);
    assert_rel("fc db accumulates", db2, db, (size_t)f.k, 1e-6);
    free(f.x);
    free(f.w);
    free(f.b);
    free(f.y);
    free(f.r);
    free(dx);
    test_fc_threads();
    free(dw);
    free(db);
    free(dx2);
    free(dw2);
    free(db2);
}

/* ---- softmax cross-entropy ----------------------------------------------------------- */

static void test_softmax_values(void **state)
{
    (void)state;
    const float logits[4] = {0.0f, 0.0f, 1.0f, 2.0f};
    const int labels[2] = {0, 1};
    float d[4] = {NAN, NAN, NAN, NAN};
    const double loss = rn_softmax_xent(d, logits, labels, 2, 2, 0.0f);
    assert_close(loss, (log(2.0) + log(1.0 + exp(-1.0))) / 2.0, 1e-12);
    const double p0 = 1.0 / (1.0 + exp(1.0)); /* softmax(1, 2)[0] */
    assert_close(d[0], -0.25, 1e-7);
    assert_close(d[1], 0.25, 1e-7);
    assert_close(d[2], p0 / 2.0, 1e-7);
    assert_close(d[3], (1.0 - p0 - 1.0) / 2.0, 1e-7);
    /* stability: huge logits neither overflow nor lose the answer */
    const float big[2] = {1000.0f, 0.0f};
    const int wrong = 1;
    float dbig[2];
    assert_close(rn_softmax_xent(dbig, big, &wrong, 1, 2, 0.0f), 1000.0, 1e-9);
    assert_close(dbig[0], 1.0, 1e-7);
    assert_close(dbig[1], -1.0, 1e-7);
    assert_close(rn_softmax_xent(NULL, big, &(int){0}, 1, 2, 0.0f), 0.0, 1e-12);
}

typedef struct {
    float *z;
    const int *labels;
    int n, k;
} xent_ctx;

static double xent_loss(void *p)
{
    xent_ctx *x = p;
    return rn_softmax_xent(NULL, x->z, x->labels, x->n, x->k, 0.0f);
}

static void test_softmax_backward(void **state)
{
    (void)state;
    int labels[5] = {0, 6, 3, 3, 1};
    xent_ctx x = {alloc_f(35), labels, 5, 7};
    rn_test_fill_normal(x.z, 35, 81, 2.0f);
    float *d = alloc_nan(35);
    rn_softmax_xent(d, x.z, labels, x.n, x.k, 0.0f);
    check_fd("softmax_xent dlogits", xent_loss, &x, x.z, d, 35, EPS_DOUBLE, 801);
    /* each row of dlogits sums to 0 */
    for (int i = 0; i < x.n; i++) {
        double s = 0.0;
        for (int j = 0; j < x.k; j++) s += d[i * x.k + j];
        assert_close(s, 0.0, 1e-7);
    }
    free(x.z);
    free(d);
}

/* ---- option-A shortcut --------------------------------------------------------------- */

typedef struct {
    float *x, *y, *r;
    int n, c, h, w, oc, stride;
    size_t ny;
} sc_ctx;

static double sc_loss(void *p)
{
    sc_ctx *s = p;
    rn_shortcut_pad_forward(s->y, s->x, s->n, s->c, s->h, s->w, s->oc, s->stride);
    return dot_d(s->r, s->y, s->ny);
}

static void shortcut_case(int n, int c, int h, int w, int oc, int stride)
{
    sc_ctx s = {NULL, NULL, NULL, n, c, h, w, oc, stride, 0};
    const int oh = (h + stride - 1) / stride, ow = (w + stride - 1) / stride;
    const int pad0 = (oc - c) / 2;
    const size_t nx = (size_t)n * c * h * w;
    s.ny = (size_t)n * oc * oh * ow;
    s.x = alloc_f(nx);
    s.y = alloc_nan(s.ny);
    s.r = alloc_f(s.ny);
    rn_test_fill_normal(s.x, nx, 91, 1.0f);
    rn_test_fill_normal(s.r, s.ny, 92, 1.0f);
    sc_loss(&s);
    for (int i = 0; i < n; i++)
        for (int o = 0; o < oc; o++)
            for (int yy = 0; yy < oh; yy++)
                for (int xx = 0; xx < ow; xx++) {
                    const int ci = o - pad0;
                    const float want =
                        (ci >= 0 && ci < c)
                            ? s.x[(((size_t)i * c + ci) * h + yy * stride) * w + xx * stride]
                            : 0.0f;
                    assert_true(s.y[(((size_t)i * oc + o) * oh + yy) * ow + xx] == want);
                }
    float *dx = alloc_nan(nx);
    rn_shortcut_pad_backward(dx, s.r, n, c, h, w, oc, stride);
    char what[64];
    snprintf(what, sizeof what, "shortcut c%d->%d s%d %dx%d dx", c, oc, stride, h, w);
    check_fd(what, sc_loss, &s, s.x, dx, nx, EPS_FLOAT, 901);
    free(s.x);
    free(s.y);
    free(s.r);
    free(dx);
}

static void test_shortcut_pad(void **state)
{
    (void)state;
    shortcut_case(2, 16, 8, 8, 32, 2);
    shortcut_case(2, 3, 7, 5, 8, 2); /* odd sizes (oh = 4, ow = 3); pad 2 before, 3 after */
    shortcut_case(1, 4, 5, 5, 4, 1); /* identity */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sgemm_all_transposes),
        cmocka_unit_test(test_gemm_rows_a),
        cmocka_unit_test(test_conv_shape),
        cmocka_unit_test(test_conv_3x3_s1_p1),
        cmocka_unit_test(test_conv_3x3_s2_p1),
        cmocka_unit_test(test_conv_1x1),
        cmocka_unit_test(test_conv_7x7_s2_p3),
        cmocka_unit_test(test_conv_rect_kernel),
        cmocka_unit_test(test_simd_selection),
        cmocka_unit_test(test_gemm_ukernels_avx512_agree),
        cmocka_unit_test(test_gemm_taps_kernel_agrees),
        cmocka_unit_test(test_bn_relu_fused),
        cmocka_unit_test(test_bn_rows_builds_agree),
        cmocka_unit_test(test_wino_output_builds_agree),
        cmocka_unit_test(test_conv_winograd),
        cmocka_unit_test(test_conv_blocked_and_threads),
        cmocka_unit_test(test_conv_packed),
        cmocka_unit_test(test_convb_forward),
        cmocka_unit_test(test_convb_wino_forward),
        cmocka_unit_test(test_convb_backward_weights),
        cmocka_unit_test(test_convb_wino_backward_weights),
        cmocka_unit_test(test_convb_wino_pack_backward_data),
        cmocka_unit_test(test_convb_backward_data),
        cmocka_unit_test(test_convb_wino_inference_tile),
        cmocka_unit_test(test_convb_wino_small_batch_chunks),
        cmocka_unit_test(test_convb_wino_by_blocks),
        cmocka_unit_test(test_convb_forward_add),
        cmocka_unit_test(test_blk_bn_train),
        cmocka_unit_test(test_blk_bn_add),
        cmocka_unit_test(test_blk_bn_stats),
        cmocka_unit_test(test_blk_backward_ops),
        cmocka_unit_test(test_blk_ops),
        cmocka_unit_test(test_bn_forward_train_values),
        cmocka_unit_test(test_bn_forward_eval_values),
        cmocka_unit_test(test_bn_update_running),
        cmocka_unit_test(test_bn_backward_train),
        cmocka_unit_test(test_bn_backward_eval),
        cmocka_unit_test(test_relu),
        cmocka_unit_test(test_sigmoid),
        cmocka_unit_test(test_add_scaled),
        cmocka_unit_test(test_maxpool_padding_values),
        cmocka_unit_test(test_maxpool_backward),
        cmocka_unit_test(test_maxpool_inside_and_border),
        cmocka_unit_test(test_gap),
        cmocka_unit_test(test_fc),
        cmocka_unit_test(test_softmax_values),
        cmocka_unit_test(test_softmax_backward),
        cmocka_unit_test(test_shortcut_pad),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
