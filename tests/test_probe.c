/* The probes and structural edits behind the experiments: block norms, gates, deleting plain
 * blocks, swapping blocks, backward along one path, recorded input gradients, and stacks of
 * blocks (the identity experiment), each against a quantity with a known answer or finite
 * differences. */
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

#include "nn/stack.h"
#include "resnet.h"
#include "support/check.h"
#include "support/logits.h"
#include "support/tmpdir.h"

#define IMG 3 * 12 * 12

static rn_net *net_of(const char *arch, int ordering)
{
    rn_net_options o;
    rn_net_options_init(&o);
    o.in_c = 3, o.in_h = 12, o.in_w = 12, o.classes = 5, o.seed = 3;
    o.ordering = ordering;
    rn_net *net = NULL;
    assert_int_equal(rn_net_create(&net, arch, &o), RN_OK);
    return net;
}

/* Sets a block's last branch BN (gamma and beta) to zero: F(x) = 0. */
static void zero_branch(rn_net *net, const char *bn)
{
    rn_tensor_info w, b;
    char name[64];
    snprintf(name, sizeof name, "%s.weight", bn);
    assert_int_equal(rn_net_find_tensor(net, name, &w), RN_OK);
    snprintf(name, sizeof name, "%s.bias", bn);
    assert_int_equal(rn_net_find_tensor(net, name, &b), RN_OK);
    memset(w.data, 0, w.numel * sizeof(float));
    memset(b.data, 0, b.numel * sizeof(float));
}

static void test_zero_branch_is_identity(void **state)
{
    (void)state;
    float x[4 * IMG], logits[20];
    rn_test_fill_uniform(x, 4 * IMG, 1, -1.0f, 1.0f);
    /* (a) original: the last BN of the branch is bn2, the ReLU after the addition keeps x >= 0 */
    rn_net *net = net_of("resnet14", RN_ORDER_ORIGINAL);
    zero_branch(net, "layer1.1.bn2");
    assert_int_equal(rn_net_forward(net, x, 4, 0, logits), RN_OK);
    rn_block_probe p;
    assert_int_equal(rn_net_probe_block(net, 1, &p), RN_OK);
    assert_true(p.input_sq > 0.0);
    assert_true(p.branch_sq == 0.0);
    assert_true(p.change_sq == 0.0);
    assert_true(isnan(p.gate_mean));
    /* an untouched block is not the identity */
    assert_int_equal(rn_net_probe_block(net, 0, &p), RN_OK);
    assert_true(p.branch_sq > 0.0 && p.change_sq > 0.0);
    /* a downsampling block has no ||y - x|| */
    assert_int_equal(rn_net_probe_block(net, 2, &p), RN_OK);
    assert_true(isnan(p.change_sq));
    /* deleting no block changes nothing; deleting the zero block changes nothing either */
    for (int b = 0; b < rn_net_num_blocks(net); b++) assert_int_equal(rn_net_set_block_deleted(net, b, 0), RN_OK);
    assert_true(rn_test_same_logits(net, x, 4, logits, 20));
    assert_int_equal(rn_net_set_block_deleted(net, 1, 1), RN_OK);
    assert_true(rn_test_same_logits(net, x, 4, logits, 20));
    rn_net_free(net);

    /* (e) full pre-activation: nothing after the addition, y = x + F(x) exactly */
    net = net_of("resnet14", RN_ORDER_FULL_PREACT);
    rn_tensor_info w;
    assert_int_equal(rn_net_find_tensor(net, "layer1.1.conv2.weight", &w), RN_OK);
    memset(w.data, 0, w.numel * sizeof(float));
    assert_int_equal(rn_net_forward(net, x, 4, 0, logits), RN_OK);
    assert_int_equal(rn_net_probe_block(net, 1, &p), RN_OK);
    assert_true(p.branch_sq == 0.0 && p.change_sq == 0.0);
    assert_int_equal(p.count, (size_t)4 * 16 * 12 * 12);
    rn_net_free(net);
}

static void test_plain_blocks_delete_and_swap(void **state)
{
    (void)state;
    float x[2 * IMG], a[10];
    rn_test_fill_uniform(x, 2 * IMG, 2, -1.0f, 1.0f);
    rn_net *net = net_of("plain14", RN_ORDER_ORIGINAL);
    assert_int_equal(rn_net_forward(net, x, 2, 0, a), RN_OK);
    /* a plain block that keeps its shape can be deleted: its input goes on unchanged */
    assert_int_equal(rn_net_set_block_deleted(net, 1, 1), RN_OK);
    assert_false(rn_test_same_logits(net, x, 2, a, 10));
    rn_block_probe p;
    assert_int_equal(rn_net_probe_block(net, 1, &p), RN_OK);
    assert_true(p.change_sq == 0.0 && p.branch_sq == 0.0);
    /* one that changes the shape cannot */
    assert_int_equal(rn_net_set_block_deleted(net, 2, 1), RN_ERR_ARG);
    assert_non_null(strstr(rn_last_error(), "layer2.0"));
    assert_int_equal(rn_net_set_block_deleted(net, 1, 0), RN_OK);
    /* plain blocks have no other way for the gradient */
    assert_int_equal(rn_net_set_block_grad_way(net, 1, RN_GRAD_SHORTCUT_ONLY), RN_ERR_ARG);
    rn_net_free(net);

    net = net_of("resnet14", RN_ORDER_ORIGINAL);
    assert_int_equal(rn_net_forward(net, x, 2, 0, a), RN_OK);
    assert_int_equal(rn_net_swap_blocks(net, 0, 1), RN_OK);
    rn_unit_info u;
    assert_int_equal(rn_net_unit(net, 1, &u), RN_OK);
    assert_string_equal(u.name, "layer1.1");
    assert_false(rn_test_same_logits(net, x, 2, a, 10));
    assert_int_equal(rn_net_swap_blocks(net, 1, 0), RN_OK);
    assert_true(rn_test_same_logits(net, x, 2, a, 10));
    assert_int_equal(rn_net_swap_blocks(net, 1, 2), RN_ERR_ARG);
    assert_int_equal(rn_net_swap_blocks(net, 0, 9), RN_ERR_ARG);
    rn_net_free(net);
}

static void test_gates_probe(void **state)
{
    (void)state;
    float x[2 * IMG];
    rn_test_fill_uniform(x, 2 * IMG, 4, -1.0f, 1.0f);
    rn_net *net = net_of("highway8", RN_ORDER_ORIGINAL);
    assert_int_equal(rn_net_forward(net, x, 2, 0, NULL), RN_OK);
    const float *t;
    size_t n;
    assert_int_equal(rn_net_block_gates(net, 0, &t, &n), RN_OK);
    assert_int_equal(n, (size_t)2 * 16 * 12 * 12);
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        assert_true(t[i] > 0.0f && t[i] < 1.0f);
        sum += t[i];
    }
    rn_block_probe p;
    assert_int_equal(rn_net_probe_block(net, 0, &p), RN_OK);
    assert_true(fabs(p.gate_mean - sum / (double)n) < 1e-9);
    /* the initial bias -2 keeps the gates mostly closed: sigmoid(-2) = 0.12 */
    assert_true(p.gate_mean > 0.02 && p.gate_mean < 0.4);
    rn_net_free(net);
    net = net_of("resnet8", RN_ORDER_ORIGINAL);
    assert_int_equal(rn_net_forward(net, x, 2, 0, NULL), RN_OK);
    assert_int_equal(rn_net_block_gates(net, 0, &t, &n), RN_ERR_ARG);
    rn_net_free(net);
}

static void backward_grads(rn_net *net, const float *x, const int *labels, int n, double *sq)
{
    rn_net_zero_grad(net);
    assert_int_equal(rn_net_forward(net, x, n, 0, NULL), RN_OK);
    assert_int_equal(rn_net_backward(net, labels, NULL), RN_OK);
    for (int b = 0; b <= rn_net_num_blocks(net); b++)
        assert_int_equal(rn_net_input_grad_sq(net, b, &sq[b]), RN_OK);
}

static void test_paths_and_input_grads(void **state)
{
    (void)state;
    float x[4 * IMG];
    int labels[4] = {0, 1, 2, 3};
    rn_test_fill_uniform(x, 4 * IMG, 5, -1.0f, 1.0f);
    rn_net *net = net_of("resnet14", RN_ORDER_FULL_PREACT);
    const int nb = rn_net_num_blocks(net);
    size_t np = rn_net_num_params(net);
    float *g0 = malloc(np * sizeof(float));
    double full[16], again[16], skip[16];
    /* not recording: an error; recording changes no gradient */
    assert_int_equal(rn_net_input_grad_sq(net, 0, full), RN_ERR_ARG);
    rn_net_zero_grad(net);
    assert_int_equal(rn_net_forward(net, x, 4, 0, NULL), RN_OK);
    assert_int_equal(rn_net_backward(net, labels, NULL), RN_OK);
    memcpy(g0, rn_net_grads(net), np * sizeof(float));
    assert_int_equal(rn_net_record_input_grads(net, 1), RN_OK);
    backward_grads(net, x, labels, 4, full);
    assert_memory_equal(g0, rn_net_grads(net), np * sizeof(float));
    for (int b = 0; b <= nb; b++) assert_true(full[b] > 0.0 && isfinite(full[b]));
    /* every branch on is the default */
    for (int b = 0; b < nb; b++) assert_int_equal(rn_net_set_block_grad_way(net, b, RN_GRAD_BOTH), RN_OK);
    backward_grads(net, x, labels, 4, again);
    assert_memory_equal(full, again, (size_t)(nb + 1) * sizeof(double));
    /* every branch off: full pre-activation has nothing after the addition, so across the
     * identity shortcuts of a stage the gradient passes unchanged (layer3.1 -> layer3.0) */
    for (int b = 0; b < nb; b++) assert_int_equal(rn_net_set_block_grad_way(net, b, RN_GRAD_SHORTCUT_ONLY), RN_OK);
    backward_grads(net, x, labels, 4, skip);
    assert_true(skip[nb] == full[nb]);
    assert_true(skip[nb - 1] == skip[nb]);
    assert_true(skip[nb - 2] != full[nb - 2]);
    /* and no branch parameter receives a gradient */
    rn_tensor_info w;
    assert_int_equal(rn_net_find_tensor(net, "layer2.1.conv1.weight", &w), RN_OK);
    assert_true(rn_test_max_abs(w.grad, w.numel) == 0.0);
    free(g0);
    rn_net_free(net);
}

/* The backward is linear in the gradient it carries, so for one block the gradient that reaches
 * the layers before it through both ways is the sum of branch-only and shortcut-only; its own
 * branch's parameters get their gradient from the branch alone, the layers after it see no
 * difference. For identity (layer1.1) and zero-padding (layer2.0) shortcuts, residual and
 * highway blocks. */
static void grads_with_way(rn_net *net, const float *x, const int *labels, int block, rn_grad_way way,
                           float *out)
{
    assert_int_equal(rn_net_set_block_grad_way(net, block, way), RN_OK);
    rn_net_zero_grad(net);
    assert_int_equal(rn_net_forward(net, x, 4, 0, NULL), RN_OK);
    assert_int_equal(rn_net_backward(net, labels, NULL), RN_OK);
    memcpy(out, rn_net_grads(net), rn_net_num_params(net) * sizeof(float));
    assert_int_equal(rn_net_set_block_grad_way(net, block, RN_GRAD_BOTH), RN_OK);
}

static size_t offset_of(rn_net *net, const char *name, size_t *numel)
{
    rn_tensor_info t;
    assert_int_equal(rn_net_find_tensor(net, name, &t), RN_OK);
    *numel = t.numel;
    return (size_t)(t.grad - rn_net_grads(net));
}

static void test_grad_ways_add_up(void **state)
{
    (void)state;
    float x[4 * IMG];
    int labels[4] = {4, 1, 2, 0};
    rn_test_fill_uniform(x, 4 * IMG, 9, -1.0f, 1.0f);
    const char *archs[2] = {"resnet14", "highway14"};
    const char *blocks[2] = {"layer1.1", "layer2.0"};
    for (int a = 0; a < 2; a++)
        for (int k = 0; k < 2; k++) {
            rn_net *net = net_of(archs[a], RN_ORDER_FULL_PREACT);
            const size_t np = rn_net_num_params(net);
            float *both = malloc(np * sizeof(float)), *br = malloc(np * sizeof(float));
            float *sc = malloc(np * sizeof(float));
            const int block = k == 0 ? 1 : 2;
            grads_with_way(net, x, labels, block, RN_GRAD_BOTH, both);
            grads_with_way(net, x, labels, block, RN_GRAD_BRANCH_ONLY, br);
            grads_with_way(net, x, labels, block, RN_GRAD_SHORTCUT_ONLY, sc);
            size_t n, at = offset_of(net, "conv1.weight", &n);
            double scale = rn_test_max_abs(both + at, n), worst = 0.0;
            assert_true(scale > 0.0);
            for (size_t i = at; i < at + n; i++) worst = fmax(worst, fabs(both[i] - br[i] - sc[i]));
            print_message("%s %s: stem gradient, both - (branch + shortcut): %.2e of %.2e\n", archs[a],
                          blocks[k], worst, scale);
            assert_true(worst <= 1e-5 * scale);
            /* neither way alone is the whole */
            assert_true(rn_test_max_abs(br + at, n) < 0.9999 * scale || rn_test_max_abs(sc + at, n) < 0.9999 * scale);
            char name[64];
            snprintf(name, sizeof name, "%s.conv2.weight", blocks[k]);
            at = offset_of(net, name, &n);
            assert_memory_equal(both + at, br + at, n * sizeof(float));
            assert_true(rn_test_max_abs(sc + at, n) == 0.0);
            at = offset_of(net, "layer3.1.conv2.weight", &n);
            assert_memory_equal(both + at, br + at, n * sizeof(float));
            assert_memory_equal(both + at, sc + at, n * sizeof(float));
            free(both), free(br), free(sc);
            rn_net_free(net);
        }
    /* a plain block has no shortcut to take alone */
    rn_net *plain = net_of("plain14", RN_ORDER_ORIGINAL);
    assert_int_equal(rn_net_set_block_grad_way(plain, 1, RN_GRAD_SHORTCUT_ONLY), RN_ERR_ARG);
    assert_int_equal(rn_net_set_block_grad_way(plain, 1, RN_GRAD_BRANCH_ONLY), RN_OK);
    assert_int_equal(rn_net_set_block_grad_way(plain, 1, (rn_grad_way)7), RN_ERR_ARG);
    rn_net_free(plain);
}

/* ---- stacks ----------------------------------------------------------------------------------- */
typedef struct {
    rn_net *net;
    const float *x;
    int n;
    size_t len;
} stack_ctx;

static double stack_loss(void *vctx)
{
    stack_ctx *c = vctx;
    const float *y;
    assert_int_equal(rn_stack_forward(c->net, c->x, c->n, 1, &y), RN_OK);
    double s = 0.0;
    for (size_t i = 0; i < c->len; i++) s += 0.5 * ((double)y[i] - c->x[i]) * ((double)y[i] - c->x[i]);
    return s;
}

static void check_stack(rn_stack_kind kind, int ordering)
{
    rn_net *net;
    assert_int_equal(rn_stack_create(&net, kind, 2, 4, 5, 5, ordering, 7), RN_OK);
    const int n = 3;
    const size_t len = (size_t)n * 4 * 5 * 5;
    float *x = malloc(len * sizeof(float)), *dy = malloc(len * sizeof(float));
    rn_test_fill_uniform(x, len, 11, 0.0f, 1.0f);
    const float *y;
    rn_net_zero_grad(net);
    assert_int_equal(rn_stack_forward(net, x, n, 1, &y), RN_OK);
    for (size_t i = 0; i < len; i++) dy[i] = y[i] - x[i];
    assert_int_equal(rn_net_record_input_grads(net, 1), RN_OK);
    assert_int_equal(rn_stack_backward(net, dy), RN_OK);
    /* the gradient recorded at the last block's output is dy itself; every block's input has one */
    double dy_sq = 0.0, sq;
    for (size_t i = 0; i < len; i++) dy_sq += (double)dy[i] * dy[i];
    assert_int_equal(rn_net_input_grad_sq(net, rn_net_num_blocks(net), &sq), RN_OK);
    assert_true(fabs(sq - dy_sq) <= 1e-6 * dy_sq);
    for (int b = 0; b < rn_net_num_blocks(net); b++) {
        assert_int_equal(rn_net_input_grad_sq(net, b, &sq), RN_OK);
        assert_true(isfinite(sq) && sq > 0.0);
    }
    float *grad = malloc(rn_net_num_params(net) * sizeof(float));
    memcpy(grad, rn_net_grads(net), rn_net_num_params(net) * sizeof(float));
    /* Along a random unit direction over all parameters (as test_blocks checks single
     * blocks): the analytic slope against central differences at three step sizes, the best
     * of them, relative to ||g|| / sqrt(n). Measured: about 1e-4 when right; dropping the
     * identity path from the stack's backward gives order 1. */
    stack_ctx c = {net, x, n, len};
    const size_t np = rn_net_num_params(net);
    float *v = malloc(np * sizeof(float)), *saved = malloc(np * sizeof(float));
    float *p = rn_net_params(net);
    rn_test_fill_normal(v, np, 5, 1.0f);
    double vn = 0, analytic = 0, gn = 0;
    for (size_t i = 0; i < np; i++) vn += (double)v[i] * v[i];
    for (size_t i = 0; i < np; i++) v[i] = (float)(v[i] / sqrt(vn));
    for (size_t i = 0; i < np; i++) analytic += (double)grad[i] * v[i], gn += (double)grad[i] * grad[i];
    memcpy(saved, p, np * sizeof(float));
    double best = INFINITY;
    static const double steps[] = {1e-3, 3e-4, 1e-4};
    for (int k = 0; k < 3; k++) {
        for (size_t i = 0; i < np; i++) p[i] = saved[i] + (float)steps[k] * v[i];
        double lp = stack_loss(&c);
        for (size_t i = 0; i < np; i++) p[i] = saved[i] - (float)steps[k] * v[i];
        double lm = stack_loss(&c);
        double err = fabs((lp - lm) / (2 * steps[k]) - analytic) / fmax(sqrt(gn / (double)np), 0.2);
        if (err < best) best = err;
    }
    memcpy(p, saved, np * sizeof(float));
    print_message("stack kind %d ordering %d: directional error %.2e\n", (int)kind, ordering, best);
    assert_true(best < 1e-2);
    free(v);
    free(saved);
    /* a classifier's forward refuses a stack */
    assert_int_equal(rn_net_forward(net, x, n, 0, NULL), RN_ERR_ARG);
    free(grad);
    free(x);
    free(dy);
    rn_net_free(net);
}

static void test_stack_gradients(void **state)
{
    (void)state;
    check_stack(RN_STACK_RESIDUAL, RN_ORDER_ORIGINAL);
    check_stack(RN_STACK_PLAIN, RN_ORDER_ORIGINAL);
    check_stack(RN_STACK_HIGHWAY, RN_ORDER_ORIGINAL);
    check_stack(RN_STACK_RESIDUAL, RN_ORDER_FULL_PREACT);
}

static void test_stack_zero_branches_identity(void **state)
{
    (void)state;
    rn_net *net;
    assert_int_equal(rn_stack_create(&net, RN_STACK_RESIDUAL, 3, 4, 6, 6, RN_ORDER_ORIGINAL, 1), RN_OK);
    for (int b = 0; b < 3; b++) {
        char name[32];
        snprintf(name, sizeof name, "layer1.%d.bn2", b);
        zero_branch(net, name);
    }
    float x[2 * 4 * 36];
    rn_test_fill_uniform(x, 2 * 4 * 36, 9, 0.0f, 1.0f);
    const float *y;
    assert_int_equal(rn_stack_forward(net, x, 2, 0, &y), RN_OK);
    assert_memory_equal(x, y, sizeof x);
    rn_net_free(net);
    assert_int_equal(rn_stack_create(&net, RN_STACK_RESIDUAL, 0, 4, 6, 6, 0, 1), RN_ERR_ARG);
}

static void test_probes_thread_independent(void **state)
{
    (void)state;
    float x[8 * IMG];
    rn_test_fill_uniform(x, 8 * IMG, 6, -1.0f, 1.0f);
    rn_block_probe p[2];
    for (int t = 1; t <= 2; t++) {
        omp_set_num_threads(t);
        rn_net *net = net_of("resnet14", RN_ORDER_ORIGINAL);
        assert_int_equal(rn_net_forward(net, x, 8, 1, NULL), RN_OK);
        assert_int_equal(rn_net_probe_block(net, 3, &p[t - 1]), RN_OK);
        rn_net_free(net);
    }
    assert_memory_equal(&p[0], &p[1], sizeof p[0]);
}

/* A model trained with stochastic depth evaluates with its branches scaled: the rate travels in
 * the file, so a model opened alone computes what the trained network computed. */
static void test_stochastic_depth_saved(void **state)
{
    (void)state;
    const char *path = rn_test_path("sd.safetensors");
    rn_net_options o;
    rn_net_options_init(&o);
    o.in_c = 3, o.in_h = 12, o.in_w = 12, o.classes = 5, o.survival_last = 0.5f;
    rn_net *net, *back;
    assert_int_equal(rn_net_create(&net, "resnet14", &o), RN_OK);
    assert_int_equal(rn_net_save(net, path), RN_OK);
    assert_int_equal(rn_net_open(&back, path, NULL, NULL), RN_OK);
    float x[2 * IMG], a[10];
    rn_test_fill_uniform(x, 2 * IMG, 8, -1.0f, 1.0f);
    assert_int_equal(rn_net_forward(net, x, 2, 0, a), RN_OK);
    assert_true(rn_test_same_logits(back, x, 2, a, 10));
    rn_unit_info u;
    assert_int_equal(rn_net_unit(back, rn_net_num_blocks(back), &u), RN_OK);
    assert_true(u.survival == 0.5f);
    rn_net_free(net);
    rn_net_free(back);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_zero_branch_is_identity),
        cmocka_unit_test(test_plain_blocks_delete_and_swap),
        cmocka_unit_test(test_gates_probe),
        cmocka_unit_test(test_paths_and_input_grads),
        cmocka_unit_test(test_grad_ways_add_up),
        cmocka_unit_test(test_stack_gradients),
        cmocka_unit_test(test_stack_zero_branches_identity),
        cmocka_unit_test(test_probes_thread_independent),
        cmocka_unit_test(test_stochastic_depth_saved),
    };
    return cmocka_run_group_tests(tests, rn_test_group_setup, rn_test_group_teardown);
}
