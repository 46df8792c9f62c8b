#define _XOPEN_SOURCE 700 /* realpath */
/* Training curves of run folders: loss and error per epoch, read from each run's metrics.jsonl. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "plot/plot.h"

/* Hostile or damaged files are refused, not read without bound: a real line is ~250 bytes and a
 * run has at most a few thousand epochs. */
#define MAX_LINE 65536
#define MAX_EPOCHS 100000
#define MAX_RUNS 10 /* the palette's colours: more would repeat them */

enum { EPOCH, TRAIN_LOSS, TRAIN_ERR, EVAL_LOSS, EVAL_ERR, N_COLS };

typedef struct {
    char name[256];      /* the run folder's base name, for the legend */
    char eval[8];        /* "test", "val" or "" (the run evaluated nothing) */
    double *col[N_COLS]; /* n values each */
    int n, cap;
} run_curves;

static void run_free(run_curves *r)
{
    for (int c = 0; c < N_COLS; c++) free(r->col[c]);
    memset(r, 0, sizeof *r);
}

static void base_name(char *out, size_t size, const char *dir)
{
    size_t len = strlen(dir);
    while (len > 1 && dir[len - 1] == '/') len--;
    const char *start = dir + len;
    while (start > dir && start[-1] != '/') start--;
    int n = (int)(dir + len - start);
    if (n == 0 || (n == 1 && *start == '.') || (n == 2 && !strncmp(start, "..", 2))) {
        /* "." or "..": the folder's real name says more */
        char *real = realpath(dir, NULL);
        if (real && strcmp(real, "/")) {
            base_name(out, size, real);
            free(real);
            return;
        }
        free(real);
    }
    snprintf(out, size, "%.*s", n, start);
}

/* A number field; JSON null (cJSON writes NaN and infinity as null) is a gap in the curve. */
static int field(const cJSON *o, const char *key, double *out, const char *path, int line)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v) return rn_fail(RN_ERR_FORMAT, "%s: line %d: no \"%s\"", path, line, key);
    if (cJSON_IsNull(v)) {
        *out = NAN;
        return RN_OK;
    }
    if (!cJSON_IsNumber(v))
        return rn_fail(RN_ERR_FORMAT, "%s: line %d: \"%s\" is not a number", path, line, key);
    *out = v->valuedouble;
    return RN_OK;
}

static int add_row(run_curves *r, const double row[N_COLS])
{
    if (r->n == r->cap) {
        int cap = r->cap ? 2 * r->cap : 64;
        for (int c = 0; c < N_COLS; c++) {
            double *grown = realloc(r->col[c], (size_t)cap * sizeof *grown);
            if (!grown) return rn_fail(RN_ERR_NOMEM, "out of memory");
            r->col[c] = grown;
        }
        r->cap = cap;
    }
    for (int c = 0; c < N_COLS; c++) r->col[c][r->n] = row[c];
    r->n++;
    return RN_OK;
}

/* One line as metrics: the evaluation set (test or val) is the first line's, and every later
 * line must have the same fields. */
static int parse_line(run_curves *r, const char *text, size_t len, const char *path, int line)
{
    const char *end = NULL;
    cJSON *o = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    while (o && end < text + len && (*end == ' ' || *end == '\t' || *end == '\r')) end++;
    if (!o || !cJSON_IsObject(o) || end != text + len) {
        cJSON_Delete(o);
        return rn_fail(RN_ERR_FORMAT, "%s: line %d is not a JSON object", path, line);
    }
    if (r->n == 0) {
        if (cJSON_HasObjectItem(o, "test_loss") || cJSON_HasObjectItem(o, "test_error"))
            snprintf(r->eval, sizeof r->eval, "test");
        else if (cJSON_HasObjectItem(o, "val_loss") || cJSON_HasObjectItem(o, "val_error"))
            snprintf(r->eval, sizeof r->eval, "val");
    }
    double row[N_COLS] = {NAN, NAN, NAN, NAN, NAN};
    char kl[16], ke[16];
    snprintf(kl, sizeof kl, "%s_loss", r->eval);
    snprintf(ke, sizeof ke, "%s_error", r->eval);
    int st = field(o, "epoch", &row[EPOCH], path, line);
    if (!st) st = field(o, "train_loss", &row[TRAIN_LOSS], path, line);
    if (!st) st = field(o, "train_error", &row[TRAIN_ERR], path, line);
    if (!st && r->eval[0]) st = field(o, kl, &row[EVAL_LOSS], path, line);
    if (!st && r->eval[0]) st = field(o, ke, &row[EVAL_ERR], path, line);
    cJSON_Delete(o);
    if (!st && !isfinite(row[EPOCH]))
        st = rn_fail(RN_ERR_FORMAT, "%s: line %d: \"epoch\" is not a number", path, line);
    /* errors are fractions; the plot shows per cent */
    row[TRAIN_ERR] *= 100.0;
    row[EVAL_ERR] *= 100.0;
    return st ? st : add_row(r, row);
}

static int read_run(run_curves *r, const char *dir)
{
    char path[4200];
    if ((size_t)snprintf(path, sizeof path, "%s/metrics.jsonl", dir) >= sizeof path)
        return rn_fail(RN_ERR_ARG, "%s: path too long", dir);
    base_name(r->name, sizeof r->name, dir);
    FILE *f = fopen(path, "rb");
    if (!f) return rn_fail(RN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    char *buf = malloc(MAX_LINE + 1);
    if (!buf) {
        fclose(f);
        return rn_fail(RN_ERR_NOMEM, "out of memory");
    }
    int st = RN_OK, line = 0, c = 0;
    while (!st && c != EOF) {
        size_t len = 0;
        int nul = 0;
        line++;
        while ((c = getc(f)) != EOF && c != '\n') {
            if (len == MAX_LINE) break;
            nul |= c == 0;
            buf[len++] = (char)c;
        }
        if (len == MAX_LINE && c != EOF && c != '\n') {
            st = rn_fail(RN_ERR_FORMAT, "%s: line %d is longer than %d bytes", path, line, MAX_LINE);
            break;
        }
        if (nul) {
            st = rn_fail(RN_ERR_FORMAT, "%s: line %d is not text (a NUL byte)", path, line);
            break;
        }
        size_t skip = 0;
        while (skip < len && strchr(" \t\r", buf[skip])) skip++;
        if (skip == len) continue; /* a blank line, e.g. a trailing one */
        if (r->n == MAX_EPOCHS) {
            st = rn_fail(RN_ERR_FORMAT, "%s: more than %d epochs", path, MAX_EPOCHS);
            break;
        }
        buf[len] = 0;
        st = parse_line(r, buf + skip, len - skip, path, line);
    }
    if (!st && ferror(f)) st = rn_fail(RN_ERR_IO, "%s: read error: %s", path, strerror(errno));
    free(buf);
    fclose(f);
    if (!st && r->n == 0) st = rn_fail(RN_ERR_FORMAT, "%s: no epochs in it (yet)", path);
    return st;
}

int rn_plot_training_curves(const char *base, const char *const *run_dirs, int n_runs,
                            const char *title)
{
    if (!base || !run_dirs || n_runs < 1)
        return rn_fail(RN_ERR_ARG, "training curves need at least one run folder");
    if (n_runs > MAX_RUNS)
        return rn_fail(RN_ERR_ARG, "at most %d runs in one figure (got %d)", MAX_RUNS, n_runs);
    run_curves runs[MAX_RUNS];
    memset(runs, 0, sizeof runs);
    int st = RN_OK;
    for (int i = 0; i < n_runs && !st; i++)
        st = run_dirs[i] ? read_run(&runs[i], run_dirs[i]) : rn_fail(RN_ERR_ARG, "run folder %d is NULL", i);

    /* 2 series (train, eval) per run and panel; the evaluation set's name from the runs */
    rn_plot_series loss[2 * MAX_RUNS], err[2 * MAX_RUNS];
    char labels[2 * MAX_RUNS][300];
    int ns = 0;
    const char *eval = "";
    for (int i = 0; i < n_runs && !st; i++) {
        const run_curves *r = &runs[i];
        if (r->eval[0] && !eval[0]) eval = r->eval;
        else if (r->eval[0] && strcmp(eval, r->eval)) eval = "test/val";
        /* markers show where the epochs are when there are few of them (one epoch is one point) */
        const rn_plot_style style = r->n <= 40 ? RN_PLOT_LINE_POINTS : RN_PLOT_LINE;
        for (int k = 0; k < (r->eval[0] ? 2 : 1); k++) {
            snprintf(labels[ns], sizeof labels[ns], "%s %s", r->name, k ? r->eval : "train");
            loss[ns] = (rn_plot_series){.label = labels[ns], .x = r->col[EPOCH],
                                        .y = r->col[k ? EVAL_LOSS : TRAIN_LOSS], .n = r->n,
                                        .style = style, .color = i, .dashed = k};
            err[ns] = loss[ns];
            err[ns].label = NULL; /* one legend, in the loss panel, serves both */
            err[ns].y = r->col[k ? EVAL_ERR : TRAIN_ERR];
            ns++;
        }
    }
    if (!st) {
        char sub[2][64];
        snprintf(sub[0], sizeof sub[0], "loss (solid: train%s%s)", eval[0] ? ", dashed: " : "", eval);
        snprintf(sub[1], sizeof sub[1], "error (solid: train%s%s)", eval[0] ? ", dashed: " : "", eval);
        rn_plot_panel panels[2] = {
            {.title = sub[0], .xlabel = "epoch", .ylabel = "loss", .xmin = NAN, .xmax = NAN,
             .ymin = NAN, .ymax = NAN, .series = loss, .n_series = ns, .legend_pos = RN_PLOT_LEGEND_AUTO},
            {.title = sub[1], .xlabel = "epoch", .ylabel = "error (%)", .xmin = NAN, .xmax = NAN,
             .ymin = NAN, .ymax = NAN, .series = err, .n_series = ns, .legend_pos = RN_PLOT_LEGEND_AUTO},
        };
        rn_plot_figure fig = {.title = title && title[0] ? title : "Training curves",
                              .width = 1400, .height = 600};
        st = rn_plot_write(base, &fig, panels, 2);
    }
    for (int i = 0; i < n_runs; i++) run_free(&runs[i]);
    return st;
}
