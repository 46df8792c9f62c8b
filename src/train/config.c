/* The training configuration from its table (config_table.h): defaults, checks, JSON and
 * options. */
#include "train/config.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/json_check.h"
#include "core/number.h"
#include "train/config_table.h"

enum { T_INT, T_FLOAT, T_BOOL, T_TRI, T_DATA, T_PATH, T_SHAPE, T_ARCH, T_ORDERING, T_SHORTCUT,
       T_SCHEDULE, T_SEED, T_BN };

#define LO_OPEN RN_CONFIG_LO_OPEN
#define HI_OPEN RN_CONFIG_HI_OPEN
#define RESUMABLE RN_CONFIG_RESUMABLE
#define NO_DEFAULT_HELP RN_CONFIG_NO_DEFAULT_HELP

static const rn_config_row ROWS[] = {
#define ROW(type, field, key, option, off, metavar, def, cli_def, lo, hi, flags, group, help,     \
            off_help)                                                                              \
    {T_##type, offsetof(rn_train_config, field), key, option, off, metavar, def, cli_def, lo, hi,  \
     flags, RN_CONFIG_##group, help, off_help},
    RN_TRAIN_CONFIG_TABLE(ROW)
#undef ROW
};
enum { N_ROWS = sizeof ROWS / sizeof ROWS[0] };

int rn_train_config_rows(const rn_config_row **rows)
{
    *rows = ROWS;
    return N_ROWS;
}

const char *rn_train_config_group_heading(rn_config_group group)
{
    static const char *const headings[RN_CONFIG_N_GROUPS] = {
        "data:",
        "augmentation (defaults per data set: pad 4 + flip for CIFAR, pad 2 + flip for\n"
        "Fashion-MNIST, none for MNIST, whose digits must not be mirrored; folders: pad W/8 + flip):",
        "network:",
        "optimisation:",
        "run:",
    };
    return group < RN_CONFIG_N_GROUPS ? headings[group] : "";
}

static int *int_field(rn_train_config *c, const rn_config_row *r)
{
    return (int *)((char *)c + r->offset);
}

static float *float_field(rn_train_config *c, const rn_config_row *r)
{
    return (float *)((char *)c + r->offset);
}

/* What a row's option is called in messages: its option, else its JSON key. */
static const char *row_name(const rn_config_row *r)
{
    return r->option ? r->option : r->off_option ? r->off_option : r->key;
}

/* ---- numbers: the range, and the library default that means "not set" -------------------- */

static double number_of(const rn_train_config *c, const rn_config_row *r)
{
    rn_train_config *m = (rn_train_config *)c;
    return r->type == T_FLOAT ? (double)*float_field(m, r) : (double)*int_field(m, r);
}

/* Whether v is a value of the row: within its range, or (not_set != 0) the library default
 * that means "not set" (an option on the command line must be within the range). */
static int in_range(const rn_config_row *r, double v, int not_set)
{
    if (r->type == T_BOOL) return v == 0 || v == 1;
    if (r->type == T_TRI) return v == -1 || v == 0 || v == 1;
    if (r->type == T_INT && v != floor(v)) return 0;
    if (not_set && v == strtod(r->lib_default, NULL)) return 1;
    int lo_ok = r->flags & RN_CONFIG_LO_OPEN ? v > r->lo : v >= r->lo;
    int hi_ok = r->flags & RN_CONFIG_HI_OPEN ? v < r->hi : v <= r->hi;
    return lo_ok && hi_ok;
}

static void range_text(const rn_config_row *r, char *buf, size_t size)
{
    if (r->type == T_BOOL) snprintf(buf, size, "0 or 1");
    else if (r->type == T_TRI) snprintf(buf, size, "-1, 0 or 1");
    else
        snprintf(buf, size, "%c%.10g, %.10g%c", r->flags & RN_CONFIG_LO_OPEN ? '(' : '[', r->lo,
                 r->hi, r->flags & RN_CONFIG_HI_OPEN ? ')' : ']');
}

static void set_number(rn_train_config *c, const rn_config_row *r, double v)
{
    if (r->type == T_FLOAT) *float_field(c, r) = (float)v;
    else *int_field(c, r) = (int)v;
}

/* ---- the text forms ---------------------------------------------------------------------- */

static int parse_shape(const char *text, int *ch, int *h, int *w)
{
    char tail;
    if (!*text) {
        *ch = *h = *w = 0;
        return 0;
    }
    return sscanf(text, "%dx%dx%d%c", ch, h, w, &tail) == 3 && *ch > 0 && *h > 0 && *w > 0 &&
                   *ch <= RN_MAX_INPUT_CHANNELS && *h <= RN_MAX_INPUT_SIDE &&
                   *w <= RN_MAX_INPUT_SIDE
               ? 0
               : -1;
}

static int copy_text(char *dst, size_t size, const char *text)
{
    if (strlen(text) >= size) return -1;
    snprintf(dst, size, "%s", text);
    return 0;
}

/* The reason a parser left in rn_last_error(), copied: rn_fail formats into the same buffer. */
static void parser_reason(char *buf, size_t size)
{
    const char *why = rn_last_error();
    snprintf(buf, size, "%s", strcmp(why, "no error") ? why : "");
}

/* Sets a text-valued row (or, with the library's parsers, says why it cannot); 0 or -1. On -1
 * rn_last_error() may hold the parser's reason. */
static int set_text(rn_train_config *c, const rn_config_row *r, const char *text)
{
    rn_clear_error();
    switch (r->type) {
    case T_DATA: {
        rn_data_kind k;
        if (rn_data_kind_parse(text, &k)) return -1;
        c->data = k;
        return 0;
    }
    case T_PATH: return copy_text(c->data_dir, sizeof c->data_dir, text);
    case T_ARCH: return *text ? copy_text(c->arch, sizeof c->arch, text) : -1;
    case T_SHAPE: return parse_shape(text, &c->in_c, &c->in_h, &c->in_w);
    case T_ORDERING: {
        rn_ordering o = RN_ORDER_DEFAULT;
        if (strcmp(text, "default") && rn_ordering_parse(text, &o)) return -1;
        c->ordering = o;
        return 0;
    }
    case T_SHORTCUT: {
        rn_shortcut s = RN_SHORTCUT_DEFAULT;
        if (strcmp(text, "default") && rn_shortcut_parse(text, &s)) return -1;
        c->shortcut = s;
        return 0;
    }
    case T_SCHEDULE: {
        rn_schedule s;
        rn_schedule_init(&s, RN_SCHEDULE_STEP, 0.1f, 1);
        if (rn_schedule_parse(text, &s)) return -1;
        c->schedule = s.kind;
        c->n_milestones = s.n_milestones;
        memcpy(c->milestones, s.milestones, sizeof c->milestones);
        return 0;
    }
    case T_BN:
        if (strcmp(text, "sync") && strcmp(text, "local")) {
            rn_fail(RN_ERR_ARG, "sync or local");
            return -1;
        }
        c->bn_local = !strcmp(text, "local");
        return 0;
    case T_SEED: {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(text, &end, 10);
        if (errno || end == text || *end || *text < '0' || *text > '9') return -1;
        c->seed = (uint64_t)v;
        return 0;
    }
    default: return -1;
    }
}

/* The text form of a text-valued row, as set_text reads it back. */
static void format_text(const rn_train_config *c, const rn_config_row *r, char *buf, size_t size)
{
    rn_schedule s;
    switch (r->type) {
    case T_DATA: snprintf(buf, size, "%s", rn_data_kind_name(c->data)); break;
    case T_PATH: snprintf(buf, size, "%s", c->data_dir); break;
    case T_ARCH: snprintf(buf, size, "%s", c->arch); break;
    case T_SHAPE:
        if (c->in_c > 0) snprintf(buf, size, "%dx%dx%d", c->in_c, c->in_h, c->in_w);
        else snprintf(buf, size, "%s", "");
        break;
    case T_ORDERING: snprintf(buf, size, "%s", rn_ordering_name((rn_ordering)c->ordering)); break;
    case T_SHORTCUT: snprintf(buf, size, "%s", rn_shortcut_name((rn_shortcut)c->shortcut)); break;
    case T_SCHEDULE:
        rn_train_config_schedule(c, &s, 1, 0);
        rn_schedule_format(&s, buf, (int)size);
        break;
    case T_SEED: snprintf(buf, size, "%" PRIu64, c->seed); break;
    case T_BN: snprintf(buf, size, "%s", c->bn_local ? "local" : "sync"); break;
    default: snprintf(buf, size, "%s", "");
    }
}

static int is_number_type(int type)
{
    return type == T_INT || type == T_FLOAT || type == T_BOOL || type == T_TRI;
}

/* ---- defaults -------------------------------------------------------------------------------- */

/* The defaults are table text: numbers are read without the range (they may mean "not set"),
 * and each one is known to parse (test_config_table). */
static void init_from(rn_train_config *c, int cli)
{
    memset(c, 0, sizeof *c);
    for (int i = 0; i < N_ROWS; i++) {
        const rn_config_row *r = &ROWS[i];
        const char *text = cli ? r->cli_default : r->lib_default;
        if (is_number_type(r->type)) set_number(c, r, strtod(text, NULL));
        else (void)set_text(c, r, text);
    }
}

void rn_train_config_init(rn_train_config *cfg)
{
    init_from(cfg, 0);
}

void rn_train_config_init_cli(rn_train_config *cfg)
{
    init_from(cfg, 1);
}

void rn_train_config_schedule(const rn_train_config *cfg, rn_schedule *s, long total_steps,
                              long warmup_steps)
{
    rn_schedule_init(s, cfg->schedule, cfg->lr, total_steps);
    s->warmup_steps = warmup_steps;
    s->n_milestones = cfg->n_milestones;
    memcpy(s->milestones, cfg->milestones, sizeof s->milestones);
}

/* ---- checks ---------------------------------------------------------------------------------- */

int rn_train_config_check(const rn_train_config *c)
{
    for (int i = 0; i < N_ROWS; i++) {
        const rn_config_row *r = &ROWS[i];
        if (!is_number_type(r->type)) continue;
        double v = number_of(c, r);
        if (!in_range(r, v, 1)) {
            char range[64];
            range_text(r, range, sizeof range);
            return rn_fail(RN_ERR_ARG, "%s must be in %s, not %.10g", row_name(r), range, v);
        }
    }
    if (c->accum > c->batch)
        return rn_fail(RN_ERR_ARG, "--accum must be in [1, batch = %d], not %d", c->batch, c->accum);
    if (!(c->warmup < (float)c->epochs))
        return rn_fail(RN_ERR_ARG, "--warmup must be in [0, epochs = %d), not %g", c->epochs,
                       (double)c->warmup);
    if (c->nesterov && c->momentum == 0.0f)
        return rn_fail(RN_ERR_ARG, "--nesterov needs a momentum > 0");
    if (c->subset && c->val >= c->subset)
        return rn_fail(RN_ERR_ARG, "--val %d leaves no training images of --subset %d", c->val,
                       c->subset);
    if (!c->arch[0]) return rn_fail(RN_ERR_ARG, "no architecture given");
    if (c->schedule == RN_SCHEDULE_STEP) {
        if (c->n_milestones < 0 || c->n_milestones > RN_SCHEDULE_MAX_MILESTONES)
            return rn_fail(RN_ERR_ARG, "--schedule: bad number of milestones");
        for (int i = 0; i < c->n_milestones; i++)
            if (!(c->milestones[i] > 0.0f && c->milestones[i] < 1.0f) ||
                (i && !(c->milestones[i] > c->milestones[i - 1])))
                return rn_fail(RN_ERR_ARG,
                               "--schedule: milestones must be increasing fractions in (0, 1)");
    }
    rn_schedule s;
    rn_train_config_schedule(c, &s, 1000, 0);
    return rn_schedule_check(&s);
}

/* ---- JSON ------------------------------------------------------------------------------------ */

char *rn_train_config_to_json(const rn_train_config *c)
{
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    int ok = 1;
    for (int i = 0; ok && i < N_ROWS; i++) {
        const rn_config_row *r = &ROWS[i];
        char buf[RN_TRAIN_PATH_MAX];
        if (r->type == T_BOOL) ok = cJSON_AddBoolToObject(o, r->key, number_of(c, r) != 0) != NULL;
        else if (is_number_type(r->type))
            ok = cJSON_AddNumberToObject(o, r->key, number_of(c, r)) != NULL;
        else {
            format_text(c, r, buf, sizeof buf);
            ok = cJSON_AddStringToObject(o, r->key, buf) != NULL;
        }
    }
    char *text = ok ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    return text;
}

/* One field of a configuration read from a checkpoint: a RN_ERR_FORMAT naming its key. */
static int field_from_json(rn_train_config *c, const rn_config_row *r, const cJSON *v)
{
    if (is_number_type(r->type)) {
        double x;
        if (cJSON_IsBool(v)) x = cJSON_IsTrue(v);
        else if (cJSON_IsNumber(v)) x = v->valuedouble;
        else return rn_fail(RN_ERR_FORMAT, "configuration field '%s' is not a number", r->key);
        if (!in_range(r, x, 1)) {
            char range[64];
            range_text(r, range, sizeof range);
            return rn_fail(RN_ERR_FORMAT, "configuration field '%s' is out of range: %.10g (%s)",
                           r->key, x, range);
        }
        set_number(c, r, x);
        return RN_OK;
    }
    if (!cJSON_IsString(v))
        return rn_fail(RN_ERR_FORMAT, "configuration field '%s' is not a string", r->key);
    if (set_text(c, r, v->valuestring)) {
        char why[512];
        parser_reason(why, sizeof why);
        return rn_fail(RN_ERR_FORMAT, "configuration field '%s' is not valid: '%.200s'%s%s", r->key,
                       v->valuestring, *why ? ": " : "", why);
    }
    return RN_OK;
}

int rn_train_config_from_json(rn_train_config *c, const char *json)
{
    rn_train_config_init(c);
    cJSON *o = cJSON_Parse(json);
    if (!o && rn_json_valid(json))
        return rn_fail(RN_ERR_NOMEM, "out of memory reading the configuration");
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return rn_fail(RN_ERR_FORMAT, "the configuration is not a JSON object");
    }
    int st = RN_OK;
    for (int i = 0; !st && i < N_ROWS; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, ROWS[i].key);
        if (v) st = field_from_json(c, &ROWS[i], v);
    }
    cJSON_Delete(o);
    return st;
}

/* ---- options --------------------------------------------------------------------------------- */

const rn_config_row *rn_train_config_find_option(const char *option, int *value)
{
    for (int i = 0; i < N_ROWS; i++) {
        const rn_config_row *r = &ROWS[i];
        if (r->option && !strcmp(option, r->option)) {
            *value = r->type != T_BOOL && r->type != T_TRI;
            return r;
        }
        if (r->off_option && !strcmp(option, r->off_option)) {
            *value = 0;
            return r;
        }
    }
    return NULL;
}

int rn_train_config_set(rn_train_config *c, const char *option, const char *value)
{
    int takes;
    const rn_config_row *r = rn_train_config_find_option(option, &takes);
    if (!r) return rn_fail(RN_ERR_ARG, "unknown option '%s'", option);
    if (!takes || !value) {
        if (takes) return rn_fail(RN_ERR_ARG, "option %s needs a value", option);
        set_number(c, r, r->off_option && !strcmp(option, r->off_option) ? 0 : 1);
        return RN_OK;
    }
    if (is_number_type(r->type)) {
        double x;
        if (rn_parse_number(value, r->type == T_INT, -HUGE_VAL, HUGE_VAL, &x) ||
            !in_range(r, x, 0)) {
            char range[64];
            range_text(r, range, sizeof range);
            return rn_fail(RN_ERR_ARG, "%s: expected %s in %s, got '%s'", option,
                           r->type == T_INT ? "an integer" : "a finite number", range, value);
        }
        set_number(c, r, x);
        return RN_OK;
    }
    /* "" is how a checkpoint says "not set"; on the command line it is a mistake */
    if (!*value || set_text(c, r, value)) {
        char why[512] = "";
        if (*value) parser_reason(why, sizeof why);
        return rn_fail(RN_ERR_ARG, "%s: not a valid %s: '%s'%s%s", option, r->metavar, value,
                       *why ? ": " : "", why);
    }
    return RN_OK;
}
