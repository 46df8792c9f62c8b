/* Plots: a thin layer over PLplot that draws figures of one or more panels of x-y series and
 * writes each figure twice, as PNG (cairo's pngcairo driver) and SVG (svgcairo), with no window.
 *
 * A figure is drawn from data only: the same series give the same picture. PLplot keeps global
 * state, so figures are drawn one at a time (not from several threads at once). */
#ifndef RN_PLOT_PLOT_H
#define RN_PLOT_PLOT_H

typedef enum {
    RN_PLOT_LINE = 0,        /* a line through the points (a NaN y breaks it) */
    RN_PLOT_POINTS = 1,      /* a marker at each point */
    RN_PLOT_LINE_POINTS = 2, /* both */
    RN_PLOT_BARS = 3,        /* a vertical bar from the axis' bottom (or 0) to each y */
} rn_plot_style;

typedef struct {
    const char *label;     /* legend text; NULL or "" leaves the series out of the legend */
    const double *x, *y;   /* n points */
    int n;
    rn_plot_style style;
    int color;             /* index into the palette (0..9, cycled); -1: the series' own index */
    int dashed;            /* 1: a dashed line */
    const double *lo, *hi; /* optional: a spread drawn as an error bar at each point (NULL) */
} rn_plot_series;

#define RN_PLOT_LEGEND_AUTO (-1)

typedef struct {
    const char *title;
    const char *xlabel, *ylabel; /* with units, e.g. "epoch", "training error (%)" */
    int logx, logy;              /* log10 axes; points <= 0 are left out */
    double xmin, xmax, ymin, ymax; /* NaN: from the data, padded 5% (an automatic log range
                                    * with fewer than two whole decades in it widens to decades) */
    const rn_plot_series *series;
    int n_series;
    int legend_pos;              /* 0: top right, 1: top left, 2: bottom right, 3: bottom left,
                                  * RN_PLOT_LEGEND_AUTO: the corner the data cross least; if they
                                  * cross all four, an automatic y top rises to make room, or, for
                                  * a legend over a third of the height (or a fixed top), the
                                  * legend goes right of the axes */
    /* Optional vertical marker lines at these x (e.g. downsampling blocks), drawn dotted and grey. */
    const double *vlines;
    int n_vlines;
} rn_plot_panel;

typedef struct {
    const char *title;        /* over the whole figure (may be NULL) */
    int width, height;        /* pixels of the PNG; 0: 1000 x 600 per row */
    int cols;                 /* panels per row; 0: all in one row */
} rn_plot_figure;

/* Draws the panels and writes base.png and base.svg (each written to a temporary file and
 * renamed, so a reader never sees half a picture). RN_ERR_ARG for empty input, RN_ERR_IO
 * naming the file when it cannot be written. */
int rn_plot_write(const char *base, const rn_plot_figure *fig, const rn_plot_panel *panels,
                  int n_panels);

/* Training curves of run folders (resnet train's): loss and error (%) against epoch in two panels,
 * train solid and test (or val) dashed, one colour per run (at most 10), from each folder's
 * metrics.jsonl; writes base.png and base.svg. title NULL: "Training curves". RN_ERR_IO for a
 * missing metrics.jsonl, RN_ERR_FORMAT naming the file and line for a malformed one. */
int rn_plot_training_curves(const char *base, const char *const *run_dirs, int n_runs,
                            const char *title);

#endif
