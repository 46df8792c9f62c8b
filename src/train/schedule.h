/* Learning-rate schedules: a pure function of the optimizer step, so a checkpoint needs only the
 * step to restore the schedule's position.
 *
 *   constant  lr
 *   step      lr * gamma^m, m = the number of milestones passed; milestones are fractions of the
 *             whole run (He et al. 2015 divide by 10 at 32k and 48k of 64k iterations: 0.5, 0.75)
 *   cosine    lr * (1 + cos(pi * t)) / 2, t = (step - warmup) / (total - warmup), as torch's
 *             CosineAnnealingLR with T_max = the steps after the warm-up
 *             (Loshchilov & Hutter 2017, without restarts)
 *
 * A linear warm-up (Goyal et al. 2017) replaces the first warmup_steps: lr * (step + 1) / warmup.
 */
#ifndef RN_TRAIN_SCHEDULE_H
#define RN_TRAIN_SCHEDULE_H

#define RN_SCHEDULE_MAX_MILESTONES 8

typedef enum {
    RN_SCHEDULE_CONSTANT = 0,
    RN_SCHEDULE_STEP = 1,
    RN_SCHEDULE_COSINE = 2,
} rn_schedule_kind;

typedef struct {
    rn_schedule_kind kind;
    float lr;           /* the base learning rate */
    long total_steps;   /* optimizer steps in the whole run, > 0 */
    long warmup_steps;  /* 0 = no warm-up; less than total_steps */
    float gamma;        /* step: factor at each milestone (0.1) */
    int n_milestones;
    float milestones[RN_SCHEDULE_MAX_MILESTONES]; /* step: increasing fractions in (0, 1) */
} rn_schedule;

/* step with milestones 0.5 and 0.75 and gamma 0.1; no warm-up. */
void rn_schedule_init(rn_schedule *s, rn_schedule_kind kind, float lr, long total_steps);
/* "constant", "step", "step:F1,F2,..." (milestone fractions), "cosine"; sets kind (and the
 * milestones), keeps the rest. */
int rn_schedule_parse(const char *text, rn_schedule *s);
/* The text rn_schedule_parse reads back ("step:0.5,0.75"). */
void rn_schedule_format(const rn_schedule *s, char *buf, int size);
const char *rn_schedule_kind_name(rn_schedule_kind kind);
/* Checks the fields (RN_ERR_ARG with a message). */
int rn_schedule_check(const rn_schedule *s);
/* The learning rate of optimizer step `step` (0-based); steps past the end keep the last value. */
float rn_schedule_lr(const rn_schedule *s, long step);

#endif
