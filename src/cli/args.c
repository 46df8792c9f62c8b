#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

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

const char *cli_value(int argc, char **argv, int *i)
{
    if (*i + 1 >= argc) {
        cli_error("option %s needs a value", argv[*i]);
        return NULL;
    }
    return argv[++*i];
}

int cli_parse_int(const char *opt, const char *text, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || end == text || *end || v < lo || v > hi)
        return cli_error("%s: expected an integer in [%ld, %ld], got '%s'", opt, lo, hi, text);
    *out = v;
    return 0;
}

void cli_net_args_init(cli_net_args *a)
{
    memset(a, 0, sizeof *a);
    rn_net_options_init(&a->opt);
}

int cli_net_arg(cli_net_args *a, int argc, char **argv, int *i)
{
    const char *o = argv[*i], *v;
    long n;
    int known = !strcmp(o, "--arch") || !strcmp(o, "--model") || !strcmp(o, "--weights") ||
                !strcmp(o, "--ordering") || !strcmp(o, "--shortcut") || !strcmp(o, "--classes") ||
                !strcmp(o, "--input-shape") || !strcmp(o, "--seed") || !strcmp(o, "--gate-bias") ||
                !strcmp(o, "--stochastic-depth");
    if (!strcmp(o, "--zero-init-last-bn")) {
        a->opt.zero_init_last_bn = 1;
        return 1;
    }
    if (!known) return 0;
    if (!(v = cli_value(argc, argv, i))) return -1;
    if (!strcmp(o, "--arch")) a->arch = v;
    else if (!strcmp(o, "--model")) a->model = v;
    else if (!strcmp(o, "--weights")) a->weights = v;
    else if (!strcmp(o, "--ordering")) {
        rn_ordering ord;
        if (rn_ordering_parse(v, &ord)) return cli_lib_error("--ordering") ? -1 : -1;
        a->opt.ordering = ord;
    } else if (!strcmp(o, "--shortcut")) {
        rn_shortcut sc;
        if (rn_shortcut_parse(v, &sc)) return cli_lib_error("--shortcut") ? -1 : -1;
        a->opt.shortcut = sc;
    } else if (!strcmp(o, "--classes")) {
        if (cli_parse_int(o, v, 1, 1000000, &n)) return -1;
        a->opt.classes = (int)n;
    } else if (!strcmp(o, "--input-shape")) {
        char tail;
        if (sscanf(v, "%dx%dx%d%c", &a->opt.in_c, &a->opt.in_h, &a->opt.in_w, &tail) != 3 ||
            a->opt.in_c <= 0 || a->opt.in_h <= 0 || a->opt.in_w <= 0)
            return cli_error("--input-shape: expected CxHxW such as 3x32x32, got '%s'", v) ? -1 : -1;
    } else if (!strcmp(o, "--seed")) {
        char *end;
        errno = 0;
        unsigned long long s = strtoull(v, &end, 10);
        if (errno || end == v || *end) return cli_error("--seed: expected an unsigned integer, got '%s'", v) ? -1 : -1;
        a->opt.seed = s;
    } else if (!strcmp(o, "--gate-bias") || !strcmp(o, "--stochastic-depth")) {
        char *end;
        float f = strtof(v, &end);
        if (end == v || *end) return cli_error("%s: expected a number, got '%s'", o, v) ? -1 : -1;
        /* strtof takes "nan" and "inf", and overflows to infinity: a network with such a
         * value would compute nothing but NaN */
        if (!isfinite(f)) return cli_error("%s: expected a finite number, got '%s'", o, v) ? -1 : -1;
        if (!strcmp(o, "--gate-bias")) a->opt.gate_bias = f;
        else a->opt.survival_last = f;
    }
    return 1;
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
