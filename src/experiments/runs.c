#define _DEFAULT_SOURCE /* flock */
/* Running an experiment: its folder and settings file, its data, its training runs (reused
 * when finished, continued when interrupted) and the progress it reports. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/atomic_file.h"
#include "core/clock.h"
#include "core/error.h"
#include "experiments/experiment.h"
#include "train/loader.h"

static int make_dirs(const char *path)
{
    char buf[RN_TRAIN_PATH_MAX + 64];
    if (strlen(path) >= sizeof buf) return rn_fail(RN_ERR_ARG, "%s: path too long", path);
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || !*p) {
            char saved = *p;
            *p = 0;
            if (mkdir(buf, 0777) != 0 && errno != EEXIST)
                return rn_fail(RN_ERR_IO, "%s: cannot create the folder: %s", buf, strerror(errno));
            *p = saved;
            if (!saved) break;
        }
    }
    struct stat sb;
    if (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return rn_fail(RN_ERR_IO, "%s: not a folder", path);
    return RN_OK;
}

static int file_exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

static char *read_text(const char *path, size_t max)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        rn_fail(RN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = malloc(max + 1);
    size_t n = buf ? fread(buf, 1, max + 1, f) : 0;
    int err = ferror(f);
    fclose(f);
    if (!buf || err || n > max) {
        free(buf);
        rn_fail(err ? RN_ERR_IO : RN_ERR_FORMAT, "%s: %s", path,
                err ? "read error" : !buf ? "out of memory" : "too large");
        return NULL;
    }
    buf[n] = 0;
    return buf;
}

/* ---- options ---------------------------------------------------------------------------------- */
static const char *value_of(const rn_exp *x, const char *name)
{
    for (int i = 0; x->def->opts && x->def->opts[i].name; i++)
        if (!strcmp(x->def->opts[i].name, name)) return x->set.values[i];
    return NULL; /* a programming error: the experiment asks for an option it does not declare */
}

long rn_exp_int(const rn_exp *x, const char *name)
{
    const char *v = value_of(x, name);
    return v ? strtol(v, NULL, 10) : 0;
}

double rn_exp_float(const rn_exp *x, const char *name)
{
    const char *v = value_of(x, name);
    return v ? strtod(v, NULL) : 0.0;
}

int rn_exp_ints(const rn_exp *x, const char *name, int *out, int max)
{
    const char *v = value_of(x, name);
    int n = 0;
    for (const char *p = v; p && *p && n < max;) {
        out[n++] = (int)strtol(p, (char **)&p, 10);
        if (*p == ',') p++;
    }
    return n;
}

const char *rn_exp_text(const rn_exp *x, const char *name)
{
    const char *v = value_of(x, name);
    return v ? v : "";
}

/* ---- data and configurations ------------------------------------------------------------------ */
void rn_exp_train_config(const rn_exp *x, rn_train_config *cfg)
{
    rn_train_config_init(cfg);
    cfg->data = x->set.data;
    snprintf(cfg->data_dir, sizeof cfg->data_dir, "%s", x->set.data_dir);
    cfg->subset = x->set.subset > 0 ? x->set.subset : 0;
    cfg->seed = x->set.seed;
    cfg->threads = 0; /* results do not depend on it: not part of what defines a run here */
}

int rn_exp_data(rn_exp *x, const rn_dataset **train, const rn_dataset **eval)
{
    if (!x->train) {
        rn_train_config cfg;
        rn_exp_train_config(x, &cfg);
        int st = rn_train_load_data(&cfg, &x->train, &x->eval, &x->eval_name);
        if (st) return st;
        if (!x->eval) return rn_fail(RN_ERR_ARG, "%s: the data have no test split", rn_data_kind_name(cfg.data));
    }
    *train = x->train;
    *eval = x->eval;
    return RN_OK;
}

double rn_exp_net_cost(const rn_net *net) { return (double)rn_net_macs(net); }

int rn_exp_add_run(rn_exp *x, const char *name, const rn_train_config *cfg)
{
    if (x->n_runs == RN_EXP_MAX_RUNS) return rn_fail(RN_ERR_ARG, "too many runs in one experiment");
    const rn_dataset *train, *eval;
    int st = rn_exp_data(x, &train, &eval);
    if (st) return st;
    rn_exp_run_entry *r = &x->runs[x->n_runs];
    memset(r, 0, sizeof *r);
    snprintf(r->name, sizeof r->name, "%s", name);
    r->cfg = *cfg;
    rn_net_options o;
    rn_net_options_init(&o);
    o.ordering = cfg->ordering, o.shortcut = cfg->shortcut, o.survival_last = cfg->survival_last;
    o.gate_bias = cfg->gate_bias, o.classes = train->classes;
    o.in_c = train->c, o.in_h = train->h, o.in_w = train->w;
    rn_net *net;
    if ((st = rn_net_create(&net, cfg->arch, &o))) return st;
    /* a training step costs about three forwards; every epoch also evaluates */
    r->cost = rn_exp_net_cost(net) * (double)cfg->epochs * (3.0 * train->n + eval->n);
    rn_net_free(net);
    x->total_cost += r->cost;
    x->n_runs++;
    return RN_OK;
}

/* ---- progress --------------------------------------------------------------------------------- */
/* partial: work done in the current run so far, of which `fresh` in this session */
static void report(rn_exp *x, int epoch, int epochs, double partial, double fresh)
{
    if (!x->hooks || !x->hooks->on_progress) return;
    rn_exp_progress p = {.phase = x->phase ? x->phase : "", .epoch = epoch, .epochs = epochs};
    double done = x->done_cost + partial;
    p.done = x->total_cost > 0 ? done / x->total_cost : 0.0;
    if (p.done > 1.0) p.done = 1.0;
    p.elapsed_s = rn_clock_s() - x->t0;
    double session = x->session_cost + fresh;
    p.eta_s = session > 0 && p.elapsed_s > 1.0 ? p.elapsed_s / session * (x->total_cost - done) : -1.0;
    x->hooks->on_progress(x->hooks->ctx, &p);
}

void rn_exp_plan_work(rn_exp *x, double cost) { x->total_cost += cost; }

void rn_exp_set_phase(rn_exp *x, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(x->phase_buf, sizeof x->phase_buf, fmt, ap);
    va_end(ap);
    x->phase = x->phase_buf;
    report(x, 0, 0, 0.0, 0.0);
}

int rn_exp_work_done(rn_exp *x, double cost)
{
    x->done_cost += cost;
    x->session_cost += cost;
    report(x, 0, 0, 0.0, 0.0);
    if (x->hooks && x->hooks->stop && *x->hooks->stop) x->interrupted = 1;
    return x->interrupted;
}

void rn_exp_note(rn_exp *x, const char *fmt, ...)
{
    if (!x->hooks || !x->hooks->on_note) return;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    x->hooks->on_note(x->hooks->ctx, line);
}

/* ---- training runs ---------------------------------------------------------------------------- */
typedef struct {
    rn_exp *x;
    rn_exp_run_entry *run;
    long steps0; /* steps done before this session */
} step_ctx;

static void on_step(void *vctx, const rn_train_progress *p)
{
    step_ctx *c = vctx;
    if (p->total_steps <= 0) return;
    double partial = c->run->cost * (double)p->step / (double)p->total_steps;
    double before = c->run->cost * (double)c->steps0 / (double)p->total_steps;
    report(c->x, p->epoch + 1, p->epochs, partial, partial - before);
}

static void run_dir(const rn_exp *x, const rn_exp_run_entry *r, char *out, size_t size)
{
    snprintf(out, size, "%s/runs/%s", x->out, r->name);
}

/* Whether a checkpoint's configuration is the one planned (the thread count aside). */
static int same_config(const rn_train_config *a, const rn_train_config *b)
{
    rn_train_config p = *a, q = *b;
    p.threads = q.threads = 0;
    char *ja = rn_train_config_to_json(&p), *jb = rn_train_config_to_json(&q);
    int same = ja && jb && !strcmp(ja, jb);
    free(ja);
    free(jb);
    return same;
}

static int train_one(rn_exp *x, rn_exp_run_entry *r, int index)
{
    char dir[RN_TRAIN_PATH_MAX + 80], ckpt[RN_TRAIN_PATH_MAX + 120], model[RN_TRAIN_PATH_MAX + 120];
    run_dir(x, r, dir, sizeof dir);
    snprintf(ckpt, sizeof ckpt, "%s/checkpoint.safetensors", dir);
    snprintf(model, sizeof model, "%s/model.safetensors", dir);
    int resume = 0;
    if (file_exists(ckpt)) {
        rn_train_config stored;
        int epoch, batch;
        long step;
        int st = rn_checkpoint_read_config(ckpt, &stored, &epoch, &batch, &step);
        if (st) return st;
        if (!same_config(&stored, &r->cfg))
            return rn_fail(RN_ERR_MISMATCH, "%s holds a run with other options than this experiment "
                                            "plans: remove it, or give another --out", dir);
        if (epoch >= r->cfg.epochs && file_exists(model)) {
            r->finished = 1;
            x->done_cost += r->cost;
            rn_exp_note(x, "%s: finished before, reused (%s)", r->name, dir);
            return RN_OK;
        }
        resume = 1;
    }
    int st = make_dirs(dir);
    if (st) return st;
    const rn_dataset *train, *eval;
    if ((st = rn_exp_data(x, &train, &eval))) return st;
    rn_trainer *t;
    if ((st = rn_trainer_create(&t, &r->cfg, dir, train, eval, x->eval_name))) return st;
    if (resume && (st = rn_trainer_restore(t))) {
        rn_trainer_free(t);
        return st;
    }
    rn_exp_set_phase(x, "training %s (run %d of %d)", r->name, index + 1, x->n_runs);
    step_ctx c = {.x = x, .run = r};
    if (resume) {
        int epoch, batch;
        rn_train_config stored;
        rn_checkpoint_read_config(ckpt, &stored, &epoch, &batch, &c.steps0);
    }
    rn_train_hooks hooks = {.on_step = on_step, .ctx = &c, .stop = x->hooks ? x->hooks->stop : NULL};
    rn_train_outcome oc;
    st = rn_trainer_run(t, &hooks, &oc);
    rn_trainer_free(t);
    if (st) return rn_fail(st, "run %s (%s): %s", r->name, dir, rn_last_error());
    if (oc.interrupted) {
        x->interrupted = 1;
        return RN_OK;
    }
    r->finished = 1;
    x->done_cost += r->cost;
    /* this session's share of the run, for the speed behind the ETA */
    double total_steps = (double)oc.step;
    x->session_cost += total_steps > 0 ? r->cost * (double)oc.steps_run / total_steps : 0.0;
    rn_exp_epoch *rows;
    int n;
    if (!rn_exp_run_metrics(x, r->name, &rows, &n) && n > 0) {
        rn_exp_note(x, "%s: training error %.2f%%, test error %.2f%% after %d epochs", r->name,
                    100.0 * rows[n - 1].train_error, 100.0 * rows[n - 1].eval_error, n);
        free(rows);
    }
    return RN_OK;
}

int rn_exp_train_runs(rn_exp *x)
{
    for (int i = 0; i < x->n_runs && !x->interrupted; i++) {
        if (x->runs[i].finished) continue;
        int st = train_one(x, &x->runs[i], i);
        if (st) return st;
    }
    return RN_OK;
}

static rn_exp_run_entry *find_run(rn_exp *x, const char *name)
{
    for (int i = 0; i < x->n_runs; i++)
        if (!strcmp(x->runs[i].name, name)) return &x->runs[i];
    return NULL;
}

/* The net at initialisation: as the trainer creates it (same options and seed, the training
 * set's normalisation). */
int rn_exp_create_initial(const rn_train_config *cfg, const rn_dataset *train, rn_net **net)
{
    rn_net_options o;
    rn_net_options_init(&o);
    o.classes = train->classes;
    o.in_c = train->c, o.in_h = train->h, o.in_w = train->w;
    o.ordering = cfg->ordering, o.shortcut = cfg->shortcut;
    o.zero_init_last_bn = cfg->zero_init_last_bn, o.survival_last = cfg->survival_last;
    o.gate_bias = cfg->gate_bias, o.seed = cfg->seed;
    float mean[RN_MAX_INPUT_CHANNELS], std[RN_MAX_INPUT_CHANNELS];
    int st = rn_net_create(net, cfg->arch, &o);
    if (!st) st = rn_dataset_stats(train, mean, std);
    if (!st) {
        for (int c = 0; c < train->c; c++)
            if (!(std[c] > 1e-6f)) std[c] = 1.0f;
        st = rn_net_set_normalization(*net, mean, std);
    }
    return st;
}

int rn_exp_eval_loader(const rn_net *net, const rn_dataset *data, int batch, rn_loader **out)
{
    float mean[RN_MAX_INPUT_CHANNELS], std[RN_MAX_INPUT_CHANNELS];
    const int has_norm = rn_net_get_normalization(net, mean, std);
    rn_loader_options lo;
    rn_loader_options_init(&lo, 0);
    lo.batch = batch;
    lo.prefetch = 1;
    lo.mean = has_norm ? mean : NULL;
    lo.std = has_norm ? std : NULL;
    *out = NULL;
    int st = rn_loader_create(out, data, &lo);
    if (!st) st = rn_loader_start(*out, 0, 0);
    return st;
}

int rn_exp_open_run(rn_exp *x, const char *name, rn_net **net)
{
    rn_exp_run_entry *r = find_run(x, name);
    if (!r) return rn_fail(RN_ERR_ARG, "no run named %s in this experiment", name);
    char path[RN_TRAIN_PATH_MAX + 120];
    snprintf(path, sizeof path, "%s/runs/%s/model.safetensors", x->out, r->name);
    return rn_net_open(net, path, NULL, NULL);
}

static int number(const cJSON *o, const char *key, double *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v)) return -1;
    *out = v->valuedouble;
    return 0;
}

int rn_exp_run_metrics(rn_exp *x, const char *name, rn_exp_epoch **rows, int *n)
{
    char path[RN_TRAIN_PATH_MAX + 120];
    snprintf(path, sizeof path, "%s/runs/%s/metrics.jsonl", x->out, name);
    *rows = NULL;
    *n = 0;
    char *text = read_text(path, 64u << 20);
    if (!text) return RN_ERR_IO;
    int cap = 0, st = RN_OK, line_no = 0;
    for (char *save = NULL, *line = strtok_r(text, "\n", &save); line && !st;
         line = strtok_r(NULL, "\n", &save)) {
        line_no++;
        cJSON *o = cJSON_Parse(line);
        rn_exp_epoch e = {0};
        double epoch = 0;
        const char *eval = cJSON_GetObjectItemCaseSensitive(o, "test_error") ? "test" : "val";
        char kl[16], ke[16];
        snprintf(kl, sizeof kl, "%s_loss", eval);
        snprintf(ke, sizeof ke, "%s_error", eval);
        if (number(o, "epoch", &epoch) || number(o, "train_loss", &e.train_loss) ||
            number(o, "train_error", &e.train_error) || number(o, kl, &e.eval_loss) ||
            number(o, ke, &e.eval_error) || number(o, "time_s", &e.time_s)) {
            st = rn_fail(RN_ERR_FORMAT, "%s: line %d is not an epoch's metrics", path, line_no);
        } else {
            e.epoch = (int)epoch;
            if (*n == cap) {
                cap = cap ? 2 * cap : 64;
                rn_exp_epoch *grown = realloc(*rows, (size_t)cap * sizeof *grown);
                if (!grown) st = rn_fail(RN_ERR_NOMEM, "out of memory");
                else *rows = grown;
            }
            if (!st) (*rows)[(*n)++] = e;
        }
        cJSON_Delete(o);
    }
    free(text);
    if (st) {
        free(*rows);
        *rows = NULL;
        *n = 0;
    }
    return st;
}

/* ---- the experiment's folder ------------------------------------------------------------------ */
/* Names the first setting in which two settings files differ, for the refusal message. */
static void first_difference(const char *a, const char *b, char *out, size_t size)
{
    cJSON *p = cJSON_Parse(a), *q = cJSON_Parse(b);
    snprintf(out, size, "the settings");
    const cJSON *po = cJSON_GetObjectItemCaseSensitive(p, "options");
    const cJSON *qo = cJSON_GetObjectItemCaseSensitive(q, "options");
    for (const cJSON *it = p ? p->child : NULL; it; it = it->next) {
        const cJSON *other = cJSON_GetObjectItemCaseSensitive(q, it->string);
        if (it == po) {
            for (const cJSON *o = po->child; o; o = o->next) {
                const cJSON *v = cJSON_GetObjectItemCaseSensitive(qo, o->string);
                if (!cJSON_IsString(v) || !cJSON_IsString(o) || strcmp(v->valuestring, o->valuestring)) {
                    snprintf(out, size, "--%s (%s there, %s now)", o->string,
                             cJSON_IsString(o) ? o->valuestring : "?",
                             cJSON_IsString(v) ? v->valuestring : "?");
                    goto done;
                }
            }
        } else if (!other || !cJSON_Compare(it, other, 1)) {
            char *there = cJSON_PrintUnformatted(it), *now = other ? cJSON_PrintUnformatted(other) : NULL;
            snprintf(out, size, "%s (%s there, %s now)", it->string, there ? there : "?", now ? now : "?");
            free(there);
            free(now);
            goto done;
        }
    }
done:
    cJSON_Delete(p);
    cJSON_Delete(q);
}

static int write_settings(const char *path, const char *json)
{
    rn_atomic_file a;
    int st = rn_atomic_open(&a, path);
    if (st) return st;
    fputs(json, a.f);
    fputc('\n', a.f);
    return rn_atomic_commit(&a); /* which checks both writes */
}

int rn_exp_run(const rn_experiment *e, const rn_exp_settings *s, const char *out,
               const rn_exp_hooks *hooks, int *interrupted)
{
    *interrupted = 0;
    if (strlen(out) >= RN_TRAIN_PATH_MAX - 200) return rn_fail(RN_ERR_ARG, "%s: path too long", out);
    rn_exp *x = calloc(1, sizeof *x);
    if (!x) return rn_fail(RN_ERR_NOMEM, "out of memory");
    x->def = e;
    x->set = *s;
    if (x->set.subset < 0) x->set.subset = s->quick ? 1000 : 0;
    snprintf(x->out, sizeof x->out, "%s", out);
    x->hooks = hooks;
    x->t0 = rn_clock_s();

    char path[RN_TRAIN_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/experiment.json", out);
    char *json = rn_exp_settings_to_json(&x->set);
    int st = json ? RN_OK : rn_fail(RN_ERR_NOMEM, "out of memory");
    if (!st && file_exists(path)) {
        char *old = read_text(path, 1u << 20);
        if (!old) st = RN_ERR_IO;
        else if (strcmp(old, json) && strncmp(old, json, strlen(json))) {
            char what[256];
            first_difference(old, json, what, sizeof what);
            st = rn_fail(RN_ERR_MISMATCH, "%s holds an experiment with other settings: %s; continue "
                                          "it with --resume %s, or give another --out",
                         out, what, out);
        }
        free(old);
    }
    if (!st) st = make_dirs(out);
    /* Two processes in one folder would both continue the same run and append its epochs
     * twice: the second is refused while the first holds the lock. */
    int lock = -1;
    if (!st) {
        char lock_path[RN_TRAIN_PATH_MAX + 64];
        snprintf(lock_path, sizeof lock_path, "%s/.lock", out);
        lock = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
        if (lock < 0) st = rn_fail(RN_ERR_IO, "%s: cannot create: %s", lock_path, strerror(errno));
        else if (flock(lock, LOCK_EX | LOCK_NB) != 0)
            st = rn_fail(RN_ERR_IO, "%s is in use by another resnet experiment (%s)", out,
                         errno == EWOULDBLOCK ? "locked" : strerror(errno));
    }
    if (!st) st = write_settings(path, json);
    free(json);
    if (!st) st = e->run(x);
    *interrupted = x->interrupted;
    if (lock >= 0) close(lock);
    rn_dataset_free(x->train);
    rn_dataset_free(x->eval);
    free(x);
    return st;
}
