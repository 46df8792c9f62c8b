/* Shared pieces of the command-line verbs: network options and error reporting. */
#ifndef RN_CLI_H
#define RN_CLI_H

#include "resnet.h"

typedef struct {
    const char *arch;    /* --arch */
    const char *model;   /* --model: our file, carries its architecture */
    const char *weights; /* --weights: a state_dict file, needs --arch */
    rn_net_options opt;
} cli_net_args;

void cli_net_args_init(cli_net_args *a);
/* Consumes argv[*i] (and its value) if it is a network option: returns 1 if consumed, 0 if not
 * a network option, -1 after printing an error. */
int cli_net_arg(cli_net_args *a, int argc, char **argv, int *i);
/* Creates (--arch) or opens (--model / --weights) the network; prints the error and returns
 * nonzero on failure. */
int cli_open_net(const cli_net_args *a, rn_net **net);
/* The same, frozen for inference (rn_net_freeze): for commands that only run forwards. */
int cli_open_frozen_net(const cli_net_args *a, rn_net **net);
/* The value after option argv[*i], advancing *i; prints an error and returns NULL if missing. */
const char *cli_value(int argc, char **argv, int *i);
int cli_parse_int(const char *opt, const char *text, long lo, long hi, long *out);
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
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_predict(int argc, char **argv);
int cmd_experiment(int argc, char **argv);
int cmd_plot(int argc, char **argv);
int cmd_export(int argc, char **argv);

#endif
