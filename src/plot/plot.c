#define _POSIX_C_SOURCE 200809L
/* Figures through PLplot's cairo drivers: the same drawing twice, to PNG and to SVG. */
#include <errno.h>
#include <math.h>
#include <plplot.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/atomic_file.h"
#include "core/error.h"
#include "plot/plot.h"

/* Colour 0 is the background, 1 the axes and text; series use 2.. (a palette readable on white,
 * distinct in grey scale too: Tableau's ten). */
static const int palette[13][3] = {
    {255, 255, 255}, {0, 0, 0},       {31, 119, 180}, {214, 39, 40},  {44, 160, 44},  {255, 127, 14},
    {148, 103, 189}, {140, 86, 75},   {227, 119, 194}, {127, 127, 127}, {188, 189, 34}, {23, 190, 207},
    {225, 225, 225},
};
#define GREY 9
#define LIGHT 12
#define MARKER "•"

/* PLplot's fatal errors call exit() whatever the handler installed by plsexit returns (plexit
 * prints, calls plend and exits with the handler's value), so ours jumps back into draw(), which
 * ends the stream itself. Its non-fatal errors (plabort) print to stderr even with a handler
 * installed by plsabort, unless the stream has a message buffer (plsError): ours keeps the first
 * message, and the figure fails with it. */
static jmp_buf plplot_exit;
static double text_scale = 1.0; /* of the figure being drawn: see draw_figure */
static int plplot_failed;
static char plplot_message[256];
static PLINT plplot_errcode;
static char plplot_errmsg[1024]; /* plabort sprintf()s its message here, unbounded */

static void keep_message(PLCHAR_VECTOR message)
{
    if (!plplot_message[0]) snprintf(plplot_message, sizeof plplot_message, "%s", message ? message : "");
}

static int on_plplot_exit(PLCHAR_VECTOR message)
{
    keep_message(message);
    plplot_failed = 1;
    longjmp(plplot_exit, 1);
}

static void on_plplot_abort(PLCHAR_VECTOR message)
{
    keep_message(message);
    plplot_failed = 1;
}

/* Beyond 1e300 the padding of a range would overflow to infinity, which PLplot refuses. */
static int usable(double v, int logaxis)
{
    return isfinite(v) && fabs(v) <= 1e300 && (!logaxis || v >= 1e-300);
}

static double tx(double v, int logaxis) { return logaxis ? log10(v) : v; }

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
    a -= pad, b += pad;
    /* PLplot labels a log axis at whole decades only: one that holds fewer than two would show
     * at most one number, so it grows to the decades around the data */
    if (logaxis && floor(b) - ceil(a) < 1.0) a = floor(a), b = ceil(b);
    double fixed_lo = yaxis ? p->ymin : p->xmin, fixed_hi = yaxis ? p->ymax : p->xmax;
    *lo = usable(fixed_lo, logaxis) ? tx(fixed_lo, logaxis) : a;
    *hi = usable(fixed_hi, logaxis) ? tx(fixed_hi, logaxis) : b;
    if (*lo == *hi) *lo = a, *hi = b; /* PLplot refuses an empty window */
}

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

static int legend_entries(const rn_plot_panel *p)
{
    int n = 0;
    for (int s = 0; s < p->n_series; s++) n += p->series[s].label && p->series[s].label[0];
    return n;
}

/* The legend's size as fractions of the axes' (axes_w x axes_h pixels): an estimate on the safe
 * side from the cairo drivers' text at the size draw_figure sets, about 10 pixels a character and
 * 27 an entry, whatever the size of the picture. */
typedef struct {
    double w, h;
    double px_w; /* the width in pixels */
} legend_box;

static legend_box legend_size(const rn_plot_panel *p, double axes_w, double axes_h)
{
    int longest = 0;
    for (int s = 0; s < p->n_series; s++) {
        int len = 0; /* characters, not bytes */
        for (const char *c = p->series[s].label; c && *c; c++) len += ((unsigned char)*c & 0xc0) != 0x80;
        if (len > longest) longest = len;
    }
    const double px_w = 110.0 + 10.5 * longest;
    legend_box b = {px_w / fmax(axes_w, 1.0), (14.0 + 27.0 * legend_entries(p)) / fmax(axes_h, 1.0), px_w};
    b.w = fmin(b.w, 0.95), b.h = fmin(b.h, 0.6);
    return b;
}

/* For RN_PLOT_LEGEND_AUTO: the corner whose legend-sized box the data cross least (points and
 * points along the lines between them, in the axes' fractions; ties go to the lower number);
 * *crossed: how many of those points fall in it. */
static int auto_corner(const rn_plot_panel *p, legend_box box, double x0, double x1, double y0, double y1,
                       long *crossed)
{
    const double bw = box.w, bh = box.h;
    long hits[4] = {0, 0, 0, 0};
    for (int s = 0; s < p->n_series; s++) {
        const rn_plot_series *se = &p->series[s];
        double px = NAN, py = NAN; /* the previous point, NaN after a break */
        const int steps = se->n > 2000 ? 1 : 8;
        for (int i = 0; i < se->n; i++) {
            if (!usable(se->x[i], p->logx) || !usable(se->y[i], p->logy)) {
                px = py = NAN;
                continue;
            }
            const double fx = (tx(se->x[i], p->logx) - x0) / (x1 - x0);
            const double fy = (tx(se->y[i], p->logy) - y0) / (y1 - y0);
            const int line = se->style != RN_PLOT_POINTS && !isnan(px);
            for (int k = line ? 1 : steps; k <= steps; k++) {
                const double t = (double)k / steps;
                const double qx = line ? px + t * (fx - px) : fx, qy = line ? py + t * (fy - py) : fy;
                const int right = qx > 1.0 - bw, left = qx < bw, upper = qy > 1.0 - bh, lower = qy < bh;
                hits[0] += right && upper, hits[1] += left && upper;
                hits[2] += right && lower, hits[3] += left && lower;
                /* a bar covers everything below its top */
                if (se->style == RN_PLOT_BARS) hits[2] += right, hits[3] += left;
            }
            px = fx, py = fy;
        }
    }
    int best = 0;
    for (int c = 1; c < 4; c++)
        if (hits[c] < hits[best]) best = c;
    *crossed = hits[best];
    return best;
}

#define OUTSIDE 4 /* the legend right of the axes */

/* The corner of the legend; with RN_PLOT_LEGEND_AUTO, when the data cross every corner and the
 * top of the y axis is automatic, the axis grows upwards to make room at the top, or, where
 * that would take more than a third of the height, the legend goes outside, right of the axes. */
static int legend_corner(const rn_plot_panel *p, legend_box box, double x0, double x1, double y0,
                         double *y1)
{
    if (p->legend_pos != RN_PLOT_LEGEND_AUTO) return p->legend_pos >= 0 && p->legend_pos < 4 ? p->legend_pos : 0;
    long crossed;
    int corner = auto_corner(p, box, x0, x1, y0, *y1, &crossed);
    if (crossed > 0 && legend_entries(p) > 0 && (box.h > 1.0 / 3.0 || usable(p->ymax, p->logy)))
        return OUTSIDE;
    if (crossed > 0 && legend_entries(p) > 0) {
        *y1 = y0 + (*y1 - y0) / (1.0 - box.h);
        corner = auto_corner(p, box, x0, x1, y0, *y1, &crossed);
    }
    return corner;
}

static void draw_legend(const rn_plot_panel *p, int pos)
{
    const int n = legend_entries(p);
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
        const PLINT where = pos == OUTSIDE ? PL_POSITION_RIGHT | PL_POSITION_OUTSIDE
                                           : corner[pos] | PL_POSITION_INSIDE;
        pllegend(&w, &h, PL_LEGEND_BACKGROUND | PL_LEGEND_BOUNDING_BOX, where,
                 pos == OUTSIDE ? 0.01 : 0.02, pos == OUTSIDE ? 0.0 : 0.02, 0.08, 0, 1, 1, 0, 0, n, opt, 0.8 * text_scale, 0.75, 1.6, 0.0, tc,
                 (const char *const *)text, NULL, NULL, NULL, NULL, lc, ls, lw, sc, ss, sn,
                 (const char *const *)sym);
    }
    free(opt), free(tc), free(lc), free(ls), free(sc), free(sn), free(lw), free(ss);
    free(text), free(sym);
}

/* The panel in the page rectangle [x0, x1] x [y0, y1] (normalised page coordinates) of a
 * picture of fig_w x fig_h pixels. */
static void draw_panel(const rn_plot_panel *p, double px0, double px1, double py0, double py1,
                       int fig_w, int fig_h)
{
    const double w = px1 - px0, h = py1 - py0;
    plvpor(px0 + 0.15 * w, px0 + 0.97 * w, py0 + 0.15 * h, py0 + 0.88 * h);
    const legend_box box = legend_size(p, 0.82 * w * fig_w, 0.73 * h * fig_h);
    double x0, x1, y0, y1;
    axis_range(p, 0, &x0, &x1);
    axis_range(p, 1, &y0, &y1);
    const int corner = legend_corner(p, box, x0, x1, y0, &y1);
    if (corner == OUTSIDE) /* narrower axes, the legend beside them */
        plvpor(px0 + 0.15 * w, fmax(px0 + 0.5 * w, px0 + 0.97 * w - (box.px_w + 20.0) / fig_w),
               py0 + 0.15 * h, py0 + 0.88 * h);
    plwind(x0, x1, y0, y1);
    /* a light grid under the data, the frame and labels in black; solid, because PLplot draws a
     * dotted line as one segment per dot, which made an SVG of a few curves 500 kB */
    plcol0(LIGHT);
    pllsty(1);
    plwidth(1.0);
    plbox(p->logx ? "lg" : "g", 0.0, 0, p->logy ? "lg" : "g", 0.0, 0);
    plcol0(1);
    /* PLplot labels every decade of a log axis, and more than about 12 overlap (their minor
     * ticks run together too): then only every k-th decade gets a number, written here */
    const int ystep = p->logy ? (int)ceil((floor(y1) - ceil(y0) + 1.0) / 12.0) : 1;
    plbox(p->logx ? "bcnstl" : "bcnst", 0.0, 0, p->logy ? (ystep > 1 ? "bctvl" : "bcnstvl") : "bcnstv", 0.0, 0);
    for (int e = (int)ceil(y0); ystep > 1 && e <= (int)floor(y1); e++)
        if (e % ystep == 0) {
            char label[32];
            snprintf(label, sizeof label, "10#u%d#d", e);
            plmtex("lv", 0.5, (e - y0) / (y1 - y0), 1.0, label);
        }
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
    draw_legend(p, corner);
}

/* Whether PLplot has this device: asked for one it lacks, plinit would print a menu and read
 * the answer from stdin. */
static int have_device(const char *device)
{
    PLCHAR_VECTOR menu[128], names[128];
    PLCHAR_VECTOR *pm = menu, *pn = names;
    int n = 128;
    plgDevs(&pm, &pn, &n);
    for (int i = 0; i < n; i++)
        if (names[i] && !strcmp(names[i], device)) return 1;
    return 0;
}

static void draw_figure(const char *device, const char *path, const rn_plot_figure *fig,
                        const rn_plot_panel *panels, int n)
{
    const int cols = fig->cols > 0 && fig->cols < n ? fig->cols : n;
    const int rows = (n + cols - 1) / cols;
    const int w = fig->width > 0 ? fig->width : 1000, h = fig->height > 0 ? fig->height : 600 * rows;
    char geometry[32];
    snprintf(geometry, sizeof geometry, "%dx%d", w, h);
    plsdev(device);
    plsfnam(path);
    plsetopt("geometry", geometry);
    int r[13], g[13], b[13];
    for (int i = 0; i < 13; i++) r[i] = palette[i][0], g[i] = palette[i][1], b[i] = palette[i][2];
    plscmap0(r, g, b, 13);
    plinit();
    if (plplot_failed) return;
    plfontld(1);
    /* the cairo drivers scale text with the picture's smaller side: past 1000 pixels that would
     * outgrow the margins (a 1600 x 1400 figure's axis labels ran off the page), so it stops there */
    text_scale = fmin(1.0, 1000.0 / fmin(w, h));
    plschr(0.0, 0.85 * text_scale);
    pladv(0);
    /* panels on a grid below a band of 50 pixels for the figure's title */
    const double top = fig->title && fig->title[0] ? 1.0 - fmin(0.15, 50.0 / h) : 1.0;
    for (int i = 0; i < n; i++) {
        const int row = i / cols, col = i % cols;
        draw_panel(&panels[i], (double)col / cols, (double)(col + 1) / cols,
                   top * (1.0 - (double)(row + 1) / rows), top * (1.0 - (double)row / rows), w, h);
    }
    if (top < 1.0) {
        /* plmtex, not plptex: text in the window is clipped at its edge (descenders were cut) */
        plvpor(0.0, 1.0, top, 1.0);
        plwind(0.0, 1.0, 0.0, 1.0);
        plcol0(1);
        plschr(0.0, 1.05 * text_scale);
        plmtex("t", -1.6, 0.5, 0.5, fig->title);
    }
}

/* Draws into tmp; errors name path, the file the caller will rename tmp to. */
static int draw(const char *device, const char *tmp, const char *path, const rn_plot_figure *fig,
                const rn_plot_panel *panels, int n)
{
    if (!have_device(device))
        return rn_fail(RN_ERR_IO, "%s: PLplot has no %s device (Debian: plplot-driver-cairo)", path, device);
    /* PLplot cannot open a file it is not allowed to write: it would print "Can't open" ten
     * times and exit. Creating it first turns that into an error message. */
    FILE *f = fopen(tmp, "wb");
    if (!f) return rn_fail(RN_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
    fclose(f);
    plplot_failed = 0;
    plplot_message[0] = 0;
    plsexit(on_plplot_exit);
    plsabort(on_plplot_abort);
    plsError(&plplot_errcode, plplot_errmsg);
    /* after a fatal error: end the stream once (plend itself failing jumps here again) */
    static volatile int ending;
    ending = 0;
    if (setjmp(plplot_exit) == 0) draw_figure(device, tmp, fig, panels, n);
    if (!ending++) plend();
    plsexit(NULL);
    plsabort(NULL);
    if (plplot_failed)
        return rn_fail(RN_ERR_IO, "%s: PLplot failed: %s", path, plplot_message[0] ? plplot_message : "?");
    return RN_OK;
}

/* ---- the files ---------------------------------------------------------------------------------- */
/* Text for the SVG's <title> and <desc>: XML-escaped, PLplot's escapes (#u, #d, #b: up, down,
 * back) dropped, and bytes that XML forbids (controls, broken UTF-8) as '?'. */
static void put_text(FILE *f, const char *s)
{
    for (const unsigned char *c = (const unsigned char *)(s ? s : ""); *c;) {
        if (c[0] == '#' && c[1] && strchr("udb", c[1])) {
            c += 2;
            continue;
        }
        if (c[0] == '#' && c[1] == '#') c++;
        int len = *c < 0x80 ? 1 : (*c & 0xe0) == 0xc0 ? 2 : (*c & 0xf0) == 0xe0 ? 3 : (*c & 0xf8) == 0xf0 ? 4 : 0;
        for (int k = 1; k < len; k++)
            if ((c[k] & 0xc0) != 0x80) len = 0;
        if (len == 0 || (len == 1 && *c < 0x20 && *c != '\t')) {
            fputc('?', f);
            c++;
        } else if (len == 1 && strchr("&<>", *c)) {
            fputs(*c == '&' ? "&amp;" : *c == '<' ? "&lt;" : "&gt;", f);
            c++;
        } else {
            fwrite(c, 1, (size_t)len, f);
            c += len;
        }
    }
}

/* cairo draws text as glyph outlines: the SVG gets the figure's words as <title> and <desc>, so
 * that they can be searched and read aloud. */
static void put_svg_text(FILE *f, const rn_plot_figure *fig, const rn_plot_panel *panels, int n)
{
    fputs("<title>", f);
    put_text(f, fig->title && fig->title[0] ? fig->title : panels[0].title);
    fputs("</title>\n<desc>", f);
    for (int i = 0; i < n; i++) {
        const rn_plot_panel *p = &panels[i];
        fprintf(f, "%sPanel %d: ", i ? "\n" : "", i + 1);
        put_text(f, p->title);
        fputs("; x: ", f);
        put_text(f, p->xlabel);
        fputs("; y: ", f);
        put_text(f, p->ylabel);
        for (int k = 0; k < p->n_series; k++)
            if (p->series[k].label && p->series[k].label[0]) {
                fputs("; ", f);
                put_text(f, p->series[k].label);
            }
    }
    fputs("</desc>\n", f);
}

/* Reads a file PLplot wrote (*size bytes, NUL-terminated); NULL if it cannot. */
static char *slurp(const char *path, long *size)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    if (f && fseek(f, 0, SEEK_END) == 0 && (*size = ftell(f)) >= 0 && *size < (1L << 30) &&
        fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)*size + 1)) &&
        fread(buf, 1, (size_t)*size, f) == (size_t)*size) {
        buf[*size] = 0;
    } else {
        free(buf);
        buf = NULL;
    }
    if (f) fclose(f);
    return buf;
}

/* PLplot does not report a failed write (a full disk leaves a short file), so the file must end
 * as a whole one does: PNG with its IEND chunk, SVG with </svg>. The SVG gets its text here. */
static int finish_file(const char *tmp, const char *path, int svg, const rn_plot_figure *fig,
                       const rn_plot_panel *panels, int n)
{
    long size = 0;
    char *buf = slurp(tmp, &size);
    if (!buf) return rn_fail(RN_ERR_IO, "%s: cannot read back what PLplot wrote: %s", path, strerror(errno));
    static const char iend[12] = {0, 0, 0, 0, 'I', 'E', 'N', 'D', (char)0xae, 0x42, 0x60, (char)0x82};
    const char *open_tag = svg ? strstr(buf, "<svg") : NULL, *body = open_tag ? strchr(open_tag, '>') : NULL;
    int whole = svg ? body && size >= 7 && strstr(buf + size - (size < 16 ? size : 16), "</svg>")
                    : size >= 20 && !memcmp(buf + size - 12, iend, 12);
    int st = whole ? RN_OK : rn_fail(RN_ERR_IO, "%s: PLplot wrote an incomplete file (a full disk?)", path);
    if (!st && svg) {
        FILE *f = fopen(tmp, "wb");
        if (f) {
            fwrite(buf, 1, (size_t)(body + 1 - buf), f);
            fputc('\n', f);
            put_svg_text(f, fig, panels, n);
            fwrite(body + 1, 1, (size_t)(buf + size - body - 1), f);
        }
        if (!f || ferror(f) | (fclose(f) != 0))
            st = rn_fail(RN_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
    }
    free(buf);
    return st;
}

int rn_plot_write(const char *base, const rn_plot_figure *fig, const rn_plot_panel *panels,
                  int n_panels)
{
    if (!base || !fig || !panels || n_panels < 1 || n_panels > 16)
        return rn_fail(RN_ERR_ARG, "a figure needs 1 to 16 panels");
    /* cairo fails without a word on a surface much larger (the file comes out empty) */
    if (fig->width < 0 || fig->width > 16384 || fig->height < 0 || fig->height > 16384)
        return rn_fail(RN_ERR_ARG, "%s: a figure of %d x %d pixels (at most 16384 x 16384)", base,
                       fig->width, fig->height);
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
        int st = draw(devices[d], tmp, path, fig, panels, n_panels);
        if (!st) st = finish_file(tmp, path, d == 1, fig, panels, n_panels);
        if (!st) st = rn_atomic_rename(tmp, path);
        if (st) {
            remove(tmp);
            return st;
        }
    }
    return RN_OK;
}
