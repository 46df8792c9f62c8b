/* The one option parser of the command-line verbs. Each verb describes its options once, in a
 * table (name, value, where it goes, range, help); from the table come the parsing, the checks
 * and the verb's --help. The network options (--arch, --model, ...) are one more table, shared
 * by the verbs that build or open a network. */
#ifndef RN_CLI_OPTIONS_H
#define RN_CLI_OPTIONS_H

#include <stdint.h>
#include <stdio.h>

typedef enum {
    CLI_FLAG,   /* no value: the int at target becomes 1 */
    CLI_TEXT,   /* the const char * at target points at the value */
    CLI_INT,    /* a decimal integer in [lo, hi], into an int */
    CLI_LONG,   /* the same, into a long */
    CLI_NUMBER, /* a finite number in [lo, hi], into a double */
    CLI_FLOAT,  /* the same, into a float */
    CLI_U64,    /* an unsigned decimal integer (a seed), into a uint64_t */
    CLI_CUSTOM, /* set(target, option, value) parses and stores it */
} cli_kind;

typedef struct {
    const char *name;    /* "--top"; a NULL name ends a table */
    const char *metavar; /* "N"; NULL: the option takes no value (FLAG, or CUSTOM without one) */
    cli_kind kind;
    void *target;
    double lo, hi; /* INT, LONG, NUMBER, FLOAT */
    /* CUSTOM: returns 0, or nonzero after printing the error (cli_error); value NULL when the
     * option takes none */
    int (*set)(void *target, const char *option, const char *value);
    const char *help; /* wrapped under itself by --help; NULL: not listed (options for tests) */
    int *given;       /* when not NULL, counts how often the option was given */
} cli_opt;

typedef struct cli_net_args cli_net_args;

typedef struct {
    const char *name;     /* the verb, for messages (NULL: argv[0]) */
    const char *usage;    /* "usage: resnet eval ..." lines, then what the verb does */
    const cli_opt *opts;  /* the verb's own options, ending with a NULL name */
    cli_net_args *net;    /* the network options too, into this (NULL: not taken) */
    const char *net_help; /* the line printed for them (NULL: the standard one) */
    const char *footer;   /* text after the options (may be NULL) */
    /* the arguments that are not options, in order (NULL: none taken); *n_args counts them */
    const char **args;
    int max_args, *n_args;
    /* a help of the verb's own making, instead of the generated one, given help_ctx */
    void (*print_help)(const void *ctx);
    const void *help_ctx;
} cli_verb;

/* Parses argv[1..argc-1] (argv[0] is the verb). Returns 0 to go on, -1 when --help was
 * printed (the verb then exits 0), 2 after printing an error that names the option. */
int cli_parse(const cli_verb *verb, int argc, char **argv);
/* Sets what option o says with value (NULL when it takes none): 0, or 2 after printing the
 * error (for a CUSTOM option that falls back on a standard kind). */
int cli_set(const cli_opt *o, const char *value);
/* The verb's help: usage, the options of the table (and the network options' line), footer. */
void cli_print_help(const cli_verb *verb, FILE *out);
/* "  --option ARG          help", the help wrapped at 96 columns under itself. */
void cli_print_option(FILE *out, const char *left, const char *help);
/* Each option of a table, as cli_print_option prints it. */
void cli_print_options(FILE *out, const cli_opt *opts);

#endif
