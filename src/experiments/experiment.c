#define _POSIX_C_SOURCE 200809L
/* The experiments' table and their settings: defaults per mode, typed options, JSON. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "experiments/experiment.h"

static const rn_experiment *const table[] = {
    &rn_exp_degradation, &rn_exp_identity, &rn_exp_gradflow,         &rn_exp_orderings,
    &rn_exp_lesion,      &rn_exp_paths,    &rn_exp_stochastic_depth, &rn_exp_highway,
    &rn_exp_depth_usage, NULL,
};

const rn_experiment *const *rn_experiments(void) { return table; }

const rn_experiment *rn_experiment_find(const char *name)
{
    for (int i = 0; table[i]; i++)
        if (!strcmp(table[i]->name, name)) return table[i];
    return NULL;
}

static int option_index(const rn_experiment *e, const char *name)
{
    for (int i = 0; e->opts && e->opts[i].name; i++)
        if (!strcmp(e->opts[i].name, name)) return i;
    return -1;
}

void rn_exp_settings_init(rn_exp_settings *s, const rn_experiment *e, int quick)
{
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "%s", e->name);
    s->data = RN_DATA_FASHION_MNIST;
    s->subset = -1;
    s->seed = 1;
    rn_exp_settings_set_quick(s, e, quick);
}

void rn_exp_settings_set_quick(rn_exp_settings *s, const rn_experiment *e, int quick)
{
    s->quick = quick != 0;
    for (int i = 0; e->opts && e->opts[i].name && i < RN_EXP_MAX_OPTS; i++)
        if (!s->given[i])
            snprintf(s->values[i], sizeof s->values[i], "%s", quick ? e->opts[i].quick : e->opts[i].full);
}

/* Parses a whole decimal integer in [lo, hi]. */
static int parse_long(const char *text, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || end == text || *end || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

static int check_value(const rn_xopt *o, const char *value)
{
    long v;
    switch (o->type) {
    case RN_XOPT_INT:
        if (parse_long(value, 0, 1L << 30, &v))
            return rn_fail(RN_ERR_ARG, "--%s: expected a whole number >= 0, got '%s'", o->name, value);
        break;
    case RN_XOPT_FLOAT: {
        char *end;
        errno = 0;
        double d = strtod(value, &end);
        if (errno || end == value || *end || !isfinite(d))
            return rn_fail(RN_ERR_ARG, "--%s: expected a number, got '%s'", o->name, value);
        break;
    }
    case RN_XOPT_INTS: {
        char buf[RN_EXP_VALUE_MAX];
        snprintf(buf, sizeof buf, "%s", value);
        int count = 0;
        for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            if (parse_long(tok, 0, 1L << 30, &v))
                return rn_fail(RN_ERR_ARG, "--%s: expected a comma-separated list of whole numbers, "
                                           "got '%s'", o->name, value);
            count++;
        }
        if (!count) return rn_fail(RN_ERR_ARG, "--%s: empty list", o->name);
        break;
    }
    case RN_XOPT_TEXT:
        if (!*value) return rn_fail(RN_ERR_ARG, "--%s: empty value", o->name);
        break;
    }
    return RN_OK;
}

int rn_exp_set_option(rn_exp_settings *s, const rn_experiment *e, const char *name, const char *value)
{
    int i = option_index(e, name);
    if (i < 0) return rn_fail(RN_ERR_ARG, "experiment %s has no option --%s", e->name, name);
    if (strlen(value) >= RN_EXP_VALUE_MAX) return rn_fail(RN_ERR_ARG, "--%s: value too long", name);
    int st = check_value(&e->opts[i], value);
    if (st) return st;
    snprintf(s->values[i], sizeof s->values[i], "%s", value);
    s->given[i] = 1;
    return RN_OK;
}

char *rn_exp_settings_to_json(const rn_exp_settings *s)
{
    const rn_experiment *e = rn_experiment_find(s->name);
    cJSON *o = cJSON_CreateObject(), *opts = cJSON_CreateObject();
    char seed[32];
    snprintf(seed, sizeof seed, "%" PRIu64, s->seed);
    if (!o || !opts || !cJSON_AddStringToObject(o, "experiment", s->name) ||
        !cJSON_AddBoolToObject(o, "quick", s->quick) ||
        !cJSON_AddStringToObject(o, "data", rn_data_kind_name(s->data)) ||
        !cJSON_AddStringToObject(o, "data_dir", s->data_dir) ||
        !cJSON_AddNumberToObject(o, "subset", s->subset) || !cJSON_AddStringToObject(o, "seed", seed)) {
        cJSON_Delete(o);
        cJSON_Delete(opts);
        return NULL;
    }
    cJSON_AddItemToObject(o, "options", opts);
    for (int i = 0; e && e->opts && e->opts[i].name; i++)
        if (!cJSON_AddStringToObject(opts, e->opts[i].name, s->values[i])) {
            cJSON_Delete(o);
            return NULL;
        }
    char *text = cJSON_Print(o);
    cJSON_Delete(o);
    return text;
}

int rn_exp_settings_from_json(rn_exp_settings *s, const char *json, const char *what)
{
    cJSON *o = cJSON_Parse(json);
    int st = RN_OK;
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(o, "experiment");
    const rn_experiment *e = cJSON_IsString(name) ? rn_experiment_find(name->valuestring) : NULL;
    const cJSON *quick = cJSON_GetObjectItemCaseSensitive(o, "quick");
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(o, "data");
    const cJSON *dir = cJSON_GetObjectItemCaseSensitive(o, "data_dir");
    const cJSON *subset = cJSON_GetObjectItemCaseSensitive(o, "subset");
    const cJSON *seed = cJSON_GetObjectItemCaseSensitive(o, "seed");
    const cJSON *opts = cJSON_GetObjectItemCaseSensitive(o, "options");
    rn_data_kind kind;
    if (!cJSON_IsObject(o)) st = rn_fail(RN_ERR_FORMAT, "%s: not a JSON object", what);
    else if (!e) st = rn_fail(RN_ERR_FORMAT, "%s: no known experiment named in it", what);
    else if (!cJSON_IsBool(quick) || !cJSON_IsString(data) || !cJSON_IsString(dir) ||
             !cJSON_IsNumber(subset) || !cJSON_IsString(seed) || !cJSON_IsObject(opts))
        st = rn_fail(RN_ERR_FORMAT, "%s: a setting is missing or of the wrong type", what);
    else if (rn_data_kind_parse(data->valuestring, &kind))
        st = rn_fail(RN_ERR_FORMAT, "%s: unknown data set '%s'", what, data->valuestring);
    else if (strlen(dir->valuestring) >= sizeof s->data_dir)
        st = rn_fail(RN_ERR_FORMAT, "%s: data_dir too long", what);
    if (!st) {
        rn_exp_settings_init(s, e, cJSON_IsTrue(quick));
        s->data = kind;
        snprintf(s->data_dir, sizeof s->data_dir, "%s", dir->valuestring);
        s->subset = subset->valuedouble >= -1 && subset->valuedouble <= 1e8 ? (int)subset->valuedouble : -1;
        char *end;
        errno = 0;
        s->seed = strtoull(seed->valuestring, &end, 10);
        if (errno || end == seed->valuestring || *end)
            st = rn_fail(RN_ERR_FORMAT, "%s: bad seed '%s'", what, seed->valuestring);
    }
    for (const cJSON *it = st ? NULL : opts->child; it && !st; it = it->next) {
        if (!cJSON_IsString(it))
            st = rn_fail(RN_ERR_FORMAT, "%s: option %s is not a string", what, it->string);
        else if (rn_exp_set_option(s, e, it->string, it->valuestring))
            st = rn_fail(RN_ERR_FORMAT, "%s: %s", what, rn_last_error());
    }
    cJSON_Delete(o);
    return st;
}
