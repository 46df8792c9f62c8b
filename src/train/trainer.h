/* The trainer: epochs of loader batches -> forward/backward -> SGD, evaluation after every
 * epoch, metrics, checkpoints and resume. It prints nothing: the caller watches through hooks.
 *
 * A run lives in a folder (run_dir):
 *   checkpoint.safetensors  weights, BN statistics, the momentum buffer and, in the metadata, the
 *                           configuration, the position (epoch, batch, step), the network's random
 *                           state and the metrics so far. Written at the start, after every epoch
 *                           and when stopped; atomically (temporary file, fsync, rename, fsync of
 *                           the folder), so a crash at any instant leaves the previous one whole.
 *   metrics.jsonl           one JSON object per finished epoch (rewritten from the checkpoint on
 *                           resume, so it always agrees with it).
 *   model.safetensors       the final weights with torchvision's names and the model metadata
 *                           (architecture, ordering, shortcut, classes, input, normalisation,
 *                           label names): what `resnet eval/predict/forward --model` read.
 *
 * Everything random is a function of the seed (initialisation, validation split, data order,
 * augmentation, stochastic depth), so a run is the same bits for the same seed, build and thread
 * count, and a resumed run ends exactly as an uninterrupted one. */
#ifndef RN_TRAIN_TRAINER_H
#define RN_TRAIN_TRAINER_H

#include <signal.h>
#include <stdint.h>

#include "resnet.h"
#include "train/dataset.h"
#include "train/schedule.h"

#define RN_TRAIN_PATH_MAX 1024

/* Everything that defines a run: stored in its checkpoint, so a resume needs only the folder. */
typedef struct {
    /* data */
    rn_data_kind data;
    char data_dir[RN_TRAIN_PATH_MAX]; /* "" = the kind's default */
    int subset;      /* > 0: only the first N training images and the first N test images */
    int val;         /* > 0: hold out N training images (seeded) and evaluate on them, not on test */
    int in_c, in_h, in_w; /* the network's input; 0 = the data's shape (folder: 3x32x32) */
    /* network */
    char arch[64];
    int ordering;    /* rn_ordering */
    int shortcut;    /* rn_shortcut */
    int zero_init_last_bn;
    float survival_last;
    float gate_bias; /* highway gates' initial bias */
    /* optimisation */
    int epochs;
    int batch;
    int accum;       /* micro-batches per batch (gradient accumulation), >= 1 */
    float lr;
    rn_schedule_kind schedule;
    int n_milestones;
    float milestones[RN_SCHEDULE_MAX_MILESTONES];
    float warmup;    /* epochs of linear warm-up (fractions allowed) */
    float momentum;
    int nesterov;
    float weight_decay;
    int decay_1d;    /* weight decay on BN parameters and biases too */
    float label_smoothing;
    float clip_grad_norm; /* rn_net_clip_grad_norm before each step; 0 = off */
    int crop_pad;    /* -1 = the data set's default (rn_loader_default_augment) */
    int flip;        /* -1 = the data set's default */
    float erase;     /* random erasing probability (0 = none) */
    uint64_t seed;
    int threads;     /* recorded: bit-identical results need the same count */
    int bn_local;    /* several processes: batch norm over each one's slice, not the global batch */
} rn_train_config;

/* The fields, their defaults, ranges, JSON keys and options are one table: config_table.h
 * (config.h has what the command line needs of it). */
/* The library's defaults (the paper's recipe: lr 0.1, momentum 0.9, wd 1e-4, step at 50% and
 * 75%); `resnet train` has its own (rn_train_config_init_cli). */
void rn_train_config_init(rn_train_config *cfg);
/* Checks the fields; RN_ERR_ARG naming the option. */
int rn_train_config_check(const rn_train_config *cfg);
/* The learning-rate schedule of a configuration, for a run of total_steps. */
void rn_train_config_schedule(const rn_train_config *cfg, rn_schedule *s, long total_steps,
                              long warmup_steps);
/* The crop padding and flip a run uses: cfg's, or where it says -1 the data set's default for
 * images w pixels wide. */
void rn_train_config_augment(const rn_train_config *cfg, int w, int *crop_pad, int *flip);
/* JSON text of the configuration (free() it), and back. */
char *rn_train_config_to_json(const rn_train_config *cfg);
int rn_train_config_from_json(rn_train_config *cfg, const char *json);

/* Loads the data a configuration names: the training set (after --subset and --val) and the
 * evaluation set (the validation split with --val, else the test split; NULL when the source has
 * no test split and no --val). eval_name receives "val", "test" or "". */
int rn_train_load_data(const rn_train_config *cfg, rn_dataset **train, rn_dataset **eval,
                       const char **eval_name);

typedef struct {
    int epoch, epochs;      /* the current epoch, 0-based */
    int batch, batches;     /* batches done in this epoch, of batches */
    long step, total_steps; /* optimizer steps done */
    double loss, accuracy;  /* running means over this epoch */
    float lr;               /* of the last step */
    double images_per_s;    /* this epoch */
    double eta_s;           /* until the end of the run, from this session's speed */
    double time_s, data_s;  /* this epoch: wall time, time spent waiting for data */
} rn_train_progress;

typedef struct {
    int epoch;              /* 1-based, as written to metrics.jsonl */
    double train_loss, train_error;
    const char *eval_name;  /* "test", "val" or NULL (no evaluation) */
    double eval_loss, eval_error;
    float lr;
    double time_s, data_s, images_per_s, eval_s;
    int processes;          /* > 1: data-parallel over this many processes ... */
    double comm_s;          /* ... which spent this long communicating this epoch */
} rn_epoch_metrics;

typedef struct {
    void (*on_step)(void *ctx, const rn_train_progress *p);  /* after every optimizer step */
    void (*on_epoch)(void *ctx, const rn_epoch_metrics *m); /* after each epoch's checkpoint */
    void *ctx;
    /* Checked between steps: when *stop becomes nonzero the trainer writes a checkpoint and
     * returns with outcome.interrupted (a signal handler sets it). May be NULL. */
    volatile sig_atomic_t *stop;
    /* > 0: behave as if stopped once this many steps are done (for tests). */
    long stop_at_step;
} rn_train_hooks;

typedef struct {
    int finished;    /* all epochs done, model.safetensors written */
    int interrupted; /* stopped by the hook; checkpoint written */
    int epoch, batch; /* the position reached (0-based epoch, batches done in it) */
    long step;
    long steps_run;  /* optimizer steps this session */
} rn_train_outcome;

typedef struct rn_trainer rn_trainer;

/* A trainer for cfg on the given data (kept by pointer: they must outlive the trainer). eval may
 * be NULL. The network is created from cfg with the data's shape and classes, its normalisation
 * (the training set's per-channel mean and std) and label names set. Writes nothing yet. */
int rn_trainer_create(rn_trainer **out, const rn_train_config *cfg, const char *run_dir,
                      const rn_dataset *train, const rn_dataset *eval, const char *eval_name);
void rn_trainer_free(rn_trainer *t);
/* As rn_trainer_create, as one of the rn_dist_size(dist) processes of a data-parallel run
 * (dist NULL: alone). Each process loads the same data and calls this with the same cfg; each
 * computes its rank's equal slice of every batch (--batch must divide evenly), the gradients
 * are summed over the processes before every step (so every process takes the same step, as
 * one process on the whole batch), batch norm takes its statistics over the whole batch
 * (cfg->bn_local: over each slice, the running statistics averaged), evaluation is split and
 * added up, and only rank 0 writes files. rn_trainer_run checks first that every process has the
 * same options, data and state; no message is exchanged before it. */
typedef struct rn_dist rn_dist;
int rn_trainer_create_dist(rn_trainer **out, const rn_train_config *cfg, const char *run_dir,
                           const rn_dataset *train, const rn_dataset *eval, const char *eval_name,
                           rn_dist *dist);
/* Data-parallel runs: RN_ERR_MISMATCH (naming `when`) unless every process's network is the
 * same bits (weights, statistics, counters); rn_trainer_run calls it after every epoch. */
int rn_trainer_check_ranks(rn_trainer *t, const char *when);
/* Continues from run_dir/checkpoint.safetensors: weights, momentum, position, random state and
 * metrics; rewrites metrics.jsonl from the checkpoint. cfg must be the checkpoint's. A restore
 * that fails after the checkpoint's tensors were loaded leaves the trainer refusing to run until
 * a restore succeeds; one that fails before changes nothing. */
int rn_trainer_restore(rn_trainer *t);
/* Trains until the end of the run or a stop. RN_ERR_NUMERIC when the loss or a gradient is NaN
 * or infinite (the message names the step and the tensor; the last checkpoint is kept). After
 * any failure the trainer refuses to run again until rn_trainer_restore (the network may have
 * moved past the checkpoint): the run goes on from its last checkpoint. */
int rn_trainer_run(rn_trainer *t, const rn_train_hooks *hooks, rn_train_outcome *outcome);
rn_net *rn_trainer_net(rn_trainer *t);

/* Forward and backward of n images as `parts` micro-batches (near-equal sizes, in order; gradient
 * accumulation): rn_net_grads receives sum_k (n_k / n) * grad_k, the gradient of the batch's
 * mean loss (each micro-batch normalised by its own BN statistics); logits (may be NULL when
 * parts is 1) [n, classes]; *loss the batch's mean loss. accum: scratch of rn_net_num_params
 * floats, needed when parts > 1. */
int rn_train_forward_backward(rn_net *net, const float *x, const int *labels, int n, int parts,
                              float *logits, float *accum, double *loss);

/* Reads only the configuration and position stored in a checkpoint. */
int rn_checkpoint_read_config(const char *path, rn_train_config *cfg, int *epoch, int *batch,
                              long *step);

#endif
