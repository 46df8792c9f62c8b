#include <float.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "train/dataset.h"
#include "train/tta.h"

int cli_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("resnet: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 1;
}

int cli_lib_error(const char *context)
{
    if (context) return cli_error("%s: %s", context, rn_last_error());
    return cli_error("%s", rn_last_error());
}

static int set_ordering(void *target, const char *option, const char *value)
{
    return rn_ordering_parse(value, target) ? cli_lib_error(option) : 0;
}

static int set_shortcut(void *target, const char *option, const char *value)
{
    return rn_shortcut_parse(value, target) ? cli_lib_error(option) : 0;
}

static int set_input_shape(void *target, const char *option, const char *value)
{
    rn_net_options *o = target;
    char tail;
    int c, h, w;
    if (sscanf(value, "%dx%dx%d%c", &c, &h, &w, &tail) != 3 || c <= 0 || h <= 0 || w <= 0)
        return cli_error("%s: expected CxHxW such as 3x32x32, got '%s'", option, value);
    o->in_c = c, o->in_h = h, o->in_w = w;
    return 0;
}

void cli_net_args_init(cli_net_args *a)
{
    memset(a, 0, sizeof *a);
    rn_net_options_init(&a->opt);
    rn_net_options *o = &a->opt;
    const cli_opt table[] = {
        {"--arch", "NAME", CLI_TEXT, &a->arch, 0, 0, NULL,
         "resnet20..1202, plain20..110, highway20..110, preresnet110/164/1001, resnet18..152, "
         "plain18/34, wrn-D-K (e.g. wrn-16-4); CIFAR-style variants resnetD-wW (W/2W/4W "
         "channels) and resnetD[-wW]-s2 (stride-2 stem), e.g. resnet8-w32-s2", NULL},
        {"--model", "FILE", CLI_TEXT, &a->model, 0, 0, NULL,
         "a file written by resnet.c (carries its architecture)", NULL},
        {"--weights", "FILE", CLI_TEXT, &a->weights, 0, 0, NULL,
         "a torchvision-style state_dict file (needs --arch)", NULL},
        {"--ordering", "O", CLI_CUSTOM, &o->ordering, 0, 0, set_ordering,
         "original | bn-after-add | relu-before-add | relu-preact | full-preact", NULL},
        {"--shortcut", "A|B|C", CLI_CUSTOM, &o->shortcut, 0, 0, set_shortcut,
         "zero-padded identity | projection where needed | always projection", NULL},
        {"--classes", "K", CLI_INT, &o->classes, 1, 1000000, NULL, "number of classes", NULL},
        {"--input-shape", "CxHxW", CLI_CUSTOM, o, 0, 0, set_input_shape,
         "the input's channels, height and width", NULL},
        {"--zero-init-last-bn", NULL, CLI_FLAG, &o->zero_init_last_bn, 0, 0, NULL,
         "start every residual branch at zero", NULL},
        {"--gate-bias", "B", CLI_FLOAT, &o->gate_bias, -FLT_MAX, FLT_MAX, NULL,
         "initial highway gate bias (default -2)", NULL},
        {"--stochastic-depth", "P", CLI_FLOAT, &o->survival_last, -FLT_MAX, FLT_MAX, NULL,
         "survival probability of the last block (linear rule)", NULL},
        {"--seed", "S", CLI_U64, &o->seed, 0, 0, NULL, "initialisation seed (default 1)", NULL},
        {NULL, NULL, CLI_FLAG, NULL, 0, 0, NULL, NULL, NULL},
    };
    _Static_assert(sizeof table / sizeof table[0] <= sizeof a->opts / sizeof a->opts[0],
                   "room for the network options");
    memcpy(a->opts, table, sizeof table);
}

const cli_opt *cli_net_opts(cli_net_args *a) { return a->opts; }

int cli_set_data_kind(void *target, const char *option, const char *value)
{
    return rn_data_kind_parse(value, target) ? cli_lib_error(option) : 0;
}

int cli_set_tta(void *target, const char *option, const char *value)
{
    return rn_tta_parse(value, target) ? cli_lib_error(option) : 0;
}

int cli_open_net(const cli_net_args *a, rn_net **net)
{
    if (a->model && a->weights) return cli_error("give --model or --weights, not both");
    const char *file = a->model ? a->model : a->weights;
    if (file) {
        if (rn_net_open(net, file, a->arch, &a->opt)) return cli_lib_error(NULL);
        return 0;
    }
    if (!a->arch) return cli_error("which network? give --arch NAME (or --model FILE)");
    if (rn_net_create(net, a->arch, &a->opt)) return cli_lib_error(NULL);
    return 0;
}

int cli_open_frozen_net(const cli_net_args *a, rn_net **net)
{
    if (cli_open_net(a, net)) return 1;
    if (rn_net_freeze(*net, 1)) {
        rn_net_free(*net);
        *net = NULL;
        return cli_lib_error("freezing the network for inference");
    }
    return 0;
}
