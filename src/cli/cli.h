/* Shared pieces of the command-line verbs: network options and error reporting. */
#ifndef RN_CLI_H
#define RN_CLI_H

#include "cli/options.h"
#include "resnet.h"

/* The network options (the table in args.c): which network, and the options it is built with. */
struct cli_net_args {
    const char *arch;    /* --arch */
    const char *model;   /* --model: our file, carries its architecture */
    const char *weights; /* --weights: a state_dict file, needs --arch */
    rn_net_options opt;
    cli_opt opts[12];    /* the table, pointing into this struct (which therefore stays put) */
};

void cli_net_args_init(cli_net_args *a);
/* The table of network options, for cli_parse and the help of resnet --help. */
const cli_opt *cli_net_opts(cli_net_args *a);
/* Creates (--arch) or opens (--model / --weights) the network; prints the error and returns
 * nonzero on failure. */
int cli_open_net(const cli_net_args *a, rn_net **net);
/* The same, frozen for inference (rn_net_freeze): for commands that only run forwards. */
int cli_open_frozen_net(const cli_net_args *a, rn_net **net);
/* CUSTOM options' setters shared by verbs: --data KIND into an rn_data_kind, --tta VIEWS
 * (eval, predict) into an int. */
int cli_set_data_kind(void *target, const char *option, const char *value);
int cli_set_tta(void *target, const char *option, const char *value);
int cli_error(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
/* Prints "resnet: <context>: <rn_last_error()>" and returns 1. */
int cli_lib_error(const char *context);
/* 1234567 as "1,234,567". */
void cli_thousands(char *buf, size_t size, unsigned long long v);
/* A duration as "42s", "3m07s" or "2h05m" ("?" when unknown or absurd). */
void cli_duration(char *buf, size_t size, double seconds);

int cmd_info(int argc, char **argv);
int cmd_init(int argc, char **argv);
int cmd_forward(int argc, char **argv);
int cmd_bench(int argc, char **argv);
/* GFLOP of one convolution at the batch size, counting direct multiply-adds:
 * 2 x N x K x C x R x S x OH x OW (cmd_bench.c). */
double bench_conv_gflop(const rn_conv_info *c, int batch);
/* bench --layers (bench_layers.c): the per-convolution table of a profiled frozen network
 * (rn_net_profile_convs) after `steps` timed forwards of forward_s seconds in all; printed, or
 * added to json as "layers". 0, or 1 after an error message. */
struct cJSON;
int bench_layers_report(const rn_net *net, int batch, int threads, double forward_s, long steps,
                        struct cJSON *json);
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_predict(int argc, char **argv);
int cmd_experiment(int argc, char **argv);
int cmd_plot(int argc, char **argv);
int cmd_export(int argc, char **argv);

#endif
