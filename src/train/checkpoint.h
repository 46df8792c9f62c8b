/* Checkpoints: one safetensors file with the network's tensors (torchvision names), the SGD
 * momentum buffer ("optimizer.momentum_buffer", in the order of rn_net_params) and, in the
 * metadata, the model metadata of rn_net_save plus "checkpoint": a JSON object
 *   {"version": 1, "config": {...}, "state": {...}, "metrics": ["<metrics.jsonl line>", ...]}
 * Written atomically (temporary file, fsync, rename, fsync of the folder). */
#ifndef RN_TRAIN_CHECKPOINT_H
#define RN_TRAIN_CHECKPOINT_H

#include <stdint.h>

#include "resnet.h"
#include "train/trainer.h"

#define RN_CHECKPOINT_MOMENTUM "optimizer.momentum_buffer"

/* Where a run stands. */
typedef struct {
    int epoch;         /* the current epoch, 0-based (= epochs when the run is over) */
    int batch;         /* batches of it already done */
    long step;         /* optimizer steps done */
    int sgd_started;
    uint64_t rng[4];   /* the network's random state (stochastic depth) */
    /* this epoch's running sums, so a run resumed mid-epoch reports the whole epoch */
    double loss_sum;
    long correct, seen;
    double time_s, data_s;
} rn_train_state;

/* metrics: a JSON array text (NULL = []) of the metrics.jsonl lines as strings. */
int rn_checkpoint_save(const char *path, rn_net *net, rn_sgd *sgd, const rn_train_config *cfg,
                       const rn_train_state *state, const char *metrics);
/* Loads tensors, momentum and state into an existing network and optimizer built from the
 * checkpoint's configuration. *metrics (may be NULL) receives the metrics array text (free()). */
int rn_checkpoint_load(const char *path, rn_net *net, rn_sgd *sgd, rn_train_state *state,
                       char **metrics);

#endif
