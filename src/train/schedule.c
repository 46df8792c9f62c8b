/* Learning-rate schedules (see schedule.h). */
#include "train/schedule.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

static const char *const kind_names[] = {"constant", "step", "cosine"};

const char *rn_schedule_kind_name(rn_schedule_kind kind)
{
    return kind >= 0 && kind <= RN_SCHEDULE_COSINE ? kind_names[kind] : "?";
}

void rn_schedule_init(rn_schedule *s, rn_schedule_kind kind, float lr, long total_steps)
{
    memset(s, 0, sizeof *s);
    s->kind = kind;
    s->lr = lr;
    s->total_steps = total_steps;
    s->gamma = 0.1f;
    s->n_milestones = 2;
    s->milestones[0] = 0.5f;
    s->milestones[1] = 0.75f;
}

int rn_schedule_parse(const char *text, rn_schedule *s)
{
    for (int k = 0; k <= RN_SCHEDULE_COSINE; k++)
        if (!strcmp(text, kind_names[k])) {
            s->kind = (rn_schedule_kind)k;
            if (k == RN_SCHEDULE_STEP) {
                s->n_milestones = 2;
                s->milestones[0] = 0.5f;
                s->milestones[1] = 0.75f;
            }
            return RN_OK;
        }
    if (strncmp(text, "step:", 5))
        return rn_fail(RN_ERR_ARG, "unknown schedule '%s' (constant, step, step:F1,F2,..., cosine)",
                       text);
    float m[RN_SCHEDULE_MAX_MILESTONES];
    int n = 0;
    for (const char *p = text + 5;; n++) {
        char *end;
        if (n == RN_SCHEDULE_MAX_MILESTONES)
            return rn_fail(RN_ERR_ARG, "schedule '%s': at most %d milestones", text,
                           RN_SCHEDULE_MAX_MILESTONES);
        m[n] = strtof(p, &end);
        if (end == p || (*end && *end != ',') || !(m[n] > 0.0f && m[n] < 1.0f) ||
            (n && !(m[n] > m[n - 1])))
            return rn_fail(RN_ERR_ARG,
                           "schedule '%s': milestones must be increasing fractions of the run in "
                           "(0, 1), e.g. step:0.5,0.75",
                           text);
        if (!*end) {
            n++;
            break;
        }
        p = end + 1;
    }
    s->kind = RN_SCHEDULE_STEP;
    s->n_milestones = n;
    memcpy(s->milestones, m, (size_t)n * sizeof *m);
    return RN_OK;
}

void rn_schedule_format(const rn_schedule *s, char *buf, int size)
{
    int used = snprintf(buf, (size_t)size, "%s", rn_schedule_kind_name(s->kind));
    for (int i = 0; s->kind == RN_SCHEDULE_STEP && i < s->n_milestones && used < size; i++) {
        /* the shortest text that reads back as the same float */
        char num[32];
        for (int digits = 6; digits <= 9; digits++) {
            snprintf(num, sizeof num, "%.*g", digits, (double)s->milestones[i]);
            if (strtof(num, NULL) == s->milestones[i]) break;
        }
        used += snprintf(buf + used, (size_t)(size - used), "%c%s", i ? ',' : ':', num);
    }
}

int rn_schedule_check(const rn_schedule *s)
{
    if (!(s->lr > 0.0f) || !isfinite(s->lr))
        return rn_fail(RN_ERR_ARG, "the learning rate must be a positive number, not %g", (double)s->lr);
    if (s->total_steps <= 0) return rn_fail(RN_ERR_ARG, "a schedule needs at least one step");
    if (s->warmup_steps < 0 || s->warmup_steps >= s->total_steps)
        return rn_fail(RN_ERR_ARG, "the warm-up (%ld steps) must be shorter than the run (%ld steps)",
                       s->warmup_steps, s->total_steps);
    if (s->kind < 0 || s->kind > RN_SCHEDULE_COSINE) return rn_fail(RN_ERR_ARG, "unknown schedule kind");
    if (s->kind == RN_SCHEDULE_STEP && !(s->gamma > 0.0f && s->gamma <= 1.0f))
        return rn_fail(RN_ERR_ARG, "the step schedule's factor must be in (0, 1], not %g", (double)s->gamma);
    return RN_OK;
}

float rn_schedule_lr(const rn_schedule *s, long step)
{
    if (step < 0) step = 0;
    if (step >= s->total_steps) step = s->total_steps - 1;
    if (step < s->warmup_steps) return (float)((double)s->lr * (double)(step + 1) / (double)s->warmup_steps);
    double lr = s->lr;
    switch (s->kind) {
    case RN_SCHEDULE_CONSTANT: break;
    case RN_SCHEDULE_STEP:
        for (int i = 0; i < s->n_milestones; i++)
            if (step >= (long)floor((double)s->milestones[i] * (double)s->total_steps)) lr *= s->gamma;
        break;
    case RN_SCHEDULE_COSINE: {
        long span = s->total_steps - s->warmup_steps;
        double t = (double)(step - s->warmup_steps) / (double)span;
        lr = 0.5 * lr * (1.0 + cos(3.14159265358979323846 * t));
        break;
    }
    }
    return (float)lr;
}
