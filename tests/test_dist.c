/* Data parallelism without MPI: the loader's share of a batch is the same bits as those rows of
 * the whole batch; synchronised batch norm, planar and on blocks, its slices in threads that add
 * up their sums as processes would, computes what one batch norm on the whole batch computes
 * (and with one slice exactly the same bits); the one-process build of src/dist/. tests/mpi.sh runs the processes. */
#define _POSIX_C_SOURCE 200809L /* setenv */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>

#include "dist/dist.h"
#include "kernels/batchnorm_sync.h"
#include "kernels/kernels.h"
#include "resnet.h"
#include "train/dataset.h"
#include "train/loader.h"

static uint32_t next_u32(uint64_t *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(*s >> 33);
}

static float uniform(uint64_t *s) { return (float)next_u32(s) / 4294967296.0f * 2.0f - 1.0f; }

/* ---- the loader's parts ---------------------------------------------------------------------- */
static void test_loader_parts(void **state)
{
    (void)state;
    rn_dataset *d;
    assert_int_equal(rn_dataset_create(&d, 103, 3, 8, 8, 10), RN_OK);
    uint64_t s = 1;
    for (size_t i = 0; i < (size_t)103 * 3 * 64; i++) d->pixels[i] = (uint8_t)next_u32(&s);
    for (int i = 0; i < 103; i++) d->labels[i] = (int)(next_u32(&s) % 10);
    rn_loader_options lo;
    rn_loader_options_init(&lo, 1);
    lo.batch = 24;
    lo.crop_pad = 2, lo.flip = 1, lo.erase = 0.5f, lo.seed = 7;
    const size_t per = 3 * 64;
    for (int parts = 2; parts <= 4; parts++) {
        rn_loader *whole, *part[4];
        assert_int_equal(rn_loader_create(&whole, d, &lo), RN_OK);
        for (int p = 0; p < parts; p++) {
            rn_loader_options o = lo;
            o.part = p, o.parts = parts;
            o.prefetch = p % 2 ? 0 : 2; /* with and without the background thread */
            assert_int_equal(rn_loader_create(&part[p], d, &o), RN_OK);
        }
        for (int epoch = 0; epoch < 2; epoch++) {
            assert_int_equal(rn_loader_start(whole, epoch, 0), RN_OK);
            for (int p = 0; p < parts; p++) assert_int_equal(rn_loader_start(part[p], epoch, 0), RN_OK);
            for (;;) {
                rn_batch w;
                assert_int_equal(rn_loader_next(whole, &w), RN_OK);
                int row = 0;
                for (int p = 0; p < parts; p++) {
                    rn_batch b;
                    assert_int_equal(rn_loader_next(part[p], &b), RN_OK);
                    assert_int_equal(b.total, w.n);
                    /* rows [p * n / parts, (p + 1) * n / parts) */
                    assert_int_equal(row, w.n * p / parts);
                    assert_int_equal(b.n, w.n * (p + 1) / parts - row);
                    if (b.n) {
                        assert_memory_equal(b.x, w.x + (size_t)row * per, (size_t)b.n * per * sizeof(float));
                        assert_memory_equal(b.labels, w.labels + row, (size_t)b.n * sizeof(int));
                    }
                    row += b.n;
                }
                assert_int_equal(row, w.n);
                if (w.n == 0) break;
            }
        }
        rn_loader_free(whole);
        for (int p = 0; p < parts; p++) rn_loader_free(part[p]);
    }
    rn_dataset_free(d);
}

/* ---- synchronised batch norm ------------------------------------------------------------------- */
enum { N = 12, C = 5, HW = 9, MAXP = 3 };

/* The "processes": threads whose sums meet at a barrier and are added in rank order. */
typedef struct {
    pthread_barrier_t barrier;
    double *slot[MAXP];
    int parts;
} meeting;

typedef struct {
    meeting *m;
    int rank;
    rn_bn_allsum s;
    const float *x, *dy, *gamma, *beta;
    int n, relu, blocked; /* blocked: x, dy, y and dx are channel-blocked (rn_blk_*) */
    float *y, *mean, *var, *dx, *dgamma, *dbeta;
    int count;
} slice;

static void sum_in_threads(void *ctx, double *buf, int n)
{
    slice *sl = ctx;
    meeting *m = sl->m;
    m->slot[sl->rank] = buf;
    pthread_barrier_wait(&m->barrier);
    double total[2 * C + 1];
    for (int i = 0; i < n; i++) {
        total[i] = 0.0;
        for (int r = 0; r < m->parts; r++) total[i] += m->slot[r][i];
    }
    pthread_barrier_wait(&m->barrier); /* everyone has read every slot */
    memcpy(buf, total, (size_t)n * sizeof *buf);
}

static void *run_slice(void *arg)
{
    slice *sl = arg;
    if (sl->blocked) {
        double work[4 * C];
        sl->count = rn_blk_bn_forward_train(sl->y, sl->mean, sl->var, NULL, sl->x, sl->gamma, sl->beta,
                                            sl->n, C, HW, 1e-5f, sl->relu, work, &sl->s);
        rn_blk_bn_backward(sl->dx, sl->dgamma, sl->dbeta, sl->dy, sl->relu ? sl->y : NULL, NULL, NULL, sl->x,
                           sl->gamma, sl->mean, sl->var, sl->n, C, HW, 1e-5f, 1, work, &sl->s);
        return NULL;
    }
    sl->count = rn_bn_forward_train_allsum(sl->y, sl->mean, sl->var, sl->x, sl->gamma, sl->beta,
                                           sl->n, C, HW, 1e-5f, sl->relu, &sl->s);
    rn_bn_backward_train_allsum(sl->dx, sl->dgamma, sl->dbeta, sl->dy, sl->relu ? sl->y : NULL,
                                sl->x, sl->gamma, sl->mean, sl->var, sl->n, C, HW, 1e-5f, &sl->s);
    return NULL;
}

static double max_diff(const float *a, const float *b, size_t n, double *scale)
{
    double d = 0.0, m = 0.0;
    for (size_t i = 0; i < n; i++) {
        d = fmax(d, fabs((double)a[i] - b[i]));
        m = fmax(m, fabs((double)a[i]));
    }
    *scale = m;
    return d;
}

/* parts slices of the batch, split as the loader splits it, against the whole batch at once
 * (blocked: both on channel-blocked tensors, C a partial block); exact: demand the same bits. */
static void check_split(int parts, int relu, int exact, int blocked)
{
    const size_t plen = (size_t)N * C * HW;
    const size_t len = blocked ? rn_blk_floats(N, C, HW, 1) : plen;
    const size_t image = len / N; /* floats of one image in either layout */
    float *xp = malloc(plen * sizeof *xp), *dyp = malloc(plen * sizeof *dyp);
    float *x = malloc(len * sizeof *x), *dy = malloc(len * sizeof *dy);
    float *y = malloc(len * sizeof *y), *dx = malloc(len * sizeof *dx);
    float *ys = malloc(len * sizeof *ys), *dxs = malloc(len * sizeof *dxs);
    float gamma[C], beta[C], mean[C], var[C], dgamma[C] = {0}, dbeta[C] = {0};
    float dgs[C] = {0}, dbs[C] = {0};
    uint64_t s = 3;
    for (size_t i = 0; i < plen; i++) xp[i] = 3.0f + uniform(&s), dyp[i] = uniform(&s);
    for (int c = 0; c < C; c++) gamma[c] = 1.0f + 0.3f * uniform(&s), beta[c] = 0.2f * uniform(&s);
    if (blocked) {
        double work[4 * C];
        rn_blk_from_nchw(x, xp, N, C, HW, 1);
        rn_blk_from_nchw(dy, dyp, N, C, HW, 1);
        rn_blk_bn_forward_train(y, mean, var, NULL, x, gamma, beta, N, C, HW, 1e-5f, relu, work, NULL);
        rn_blk_bn_backward(dx, dgamma, dbeta, dy, relu ? y : NULL, NULL, NULL, x, gamma, mean, var, N, C, HW,
                           1e-5f, 1, work, NULL);
    } else {
        memcpy(x, xp, plen * sizeof *x);
        memcpy(dy, dyp, plen * sizeof *dy);
        (relu ? rn_bn_relu_forward_train : rn_bn_forward_train)(y, mean, var, x, gamma, beta, N,
                                                                C, HW, 1e-5f);
        if (relu)
            rn_bn_relu_backward_train(dx, dgamma, dbeta, dy, y, x, gamma, mean, var, N, C, HW, 1e-5f);
        else
            rn_bn_backward_train(dx, dgamma, dbeta, dy, x, gamma, mean, var, N, C, HW, 1e-5f);
    }

    meeting m = {.parts = parts};
    pthread_barrier_init(&m.barrier, NULL, (unsigned)parts);
    slice sl[MAXP];
    pthread_t th[MAXP];
    double bufs[MAXP][2 * C + 1];
    float means[MAXP][C], vars[MAXP][C], dgp[MAXP][C], dbp[MAXP][C];
    for (int p = 0; p < parts; p++) {
        const int lo = N * p / parts, hi = N * (p + 1) / parts;
        const size_t o = (size_t)lo * image;
        memset(dgp[p], 0, sizeof dgp[p]);
        memset(dbp[p], 0, sizeof dbp[p]);
        sl[p] = (slice){.m = &m, .rank = p, .x = x + o, .dy = dy + o, .gamma = gamma, .beta = beta,
                        .n = hi - lo, .relu = relu, .blocked = blocked, .y = ys + o, .mean = means[p], .var = vars[p],
                        .dx = dxs + o, .dgamma = dgp[p], .dbeta = dbp[p]};
        sl[p].s = (rn_bn_allsum){sum_in_threads, &sl[p], bufs[p], 2 * C + 1};
        assert_int_equal(pthread_create(&th[p], NULL, run_slice, &sl[p]), 0);
    }
    for (int p = 0; p < parts; p++) pthread_join(th[p], NULL);
    pthread_barrier_destroy(&m.barrier);
    for (int p = 0; p < parts; p++) {
        assert_int_equal(sl[p].count, N * HW); /* the global count, for the running variance */
        for (int c = 0; c < C; c++) dgs[c] += dgp[p][c], dbs[c] += dbp[p][c];
        /* every slice normalised with the same statistics */
        assert_memory_equal(means[p], means[0], sizeof means[0]);
        assert_memory_equal(vars[p], vars[0], sizeof vars[0]);
    }
    if (exact) {
        assert_memory_equal(ys, y, len * sizeof *y);
        assert_memory_equal(dxs, dx, len * sizeof *dx);
        assert_memory_equal(means[0], mean, sizeof mean);
        assert_memory_equal(vars[0], var, sizeof var);
        assert_memory_equal(dgs, dgamma, sizeof dgamma);
        assert_memory_equal(dbs, dbeta, sizeof dbeta);
    } else {
        double scale;
        /* measured: about 1e-7 of the values' size, float rounding of sums in another order */
        assert_true(max_diff(y, ys, len, &scale) <= 1e-5 * scale);
        assert_true(max_diff(dx, dxs, len, &scale) <= 1e-5 * scale);
        assert_true(max_diff(mean, means[0], C, &scale) <= 1e-6 * scale);
        assert_true(max_diff(var, vars[0], C, &scale) <= 1e-5 * scale);
        assert_true(max_diff(dgamma, dgs, C, &scale) <= 1e-5 * scale);
        assert_true(max_diff(dbeta, dbs, C, &scale) <= 1e-5 * scale);
    }
    free(xp), free(dyp), free(x), free(dy), free(y), free(dx), free(ys), free(dxs);
}

static void test_bn_allsum_one_slice_same_bits(void **state)
{
    (void)state;
    for (int blocked = 0; blocked <= 1; blocked++) {
        check_split(1, 0, 1, blocked);
        check_split(1, 1, 1, blocked);
    }
}

static void test_bn_allsum_slices(void **state)
{
    (void)state;
    for (int blocked = 0; blocked <= 1; blocked++)
        for (int parts = 2; parts <= MAXP; parts++) {
            check_split(parts, 0, 0, blocked);
            check_split(parts, 1, 0, blocked);
        }
}

/* A sum that keeps each slice's own values: what --bn local computes. It must not pass the
 * tolerance above (else that test could not fail). */
static void keep_own(void *ctx, double *buf, int n) { (void)ctx, (void)buf, (void)n; }

static void test_bn_local_differs(void **state)
{
    (void)state;
    const size_t len = (size_t)N * C * HW;
    float *x = malloc(len * sizeof *x), *y = malloc(len * sizeof *y), *ys = malloc(len * sizeof *ys);
    float gamma[C], beta[C], mean[C], var[C];
    uint64_t s = 5;
    for (size_t i = 0; i < len; i++) x[i] = uniform(&s) * (float)(1 + i / (len / 2));
    for (int c = 0; c < C; c++) gamma[c] = 1.0f, beta[c] = 0.0f;
    rn_bn_forward_train(y, mean, var, x, gamma, beta, N, C, HW, 1e-5f);
    double buf[2 * C + 1];
    rn_bn_allsum own = {keep_own, NULL, buf, 2 * C + 1};
    const int half = N / 2;
    rn_bn_forward_train_allsum(ys, mean, var, x, gamma, beta, half, C, HW, 1e-5f, 0, &own);
    rn_bn_forward_train_allsum(ys + (size_t)half * C * HW, mean, var, x + (size_t)half * C * HW,
                               gamma, beta, N - half, C, HW, 1e-5f, 0, &own);
    double scale;
    assert_true(max_diff(y, ys, len, &scale) > 1e-2 * scale);
    free(x), free(y), free(ys);
}

/* ---- one process ------------------------------------------------------------------------------- */
static void test_dist_one_process(void **state)
{
    (void)state;
    unsetenv("OMPI_COMM_WORLD_SIZE");
    unsetenv("PMI_SIZE");
    unsetenv("PMIX_SIZE");
    rn_dist *d;
    assert_int_equal(rn_dist_create(&d), RN_OK);
    assert_int_equal(rn_dist_size(d), 1);
    assert_int_equal(rn_dist_rank(d), 0);
    float f[3] = {1.0f, 2.0f, 3.0f};
    double g[2] = {4.0, 5.0};
    int same = 0, v = 7;
    assert_int_equal(rn_dist_sum_float(d, f, 3), RN_OK);
    assert_int_equal(rn_dist_sum_double(d, g, 2), RN_OK);
    assert_int_equal(rn_dist_sum_start(d, f, 3), RN_OK);
    assert_int_equal(rn_dist_sum_wait(d), RN_OK);
    assert_int_equal(rn_dist_max_int(d, &v), RN_OK);
    assert_int_equal(rn_dist_same_u64(d, 42, &same), RN_OK);
    assert_true(f[0] == 1.0f && f[2] == 3.0f && g[1] == 5.0 && v == 7 && same == 1);
    assert_true(rn_dist_hash(RN_DIST_HASH_INIT, "ab", 2) != rn_dist_hash(RN_DIST_HASH_INIT, "ba", 2));
    rn_dist_free(d);
#ifndef RN_WITH_MPI
    /* started by mpirun, but built without MPI: a clear refusal, not N copies of one run */
    setenv("OMPI_COMM_WORLD_SIZE", "2", 1);
    assert_int_equal(rn_dist_create(&d), RN_ERR_ARG);
    assert_non_null(strstr(rn_last_error(), "make MPI=1"));
    unsetenv("OMPI_COMM_WORLD_SIZE");
#endif
}

int main(void)
{
    omp_set_num_threads(1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loader_parts),
        cmocka_unit_test(test_bn_allsum_one_slice_same_bits),
        cmocka_unit_test(test_bn_allsum_slices),
        cmocka_unit_test(test_bn_local_differs),
        cmocka_unit_test(test_dist_one_process),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
