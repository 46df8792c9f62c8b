/* Every allocation made to fail, one at a time. The program is linked with
 * -Wl,--wrap=malloc,... (Makefile), so that every allocation of the library's objects goes
 * through the __wrap_ functions below; cJSON's are routed there with cJSON_InitHooks. For each
 * scenario it first counts the allocations of a clean run (N_total), then, for every N in
 * 1..N_total (or a fixed sample, see below), runs the scenario in a child process with the Nth
 * allocation failing and checks:
 *   - the call that met the failure returns RN_ERR_NOMEM with a message (never another code,
 *     never a crash: a signal is reported with its scenario and N);
 *   - it changed nothing that it promises to leave alone: the network's tensors, random state
 *     and metadata (and the optimizer's state) are the bits they were before the call, or the
 *     object was refused (create/open return NULL); files are whole or absent, no temporary
 *     file is left;
 *   - the same call made again without a failure, and everything after it, ends with the bits
 *     of the clean run (outputs, weights, files): nothing was half-updated; a trainer whose run
 *     failed either finishes it as the clean run does or refuses, and then a new trainer resumed
 *     from the run folder must;
 *   - under AddressSanitizer, LeakSanitizer finds no leak when the child exits.
 * Scenarios: open (rn_net_open, rn_net_load, rn_tensor_load), forward (batch sizes that change,
 * frozen and not, a load into a frozen net), train (create, labels, SGD, forward, backward,
 * micro-batches), eval (plain and test-time augmentation), checkpoint (model and checkpoint
 * saved, read back, loaded), trainer (a two-epoch run with evaluation and checkpoints), resume
 * (a stopped run restored and finished), data (IDX files, a folder of pictures, subsets).
 *
 * Usage: oom [--full] [--scenario NAME[,NAME...]] [--fail N] [--list]
 *   default: every N up to SWEEP_ALL, then a fixed-seed sample of SWEEP_SAMPLE more per
 *   scenario; --full (or FULL=1 in the environment): every N. --fail N runs that one N of the
 *   named scenario in this process (for a debugger). Exit status 0 when every check passed. */
#define _GNU_SOURCE /* dladdr */

#include <cjson/cJSON.h>
#include <dirent.h>
#include <dlfcn.h>
#include <execinfo.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/json_check.h"
#include "resnet.h"
#include "train/checkpoint.h"
#include "train/dataset.h"
#include "train/evaluate.h"
#include "train/trainer.h"
#include "train/tta.h"

#define SWEEP_ALL 300    /* every N up to this one */
#define SWEEP_SAMPLE 300 /* then this many more, drawn with a fixed seed */
#define LSAN_EXIT 23     /* LeakSanitizer's exit status when it finds a leak */
/* A child's exit status besides 0 (passed): */
#define CHECK_EXIT 5     /* a check failed (the child says which) */
#define KNOWN_EXIT 3     /* a check failed, on a known defect (known[] below) */
#define NOT_REACHED 4    /* the run made fewer allocations than the clean one (the count of a
                            cJSON text's buffer growth depends on the timings it prints) */

/* ---- the failing allocator ------------------------------------------------------------------- */
void *__real_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t size);
char *__real_strdup(const char *s);
int __real_posix_memalign(void **p, size_t align, size_t size);
void *__real_aligned_alloc(size_t align, size_t size);

/* Counted atomically: OpenMP threads and the loader's thread may allocate too. */
static atomic_int armed;
static atomic_long count, fail_at, injected;

/* Where the failed allocation was made, for the report and the list of known defects. */
#define MAX_FRAMES 24
static void *frames[MAX_FRAMES];
static int n_frames;

static int should_fail(void)
{
    if (!atomic_load(&armed)) return 0;
    long n = atomic_fetch_add(&count, 1) + 1;
    if (n != atomic_load(&fail_at)) return 0;
    atomic_fetch_add(&injected, 1);
    n_frames = backtrace(frames, MAX_FRAMES);
    return 1;
}

void *__wrap_malloc(size_t size)
{
    if (should_fail()) return errno = ENOMEM, NULL;
    return __real_malloc(size);
}

void *__wrap_calloc(size_t n, size_t size)
{
    if (should_fail()) return errno = ENOMEM, NULL;
    return __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t size)
{
    if (should_fail()) return errno = ENOMEM, NULL;
    return __real_realloc(p, size);
}

char *__wrap_strdup(const char *s)
{
    if (should_fail()) return errno = ENOMEM, NULL;
    return __real_strdup(s);
}

int __wrap_posix_memalign(void **p, size_t align, size_t size)
{
    if (should_fail()) return ENOMEM;
    return __real_posix_memalign(p, align, size);
}

void *__wrap_aligned_alloc(size_t align, size_t size)
{
    if (should_fail()) return errno = ENOMEM, NULL;
    return __real_aligned_alloc(align, size);
}

/* cJSON allocates inside its own library: through these, it uses the wrapped malloc. */
static void *json_malloc(size_t size) { return malloc(size); }
static void json_free(void *p) { free(p); }

static void arm(long n)
{
    atomic_store(&count, 0);
    atomic_store(&injected, 0);
    atomic_store(&fail_at, n);
    atomic_store(&armed, 1);
}

static void disarm(void) { atomic_store(&armed, 0); }
/* Around the harness's own set-up inside a scenario: the count goes on where it stopped. */
static void pause_faults(void) { atomic_store(&armed, 0); }
static void resume_faults(void) { atomic_store(&armed, 1); }

/* The functions of this program on the failed allocation's stack, innermost first, without the
 * wrappers: "rn_sgemm < rn_fc_forward < rn_net_forward" (addr2line reads the debug information). */
static void failed_at(char *out, size_t cap)
{
    out[0] = '\0';
    Dl_info self;
    if (!n_frames || !dladdr((void *)failed_at, &self)) return;
    char cmd[2048];
    size_t used = (size_t)snprintf(cmd, sizeof cmd, "addr2line -f -e /proc/%ld/exe", (long)getpid());
    for (int i = 0; i < n_frames && used < sizeof cmd - 32; i++) {
        Dl_info d;
        if (!dladdr(frames[i], &d) || d.dli_fbase != self.dli_fbase) continue;
        /* a return address: the call is the byte before it */
        used += (size_t)snprintf(cmd + used, sizeof cmd - used, " %#lx",
                                 (unsigned long)((char *)frames[i] - (char *)d.dli_fbase - 1));
    }
    FILE *p = popen(cmd, "r");
    if (!p) return;
    char line[512];
    size_t at = 0;
    int shown = 0;
    for (int k = 0; fgets(line, sizeof line, p); k++) {
        if (k % 2 || shown == 5) continue; /* the second line of each pair is file:line */
        line[strcspn(line, "\n")] = '\0';
        if (!strncmp(line, "__wrap_", 7) || !strcmp(line, "should_fail") || !strcmp(line, "json_malloc") ||
            !strcmp(line, "??"))
            continue;
        at += (size_t)snprintf(out + at, at < cap ? cap - at : 0, "%s%s", shown++ ? " < " : "", line);
        if (at >= cap) break;
    }
    pclose(p);
}

/* ---- digests: FNV-1a over bytes ---------------------------------------------------------------- */
#define FNV_START 1469598103934665603ULL

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ULL;
    return h;
}

static uint64_t fnv_str(uint64_t h, const char *s) { return s ? fnv(h, s, strlen(s) + 1) : fnv(h, "", 1); }

/* Everything a network holds that a call may change: tensors, random state, metadata. */
static uint64_t net_state(const rn_net *net)
{
    if (!net) return 0;
    uint64_t h = FNV_START;
    for (int i = 0; i < rn_net_num_tensors(net); i++) {
        rn_tensor_info t;
        rn_net_tensor(net, i, &t);
        h = t.i64 ? fnv(h, t.i64, t.numel * sizeof *t.i64) : fnv(h, t.data, t.numel * sizeof *t.data);
    }
    uint64_t rng[4];
    rn_net_get_rng_state(net, rng);
    h = fnv(h, rng, sizeof rng);
    float mean[16] = {0}, std[16] = {0};
    int has = rn_net_get_normalization(net, mean, std);
    h = fnv(h, &has, sizeof has);
    h = fnv(h, mean, sizeof mean);
    h = fnv(h, std, sizeof std);
    for (int i = 0; rn_net_label(net, i); i++) h = fnv_str(h, rn_net_label(net, i));
    int frozen = rn_net_frozen(net);
    float eps = rn_net_label_smoothing(net);
    h = fnv(h, &frozen, sizeof frozen);
    return fnv(h, &eps, sizeof eps);
}

/* The state and the parameter gradients, for calls that promise to leave both alone. */
static uint64_t net_state_grads(rn_net *net)
{
    return fnv(net_state(net), rn_net_grads(net), rn_net_num_params(net) * sizeof(float));
}

static uint64_t sgd_state(rn_sgd *opt)
{
    if (!opt) return 0;
    size_t n;
    const float *buf = rn_sgd_momentum_buffer(opt, &n);
    int started = rn_sgd_started(opt);
    return fnv(fnv(FNV_START, buf, n * sizeof *buf), &started, sizeof started);
}

/* A file's bytes; 0 when it cannot be read. Reads without allocating. */
static uint64_t file_digest(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    unsigned char buf[4096];
    uint64_t h = FNV_START;
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) h = fnv(h, buf, n);
    fclose(f);
    return h;
}

/* metrics.jsonl without the timings (everything from ',"time_s"' to the end of each line). */
static uint64_t metrics_digest(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char line[4096];
    uint64_t h = FNV_START;
    while (fgets(line, sizeof line, f)) {
        char *cut = strstr(line, ",\"time_s\"");
        h = cut ? fnv(h, line, (size_t)(cut - line)) : fnv_str(h, "no time_s: a line lost its fields");
    }
    fclose(f);
    return h;
}

/* ---- one scenario's run -------------------------------------------------------------------------- */
typedef struct {
    const char *dir;  /* the files the scenarios read (prepare) */
    char work[512];   /* this run's own folder */
    uint64_t out;     /* digest of everything the scenario produced */
    char why[1024];   /* the first check that failed */
} oom_run;

static int fail_check(oom_run *r, const char *fmt, const char *label, const char *detail)
{
    if (!r->why[0]) snprintf(r->why, sizeof r->why, fmt, label, detail);
    return -1;
}

/* After a call returned st != RN_OK: was it an injected failure, reported as one, that left the
 * state as it was (before == after)? */
static int check_failure(oom_run *r, const char *label, int st, long injected_before,
                         uint64_t before, uint64_t after)
{
    char detail[700];
    if (atomic_load(&injected) == injected_before) {
        snprintf(detail, sizeof detail, "status %d without an injected failure: %s", st, rn_last_error());
        return fail_check(r, "%s: %s", label, detail);
    }
    const char *msg = rn_last_error();
    if (st != RN_ERR_NOMEM) {
        snprintf(detail, sizeof detail, "status %d instead of RN_ERR_NOMEM (%d): %s", st, RN_ERR_NOMEM, msg);
        return fail_check(r, "%s: %s", label, detail);
    }
    if (!msg[0] || !strcmp(msg, "no error")) return fail_check(r, "%s: %s", label, "no message");
    if (before != after)
        return fail_check(r, "%s: %s", label, "the failed call changed the state (half-updated)");
    return 0;
}

/* Runs `call` (an expression giving a status); when it fails, checks the failure with the state
 * digest `state` taken before and after, then makes the same call again, which must succeed. */
#define STEP(r, label, state, call)                                                                \
    do {                                                                                           \
        const uint64_t before_ = (state);                                                          \
        const long injected_ = atomic_load(&injected);                                             \
        int st_ = (call);                                                                          \
        if (st_ != RN_OK) {                                                                        \
            if (check_failure(r, label, st_, injected_, before_, (state))) goto done;              \
            st_ = (call);                                                                          \
            if (st_ != RN_OK) {                                                                    \
                fail_check(r, "%s: %s", label, "the call failed again without a failure");         \
                goto done;                                                                         \
            }                                                                                      \
        }                                                                                          \
    } while (0)

#define OUT(r, value)                                                                              \
    do {                                                                                           \
        const uint64_t v_ = (value);                                                               \
        (r)->out = fnv((r)->out, &v_, sizeof v_);                                                  \
    } while (0)

static int exists(const char *path)
{
    struct stat s;
    return stat(path, &s) == 0;
}

/* The names and contents of the files in dir, in any order: a failed write leaves the folder
 * as it was (no temporary file, the target absent or unchanged). */
static uint64_t dir_state(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return 0;
    struct dirent *e;
    uint64_t sum = 0;
    char path[1024];
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        sum += fnv_str(FNV_START, e->d_name) * 31 + file_digest(path);
    }
    closedir(d);
    return sum;
}

/* No "*.tmp.*" left in dir: a failed write removes its temporary file. */
static int no_temporary(oom_run *r, const char *label, const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return 0;
    struct dirent *e;
    int left = 0;
    while ((e = readdir(d)) != NULL) left |= strstr(e->d_name, ".tmp.") != NULL;
    closedir(d);
    return left ? fail_check(r, "%s: %s", label, "a temporary file was left behind") : 0;
}

static void path_in(char *out, size_t cap, const char *dir, const char *name)
{
    snprintf(out, cap, "%s/%s", dir, name);
}

/* ---- the data and networks the scenarios share ------------------------------------------------- */
#define ARCH "resnet8-w4"
#define CLASSES 3
#define SIDE 8
#define IMAGE (SIDE * SIDE)

static void options(rn_net_options *o, uint64_t seed)
{
    rn_net_options_init(o);
    o->classes = CLASSES;
    o->in_c = 1, o->in_h = SIDE, o->in_w = SIDE;
    o->survival_last = 0.8f; /* stochastic depth: training forwards draw from the net's RNG */
    o->seed = seed;
}

static void images(float *x, int n, uint32_t seed)
{
    uint32_t s = seed * 2654435761u + 1;
    for (int i = 0; i < n * IMAGE; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = (float)(s >> 8) / 16777216.0f * 2.0f - 1.0f;
    }
}

/* A learnable set: class k brightens a third of the rows. */
static rn_dataset *dataset(int n, uint32_t seed)
{
    rn_dataset *d;
    if (rn_dataset_create(&d, n, 1, SIDE, SIDE, CLASSES)) return NULL;
    uint32_t s = seed + 17;
    for (int i = 0; i < n; i++) {
        d->labels[i] = (int32_t)((i * 5 + (int)seed) % CLASSES);
        for (int p = 0; p < IMAGE; p++) {
            s = s * 1664525u + 1013904223u;
            int band = (p / SIDE) * CLASSES / SIDE == d->labels[i];
            d->pixels[(size_t)i * IMAGE + p] = (uint8_t)((s >> 25) + (band ? 120 : 0));
        }
    }
    const char *names[CLASSES] = {"top", "middle", "bottom"};
    if (rn_dataset_set_names(d, names)) {
        rn_dataset_free(d);
        return NULL;
    }
    return d;
}

static void train_config(rn_train_config *c)
{
    rn_train_config_init(c);
    snprintf(c->arch, sizeof c->arch, "%s", ARCH);
    c->epochs = 2;
    c->batch = 4;
    c->accum = 2;
    c->lr = 0.05f;
    c->crop_pad = 1;
    c->flip = 1;
    c->survival_last = 0.8f;
    c->label_smoothing = 0.1f;
    c->decay_1d = 0;
    c->seed = 5;
}

#define TRAIN_N 10
#define EVAL_N 5
#define RESUME_AT 4 /* steps before the stop that the resume scenario starts from (3 per epoch) */

/* ---- scenarios ------------------------------------------------------------------------------------
 * Each runs with the fault armed from its start to its end; what the harness allocates for
 * itself comes from __real_malloc or from before arm(). */

/* Opening a model file, loading another into the network, reading a tensor file. */
static void sc_open(oom_run *r)
{
    char model[600], model2[600], tensor[600];
    path_in(model, sizeof model, r->dir, "model.safetensors");
    path_in(model2, sizeof model2, r->dir, "model2.safetensors");
    path_in(tensor, sizeof tensor, r->dir, "input.safetensors");
    rn_net *net = NULL;
    float *x = NULL;
    STEP(r, "rn_net_open", (uint64_t)(net != NULL), rn_net_open(&net, model, NULL, NULL));
    OUT(r, net_state(net));
    STEP(r, "rn_net_load", net_state(net), rn_net_load(net, model2));
    OUT(r, net_state(net));
    int64_t shape[4];
    int ndim;
    STEP(r, "rn_tensor_load", (uint64_t)(x != NULL), rn_tensor_load(tensor, "x", &x, shape, &ndim));
    OUT(r, fnv(fnv(FNV_START, shape, (size_t)ndim * sizeof *shape), x, 5 * IMAGE * sizeof *x));
done:
    free(x);
    rn_net_free(net);
}

/* Forward passes of several batch sizes (each new size reallocates the activations), frozen and
 * not. */
static void sc_forward(oom_run *r)
{
    char model[600];
    path_in(model, sizeof model, r->dir, "model.safetensors");
    rn_net *net = NULL;
    float *x = __real_malloc(7 * IMAGE * sizeof *x), *y = __real_malloc(7 * CLASSES * sizeof *y);
    images(x, 7, 3);
    STEP(r, "rn_net_open", (uint64_t)(net != NULL), rn_net_open(&net, model, NULL, NULL));
    static const int sizes[4] = {2, 5, 3, 7};
    for (int i = 0; i < 4; i++) {
        if (i == 2) STEP(r, "rn_net_freeze(1)", net_state(net), rn_net_freeze(net, 1));
        STEP(r, "rn_net_forward", net_state(net), rn_net_forward(net, x, sizes[i], 0, y));
        OUT(r, fnv(FNV_START, y, (size_t)sizes[i] * CLASSES * sizeof *y));
    }
    char model2[600];
    path_in(model2, sizeof model2, r->dir, "model2.safetensors");
    STEP(r, "rn_net_load(frozen)", net_state(net), rn_net_load(net, model2));
    STEP(r, "rn_net_forward", net_state(net), rn_net_forward(net, x, 3, 0, y));
    OUT(r, fnv(FNV_START, y, 3 * CLASSES * sizeof *y));
    STEP(r, "rn_net_freeze(0)", net_state(net), rn_net_freeze(net, 0));
    STEP(r, "rn_net_forward", net_state(net), rn_net_forward(net, x, 3, 0, y));
    OUT(r, fnv(FNV_START, y, 3 * CLASSES * sizeof *y));
    OUT(r, net_state(net));
done:
    rn_net_free(net);
    free(x);
    free(y);
}

/* Training steps through the public API: create, SGD, forward, backward, step, with batch sizes
 * that change, gradient norms recorded, and micro-batches (rn_train_forward_backward). */
static void sc_train(oom_run *r)
{
    rn_net *net = NULL;
    rn_sgd *opt = NULL;
    const int n_max = 6;
    float *x = __real_malloc((size_t)n_max * IMAGE * sizeof *x);
    float *y = __real_malloc((size_t)n_max * CLASSES * sizeof *y);
    float *accum = NULL;
    int labels[6] = {0, 2, 1, 1, 0, 2};
    const char *names[CLASSES] = {"a", "b", "c"};
    rn_net_options o;
    options(&o, 11);
    STEP(r, "rn_net_create", (uint64_t)(net != NULL), rn_net_create(&net, ARCH, &o));
    accum = __real_malloc((rn_net_num_params(net) + 1) * sizeof *accum);
    STEP(r, "rn_net_set_labels", net_state(net), rn_net_set_labels(net, names, CLASSES));
    STEP(r, "rn_net_record_input_grads", net_state(net), rn_net_record_input_grads(net, 1));
    STEP(r, "rn_sgd_create", (uint64_t)(opt != NULL), rn_sgd_create(&opt, net, 0.9f, 5e-4f, 1));
    STEP(r, "rn_sgd_set_decay_1d", sgd_state(opt), rn_sgd_set_decay_1d(opt, net, 0));
    static const int sizes[4] = {4, 6, 4, 3};
    for (int s = 0; s < 4; s++) {
        const int n = sizes[s];
        images(x, n, 100 + (uint32_t)s);
        float loss = 0.0f;
        if (s == 2) {
            double l = 0.0;
            STEP(r, "rn_train_forward_backward", net_state(net),
                 rn_train_forward_backward(net, x, labels, n, 2, y, accum, &l));
            loss = (float)l;
        } else {
            rn_net_zero_grad(net);
            const uint64_t before = net_state_grads(net);
            const long injected_before = atomic_load(&injected);
            int st = rn_net_forward(net, x, n, 1, y);
            if (st) {
                if (check_failure(r, "rn_net_forward(training)", st, injected_before, before, net_state_grads(net)))
                    goto done;
                /* the activations of the forward before may be gone: a backward must be refused */
                if (rn_net_backward(net, labels, &loss) != RN_ERR_ARG) {
                    fail_check(r, "%s: %s", "rn_net_backward", "accepted after a failed forward");
                    goto done;
                }
                STEP(r, "rn_net_forward(training)", before, rn_net_forward(net, x, n, 1, y));
            }
            STEP(r, "rn_net_backward", net_state_grads(net), rn_net_backward(net, labels, &loss));
        }
        OUT(r, fnv(fnv(FNV_START, y, (size_t)n * CLASSES * sizeof *y), &loss, sizeof loss));
        OUT(r, fnv(FNV_START, rn_net_grads(net), rn_net_num_params(net) * sizeof(float)));
        double sq;
        if (rn_net_input_grad_sq(net, 0, &sq) == RN_OK) OUT(r, fnv(FNV_START, &sq, sizeof sq));
        STEP(r, "rn_sgd_step", net_state(net), rn_sgd_step(opt, net, 0.05f));
    }
    OUT(r, net_state(net));
    OUT(r, sgd_state(opt));
done:
    rn_sgd_free(opt);
    rn_net_free(net);
    free(x);
    free(y);
    free(accum);
}

static uint64_t eval_digest(const rn_eval_result *e)
{
    uint64_t h = fnv(FNV_START, &e->n, sizeof e->n);
    h = fnv(h, &e->correct, sizeof e->correct);
    h = fnv(h, &e->loss, sizeof e->loss);
    return e->confusion ? fnv(h, e->confusion, (size_t)e->classes * e->classes * sizeof *e->confusion) : h;
}

/* Evaluation of a data set, plain and with test-time augmentation. */
static void sc_eval(oom_run *r)
{
    char model[600];
    path_in(model, sizeof model, r->dir, "model.safetensors");
    rn_net *net = NULL;
    rn_dataset *data = NULL;
    rn_eval_result e = {0};
    STEP(r, "rn_net_open", (uint64_t)(net != NULL), rn_net_open(&net, model, NULL, NULL));
    STEP(r, "rn_dataset_create", (uint64_t)(data != NULL), (data = dataset(11, 4)) ? RN_OK : RN_ERR_NOMEM);
    STEP(r, "rn_evaluate", net_state(net), rn_evaluate(net, data, 4, 1, &e));
    OUT(r, eval_digest(&e));
    rn_eval_result_free(&e);
    STEP(r, "rn_evaluate_tta", net_state(net), rn_evaluate_tta(net, data, 3, RN_TTA_FLIP | RN_TTA_SHIFT, 1, &e));
    OUT(r, eval_digest(&e));
    OUT(r, net_state(net));
done:
    rn_eval_result_free(&e);
    rn_dataset_free(data);
    rn_net_free(net);
}

/* Saving a model and a checkpoint, reading the checkpoint's configuration, loading it into
 * another network and optimizer, opening the saved model. */
static void sc_checkpoint(oom_run *r)
{
    char model[600], saved[600], ckpt[600];
    path_in(model, sizeof model, r->dir, "model.safetensors");
    path_in(saved, sizeof saved, r->work, "saved.safetensors");
    path_in(ckpt, sizeof ckpt, r->work, "checkpoint.safetensors");
    rn_net *a = NULL, *b = NULL, *c = NULL;
    rn_sgd *sa = NULL, *sb = NULL;
    char *metrics = NULL, *json = NULL;
    float x[4 * IMAGE];
    int labels[4] = {2, 0, 1, 0};
    rn_net_options o;
    options(&o, 23);
    rn_train_config cfg, back;
    train_config(&cfg);
    rn_train_state state = {.epoch = 1, .batch = 2, .step = 5, .sgd_started = 1,
                            .rng = {1, 2, 3, 0xfedcba9876543210ULL}, .loss_sum = 1.25,
                            .correct = 3, .seen = 8, .time_s = 0.5, .data_s = 0.125};
    /* set up without failures: a trained network a and a fresh one b */
    pause_faults();
    int st = rn_net_open(&a, model, NULL, NULL);
    if (!st) st = rn_sgd_create(&sa, a, 0.9f, 1e-4f, 0);
    images(x, 4, 9);
    if (!st) st = rn_net_train_step(a, x, labels, 4, NULL);
    if (!st) st = rn_sgd_step(sa, a, 0.1f);
    if (!st) st = rn_net_create(&b, ARCH, &o);
    if (!st) st = rn_sgd_create(&sb, b, 0.9f, 1e-4f, 0);
    resume_faults();
    if (st) {
        fail_check(r, "%s: %s", "setting up", rn_last_error());
        goto done;
    }
    const char *line = "[\"{\\\"epoch\\\":1,\\\"train_loss\\\":1.5}\"]";
    STEP(r, "rn_net_save", dir_state(r->work),
         rn_net_save(a, saved));
    OUT(r, file_digest(saved));
    STEP(r, "rn_checkpoint_save", dir_state(r->work),
         rn_checkpoint_save(ckpt, a, sa, &cfg, &state, line));
    OUT(r, file_digest(ckpt));
    int epoch = 0, batch = 0;
    long step = 0;
    STEP(r, "rn_checkpoint_read_config", (uint64_t)0,
         rn_checkpoint_read_config(ckpt, &back, &epoch, &batch, &step));
    pause_faults();
    json = rn_train_config_to_json(&back);
    resume_faults();
    OUT(r, fnv_str(fnv(fnv(fnv(FNV_START, &epoch, sizeof epoch), &batch, sizeof batch), &step, sizeof step), json));
    rn_train_state got;
    STEP(r, "rn_checkpoint_load", net_state(b) ^ sgd_state(sb),
         rn_checkpoint_load(ckpt, b, sb, &got, &metrics));
    OUT(r, fnv(FNV_START, &got, sizeof got));
    OUT(r, fnv_str(FNV_START, metrics));
    OUT(r, net_state(b));
    OUT(r, sgd_state(sb));
    STEP(r, "rn_net_open(saved)", (uint64_t)(c != NULL), rn_net_open(&c, saved, NULL, NULL));
    OUT(r, net_state(c));
done:
    free(json);
    free(metrics);
    rn_net_free(a);
    rn_net_free(b);
    rn_net_free(c);
    rn_sgd_free(sa);
    rn_sgd_free(sb);
}

/* After a failed run: a new trainer, restored from the checkpoint when there is one, finishes. */
static int finish_run(oom_run *r, const rn_train_config *cfg, const rn_dataset *train,
                      const rn_dataset *eval)
{
    char ckpt[600];
    path_in(ckpt, sizeof ckpt, r->work, "checkpoint.safetensors");
    rn_trainer *t = NULL;
    int st = rn_trainer_create(&t, cfg, r->work, train, eval, "test");
    if (!st && exists(ckpt)) st = rn_trainer_restore(t);
    if (!st) st = rn_trainer_run(t, NULL, NULL);
    rn_trainer_free(t);
    if (st) return fail_check(r, "%s: %s", "resuming after the failure", rn_last_error());
    return 0;
}

/* The outcome of a run: the model and the metrics, which do not depend on where it stopped. */
static void run_outcome(oom_run *r)
{
    char path[600];
    path_in(path, sizeof path, r->work, "model.safetensors");
    OUT(r, file_digest(path));
    path_in(path, sizeof path, r->work, "metrics.jsonl");
    OUT(r, metrics_digest(path));
}

/* rn_trainer_run under the fault, and what must follow a failure: no temporary file left, and
 * the same trainer finishing the run as the clean one, or refusing (then a new trainer resumed
 * from the folder must); then the outcome against the clean run's. */
static void run_and_check(oom_run *r, rn_trainer *t, const rn_train_config *cfg,
                          rn_dataset *train, rn_dataset *eval)
{
    const long injected_before = atomic_load(&injected);
    const int st = rn_trainer_run(t, NULL, NULL);
    if (st) {
        if (check_failure(r, "rn_trainer_run", st, injected_before, 0, 0)) return;
        if (no_temporary(r, "rn_trainer_run", r->work)) return;
        if (rn_trainer_run(t, NULL, NULL) != RN_OK && finish_run(r, cfg, train, eval)) return;
    }
    run_outcome(r);
}

/* A training run of two epochs (checkpoints, evaluation, metrics, the final model) through the
 * trainer; after a failure, a new trainer resumes from whatever the folder holds. */
static void sc_trainer(oom_run *r)
{
    rn_dataset *train = NULL, *eval = NULL;
    rn_trainer *t = NULL;
    rn_train_config cfg;
    train_config(&cfg);
    pause_faults();
    train = dataset(TRAIN_N, 1);
    eval = dataset(EVAL_N, 2);
    resume_faults();
    if (!train || !eval) {
        fail_check(r, "%s: %s", "setting up", rn_last_error());
        goto done;
    }
    STEP(r, "rn_trainer_create", (uint64_t)(t != NULL), rn_trainer_create(&t, &cfg, r->work, train, eval, "test"));
    run_and_check(r, t, &cfg, train, eval);
done:
    rn_trainer_free(t);
    rn_dataset_free(train);
    rn_dataset_free(eval);
}

static int copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    unsigned char buf[4096];
    size_t n;
    int ok = in && out;
    while (ok && (n = fread(buf, 1, sizeof buf, in)) > 0) ok = fwrite(buf, 1, n, out) == n;
    if (in) fclose(in);
    if (out && fclose(out) != 0) ok = 0;
    return ok ? 0 : -1;
}

/* A run stopped after RESUME_AT steps, resumed: the configuration read back from the checkpoint,
 * a trainer restored from it, the rest of the run. */
static void sc_resume(oom_run *r)
{
    rn_dataset *train = NULL, *eval = NULL;
    rn_trainer *t = NULL;
    rn_train_config cfg;
    char from[600], to[600];
    pause_faults();
    train = dataset(TRAIN_N, 1);
    eval = dataset(EVAL_N, 2);
    int ok = train && eval;
    static const char *const files[2] = {"checkpoint.safetensors", "metrics.jsonl"};
    for (int i = 0; ok && i < 2; i++) {
        snprintf(from, sizeof from, "%s/stopped/%s", r->dir, files[i]);
        path_in(to, sizeof to, r->work, files[i]);
        ok = !copy_file(from, to);
    }
    resume_faults();
    if (!ok) {
        fail_check(r, "%s: %s", "setting up", "cannot copy the stopped run");
        goto done;
    }
    path_in(from, sizeof from, r->work, "checkpoint.safetensors");
    STEP(r, "rn_checkpoint_read_config", (uint64_t)0, rn_checkpoint_read_config(from, &cfg, NULL, NULL, NULL));
    STEP(r, "rn_trainer_create", (uint64_t)(t != NULL), rn_trainer_create(&t, &cfg, r->work, train, eval, "test"));
    const long injected_before = atomic_load(&injected);
    const int st = rn_trainer_restore(t);
    if (st) {
        if (check_failure(r, "rn_trainer_restore", st, injected_before, 0, 0)) goto done;
        /* a trainer whose restore failed: it runs as a fresh one (the same model in the end),
         * or refuses; never from a half-restored state */
        if (rn_trainer_run(t, NULL, NULL) != RN_OK && finish_run(r, &cfg, train, eval)) goto done;
        run_outcome(r);
        goto done;
    }
    run_and_check(r, t, &cfg, train, eval);
done:
    rn_trainer_free(t);
    rn_dataset_free(train);
    rn_dataset_free(eval);
}

static uint64_t dataset_digest(const rn_dataset *d)
{
    if (!d) return 0;
    uint64_t h = fnv(FNV_START, &d->n, sizeof d->n);
    const int shape[4] = {d->c, d->h, d->w, d->classes};
    h = fnv(h, shape, sizeof shape);
    h = fnv(h, d->pixels, (size_t)d->n * d->c * d->h * d->w);
    h = fnv(h, d->labels, (size_t)d->n * sizeof *d->labels);
    for (int i = 0; d->names && i < d->classes; i++) h = fnv_str(h, d->names[i]);
    return h;
}

/* Data sets: an IDX pair, a folder of pictures, and the copies made of them. */
static void sc_data(oom_run *r)
{
    char images[600], labels[600], folder[600];
    path_in(images, sizeof images, r->dir, "images.idx");
    path_in(labels, sizeof labels, r->dir, "labels.idx");
    path_in(folder, sizeof folder, r->dir, "folder");
    rn_dataset *d = NULL, *sub = NULL, *tr = NULL, *va = NULL, *f = NULL;
    float mean[1], std[1];
    STEP(r, "rn_dataset_load_idx", (uint64_t)(d != NULL), rn_dataset_load_idx(&d, images, labels, CLASSES));
    OUT(r, dataset_digest(d));
    STEP(r, "rn_dataset_subset", (uint64_t)(sub != NULL), rn_dataset_subset(&sub, d, 1, 4));
    OUT(r, dataset_digest(sub));
    STEP(r, "rn_dataset_split", (uint64_t)(tr != NULL) + (va != NULL), rn_dataset_split(d, 2, 9, &tr, &va));
    OUT(r, dataset_digest(tr) ^ dataset_digest(va) * 3);
    STEP(r, "rn_dataset_stats", dataset_digest(d), rn_dataset_stats(d, mean, std));
    OUT(r, fnv(fnv(FNV_START, mean, sizeof mean), std, sizeof std));
    STEP(r, "rn_dataset_load_folder", (uint64_t)(f != NULL), rn_dataset_load_folder(&f, folder, 1, SIDE, SIDE, NULL, 0));
    OUT(r, dataset_digest(f));
done:
    rn_dataset_free(d);
    rn_dataset_free(sub);
    rn_dataset_free(tr);
    rn_dataset_free(va);
    rn_dataset_free(f);
}

typedef struct {
    const char *name;
    void (*run)(oom_run *r);
} scenario;

static const scenario scenarios[] = {
    {"open", sc_open},           {"forward", sc_forward},     {"train", sc_train},
    {"eval", sc_eval},           {"checkpoint", sc_checkpoint}, {"trainer", sc_trainer},
    {"resume", sc_resume},       {"data", sc_data},
};
#define N_SCENARIOS (int)(sizeof scenarios / sizeof scenarios[0])

/* Defects that another change is fixing, by a function on the failed allocation's stack: what
 * they break is reported as known, not counted as a failure. Empty once those fixes are in. */
static const struct {
    const char *function;
    const char *defect;
} known[] = {
    {NULL, NULL},
};

static const char *known_defect(const char *stack)
{
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        if (!known[i].function) continue;
        size_t len = strlen(known[i].function);
        for (const char *p = stack; (p = strstr(p, known[i].function)) != NULL; p += len)
            if ((p == stack || p[-1] == ' ') && (p[len] == ' ' || p[len] == '\0')) return known[i].defect;
    }
    return NULL;
}

/* ---- the files the scenarios read ------------------------------------------------------------------ */
static int write_bytes(const char *path, const void *head, size_t head_len, const uint8_t *body, size_t len)
{
    FILE *f = fopen(path, "wb");
    int ok = f && fwrite(head, 1, head_len, f) == head_len && fwrite(body, 1, len, f) == len;
    if (f && fclose(f) != 0) ok = 0;
    return ok ? 0 : -1;
}

/* images.idx and labels.idx (6 pictures of SIDE x SIDE), and folder/<class>/<k>.png. */
static int write_data(const char *dir)
{
    enum { N = 6 };
    uint8_t pixels[N * IMAGE], lab[N];
    for (int i = 0; i < N * IMAGE; i++) pixels[i] = (uint8_t)(i * 37 + i / 7);
    for (int i = 0; i < N; i++) lab[i] = (uint8_t)(i % CLASSES);
    const uint8_t ih[16] = {0, 0, 8, 3, 0, 0, 0, N, 0, 0, 0, SIDE, 0, 0, 0, SIDE};
    const uint8_t lh[8] = {0, 0, 8, 1, 0, 0, 0, N};
    char path[700];
    path_in(path, sizeof path, dir, "images.idx");
    int bad = write_bytes(path, ih, sizeof ih, pixels, sizeof pixels);
    path_in(path, sizeof path, dir, "labels.idx");
    bad |= write_bytes(path, lh, sizeof lh, lab, sizeof lab);
    static const char *const classes[2] = {"cats", "dogs"};
    char head[32];
    int hl = snprintf(head, sizeof head, "P5\n%d %d\n255\n", SIDE, SIDE);
    for (int k = 0; k < 2; k++) {
        snprintf(path, sizeof path, "%s/folder", dir);
        mkdir(path, 0777);
        snprintf(path, sizeof path, "%s/folder/%s", dir, classes[k]);
        bad |= mkdir(path, 0777);
        for (int i = 0; i < 2; i++) {
            /* binary PGM under a .png name: the format is told by the first bytes */
            snprintf(path, sizeof path, "%s/folder/%s/%d.png", dir, classes[k], i);
            bad |= write_bytes(path, head, (size_t)hl, pixels + (size_t)(2 * k + i) * IMAGE, IMAGE);
        }
    }
    return bad;
}

static int prepare(const char *dir)
{
    if (write_data(dir)) {
        fprintf(stderr, "oom: cannot write the data files in %s\n", dir);
        return RN_ERR_IO;
    }
    char path[600];
    rn_net_options o;
    rn_net *net = NULL;
    options(&o, 3);
    int st = rn_net_create(&net, ARCH, &o);
    const float mean[1] = {0.25f}, std[1] = {0.5f};
    const char *names[CLASSES] = {"alpha", "beta", "gamma"};
    if (!st) st = rn_net_set_normalization(net, mean, std);
    if (!st) st = rn_net_set_labels(net, names, CLASSES);
    path_in(path, sizeof path, dir, "model.safetensors");
    if (!st) st = rn_net_save(net, path);
    rn_net_free(net);
    net = NULL;
    options(&o, 4);
    if (!st) st = rn_net_create(&net, ARCH, &o);
    const char *names2[CLASSES] = {"one", "two", "three"};
    const float mean2[1] = {0.5f}, std2[1] = {0.25f};
    if (!st) st = rn_net_set_normalization(net, mean2, std2);
    if (!st) st = rn_net_set_labels(net, names2, CLASSES);
    path_in(path, sizeof path, dir, "model2.safetensors");
    if (!st) st = rn_net_save(net, path);
    rn_net_free(net);
    float x[5 * IMAGE];
    images(x, 5, 1);
    const int64_t shape[4] = {5, 1, SIDE, SIDE};
    path_in(path, sizeof path, dir, "input.safetensors");
    if (!st) st = rn_tensor_save(path, "x", x, shape, 4);
    /* a run stopped inside its second epoch, for the resume scenario */
    rn_dataset *train = dataset(TRAIN_N, 1), *eval = dataset(EVAL_N, 2);
    rn_train_config cfg;
    train_config(&cfg);
    path_in(path, sizeof path, dir, "stopped");
    rn_trainer *t = NULL;
    if (!st && (!train || !eval || mkdir(path, 0777))) st = RN_ERR_IO;
    if (!st) st = rn_trainer_create(&t, &cfg, path, train, eval, "test");
    rn_train_hooks hooks = {0};
    hooks.stop_at_step = RESUME_AT;
    if (!st) st = rn_trainer_run(t, &hooks, NULL);
    rn_trainer_free(t);
    rn_dataset_free(train);
    rn_dataset_free(eval);
    if (st) fprintf(stderr, "oom: cannot write the scenarios' files: %s\n", rn_last_error());
    return st;
}

/* ---- the check that tells a JSON text from memory running out --------------------------------------
 * The library reports RN_ERR_NOMEM when cJSON_Parse fails on a text that rn_json_valid accepts:
 * so everything it accepts must parse, and what is not JSON must be refused. */
static void nested(char *buf, int depth)
{
    for (int i = 0; i < depth; i++) buf[i] = '[', buf[2 * depth - 1 - i] = ']';
    buf[2 * depth] = '\0';
}

static int check_json_validator(void)
{
    static const char *const valid[] = {
        "{}", "[]", "0", "-0", "1.5e-3", "-12.25E+7", "\"\"", "null", "true", "false",
        "\"a\\u00e9\\ud83d\\ude00\\n\\\"\\/\"", " \t\n{ \"k\" : \"v\" } \r\n",
        "{\"a\":[1,2,{\"b\":null}],\"c\":true,\"d\":false,\"a\":\"twice\"}",
        "123456789012345678901234567890123456789012345678901234567890123", /* 63 characters */
    };
    static const char *const invalid[] = {
        "", " ", "{", "[1,]", "{\"a\" 1}", "{\"a\":1,}", "01", "1.", ".5", "+1", "1e", "-", "NaN",
        "\"\\x\"", "\"a\nb\"", "\"\\ud800\"", "\"\\udc00\"", "\"\\ud800\\u0041\"", "[\"\\u12\"]",
        "tru", "nul", "[1] x", "\xEF\xBB\xBF{}", "{1:2}", "\"open",
        "1234567890123456789012345678901234567890123456789012345678901234", /* 64 */
    };
    int bad = 0;
    for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++) {
        cJSON *j = cJSON_Parse(valid[i]);
        if (!rn_json_valid(valid[i]) || !j) fprintf(stderr, "oom: JSON check: '%s' should pass\n", valid[i]), bad = 1;
        cJSON_Delete(j);
    }
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++)
        if (rn_json_valid(invalid[i])) fprintf(stderr, "oom: JSON check: '%s' should fail\n", invalid[i]), bad = 1;
    char deep[1100];
    nested(deep, 500);
    cJSON *j = cJSON_Parse(deep);
    if (!rn_json_valid(deep) || !j) fprintf(stderr, "oom: JSON check: 500 levels should pass\n"), bad = 1;
    cJSON_Delete(j);
    nested(deep, 501);
    if (rn_json_valid(deep)) fprintf(stderr, "oom: JSON check: 501 levels should fail\n"), bad = 1;
    return bad;
}

/* ---- the sweep ------------------------------------------------------------------------------------- */
typedef struct {
    long total;
    uint64_t out;
} clean_result;

static void rm_rf(const char *path)
{
    struct stat s;
    if (lstat(path, &s) != 0) return;
    if (S_ISDIR(s.st_mode)) {
        DIR *d = opendir(path);
        struct dirent *e;
        char sub[1024];
        while (d && (e = readdir(d)) != NULL) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
            rm_rf(sub);
        }
        if (d) closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

/* Runs scenario s with allocation n failing (0: none) in this process. Returns 0 when every
 * check passed; *result receives the count and the digest. */
static int run_one(const char *dir, const scenario *s, long n, clean_result *result, char *why, size_t cap)
{
    oom_run r = {.dir = dir, .out = FNV_START};
    snprintf(r.work, sizeof r.work, "%s/run.%s.%ld.%ld", dir, s->name, n, (long)getpid());
    if (mkdir(r.work, 0777)) {
        snprintf(why, cap, "cannot make %s", r.work);
        return -1;
    }
    arm(n);
    s->run(&r);
    disarm();
    result->total = atomic_load(&count);
    result->out = r.out;
    rm_rf(r.work);
    snprintf(why, cap, "%s", r.why);
    if (n > 0 && !r.why[0] && atomic_load(&injected) == 0) return NOT_REACHED;
    return r.why[0] ? -1 : 0;
}

/* The same in a child process: 0 when it passed, KNOWN_EXIT or NOT_REACHED, else -1; prints
 * what went wrong. */
static int run_child(const char *dir, const scenario *s, long n, const clean_result *clean, clean_result *out)
{
    int fd[2];
    if (pipe(fd)) return perror("oom: pipe"), -1;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) return perror("oom: fork"), -1;
    if (pid == 0) {
        close(fd[0]);
        clean_result res;
        char why[1024], where[512] = "";
        int code = run_one(dir, s, n, &res, why, sizeof why);
        if (code == 0 && clean && res.out != clean->out) {
            snprintf(why, sizeof why, "the result differs from the clean run's (half-updated or a silent wrong answer)");
            code = -1;
        }
        if (code == -1) {
            failed_at(where, sizeof where);
            const char *defect = known_defect(where);
            fprintf(stderr, "oom: %s, allocation %ld (in %s): %s%s%s\n", s->name, n, where[0] ? where : "?",
                    why, defect ? "; known, being fixed: " : "", defect ? defect : "");
            code = defect ? KNOWN_EXIT : CHECK_EXIT;
        }
        if (write(fd[1], &res, sizeof res) != (ssize_t)sizeof res) code = CHECK_EXIT;
        close(fd[1]);
        exit(code); /* exit, not _exit: LeakSanitizer checks at exit */
    }
    close(fd[1]);
    clean_result res = {0};
    ssize_t got = read(fd[0], &res, sizeof res);
    close(fd[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) continue;
    if (out) *out = res;
    if (WIFSIGNALED(status)) {
        fprintf(stderr, "oom: %s, allocation %ld: CRASH (signal %d); again alone: oom --scenario %s --fail %ld\n",
                s->name, n, WTERMSIG(status), s->name, n);
        return -1;
    }
    if (WEXITSTATUS(status) == LSAN_EXIT) {
        fprintf(stderr, "oom: %s, allocation %ld: LEAK (LeakSanitizer's report above)\n", s->name, n);
        return -1;
    }
    if (WEXITSTATUS(status) == KNOWN_EXIT || WEXITSTATUS(status) == NOT_REACHED) return WEXITSTATUS(status);
    if (WEXITSTATUS(status) != 0 && WEXITSTATUS(status) != CHECK_EXIT)
        fprintf(stderr, "oom: %s, allocation %ld: exit status %d (a sanitizer's report above?); again "
                "alone: oom --scenario %s --fail %ld\n", s->name, n, WEXITSTATUS(status), s->name, n);
    return WEXITSTATUS(status) == 0 && got == (ssize_t)sizeof res ? 0 : -1;
}

/* The N to try: every one up to SWEEP_ALL, then SWEEP_SAMPLE drawn with a fixed seed (and the
 * last); all of them when full. Returns how many were written to list. */
static long pick(long total, int full, long *list)
{
    long k = 0;
    if (full || total <= SWEEP_ALL + SWEEP_SAMPLE) {
        for (long n = 1; n <= total; n++) list[k++] = n;
        return k;
    }
    for (long n = 1; n <= SWEEP_ALL; n++) list[k++] = n;
    /* Selection sampling (Knuth's algorithm S) over (SWEEP_ALL, total]: ascending, no repeats. */
    uint64_t s = 0x9e3779b97f4a7c15ULL;
    long need = SWEEP_SAMPLE, left = total - SWEEP_ALL;
    for (long n = SWEEP_ALL + 1; n <= total && need > 0; n++, left--) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        if ((long)(s % (uint64_t)left) < need) list[k++] = n, need--;
    }
    if (list[k - 1] != total) list[k++] = total;
    return k;
}

static int selected(const char *list, const char *name)
{
    if (!list) return 1;
    size_t len = strlen(name);
    for (const char *p = list; (p = strstr(p, name)) != NULL; p += len)
        if ((p == list || p[-1] == ',') && (p[len] == ',' || p[len] == '\0')) return 1;
    return 0;
}

int main(int argc, char **argv)
{
    int full = getenv("FULL") && strcmp(getenv("FULL"), "0") != 0;
    const char *only = NULL;
    long one = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--full")) full = 1;
        else if (!strcmp(argv[i], "--scenario") && i + 1 < argc) only = argv[++i];
        else if (!strcmp(argv[i], "--fail") && i + 1 < argc) one = atol(argv[++i]);
        else if (!strcmp(argv[i], "--list")) {
            for (int k = 0; k < N_SCENARIOS; k++) printf("%s\n", scenarios[k].name);
            return 0;
        } else {
            fprintf(stderr, "usage: %s [--full] [--scenario NAME[,NAME...]] [--fail N] [--list]\n", argv[0]);
            return 2;
        }
    }
    cJSON_Hooks hooks = {json_malloc, json_free};
    cJSON_InitHooks(&hooks);
    if (check_json_validator()) return 1;
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp"; /* fsync is free there */
    char dir[256];
    snprintf(dir, sizeof dir, "%s/rn-oom.XXXXXX", base);
    if (!mkdtemp(dir)) return perror("oom: mkdtemp"), 1;
    /* The files are written in a child too: the parent never starts OpenMP's threads, which a
     * forked child would lack. */
    pid_t pid = fork();
    if (pid == 0) exit(prepare(dir) ? 1 : 0);
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        rm_rf(dir);
        return 1;
    }
    if (one) { /* one case in this process, against a clean run in this process */
        int bad = 0;
        for (int k = 0; k < N_SCENARIOS; k++) {
            if (!selected(only, scenarios[k].name)) continue;
            clean_result clean, res;
            char why[1024], where[512] = "";
            int rc = run_one(dir, &scenarios[k], 0, &clean, why, sizeof why);
            if (!rc) rc = run_one(dir, &scenarios[k], one, &res, why, sizeof why);
            if (!rc && res.out != clean.out) {
                snprintf(why, sizeof why, "the result differs from the clean run's");
                rc = -1;
            }
            if (rc) failed_at(where, sizeof where);
            const char *defect = rc == -1 ? known_defect(where) : NULL;
            bad |= rc == -1;
            printf("%s, allocation %ld (in %s): %s%s%s (%ld allocations)\n", scenarios[k].name, one,
                   where[0] ? where : "?", rc == NOT_REACHED ? "not reached" : why[0] ? why : "ok",
                   defect ? "; known, being fixed: " : "", defect ? defect : "", clean.total);
        }
        rm_rf(dir);
        return bad;
    }
    int failed = 0;
    for (int k = 0; k < N_SCENARIOS; k++) {
        const scenario *s = &scenarios[k];
        if (!selected(only, s->name)) continue;
        clean_result clean;
        if (run_child(dir, s, 0, NULL, &clean)) {
            fprintf(stderr, "oom: %s: the clean run failed\n", s->name);
            failed++;
            continue;
        }
        long *list = __real_malloc((size_t)(clean.total + 2) * sizeof *list);
        long tries = pick(clean.total, full, list), bad = 0, skipped = 0, unreached = 0;
        for (long i = 0; i < tries; i++) {
            int rc = run_child(dir, s, list[i], &clean, NULL);
            skipped += rc == KNOWN_EXIT;
            unreached += rc == NOT_REACHED;
            bad += rc == -1;
        }
        printf("%-10s %6ld allocations, %6ld tried, %ld failed", s->name, clean.total, tries, bad);
        if (skipped) printf(", %ld on known defects (being fixed)", skipped);
        if (unreached) printf(", %ld not reached", unreached);
        printf("\n");
        fflush(stdout);
        failed += bad != 0;
        free(list);
    }
    rm_rf(dir);
    printf("oom: %s\n", failed ? "FAILED" : "every allocation failure was handled");
    return failed ? 1 : 0;
}
