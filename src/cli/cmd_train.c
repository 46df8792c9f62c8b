#define _POSIX_C_SOURCE 200809L /* sigaction, isatty, mkdir, localtime_r */
/* resnet train: trains a network on a data set, with checkpoints, resume and metrics. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
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
#include "dist/dist.h"
#include "plot/plot.h"
#include "train/config.h"
#include "train/trainer.h"

/* --help: the table's options by group, the run's own options (run_opts) under the last. */
static void print_usage(const void *run_opts)
{
    rn_train_config d;
    rn_train_config_init_cli(&d);
    printf("usage: resnet train [options]            train a network (default: %s on "
           "Fashion-MNIST)\n"
           "       resnet train --resume RUN_DIR     continue an interrupted run exactly where it "
           "stopped\n",
           d.arch);
    const rn_config_row *rows;
    int n = rn_train_config_rows(&rows);
    for (int g = 0; g < RN_CONFIG_N_GROUPS; g++) {
        printf("%s%s\n", g ? "" : "\n", rn_train_config_group_heading((rn_config_group)g));
        for (int i = 0; i < n; i++) {
            const rn_config_row *r = &rows[i];
            if ((int)r->group != g) continue;
            char left[64], help[512];
            if (r->option) {
                snprintf(left, sizeof left, "%s%s%s", r->option, r->metavar[0] ? " " : "",
                         r->metavar);
                snprintf(help, sizeof help, "%s", r->help);
                if (!(r->flags & RN_CONFIG_NO_DEFAULT_HELP))
                    snprintf(help + strlen(help), sizeof help - strlen(help), " (default %s)",
                             r->cli_default);
                cli_print_option(stdout, left, help);
            }
            if (r->off_option) cli_print_option(stdout, r->off_option, r->off_help);
        }
        if (g == RN_CONFIG_GROUP_RUN) cli_print_options(stdout, run_opts);
    }
    printf("\nA checkpoint is written after every epoch and on Ctrl-C (SIGINT) or SIGTERM, which "
           "then stop\nthe run with status 130 (143); 'resnet train --resume DIR' continues it "
           "and ends with the same\nmodel bits as an uninterrupted run.\n");
}

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig) { stop_signal = sig; }

static void install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESETHAND; /* a second Ctrl-C kills at once (the last checkpoint stays whole) */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

/* ---- progress ---------------------------------------------------------------------------------- */
typedef struct {
    int tty, quiet;
    int epochs;
    double last_print;
    int line_open;
} progress_ctx;

static void on_step(void *vctx, const rn_train_progress *p)
{
    progress_ctx *c = vctx;
    if (c->quiet) return;
    /* a terminal: one line redrawn 5 times a second; a log: a plain line every 30 s */
    double now = rn_clock_s();
    if (!c->last_print) c->last_print = now;
    if (c->tty ? now - c->last_print < 0.2 && p->batch != p->batches : now - c->last_print < 30.0)
        return;
    c->last_print = now;
    char eta[32];
    cli_duration(eta, sizeof eta, p->eta_s);
    printf("%sepoch %d/%d  step %d/%d  loss %.4f  acc %.2f%%  lr %.4g  %.0f img/s  ETA %s%s",
           c->tty ? "\r\033[K" : "", p->epoch + 1, p->epochs, p->batch, p->batches, p->loss,
           100.0 * p->accuracy, (double)p->lr, p->images_per_s, eta, c->tty ? "" : "\n");
    fflush(stdout);
    c->line_open = c->tty;
}

static void on_epoch(void *vctx, const rn_epoch_metrics *m)
{
    progress_ctx *c = vctx;
    if (c->line_open) printf("\r\033[K");
    c->line_open = 0;
    printf("epoch %d/%d  train loss %.4f err %.2f%%", m->epoch, c->epochs, m->train_loss,
           100.0 * m->train_error);
    if (m->eval_name)
        printf("  %s loss %.4f err %.2f%%", m->eval_name, m->eval_loss, 100.0 * m->eval_error);
    printf("  lr %.4g  %.1f s (data %.1f s, eval %.1f s", (double)m->lr, m->time_s, m->data_s,
           m->eval_s);
    if (m->processes > 1) printf(", communication %.1f s", m->comm_s);
    printf(")  %.0f img/s\n", m->images_per_s);
    fflush(stdout);
}

/* ---- the run folder ---------------------------------------------------------------------------- */
static int file_exists(const char *dir, const char *name)
{
    char path[RN_TRAIN_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    struct stat sb;
    return stat(path, &sb) == 0;
}

static int make_dirs(const char *path)
{
    char buf[RN_TRAIN_PATH_MAX];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || !*p) {
            char saved = *p;
            *p = 0;
            if (mkdir(buf, 0777) != 0 && errno != EEXIST)
                return cli_error("--out: cannot create the folder %s: %s", buf, strerror(errno));
            *p = saved;
            if (!saved) break;
        }
    }
    struct stat sb;
    if (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return cli_error("--out: %s is not a folder", path);
    return 0;
}

/* The folder of a fresh run: refuses one that holds a run unless --force. Creates nothing. */
static int choose_out(char *out, size_t size, const char *given, int force)
{
    if (given) {
        if (strlen(given) >= RN_TRAIN_PATH_MAX - 64) return cli_error("--out: path too long");
        snprintf(out, size, "%s", given);
    } else {
        time_t now = time(NULL);
        struct tm tm;
        localtime_r(&now, &tm);
        char stamp[32];
        strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
        snprintf(out, size, "runs/%s", stamp);
        for (int i = 2; file_exists(out, "."); i++) snprintf(out, size, "runs/%s-%d", stamp, i);
    }
    size_t len = strlen(out);
    while (len > 1 && out[len - 1] == '/') out[--len] = 0;
    static const char *const files[] = {"checkpoint.safetensors", "model.safetensors", "metrics.jsonl"};
    for (int i = 0; i < 3; i++)
        if (file_exists(out, files[i]) && !force)
            return cli_error("%s already holds a run (%s): continue it with --resume %s, or start "
                             "over with --force",
                             out, files[i], out);
    return 0;
}

/* Creates the folder; with --force removes the old model, metrics and curves (the checkpoint is
 * replaced atomically when the run starts). */
static int create_out(const char *out, int force)
{
    if (make_dirs(out)) return 1;
    static const char *const old[] = {"model.safetensors", "metrics.jsonl", "curves.png", "curves.svg"};
    for (int i = 0; force && i < 4; i++) {
        char path[RN_TRAIN_PATH_MAX + 64];
        snprintf(path, sizeof path, "%s/%s", out, old[i]);
        if (remove(path) != 0 && errno != ENOENT)
            return cli_error("%s: cannot remove: %s", path, strerror(errno));
    }
    return 0;
}

/* A run killed while it wrote a file leaves that file's temporary, NAME.tmp.PID: the next run in
 * the folder removes those whose process is gone, so that kills and resumes do not fill the
 * disk. (A temporary of a live process, another run in the same folder, is let be.) */
static int remove_stale_temps(const char *dir)
{
    static const char *const names[] = {"checkpoint.safetensors.tmp.", "model.safetensors.tmp.",
                                        "metrics.jsonl.tmp."};
    DIR *d = opendir(dir);
    if (!d) return cli_error("%s: cannot read the folder: %s", dir, strerror(errno));
    int rc = 0;
    for (struct dirent *e; !rc && (e = readdir(d));) {
        for (int i = 0; i < 3; i++) {
            size_t len = strlen(names[i]);
            char *end;
            if (strncmp(e->d_name, names[i], len) || !e->d_name[len]) continue;
            long pid = strtol(e->d_name + len, &end, 10);
            if (*end || pid <= 0 || pid == (long)getpid() || kill((pid_t)pid, 0) == 0 ||
                errno != ESRCH)
                continue;
            char path[RN_TRAIN_PATH_MAX + 300];
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            if (remove(path) != 0 && errno != ENOENT)
                rc = cli_error("%s: cannot remove this leftover of a killed run: %s", path,
                               strerror(errno));
        }
    }
    closedir(d);
    return rc;
}

/* ---- several processes (mpirun) ----------------------------------------------------------------- */
/* Rank 0 alone speaks. The other processes' standard output goes nowhere and their errors are
 * held back until every process has finished setting up (parsing, data, run folder,
 * checkpoint): then one message is shown, rank 0's if it failed, else those of the processes
 * that did; a failure after that ends the whole job. */
typedef struct {
    rn_dist *dist;
    int rank, size;
    int agreed;       /* the setup's outcome was exchanged */
    int alone;        /* the run failed in this process alone: end the job */
    int saved_stderr; /* the real stderr while it is held back, or -1 */
    FILE *held;
} parallel_ctx;

static void hold_output(parallel_ctx *pc)
{
    pc->saved_stderr = -1;
    if (pc->rank == 0) return;
    fflush(stdout);
    fflush(stderr);
    if (!freopen("/dev/null", "w", stdout)) return;
    pc->held = tmpfile();
    pc->saved_stderr = pc->held ? dup(STDERR_FILENO) : -1;
    if (pc->saved_stderr >= 0) dup2(fileno(pc->held), STDERR_FILENO);
}

/* Gives stderr back, showing what was held when show. */
static void release_output(parallel_ctx *pc, int show)
{
    if (pc->saved_stderr < 0) return;
    fflush(stderr);
    dup2(pc->saved_stderr, STDERR_FILENO);
    close(pc->saved_stderr);
    pc->saved_stderr = -1;
    if (show) {
        rewind(pc->held);
        char line[4096];
        while (fgets(line, sizeof line, pc->held)) fputs(line, stderr);
        fflush(stderr);
    }
    fclose(pc->held);
    pc->held = NULL;
}

/* Every process's setup outcome rc: returns the job's (nonzero when any process failed). */
static int agree(parallel_ctx *pc, int rc)
{
    if (pc->agreed) return rc;
    pc->agreed = 1;
    if (pc->size == 1) return rc;
    int any = rc != 0, first = rc;
    rn_dist_max_int(pc->dist, &any);
    rn_dist_broadcast(pc->dist, &first, sizeof first);
    release_output(pc, rc && !first);
    return any ? (rc ? rc : first ? first : 1) : 0;
}

/* ---- options ------------------------------------------------------------------------------------ */
static int set_config(void *target, const char *option, const char *value)
{
    return rn_train_config_set(target, option, value) ? cli_lib_error(NULL) : 0;
}

static int refuse_network_file(void *target, const char *option, const char *value)
{
    (void)target, (void)value;
    return cli_error("train: %s is not a train option (training starts from a fresh network; "
                     "see resnet train --help)", option);
}

enum { MAX_TRAIN_OPTS = 160 };

/* The configuration's options, one per row of its table (and one per off option), into opts;
 * returns how many. Options that change the results count in *run_options. */
static int config_options(cli_opt *opts, int room, rn_train_config *cfg, int *run_options)
{
    const rn_config_row *rows;
    const int n = rn_train_config_rows(&rows);
    int k = 0;
    for (int i = 0; i < n && k + 2 <= room; i++) {
        const rn_config_row *r = &rows[i];
        int *given = r->flags & RN_CONFIG_RESUMABLE ? NULL : run_options, takes = 0;
        if (r->option && rn_train_config_find_option(r->option, &takes))
            opts[k++] = (cli_opt){r->option, takes ? r->metavar : NULL, CLI_CUSTOM, cfg, 0, 0,
                                  set_config, NULL, given};
        if (r->off_option)
            opts[k++] = (cli_opt){r->off_option, NULL, CLI_CUSTOM, cfg, 0, 0, set_config, NULL, given};
    }
    return k;
}

static int train(int argc, char **argv, parallel_ctx *par)
{
    rn_train_config cfg;
    rn_train_config_init_cli(&cfg);
    const char *out_dir = NULL, *resume = NULL;
    int force = 0, quiet = 0, run_options = 0, classes = 0;
    long stop_after = 0;
    int perturb_rank = -1;
    /* the options of the run itself; the configuration's come from its table (config_table.h) */
    const cli_opt run_opts[] = {
        {"--classes", "K", CLI_INT, &classes, 1, 1000000, NULL,
         "the number of classes the data must have (a check)", &run_options},
        {"--out", "DIR", CLI_TEXT, &out_dir, 0, 0, NULL,
         "the run folder (default runs/<date-time>): checkpoint.safetensors, metrics.jsonl, "
         "model.safetensors, curves.png/.svg (loss and error per epoch; resnet plot draws them "
         "again)", &run_options},
        {"--force", NULL, CLI_FLAG, &force, 0, 0, NULL,
         "start over in an existing run folder (its files are replaced)", &run_options},
        {"--resume", "DIR", CLI_TEXT, &resume, 0, 0, NULL,
         "continue the run in DIR (only --threads and --quiet may be given with it)", NULL},
        {"--quiet", NULL, CLI_FLAG, &quiet, 0, 0, NULL,
         "only one line per epoch (no progress line on a terminal, no progress lines every 30 s "
         "in a log)", NULL},
        /* for the tests: stop as if interrupted after this many steps */
        {"--stop-after", "STEPS", CLI_LONG, &stop_after, 1, 1099511627776.0, NULL, NULL, NULL},
        /* for the tests: this process's first weight moves, which the check of the processes'
         * networks must catch before the first step */
        {"--perturb-rank", "RANK", CLI_INT, &perturb_rank, 0, 1000000, NULL, NULL, NULL},
        {"--model", "FILE", CLI_CUSTOM, NULL, 0, 0, refuse_network_file, NULL, NULL},
        {"--weights", "FILE", CLI_CUSTOM, NULL, 0, 0, refuse_network_file, NULL, NULL},
        {NULL, NULL, CLI_FLAG, NULL, 0, 0, NULL, NULL, NULL},
    };
    cli_opt opts[MAX_TRAIN_OPTS];
    const int n_run = (int)(sizeof run_opts / sizeof run_opts[0]);
    const int n_cfg = config_options(opts, MAX_TRAIN_OPTS - n_run, &cfg, &run_options);
    memcpy(opts + n_cfg, run_opts, sizeof run_opts);
    const cli_verb verb = {.opts = opts, .print_help = print_usage, .help_ctx = run_opts};
    int r = cli_parse(&verb, argc, argv);
    if (r) return r < 0 ? 0 : r;
    const int threads = cfg.threads;
    if (threads) omp_set_num_threads(threads);

    char dir[RN_TRAIN_PATH_MAX];
    int epoch0 = 0, batch0 = 0;
    long step0 = 0;
    if (resume) {
        if (run_options > 0)
            return cli_error("train: --resume continues a run with the options it was started "
                             "with; only --threads (and --quiet) may be given with it") + 1;
        if (strlen(resume) >= RN_TRAIN_PATH_MAX - 64) return cli_error("--resume: path too long") + 1;
        snprintf(dir, sizeof dir, "%s", resume);
        char path[RN_TRAIN_PATH_MAX + 64];
        snprintf(path, sizeof path, "%s/checkpoint.safetensors", dir);
        if (!file_exists(dir, "checkpoint.safetensors"))
            return cli_error("--resume %s: no checkpoint.safetensors there (%s: %s)", dir, path,
                             strerror(ENOENT));
        if (rn_checkpoint_read_config(path, &cfg, &epoch0, &batch0, &step0)) return cli_lib_error(NULL);
        /* Another thread count gives the same bits (the kernels never split work by thread
         * count; test_net's test_thread_count_independent), so --threads may change. */
        if (!threads && cfg.threads > 0) omp_set_num_threads(cfg.threads);
    } else {
        cfg.threads = omp_get_max_threads();
        if (rn_train_config_check(&cfg)) return cli_lib_error(NULL) + 1;
        /* an unknown architecture is an option error: check before touching data or folders */
        rn_net *probe;
        rn_net_options po;
        rn_net_options_init(&po);
        po.ordering = cfg.ordering, po.shortcut = cfg.shortcut;
        if (cfg.in_c > 0) po.in_c = cfg.in_c, po.in_h = cfg.in_h, po.in_w = cfg.in_w;
        else po.in_c = 1, po.in_h = 28, po.in_w = 28;
        if (rn_net_create(&probe, cfg.arch, &po)) return cli_lib_error("--arch") + 1;
        rn_net_free(probe);
    }

    rn_dataset *train = NULL, *eval = NULL;
    const char *eval_name = "";
    if (rn_train_load_data(&cfg, &train, &eval, &eval_name)) return cli_lib_error(NULL);
    int rc = 0;
    if (classes && classes != train->classes)
        rc = cli_error("--classes %d does not fit the data: %s has %d classes", classes,
                       rn_data_kind_name(cfg.data), train->classes);
    /* rank 0 alone writes the run folder */
    const int writer = par->rank == 0;
    if (!rc && !resume && !writer) snprintf(dir, sizeof dir, "%s", out_dir ? out_dir : "runs");
    if (!rc && !resume && writer && choose_out(dir, sizeof dir, out_dir, force)) rc = 1;
    rn_trainer *t = NULL;
    if (!rc && rn_trainer_create_dist(&t, &cfg, dir, train, eval, eval_name, par->dist))
        rc = cli_lib_error(NULL);
    if (!rc && !resume && writer && create_out(dir, force)) rc = 1;
    if (!rc && writer && remove_stale_temps(dir)) rc = 1;
    if (!rc && resume && rn_trainer_restore(t)) rc = cli_lib_error(NULL);
    rc = agree(par, rc);
    if (rc) {
        rn_trainer_free(t);
        rn_dataset_free(train);
        rn_dataset_free(eval);
        return rc;
    }

    rn_net *net = rn_trainer_net(t);
    if (perturb_rank == par->rank) rn_net_params(net)[0] += 1e-3f;
    char params[32];
    cli_thousands(params, sizeof params, rn_net_num_params(net));
    rn_net_options no;
    rn_net_get_options(net, &no);
    int batches = (train->n + cfg.batch - 1) / cfg.batch;
    printf("%s %s (%s parameters, input %dx%dx%d, %d classes) on %s: %d training images",
           resume ? "resuming" : "training", rn_net_arch(net), params, no.in_c, no.in_h, no.in_w,
           no.classes, rn_data_kind_name(cfg.data), train->n);
    if (eval) printf(", %d %s images", eval->n, eval_name);
    char sched[64];
    {
        rn_schedule s;
        rn_schedule_init(&s, cfg.schedule, cfg.lr, 1);
        s.n_milestones = cfg.n_milestones;
        memcpy(s.milestones, cfg.milestones, sizeof s.milestones);
        rn_schedule_format(&s, sched, sizeof sched);
    }
    printf("\n  %d epochs of %d batches of %d%s, lr %g %s", cfg.epochs, batches, cfg.batch,
           cfg.accum > 1 ? " (accumulated)" : "", (double)cfg.lr, sched);
    if (cfg.warmup > 0) printf(" (warm-up %g epochs)", (double)cfg.warmup);
    printf(", momentum %g%s, wd %g%s", (double)cfg.momentum, cfg.nesterov ? " nesterov" : "",
           (double)cfg.weight_decay, cfg.decay_1d ? "" : " (not on BN/biases)");
    if (cfg.label_smoothing > 0) printf(", label smoothing %g", (double)cfg.label_smoothing);
    if (cfg.clip_grad_norm > 0) printf(", gradients clipped to norm %g", (double)cfg.clip_grad_norm);
    {
        int pad, flip;
        rn_train_config_augment(&cfg, train->w, &pad, &flip);
        if (pad > 0) printf(", crop pad %d", pad);
        if (flip) printf(", flip");
        if (cfg.erase > 0) printf(", erase %g", (double)cfg.erase);
    }
    printf(", seed %llu, %d threads%s\n", (unsigned long long)cfg.seed, omp_get_max_threads(),
           rn_net_blocked(net) ? ", channel-blocked activations" : "");
    if (par->size > 1)
        printf("  data-parallel: %d processes (%s), %d images each per batch, batch norm %s\n",
               par->size, rn_dist_backend(), cfg.batch / par->size,
               cfg.bn_local ? "over each process's images" : "over the whole batch");
    if (resume) printf("  from epoch %d, batch %d (step %ld)\n", epoch0 + 1, batch0, step0);
    printf("  run folder %s\n", dir);
    fflush(stdout);

    progress_ctx pc = {.tty = isatty(STDOUT_FILENO), .quiet = quiet, .epochs = cfg.epochs};
    rn_train_hooks hooks = {.on_step = on_step, .on_epoch = on_epoch, .ctx = &pc, .stop = &stop_signal,
                            .stop_at_step = stop_after};
    install_signals();
    rn_train_outcome oc;
    int st = rn_trainer_run(t, &hooks, &oc);
    if (pc.line_open) printf("\r\033[K");
    fflush(stdout);
    if (st && par->size > 1 && par->rank != 0 && (st == RN_ERR_NUMERIC || st == RN_ERR_MISMATCH)) {
        /* every process found the same (the sums and hashes are shared): rank 0 reports it */
        rc = 1;
    } else if (st) {
        par->alone = st != RN_ERR_NUMERIC && st != RN_ERR_MISMATCH;
        if (st == RN_ERR_NUMERIC)
            rc = cli_error("%s; training stopped, the last good checkpoint %s/checkpoint.safetensors "
                           "is kept",
                           rn_last_error(), dir);
        else rc = cli_lib_error(NULL);
    } else if (oc.interrupted) {
        int sig = stop_signal ? (int)stop_signal : SIGINT;
        if (par->rank == 0)
            fprintf(stderr,
                "resnet: %s at epoch %d, batch %d (step %ld): checkpoint written to "
                "%s/checkpoint.safetensors; continue with: resnet train --resume %s\n",
                stop_signal ? (sig == SIGTERM ? "terminated" : "interrupted") : "stopped",
                oc.epoch + 1, oc.batch, oc.step, dir, dir);
        rc = 128 + sig;
    } else if (par->rank == 0) {
        printf("done: %s/model.safetensors", dir);
        if (oc.steps_run == 0) printf(" (the run had already finished)");
        printf("\n");
        fflush(stdout);
        /* a picture that cannot be drawn costs the run nothing: warn and go on */
        char curves[RN_TRAIN_PATH_MAX + 16];
        snprintf(curves, sizeof curves, "%s/curves", dir);
        const char *runs[1] = {dir};
        if (rn_plot_training_curves(curves, runs, 1, rn_net_arch(net)))
            fprintf(stderr, "resnet: warning: no training curves: %s\n", rn_last_error());
        else printf("curves: %s.png, %s.svg\n", curves, curves);
    }
    rn_trainer_free(t);
    rn_dataset_free(train);
    rn_dataset_free(eval);
    return rc;
}

int cmd_train(int argc, char **argv)
{
    parallel_ctx pc = {0};
    if (rn_dist_create(&pc.dist)) return cli_lib_error(NULL);
    pc.rank = rn_dist_rank(pc.dist);
    pc.size = rn_dist_size(pc.dist);
    hold_output(&pc);
    int rc = train(argc, argv, &pc);
    /* a process that failed before the exchange (options, data) still takes part in it */
    const int before = !pc.agreed;
    if (before) rc = agree(&pc, rc);
    release_output(&pc, 0);
    fflush(stdout);
    fflush(stderr);
    /* A process that failed alone during the run: the others may wait for it for ever. */
    if (rc && !before && pc.alone) rn_dist_abort(pc.dist, rc);
    rn_dist_free(pc.dist);
    return rc;
}
