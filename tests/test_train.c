/* Training: label smoothing, SGD options and state, schedules, gradient accumulation, the
 * configuration's JSON, evaluation, and the trainer: learning, checkpoints, exact resume
 * (mid-epoch and at an epoch boundary), NaN detection. Synthetic data sets only: fast. */
#define _POSIX_C_SOURCE 200809L /* mkdtemp */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <omp.h>

#include "kernels/kernels.h"
#include "resnet.h"
#include "support/check.h"
#include "support/tmpdir.h"
#include "train/checkpoint.h"
#include "train/config.h"
#include "train/dataset.h"
#include "train/evaluate.h"
#include "train/schedule.h"
#include "train/trainer.h"
#include "train/tta.h"



static rn_net *small_net(const char *arch, int classes, uint64_t seed)
{
    rn_net_options o;
    rn_net_options_init(&o);
    o.in_c = 1, o.in_h = 8, o.in_w = 8;
    o.classes = classes;
    o.seed = seed;
    rn_net *net = NULL;
    assert_int_equal(rn_net_create(&net, arch, &o), RN_OK);
    return net;
}

/* A learnable data set: class k lights up quadrant k of a 1 x 8 x 8 image, plus noise. */
static rn_dataset *quadrants(int n, uint64_t seed)
{
    rn_dataset *d;
    assert_int_equal(rn_dataset_create(&d, n, 1, 8, 8, 4), RN_OK);
    float *noise = malloc(64 * sizeof *noise);
    for (int i = 0; i < n; i++) {
        int k = (int)((i * 7 + (int)seed) % 4);
        d->labels[i] = k;
        rn_test_fill_uniform(noise, 64, seed * 1000 + (uint64_t)i, 0.0f, 120.0f);
        for (int y = 0; y < 8; y++)
            for (int x = 0; x < 8; x++) {
                int q = (y >= 4) * 2 + (x >= 4);
                float v = noise[y * 8 + x] + (q == k ? 130.0f : 0.0f);
                d->pixels[(size_t)i * 64 + y * 8 + x] = (uint8_t)v;
            }
    }
    free(noise);
    const char *names[4] = {"top-left", "top-right", "bottom-left", "bottom-right"};
    assert_int_equal(rn_dataset_set_names(d, names), RN_OK);
    return d;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = 0;
    fclose(f);
    if (len) *len = (size_t)n;
    return buf;
}

static void assert_same_file(const char *a, const char *b)
{
    size_t la, lb;
    char *x = read_file(a, &la), *y = read_file(b, &lb);
    assert_non_null(x);
    assert_non_null(y);
    assert_int_equal(la, lb);
    assert_memory_equal(x, y, la);
    free(x);
    free(y);
}

/* ---- label smoothing -------------------------------------------------------------------------- */
static double smooth_ref(const float *z, int label, int k, double eps)
{
    double mx = z[0], se = 0.0, loss = 0.0;
    for (int j = 1; j < k; j++) mx = z[j] > mx ? z[j] : mx;
    for (int j = 0; j < k; j++) se += exp(z[j] - mx);
    for (int j = 0; j < k; j++) {
        double t = (j == label ? 1.0 - eps : 0.0) + eps / k;
        loss -= t * ((double)z[j] - mx - log(se));
    }
    return loss;
}

typedef struct {
    float *z;
    int *labels;
    int n, k;
    float eps;
} xent_ctx;

static double xent_loss(void *vctx)
{
    xent_ctx *c = vctx;
    return rn_softmax_xent(NULL, c->z, c->labels, c->n, c->k, c->eps);
}

static void test_label_smoothing_kernel(void **state)
{
    (void)state;
    enum { N = 5, K = 7 };
    float z[N * K], g[N * K], g0[N * K];
    int labels[N] = {0, 3, 6, 2, 3};
    rn_test_fill_normal(z, N * K, 11, 2.0f);
    /* eps = 0 is plain cross-entropy to the bit, as computed before smoothing was an argument:
     * log-sum-exp shifted by the row's max minus the label's logit, (softmax - onehot) / n */
    double l0 = rn_softmax_xent(g0, z, labels, N, K, 0.0f), plain = 0.0;
    float want0[N * K];
    for (int i = 0; i < N; i++) {
        const float *zi = z + i * K;
        float mx = zi[0];
        for (int j = 1; j < K; j++) mx = zi[j] > mx ? zi[j] : mx;
        double se = 0.0;
        for (int j = 0; j < K; j++) se += exp((double)zi[j] - mx);
        const double lse = log(se) + mx;
        plain += lse - (double)zi[labels[i]];
        for (int j = 0; j < K; j++)
            want0[i * K + j] = (float)((exp((double)zi[j] - lse) - (j == labels[i])) / N);
    }
    plain /= N;
    assert_memory_equal(&l0, &plain, sizeof l0);
    assert_memory_equal(g0, want0, sizeof want0);
    /* the definition, in double; matches torch's CrossEntropyLoss(label_smoothing=0.1) */
    double ref = 0.0;
    for (int i = 0; i < N; i++) ref += smooth_ref(z + i * K, labels[i], K, (double)0.1f) / N;
    double l = rn_softmax_xent(g, z, labels, N, K, 0.1f);
    assert_true(fabs(l - ref) < 1e-12);
    /* the gradient against finite differences */
    xent_ctx c = {z, labels, N, K, 0.1f};
    double err = rn_test_fd_check(xent_loss, &c, z, g, N * K, 1e-2f, N * K, 1, NULL);
    assert_true(err < 1e-3);
    /* the gradient of each row sums to zero */
    for (int i = 0; i < N; i++) {
        double s = 0.0;
        for (int j = 0; j < K; j++) s += g[i * K + j];
        assert_true(fabs(s) < 1e-7);
    }
    /* a known value: torch.nn.functional.cross_entropy(z, y, label_smoothing=0.1) */
    float z2[6] = {0.3f, -1.2f, 2.0f, 0.5f, 0.1f, -0.4f};
    int y2[2] = {2, 0};
    assert_true(fabs(rn_softmax_xent(NULL, z2, y2, 2, 3, 0.1f) - 0.5696046762219729) < 1e-6);
}

static void test_net_label_smoothing(void **state)
{
    (void)state;
    rn_net *net = small_net("resnet8", 5, 3);
    assert_int_equal(rn_net_set_label_smoothing(net, -0.1f), RN_ERR_ARG);
    assert_int_equal(rn_net_set_label_smoothing(net, 1.0f), RN_ERR_ARG);
    assert_true(rn_net_label_smoothing(net) == 0.0f);
    assert_int_equal(rn_net_set_label_smoothing(net, 0.2f), RN_OK);
    assert_true(rn_net_label_smoothing(net) == 0.2f);
    float x[4 * 64], logits[4 * 5];
    int labels[4] = {0, 4, 2, 2};
    rn_test_fill_normal(x, 4 * 64, 5, 1.0f);
    rn_net_zero_grad(net);
    assert_int_equal(rn_net_forward(net, x, 4, 1, logits), RN_OK);
    float loss;
    assert_int_equal(rn_net_backward(net, labels, &loss), RN_OK);
    double want = rn_softmax_xent(NULL, logits, labels, 4, 5, 0.2f);
    assert_true(fabs(loss - want) < 1e-6);
    rn_net_free(net);
}

/* ---- SGD ------------------------------------------------------------------------------------------ */
static void test_sgd_decay_1d(void **state)
{
    (void)state;
    rn_net *net = small_net("resnet8", 4, 1);
    size_t n = rn_net_num_params(net);
    float *before = malloc(n * sizeof *before);
    memcpy(before, rn_net_params(net), n * sizeof *before);
    rn_sgd *opt;
    assert_int_equal(rn_sgd_create(&opt, net, 0.0f, 0.5f, 0), RN_OK);
    assert_int_equal(rn_sgd_set_decay_1d(opt, net, 0), RN_OK);
    rn_net_zero_grad(net);
    assert_int_equal(rn_sgd_step(opt, net, 1.0f), RN_OK); /* only decay moves: p -= 0.5 p */
    int saw_1d = 0, saw_nd = 0;
    for (int i = 0; i < rn_net_num_tensors(net); i++) {
        rn_tensor_info t;
        rn_net_tensor(net, i, &t);
        if (t.kind != RN_TENSOR_PARAM) continue;
        const float *b = before + (t.data - rn_net_params(net));
        for (size_t j = 0; j < t.numel; j++) {
            float want = t.ndim > 1 ? b[j] - 1.0f * (0.5f * b[j]) : b[j];
            if (t.data[j] != want) fail_msg("%s[%zu]: %g, expected %g", t.name, j, (double)t.data[j], (double)want);
        }
        saw_1d += t.ndim == 1;
        saw_nd += t.ndim > 1;
    }
    assert_true(saw_1d > 0 && saw_nd > 0);
    /* and back to decay everywhere */
    memcpy(rn_net_params(net), before, n * sizeof *before);
    assert_int_equal(rn_sgd_set_decay_1d(opt, net, 1), RN_OK);
    assert_int_equal(rn_sgd_step(opt, net, 1.0f), RN_OK);
    for (size_t j = 0; j < n; j++) assert_true(rn_net_params(net)[j] == before[j] - 0.5f * before[j]);
    /* another network is refused */
    rn_net *other = small_net("resnet14", 4, 1);
    assert_int_equal(rn_sgd_set_decay_1d(opt, other, 0), RN_ERR_ARG);
    assert_int_equal(rn_sgd_step(opt, other, 0.1f), RN_ERR_ARG);
    rn_net_free(other);
    rn_sgd_free(opt);
    free(before);
    rn_net_free(net);
}

/* Saving the momentum buffer and the started flag and restoring them into a fresh optimizer
 * continues the exact trajectory. */
static void test_sgd_state(void **state)
{
    (void)state;
    rn_net *a = small_net("resnet8", 4, 2), *b = small_net("resnet8", 4, 2);
    rn_sgd *oa, *ob;
    assert_int_equal(rn_sgd_create(&oa, a, 0.9f, 1e-3f, 1), RN_OK);
    assert_int_equal(rn_sgd_create(&ob, b, 0.9f, 1e-3f, 1), RN_OK);
    assert_false(rn_sgd_started(oa));
    float x[6 * 64];
    int labels[6] = {0, 1, 2, 3, 0, 1};
    rn_test_fill_normal(x, 6 * 64, 9, 1.0f);
    float loss;
    for (int s = 0; s < 3; s++) {
        assert_int_equal(rn_net_train_step(a, x, labels, 6, &loss), RN_OK);
        assert_int_equal(rn_sgd_step(oa, a, 0.05f), RN_OK);
    }
    assert_true(rn_sgd_started(oa));
    size_t n, m;
    float *ba = rn_sgd_momentum_buffer(oa, &n), *bb = rn_sgd_momentum_buffer(ob, &m);
    assert_int_equal(n, rn_net_num_params(a));
    assert_int_equal(n, m);
    memcpy(bb, ba, n * sizeof *ba);
    rn_sgd_set_started(ob, rn_sgd_started(oa));
    memcpy(rn_net_params(b), rn_net_params(a), n * sizeof(float));
    for (int i = 0; i < rn_net_num_tensors(a); i++) { /* BN buffers too */
        rn_tensor_info ta, tb;
        rn_net_tensor(a, i, &ta);
        rn_net_tensor(b, i, &tb);
        if (ta.kind == RN_TENSOR_BUFFER) memcpy(tb.data, ta.data, ta.numel * sizeof(float));
        if (ta.kind == RN_TENSOR_COUNTER) memcpy(tb.i64, ta.i64, ta.numel * sizeof(int64_t));
    }
    for (int s = 0; s < 2; s++) {
        assert_int_equal(rn_net_train_step(a, x, labels, 6, &loss), RN_OK);
        assert_int_equal(rn_sgd_step(oa, a, 0.05f), RN_OK);
        assert_int_equal(rn_net_train_step(b, x, labels, 6, &loss), RN_OK);
        assert_int_equal(rn_sgd_step(ob, b, 0.05f), RN_OK);
    }
    assert_memory_equal(rn_net_params(a), rn_net_params(b), n * sizeof(float));
    rn_sgd_free(oa);
    rn_sgd_free(ob);
    rn_net_free(a);
    rn_net_free(b);
}

/* Gradient clipping as torch.nn.utils.clip_grad_norm_: the L2 norm of all gradients together;
 * above max_norm each one is scaled by max_norm / (norm + 1e-6), otherwise left as it is. */
static void test_clip_grad_norm(void **state)
{
    (void)state;
    rn_net *net = small_net("resnet8", 4, 3);
    float x[6 * 64], loss;
    int labels[6] = {3, 1, 2, 0, 0, 1};
    rn_test_fill_normal(x, 6 * 64, 11, 1.0f);
    assert_int_equal(rn_net_train_step(net, x, labels, 6, &loss), RN_OK);
    const size_t n = rn_net_num_params(net);
    float *g = rn_net_grads(net), *g0 = malloc(n * sizeof *g0);
    memcpy(g0, g, n * sizeof *g0);
    double sq = 0.0;
    for (size_t i = n; i-- > 0;) sq += (double)g0[i] * g0[i];
    const double norm = sqrt(sq);
    assert_true(norm > 0.0);
    /* max_norm 0 only measures; a max_norm above the norm changes nothing */
    assert_true(fabs(rn_net_clip_grad_norm(net, 0.0f) - norm) <= 1e-12 * norm);
    assert_memory_equal(g, g0, n * sizeof *g0);
    assert_true(fabs(rn_net_clip_grad_norm(net, (float)(2.0 * norm)) - norm) <= 1e-12 * norm);
    assert_memory_equal(g, g0, n * sizeof *g0);
    /* below it: scaled to the limit */
    const float max_norm = (float)(norm / 4.0);
    assert_true(fabs(rn_net_clip_grad_norm(net, max_norm) - norm) <= 1e-12 * norm);
    const float coef = (float)(max_norm / (norm + 1e-6));
    double after = 0.0;
    for (size_t i = 0; i < n; i++) {
        if (g[i] != g0[i] * coef) fail_msg("gradient %zu: %g, expected %g", i, g[i], g0[i] * coef);
        after += (double)g[i] * g[i];
    }
    assert_true(fabs(sqrt(after) - max_norm) <= 1e-5 * max_norm);
    free(g0);
    rn_net_free(net);
}

/* ---- schedules ------------------------------------------------------------------------------------ */
static void test_schedules(void **state)
{
    (void)state;
    rn_schedule s;
    rn_schedule_init(&s, RN_SCHEDULE_CONSTANT, 0.1f, 100);
    assert_int_equal(rn_schedule_check(&s), RN_OK);
    assert_true(rn_schedule_lr(&s, 0) == 0.1f && rn_schedule_lr(&s, 99) == 0.1f);

    /* the paper's: divide by 10 at 50% and 75% */
    rn_schedule_init(&s, RN_SCHEDULE_STEP, 0.1f, 100);
    assert_true(rn_schedule_lr(&s, 49) == 0.1f);
    assert_true(fabsf(rn_schedule_lr(&s, 50) - 0.01f) < 1e-9f);
    assert_true(fabsf(rn_schedule_lr(&s, 74) - 0.01f) < 1e-9f);
    assert_true(fabsf(rn_schedule_lr(&s, 75) - 0.001f) < 1e-10f);
    assert_true(fabsf(rn_schedule_lr(&s, 1000) - 0.001f) < 1e-10f); /* past the end: the last */

    assert_int_equal(rn_schedule_parse("step:0.3,0.6,0.9", &s), RN_OK);
    assert_int_equal(s.n_milestones, 3);
    assert_true(fabsf(rn_schedule_lr(&s, 95) - 1e-4f) < 1e-10f);
    char buf[64];
    rn_schedule_format(&s, buf, sizeof buf);
    assert_string_equal(buf, "step:0.3,0.6,0.9");
    rn_schedule t;
    rn_schedule_init(&t, RN_SCHEDULE_CONSTANT, 0.1f, 100);
    assert_int_equal(rn_schedule_parse(buf, &t), RN_OK);
    assert_memory_equal(t.milestones, s.milestones, sizeof s.milestones);

    assert_int_equal(rn_schedule_parse("cosine", &s), RN_OK);
    assert_true(rn_schedule_lr(&s, 0) == 0.1f);
    assert_true(fabsf(rn_schedule_lr(&s, 50) - 0.05f) < 1e-7f);
    assert_true(rn_schedule_lr(&s, 99) > 0.0f && rn_schedule_lr(&s, 99) < 1e-4f);

    /* warm-up: linear to the base, then the schedule over the remaining steps */
    s.warmup_steps = 10;
    assert_int_equal(rn_schedule_check(&s), RN_OK);
    assert_true(fabsf(rn_schedule_lr(&s, 0) - 0.01f) < 1e-8f);
    assert_true(fabsf(rn_schedule_lr(&s, 4) - 0.05f) < 1e-8f);
    assert_true(rn_schedule_lr(&s, 10) == 0.1f);
    assert_true(fabsf(rn_schedule_lr(&s, 55) - 0.05f) < 1e-7f);

    const char *bad[] = {"linear", "step:", "step:0.8,0.5", "step:1.5", "step:0.5,x", "cos"};
    for (int i = 0; i < 6; i++) {
        assert_int_equal(rn_schedule_parse(bad[i], &s), RN_ERR_ARG);
        assert_non_null(strstr(rn_last_error(), "schedule"));
    }
    s.warmup_steps = 100;
    assert_int_equal(rn_schedule_check(&s), RN_ERR_ARG);
    s.warmup_steps = 0;
    s.lr = -1.0f;
    assert_int_equal(rn_schedule_check(&s), RN_ERR_ARG);
}

/* ---- gradient accumulation --------------------------------------------------------------------------- */
static void test_accumulation(void **state)
{
    (void)state;
    enum { N = 7 };
    rn_net *net = small_net("resnet8", 4, 4);
    size_t np = rn_net_num_params(net);
    float x[N * 64], logits[N * 4], want_logits[N * 4];
    int labels[N] = {0, 1, 2, 3, 3, 2, 1};
    rn_test_fill_normal(x, N * 64, 21, 1.0f);
    float *want = calloc(np, sizeof *want), *accum = malloc(np * sizeof *accum);
    /* three micro-batches of 3, 2, 2 images, each its own train step, weighted by its share */
    int sizes[3] = {3, 2, 2}, off = 0;
    double want_loss = 0.0;
    for (int k = 0; k < 3; k++) {
        float l;
        rn_net_zero_grad(net);
        assert_int_equal(rn_net_forward(net, x + off * 64, sizes[k], 1, want_logits + off * 4), RN_OK);
        assert_int_equal(rn_net_backward(net, labels + off, &l), RN_OK);
        const float w = (float)sizes[k] / N;
        for (size_t i = 0; i < np; i++) want[i] += w * rn_net_grads(net)[i];
        want_loss += (double)l * sizes[k];
        off += sizes[k];
    }
    double loss;
    assert_int_equal(rn_train_forward_backward(net, x, labels, N, 3, logits, accum, &loss), RN_OK);
    assert_memory_equal(rn_net_grads(net), want, np * sizeof *want);
    assert_memory_equal(logits, want_logits, sizeof logits);
    assert_true(fabs(loss - want_loss / N) < 1e-12);
    /* one part is the plain train step */
    float l1;
    assert_int_equal(rn_net_train_step(net, x, labels, N, &l1), RN_OK);
    memcpy(want, rn_net_grads(net), np * sizeof *want);
    assert_int_equal(rn_train_forward_backward(net, x, labels, N, 1, logits, NULL, &loss), RN_OK);
    assert_memory_equal(rn_net_grads(net), want, np * sizeof *want);
    assert_true((float)loss == l1);
    /* more parts than images: one image each */
    assert_int_equal(rn_train_forward_backward(net, x, labels, 2, 5, NULL, accum, &loss), RN_OK);
    free(want);
    free(accum);
    rn_net_free(net);
}

/* ---- configuration ----------------------------------------------------------------------------------- */
static void test_config_json(void **state)
{
    (void)state;
    rn_train_config a, b;
    rn_train_config_init(&a);
    a.data = RN_DATA_CIFAR100;
    snprintf(a.data_dir, sizeof a.data_dir, "/some/where \"quoted\"");
    a.subset = 1000, a.val = 100, a.in_c = 3, a.in_h = 24, a.in_w = 20;
    snprintf(a.arch, sizeof a.arch, "wrn-16-4");
    a.ordering = RN_ORDER_RELU_PREACT, a.shortcut = RN_SHORTCUT_C, a.zero_init_last_bn = 1;
    a.survival_last = 0.8f, a.gate_bias = -1.5f, a.epochs = 7, a.batch = 96, a.accum = 3;
    a.lr = 0.0123f, a.schedule = RN_SCHEDULE_STEP, a.n_milestones = 3;
    a.milestones[0] = 0.3f, a.milestones[1] = 0.6f, a.milestones[2] = 0.9f;
    a.warmup = 0.7f, a.momentum = 0.85f, a.nesterov = 1, a.weight_decay = 3e-5f, a.decay_1d = 0;
    a.label_smoothing = 0.15f, a.crop_pad = 3, a.flip = 0, a.erase = 0.25f;
    a.seed = 18446744073709551557ULL;
    a.threads = 3;
    assert_int_equal(rn_train_config_check(&a), RN_OK);
    char *ja = rn_train_config_to_json(&a);
    assert_non_null(ja);
    assert_int_equal(rn_train_config_from_json(&b, ja), RN_OK);
    char *jb = rn_train_config_to_json(&b);
    assert_string_equal(ja, jb);
    assert_string_equal(b.data_dir, a.data_dir);
    assert_true(b.seed == a.seed && b.lr == a.lr && b.label_smoothing == a.label_smoothing);
    assert_true(b.milestones[2] == a.milestones[2] && b.warmup == a.warmup && b.decay_1d == 0);
    assert_true(b.in_h == 24 && b.ordering == RN_ORDER_RELU_PREACT && b.shortcut == RN_SHORTCUT_C);
    free(ja);
    free(jb);
    assert_int_equal(rn_train_config_from_json(&b, "[1, 2]"), RN_ERR_FORMAT);
    assert_int_equal(rn_train_config_from_json(&b, "{\"epochs\": \"ten\"}"), RN_ERR_FORMAT);
    assert_non_null(strstr(rn_last_error(), "epochs"));

    /* each bad option is named */
    struct {
        const char *opt;
        void (*set)(rn_train_config *);
    } cases[] = {
        {"--epochs", NULL}, {"--accum", NULL}, {"--lr", NULL}, {"--warmup", NULL},
        {"--momentum", NULL}, {"--label-smoothing", NULL}, {"--val", NULL},
    };
    for (int i = 0; i < 7; i++) {
        rn_train_config_init(&b);
        switch (i) {
        case 0: b.epochs = 0; break;
        case 1: b.accum = b.batch + 1; break;
        case 2: b.lr = 0.0f; break;
        case 3: b.warmup = (float)b.epochs; break;
        case 4: b.momentum = 1.0f; break;
        case 5: b.label_smoothing = 1.0f; break;
        case 6: b.subset = 10, b.val = 10; break;
        }
        assert_int_equal(rn_train_config_check(&b), RN_ERR_ARG);
        if (!strstr(rn_last_error(), cases[i].opt)) fail_msg("'%s' lacks %s", rn_last_error(), cases[i].opt);
    }
}

/* The table of options (train/config_table.h): defaults, the command line's parsing, JSON. */
static void test_config_table(void **state)
{
    (void)state;
    rn_train_config lib, cli, back;
    rn_train_config_init(&lib);
    rn_train_config_init_cli(&cli);
    /* the library's defaults are He et al.'s recipe; resnet train's its own (config_table.h) */
    assert_string_equal(lib.arch, "resnet20");
    assert_true(lib.epochs == 10 && lib.batch == 128 && lib.lr == 0.1f && lib.weight_decay == 1e-4f);
    assert_true(lib.schedule == RN_SCHEDULE_STEP && lib.n_milestones == 2 &&
                lib.milestones[0] == 0.5f && lib.milestones[1] == 0.75f);
    assert_true(lib.momentum == 0.9f && lib.decay_1d == 1 && lib.crop_pad == -1 && lib.flip == -1);
    assert_true(lib.survival_last == 1.0f && lib.gate_bias == -2.0f && lib.seed == 1);
    assert_string_equal(cli.arch, "resnet8-w32-s2");
    assert_true(cli.epochs == 20 && cli.batch == 64 && cli.lr == 0.05f &&
                cli.weight_decay == 5e-4f && cli.label_smoothing == 0.1f &&
                cli.schedule == RN_SCHEDULE_COSINE);
    assert_int_equal(rn_train_config_check(&lib), RN_OK);
    assert_int_equal(rn_train_config_check(&cli), RN_OK);

    /* every row: its option takes a value in range and refuses NaN, infinity and nonsense;
     * what it sets reads back through JSON */
    const rn_config_row *rows;
    int n = rn_train_config_rows(&rows);
    assert_true(n >= 25);
    for (int i = 0; i < n; i++) {
        const rn_config_row *r = &rows[i];
        int takes;
        if (r->option) {
            assert_ptr_equal(rn_train_config_find_option(r->option, &takes), r);
            if (takes) {
                rn_train_config c = cli;
                const char *bad[] = {"nan", "inf", "-inf", "1e999", "", "x"};
                for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
                    /* any path is a path, and a name is checked when the network is built */
                    if (!strcmp(r->option, "--data-dir") || !strcmp(r->option, "--arch")) break;
                    if (rn_train_config_set(&c, r->option, bad[k]) != RN_ERR_ARG)
                        fail_msg("%s accepted '%s'", r->option, bad[k]);
                    assert_non_null(strstr(rn_last_error(), r->option));
                }
            } else {
                rn_train_config c = lib;
                assert_int_equal(rn_train_config_set(&c, r->option, NULL), RN_OK);
            }
        }
        if (r->off_option) {
            assert_ptr_equal(rn_train_config_find_option(r->off_option, &takes), r);
            assert_int_equal(takes, 0);
        }
    }
    rn_train_config c = cli;
    assert_int_equal(rn_train_config_set(&c, "--epochs", "7"), RN_OK);
    assert_int_equal(rn_train_config_set(&c, "--lr", "0.02"), RN_OK);
    assert_int_equal(rn_train_config_set(&c, "--schedule", "step:0.3,0.6"), RN_OK);
    assert_int_equal(rn_train_config_set(&c, "--no-crop", NULL), RN_OK);
    assert_int_equal(rn_train_config_set(&c, "--flip", NULL), RN_OK);
    assert_int_equal(rn_train_config_set(&c, "--no-wd-bn", NULL), RN_OK);
    assert_int_equal(rn_train_config_set(&c, "--input-shape", "1x20x24"), RN_OK);
    assert_int_equal(rn_train_config_set(&c, "--seed", "18446744073709551615"), RN_OK);
    assert_true(c.epochs == 7 && c.lr == 0.02f && c.n_milestones == 2 && c.crop_pad == 0 &&
                c.flip == 1 && c.decay_1d == 0 && c.in_c == 1 && c.in_h == 20 && c.in_w == 24 &&
                c.seed == UINT64_MAX);
    /* the "not set" defaults are no values for the command line */
    assert_int_equal(rn_train_config_set(&c, "--crop-pad", "-1"), RN_ERR_ARG);
    assert_int_equal(rn_train_config_set(&c, "--subset", "0"), RN_ERR_ARG);
    assert_int_equal(rn_train_config_set(&c, "--seed", "-1"), RN_ERR_ARG);
    assert_int_equal(rn_train_config_set(&c, "--epochs", "2.5"), RN_ERR_ARG);
    assert_int_equal(rn_train_config_set(&c, "--ordering", "sideways"), RN_ERR_ARG);
    assert_int_equal(rn_train_config_set(&c, "--no-such-option", "1"), RN_ERR_ARG);
    char *j = rn_train_config_to_json(&c);
    assert_non_null(j);
    assert_int_equal(rn_train_config_from_json(&back, j), RN_OK);
    char *k = rn_train_config_to_json(&back);
    assert_string_equal(j, k);
    free(j);
    free(k);
    /* a checkpoint's field out of its range is a format error naming the field */
    assert_int_equal(rn_train_config_from_json(&back, "{\"momentum\": 1.5}"), RN_ERR_FORMAT);
    assert_non_null(strstr(rn_last_error(), "momentum"));
    assert_int_equal(rn_train_config_from_json(&back, "{\"epochs\": 2.5}"), RN_ERR_FORMAT);
}

/* ---- evaluation ------------------------------------------------------------------------------------- */
static void test_evaluate(void **state)
{
    (void)state;
    rn_dataset *d = quadrants(37, 5);
    rn_net_options o;
    rn_net_options_init(&o);
    o.in_c = 1, o.in_h = 8, o.in_w = 8, o.classes = 4;
    rn_net *net;
    assert_int_equal(rn_net_create(&net, "resnet8", &o), RN_OK);
    float mean[1] = {0.3f}, std[1] = {0.25f};
    assert_int_equal(rn_net_set_normalization(net, mean, std), RN_OK);
    rn_eval_result r;
    assert_int_equal(rn_evaluate(net, d, 10, 1, &r), RN_OK);
    assert_int_equal(r.n, 37);
    /* the same by hand: one forward of all images, normalised as the model says */
    float *x = malloc(37 * 64 * sizeof *x), logits[37 * 4];
    for (int i = 0; i < 37 * 64; i++) x[i] = (d->pixels[i] / 255.0f - 0.3f) / 0.25f;
    assert_int_equal(rn_net_forward(net, x, 37, 0, logits), RN_OK);
    long correct = 0, diag = 0, total = 0;
    for (int i = 0; i < 37; i++) {
        int best = 0;
        for (int j = 1; j < 4; j++)
            if (logits[i * 4 + j] > logits[i * 4 + best]) best = j;
        correct += best == d->labels[i];
    }
    double loss = rn_softmax_xent(NULL, logits, d->labels, 37, 4, 0.0f);
    assert_int_equal(r.correct, correct);
    assert_true(fabs(r.loss - loss) < 1e-5);
    for (int k = 0; k < 4; k++) {
        diag += r.confusion[k * 4 + k];
        long row = 0, want = 0;
        for (int j = 0; j < 4; j++) row += r.confusion[k * 4 + j];
        for (int i = 0; i < 37; i++) want += d->labels[i] == k;
        assert_int_equal(row, want);
        total += row;
    }
    assert_int_equal(diag, correct);
    assert_int_equal(total, 37);
    rn_eval_result_free(&r);
    free(x);
    /* data that do not fit */
    rn_dataset *wrong;
    assert_int_equal(rn_dataset_create(&wrong, 4, 1, 8, 8, 5), RN_OK);
    assert_int_equal(rn_evaluate(net, wrong, 10, 0, &r), RN_ERR_MISMATCH);
    assert_non_null(strstr(rn_last_error(), "5 classes"));
    rn_dataset_free(wrong);
    assert_int_equal(rn_dataset_create(&wrong, 4, 3, 8, 8, 4), RN_OK);
    assert_int_equal(rn_check_data_fits(net, wrong, "somewhere"), RN_ERR_MISMATCH);
    assert_non_null(strstr(rn_last_error(), "somewhere: images are 3x8x8"));
    rn_dataset_free(wrong);
    rn_net_free(net);
    rn_dataset_free(d);
}

/* ---- test-time augmentation --------------------------------------------------------------------- */
static void test_tta_views(void **state)
{
    (void)state;
    int flags = -1;
    static const char *const names[] = {"none", "flip", "shift", "flip,shift", "shift,flip"};
    static const int want_flags[] = {0, RN_TTA_FLIP, RN_TTA_SHIFT, 3, 3}, want_views[] = {1, 2, 5, 10, 10};
    for (int i = 0; i < 5; i++) {
        assert_int_equal(rn_tta_parse(names[i], &flags), RN_OK);
        assert_int_equal(flags, want_flags[i]);
        assert_int_equal(rn_tta_views(flags), want_views[i]);
        if (i < 4) assert_string_equal(rn_tta_name(flags), names[i]);
    }
    assert_int_equal(rn_tta_parse("flips", &flags), RN_ERR_ARG);
    assert_non_null(strstr(rn_last_error(), "'flips'"));

    /* one image of 2 channels, 3 x 4: pixel (ch, r, q) = 100 ch + 10 r + q + 1 */
    float x[24], y[24], all[10][24];
    const float fill[2] = {-1.0f, -2.0f};
    for (int i = 0; i < 24; i++) x[i] = (float)(100 * (i / 12) + 10 * (i % 12 / 4) + i % 4 + 1);
    rn_tta_view(x, y, 1, 2, 3, 4, 0, 0, fill);
    assert_memory_equal(x, y, sizeof x);
    /* first row of channel 0 (and of channel 1 for the last) of each view */
    static const struct {
        int flags, view;
        float row[4];
    } cases[] = {
        {RN_TTA_FLIP, 1, {4, 3, 2, 1}},
        {RN_TTA_SHIFT, 1, {-1, -1, -1, -1}}, /* moved down: row 0 comes from row -1 */
        {RN_TTA_SHIFT, 2, {11, 12, 13, 14}}, /* moved up */
        {RN_TTA_SHIFT, 3, {-1, 1, 2, 3}},
        {RN_TTA_SHIFT, 4, {2, 3, 4, -1}},
        {3, 1, {4, 3, 2, 1}},
        {3, 4, {-1, 1, 2, 3}},
        {3, 8, {3, 2, 1, -1}}, /* the mirror image moved right: column q of the mirror is q - 1 */
        {3, 9, {-1, 4, 3, 2}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rn_tta_view(x, y, 1, 2, 3, 4, cases[i].flags, cases[i].view, fill);
        if (memcmp(y, cases[i].row, sizeof cases[i].row))
            fail_msg("tta %d view %d: row 0 is %g %g %g %g", cases[i].flags, cases[i].view, y[0], y[1],
                     y[2], y[3]);
    }
    rn_tta_view(x, y, 1, 2, 3, 4, 3, 9, fill);
    const float ch1_row0[4] = {-2, 104, 103, 102}, row2[4] = {-1, 24, 23, 22};
    assert_memory_equal(y + 12, ch1_row0, sizeof ch1_row0);
    assert_memory_equal(y + 8, row2, sizeof row2);
    /* ten different views */
    for (int v = 0; v < 10; v++) {
        rn_tta_view(x, all[v], 1, 2, 3, 4, 3, v, fill);
        for (int u = 0; u < v; u++) assert_true(memcmp(all[u], all[v], sizeof all[v]) != 0);
    }
}

/* rn_evaluate_tta against the same views made by hand in pixel space (zero pixels fill the
 * moves, then normalisation), one forward each and mean softmax probabilities. */
static void test_evaluate_tta(void **state)
{
    (void)state;
    rn_dataset *d = quadrants(23, 9);
    rn_net *net = small_net("resnet8", 4, 3);
    float mean[1] = {0.3f}, std[1] = {0.25f};
    assert_int_equal(rn_net_set_normalization(net, mean, std), RN_OK);
    rn_eval_result plain, r;
    assert_int_equal(rn_evaluate(net, d, 10, 0, &plain), RN_OK);
    assert_int_equal(rn_evaluate_tta(net, d, 10, 0, 0, &r), RN_OK);
    assert_int_equal(r.correct, plain.correct);
    assert_true(r.loss == plain.loss);
    assert_int_equal(rn_evaluate_tta(net, d, 10, RN_TTA_FLIP | RN_TTA_SHIFT, 1, &r), RN_OK);
    static const int views[10][3] = {{0, 0, 0},  {1, 0, 0},  {0, -1, 0}, {0, 1, 0}, {0, 0, -1},
                                     {0, 0, 1},  {1, -1, 0}, {1, 1, 0},  {1, 0, -1}, {1, 0, 1}};
    double p[23 * 4] = {0};
    float *x = malloc(23 * 64 * sizeof *x), logits[23 * 4];
    for (int v = 0; v < 10; v++) {
        for (int i = 0; i < 23; i++)
            for (int row = 0; row < 8; row++)
                for (int col = 0; col < 8; col++) {
                    int sr = row + views[v][1], sc = (views[v][0] ? 7 - col : col) + views[v][2];
                    int pix = sr < 0 || sr > 7 || sc < 0 || sc > 7 ? 0 : d->pixels[i * 64 + sr * 8 + sc];
                    x[i * 64 + row * 8 + col] = (pix / 255.0f - 0.3f) / 0.25f;
                }
        assert_int_equal(rn_net_forward(net, x, 23, 0, logits), RN_OK);
        for (int i = 0; i < 23; i++) {
            double sum = 0;
            for (int j = 0; j < 4; j++) sum += exp(logits[i * 4 + j]);
            for (int j = 0; j < 4; j++) p[i * 4 + j] += exp(logits[i * 4 + j]) / sum / 10;
        }
    }
    long correct = 0;
    double loss = 0;
    for (int i = 0; i < 23; i++) {
        int best = 0;
        for (int j = 1; j < 4; j++)
            if (p[i * 4 + j] > p[i * 4 + best]) best = j;
        correct += best == d->labels[i];
        loss -= log(p[i * 4 + d->labels[i]]) / 23;
    }
    assert_int_equal(r.n, 23);
    assert_int_equal(r.correct, correct);
    if (fabs(r.loss - loss) > 1e-5) fail_msg("TTA loss %.8f, by hand %.8f", r.loss, loss);
    assert_true(fabs(r.loss - plain.loss) > 1e-4); /* the views did change something */
    rn_eval_result_free(&r);
    rn_eval_result_free(&plain);
    free(x);
    rn_net_free(net);
    rn_dataset_free(d);
}

/* ---- the trainer -------------------------------------------------------------------------------------- */
static void tiny_config(rn_train_config *c)
{
    rn_train_config_init(c);
    snprintf(c->arch, sizeof c->arch, "resnet8");
    c->epochs = 3;
    c->batch = 10;
    c->lr = 0.05f;
    c->weight_decay = 5e-4f;
    c->crop_pad = 1;
    c->flip = 1;
    c->seed = 7;
}

/* Runs cfg in dir: stop_at > 0 stops after that many steps, then a new trainer resumes. */
static void run(const rn_train_config *cfg, const char *dir, const rn_dataset *train,
                const rn_dataset *eval, long stop_at)
{
    mkdir(dir, 0777);
    rn_trainer *t;
    assert_int_equal(rn_trainer_create(&t, cfg, dir, train, eval, "test"), RN_OK);
    rn_train_hooks hooks = {0};
    hooks.stop_at_step = stop_at;
    rn_train_outcome oc;
    assert_int_equal(rn_trainer_run(t, &hooks, &oc), RN_OK);
    rn_trainer_free(t);
    if (stop_at <= 0) {
        assert_true(oc.finished);
        return;
    }
    assert_true(oc.interrupted && !oc.finished);
    assert_int_equal(oc.step, stop_at);
    assert_int_equal(oc.steps_run, stop_at);
    /* a new process would read the configuration back from the checkpoint */
    char path[600];
    snprintf(path, sizeof path, "%s/checkpoint.safetensors", dir);
    rn_train_config back;
    int epoch, batch;
    long step;
    assert_int_equal(rn_checkpoint_read_config(path, &back, &epoch, &batch, &step), RN_OK);
    assert_int_equal(step, stop_at);
    char *a = rn_train_config_to_json(cfg), *b = rn_train_config_to_json(&back);
    assert_string_equal(a, b);
    free(a);
    free(b);
    assert_int_equal(rn_trainer_create(&t, &back, dir, train, eval, "test"), RN_OK);
    assert_int_equal(rn_trainer_restore(t), RN_OK);
    assert_int_equal(rn_trainer_run(t, NULL, &oc), RN_OK);
    assert_true(oc.finished);
    assert_int_equal(oc.steps_run, (long)cfg->epochs * ((train->n + cfg->batch - 1) / cfg->batch) - stop_at);
    rn_trainer_free(t);
}

/* The metrics that do not depend on timing: everything before "lr" on each line. */
static char *metrics_without_times(const char *dir)
{
    char path[600];
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    char *text = read_file(path, NULL);
    assert_non_null(text);
    char *out = malloc(strlen(text) + 1), *o = out;
    for (char *line = text; *line;) {
        char *end = strchr(line, '\n');
        assert_non_null(end);
        char *cut = strstr(line, ",\"time_s\"");
        assert_true(cut && cut < end);
        memcpy(o, line, (size_t)(cut - line));
        o += cut - line;
        *o++ = '\n';
        line = end + 1;
    }
    *o = 0;
    free(text);
    return out;
}

static void test_trainer_learns_and_resumes_exactly(void **state)
{
    (void)state;
    rn_dataset *train = quadrants(48, 1), *eval = quadrants(20, 2);
    rn_train_config cfg;
    tiny_config(&cfg);
    /* every piece of state a resume must restore */
    cfg.accum = 2;
    cfg.nesterov = 1;
    cfg.decay_1d = 0;
    cfg.label_smoothing = 0.1f;
    cfg.survival_last = 0.7f;
    cfg.warmup = 0.5f;
    cfg.schedule = RN_SCHEDULE_STEP;
    cfg.clip_grad_norm = 0.5f;

    const char *straight = rn_test_path("straight"), *mid = rn_test_path("mid"), *edge = rn_test_path("edge");
    run(&cfg, straight, train, eval, 0);
    run(&cfg, mid, train, eval, 7);  /* 5 batches per epoch: stops inside epoch 2 */
    run(&cfg, edge, train, eval, 5); /* stops right after epoch 1 */
    char a[600], b[600];
    snprintf(a, sizeof a, "%s/model.safetensors", straight);
    snprintf(b, sizeof b, "%s/model.safetensors", mid);
    assert_same_file(a, b);
    snprintf(b, sizeof b, "%s/model.safetensors", edge);
    assert_same_file(a, b);
    char *ma = metrics_without_times(straight), *mb = metrics_without_times(mid);
    assert_string_equal(ma, mb);
    free(mb);
    mb = metrics_without_times(edge);
    assert_string_equal(ma, mb);
    free(mb);
    free(ma);

    /* the model carries what eval and predict need */
    rn_net *net;
    assert_int_equal(rn_net_open(&net, a, NULL, NULL), RN_OK);
    assert_string_equal(rn_net_arch(net), "resnet8");
    assert_string_equal(rn_net_label(net, 3), "bottom-right");
    float mean[1], std[1], want_mean[1], want_std[1];
    assert_int_equal(rn_net_get_normalization(net, mean, std), 1);
    assert_int_equal(rn_dataset_stats(train, want_mean, want_std), RN_OK);
    assert_true(mean[0] == want_mean[0] && std[0] == want_std[0]);
    rn_net_free(net);

    /* a second straight run is the same bits (the seed decides everything) */
    const char *again = rn_test_path("again");
    run(&cfg, again, train, eval, 0);
    snprintf(b, sizeof b, "%s/model.safetensors", again);
    assert_same_file(a, b);

    /* it learns: plain settings, a few more epochs */
    tiny_config(&cfg);
    cfg.epochs = 6;
    cfg.flip = 0; /* a mirror image would swap the quadrant classes */
    cfg.schedule = RN_SCHEDULE_COSINE;
    const char *learn = rn_test_path("learn");
    run(&cfg, learn, train, eval, 0);
    snprintf(b, sizeof b, "%s/model.safetensors", learn);
    assert_int_equal(rn_net_open(&net, b, NULL, NULL), RN_OK);
    rn_eval_result r;
    assert_int_equal(rn_evaluate(net, eval, 64, 0, &r), RN_OK);
    if (r.correct < 16) fail_msg("after 6 epochs only %ld of 20 right", r.correct);
    rn_net_free(net);
    rn_dataset_free(train);
    rn_dataset_free(eval);
}

/* --clip-grad-norm reaches every step: a limit no gradient reaches gives the bits of a run
 * without it; a small one, another model. */
static void test_trainer_clips_gradients(void **state)
{
    (void)state;
    rn_dataset *train = quadrants(24, 4);
    rn_train_config cfg;
    tiny_config(&cfg);
    const char *off = rn_test_path("clip-off"), *high = rn_test_path("clip-high"), *low = rn_test_path("clip-low");
    run(&cfg, off, train, NULL, 0);
    cfg.clip_grad_norm = 1e6f;
    run(&cfg, high, train, NULL, 0);
    cfg.clip_grad_norm = 1e-3f;
    run(&cfg, low, train, NULL, 0);
    char a[600], b[600];
    snprintf(a, sizeof a, "%s/model.safetensors", off);
    snprintf(b, sizeof b, "%s/model.safetensors", high);
    assert_same_file(a, b);
    snprintf(b, sizeof b, "%s/model.safetensors", low);
    size_t na, nb;
    char *fa = read_file(a, &na), *fb = read_file(b, &nb);
    assert_true(na != nb || memcmp(fa, fb, na) != 0);
    free(fa);
    free(fb);
    rn_dataset_free(train);
}

static void test_trainer_stops_on_nan(void **state)
{
    (void)state;
    rn_dataset *train = quadrants(40, 3);
    rn_train_config cfg;
    tiny_config(&cfg);
    cfg.lr = 1e30f;
    cfg.schedule = RN_SCHEDULE_CONSTANT;
    const char *dir = rn_test_path("nan");
    mkdir(dir, 0777);
    rn_trainer *t;
    assert_int_equal(rn_trainer_create(&t, &cfg, dir, train, NULL, NULL), RN_OK);
    rn_train_outcome oc;
    assert_int_equal(rn_trainer_run(t, NULL, &oc), RN_ERR_NUMERIC);
    const char *msg = rn_last_error();
    if (!strstr(msg, "step ") || !(strstr(msg, "NaN") || strstr(msg, "infinite")))
        fail_msg("message: %s", msg);
    assert_false(oc.finished);
    rn_trainer_free(t);
    /* the last good checkpoint (the initial one) is whole and at step 0 */
    char path[600];
    snprintf(path, sizeof path, "%s/checkpoint.safetensors", dir);
    rn_train_config back;
    long step;
    assert_int_equal(rn_checkpoint_read_config(path, &back, NULL, NULL, &step), RN_OK);
    assert_int_equal(step, 0);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    assert_int_equal(access(path, F_OK), -1);
    rn_dataset_free(train);
}

static void test_checkpoint_errors(void **state)
{
    (void)state;
    rn_dataset *train = quadrants(20, 4);
    rn_train_config cfg;
    tiny_config(&cfg);
    cfg.epochs = 1;
    const char *dir = rn_test_path("errors");
    run(&cfg, dir, train, NULL, 0);
    char model[600], ckpt[600];
    snprintf(model, sizeof model, "%s/model.safetensors", dir);
    snprintf(ckpt, sizeof ckpt, "%s/checkpoint.safetensors", dir);
    rn_train_config back;
    /* a model is not a checkpoint */
    assert_int_equal(rn_checkpoint_read_config(model, &back, NULL, NULL, NULL), RN_ERR_FORMAT);
    assert_non_null(strstr(rn_last_error(), "not a checkpoint"));
    /* missing */
    assert_int_equal(rn_checkpoint_read_config(rn_test_path("nowhere/checkpoint.safetensors"), &back,
                                               NULL, NULL, NULL),
                     RN_ERR_IO);
    /* a checkpoint of another network */
    rn_train_config other = cfg;
    snprintf(other.arch, sizeof other.arch, "resnet14");
    rn_trainer *t;
    assert_int_equal(rn_trainer_create(&t, &other, dir, train, NULL, NULL), RN_OK);
    assert_int_equal(rn_trainer_restore(t), RN_ERR_MISMATCH);
    assert_non_null(strstr(rn_last_error(), "resnet14"));
    rn_trainer_free(t);
    /* a finished run resumed: nothing left, the model is written again, identically */
    size_t len;
    char *before = read_file(model, &len);
    assert_int_equal(rn_trainer_create(&t, &cfg, dir, train, NULL, NULL), RN_OK);
    assert_int_equal(rn_trainer_restore(t), RN_OK);
    rn_train_outcome oc;
    assert_int_equal(rn_trainer_run(t, NULL, &oc), RN_OK);
    assert_true(oc.finished);
    assert_int_equal(oc.steps_run, 0);
    rn_trainer_free(t);
    size_t len2;
    char *after = read_file(model, &len2);
    assert_int_equal(len, len2);
    assert_memory_equal(before, after, len);
    free(before);
    free(after);
    /* other training data than the run's */
    rn_dataset *changed = quadrants(20, 9);
    assert_int_equal(rn_trainer_create(&t, &cfg, dir, changed, NULL, NULL), RN_OK);
    assert_int_equal(rn_trainer_restore(t), RN_ERR_MISMATCH);
    assert_non_null(strstr(rn_last_error(), "data changed"));
    rn_trainer_free(t);
    rn_dataset_free(changed);
    /* input shape that does not fit the data */
    other = cfg;
    other.in_c = 3, other.in_h = 8, other.in_w = 8;
    assert_int_equal(rn_trainer_create(&t, &other, dir, train, NULL, NULL), RN_ERR_MISMATCH);
    assert_non_null(strstr(rn_last_error(), "--input-shape"));
    rn_dataset_free(train);
}



int main(void)
{
    /* Tiny networks: threads only add fork/join waits (and on a busy machine, long ones). */
    omp_set_num_threads(1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_label_smoothing_kernel),
        cmocka_unit_test(test_net_label_smoothing),
        cmocka_unit_test(test_sgd_decay_1d),
        cmocka_unit_test(test_sgd_state),
        cmocka_unit_test(test_clip_grad_norm),
        cmocka_unit_test(test_schedules),
        cmocka_unit_test(test_accumulation),
        cmocka_unit_test(test_config_json),
        cmocka_unit_test(test_config_table),
        cmocka_unit_test(test_evaluate),
        cmocka_unit_test(test_tta_views),
        cmocka_unit_test(test_evaluate_tta),
        cmocka_unit_test(test_trainer_learns_and_resumes_exactly),
        cmocka_unit_test(test_trainer_clips_gradients),
        cmocka_unit_test(test_trainer_stops_on_nan),
        cmocka_unit_test(test_checkpoint_errors),
    };
    return cmocka_run_group_tests(tests, rn_test_group_setup, rn_test_group_teardown);
}
