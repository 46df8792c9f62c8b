/* Finite-difference checks of single blocks: every block type (plain, residual, highway;
 * basic and bottleneck) in every ordering, with every shortcut option, with and without a
 * change of shape, in training and evaluation mode, dropped and scaled (stochastic depth).
 *
 * The loss is L = sum_i r_i y_i over the block output (r fixed and random, summed in double).
 * For every parameter tensor and for the input, the analytic gradient along a random unit
 * direction v must equal the central difference (L(p + eps v) - L(p - eps v)) / (2 eps).
 * Why a block and not a whole network: through a deep BN network the early gradients are so
 * small that a float32 loss cannot resolve their finite differences (measured: errors of
 * order 1 on resnet8/20 whose gradients match PyTorch to 1e-6); at block level the signal
 * is O(1). Why a direction and not coordinates: a whole-tensor direction moves each element
 * by ~eps/sqrt(numel), so a ReLU kink is rarely crossed, while a wrong gradient anywhere in
 * the tensor still changes the result. The networks themselves are checked against PyTorch
 * in test_parity. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "nn/net.h"
#include "support/check.h"

enum { BATCH = 4, HW = 8 };

typedef struct {
    rn_block_kind kind;
    int bottleneck, ordering, shortcut;
    int downsample; /* stride 2 and twice the channels */
    int training;
    int dropped;    /* delete the branch (training: the stochastic-depth drop path) */
    float survival; /* evaluation mode scales the branch by it */
} block_case;

typedef struct {
    rn_net *net;
    rn_block *b;
    float *x, *r;
    size_t out_len;
} fd_ctx;

static double loss_of(void *p)
{
    fd_ctx *c = p;
    rn_block_forward(c->net, c->b, c->x);
    const float *y = rn_block_output(c->b);
    double total = 0.0;
    for (size_t i = 0; i < c->out_len; i++) total += (double)c->r[i] * y[i];
    return total;
}

static const char *kind_name(rn_block_kind k)
{
    return k == RN_BLOCK_PLAIN ? "plain" : k == RN_BLOCK_RESIDUAL ? "residual" : "highway";
}

/* Directional check of one variable: returns the relative error, the smallest over three
 * step sizes. Measured on these blocks: at eps = 1e-2 the curvature of BN and ReLU kinks
 * costs several per cent, at 1e-5 float32 rounding of the outputs does; in between, a kink
 * crossed by one step spoils that step only, while a wrong gradient spoils all three. */
static double check_direction(fd_ctx *ctx, float *var, const float *grad, size_t n, uint64_t seed,
                              double *analytic_out, double *numeric_out)
{
    static const double steps[] = {1e-3, 3e-4, 1e-4};
    float *v = malloc(n * sizeof(float)), *saved = malloc(n * sizeof(float));
    assert_non_null(v);
    assert_non_null(saved);
    rn_test_fill_normal(v, n, seed, 1.0f);
    double norm = 0.0, analytic = 0.0, gnorm = 0.0;
    for (size_t i = 0; i < n; i++) norm += (double)v[i] * v[i];
    for (size_t i = 0; i < n; i++) gnorm += (double)grad[i] * grad[i];
    for (size_t i = 0; i < n; i++) v[i] = (float)(v[i] / sqrt(norm));
    for (size_t i = 0; i < n; i++) analytic += (double)grad[i] * v[i];
    memcpy(saved, var, n * sizeof(float));
    double best = INFINITY;
    for (size_t k = 0; k < sizeof steps / sizeof steps[0]; k++) {
        double eps = steps[k];
        for (size_t i = 0; i < n; i++) var[i] = saved[i] + (float)eps * v[i];
        double lp = loss_of(ctx);
        for (size_t i = 0; i < n; i++) var[i] = saved[i] - (float)eps * v[i];
        double lm = loss_of(ctx);
        double numeric = (lp - lm) / (2 * eps);
        /* Relative to the typical size of a derivative along a random unit direction,
         * ||g|| / sqrt(n): a missing gradient term is random-like with respect to v, so a
         * normalisation by ||g|| alone would hide it by a factor sqrt(n) (measured: dropping
         * the identity shortcut's gradient gave 1.4e-2 that way, 0.9 this way). The floor of
         * 0.2 is the float32 resolution of a slope here: L ~ 1e2 carries ~1e-5 of rounding,
         * and a parameter whose gradient is exactly zero (a shortcut BN bias followed by the
         * batch-statistics BN of bn-after-add) measured numeric slopes up to 4.4e-3. */
        double err = fabs(numeric - analytic) / fmax(sqrt(gnorm / (double)n), 0.2);
        if (!(err >= best)) {
            best = err;
            *numeric_out = numeric;
        }
    }
    memcpy(var, saved, n * sizeof(float));
    free(v);
    free(saved);
    *analytic_out = analytic;
    return best;
}

static double check_block(const block_case *bc, char *worst, size_t worst_size)
{
    rn_net *net = calloc(1, sizeof *net);
    assert_non_null(net);
    rn_net_options_init(&net->opt);
    net->blocks = calloc(1, sizeof *net->blocks);
    net->blocks[0] = calloc(1, sizeof(rn_block));
    net->n_blocks = 1;
    rn_block *b = net->blocks[0];

    int in_c = bc->bottleneck ? 32 : 16;
    rn_block_spec spec = {.kind = bc->kind, .bottleneck = bc->bottleneck, .ordering = bc->ordering,
                          .shortcut = bc->shortcut, .stride = bc->downsample ? 2 : 1};
    spec.mid_c = bc->bottleneck ? (bc->downsample ? 16 : 8) : 0;
    spec.out_c = bc->bottleneck ? 4 * spec.mid_c : (bc->downsample ? 32 : 16);
    rn_shape3 in = {in_c, HW, HW};
    assert_int_equal(rn_block_build(net, b, "blk", 1, in, &spec), RN_OK);
    float *x_slot;
    /* the block's input is a slot too, so the gradient scratch is large enough for dx */
    assert_int_equal(rn_net_add_slot(net, &x_slot, rn_shape3_size(in)), RN_OK);
    assert_int_equal(rn_net_bind(net), RN_OK);
    assert_int_equal(rn_net_reserve_batch(net, BATCH), RN_OK);
    net->run.n = BATCH;
    net->run.training = bc->training;
    b->deleted = bc->dropped;
    b->survival = bc->survival;

    /* Parameters: convs ~ Kaiming scale, BN affine and running statistics away from their
     * init, gates well inside (0, 1) so that both highway paths carry gradient. */
    for (int t = 0; t < net->n_tensors; t++) {
        rn_tensor_info ti;
        rn_net_tensor(net, t, &ti);
        if (ti.kind == RN_TENSOR_COUNTER) continue;
        const char *leaf = strrchr(ti.name, '.') + 1;
        if (ti.ndim == 4) rn_test_fill_normal(ti.data, ti.numel, 10 + t, sqrtf(2.0f / (float)(ti.shape[1] * ti.shape[2] * ti.shape[3])));
        else if (!strcmp(leaf, "weight") || !strcmp(leaf, "running_var")) rn_test_fill_uniform(ti.data, ti.numel, 10 + t, 0.5f, 1.5f);
        else rn_test_fill_normal(ti.data, ti.numel, 10 + t, 0.2f);
    }

    size_t in_len = rn_shape3_size(in) * BATCH, out_len = rn_shape3_size(b->out) * BATCH;
    fd_ctx ctx = {net, b, x_slot, malloc(out_len * sizeof(float)), out_len};
    float *dx = malloc(in_len * sizeof(float));
    assert_non_null(ctx.r);
    assert_non_null(dx);
    rn_test_fill_normal(ctx.x, in_len, 5, 1.0f);
    rn_test_fill_normal(ctx.r, out_len, 6, 1.0f);

    /* analytic: forward, then backward of dL/dy = r */
    rn_net_zero_grad(net);
    rn_block_forward(net, b, ctx.x);
    rn_block_backward(net, b, ctx.r, 0, dx, 0);

    double worst_err = 0.0, an, nu;
    int params = 0;
    for (int t = 0; t < net->n_tensors; t++) {
        rn_tensor_info ti;
        rn_net_tensor(net, t, &ti);
        if (ti.kind != RN_TENSOR_PARAM) continue;
        double err = check_direction(&ctx, ti.data, ti.grad, ti.numel, 100 + t, &an, &nu);
        if (!(err <= worst_err)) {
            worst_err = err;
            snprintf(worst, worst_size, "%s (analytic %.6g, numeric %.6g)", ti.name, an, nu);
        }
        params++;
    }
    assert_true(params >= 2);
    double err = check_direction(&ctx, ctx.x, dx, in_len, 99, &an, &nu);
    if (!(err <= worst_err)) {
        worst_err = err;
        snprintf(worst, worst_size, "input (analytic %.6g, numeric %.6g)", an, nu);
    }
    free(ctx.r);
    free(dx);
    rn_net_free(net);
    return worst_err;
}

/* Measured worst error over the 230 cases: 1.8e-2 (kinks and curvature at the larger step,
 * rounding at the smaller). Deliberate breaks measured: the identity/option-A shortcut's
 * gradient left out 0.9; the highway gate's sigmoid derivative left out 1.9; the
 * stochastic-depth scale left out of backward 0.97; the projection BN's backward skipped
 * 0.8. */
#define FD_TOL 5e-2

static void run_cases(const block_case *cases, int count)
{
    int failed = 0;
    double worst_all = 0.0;
    for (int i = 0; i < count; i++) {
        const block_case *c = &cases[i];
        char worst[256] = "";
        double err = check_block(c, worst, sizeof worst);
        int ok = err <= FD_TOL;
        if (!ok || err > worst_all)
            print_message("%-4s %-8s %-10s %-15s shortcut %s%s %s%s%s: worst %.2e at %s\n",
                          ok ? "ok" : "FAIL", kind_name(c->kind), c->bottleneck ? "bottleneck" : "basic",
                          rn_ordering_name(c->ordering), rn_shortcut_name(c->shortcut),
                          c->downsample ? " /2" : "", c->training ? "train" : "eval",
                          c->dropped ? " dropped" : "", c->survival < 1.0f ? " scaled" : "", err, worst);
        if (err > worst_all) worst_all = err;
        failed += !ok;
    }
    print_message("%d cases, worst relative error %.2e (tolerance %.0e)\n", count, worst_all, FD_TOL);
    assert_int_equal(failed, 0);
}

static void all_orderings(rn_block_kind kind, int training)
{
    block_case cases[5 * 3 * 2 * 2];
    int n = 0;
    int shortcuts = kind == RN_BLOCK_PLAIN ? 1 : 3;
    for (int bottleneck = 0; bottleneck < 2; bottleneck++)
        for (int o = 0; o < 5; o++)
            for (int sc = 0; sc < shortcuts; sc++)
                for (int down = 0; down < 2; down++)
                    cases[n++] = (block_case){kind, bottleneck, o, sc, down, training, 0, 1.0f};
    run_cases(cases, n);
}

static void test_residual_blocks(void **state)
{
    (void)state;
    all_orderings(RN_BLOCK_RESIDUAL, 1);
}

static void test_plain_blocks(void **state)
{
    (void)state;
    all_orderings(RN_BLOCK_PLAIN, 1);
}

static void test_highway_blocks(void **state)
{
    (void)state;
    all_orderings(RN_BLOCK_HIGHWAY, 1);
}

static void test_residual_blocks_eval(void **state)
{
    (void)state;
    all_orderings(RN_BLOCK_RESIDUAL, 0);
}

static void test_dropped_and_scaled(void **state)
{
    (void)state;
    block_case cases[5 * 2 * 3];
    int n = 0;
    for (int o = 0; o < 5; o++)
        for (int bottleneck = 0; bottleneck < 2; bottleneck++) {
            /* training, dropped: y = post(shortcut(x)), including a projection that reads the
             * pre-activation under full pre-activation */
            cases[n++] = (block_case){RN_BLOCK_RESIDUAL, bottleneck, o, RN_SHORTCUT_B, 1, 1, 1, 1.0f};
            /* evaluation, scaled by the survival probability */
            cases[n++] = (block_case){RN_BLOCK_RESIDUAL, bottleneck, o, RN_SHORTCUT_A, 0, 0, 0, 0.6f};
            cases[n++] = (block_case){RN_BLOCK_HIGHWAY, bottleneck, o, RN_SHORTCUT_C, 1, 1, 1, 1.0f};
        }
    run_cases(cases, n);
}

/* resnet20 on 3 x hw x hw images */
static rn_net *resnet20_on(int hw)
{
    rn_net_options o;
    rn_net_options_init(&o);
    o.in_c = 3, o.in_h = o.in_w = hw;
    rn_net *net;
    assert_int_equal(rn_net_create(&net, "resnet20", &o), RN_OK);
    return net;
}

/* The arrays the vector kernels stream through start on a cache line, and so does every
 * activation slot of a blocked network (each a whole number of 16-float blocks): a 16-float
 * vector never straddles two lines. */
static void test_arrays_on_cache_lines(void **state)
{
    (void)state;
    float *p = rn_alloc_lines_zero(3, 5);
    assert_non_null(p);
    assert_int_equal((uintptr_t)p % 64, 0);
    for (int i = 0; i < 15; i++) assert_true(((unsigned char *)p)[i] == 0);
    free(p);
    assert_null(rn_alloc_lines(SIZE_MAX / 2, 4)); /* the size overflows */
    rn_net *net = resnet20_on(12);
    assert_int_equal(rn_net_set_blocked(net, 1), RN_OK);
    assert_int_equal(rn_net_reserve_batch(net, 3), RN_OK);
    assert_int_equal((uintptr_t)net->run.work % 64, 0);
    for (int i = 0; i < 8; i++) assert_int_equal((uintptr_t)net->run.grad.all[i] % 64, 0);
    for (int i = 0; i < net->n_slots; i++) assert_int_equal((uintptr_t)*net->slots[i].bind % 64, 0);
    rn_net_free(net);
}

/* A frozen network runs on channel-blocked activations: every convolution packed for the
 * blocked kernels, Winograd for the 3x3 stride-1 ones with 16 channels or more on maps of 2x2
 * and more (rn_convb_wino_pays; 32 with 8-lane blocks where the tile is 2x2), the first one
 * reading the planar images; its activations are not probed as if planar. Its results are held
 * to the plain forward's in test_net's test_freeze. */
static void test_frozen_runs_blocked(void **state)
{
    (void)state;
    rn_net *net = resnet20_on(32);
    assert_int_equal(rn_net_freeze(net, 1), RN_OK);
    float *x = malloc((size_t)2 * 3 * 32 * 32 * sizeof *x), logits[20], again[20];
    for (int i = 0; i < 2 * 3 * 32 * 32; i++) x[i] = (float)((i * 7) % 13) / 13.0f - 0.5f;
    /* the same bits on 1, 2 and 3 threads */
    for (int t = 1; t <= 3; t++) {
        assert_int_equal(rn_set_threads(t), RN_OK);
        assert_int_equal(rn_net_forward(net, x, 2, 0, t == 1 ? logits : again), RN_OK);
        if (t > 1) assert_memory_equal(again, logits, sizeof logits);
    }
    assert_int_equal(rn_set_threads(1), RN_OK);
    int wino = 0;
    /* 16 with 8 lanes too: on these maps (32x32 to 8x8) the 3x3 convolutions take 4x4 tiles */
    const int least = 16;
    for (int i = 0; i < net->n_convs; i++) {
        const rn_conv *c = net->convs[i];
        assert_non_null(c->packed);
        /* the vectors of a packed row in one cache line each (core/alloc.h) */
        assert_int_equal((uintptr_t)c->packed % 64, 0);
        assert_int_equal(c->blk_planar_in, c == &net->stem_conv);
        const int pays = c->k == 3 && c->stride == 1 && c->out.h >= 2 && c->in_c >= least &&
                         c->out_c >= least && c != &net->stem_conv;
        assert_int_equal(c->blk_wino != 0, pays);
        wino += c->blk_wino != 0;
    }
    /* the 3x3 convolutions of stride 1 after the stem: 6 + 5 + 5 */
    assert_int_equal(wino, 16);
    /* Each block with an identity shortcut but the first writes its output over its input
     * (rn_block_in_place); those with a zero-padded one (3 and 6) move to the other buffer. */
    for (int b = 1; b < net->n_blocks; b++) {
        const int in_place = b != 3 && b != 6;
        assert_int_equal(rn_block_in_place(net, net->blocks[b]), in_place);
        assert_int_equal(rn_block_output(net->blocks[b]) == rn_block_output(net->blocks[b - 1]),
                         in_place);
    }
    /* the first's input may be the caller's (a network without a stem): never written */
    assert_true(rn_block_output(net->blocks[0]) != net->stem.buf[net->stem.n]);
    rn_block_probe probe;
    assert_int_equal(rn_net_probe_block(net, 0, &probe), RN_ERR_ARG);
    assert_int_equal(rn_net_freeze(net, 0), RN_OK);
    for (int i = 0; i < net->n_convs; i++) assert_null(net->convs[i]->packed);
    assert_int_equal(rn_net_forward(net, x, 2, 0, logits), RN_OK);
    assert_int_equal(rn_net_probe_block(net, 0, &probe), RN_OK);
    free(x);
    rn_net_free(net);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_residual_blocks),
        cmocka_unit_test(test_plain_blocks),
        cmocka_unit_test(test_highway_blocks),
        cmocka_unit_test(test_residual_blocks_eval),
        cmocka_unit_test(test_dropped_and_scaled),
        cmocka_unit_test(test_arrays_on_cache_lines),
        cmocka_unit_test(test_frozen_runs_blocked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
