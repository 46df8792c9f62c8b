/* resnet plot: the training curves (loss and error per epoch) of one or more run folders. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "plot/plot.h"

#define MAX_RUNS 10 /* rn_plot_training_curves' limit: one palette colour each */

int cmd_plot(int argc, char **argv)
{
    const char *runs[MAX_RUNS + 1], *out = NULL, *title = NULL;
    int n = 0;
    const cli_opt opts[] = {
        {"--output", "FILE", CLI_TEXT, &out, 0, 0, NULL,
         "write FILE.png and FILE.svg (a .png or .svg suffix is dropped); default RUN_DIR/curves "
         "for one run, ./curves for several", NULL},
        {"--title", "T", CLI_TEXT, &title, 0, 0, NULL, "the figure's title (default: Training curves)", NULL},
        {NULL, NULL, CLI_FLAG, NULL, 0, 0, NULL, NULL, NULL},
    };
    const cli_verb verb = {
        .usage = "usage: resnet plot RUN_DIR... [--output FILE] [--title T]\n"
                 "Draws the training curves of runs of resnet train from their metrics.jsonl: loss and error\n"
                 "(%) against epoch, train solid and test (or val) dashed, one colour per run (at most 10).\n",
        .opts = opts, .args = runs, .max_args = MAX_RUNS + 1, .n_args = &n};
    int r = cli_parse(&verb, argc, argv);
    if (r) return r < 0 ? 0 : r;
    if (n > MAX_RUNS) return cli_error("plot: at most %d run folders in one figure", MAX_RUNS) + 1;
    if (!n) return cli_error("plot: which runs? give one or more RUN_DIR (see resnet plot --help)") + 1;
    if (out && !out[0]) return cli_error("--output: empty file name") + 1;

    /* FILE, RUN_DIR/curves or ./curves, without the suffix the drawing adds */
    size_t len = out ? strlen(out) : strlen(runs[0]) + sizeof "/curves";
    char *base = malloc(len + 1);
    if (!base) return cli_error("out of memory");
    if (out) {
        memcpy(base, out, len + 1);
        if (len > 4 && (!strcmp(base + len - 4, ".png") || !strcmp(base + len - 4, ".svg")))
            base[len - 4] = 0;
    } else if (n == 1) {
        snprintf(base, len + 1, "%s/curves", runs[0]);
    } else {
        snprintf(base, len + 1, "curves");
    }
    int rc = 0;
    if (rn_plot_training_curves(base, runs, n, title)) rc = cli_lib_error(NULL);
    else printf("%s.png\n%s.svg\n", base, base);
    free(base);
    return rc;
}
