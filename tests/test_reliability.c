#define _GNU_SOURCE /* mallopt's M_PERTURB */
/* Failure paths: allocations that fail (under an address-space limit, so that they fail on any
 * machine and overcommit policy), a failed forward, configuration files with wrong fields, and
 * model files that belong to another network. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "io/safetensors.h"
#include "kernels/kernels.h"
#include "resnet.h"
#include "support/check.h"
#include "support/tmpdir.h"
#include "train/dataset.h"
#include "train/loader.h"
#include "train/trainer.h"

/* Under AddressSanitizer an allocation beyond the limit must come back NULL, as from glibc,
 * rather than end the program. */
__attribute__((visibility("default"), used)) const char *__asan_default_options(void)
{
    return "allocator_may_return_null=1";
}



/* ---- an address-space limit: the process may map only `headroom` more bytes --------------- */
static struct rlimit saved_limit;

static void limit_memory(size_t headroom)
{
    FILE *f = fopen("/proc/self/status", "r");
    assert_non_null(f);
    char line[256];
    unsigned long long vm_kib = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmSize: %llu kB", &vm_kib) == 1) break;
    fclose(f);
    assert_true(vm_kib > 0);
    assert_int_equal(getrlimit(RLIMIT_AS, &saved_limit), 0);
    struct rlimit r = saved_limit;
    r.rlim_cur = (rlim_t)(vm_kib * 1024 + headroom);
    if (saved_limit.rlim_max != RLIM_INFINITY && r.rlim_cur > saved_limit.rlim_max)
        skip(); /* the machine's own limit is already tighter */
    assert_int_equal(setrlimit(RLIMIT_AS, &r), 0);
}

static void unlimit_memory(void) { assert_int_equal(setrlimit(RLIMIT_AS, &saved_limit), 0); }

static rn_net *small_net(const char *arch, rn_ordering ordering, rn_shortcut shortcut)
{
    rn_net_options o;
    rn_net_options_init(&o);
    o.in_c = 3, o.in_h = 16, o.in_w = 16;
    o.classes = 4;
    o.seed = 5;
    o.ordering = ordering;
    o.shortcut = shortcut;
    rn_net *net = NULL;
    if (rn_net_create(&net, arch, &o)) fail_msg("%s: %s", arch, rn_last_error());
    return net;
}

#define IMAGE (3 * 16 * 16)

/* ---- the loader's out-of-memory path --------------------------------------------------- */
/* rn_loader_create, refused for memory, names the slots and the batch, read before the loader
 * is freed. glibc fills freed memory with the M_PERTURB byte once the thread cache of that
 * size is full (filled here first), so a read after the free shows in the message even
 * without AddressSanitizer (which reports the read itself). */
static void test_loader_out_of_memory(void **state)
{
    (void)state;
    rn_dataset *d = NULL;
    assert_int_equal(rn_dataset_create(&d, 4, 1, 8, 8, 2), RN_OK);
    rn_loader_options lo;
    rn_loader_options_init(&lo, 1);
    lo.batch = 5000000; /* 3 slots of 5M images of 64 floats: 3.8 GB */
    lo.prefetch = 2;
    void *fill[64][7];
    for (int s = 0; s < 64; s++)
        for (int i = 0; i < 7; i++) fill[s][i] = malloc((size_t)s * 16 + 8);
    for (int s = 0; s < 64; s++)
        for (int i = 0; i < 7; i++) free(fill[s][i]);
    mallopt(M_PERTURB, 0x5a);
    limit_memory((size_t)64 << 20);
    rn_loader *l = NULL;
    int st = rn_loader_create(&l, d, &lo);
    unlimit_memory();
    mallopt(M_PERTURB, 0);
    rn_dataset_free(d);
    assert_int_equal(st, RN_ERR_NOMEM);
    assert_null(l);
    if (!strstr(rn_last_error(), "for 3 batches of 5000000 images"))
        fail_msg("message: %s", rn_last_error());
}

/* ---- a failed rn_net_reserve_batch leaves no forward to go back through --------------- */
static void test_backward_after_failed_reserve(void **state)
{
    (void)state;
    rn_net *net = small_net("resnet8", RN_ORDER_DEFAULT, RN_SHORTCUT_DEFAULT);
    float x[2 * IMAGE];
    int labels[2] = {1, 3};
    float loss = 0.0f;
    rn_test_fill_uniform(x, 2 * IMAGE, 1, -1.0f, 1.0f);
    assert_int_equal(rn_net_forward(net, x, 2, 1, NULL), RN_OK);
    /* 100000 images need tens of GB of activations: the allocation fails, x is not read */
    limit_memory((size_t)64 << 20);
    int st = rn_net_forward(net, x, 100000, 1, NULL);
    unlimit_memory();
    assert_int_equal(st, RN_ERR_NOMEM);
    assert_int_equal(rn_net_backward(net, labels, &loss), RN_ERR_ARG);
    assert_non_null(strstr(rn_last_error(), "without a forward"));
    /* and the network still works */
    assert_int_equal(rn_net_forward(net, x, 2, 1, NULL), RN_OK);
    assert_int_equal(rn_net_backward(net, labels, &loss), RN_OK);
    assert_true(loss > 0.0f);
    rn_net_free(net);
}

/* ---- rn_train_forward_backward: a failed forward leaves *loss as it was ---------------- */
static void test_failed_forward_keeps_loss(void **state)
{
    (void)state;
    rn_net *net = small_net("resnet8", RN_ORDER_DEFAULT, RN_SHORTCUT_DEFAULT);
    float x[2 * IMAGE];
    int labels[2] = {0, 1};
    rn_test_fill_uniform(x, 2 * IMAGE, 2, -1.0f, 1.0f);
    assert_int_equal(rn_net_freeze(net, 1), RN_OK); /* a frozen network refuses training */
    double loss = -7.0;
    assert_int_equal(rn_train_forward_backward(net, x, labels, 2, 1, NULL, NULL, &loss),
                     RN_ERR_ARG);
    assert_true(loss == -7.0);
    rn_net_free(net);
}

/* ---- a configuration file's wrong fields are format errors, not argument errors -------- */
static void test_config_json_errors(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "{\"arch\": 5}",           "{\"seed\": 1}",          "{\"data\": \"imagenet\"}",
        "{\"ordering\": \"x\"}",   "{\"shortcut\": \"D\"}",  "{\"schedule\": \"linear\"}",
        "{\"epochs\": \"ten\"}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        rn_train_config c;
        int st = rn_train_config_from_json(&c, bad[i]);
        if (st != RN_ERR_FORMAT) fail_msg("%s: status %d (%s)", bad[i], st, rn_last_error());
    }
    rn_train_config c;
    assert_int_equal(rn_train_config_from_json(&c, "{\"ordering\": \"full-preact\"}"), RN_OK);
}

/* ---- rn_sgemm reports a failed allocation instead of computing otherwise --------------- */
static void test_sgemm_out_of_memory(void **state)
{
    (void)state;
    /* alpha != 1 needs an m x n temporary: 65536 x 1024 floats, 256 MB. C's rows share one
     * row (ldc 0), so that the test itself needs little memory. */
    const int m = 65536, n = 1024, k = 1;
    float *a = malloc((size_t)m * k * sizeof *a), *b = malloc((size_t)k * n * sizeof *b);
    float c[1024];
    assert_non_null(a);
    assert_non_null(b);
    rn_test_fill_uniform(a, (size_t)m * k, 3, -1.0f, 1.0f);
    rn_test_fill_uniform(b, (size_t)k * n, 4, -1.0f, 1.0f);
    for (int j = 0; j < n; j++) c[j] = 3.0f;
    limit_memory((size_t)16 << 20);
    int st = rn_sgemm(0, 0, m, n, k, 0.5f, a, k, b, n, 0.0f, c, 0, NULL);
    unlimit_memory();
    free(a);
    free(b);
    assert_int_equal(st, RN_ERR_NOMEM);
    assert_non_null(strstr(rn_last_error(), "out of memory"));
    for (int j = 0; j < n; j++) assert_true(c[j] == 3.0f); /* C untouched */
}

/* ---- model files of another network ---------------------------------------------------- */
static void expect_refused(int st, const char *want)
{
    if (st != RN_ERR_MISMATCH || !strstr(rn_last_error(), want))
        fail_msg("status %d, message '%s', expected '%s'", st, rn_last_error(), want);
}

/* The orderings without a final BN share every tensor name and shape; so do a residual
 * network with shortcut A and its plain twin. */
static void test_load_refuses_other_network(void **state)
{
    (void)state;
    const char *path = rn_test_path("original.safetensors");
    rn_net *saved = small_net("resnet8", RN_ORDER_ORIGINAL, RN_SHORTCUT_A);
    assert_int_equal(rn_net_save(saved, path), RN_OK);

    rn_net *other = small_net("resnet8", RN_ORDER_RELU_BEFORE_ADD, RN_SHORTCUT_A);
    expect_refused(rn_net_load(other, path),
                   "saved as ordering 'original', this network is 'relu-before-add'");
    rn_net_free(other);
    other = small_net("plain8", RN_ORDER_ORIGINAL, RN_SHORTCUT_A);
    expect_refused(rn_net_load(other, path), "saved as architecture 'resnet8', this network is 'plain8'");
    rn_net_free(other);

    rn_net_options o;
    rn_net_options_init(&o);
    o.ordering = RN_ORDER_BN_AFTER_ADD;
    rn_net *net = NULL;
    expect_refused(rn_net_open(&net, path, NULL, &o), "saved as ordering 'original'");
    assert_null(net);
    expect_refused(rn_net_open(&net, path, "plain8", NULL), "'resnet8', this network is 'plain8'");
    rn_net_options_init(&o);
    o.shortcut = RN_SHORTCUT_B;
    expect_refused(rn_net_open(&net, path, NULL, &o), "shortcut 'A', this network has 'B'");

    /* what the file says, asked for or not, loads */
    o.shortcut = RN_SHORTCUT_A;
    o.ordering = RN_ORDER_ORIGINAL;
    assert_int_equal(rn_net_open(&net, path, "resnet8", &o), RN_OK);
    rn_net_free(net);
    assert_int_equal(rn_net_open(&net, path, NULL, NULL), RN_OK);
    rn_net_free(net);
    other = small_net("resnet8", RN_ORDER_DEFAULT, RN_SHORTCUT_DEFAULT);
    assert_int_equal(rn_net_load(other, path), RN_OK);
    rn_net_free(other);
    rn_net_free(saved);
}

/* The tensors of net, and the metadata given as key, value pairs (none: a torchvision file). */
static void save_with_meta(const rn_net *net, const char *path, const char *const *kv, int pairs)
{
    rn_st_writer *w;
    assert_int_equal(rn_st_writer_create(&w), RN_OK);
    for (int i = 0; i < rn_net_num_tensors(net); i++) {
        rn_tensor_info t;
        assert_int_equal(rn_net_tensor(net, i, &t), RN_OK);
        if (t.kind == RN_TENSOR_COUNTER)
            assert_int_equal(rn_st_writer_add(w, t.name, "I64", t.ndim, t.shape, t.i64), RN_OK);
        else assert_int_equal(rn_st_writer_add(w, t.name, "F32", t.ndim, t.shape, t.data), RN_OK);
    }
    for (int i = 0; i < pairs; i++) assert_int_equal(rn_st_writer_meta(w, kv[2 * i], kv[2 * i + 1]), RN_OK);
    assert_int_equal(rn_st_writer_save(w, path), RN_OK);
    rn_st_writer_free(w);
}

static void test_torchvision_file_loads_with_arch(void **state)
{
    (void)state;
    const char *path = rn_test_path("plain-state.safetensors");
    rn_net *net = small_net("resnet8", RN_ORDER_RELU_PREACT, RN_SHORTCUT_A), *back = NULL;
    save_with_meta(net, path, NULL, 0);
    rn_net_options o;
    rn_net_options_init(&o);
    o.ordering = RN_ORDER_RELU_PREACT;
    o.in_h = o.in_w = 16;
    assert_int_equal(rn_net_open(&back, path, "resnet8", &o), RN_OK);
    rn_net_free(back);
    /* no metadata, nothing to hold it to: the caller's word stands */
    rn_net *other = small_net("plain8", RN_ORDER_ORIGINAL, RN_SHORTCUT_A);
    assert_int_equal(rn_net_load(other, path), RN_OK);
    rn_net_free(other);
    rn_net_free(net);
}

/* Normalisation metadata is a pair: one half is an error naming the file. */
static void test_half_normalization_refused(void **state)
{
    (void)state;
    rn_net *net = small_net("resnet8", RN_ORDER_DEFAULT, RN_SHORTCUT_DEFAULT), *back = NULL;
    static const char *const mean_only[] = {"format", "resnet.c", "arch", "resnet8",
                                            "normalize_mean", "0.5,0.5,0.5"};
    static const char *const std_only[] = {"format", "resnet.c", "arch", "resnet8",
                                           "normalize_std", "0.2,0.2,0.2"};
    const char *path = rn_test_path("half-norm.safetensors");
    for (int k = 0; k < 2; k++) {
        save_with_meta(net, path, k ? std_only : mean_only, 3);
        int st = rn_net_open(&back, path, NULL, NULL);
        if (st != RN_ERR_FORMAT || !strstr(rn_last_error(), "half-norm.safetensors") ||
            !strstr(rn_last_error(), k ? "normalize_std but no normalize_mean"
                                       : "normalize_mean but no normalize_std"))
            fail_msg("status %d: %s", st, rn_last_error());
        assert_null(back);
        assert_int_equal(rn_net_load(net, path), RN_ERR_FORMAT);
    }
    rn_net_free(net);
}

/* A NaN or an infinity in the normalisation would make every output NaN: refused, naming the
 * file, and the network keeps what it had. */
static void test_nonfinite_normalization_refused(void **state)
{
    (void)state;
    rn_net *net = small_net("resnet8", RN_ORDER_DEFAULT, RN_SHORTCUT_DEFAULT), *back = NULL;
    static const char *const bad[][2] = {
        {"nan,0.5,0.5", "0.2,0.2,0.2"}, {"0.5,inf,0.5", "0.2,0.2,0.2"},
        {"0.5,0.5,0.5", "0.2,1e39,0.2"}, {"0.5,0.5,0.5", "0.2,0.2,-infinity"},
        {"0.5,0.5,0.5,", "0.2,0.2,0.2"}, {"0.5,,0.5", "0.2,0.2,0.2"},
    };
    const char *path = rn_test_path("nonfinite-norm.safetensors");
    float before[2] = {0};
    rn_tensor_info t;
    assert_int_equal(rn_net_tensor(net, 0, &t), RN_OK);
    memcpy(before, t.data, sizeof before);
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        const char *kv[] = {"format", "resnet.c", "arch", "resnet8", "normalize_mean", bad[k][0],
                            "normalize_std", bad[k][1]};
        save_with_meta(net, path, kv, 4);
        int st = rn_net_open(&back, path, NULL, NULL);
        if (st != RN_ERR_FORMAT || !strstr(rn_last_error(), "nonfinite-norm.safetensors") ||
            !strstr(rn_last_error(), "normalize_mean/std"))
            fail_msg("%s / %s: status %d: %s", bad[k][0], bad[k][1], st, rn_last_error());
        assert_null(back);
        assert_int_equal(rn_net_load(net, path), RN_ERR_FORMAT);
        assert_memory_equal(t.data, before, sizeof before);
    }
    /* spaces after the commas, as a hand-edited file may have, still load */
    const char *kv[] = {"format", "resnet.c", "arch", "resnet8", "normalize_mean", "0.5, 0.25, 0.5",
                        "normalize_std", "0.2, 0.2, 0.2"};
    save_with_meta(net, path, kv, 4);
    assert_int_equal(rn_net_load(net, path), RN_OK);
    rn_net_free(net);
}



int main(void)
{
    rn_set_threads(1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sgemm_out_of_memory),
        cmocka_unit_test(test_loader_out_of_memory),
        cmocka_unit_test(test_backward_after_failed_reserve),
        cmocka_unit_test(test_failed_forward_keeps_loss),
        cmocka_unit_test(test_config_json_errors),
        cmocka_unit_test(test_load_refuses_other_network),
        cmocka_unit_test(test_torchvision_file_loads_with_arch),
        cmocka_unit_test(test_half_normalization_refused),
        cmocka_unit_test(test_nonfinite_normalization_refused),
    };
    return cmocka_run_group_tests(tests, rn_test_group_setup, rn_test_group_teardown);
}
