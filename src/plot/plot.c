#define _POSIX_C_SOURCE 200809L
/* Figures through PLplot's cairo drivers: the same drawing twice, to PNG and to SVG. */
#include <errno.h>
#include <math.h>
#include <plplot.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "plot/plot.h"

/* Colour 0 is the background, 1 the axes and text; series use 2.. (a palette readable on white,
 * distinct in grey scale too: Tableau's ten). */
static const int palette[13][3] = {
    {255, 255, 255}, {0, 0, 0},       {31, 119, 180}, {214, 39, 40},  {44, 160, 44},  {255, 127, 14},
    {148, 103, 189}, {140, 86, 75},   {227, 119, 194}, {127, 127, 127}, {188, 189, 34}, {23, 190, 207},
    {215, 215, 215},
};
#define GREY 9
#define LIGHT 12
#define MARKER "•"

/* PLplot calls exit() on a fatal error unless a handler returns; ours records it. */
static int plplot_failed;
static int on_plplot_error(PLCHAR_VECTOR message)
{
    (void)message;
    plplot_failed = 1;
    return 1;
}

static int usable(double v, int logaxis) { return isfinite(v) && (!logaxis || v > 0.0); }

/* The data range of one axis over every series (and spreads), padded; log axes in log10. */
static void axis_range(const rn_plot_panel *p, int yaxis, double *lo, double *hi)
{
    const int logaxis = yaxis ? p->logy : p->logx;
    double a = INFINITY, b = -INFINITY;
    for (int s = 0; s < p->n_series; s++) {
        const rn_plot_series *se = &p->series[s];
        for (int i = 0; i < se->n; i++) {
            double v[3] = {yaxis ? se->y[i] : se->x[i], NAN, NAN};
            if (yaxis && se->lo) v[1] = se->lo[i];
            if (yaxis && se->hi) v[2] = se->hi[i];
            if (!usable(se->x[i], p->logx)) continue;
            for (int k = 0; k < 3; k++)
                if (usable(v[k], logaxis)) {
                    double t = logaxis ? log10(v[k]) : v[k];
                    if (t < a) a = t;
                    if (t > b) b = t;
                }
        }
        if (yaxis && se->style == RN_PLOT_BARS && !logaxis) {
            if (0.0 < a) a = 0.0;
            if (0.0 > b) b = 0.0;
        }
    }
    if (!(a <= b)) a = 0.0, b = 1.0;
    if (b - a < 1e-12) a -= logaxis ? 0.5 : fabs(a) * 0.1 + 0.5, b += logaxis ? 0.5 : fabs(b) * 0.1 + 0.5;
    double pad = 0.05 * (b - a);
    double fixed_lo = yaxis ? p->ymin : p->xmin, fixed_hi = yaxis ? p->ymax : p->xmax;
    *lo = isnan(fixed_lo) ? a - pad : logaxis ? log10(fixed_lo) : fixed_lo;
    *hi = isnan(fixed_hi) ? b + pad : logaxis ? log10(fixed_hi) : fixed_hi;
}

static double tx(double v, int logaxis) { return logaxis ? log10(v) : v; }

static void draw_series(const rn_plot_panel *p, const rn_plot_series *s, int index, double ybase)
{
    const int colour = 2 + (s->color >= 0 ? s->color : index) % 10;
    plcol0(colour);
    pllsty(s->dashed ? 3 : 1);
    plwidth(2.0);
    PLFLT *x = malloc((size_t)(s->n > 0 ? s->n : 1) * sizeof *x), *y = malloc((size_t)(s->n > 0 ? s->n : 1) * sizeof *y);
    if (!x || !y) {
        free(x);
        free(y);
        return;
    }
    /* lines break at unusable points */
    int run = 0;
    for (int i = 0; i <= s->n; i++) {
        int ok = i < s->n && usable(s->x[i], p->logx) && usable(s->y[i], p->logy);
        if (ok) {
            x[run] = tx(s->x[i], p->logx);
            y[run] = tx(s->y[i], p->logy);
            run++;
        }
        if ((!ok || i == s->n) && run) {
            if ((s->style == RN_PLOT_LINE || s->style == RN_PLOT_LINE_POINTS) && run > 1) plline(run, x, y);
            if (s->style == RN_PLOT_POINTS || s->style == RN_PLOT_LINE_POINTS) {
                pllsty(1);
                plstring(run, x, y, MARKER);
                pllsty(s->dashed ? 3 : 1);
            }
            if (s->style == RN_PLOT_BARS) {
                plwidth(6.0);
                pllsty(1);
                for (int k = 0; k < run; k++) {
                    PLFLT bx[2] = {x[k], x[k]}, by[2] = {ybase, y[k]};
                    plline(2, bx, by);
                }
                plwidth(2.0);
            }
            run = 0;
        }
    }
    if (s->lo && s->hi) {
        pllsty(1);
        plwidth(1.0);
        int m = 0;
        PLFLT *lo = malloc((size_t)(s->n > 0 ? s->n : 1) * sizeof *lo), *hi = malloc((size_t)(s->n > 0 ? s->n : 1) * sizeof *hi);
        for (int i = 0; lo && hi && i < s->n; i++)
            if (usable(s->x[i], p->logx) && usable(s->lo[i], p->logy) && usable(s->hi[i], p->logy)) {
                x[m] = tx(s->x[i], p->logx);
                lo[m] = tx(s->lo[i], p->logy);
                hi[m] = tx(s->hi[i], p->logy);
                m++;
            }
        if (m) plerry(m, x, lo, hi);
        free(lo);
        free(hi);
    }
    pllsty(1);
    plwidth(1.0);
    free(x);
    free(y);
}

static void draw_legend(const rn_plot_panel *p)
{
    int n = 0;
    for (int s = 0; s < p->n_series; s++)
        if (p->series[s].label && p->series[s].label[0]) n++;
    if (!n) return;
    PLINT *opt = calloc((size_t)n, sizeof *opt), *tc = calloc((size_t)n, sizeof *tc);
    PLINT *lc = calloc((size_t)n, sizeof *lc), *ls = calloc((size_t)n, sizeof *ls);
    PLINT *sc = calloc((size_t)n, sizeof *sc), *sn = calloc((size_t)n, sizeof *sn);
    PLFLT *lw = calloc((size_t)n, sizeof *lw), *ss = calloc((size_t)n, sizeof *ss);
    const char **text = calloc((size_t)n, sizeof *text), **sym = calloc((size_t)n, sizeof *sym);
    if (opt && tc && lc && ls && sc && sn && lw && ss && text && sym) {
        int k = 0;
        for (int s = 0; s < p->n_series; s++) {
            const rn_plot_series *se = &p->series[s];
            if (!se->label || !se->label[0]) continue;
            int colour = 2 + (se->color >= 0 ? se->color : s) % 10;
            opt[k] = se->style == RN_PLOT_POINTS ? PL_LEGEND_SYMBOL
                     : se->style == RN_PLOT_LINE_POINTS ? PL_LEGEND_LINE | PL_LEGEND_SYMBOL
                                                         : PL_LEGEND_LINE;
            tc[k] = 1, lc[k] = colour, ls[k] = se->dashed ? 3 : 1;
            lw[k] = se->style == RN_PLOT_BARS ? 6.0 : 2.0;
            sc[k] = colour, ss[k] = 1.0, sn[k] = 1, sym[k] = MARKER;
            text[k] = se->label;
            k++;
        }
        static const PLINT corner[4] = {PL_POSITION_RIGHT | PL_POSITION_TOP, PL_POSITION_LEFT | PL_POSITION_TOP,
                                        PL_POSITION_RIGHT | PL_POSITION_BOTTOM, PL_POSITION_LEFT | PL_POSITION_BOTTOM};
        PLFLT w, h;
        pllegend(&w, &h, PL_LEGEND_BACKGROUND | PL_LEGEND_BOUNDING_BOX,
                 corner[p->legend_pos >= 0 && p->legend_pos < 4 ? p->legend_pos : 0] | PL_POSITION_INSIDE,
                 0.02, 0.02, 0.08, 0, 1, 1, 0, 0, n, opt, 0.8, 0.75, 1.6, 0.0, tc,
                 (const char *const *)text, NULL, NULL, NULL, NULL, lc, ls, lw, sc, ss, sn,
                 (const char *const *)sym);
    }
    free(opt), free(tc), free(lc), free(ls), free(sc), free(sn), free(lw), free(ss);
    free(text), free(sym);
}

/* The panel in the page rectangle [x0, x1] x [y0, y1] (normalised page coordinates). */
static void draw_panel(const rn_plot_panel *p, double px0, double px1, double py0, double py1)
{
    const double w = px1 - px0, h = py1 - py0;
    plvpor(px0 + 0.15 * w, px0 + 0.97 * w, py0 + 0.15 * h, py0 + 0.88 * h);
    double x0, x1, y0, y1;
    axis_range(p, 0, &x0, &x1);
    axis_range(p, 1, &y0, &y1);
    plwind(x0, x1, y0, y1);
    /* a light dotted grid under the data, the frame and labels in black */
    plcol0(LIGHT);
    pllsty(2);
    plwidth(1.0);
    plbox(p->logx ? "lg" : "g", 0.0, 0, p->logy ? "lg" : "g", 0.0, 0);
    pllsty(1);
    plcol0(1);
    plbox(p->logx ? "bcnstl" : "bcnst", 0.0, 0, p->logy ? "bcnstvl" : "bcnstv", 0.0, 0);
    pllab(p->xlabel ? p->xlabel : "", p->ylabel ? p->ylabel : "", p->title ? p->title : "");
    plcol0(GREY);
    pllsty(2);
    for (int i = 0; i < p->n_vlines; i++) {
        if (!usable(p->vlines[i], p->logx)) continue;
        PLFLT vx[2] = {tx(p->vlines[i], p->logx), tx(p->vlines[i], p->logx)}, vy[2] = {y0, y1};
        plline(2, vx, vy);
    }
    pllsty(1);
    const double ybase = p->logy ? y0 : (y0 < 0.0 && y1 > 0.0 ? 0.0 : y0);
    for (int s = 0; s < p->n_series; s++) draw_series(p, &p->series[s], s, ybase);
    draw_legend(p);
}

static int draw(const char *device, const char *path, const rn_plot_figure *fig,
                const rn_plot_panel *panels, int n)
{
    const int cols = fig->cols > 0 && fig->cols < n ? fig->cols : n;
    const int rows = (n + cols - 1) / cols;
    const int w = fig->width > 0 ? fig->width : 1000, h = fig->height > 0 ? fig->height : 600 * rows;
    char geometry[32];
    snprintf(geometry, sizeof geometry, "%dx%d", w, h);
    plplot_failed = 0;
    plsexit(on_plplot_error);
    plsdev(device);
    plsfnam(path);
    plsetopt("geometry", geometry);
    int r[13], g[13], b[13];
    for (int i = 0; i < 13; i++) r[i] = palette[i][0], g[i] = palette[i][1], b[i] = palette[i][2];
    plscmap0(r, g, b, 13);
    plinit();
    if (plplot_failed) {
        plend();
        return rn_fail(RN_ERR_IO, "%s: PLplot could not open its %s device", path, device);
    }
    plfontld(1);
    plschr(0.0, 0.85);
    pladv(0);
    /* panels on a grid below a band for the figure's title */
    const double top = fig->title && fig->title[0] ? 0.93 : 1.0;
    for (int i = 0; i < n; i++) {
        const int row = i / cols, col = i % cols;
        draw_panel(&panels[i], (double)col / cols, (double)(col + 1) / cols,
                   top * (1.0 - (double)(row + 1) / rows), top * (1.0 - (double)row / rows));
    }
    if (top < 1.0) {
        plvpor(0.0, 1.0, top, 1.0);
        plwind(0.0, 1.0, 0.0, 1.0);
        plcol0(1);
        plschr(0.0, 1.05);
        plptex(0.5, 0.35, 1.0, 0.0, 0.5, fig->title);
    }
    plend();
    return plplot_failed ? rn_fail(RN_ERR_IO, "%s: PLplot failed to draw", path) : RN_OK;
}

int rn_plot_write(const char *base, const rn_plot_figure *fig, const rn_plot_panel *panels,
                  int n_panels)
{
    if (!base || !fig || !panels || n_panels < 1 || n_panels > 16)
        return rn_fail(RN_ERR_ARG, "a figure needs 1 to 16 panels");
    for (int i = 0; i < n_panels; i++)
        for (int s = 0; s < panels[i].n_series; s++)
            if (panels[i].series[s].n < 0 || (panels[i].series[s].n && (!panels[i].series[s].x || !panels[i].series[s].y)))
                return rn_fail(RN_ERR_ARG, "%s: series %d of panel %d has no data", base, s, i);
    static const char *const devices[2] = {"pngcairo", "svgcairo"}, *const ext[2] = {"png", "svg"};
    for (int d = 0; d < 2; d++) {
        char path[4096], tmp[4200];
        if ((size_t)snprintf(path, sizeof path, "%s.%s", base, ext[d]) >= sizeof path)
            return rn_fail(RN_ERR_ARG, "%s: path too long", base);
        snprintf(tmp, sizeof tmp, "%s.tmp", path);
        int st = draw(devices[d], tmp, fig, panels, n_panels);
        FILE *f = st ? NULL : fopen(tmp, "rb");
        if (!st && !f) st = rn_fail(RN_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
        if (f) {
            int empty = fgetc(f) == EOF;
            fclose(f);
            if (empty) st = rn_fail(RN_ERR_IO, "%s: nothing was written (disk full?)", path);
        }
        if (!st && rename(tmp, path) != 0) st = rn_fail(RN_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
        if (st) {
            remove(tmp);
            return st;
        }
    }
    return RN_OK;
}
