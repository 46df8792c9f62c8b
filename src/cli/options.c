#include "cli/options.h"

#include <errno.h>
#include <float.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/number.h"

static const char NET_HELP[] =
    "\nnetwork options (--arch, --model, --weights, --ordering, --shortcut, --classes,\n"
    "--input-shape, --seed, ...): see resnet --help\n";

static const cli_opt *find(const cli_opt *opts, const char *name)
{
    for (; opts && opts->name; opts++)
        if (!strcmp(opts->name, name)) return opts;
    return NULL;
}

static int set_number(const cli_opt *o, const char *value)
{
    const int integer = o->kind == CLI_INT || o->kind == CLI_LONG;
    double v;
    if (integer && rn_parse_number(value, 1, o->lo, o->hi, &v))
        return cli_error("%s: expected an integer in [%.0f, %.0f], got '%s'", o->name, o->lo,
                         o->hi, value) + 1;
    /* a float beyond FLT_MAX would become an infinity */
    const double big = o->kind == CLI_FLOAT ? FLT_MAX : DBL_MAX;
    if (!integer && rn_parse_number(value, 0, -big, big, &v))
        return cli_error("%s: expected a finite number, got '%s'", o->name, value) + 1;
    if (!integer && (v < o->lo || v > o->hi))
        return cli_error("%s: expected a number in [%g, %g], got '%s'", o->name, o->lo, o->hi,
                         value) + 1;
    if (o->kind == CLI_INT) *(int *)o->target = (int)v;
    else if (o->kind == CLI_LONG) *(long *)o->target = (long)v;
    else if (o->kind == CLI_FLOAT) *(float *)o->target = (float)v;
    else *(double *)o->target = v;
    return 0;
}

static int set_u64(const cli_opt *o, const char *value)
{
    char *end;
    errno = 0;
    /* strtoull takes "-1" as 2^64 - 1: only digits are an unsigned integer */
    unsigned long long v = value[0] >= '0' && value[0] <= '9' ? strtoull(value, &end, 10) : 0;
    if (!(value[0] >= '0' && value[0] <= '9') || errno || *end)
        return cli_error("%s: expected an unsigned integer, got '%s'", o->name, value) + 1;
    *(uint64_t *)o->target = (uint64_t)v;
    return 0;
}

int cli_set(const cli_opt *o, const char *value)
{
    if (o->given) ++*o->given;
    switch (o->kind) {
    case CLI_FLAG: *(int *)o->target = 1; return 0;
    case CLI_TEXT: *(const char **)o->target = value; return 0;
    case CLI_U64: return set_u64(o, value);
    case CLI_CUSTOM: return o->set(o->target, o->name, value) ? 2 : 0;
    default: return set_number(o, value);
    }
}

int cli_parse(const cli_verb *verb, int argc, char **argv)
{
    const char *name = verb->name ? verb->name : argv[0];
    if (verb->n_args) *verb->n_args = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            if (verb->print_help) verb->print_help(verb->help_ctx);
            else cli_print_help(verb, stdout);
            return -1;
        }
        if (a[0] != '-' || !a[1]) {
            if (!verb->args || *verb->n_args >= verb->max_args)
                return cli_error("%s: unexpected argument '%s' (see resnet %s --help)", name, a,
                                 name) + 1;
            verb->args[(*verb->n_args)++] = a;
            continue;
        }
        const cli_opt *o = find(verb->opts, a);
        if (!o && verb->net) o = find(cli_net_opts(verb->net), a);
        if (!o && !strcmp(a, "--input"))
            return cli_error("%s: --input is forward's tensor file; the input's shape is "
                             "--input-shape CxHxW", name) + 1;
        if (!o) return cli_error("%s: unknown option '%s' (see resnet %s --help)", name, a, name) + 1;
        const char *value = NULL;
        if (o->metavar) {
            if (i + 1 >= argc) return cli_error("option %s needs a value (%s)", a, o->metavar) + 1;
            value = argv[++i];
        }
        if (cli_set(o, value)) return 2;
    }
    return 0;
}

void cli_print_option(FILE *out, const char *left, const char *help)
{
    enum { INDENT = 24, WIDTH = 96 };
    int col = fprintf(out, "  %-*s", INDENT - 3, left);
    if (col > INDENT - 1) {
        fprintf(out, "\n%*s", INDENT - 1, "");
        col = INDENT - 1;
    }
    for (const char *w = help; *w;) {
        while (*w == ' ') w++;
        size_t len = strcspn(w, " ");
        if (!len) break;
        if (col + 1 + (int)len > WIDTH && col > INDENT - 1) {
            fprintf(out, "\n%*s", INDENT - 1, "");
            col = INDENT - 1;
        }
        col += fprintf(out, " %.*s", (int)len, w);
        w += len;
    }
    fputc('\n', out);
}

void cli_print_options(FILE *out, const cli_opt *opts)
{
    for (; opts && opts->name; opts++) {
        if (!opts->help) continue;
        char left[64];
        snprintf(left, sizeof left, "%s%s%s", opts->name, opts->metavar ? " " : "",
                 opts->metavar ? opts->metavar : "");
        cli_print_option(out, left, opts->help);
    }
}

void cli_print_help(const cli_verb *verb, FILE *out)
{
    fputs(verb->usage, out);
    fputs("\noptions:\n", out);
    cli_print_options(out, verb->opts);
    if (verb->net) fputs(verb->net_help ? verb->net_help : NET_HELP, out);
    if (verb->footer) fprintf(out, "\n%s", verb->footer);
}
