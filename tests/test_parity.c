/* Parity with PyTorch: the C engine must compute what PyTorch computes (docs/parity.md).
 *
 * tools/torch_ref.py writes, per case, RN_REF_DIR/<case>/weights.safetensors (an initial
 * state_dict, torchvision style, no metadata) and state.safetensors (metadata describing the
 * network and the run; input, labels, eval and train logits, loss, every parameter gradient,
 * the BN buffers after one training forward, the losses and final state of a few SGD steps).
 * For each case this test opens the weights with rn_net_open (the architecture given, as for a
 * torchvision export), reruns the same computation and compares every tensor by its normwise
 * relative error ||c - ref|| / ||ref||. The worst tensor of each category is printed, so the
 * log shows the measured margins.
 *
 * A missing RN_REF_DIR or a missing case FAILS: the runner regenerates the states with live
 * PyTorch every time, so an absent state means something is broken, never a reason to skip. */
#define _POSIX_C_SOURCE 200809L

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "io/safetensors.h"
#include "resnet.h"
#include "support/check.h"

/* The required cases: the lines of tests/parity_cases.txt without "extra" (the file that
 * tools/torch_ref.py reads too; RN_PARITY_CASES names another). */
#define MAX_CASES 64
static char CASES[MAX_CASES][128];
static int N_CASES;

/* ---- tolerances: normwise relative errors, per category --------------------------------
 * Each comment: the worst error measured on the C engine when the tolerance was set (gcc -O2,
 * OpenBLAS then, 2 threads; docs/parity.md has today's figures), and the worst difference between PyTorch float32 and PyTorch float64 on the same cases
 * (`tools/torch_ref.py --precision`), i.e. what a second correct float32 implementation may
 * differ by. Details in docs/parity.md. */
enum { CAT_LOGITS_EVAL, CAT_LOGITS_TRAIN, CAT_LOSS, CAT_GRAD, CAT_GRAD_ALL, CAT_AFTER1,
       CAT_SGD_LOSSES, CAT_FINAL, CAT_FINAL_ALL, CAT_FINAL_STATS, N_CAT };
static const char *const CAT_NAMES[N_CAT] = {"logits_eval", "logits_train", "loss", "grad",
                                             "grad(all)", "after1", "sgd_losses", "final",
                                             "final(all)", "final_stats"};
static const double TOL[N_CAT] = {
    1e-4, /* logits_eval: C 2.0e-6 (resnet50), PyTorch f32/f64 1.8e-6 (plain20) */
    1e-4, /* logits_train: C 2.6e-6 (resnet50-bn-after-add), f32/f64 2.5e-6 (same) */
    1e-5, /* loss: C 3.3e-7, f32/f64 2.6e-7 */
    1e-3, /* grad, each parameter's gradient, before the kink allowance (below): C 1.2e-2
           * (preresnet164 layer2.11.bn2.bias: one ReLU-kink flip, its measured kink
           * sensitivity 1.2e-2), 2.6e-4 elsewhere; f32/f64 4.3e-3 (resnet50-bn-after-add,
           * a flip) */
    1e-3, /* grad(all), all gradients as one vector: C 6.2e-4 (preresnet164, the flip) */
    1e-5, /* after1, BN buffers after one training forward: C 5.6e-7, f32/f64 4.8e-7 */
    2e-3, /* sgd_losses: C 5.9e-5 (resnet50), f32/f64 4.9e-4 (resnet50-bn-after-add) */
    3e-3, /* final, each parameter after the SGD steps, before the kink allowance: C 3.1e-4
           * (resnet50 conv1), f32/f64 1.6e-3 (resnet50-bn-after-add) */
    1e-3, /* final(all), all parameters as one vector: C 7.5e-6 (plain20) */
    2e-2, /* final_stats, BN running statistics after the SGD steps: C 3.3e-4 (resnet50
           * layer4.2.bn3.running_var), f32/f64 4.5e-3 (resnet50-bn-after-add, same): at 64x64,
           * batch 2, ImageNet's layer4 normalizes 8 values per channel, and the running
           * statistics of 5 steps follow the trajectory of the parameters */
};
/* A gradient is compared relative to max(||ref||, GRAD_FLOOR * rms * sqrt(numel)), rms being the
 * root mean square of all the case's reference gradient elements: a gradient that is zero in
 * exact arithmetic (the bias of a projection's BN under bn-after-add, which the BN after the
 * addition cancels) holds only rounding noise, and its relative error means nothing. */
#define GRAD_FLOOR 1e-3
/* Each grad.* and final.* tensor (and the two (all) vectors) may also differ by KINK_SAFETY
 * times its own measured sensitivity to one ReLU-kink flip, kink.<name> in the state (see
 * kink_sensitivity in tools/torch_ref.py): a ReLU input within rounding of zero may fall on the
 * other side of the kink here than in PyTorch, which changes every gradient upstream of it
 * discretely (that element's share of each sum: 1e-3 .. 3e-2 per tensor), and which inputs are
 * that close depends on the BLAS, the thread count and the compiler. The factor covers a flip
 * at another site than the 16 the reference tries, or two flips. */
#define KINK_SAFETY 4.0

/* ---- helpers ------------------------------------------------------------------------------ */
typedef struct {
    double num[N_CAT], den[N_CAT]; /* sums of squares for the (all) categories */
    double err[N_CAT];             /* the worst error of the category */
    char worst[N_CAT][96];         /* and its tensor */
    double ratio[N_CAT];           /* the worst error / tolerance */
    char worst_ratio[N_CAT][96];
    int failures;
    char first_failure[256];
} case_report;

static void report_init(case_report *r)
{
    memset(r, 0, sizeof *r);
    for (int c = 0; c < N_CAT; c++) r->err[c] = r->ratio[c] = -1.0;
}

/* Records one comparison against tolerance tol. A NaN is a failure and the worst of all. */
static void record_tol(case_report *r, int cat, const char *name, double err, double tol)
{
    int bad = !(err <= tol);
    if (bad) {
        if (!r->failures)
            snprintf(r->first_failure, sizeof r->first_failure, "%s: %s rel err %.3e > %.2e",
                     CAT_NAMES[cat], name, err, tol);
        if (++r->failures <= 10)
            print_message("    FAIL %-13s %s: %.3e > tol %.2e\n", CAT_NAMES[cat], name, err, tol);
    }
    if (r->err[cat] < 0 || err > r->err[cat] || err != err) {
        r->err[cat] = err;
        snprintf(r->worst[cat], sizeof r->worst[cat], "%s", name);
    }
    double q = err / tol;
    if (r->ratio[cat] < 0 || q > r->ratio[cat] || q != q) {
        r->ratio[cat] = q;
        snprintf(r->worst_ratio[cat], sizeof r->worst_ratio[cat], "%s", name);
    }
}

static void record(case_report *r, int cat, const char *name, double err)
{
    record_tol(r, cat, name, err, TOL[cat]);
}

/* The tolerance of a grad.* or final.* tensor (key) or of grad_all / final_all: the
 * category's, or KINK_SAFETY times the reference's kink sensitivity when larger. */
static double kink_tol(const rn_st_file *f, int cat, const char *key)
{
    char kkey[192];
    float kink;
    snprintf(kkey, sizeof kkey, "kink.%s", key);
    if (rn_st_read_f32(f, kkey, &kink, 1)) fail_msg("%s", rn_last_error());
    return fmax(TOL[cat], KINK_SAFETY * (double)kink);
}

/* ||a - ref|| / ||ref||; NaN anywhere gives NaN. */
static double rel_err(const float *a, const float *ref, size_t n)
{
    return rn_test_rel_err(a, ref, n);
}

static double sq_norm(const float *a, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * (double)a[i];
    return s;
}

static double sq_diff(const float *a, const float *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - (double)b[i];
        s += d * d;
    }
    return s;
}

/* Adds one tensor to an (all) category. */
static void accumulate(case_report *r, int cat, const float *a, const float *ref, size_t n)
{
    r->num[cat] += sq_diff(a, ref, n);
    r->den[cat] += sq_norm(ref, n);
}

static void record_all(case_report *r, int cat, double tol)
{
    record_tol(r, cat, CAT_NAMES[cat], sqrt(r->num[cat]) / fmax(sqrt(r->den[cat]), 1e-30), tol);
}

static double rel_err_i64(const int64_t *a, const int64_t *ref, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - (double)ref[i];
        num += d * d;
        den += (double)ref[i] * (double)ref[i];
    }
    return sqrt(num) / fmax(sqrt(den), 1e-30);
}

static const char *meta(const rn_st_file *f, const char *key)
{
    const char *v = rn_st_meta(f, key);
    if (!v) fail_msg("%s: metadata '%s' missing", rn_st_path(f), key);
    return v;
}

static double meta_num(const rn_st_file *f, const char *key)
{
    const char *v = meta(f, key);
    char *end;
    double d = strtod(v, &end);
    if (end == v || *end) fail_msg("%s: metadata '%s' is not a number: '%s'", rn_st_path(f), key, v);
    return d;
}

/* An F32 tensor of the state file, with its element count checked. */
static float *read_f32(const rn_st_file *f, const char *name, size_t count)
{
    float *p = malloc((count ? count : 1) * sizeof *p);
    assert_non_null(p);
    if (rn_st_read_f32(f, name, p, count)) fail_msg("%s", rn_last_error());
    return p;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Worst errors and worst error/tolerance ratios over all cases, for the closing summary. */
static double g_worst[N_CAT], g_ratio[N_CAT];
static char g_worst_where[N_CAT][160], g_ratio_where[N_CAT][160];

/* ---- one case ------------------------------------------------------------------------------ */
static void run_case(void **state)
{
    const char *name = *state;
    const char *dir = getenv("RN_REF_DIR");
    if (!dir || !*dir)
        fail_msg("RN_REF_DIR is not set: run `/usr/bin/python3 tools/torch_ref.py --out DIR` and "
                 "set RN_REF_DIR=DIR (make test does both)");
    char wpath[1024], spath[1024];
    snprintf(wpath, sizeof wpath, "%s/%s/weights.safetensors", dir, name);
    snprintf(spath, sizeof spath, "%s/%s/state.safetensors", dir, name);
    double t0 = now();

    rn_st_file *sf = NULL, *wf = NULL;
    if (rn_st_open(&sf, spath)) fail_msg("case %s: %s", name, rn_last_error());
    if (rn_st_open(&wf, wpath)) fail_msg("case %s: %s", name, rn_last_error());
    assert_null(rn_st_meta(wf, "arch")); /* a torchvision-style file: no metadata */

    /* metadata -> options */
    const char *arch = meta(sf, "arch");
    rn_net_options opt;
    rn_net_options_init(&opt);
    rn_ordering ord;
    rn_shortcut sc;
    if (rn_ordering_parse(meta(sf, "ordering"), &ord)) fail_msg("%s", rn_last_error());
    if (rn_shortcut_parse(meta(sf, "shortcut"), &sc)) fail_msg("%s", rn_last_error());
    opt.ordering = ord;
    opt.shortcut = sc;
    opt.classes = (int)meta_num(sf, "classes");
    opt.gate_bias = (float)meta_num(sf, "gate_bias");
    char tail;
    if (sscanf(meta(sf, "input"), "%dx%dx%d%c", &opt.in_c, &opt.in_h, &opt.in_w, &tail) != 3)
        fail_msg("%s: metadata 'input' is not CxHxW", spath);
    const int n = (int)meta_num(sf, "batch"), steps = (int)meta_num(sf, "steps");
    const float lr = (float)meta_num(sf, "lr"), momentum = (float)meta_num(sf, "momentum"),
                wd = (float)meta_num(sf, "weight_decay");
    const int k = opt.classes;
    assert_true(n > 0 && k > 0 && steps > 0);

    rn_net *net = NULL;
    if (rn_net_open(&net, wpath, arch, &opt))
        fail_msg("case %s: rn_net_open(%s, %s): %s", name, wpath, arch, rn_last_error());
    /* RN_PARITY_LAYOUT=blocked: the same cases on channel-blocked activations */
    const char *layout = getenv("RN_PARITY_LAYOUT");
    if (layout && !strcmp(layout, "blocked") && rn_net_set_blocked(net, 1))
        fail_msg("case %s: %s", name, rn_last_error());
    const int nt = rn_net_num_tensors(net);
    if (nt != rn_st_count(wf))
        fail_msg("case %s: the net has %d tensors, the file %d", name, nt, rn_st_count(wf));

    const size_t in_numel = (size_t)n * (size_t)opt.in_c * (size_t)opt.in_h * (size_t)opt.in_w;
    float *x = read_f32(sf, "input", in_numel);
    int64_t *labels64 = malloc((size_t)n * sizeof *labels64);
    int *labels = malloc((size_t)n * sizeof *labels);
    assert_true(labels64 && labels);
    if (rn_st_read_i64(sf, "labels", labels64, (size_t)n)) fail_msg("%s", rn_last_error());
    for (int i = 0; i < n; i++) labels[i] = (int)labels64[i];

    case_report rep;
    report_init(&rep);
    float *logits = malloc((size_t)n * (size_t)k * sizeof *logits);
    assert_non_null(logits);
    /* every net tensor must be compared once after one step and once after SGD */
    int *seen_step1 = calloc((size_t)nt, sizeof *seen_step1);
    int *seen_final = calloc((size_t)nt, sizeof *seen_final);
    assert_true(seen_step1 && seen_final);

    /* 1. evaluation forward */
    if (rn_net_forward(net, x, n, 0, logits)) fail_msg("%s", rn_last_error());
    float *ref = read_f32(sf, "logits_eval", (size_t)n * (size_t)k);
    record(&rep, CAT_LOGITS_EVAL, "logits_eval", rel_err(logits, ref, (size_t)n * (size_t)k));
    free(ref);

    /* 2. one training forward + backward */
    float loss = 0.0f;
    rn_net_zero_grad(net);
    if (rn_net_forward(net, x, n, 1, logits)) fail_msg("%s", rn_last_error());
    if (rn_net_backward(net, labels, &loss)) fail_msg("%s", rn_last_error());
    ref = read_f32(sf, "logits_train", (size_t)n * (size_t)k);
    record(&rep, CAT_LOGITS_TRAIN, "logits_train", rel_err(logits, ref, (size_t)n * (size_t)k));
    free(ref);
    ref = read_f32(sf, "loss", 1);
    record(&rep, CAT_LOSS, "loss", rel_err(&loss, ref, 1));
    free(ref);

    /* the rms of all reference gradient elements, for the floor */
    char key[160];
    double g_sq = 0;
    size_t g_n = 0;
    for (int i = 0; i < nt; i++) {
        rn_tensor_info t;
        assert_int_equal(rn_net_tensor(net, i, &t), RN_OK);
        if (t.kind != RN_TENSOR_PARAM) continue;
        snprintf(key, sizeof key, "grad.%s", t.name);
        ref = read_f32(sf, key, t.numel);
        g_sq += sq_norm(ref, t.numel);
        g_n += t.numel;
        free(ref);
    }
    const double g_rms = sqrt(g_sq / (double)(g_n ? g_n : 1));
    for (int i = 0; i < nt; i++) {
        rn_tensor_info t;
        assert_int_equal(rn_net_tensor(net, i, &t), RN_OK);
        rn_tensor_info t2; /* the same tensor, by name: rn_net_find_tensor is the API to test */
        assert_int_equal(rn_net_find_tensor(net, t.name, &t2), RN_OK);
        assert_string_equal(t2.name, t.name);
        if (t.kind == RN_TENSOR_PARAM) {
            snprintf(key, sizeof key, "grad.%s", t.name);
            ref = read_f32(sf, key, t.numel);
            const double den = fmax(sqrt(sq_norm(ref, t.numel)),
                                    GRAD_FLOOR * g_rms * sqrt((double)t.numel));
            record_tol(&rep, CAT_GRAD, key, sqrt(sq_diff(t2.grad, ref, t.numel)) / den,
                       kink_tol(sf, CAT_GRAD, key));
            accumulate(&rep, CAT_GRAD_ALL, t2.grad, ref, t.numel);
            free(ref);
        } else if (t.kind == RN_TENSOR_BUFFER) {
            snprintf(key, sizeof key, "after1.%s", t.name);
            ref = read_f32(sf, key, t.numel);
            record(&rep, CAT_AFTER1, key, rel_err(t2.data, ref, t.numel));
            free(ref);
        } else {
            snprintf(key, sizeof key, "after1.%s", t.name);
            int64_t *r64 = malloc(t.numel * sizeof *r64);
            assert_non_null(r64);
            if (rn_st_read_i64(sf, key, r64, t.numel)) fail_msg("%s", rn_last_error());
            record(&rep, CAT_AFTER1, key, rel_err_i64(t2.i64, r64, t.numel));
            free(r64);
        }
        seen_step1[i] = 1;
    }
    record_all(&rep, CAT_GRAD_ALL, kink_tol(sf, CAT_GRAD_ALL, "grad_all"));

    /* 3. SGD from the initial weights again */
    if (rn_net_load(net, wpath)) fail_msg("%s", rn_last_error());
    rn_sgd *sgd = NULL;
    if (rn_sgd_create(&sgd, net, momentum, wd, 0)) fail_msg("%s", rn_last_error());
    float *losses = malloc((size_t)steps * sizeof *losses);
    assert_non_null(losses);
    for (int s = 0; s < steps; s++) {
        if (rn_net_train_step(net, x, labels, n, &losses[s])) fail_msg("%s", rn_last_error());
        if (rn_sgd_step(sgd, net, lr)) fail_msg("%s", rn_last_error());
    }
    ref = read_f32(sf, "sgd_losses", (size_t)steps);
    record(&rep, CAT_SGD_LOSSES, "sgd_losses", rel_err(losses, ref, (size_t)steps));
    free(ref);
    for (int i = 0; i < nt; i++) {
        rn_tensor_info t;
        assert_int_equal(rn_net_tensor(net, i, &t), RN_OK);
        snprintf(key, sizeof key, "final.%s", t.name);
        if (t.kind == RN_TENSOR_COUNTER) {
            int64_t *r64 = malloc(t.numel * sizeof *r64);
            assert_non_null(r64);
            if (rn_st_read_i64(sf, key, r64, t.numel)) fail_msg("%s", rn_last_error());
            record(&rep, CAT_FINAL_STATS, key, rel_err_i64(t.i64, r64, t.numel)); /* exact */
            free(r64);
        } else {
            ref = read_f32(sf, key, t.numel);
            if (t.kind == RN_TENSOR_PARAM) {
                record_tol(&rep, CAT_FINAL, key, rel_err(t.data, ref, t.numel),
                           kink_tol(sf, CAT_FINAL, key));
                accumulate(&rep, CAT_FINAL_ALL, t.data, ref, t.numel);
            } else {
                record(&rep, CAT_FINAL_STATS, key, rel_err(t.data, ref, t.numel));
            }
            free(ref);
        }
        seen_final[i] = 1;
    }
    record_all(&rep, CAT_FINAL_ALL, kink_tol(sf, CAT_FINAL_ALL, "final_all"));

    /* No silently unchecked tensor: every net tensor compared twice, and the state file holds
     * exactly one grad./after1./final. entry per tensor of the net (nothing the net lacks). */
    int n_param = 0, n_step1 = 0, n_final = 0, n_ref_step1 = 0, n_ref_final = 0;
    for (int i = 0; i < nt; i++) {
        rn_tensor_info t;
        rn_net_tensor(net, i, &t);
        n_param += t.kind == RN_TENSOR_PARAM;
        n_step1 += seen_step1[i];
        n_final += seen_final[i];
    }
    for (int i = 0; i < rn_st_count(sf); i++) {
        const char *en = rn_st_entry_at(sf, i)->name;
        n_ref_step1 += !strncmp(en, "grad.", 5) || !strncmp(en, "after1.", 7);
        n_ref_final += !strncmp(en, "final.", 6);
    }
    assert_int_equal(n_step1, nt);
    assert_int_equal(n_final, nt);
    assert_int_equal(n_ref_step1, nt);
    assert_int_equal(n_ref_final, nt);

    print_message("%-28s %4d tensors (%d params) %6.2fs\n", name, nt, n_param, now() - t0);
    for (int c = 0; c < N_CAT; c++) {
        print_message("    %-13s worst %.2e %-40s  worst err/tol %.3f %s\n", CAT_NAMES[c],
                      rep.err[c], rep.worst[c], rep.ratio[c],
                      strcmp(rep.worst_ratio[c], rep.worst[c]) ? rep.worst_ratio[c] : "");
        if (rep.err[c] > g_worst[c] || rep.err[c] != rep.err[c]) {
            g_worst[c] = rep.err[c];
            snprintf(g_worst_where[c], sizeof g_worst_where[c], "%s %s", name, rep.worst[c]);
        }
        if (rep.ratio[c] > g_ratio[c] || rep.ratio[c] != rep.ratio[c]) {
            g_ratio[c] = rep.ratio[c];
            snprintf(g_ratio_where[c], sizeof g_ratio_where[c], "%s %s", name,
                     rep.worst_ratio[c]);
        }
    }

    free(losses);
    rn_sgd_free(sgd);
    free(seen_step1);
    free(seen_final);
    free(logits);
    free(x);
    free(labels64);
    free(labels);
    rn_net_free(net);
    rn_st_close(wf);
    rn_st_close(sf);
    if (rep.failures)
        fail_msg("case %s: %d tensor(s) out of tolerance; first: %s", name, rep.failures,
                 rep.first_failure);
}

static int summary(void **state)
{
    (void)state;
    print_message("worst over all cases (error; error / its tolerance):\n");
    for (int c = 0; c < N_CAT; c++)
        print_message("    %-13s %.2e %-50s  %.3f %s\n", CAT_NAMES[c], g_worst[c], g_worst_where[c],
                      g_ratio[c], g_ratio_where[c]);
    return 0;
}

/* Reads the required case names of the case list into CASES; 0, or -1 with a message. */
static int read_case_list(void)
{
    const char *path = getenv("RN_PARITY_CASES");
    if (!path || !*path) path = "tests/parity_cases.txt";
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "test_parity: cannot open the case list %s (run from the repository's "
                        "root, or set RN_PARITY_CASES)\n", path);
        return -1;
    }
    char line[256];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "#\r\n")] = '\0';
        char name[128], arch[64], ord[64], sc[16], extra[16];
        int words = sscanf(line, "%127s %63s %63s %15s %15s", name, arch, ord, sc, extra);
        if (words <= 0) continue;
        if ((words != 4 && words != 5) || (words == 5 && strcmp(extra, "extra")) ||
            N_CASES == MAX_CASES) {
            fprintf(stderr, "test_parity: %s: bad line '%s'\n", path, line);
            fclose(f);
            return -1;
        }
        if (words == 4) snprintf(CASES[N_CASES++], sizeof CASES[0], "%s", name);
    }
    fclose(f);
    if (N_CASES == 0) fprintf(stderr, "test_parity: %s lists no required case\n", path);
    return N_CASES ? 0 : -1;
}

/* The required cases, then any other case that RN_REF_DIR/cases.txt lists (torch_ref.py
 * --cases ... can add the extra ones). */
int main(void)
{
    static char extra[64][128];
    int n_extra = 0;
    if (read_case_list()) return 1;
    const char *dir = getenv("RN_REF_DIR");
    if (dir && *dir) {
        char path[1024], line[128];
        snprintf(path, sizeof path, "%s/cases.txt", dir);
        FILE *f = fopen(path, "r");
        while (f && n_extra < 64 && fgets(line, sizeof line, f)) {
            line[strcspn(line, "\r\n")] = '\0';
            int known = !*line;
            for (int i = 0; i < N_CASES && !known; i++) known = !strcmp(line, CASES[i]);
            if (!known) snprintf(extra[n_extra++], sizeof extra[0], "%s", line);
        }
        if (f) fclose(f);
    }
    struct CMUnitTest tests[MAX_CASES + 64];
    /* cmocka_run_group_tests() is a macro over this function that takes sizeof of a fixed
     * array; the list here is only known at run time. */
    int n = 0;
    for (int i = 0; i < N_CASES; i++) {
        struct CMUnitTest t = {CASES[i], run_case, NULL, NULL, (void *)CASES[i]};
        tests[n++] = t;
    }
    for (int i = 0; i < n_extra; i++) {
        struct CMUnitTest t = {extra[i], run_case, NULL, NULL, (void *)extra[i]};
        tests[n++] = t;
    }
    return _cmocka_run_group_tests("parity", tests, (size_t)n, NULL, summary);
}
