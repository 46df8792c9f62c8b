#define _POSIX_C_SOURCE 200809L /* sigaction, isatty */
/* resnet experiment NAME: one claim about residual networks shown end to end (experiments/). */
#include <errno.h>
#include <omp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/clock.h"
#include "experiments/experiment.h"

static const char common_help[] =
    "common options:\n"
    "  --quick             a small version on a data subset: seconds to a couple of minutes\n"
    "  --data KIND         fashion-mnist (default) | mnist | cifar10 | cifar100\n"
    "  --data-dir DIR      where the files are (fashion-mnist: " RN_FASHION_MNIST_DIR ")\n"
    "  --subset N          only the first N training and N test images (default: all; --quick 1000)\n"
    "  --out DIR           the output folder (default experiments/NAME, or experiments/NAME-quick)\n"
    "  --seed S            every random choice (default 1); the same seed gives the same numbers\n"
    "  --threads T         OpenMP threads (default: all cores); results do not depend on it\n"
    "  --resume DIR        continue an interrupted experiment with the settings it was started with\n"
    "  --quiet             no progress line\n"
    "\n"
    "The output folder holds results.csv (every number behind every plot), the plots as PNG and\n"
    "SVG, summary.md (what came out and whether the claim held) and runs/ (each training run a\n"
    "normal run folder: metrics.jsonl, checkpoint, model). Run the same command again, or\n"
    "--resume DIR, after an interruption: finished runs are reused, an interrupted one continues\n"
    "from its checkpoint, and the results are the same bits as an uninterrupted experiment's.\n";

static void usage_all(FILE *out)
{
    fputs("usage: resnet experiment NAME [--quick] [options]    show one claim, with plots\n"
          "       resnet experiment NAME --help                 NAME's own options\n"
          "       resnet experiment --resume DIR                continue an interrupted one\n"
          "\nexperiments:\n",
          out);
    for (const rn_experiment *const *e = rn_experiments(); *e; e++)
        fprintf(out, "  %-17s %s (%s)\n", (*e)->name, (*e)->title, (*e)->source);
    fputc('\n', out);
    fputs(common_help, out);
}

static void usage_one(const rn_experiment *e)
{
    printf("usage: resnet experiment %s [--quick] [options]\n\n%s (%s).\nClaim: %s.\n\n", e->name,
           e->title, e->source, e->claim);
    printf("options of %s (default; with --quick):\n", e->name);
    for (int i = 0; e->opts[i].name; i++) {
        char flag[64];
        snprintf(flag, sizeof flag, "--%s %s", e->opts[i].name,
                 e->opts[i].type == RN_XOPT_INTS ? "LIST" : e->opts[i].type == RN_XOPT_TEXT ? "TEXT" : "N");
        printf("  %-22s %s (%s; %s)\n", flag, e->opts[i].help, e->opts[i].full, e->opts[i].quick);
    }
    printf("\n%s", common_help);
}

static volatile sig_atomic_t stop_signal;
static void on_signal(int sig) { stop_signal = sig; }

typedef struct {
    int tty, quiet, line_open;
    double last;
} view;

static void on_progress(void *ctx, const rn_exp_progress *p)
{
    view *v = ctx;
    if (v->quiet) return;
    /* a terminal: one line redrawn 5 times a second; a log: a line every 30 s */
    double now = rn_clock_s();
    if (v->last && now - v->last < (v->tty ? 0.2 : 30.0)) return;
    v->last = now;
    char eta[32], el[32], ep[32] = "";
    cli_duration(eta, sizeof eta, p->eta_s);
    cli_duration(el, sizeof el, p->elapsed_s);
    if (p->epochs) snprintf(ep, sizeof ep, "  epoch %d/%d", p->epoch, p->epochs);
    printf("%s%s%s  %.0f%% of the experiment  %s elapsed  ETA %s%s", v->tty ? "\r\033[K" : "",
           p->phase, ep, 100.0 * p->done, el, eta, v->tty ? "" : "\n");
    fflush(stdout);
    v->line_open = v->tty;
}

static void on_note(void *ctx, const char *line)
{
    view *v = ctx;
    if (v->line_open) printf("\r\033[K");
    v->line_open = 0;
    printf("%s\n", line);
    fflush(stdout);
}

static char *read_small(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = malloc(1 << 20);
    size_t n = buf ? fread(buf, 1, (1 << 20) - 1, f) : 0;
    fclose(f);
    if (buf) buf[n] = 0;
    return buf;
}

int cmd_experiment(int argc, char **argv)
{
    const rn_experiment *e = NULL;
    const char *out = NULL, *resume = NULL;
    int quick = 0, quiet = 0, first = 1, settings_given = 0;
    long threads = 0;
    if (argc >= 2 && argv[1][0] != '-') {
        e = rn_experiment_find(argv[1]);
        if (!e) {
            cli_error("experiment: unknown experiment '%s' (see resnet experiment --help)", argv[1]);
            return 2;
        }
        first = 2;
    }
    /* the mode first: an option's default depends on it */
    for (int i = first; i < argc; i++)
        if (!strcmp(argv[i], "--quick")) quick = 1;
    rn_exp_settings s;
    if (e) rn_exp_settings_init(&s, e, quick);
    for (int i = first; i < argc; i++) {
        const char *o = argv[i], *v;
        if (!strcmp(o, "--help") || !strcmp(o, "-h")) {
            if (e) usage_one(e);
            else usage_all(stdout);
            return 0;
        }
        if (!strcmp(o, "--quick")) {
            settings_given++;
            continue;
        }
        if (!strcmp(o, "--quiet")) {
            quiet = 1;
            continue;
        }
        if (strncmp(o, "--", 2) || !(v = cli_value(argc, argv, &i))) {
            if (strncmp(o, "--", 2)) cli_error("experiment: unexpected argument '%s'", o);
            return 2;
        }
        if (!strcmp(o, "--resume")) resume = v;
        else if (!strcmp(o, "--threads")) {
            if (cli_parse_int(o, v, 1, 1024, &threads)) return 2;
        } else if (!e) {
            cli_error("experiment: name the experiment before %s (see resnet experiment --help)", o);
            return 2;
        } else if (settings_given++, !strcmp(o, "--out")) out = v;
        else if (!strcmp(o, "--data")) {
            if (rn_data_kind_parse(v, &s.data)) return cli_lib_error("--data") + 1;
        } else if (!strcmp(o, "--data-dir")) {
            if (strlen(v) >= sizeof s.data_dir) return cli_error("--data-dir: path too long") + 1;
            snprintf(s.data_dir, sizeof s.data_dir, "%s", v);
        } else if (!strcmp(o, "--subset")) {
            long n;
            if (cli_parse_int(o, v, 1, 100000000, &n)) return 2;
            s.subset = (int)n;
        } else if (!strcmp(o, "--seed")) {
            long n;
            if (cli_parse_int(o, v, 0, 1L << 62, &n)) return 2;
            s.seed = (uint64_t)n;
        } else if (rn_exp_set_option(&s, e, o + 2, v)) {
            cli_lib_error(NULL);
            return 2;
        }
    }
    char dir[RN_TRAIN_PATH_MAX];
    if (resume) {
        char path[RN_TRAIN_PATH_MAX + 64];
        snprintf(path, sizeof path, "%s/experiment.json", resume);
        char *json = read_small(path);
        if (!json) return cli_error("--resume %s: no experiment there (%s: %s)", resume, path, strerror(errno));
        rn_exp_settings stored;
        int st = rn_exp_settings_from_json(&stored, json, path);
        free(json);
        if (st) return cli_lib_error(NULL);
        if (e && strcmp(e->name, stored.name))
            return cli_error("--resume %s: that folder holds the experiment %s, not %s", resume,
                             stored.name, e->name);
        if (settings_given)
            return cli_error("experiment: --resume continues with the settings the experiment was "
                             "started with; only --threads and --quiet may be given with it") + 1;
        e = rn_experiment_find(stored.name);
        s = stored;
        snprintf(dir, sizeof dir, "%s", resume);
    } else if (!e) {
        usage_all(stderr);
        return 2;
    } else if (out) {
        if (strlen(out) >= sizeof dir - 256) return cli_error("--out: path too long") + 1;
        snprintf(dir, sizeof dir, "%s", out);
    } else {
        snprintf(dir, sizeof dir, "experiments/%s%s", e->name, s.quick ? "-quick" : "");
    }
    if (threads) omp_set_num_threads((int)threads);

    printf("experiment %s: %s (%s)%s\n  claim: %s\n  output folder %s, %d threads\n", e->name,
           e->title, e->source, s.quick ? ", quick mode" : "", e->claim, dir, omp_get_max_threads());
    fflush(stdout);
    view v = {.tty = isatty(STDOUT_FILENO), .quiet = quiet};
    rn_exp_hooks hooks = {.on_progress = on_progress, .on_note = on_note, .ctx = &v, .stop = &stop_signal};
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    double t0 = rn_clock_s();
    int interrupted = 0;
    int st = rn_exp_run(e, &s, dir, &hooks, &interrupted);
    if (v.line_open) printf("\r\033[K");
    fflush(stdout);
    if (st) return cli_lib_error(NULL);
    if (interrupted) {
        int sig = stop_signal ? (int)stop_signal : SIGINT;
        fprintf(stderr, "resnet: experiment %s interrupted; continue with: resnet experiment --resume %s\n",
                e->name, dir);
        return 128 + sig;
    }
    char took[32];
    cli_duration(took, sizeof took, rn_clock_s() - t0);
    printf("done in %s: %s/summary.md, %s/results.csv and the plots\n", took, dir, dir);
    return 0;
}
