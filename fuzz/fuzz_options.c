/* libFuzzer harness: the command line's option parsing. The input is split at NUL bytes into
 * argv strings (argv[0] = "resnet").
 *
 * The verbs (src/cli/cmd_*.c) parse their options inside the command itself, which goes on to
 * build networks, load data, train or write files once parsing succeeds, so a verb cannot be
 * run here. What is fuzzed is the parsing they are made of, at the lowest level that can be
 * called:
 *   - cli_parse (src/cli/options.c), the one parser every verb runs, on a table with an option
 *     of each kind (flag, text, int, long, number, float, seed, a custom one, values taken as
 *     positional arguments) beside the network options every verb shares (src/cli/args.c:
 *     --arch, --ordering, --shortcut, --classes, --input-shape, --seed, --gate-bias,
 *     --stochastic-depth, ...); what it accepts must lie in the table's ranges;
 *   - the library's parsers the verbs call on option values: rn_ordering_parse,
 *     rn_shortcut_parse, rn_data_kind_parse, rn_schedule_parse, rn_tta_parse, each checked to
 *     read back what its name / format function writes;
 *   - the whole input as a training configuration in JSON (rn_train_config_from_json, what
 *     `train --resume` reads from a checkpoint), which when it passes rn_train_config_check must
 *     write out and read back unchanged.
 * Not reached: the verbs' own CUSTOM setters (eval's --split, bench's --mode, experiment's
 * options) and eval's --delete-blocks list.
 * Seeds: fuzz/corpus/options (fuzz/make_corpus.sh). */
#include "fuzz_common.h"

#include <math.h>

#include "cli/cli.h"
#include "resnet.h"
#include "train/dataset.h"
#include "train/schedule.h"
#include "train/trainer.h"
#include "train/tta.h"

#define FUZZ_MAX_ARGS 64

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    /* The CLI's parsers print their complaints to stderr; the fuzzer's own reports and the
     * sanitizers' write to file descriptor 2 directly and are not affected. */
    FILE *null = fopen("/dev/null", "w");
    if (null) stderr = null;
    return 0;
}

static void fail(const char *what, const char *text)
{
    fprintf(stdout, "fuzz: %s: '%s'\n", what, text);
    fflush(stdout);
    abort();
}

/* Each value parser on one string; what parses must read back through the name it prints. */
static void value_parsers(const char *s)
{
    rn_ordering o, o2;
    if (!rn_ordering_parse(s, &o) && (rn_ordering_parse(rn_ordering_name(o), &o2) || o2 != o))
        fail("ordering does not read back", s);
    rn_shortcut sc, sc2;
    if (!rn_shortcut_parse(s, &sc) && (rn_shortcut_parse(rn_shortcut_name(sc), &sc2) || sc2 != sc))
        fail("shortcut does not read back", s);
    rn_data_kind k, k2;
    if (!rn_data_kind_parse(s, &k) && (rn_data_kind_parse(rn_data_kind_name(k), &k2) || k2 != k))
        fail("data kind does not read back", s);
    int t, t2;
    if (!rn_tta_parse(s, &t) && (rn_tta_parse(rn_tta_name(t), &t2) || t2 != t))
        fail("tta does not read back", s);
    rn_schedule a, b;
    rn_schedule_init(&a, RN_SCHEDULE_STEP, 0.1f, 1000);
    if (!rn_schedule_parse(s, &a) && !rn_schedule_check(&a)) {
        char buf[256];
        rn_schedule_format(&a, buf, sizeof buf);
        rn_schedule_init(&b, RN_SCHEDULE_STEP, 0.1f, 1000);
        if (rn_schedule_parse(buf, &b) || b.kind != a.kind || b.n_milestones != a.n_milestones ||
            memcmp(b.milestones, a.milestones, sizeof a.milestones))
            fail("schedule does not read back", s);
    }
}

static int set_custom(void *target, const char *option, const char *value)
{
    return rn_tta_parse(value, target) ? cli_lib_error(option) : 0;
}

/* A verb's parse: one option of each kind, the network options, positional arguments. */
static void verb_parse(int argc, char **argv)
{
    cli_net_args a;
    cli_net_args_init(&a);
    int flag = 0, i = 7, tta = 0, given = 0, n_args = 0;
    long l = 7;
    double d = 0.5;
    float f = 0.5f;
    uint64_t u = 1;
    const char *text = NULL, *args[4];
    const cli_opt opts[] = {
        {"--flag", NULL, CLI_FLAG, &flag, 0, 0, NULL, "a flag", &given},
        {"--text", "T", CLI_TEXT, &text, 0, 0, NULL, "text", &given},
        {"--int", "N", CLI_INT, &i, -1000, 1000000, NULL, "an int", &given},
        {"--long", "N", CLI_LONG, &l, 0, 1099511627776.0, NULL, "a long", &given},
        {"--number", "X", CLI_NUMBER, &d, 1e-9, 1e9, NULL, "a number", &given},
        {"--float", "X", CLI_FLOAT, &f, -1, 1, NULL, "a float", &given},
        {"--u64", "S", CLI_U64, &u, 0, 0, NULL, "a seed", &given},
        {"--tta", "VIEWS", CLI_CUSTOM, &tta, 0, 0, set_custom, "views", &given},
        {NULL, NULL, CLI_FLAG, NULL, 0, 0, NULL, NULL, NULL},
    };
    const cli_verb verb = {.name = "fuzz", .usage = "usage: fuzz\n", .opts = opts, .net = &a,
                           .args = args, .max_args = 4, .n_args = &n_args};
    FILE *out = stdout;
    stdout = stderr; /* --help prints; /dev/null here */
    const int r = cli_parse(&verb, argc, argv);
    stdout = out;
    if (r > 0 && r != 2) fail("cli_parse returned neither 0, -1 nor 2", argv[1]);
    if (r) return;
    if (i < -1000 || i > 1000000 || l < 0 || l > 1099511627776L || !(d >= 1e-9 && d <= 1e9) ||
        !(f >= -1 && f <= 1) || n_args > 4 || (flag != 0 && flag != 1))
        fail("an option outside its range after a successful parse", argv[1]);
    const rn_net_options *o = &a.opt;
    if (o->in_c < 0 || o->in_h < 0 || o->in_w < 0 || (o->in_c && (!o->in_h || !o->in_w)) ||
        o->classes < 0 || o->classes > 1000000 || !isfinite(o->gate_bias) ||
        !isfinite(o->survival_last))
        fail("network options out of range after a successful parse", argv[1]);
}

static void config_json(const char *text)
{
    rn_train_config c, again;
    if (rn_train_config_from_json(&c, text) || rn_train_config_check(&c)) return;
    char *x = rn_train_config_to_json(&c);
    if (!x) abort();
    if (rn_train_config_from_json(&again, x)) fail("a checked configuration does not read back", x);
    char *y = rn_train_config_to_json(&again);
    if (!y || strcmp(x, y)) fail("configuration changed on a round trip", x);
    free(x);
    free(y);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 1);
    if (!buf) abort();
    memcpy(buf, data, size);
    buf[size] = '\0';
    char *argv[FUZZ_MAX_ARGS + 1];
    int argc = 0;
    argv[argc++] = (char *)"resnet";
    for (size_t at = 0; at <= size && argc < FUZZ_MAX_ARGS; at += strlen(buf + at) + 1)
        argv[argc++] = buf + at;
    argv[argc] = NULL;
    for (int i = 1; i < argc; i++) value_parsers(argv[i]);
    verb_parse(argc, argv);
    config_json(buf);
    free(buf);
    return 0;
}
