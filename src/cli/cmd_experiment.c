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

static const char common_footer[] =
    "\n"
    "The output folder holds results.csv (every number behind every plot), the plots as PNG and\n"
    "SVG, summary.md (what came out and whether the claim held) and runs/ (each training run a\n"
    "normal run folder: metrics.jsonl, checkpoint, model). Run the same command again, or\n"
    "--resume DIR, after an interruption: finished runs are reused, an interrupted one continues\n"
    "from its checkpoint, and the results are the same bits as an uninterrupted experiment's.\n";

enum { MAX_OPTS = 48 };

/* What the options of one command line go into. */
typedef struct {
    const rn_experiment *e; /* NULL until named */
    rn_exp_settings s;
    const char *out, *resume;
    int quick, quiet, threads, settings_given;
    cli_opt opts[MAX_OPTS];
} exp_args;

static int set_data_dir(void *target, const char *option, const char *value)
{
    rn_exp_settings *s = target;
    if (strlen(value) >= sizeof s->data_dir) return cli_error("%s: path too long", option);
    snprintf(s->data_dir, sizeof s->data_dir, "%s", value);
    return 0;
}

/* An option of the experiment itself (each experiment lists its own). */
static int set_exp_option(void *target, const char *option, const char *value)
{
    exp_args *a = target;
    return rn_exp_set_option(&a->s, a->e, option + 2, value) ? cli_lib_error(NULL) : 0;
}

/* The options every experiment takes, then the named experiment's own. */
static void exp_args_table(exp_args *a)
{
    const cli_opt common[] = {
        {"--quick", NULL, CLI_FLAG, &a->quick, 0, 0, NULL,
         "a small version on a data subset: seconds to a couple of minutes", &a->settings_given},
        {"--data", "KIND", CLI_CUSTOM, &a->s.data, 0, 0, cli_set_data_kind,
         "fashion-mnist (default) | mnist | cifar10 | cifar100", &a->settings_given},
        {"--data-dir", "DIR", CLI_CUSTOM, &a->s, 0, 0, set_data_dir,
         "where the files are (fashion-mnist: " RN_FASHION_MNIST_DIR ")", &a->settings_given},
        {"--subset", "N", CLI_INT, &a->s.subset, 1, 100000000, NULL,
         "only the first N training and N test images (default: all; --quick 1000)",
         &a->settings_given},
        {"--out", "DIR", CLI_TEXT, &a->out, 0, 0, NULL,
         "the output folder (default experiments/NAME, or experiments/NAME-quick)",
         &a->settings_given},
        {"--seed", "S", CLI_U64, &a->s.seed, 0, 0, NULL,
         "every random choice (default 1); the same seed gives the same numbers",
         &a->settings_given},
        {"--threads", "T", CLI_INT, &a->threads, 1, 1024, NULL,
         "OpenMP threads (default: all cores); results do not depend on it", NULL},
        {"--resume", "DIR", CLI_TEXT, &a->resume, 0, 0, NULL,
         "continue an interrupted experiment with the settings it was started with", NULL},
        {"--quiet", NULL, CLI_FLAG, &a->quiet, 0, 0, NULL, "no progress line", NULL},
    };
    int n = (int)(sizeof common / sizeof common[0]);
    memcpy(a->opts, common, sizeof common);
    /* print_help lists them with their defaults, so they have no help of the table's */
    for (int i = 0; a->e && a->e->opts[i].name && n < MAX_OPTS - 1; i++, n++) {
        static char names[MAX_OPTS][40];
        snprintf(names[n], sizeof names[n], "--%s", a->e->opts[i].name);
        a->opts[n] = (cli_opt){names[n], "VALUE", CLI_CUSTOM, a, 0, 0, set_exp_option, NULL,
                               &a->settings_given};
    }
    a->opts[n] = (cli_opt){NULL, NULL, CLI_FLAG, NULL, 0, 0, NULL, NULL, NULL};
}

static void usage_all(FILE *out, const exp_args *a)
{
    fputs("usage: resnet experiment NAME [--quick] [options]    show one claim, with plots\n"
          "       resnet experiment NAME --help                 NAME's own options\n"
          "       resnet experiment --resume DIR                continue an interrupted one\n"
          "\nexperiments:\n",
          out);
    for (const rn_experiment *const *e = rn_experiments(); *e; e++)
        fprintf(out, "  %-17s %s (%s)\n", (*e)->name, (*e)->title, (*e)->source);
    fputs("\ncommon options:\n", out);
    cli_print_options(out, a->opts);
    fputs(common_footer, out);
}

static void print_help(const void *ctx)
{
    const exp_args *a = ctx;
    const rn_experiment *e = a->e;
    if (!e) {
        usage_all(stdout, a);
        return;
    }
    printf("usage: resnet experiment %s [--quick] [options]\n\n%s (%s).\nClaim: %s.\n\n", e->name,
           e->title, e->source, e->claim);
    printf("options of %s (default; with --quick):\n", e->name);
    for (int i = 0; e->opts[i].name; i++) {
        char flag[64], help[512];
        snprintf(flag, sizeof flag, "--%s %s", e->opts[i].name,
                 e->opts[i].type == RN_XOPT_INTS ? "LIST" : e->opts[i].type == RN_XOPT_TEXT ? "TEXT" : "N");
        snprintf(help, sizeof help, "%s (%s; %s)", e->opts[i].help, e->opts[i].full, e->opts[i].quick);
        cli_print_option(stdout, flag, help);
    }
    fputs("\ncommon options:\n", stdout);
    cli_print_options(stdout, a->opts);
    fputs(common_footer, stdout);
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
    static exp_args a; /* large (the settings hold paths); one per process */
    memset(&a, 0, sizeof a);
    int first = 1;
    if (argc >= 2 && argv[1][0] != '-') {
        a.e = rn_experiment_find(argv[1]);
        if (!a.e) {
            cli_error("experiment: unknown experiment '%s' (see resnet experiment --help)", argv[1]);
            return 2;
        }
        first = 2;
    }
    /* the mode first: the defaults of the experiment's options depend on it */
    for (int i = first; i < argc; i++)
        if (!strcmp(argv[i], "--quick")) a.quick = 1;
    if (a.e) rn_exp_settings_init(&a.s, a.e, a.quick);
    exp_args_table(&a);
    char name[64];
    snprintf(name, sizeof name, "experiment%s%s", a.e ? " " : "", a.e ? a.e->name : "");
    const cli_verb verb = {.name = name, .usage = "", .opts = a.opts,
                           .print_help = print_help, .help_ctx = &a};
    int r = cli_parse(&verb, argc - (first - 1), argv + (first - 1));
    if (r) return r < 0 ? 0 : r;
    const rn_experiment *e = a.e;
    rn_exp_settings s = a.s;
    const char *out = a.out, *resume = a.resume;
    const int settings_given = a.settings_given, threads = a.threads, quiet = a.quiet;
    if (!e && !resume && settings_given)
        return cli_error("experiment: name the experiment first (see resnet experiment --help)") + 1;
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
        usage_all(stderr, &a);
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
