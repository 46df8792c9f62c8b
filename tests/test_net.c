#define _XOPEN_SOURCE 700 /* mkdtemp */
/* The public API: creation of every architecture, files (round trip, strict loading), errors,
 * determinism, training steps, stochastic depth and lesions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


#include "io/safetensors.h"
#include "resnet.h"
#include "support/check.h"
#include "support/logits.h"
#include "support/tmpdir.h"



static rn_net *small_net(const char *arch, uint64_t seed)
{
    rn_net_options o;
    rn_net_options_init(&o);
    o.in_c = 3, o.in_h = 16, o.in_w = 16;
    o.classes = 4;
    o.seed = seed;
    rn_net *net = NULL;
    assert_int_equal(rn_net_create(&net, arch, &o), RN_OK);
    return net;
}

static void test_every_architecture_builds(void **state)
{
    (void)state;
    const char *extra[] = {"wrn-16-4", "wrn-28-10", "plain50",   "preresnet11",   "resnet8",
                           "highway8", "resnet8-w32-s2", "plain20-w24", "highway8-s2"};
    const int n_extra = (int)(sizeof extra / sizeof extra[0]);
    const char *const *names = rn_arch_names();
    int count = 0;
    while (names[count]) count++;
    for (int i = 0; i < count + n_extra; i++) {
        const char *arch = i < count ? names[i] : extra[i - count];
        if (strchr(arch, 'D')) continue; /* the wrn-D-K pattern itself */
        rn_net *net;
        assert_int_equal(rn_net_create(&net, arch, NULL), RN_OK);
        /* the per-unit summary adds up to the totals */
        size_t params = 0;
        uint64_t macs = 0;
        for (int u = 0; u < rn_net_num_units(net); u++) {
            rn_unit_info info;
            assert_int_equal(rn_net_unit(net, u, &info), RN_OK);
            params += info.params;
            macs += info.macs;
        }
        assert_int_equal(params, rn_net_num_params(net));
        assert_int_equal(macs, rn_net_macs(net));
        rn_net_free(net);
    }
}

static void test_counts(void **state)
{
    (void)state;
    static const struct { const char *arch; int classes, in_hw; size_t params; int blocks; } cases[] = {
        {"resnet18", 1000, 224, 11689512, 8},   {"resnet34", 1000, 224, 21797672, 16},
        {"resnet50", 1000, 224, 25557032, 16},  {"resnet101", 1000, 224, 44549160, 33},
        {"resnet152", 1000, 224, 60192808, 50}, {"resnet20", 10, 32, 269722, 9},
        {"resnet56", 10, 32, 853018, 27},       {"resnet110", 10, 32, 1727962, 54},
        {"resnet1202", 10, 32, 19421274, 600},  {"preresnet164", 10, 32, 1703258, 54},
        {"preresnet1001", 10, 32, 10327706, 333}, {"wrn-28-10", 10, 32, 36479194, 12},
        {"resnet8-w32-s2", 10, 32, 298026, 3},  {"resnet20-s2", 10, 32, 269722, 9},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rn_net_options o;
        rn_net_options_init(&o);
        o.classes = cases[i].classes;
        o.in_c = 3, o.in_h = o.in_w = cases[i].in_hw;
        rn_net *net;
        assert_int_equal(rn_net_create(&net, cases[i].arch, &o), RN_OK);
        print_message("%-14s %zu parameters, %d blocks\n", cases[i].arch, rn_net_num_params(net),
                      rn_net_num_blocks(net));
        assert_int_equal(rn_net_num_params(net), cases[i].params);
        assert_int_equal(rn_net_num_blocks(net), cases[i].blocks);
        rn_net_free(net);
    }
}

static void test_bad_options(void **state)
{
    (void)state;
    rn_net *net = (rn_net *)1;
    assert_int_equal(rn_net_create(&net, "resnet21", NULL), RN_ERR_ARG);
    assert_null(net);
    assert_non_null(strstr(rn_last_error(), "resnet21"));
    assert_int_equal(rn_net_create(&net, "wrn-15-2", NULL), RN_ERR_ARG);
    /* variants: only of CIFAR depths, W >= 1, stride 1 or 2, in the order -w then -s */
    const char *bad[] = {"resnet8-", "resnet8-w0", "resnet8-s3", "resnet8-s2-w32", "resnet9-w16",
                         "resnet50-w16", "preresnet8-w32", "resnet8-w16x", "resnet8-s2-s2"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(rn_net_create(&net, bad[i], NULL), RN_ERR_ARG);
    rn_net_options o;
    rn_net_options_init(&o);
    o.in_c = RN_MAX_INPUT_CHANNELS + 1;
    assert_int_equal(rn_net_create(&net, "resnet18", &o), RN_ERR_ARG);
    /* sides whose squares would overflow the shapes' int arithmetic: refused before building */
    rn_net_options_init(&o);
    o.in_c = 1, o.in_h = RN_MAX_INPUT_SIDE + 1, o.in_w = 8;
    assert_int_equal(rn_net_create(&net, "resnet8-w2", &o), RN_ERR_ARG);
    assert_non_null(strstr(rn_last_error(), "at most 16384 on a side"));
    o.in_h = 8, o.in_w = 2147483647;
    assert_int_equal(rn_net_create(&net, "resnet8-w2", &o), RN_ERR_ARG);
    assert_null(net);
    rn_net_options_init(&o);
    o.survival_last = 0.0f;
    assert_int_equal(rn_net_create(&net, "resnet20", &o), RN_ERR_ARG);
    rn_ordering ord;
    assert_int_equal(rn_ordering_parse("full-preact", &ord), RN_OK);
    assert_int_equal(ord, RN_ORDER_FULL_PREACT);
    assert_int_equal(rn_ordering_parse("e", &ord), RN_OK);
    assert_int_equal(ord, RN_ORDER_FULL_PREACT);
    assert_int_equal(rn_ordering_parse("upside-down", &ord), RN_ERR_ARG);
    rn_shortcut sc;
    assert_int_equal(rn_shortcut_parse("b", &sc), RN_OK);
    assert_int_equal(sc, RN_SHORTCUT_B);
    assert_int_equal(rn_shortcut_parse("D", &sc), RN_ERR_ARG);
}

static void test_round_trip(void **state)
{
    (void)state;
    rn_net_options o;
    rn_net_options_init(&o);
    o.ordering = RN_ORDER_RELU_PREACT;
    o.shortcut = RN_SHORTCUT_C;
    o.classes = 3;
    o.in_c = 1, o.in_h = 20, o.in_w = 12;
    rn_net *net, *back;
    assert_int_equal(rn_net_create(&net, "resnet8", &o), RN_OK);
    const char *labels[] = {"cat", "dog", "\"quoted\" label"};
    float mean = 0.286f, std = 0.353f;
    assert_int_equal(rn_net_set_labels(net, labels, 3), RN_OK);
    assert_int_equal(rn_net_set_normalization(net, &mean, &std), RN_OK);
    /* some training so that BN statistics and counters are not at their init */
    float x[2 * 20 * 12];
    int y[2] = {0, 2};
    rn_test_fill_normal(x, 2 * 20 * 12, 3, 1.0f);
    assert_int_equal(rn_net_train_step(net, x, y, 2, NULL), RN_OK);

    const char *path = rn_test_path("round.safetensors");
    assert_int_equal(rn_net_save(net, path), RN_OK);
    assert_int_equal(rn_net_open(&back, path, NULL, NULL), RN_OK);
    assert_string_equal(rn_net_arch(back), "resnet8");
    rn_net_options ob;
    rn_net_get_options(back, &ob);
    assert_int_equal(ob.ordering, RN_ORDER_RELU_PREACT);
    assert_int_equal(ob.shortcut, RN_SHORTCUT_C);
    assert_int_equal(ob.classes, 3);
    assert_int_equal(ob.in_c, 1);
    assert_int_equal(ob.in_h, 20);
    assert_int_equal(ob.in_w, 12);
    assert_string_equal(rn_net_label(back, 2), "\"quoted\" label");
    assert_null(rn_net_label(back, 3));
    float m2, s2;
    assert_int_equal(rn_net_get_normalization(back, &m2, &s2), 1);
    assert_true(m2 == mean && s2 == std);
    assert_int_equal(rn_net_num_tensors(back), rn_net_num_tensors(net));
    for (int t = 0; t < rn_net_num_tensors(net); t++) {
        rn_tensor_info a, b;
        rn_net_tensor(net, t, &a);
        assert_int_equal(rn_net_find_tensor(back, a.name, &b), RN_OK);
        assert_int_equal(a.numel, b.numel);
        if (a.kind == RN_TENSOR_COUNTER) assert_int_equal(*a.i64, *b.i64);
        else assert_memory_equal(a.data, b.data, a.numel * sizeof(float));
    }
    /* the same logits, bit for bit */
    float la[6];
    assert_int_equal(rn_net_forward(net, x, 2, 0, la), RN_OK);
    assert_true(rn_test_same_logits(back, x, 2, la, 6));
    rn_net_free(back);
    rn_net_free(net);
}

/* Writes the tensors of `net` to path, with one of them altered by `how`. */
static void write_altered(rn_net *net, const char *path, const char *target, const char *how)
{
    rn_st_writer *w;
    assert_int_equal(rn_st_writer_create(&w), RN_OK);
    for (int t = 0; t < rn_net_num_tensors(net); t++) {
        rn_tensor_info ti;
        rn_net_tensor(net, t, &ti);
        int is_target = !strcmp(ti.name, target);
        if (is_target && !strcmp(how, "drop")) continue;
        int64_t shape[4];
        memcpy(shape, ti.shape, sizeof shape);
        int ndim = ti.ndim;
        if (is_target && !strcmp(how, "reshape")) shape[0] += 1;
        const void *data = ti.kind == RN_TENSOR_COUNTER ? (const void *)ti.i64 : (const void *)ti.data;
        const char *dtype = ti.kind == RN_TENSOR_COUNTER ? "I64" : "F32";
        float *bigger = NULL;
        if (is_target && !strcmp(how, "reshape")) {
            size_t numel = 1;
            for (int d = 0; d < ndim; d++) numel *= (size_t)shape[d];
            bigger = calloc(numel, sizeof(float));
            data = bigger;
        }
        if (is_target && !strcmp(how, "retype")) dtype = "F32"; /* a counter stored as float... */
        if (is_target && !strcmp(how, "retype") && ti.kind == RN_TENSOR_COUNTER) {
            static float zero[1];
            data = zero;
        }
        assert_int_equal(rn_st_writer_add(w, ti.name, dtype, ndim, shape, data), RN_OK);
        free(bigger);
    }
    if (!strcmp(how, "extra")) {
        int64_t shape[1] = {2};
        float v[2] = {1, 2};
        assert_int_equal(rn_st_writer_add(w, target, "F32", 1, shape, v), RN_OK);
    }
    assert_int_equal(rn_st_writer_meta(w, "arch", rn_net_arch(net)), RN_OK);
    assert_int_equal(rn_st_writer_save(w, path), RN_OK);
    rn_st_writer_free(w);
}

static void expect_refused(rn_net *net, const char *target, const char *how, const char *words)
{
    const char *path = rn_test_path("altered.safetensors");
    write_altered(net, path, target, how);
    rn_net *back = (rn_net *)1;
    int st = rn_net_open(&back, path, NULL, NULL);
    print_message("%s %s: %s\n", how, target, rn_last_error());
    assert_int_equal(st, RN_ERR_MISMATCH);
    assert_null(back);
    assert_non_null(strstr(rn_last_error(), target));
    assert_non_null(strstr(rn_last_error(), words));
    assert_non_null(strstr(rn_last_error(), "altered.safetensors"));
    /* rn_net_load refuses the same file and says the same */
    assert_int_equal(rn_net_load(net, path), RN_ERR_MISMATCH);
    assert_non_null(strstr(rn_last_error(), target));
    /* and leaves another network's weights as they were, none of them read */
    rn_net *other = small_net(rn_net_arch(net), 99);
    const size_t np = rn_net_num_params(other);
    float *before = malloc(np * sizeof(float));
    memcpy(before, rn_net_params(other), np * sizeof(float));
    assert_int_equal(rn_net_load(other, path), RN_ERR_MISMATCH);
    assert_memory_equal(before, rn_net_params(other), np * sizeof(float));
    free(before);
    rn_net_free(other);
}

static void test_strict_loading(void **state)
{
    (void)state;
    rn_net *net = small_net("resnet8", 1);
    expect_refused(net, "layer2.0.conv1.weight", "drop", "missing");
    expect_refused(net, "layer9.0.conv1.weight", "extra", "unexpected");
    expect_refused(net, "layer1.0.conv1.weight", "reshape", "shape");
    expect_refused(net, "layer1.0.bn1.num_batches_tracked", "retype", "F32");
    rn_net_free(net);
}

static void test_torchvision_style_file(void **state)
{
    (void)state;
    /* a state_dict without metadata: needs the architecture; classes come from fc.weight */
    rn_net *net = small_net("resnet8", 2);
    rn_st_writer *w;
    assert_int_equal(rn_st_writer_create(&w), RN_OK);
    for (int t = 0; t < rn_net_num_tensors(net); t++) {
        rn_tensor_info ti;
        rn_net_tensor(net, t, &ti);
        assert_int_equal(rn_st_writer_add(w, ti.name, ti.kind == RN_TENSOR_COUNTER ? "I64" : "F32", ti.ndim,
                                          ti.shape, ti.kind == RN_TENSOR_COUNTER ? (void *)ti.i64 : (void *)ti.data),
                         RN_OK);
    }
    const char *path = rn_test_path("plain_state_dict.safetensors");
    assert_int_equal(rn_st_writer_save(w, path), RN_OK);
    rn_st_writer_free(w);
    rn_net *back;
    assert_int_equal(rn_net_open(&back, path, NULL, NULL), RN_ERR_FORMAT);
    assert_non_null(strstr(rn_last_error(), "--arch"));
    rn_net_options o;
    rn_net_options_init(&o);
    o.in_c = 3, o.in_h = 16, o.in_w = 16;
    assert_int_equal(rn_net_open(&back, path, "resnet8", &o), RN_OK);
    rn_net_options got;
    rn_net_get_options(back, &got);
    assert_int_equal(got.classes, 4);
    rn_net_free(back);
    rn_net_free(net);
}

static void test_errors_at_run_time(void **state)
{
    (void)state;
    rn_net *net = small_net("resnet8", 1);
    float x[2 * 3 * 16 * 16];
    rn_test_fill_normal(x, sizeof x / sizeof x[0], 1, 1.0f);
    int labels[2] = {0, 4};
    assert_int_equal(rn_net_backward(net, labels, NULL), RN_ERR_ARG); /* no forward yet */
    assert_int_equal(rn_net_forward(net, x, 0, 0, NULL), RN_ERR_ARG);
    assert_int_equal(rn_net_train_step(net, x, labels, 2, NULL), RN_ERR_ARG); /* label 4 of 4 classes */
    assert_non_null(strstr(rn_last_error(), "label 4"));
    assert_int_equal(rn_net_set_block_deleted(net, 3, 1), RN_ERR_ARG);
    assert_int_equal(rn_net_set_block_survival(net, 0, 1.5f), RN_ERR_ARG);
    rn_net_free(net);
    net = small_net("plain8", 1);
    /* a plain block can be deleted only where its input may go on unchanged */
    assert_int_equal(rn_net_set_block_deleted(net, 0, 1), RN_OK);
    assert_int_equal(rn_net_set_block_deleted(net, 1, 1), RN_ERR_ARG);
    assert_non_null(strstr(rn_last_error(), "plain block that changes the shape"));
    rn_net_free(net);
    rn_net *none = (rn_net *)1;
    assert_int_equal(rn_net_open(&none, rn_test_path("does-not-exist.safetensors"), NULL, NULL), RN_ERR_IO);
    assert_null(none);
    assert_non_null(strstr(rn_last_error(), "does-not-exist.safetensors"));
}

static void test_deterministic(void **state)
{
    (void)state;
    rn_net *a = small_net("preresnet11", 9), *b = small_net("preresnet11", 9), *c = small_net("preresnet11", 10);
    assert_memory_equal(rn_net_params(a), rn_net_params(b), rn_net_num_params(a) * sizeof(float));
    assert_memory_not_equal(rn_net_params(a), rn_net_params(c), rn_net_num_params(a) * sizeof(float));
    float x[4 * 3 * 16 * 16];
    int y[4] = {0, 1, 2, 3};
    rn_test_fill_normal(x, sizeof x / sizeof x[0], 4, 1.0f);
    float la, lb;
    assert_int_equal(rn_net_train_step(a, x, y, 4, &la), RN_OK);
    assert_int_equal(rn_net_train_step(b, x, y, 4, &lb), RN_OK);
    assert_true(la == lb);
    assert_memory_equal(rn_net_grads(a), rn_net_grads(b), rn_net_num_params(a) * sizeof(float));
    rn_net_free(a);
    rn_net_free(b);
    rn_net_free(c);
}

/* Two training steps (forward, backward, SGD) with 1, 2 and 3 threads (rn_set_threads): the same bits. The
 * kernels split work by images, channels or fixed groups, never by thread count, so a run may
 * resume with another thread count. Batch 20: more than one weight-gradient group of 8. */
static void test_thread_count_independent(void **state)
{
    (void)state;
    const char *archs[] = {"resnet8", "preresnet11"};
    enum { N = 20 };
    static float x[N * 3 * 16 * 16];
    int y[N];
    for (int i = 0; i < N; i++) y[i] = i % 4;
    rn_test_fill_normal(x, sizeof x / sizeof x[0], 21, 1.0f);
    const int saved = rn_threads();
    assert_int_equal(rn_set_threads(0), RN_ERR_ARG);
    assert_int_equal(rn_threads(), saved);
    for (int a = 0; a < 4; a++) { /* each planar, then on blocks (rn_net_set_blocked) */
        float *first = NULL;
        float first_loss = 0;
        for (int t = 1; t <= 3; t++) {
            assert_int_equal(rn_set_threads(t), RN_OK);
            assert_int_equal(rn_threads(), t);
            rn_net *net = small_net(archs[a % 2], 3);
            assert_int_equal(rn_net_set_blocked(net, a >= 2), RN_OK);
            rn_sgd *opt;
            assert_int_equal(rn_sgd_create(&opt, net, 0.9f, 5e-4f, 0), RN_OK);
            float loss = 0;
            for (int step = 0; step < 2; step++) {
                assert_int_equal(rn_net_train_step(net, x, y, N, &loss), RN_OK);
                assert_int_equal(rn_sgd_step(opt, net, 0.1f), RN_OK);
            }
            const size_t bytes = rn_net_num_params(net) * sizeof(float);
            if (t == 1) {
                first = malloc(bytes);
                assert_non_null(first);
                memcpy(first, rn_net_params(net), bytes);
                first_loss = loss;
            } else {
                assert_true(loss == first_loss);
                assert_memory_equal(rn_net_params(net), first, bytes);
            }
            rn_sgd_free(opt);
            rn_net_free(net);
        }
        free(first);
    }
    assert_int_equal(rn_set_threads(saved), RN_OK);
}

static void test_sgd_learns_a_batch(void **state)
{
    (void)state;
    rn_net *net = small_net("resnet8", 5);
    rn_sgd *opt;
    assert_int_equal(rn_sgd_create(&opt, net, 0.9f, 5e-4f, 0), RN_OK);
    float x[8 * 3 * 16 * 16];
    int y[8] = {0, 1, 2, 3, 0, 1, 2, 3};
    rn_test_fill_normal(x, sizeof x / sizeof x[0], 8, 1.0f);
    float first = 0, loss = 0;
    for (int step = 0; step < 30; step++) {
        assert_int_equal(rn_net_train_step(net, x, y, 8, &loss), RN_OK);
        if (step == 0) first = loss;
        assert_int_equal(rn_sgd_step(opt, net, 0.05f), RN_OK);
    }
    print_message("loss %.4f -> %.4f after 30 steps\n", first, loss);
    assert_true(loss < 0.2f * first);
    rn_sgd_free(opt);
    rn_net_free(net);
}

static void test_stochastic_depth_and_lesions(void **state)
{
    (void)state;
    rn_net_options o;
    rn_net_options_init(&o);
    o.in_c = 3, o.in_h = 16, o.in_w = 16;
    o.classes = 4;
    o.survival_last = 0.5f;
    rn_net *net;
    assert_int_equal(rn_net_create(&net, "resnet14", &o), RN_OK);
    /* linear rule: block l of L survives with 1 - l/L * 0.5 */
    rn_unit_info u;
    rn_net_unit(net, 1, &u);
    assert_true(fabsf(u.survival - (1.0f - 0.5f / 6.0f)) < 1e-6f);
    rn_net_unit(net, 6, &u);
    assert_true(fabsf(u.survival - 0.5f) < 1e-6f);

    float x[2 * 3 * 16 * 16], l1[8], l2[8], l3[8];
    rn_test_fill_normal(x, sizeof x / sizeof x[0], 8, 1.0f);
    /* training draws a new set of blocks each time */
    int differ = 0;
    for (int i = 0; i < 10 && !differ; i++) {
        assert_int_equal(rn_net_forward(net, x, 2, 1, l2), RN_OK);
        assert_int_equal(rn_net_forward(net, x, 2, 1, l3), RN_OK);
        differ = memcmp(l2, l3, sizeof l2) != 0;
    }
    assert_true(differ);
    /* evaluation is deterministic (and, training done, running statistics stay put) */
    assert_int_equal(rn_net_forward(net, x, 2, 0, l1), RN_OK);
    assert_true(rn_test_same_logits(net, x, 2, l1, 8));
    /* deleting a block changes the test-time output; restoring it restores the output */
    assert_int_equal(rn_net_set_block_deleted(net, 2, 1), RN_OK);
    assert_false(rn_test_same_logits(net, x, 2, l1, 8));
    assert_int_equal(rn_net_set_block_deleted(net, 2, 0), RN_OK);
    assert_true(rn_test_same_logits(net, x, 2, l1, 8));
    rn_net_free(net);
}

static void test_zero_init_last_bn(void **state)
{
    (void)state;
    /* every residual branch starts at F = 0: each block is the identity (or its shortcut) */
    for (int ord = 0; ord < 5; ord++) {
        rn_net_options o;
        rn_net_options_init(&o);
        o.in_c = 3, o.in_h = 16, o.in_w = 16;
        o.ordering = ord;
        o.zero_init_last_bn = 1;
        rn_net *net, *lesioned;
        assert_int_equal(rn_net_create(&net, "resnet14", &o), RN_OK);
        assert_int_equal(rn_net_create(&lesioned, "resnet14", &o), RN_OK);
        for (int b = 0; b < rn_net_num_blocks(net); b++) rn_net_set_block_deleted(lesioned, b, 1);
        float x[2 * 3 * 16 * 16], la[20], lb[20];
        rn_test_fill_normal(x, sizeof x / sizeof x[0], 8, 1.0f);
        assert_int_equal(rn_net_forward(net, x, 2, 0, la), RN_OK);
        assert_int_equal(rn_net_forward(lesioned, x, 2, 0, lb), RN_OK);
        assert_true(rn_test_rel_err(la, lb, 20) < 1e-6);
        rn_net_free(net);
        rn_net_free(lesioned);
    }
}



/* Gives every BN weight, bias and running statistic a value far from its initial one, so
 * that folding them into the convolutions is put to the test. */
static void scramble_bns(rn_net *net, uint64_t seed)
{
    for (int i = 0; i < rn_net_num_tensors(net); i++) {
        rn_tensor_info t;
        rn_net_tensor(net, i, &t);
        if (t.ndim != 1 || !t.data || strstr(t.name, "fc.")) continue;
        rn_test_fill_uniform(t.data, t.numel, seed + (uint64_t)i, 0.5f, 1.5f);
        if (strstr(t.name, "bias") || strstr(t.name, "running_mean"))
            for (size_t j = 0; j < t.numel; j++) t.data[j] -= 1.0f;
    }
}

/* A frozen network (BN folded into the convolutions, weights packed once) computes the
 * evaluation forward's logits to float rounding, for every kind of block, ordering and
 * shortcut, at batch sizes whose convolutions pack differently; it refuses to train, and
 * unfreezing or loading new weights gives the plain forward's results again. */
static void test_freeze(void **state)
{
    (void)state;
    static const struct {
        const char *arch;
        int ordering, shortcut, in_hw;
    } nets[] = {
        {"resnet8", RN_ORDER_ORIGINAL, RN_SHORTCUT_A, 16},
        {"resnet8", RN_ORDER_BN_AFTER_ADD, RN_SHORTCUT_B, 16},
        {"resnet8", RN_ORDER_RELU_BEFORE_ADD, RN_SHORTCUT_C, 16},
        {"resnet8", RN_ORDER_RELU_PREACT, RN_SHORTCUT_B, 16},
        {"resnet8", RN_ORDER_FULL_PREACT, RN_SHORTCUT_C, 16},
        {"resnet8-w32-s2", RN_ORDER_ORIGINAL, RN_SHORTCUT_A, 16},
        {"plain20-w24", RN_ORDER_ORIGINAL, RN_SHORTCUT_A, 16},
        {"highway8", RN_ORDER_ORIGINAL, RN_SHORTCUT_A, 16},
        {"preresnet11", RN_ORDER_FULL_PREACT, RN_SHORTCUT_B, 16},
        {"resnet18", RN_ORDER_ORIGINAL, RN_SHORTCUT_B, 32},
        {"resnet50", RN_ORDER_ORIGINAL, RN_SHORTCUT_B, 32},
    };
    for (size_t a = 0; a < sizeof nets / sizeof nets[0]; a++) {
        rn_net_options o;
        rn_net_options_init(&o);
        o.in_c = 3, o.in_h = o.in_w = nets[a].in_hw;
        o.classes = 5;
        o.ordering = nets[a].ordering;
        o.shortcut = nets[a].shortcut;
        rn_net *net;
        assert_int_equal(rn_net_create(&net, nets[a].arch, &o), RN_OK);
        scramble_bns(net, 40 + a);
        const int n = 9;
        const size_t image = (size_t)3 * o.in_h * o.in_w;
        float *x = malloc(n * image * sizeof(float));
        float ref[9 * 5], got[9 * 5], again[9 * 5], one[5];
        rn_test_fill_normal(x, n * image, 7 + a, 1.0f);
        assert_int_equal(rn_net_forward(net, x, n, 0, ref), RN_OK);
        assert_int_equal(rn_net_freeze(net, 1), RN_OK);
        assert_true(rn_net_frozen(net));
        assert_int_equal(rn_net_forward(net, x, n, 0, got), RN_OK);
        double err = rn_test_rel_err(got, ref, n * 5);
        print_message("%-14s %-16s %s: frozen vs plain %.2e\n", nets[a].arch,
                      rn_ordering_name(nets[a].ordering), rn_shortcut_name(nets[a].shortcut), err);
        assert_true(err < 1e-5);
        /* one image (other packings), then the batch again (packed back) */
        assert_int_equal(rn_net_forward(net, x, 1, 0, one), RN_OK);
        assert_true(rn_test_rel_err(one, ref, 5) < 1e-5);
        assert_int_equal(rn_net_forward(net, x, n, 0, again), RN_OK);
        assert_memory_equal(again, got, sizeof got);
        /* no training while frozen */
        int labels[9] = {0};
        assert_int_equal(rn_net_forward(net, x, n, 1, NULL), RN_ERR_ARG);
        assert_int_equal(rn_net_backward(net, labels, NULL), RN_ERR_ARG);
        rn_sgd *opt;
        assert_int_equal(rn_sgd_create(&opt, net, 0.9f, 0.0f, 0), RN_OK);
        assert_int_equal(rn_sgd_step(opt, net, 0.1f), RN_ERR_ARG);
        rn_sgd_free(opt);
        /* unfrozen: the plain forward's bits again */
        assert_int_equal(rn_net_freeze(net, 0), RN_OK);
        assert_false(rn_net_frozen(net));
        assert_true(rn_test_same_logits(net, x, n, ref, n * 5));
        free(x);
        rn_net_free(net);
    }
}

/* Training on blocks (rn_net_set_blocked) against the planar run of the same network: the
 * training forward's logits and loss, every parameter gradient, the BN running statistics,
 * then the evaluation forward after an SGD step on each; every ordering and shortcut, highway
 * and plain blocks, the ImageNet stem with max pooling, one input channel (measured worst,
 * AVX-512: logits 4.3e-6, gradients 5.1e-6). A ReLU input within rounding of zero can fall on the other side
 * in one layout than in the other and move every gradient upstream by up to 3e-2 (resnet50
 * here): test_parity holds both layouts against PyTorch with that allowance
 * (RN_PARITY_LAYOUT=blocked), so this test keeps to networks where no such flip occurs.
 * test_thread_count_independent runs the blocked ones on 1, 2 and 3 threads. */
static void test_blocked_training(void **state)
{
    (void)state;
    static const struct {
        const char *arch;
        int ordering, shortcut, in_c, in_hw;
    } nets[] = {
        {"resnet8", RN_ORDER_ORIGINAL, RN_SHORTCUT_A, 3, 16},
        {"resnet8", RN_ORDER_BN_AFTER_ADD, RN_SHORTCUT_B, 3, 16},
        {"resnet8", RN_ORDER_RELU_BEFORE_ADD, RN_SHORTCUT_C, 3, 16},
        {"resnet8", RN_ORDER_RELU_PREACT, RN_SHORTCUT_B, 3, 16},
        {"resnet8", RN_ORDER_FULL_PREACT, RN_SHORTCUT_C, 3, 16},
        {"resnet8-w32-s2", RN_ORDER_ORIGINAL, RN_SHORTCUT_A, 1, 14},
        {"resnet8", RN_ORDER_ORIGINAL, RN_SHORTCUT_A, 1, 28}, /* 28, 14, 7: odd maps */
        {"plain20-w24", RN_ORDER_ORIGINAL, RN_SHORTCUT_A, 3, 12},
        {"highway8", RN_ORDER_ORIGINAL, RN_SHORTCUT_A, 3, 16},
        {"preresnet11", RN_ORDER_FULL_PREACT, RN_SHORTCUT_B, 3, 16},
        {"resnet18", RN_ORDER_ORIGINAL, RN_SHORTCUT_B, 3, 64},
    };
    for (size_t a = 0; a < sizeof nets / sizeof nets[0]; a++) {
        rn_net_options o;
        rn_net_options_init(&o);
        o.in_c = nets[a].in_c, o.in_h = o.in_w = nets[a].in_hw;
        o.classes = 5;
        o.ordering = nets[a].ordering;
        o.shortcut = nets[a].shortcut;
        rn_net *net[2];
        for (int b = 0; b < 2; b++) assert_int_equal(rn_net_create(&net[b], nets[a].arch, &o), RN_OK);
        assert_int_equal(rn_net_set_blocked(net[1], 1), RN_OK);
        assert_true(rn_net_blocked(net[1]));
        const int n = 6, labels[6] = {0, 1, 2, 3, 4, 1};
        const size_t image = (size_t)o.in_c * o.in_h * o.in_w, np = rn_net_num_params(net[0]);
        float *x = malloc(n * image * sizeof(float)), logits[2][6 * 5], loss[2];
        rn_test_fill_normal(x, n * image, 17 + a, 1.0f);
        for (int b = 0; b < 2; b++) {
            rn_net_zero_grad(net[b]);
            assert_int_equal(rn_net_forward(net[b], x, n, 1, logits[b]), RN_OK);
            assert_int_equal(rn_net_backward(net[b], labels, &loss[b]), RN_OK);
        }
        const double el = rn_test_rel_err(logits[1], logits[0], n * 5);
        const double eg = rn_test_rel_err(rn_net_grads(net[1]), rn_net_grads(net[0]), np);
        double ebuf = 0;
        for (int i = 0; i < rn_net_num_tensors(net[0]); i++) {
            rn_tensor_info t0, t1;
            rn_net_tensor(net[0], i, &t0);
            rn_net_tensor(net[1], i, &t1);
            if (t0.kind == RN_TENSOR_BUFFER) ebuf = fmax(ebuf, rn_test_rel_err(t1.data, t0.data, t0.numel));
        }
        /* an SGD step on each, then the evaluation forward */
        float eval[2][6 * 5];
        for (int b = 0; b < 2; b++) {
            rn_sgd *opt;
            assert_int_equal(rn_sgd_create(&opt, net[b], 0.9f, 1e-4f, 0), RN_OK);
            assert_int_equal(rn_sgd_step(opt, net[b], 0.05f), RN_OK);
            rn_sgd_free(opt);
            assert_int_equal(rn_net_forward(net[b], x, n, 0, eval[b]), RN_OK);
        }
        const double ee = rn_test_rel_err(eval[1], eval[0], n * 5);
        print_message("%-14s %-16s %s: blocked vs planar: logits %.1e, loss %.1e, gradients %.1e, "
                      "BN statistics %.1e, evaluation after a step %.1e\n", nets[a].arch,
                      rn_ordering_name(nets[a].ordering), rn_shortcut_name(nets[a].shortcut), el,
                      fabs(loss[1] - loss[0]) / loss[0], eg, ebuf, ee);
        assert_true(el < 1e-5 && fabs(loss[1] - loss[0]) < 1e-5 * loss[0]);
        assert_true(eg < 1e-4 && ebuf < 1e-5 && ee < 1e-4);
        /* the probes need the planar layout */
        rn_block_probe pr;
        assert_int_equal(rn_net_probe_block(net[1], 0, &pr), RN_ERR_ARG);
        free(x);
        for (int b = 0; b < 2; b++) rn_net_free(net[b]);
    }
}

/* A block's backward applies the gradient of the ReLU that ends the block before it in its
 * own last pass (rn_block_backward's mask_input), except where the gradients between blocks
 * are recorded (rn_net_record_input_grads), which need them unmasked: the same bits either
 * way, planar and on blocks, for every kind of block end (a ReLU after the addition, BN then
 * ReLU after it, plain and highway blocks, projections, the ImageNet stem). */
static void test_block_backward_masks_same_bits(void **state)
{
    (void)state;
    static const struct {
        const char *arch;
        int ordering, shortcut;
    } nets[] = {
        {"resnet8", RN_ORDER_ORIGINAL, RN_SHORTCUT_A},
        {"resnet8", RN_ORDER_BN_AFTER_ADD, RN_SHORTCUT_B},
        {"resnet8", RN_ORDER_RELU_BEFORE_ADD, RN_SHORTCUT_C},
        {"plain20-w24", RN_ORDER_ORIGINAL, RN_SHORTCUT_A},
        {"highway8", RN_ORDER_ORIGINAL, RN_SHORTCUT_A},
        {"resnet18", RN_ORDER_ORIGINAL, RN_SHORTCUT_B},
    };
    for (size_t a = 0; a < sizeof nets / sizeof nets[0]; a++)
        for (int blocked = 0; blocked <= 1; blocked++) {
            rn_net_options o;
            rn_net_options_init(&o);
            o.in_c = 3, o.in_h = o.in_w = 16;
            o.classes = 5;
            o.ordering = nets[a].ordering;
            o.shortcut = nets[a].shortcut;
            rn_net *net[2];
            const int n = 4, labels[4] = {0, 1, 2, 3};
            float *x = malloc((size_t)n * 3 * 16 * 16 * sizeof(float));
            rn_test_fill_normal(x, (size_t)n * 3 * 16 * 16, 31 + a, 1.0f);
            for (int b = 0; b < 2; b++) {
                assert_int_equal(rn_net_create(&net[b], nets[a].arch, &o), RN_OK);
                assert_int_equal(rn_net_set_blocked(net[b], blocked), RN_OK);
                assert_int_equal(rn_net_record_input_grads(net[b], b), RN_OK);
                rn_net_zero_grad(net[b]);
                assert_int_equal(rn_net_forward(net[b], x, n, 1, NULL), RN_OK);
                assert_int_equal(rn_net_backward(net[b], labels, NULL), RN_OK);
            }
            assert_memory_equal(rn_net_grads(net[0]), rn_net_grads(net[1]),
                                rn_net_num_params(net[0]) * sizeof(float));
            free(x);
            for (int b = 0; b < 2; b++) rn_net_free(net[b]);
        }
}

/* Test-time stochastic depth (branches scaled by their survival) and deleted blocks (the
 * branch skipped, the shortcut alone) on a frozen network. */
static void test_freeze_depth_and_lesions(void **state)
{
    (void)state;
    rn_net_options o;
    rn_net_options_init(&o);
    o.in_c = 3, o.in_h = o.in_w = 16;
    o.classes = 4;
    o.survival_last = 0.5f;
    const char *archs[] = {"resnet14", "preresnet11"};
    for (int a = 0; a < 2; a++) {
        rn_net *net;
        assert_int_equal(rn_net_create(&net, archs[a], &o), RN_OK);
        scramble_bns(net, 60 + a);
        float x[3 * 3 * 16 * 16], ref[3 * 4], got[3 * 4];
        rn_test_fill_normal(x, sizeof x / sizeof x[0], 9, 1.0f);
        for (int deleted = 0; deleted < 2; deleted++) {
            assert_int_equal(rn_net_set_block_deleted(net, 1, deleted), RN_OK);
            assert_int_equal(rn_net_forward(net, x, 3, 0, ref), RN_OK);
            assert_int_equal(rn_net_freeze(net, 1), RN_OK);
            assert_int_equal(rn_net_forward(net, x, 3, 0, got), RN_OK);
            assert_int_equal(rn_net_freeze(net, 0), RN_OK);
            assert_true(rn_test_rel_err(got, ref, 12) < 1e-5);
        }
        rn_net_free(net);
    }
}

/* rn_net_load into a frozen network folds the loaded weights, not the old ones. */
static void test_freeze_then_load(void **state)
{
    (void)state;
    rn_net *a = small_net("resnet8", 1), *b = small_net("resnet8", 2);
    scramble_bns(a, 11);
    assert_int_equal(rn_net_save(a, rn_test_path("frozen.safetensors")), RN_OK);
    float x[4 * 3 * 16 * 16], ref[4 * 4], got[4 * 4];
    rn_test_fill_normal(x, sizeof x / sizeof x[0], 3, 1.0f);
    assert_int_equal(rn_net_forward(a, x, 4, 0, ref), RN_OK);
    assert_int_equal(rn_net_freeze(b, 1), RN_OK);
    assert_int_equal(rn_net_forward(b, x, 4, 0, got), RN_OK);
    assert_true(rn_test_rel_err(got, ref, 16) > 1e-2); /* another network so far */
    assert_int_equal(rn_net_load(b, rn_test_path("frozen.safetensors")), RN_OK);
    assert_true(rn_net_frozen(b));
    assert_int_equal(rn_net_forward(b, x, 4, 0, got), RN_OK);
    assert_true(rn_test_rel_err(got, ref, 16) < 1e-5);
    rn_net_free(a);
    rn_net_free(b);
}

/* rn_net_profile_convs: every convolution of a frozen forward timed, once a forward; nothing
 * counted while off or unfrozen; zeroed when turned on again. */
static void test_profile_convs(void **state)
{
    (void)state;
    rn_net *net = small_net("resnet8", 1);
    float x[2 * 3 * 16 * 16], logits[2 * 4];
    rn_test_fill_normal(x, sizeof x / sizeof x[0], 5, 1.0f);
    const int n = rn_net_num_convs(net);
    double s;
    long calls;
    assert_int_equal(rn_net_profile_convs(net, 1), RN_OK);
    assert_int_equal(rn_net_forward(net, x, 2, 0, logits), RN_OK); /* not frozen: not timed */
    assert_int_equal(rn_net_freeze(net, 1), RN_OK);
    for (int f = 0; f < 2; f++) assert_int_equal(rn_net_forward(net, x, 2, 0, logits), RN_OK);
    assert_int_equal(rn_net_profile_convs(net, 0), RN_OK);
    assert_int_equal(rn_net_forward(net, x, 2, 0, logits), RN_OK);
    for (int i = 0; i < n; i++) {
        assert_int_equal(rn_net_conv_time(net, i, &s, &calls), RN_OK);
        assert_int_equal(calls, 2);
        assert_true(s > 0.0 && s < 10.0);
    }
    assert_int_equal(rn_net_conv_time(net, n, &s, &calls), RN_ERR_ARG);
    assert_int_equal(rn_net_conv_time(net, -1, &s, &calls), RN_ERR_ARG);
    assert_int_equal(rn_net_profile_convs(net, 1), RN_OK);
    assert_int_equal(rn_net_conv_time(net, 0, &s, &calls), RN_OK);
    assert_true(s == 0.0 && calls == 0);
    rn_net_free(net);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_architecture_builds),
        cmocka_unit_test(test_counts),
        cmocka_unit_test(test_bad_options),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_strict_loading),
        cmocka_unit_test(test_torchvision_style_file),
        cmocka_unit_test(test_errors_at_run_time),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_thread_count_independent),
        cmocka_unit_test(test_sgd_learns_a_batch),
        cmocka_unit_test(test_stochastic_depth_and_lesions),
        cmocka_unit_test(test_zero_init_last_bn),
        cmocka_unit_test(test_freeze),
        cmocka_unit_test(test_freeze_then_load),
        cmocka_unit_test(test_freeze_depth_and_lesions),
        cmocka_unit_test(test_profile_convs),
        cmocka_unit_test(test_blocked_training),
        cmocka_unit_test(test_block_backward_masks_same_bits),
    };
    return cmocka_run_group_tests(tests, rn_test_group_setup, rn_test_group_teardown);
}
