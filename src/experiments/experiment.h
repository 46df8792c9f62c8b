/* Experiments: one claim of the residual-network literature each, shown end to end on real data
 * (training runs, measurements, results.csv, plots, summary.md) in one output folder.
 *
 * An experiment is a table entry (rn_experiment): its name, the claim, its own options with a
 * full and a quick default, and a run function. The run function plans its training runs
 * (rn_exp_add_run), trains them (rn_exp_train_runs: each a normal run folder under OUT/runs/,
 * reused when finished, resumed when interrupted), measures what it needs and writes its
 * outputs. Everything is a function of the settings: the same seed gives the same numbers on
 * any thread count. Nothing here prints: news reaches the caller through hooks. */
#ifndef RN_EXPERIMENTS_EXPERIMENT_H
#define RN_EXPERIMENTS_EXPERIMENT_H

#include <signal.h>
#include <stdint.h>
#include <stdio.h>

#include "core/atomic_file.h"
#include "plot/plot.h"
#include "resnet.h"
#include "train/dataset.h"
#include "train/trainer.h"

#define RN_EXP_MAX_OPTS 16
#define RN_EXP_VALUE_MAX 256

typedef enum { RN_XOPT_INT, RN_XOPT_FLOAT, RN_XOPT_INTS, RN_XOPT_TEXT } rn_xopt_type;

/* One option of an experiment: --name VALUE. */
typedef struct {
    const char *name;
    rn_xopt_type type; /* RN_XOPT_INTS: a comma-separated list, e.g. 20,56 */
    const char *full;  /* the default */
    const char *quick; /* the default with --quick */
    const char *help;
} rn_xopt;

typedef struct rn_exp rn_exp;

typedef struct {
    const char *name;  /* the verb's argument: "degradation" */
    const char *title; /* "The degradation problem" */
    const char *claim; /* the claim, one sentence, as summary.md states it */
    const char *source; /* where it comes from: "He et al. 2015, Sec. 4.2, Fig. 6" */
    const rn_xopt *opts; /* terminated by an entry with a NULL name */
    int (*run)(rn_exp *x);
} rn_experiment;

/* Every experiment, NULL-terminated, in the order of the docs. */
const rn_experiment *const *rn_experiments(void);
const rn_experiment *rn_experiment_find(const char *name);

/* ---- settings: what defines an experiment's output folder ------------------------------------ */
typedef struct {
    char name[64];
    int quick;
    rn_data_kind data;
    char data_dir[RN_TRAIN_PATH_MAX]; /* "" = the kind's default */
    int subset;      /* > 0: the first N training and N test images; -1: the mode's default */
    uint64_t seed;
    char values[RN_EXP_MAX_OPTS][RN_EXP_VALUE_MAX]; /* the experiment's options, as text */
    int given[RN_EXP_MAX_OPTS];                     /* set on the command line */
} rn_exp_settings;

/* The defaults of experiment e in full (quick = 0) or quick mode. */
void rn_exp_settings_init(rn_exp_settings *s, const rn_experiment *e, int quick);
/* Switches the mode, keeping options given explicitly. */
void rn_exp_settings_set_quick(rn_exp_settings *s, const rn_experiment *e, int quick);
/* Sets option `name` (without the dashes) from text, checking its type: RN_ERR_ARG naming it. */
int rn_exp_set_option(rn_exp_settings *s, const rn_experiment *e, const char *name,
                      const char *value);
/* The settings as JSON (free() it) and back; what OUT/experiment.json holds. */
char *rn_exp_settings_to_json(const rn_exp_settings *s);
int rn_exp_settings_from_json(rn_exp_settings *s, const char *json, const char *what);

/* ---- running ------------------------------------------------------------------------------------ */
typedef struct {
    const char *phase; /* "training plain56 (run 2 of 4)", "deleting blocks" */
    int epoch, epochs; /* within the current training run (1-based epoch); 0 when none */
    double done;       /* fraction of the whole experiment, 0..1 */
    double elapsed_s;  /* since this session started */
    double eta_s;      /* until the end of the experiment, from this session's speed; < 0 unknown */
} rn_exp_progress;

typedef struct {
    void (*on_progress)(void *ctx, const rn_exp_progress *p);
    void (*on_note)(void *ctx, const char *line); /* news: a run reused, a run's final errors */
    void *ctx;
    volatile sig_atomic_t *stop; /* checked between steps; may be NULL */
} rn_exp_hooks;

/* Runs experiment e with settings s in folder out (created if missing). An out folder that
 * holds another experiment, or this one with other settings, is refused (the message says which
 * setting differs). *interrupted = 1 when stopped through hooks->stop: the run folders then hold
 * checkpoints and a second call continues. */
int rn_exp_run(const rn_experiment *e, const rn_exp_settings *s, const char *out,
               const rn_exp_hooks *hooks, int *interrupted);

/* ---- for experiments' run functions ---------------------------------------------------------- */
#define RN_EXP_MAX_RUNS 32

typedef struct {
    char name[64];
    rn_train_config cfg;
    double cost; /* planned work: multiply-adds */
    int finished;
} rn_exp_run_entry;

struct rn_exp {
    const rn_experiment *def;
    rn_exp_settings set;
    char out[RN_TRAIN_PATH_MAX];
    const rn_exp_hooks *hooks;
    rn_dataset *train, *eval; /* loaded on first use */
    const char *eval_name;
    rn_exp_run_entry runs[RN_EXP_MAX_RUNS];
    int n_runs;
    double total_cost, done_cost, session_cost, t0;
    const char *phase;
    char phase_buf[128];
    int interrupted;
};

long rn_exp_int(const rn_exp *x, const char *name);
double rn_exp_float(const rn_exp *x, const char *name);
/* A list option: its values in out (at most max); returns the count. */
int rn_exp_ints(const rn_exp *x, const char *name, int *out, int max);
const char *rn_exp_text(const rn_exp *x, const char *name);

/* The experiment's data (training and test set, after --subset), loaded once. */
int rn_exp_data(rn_exp *x, const rn_dataset **train, const rn_dataset **eval);
/* A training configuration on the experiment's data and seed, the other fields at the trainer's
 * defaults (the paper's recipe); the caller sets the network and the budget. */
void rn_exp_train_config(const rn_exp *x, rn_train_config *cfg);
/* Plans a training run in OUT/runs/NAME. */
int rn_exp_add_run(rn_exp *x, const char *name, const rn_train_config *cfg);
/* Trains every planned run that is not finished: a finished run folder with the same
 * configuration is reused, an interrupted one continued. Returns RN_OK with x->interrupted set
 * when stopped. */
int rn_exp_train_runs(rn_exp *x);
/* The trained model of run NAME (its model.safetensors). */
int rn_exp_open_run(rn_exp *x, const char *name, rn_net **net);
/* A started loader over data in order, unaugmented, batch images at a time, normalised as net
 * normalises its input: what evaluation reads. */
struct rn_loader;
int rn_exp_eval_loader(const rn_net *net, const rn_dataset *data, int batch, struct rn_loader **out);
/* A network as the trainer creates it for cfg on train (options, seed, the training set's
 * normalisation), before any step: what a run's model was at initialisation. */
int rn_exp_create_initial(const rn_train_config *cfg, const rn_dataset *train, rn_net **net);
/* The wall time a run spent training (the sum of its epochs' time_s). */
typedef struct {
    int epoch;
    double train_loss, train_error, eval_loss, eval_error, time_s;
} rn_exp_epoch;
/* Reads OUT/runs/NAME/metrics.jsonl: *rows (free() it), *n of them. */
int rn_exp_run_metrics(rn_exp *x, const char *name, rn_exp_epoch **rows, int *n);

/* Work other than training, for the progress line: plan it up front (in the same units as the
 * runs' cost: multiply-adds), then report it as it is done. */
void rn_exp_plan_work(rn_exp *x, double cost);
void rn_exp_set_phase(rn_exp *x, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Reports work done; returns 1 when the experiment has been asked to stop. */
int rn_exp_work_done(rn_exp *x, double cost);
void rn_exp_note(rn_exp *x, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* The forward cost of a network per image (multiply-adds), for planning. */
double rn_exp_net_cost(const rn_net *net);

/* ---- outputs: written to a temporary file and renamed when complete ---------------------------- */
typedef struct {
    rn_atomic_file file;
} rn_exp_file;

/* Opens OUT/NAME for writing (through a temporary, core/atomic_file.h). */
int rn_exp_file_open(rn_exp *x, rn_exp_file *file, const char *name);
void rn_exp_printf(rn_exp_file *file, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Closes, checks every write, renames into place. */
int rn_exp_file_close(rn_exp_file *file);
/* Opens summary.md and writes its head: title, claim, source, settings. */
int rn_exp_summary_open(rn_exp *x, rn_exp_file *file);
/* Draws OUT/BASE.png and OUT/BASE.svg. */
int rn_exp_plot(rn_exp *x, const char *base, const rn_plot_figure *fig,
                const rn_plot_panel *panels, int n_panels);

/* Small statistics the experiments share. */
double rn_exp_mean(const double *v, int n);
double rn_exp_std(const double *v, int n); /* sample standard deviation; 0 for n < 2 */

/* The experiments (one file each). */
extern const rn_experiment rn_exp_degradation, rn_exp_identity, rn_exp_gradflow,
    rn_exp_orderings, rn_exp_lesion, rn_exp_paths, rn_exp_stochastic_depth, rn_exp_highway,
    rn_exp_depth_usage;

#endif
