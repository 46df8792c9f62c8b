/* The options of a training configuration, from the table of config_table.h: what `resnet
 * train` parses and lists in --help. (rn_train_config itself and its init / check / JSON
 * functions are declared in trainer.h.) */
#ifndef RN_TRAIN_CONFIG_H
#define RN_TRAIN_CONFIG_H

#include <stddef.h>

#include "train/trainer.h"

typedef enum {
    RN_CONFIG_GROUP_DATA,
    RN_CONFIG_GROUP_AUGMENT,
    RN_CONFIG_GROUP_NETWORK,
    RN_CONFIG_GROUP_OPTIM,
    RN_CONFIG_GROUP_RUN,
    RN_CONFIG_N_GROUPS
} rn_config_group;

enum {
    RN_CONFIG_LO_OPEN = 1,         /* the range excludes lo */
    RN_CONFIG_HI_OPEN = 2,         /* the range excludes hi */
    RN_CONFIG_RESUMABLE = 4,       /* may be given with --resume */
    RN_CONFIG_NO_DEFAULT_HELP = 8, /* --help does not print the default */
};

/* One row of the table (see config_table.h for the columns). */
typedef struct {
    int type;
    size_t offset;
    const char *key, *option, *off_option, *metavar;
    const char *lib_default, *cli_default;
    double lo, hi;
    int flags;
    rn_config_group group;
    const char *help, *off_help;
} rn_config_row;

/* The rows, in table order; returns their number. */
int rn_train_config_rows(const rn_config_row **rows);
/* The heading of a group in --help ("optimisation:"). */
const char *rn_train_config_group_heading(rn_config_group group);
/* `resnet train`'s defaults: the library's, with the table's second default column. */
void rn_train_config_init_cli(rn_train_config *cfg);
/* The row an option names (its option or its off option), or NULL. *value: whether it takes a
 * value (the off option never does). */
const rn_config_row *rn_train_config_find_option(const char *option, int *value);
/* Sets what `option value` says (value NULL for options without one); RN_ERR_ARG naming the
 * option when the value is not one it takes. */
int rn_train_config_set(rn_train_config *cfg, const char *option, const char *value);

#endif
