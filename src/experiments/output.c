#define _POSIX_C_SOURCE 200809L
/* What an experiment writes: text files through a temporary name, summary.md's head, plots,
 * and the small statistics they share. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "experiments/experiment.h"

int rn_exp_file_open(rn_exp *x, rn_exp_file *file, const char *name)
{
    char path[RN_TRAIN_PATH_MAX + 64];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", x->out, name) >= sizeof path)
        return rn_fail(RN_ERR_ARG, "%s/%s: path too long", x->out, name);
    return rn_atomic_open(&file->file, path);
}

void rn_exp_printf(rn_exp_file *file, const char *fmt, ...)
{
    if (!file->file.f) return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(file->file.f, fmt, ap); /* a failure sets the stream's error flag: the close sees it */
    va_end(ap);
}

int rn_exp_file_close(rn_exp_file *file)
{
    return rn_atomic_commit(&file->file);
}

int rn_exp_summary_open(rn_exp *x, rn_exp_file *file)
{
    int st = rn_exp_file_open(x, file, "summary.md");
    if (st) return st;
    const rn_experiment *e = x->def;
    rn_exp_printf(file, "# %s: %s\n\n", e->name, e->title);
    rn_exp_printf(file, "**Claim** (%s): %s.\n\n", e->source, e->claim);
    rn_exp_printf(file, "Settings: %s mode, data %s", x->set.quick ? "quick" : "full",
                  rn_data_kind_name(x->set.data));
    if (x->set.subset > 0) rn_exp_printf(file, " (first %d training and %d test images)", x->set.subset, x->set.subset);
    rn_exp_printf(file, ", seed %llu", (unsigned long long)x->set.seed);
    for (int i = 0; e->opts && e->opts[i].name; i++)
        rn_exp_printf(file, ", --%s %s", e->opts[i].name, x->set.values[i]);
    rn_exp_printf(file, ".\n\n");
    return RN_OK;
}

int rn_exp_plot(rn_exp *x, const char *base, const rn_plot_figure *fig,
                const rn_plot_panel *panels, int n_panels)
{
    char path[RN_TRAIN_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", x->out, base);
    return rn_plot_write(path, fig, panels, n_panels);
}

double rn_exp_mean(const double *v, int n)
{
    if (n <= 0) return NAN;
    double s = 0.0;
    for (int i = 0; i < n; i++) s += v[i];
    return s / n;
}

double rn_exp_std(const double *v, int n)
{
    if (n < 2) return 0.0;
    double m = rn_exp_mean(v, n), s = 0.0;
    for (int i = 0; i < n; i++) s += (v[i] - m) * (v[i] - m);
    return sqrt(s / (n - 1));
}
