#define _POSIX_C_SOURCE 200809L
/* resnet eval: accuracy, loss, per-class accuracy and the confusion matrix of a model on a data
 * set. */
#include <cjson/cJSON.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "train/dataset.h"
#include "train/evaluate.h"
#include "train/trainer.h"
#include "train/tta.h"

static const char usage_text[] =
    "usage: resnet eval --model FILE [--data KIND] [--data-dir DIR] [--split test|train|val]\n"
    "                   [--val N] [--seed S] [--subset N] [--tta VIEWS] [--batch N] [--threads T]\n"
    "                   [--delete-blocks LIST] [--json]\n"
    "Evaluates a model (e.g. RUN_DIR/model.safetensors from resnet train) on a data set in\n"
    "evaluation mode: accuracy, mean cross-entropy, per-class accuracy, confusion matrix.\n"
    "The images are normalised with the model's stored mean and std; the image shape and the\n"
    "number of classes must fit the model.\n";

/* test and train are the data set's; val is resnet train's validation split (-1 here). */
static int set_split(void *target, const char *option, const char *value)
{
    int *split = target;
    if (!strcmp(value, "test")) *split = RN_SPLIT_TEST;
    else if (!strcmp(value, "train")) *split = RN_SPLIT_TRAIN;
    else if (!strcmp(value, "val")) *split = -1;
    else return cli_error("%s: expected test, train or val, got '%s'", option, value);
    return 0;
}

static int load_eval_data(rn_dataset **out, const rn_net *net, rn_data_kind kind, const char *dir,
                          rn_split split)
{
    rn_net_options o;
    rn_net_get_options(net, &o);
    rn_data_source src;
    rn_data_source_init(&src, kind, dir);
    src.c = o.in_c, src.h = o.in_h, src.w = o.in_w;
    int labelled = rn_net_label(net, o.classes - 1) != NULL && rn_net_label(net, o.classes) == NULL;
    if (kind == RN_DATA_FOLDER && dir && labelled) {
        /* the model's label names fix the class numbering */
        char path[4200];
        snprintf(path, sizeof path, "%s/train", dir);
        struct stat sb;
        if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
            snprintf(path, sizeof path, "%s/%s", dir, split == RN_SPLIT_TEST ? "test" : "train");
        else snprintf(path, sizeof path, "%s", dir);
        const char **names = malloc((size_t)o.classes * sizeof *names);
        if (!names) return cli_error("out of memory");
        for (int i = 0; i < o.classes; i++) names[i] = rn_net_label(net, i);
        int st = rn_dataset_load_folder(out, path, o.in_c, o.in_h, o.in_w, names, o.classes);
        free(names);
        return st ? cli_lib_error(NULL) : 0;
    }
    if (!rn_dataset_has_split(&src, split))
        return cli_error("%s: the data set has no %s split", dir ? dir : rn_data_kind_name(kind),
                         split == RN_SPLIT_TEST ? "test" : "train");
    return rn_dataset_load(out, &src, split) ? cli_lib_error(NULL) : 0;
}

/* The validation split exactly as resnet train --val N --seed S [--subset M] made it. */
static int load_val_split(rn_dataset **out, const rn_net *net, rn_data_kind kind, const char *dir,
                          long val, uint64_t seed, long subset)
{
    rn_net_options o;
    rn_net_get_options(net, &o);
    rn_train_config cfg;
    rn_train_config_init(&cfg);
    cfg.data = kind;
    if (dir) snprintf(cfg.data_dir, sizeof cfg.data_dir, "%s", dir);
    cfg.in_c = o.in_c, cfg.in_h = o.in_h, cfg.in_w = o.in_w;
    cfg.val = (int)val, cfg.seed = seed, cfg.subset = (int)subset;
    rn_dataset *train = NULL;
    const char *name;
    if (rn_train_load_data(&cfg, &train, out, &name)) return cli_lib_error("--split val");
    rn_dataset_free(train);
    return 0;
}

/* --delete-blocks LIST: each entry a block index from 0 or a block name; every failure names the
 * entry. */
static int delete_blocks(rn_net *net, const char *list)
{
    const int nb = rn_net_num_blocks(net);
    if (!*list)
        return cli_error("--delete-blocks: empty list (give block indices from 0 or names such as "
                         "layer2.3)");
    for (const char *p = list;;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char tok[64];
        if (!len) return cli_error("--delete-blocks: an empty entry in '%s'", list);
        if (len >= sizeof tok) return cli_error("--delete-blocks: '%.*s' is too long for a block", (int)len, p);
        memcpy(tok, p, len);
        tok[len] = 0;
        int block = -1;
        if ((tok[0] >= '0' && tok[0] <= '9') || tok[0] == '-' || tok[0] == '+') {
            char *e;
            long v = strtol(tok, &e, 10);
            if (*e) return cli_error("--delete-blocks: '%s' is neither a block index nor a block name", tok);
            if (v < 0 || v >= nb)
                return cli_error("--delete-blocks: block %s out of range: the network has %d blocks "
                                 "(0..%d)", tok, nb, nb - 1);
            block = (int)v;
        } else {
            rn_unit_info u;
            for (int i = 0; i < nb && block < 0; i++)
                if (!rn_net_unit(net, i + 1, &u) && !strcmp(u.name, tok)) block = i;
            if (block < 0) {
                rn_unit_info first, last;
                rn_net_unit(net, 1, &first);
                rn_net_unit(net, nb, &last);
                return cli_error("--delete-blocks: no block named '%s' (this network's are %s ... %s)",
                                 tok, nb ? first.name : "-", nb ? last.name : "-");
            }
        }
        if (rn_net_set_block_deleted(net, block, 1)) return cli_lib_error("--delete-blocks");
        if (!end) break;
        p = end + 1;
    }
    return 0;
}

/* The deleted blocks' names, comma-separated, into buf ("" when none). */
static void deleted_names(const rn_net *net, char *buf, size_t size)
{
    size_t len = 0;
    buf[0] = 0;
    for (int i = 0; i < rn_net_num_blocks(net) && len < size; i++) {
        rn_unit_info u;
        if (!rn_net_unit(net, i + 1, &u) && u.deleted)
            len += (size_t)snprintf(buf + len, size - len, "%s%s", len ? "," : "", u.name);
    }
}

static void print_json(const char *model, const rn_net *net, const char *data, const char *split,
                       int tta, const rn_eval_result *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "model", model);
    cJSON_AddStringToObject(o, "arch", rn_net_arch(net));
    char deleted[4096];
    deleted_names(net, deleted, sizeof deleted);
    if (deleted[0]) cJSON_AddStringToObject(o, "deleted_blocks", deleted);
    cJSON_AddStringToObject(o, "data", data);
    cJSON_AddStringToObject(o, "split", split);
    cJSON_AddStringToObject(o, "tta", rn_tta_name(tta));
    cJSON_AddNumberToObject(o, "views", rn_tta_views(tta));
    cJSON_AddNumberToObject(o, "images", r->n);
    cJSON_AddNumberToObject(o, "accuracy", r->n ? (double)r->correct / r->n : 0.0);
    cJSON_AddNumberToObject(o, "error", r->n ? 1.0 - (double)r->correct / r->n : 0.0);
    cJSON_AddNumberToObject(o, "loss", r->loss);
    cJSON *pc = cJSON_AddArrayToObject(o, "per_class");
    cJSON *cm = cJSON_AddArrayToObject(o, "confusion");
    for (int k = 0; k < r->classes; k++) {
        long count = 0;
        cJSON *row = cJSON_CreateArray();
        for (int j = 0; j < r->classes; j++) {
            long v = r->confusion[(size_t)k * r->classes + j];
            count += v;
            cJSON_AddItemToArray(row, cJSON_CreateNumber((double)v));
        }
        cJSON_AddItemToArray(cm, row);
        cJSON *c = cJSON_CreateObject();
        cJSON_AddNumberToObject(c, "class", k);
        if (rn_net_label(net, k)) cJSON_AddStringToObject(c, "label", rn_net_label(net, k));
        cJSON_AddNumberToObject(c, "images", (double)count);
        cJSON_AddNumberToObject(c, "accuracy",
                                count ? (double)r->confusion[(size_t)k * r->classes + k] / count : 0.0);
        cJSON_AddItemToArray(pc, c);
    }
    char *text = cJSON_Print(o);
    if (text) puts(text);
    free(text);
    cJSON_Delete(o);
}

static void print_table(const char *model, const rn_net *net, const char *data, const char *split,
                        int tta, const rn_eval_result *r)
{
    printf("%s (%s) on %s %s: %d images", model, rn_net_arch(net), data, split, r->n);
    if (tta) printf(", test-time augmentation %s (%d views)", rn_tta_name(tta), rn_tta_views(tta));
    char deleted[4096];
    deleted_names(net, deleted, sizeof deleted);
    if (deleted[0]) printf(", blocks deleted: %s", deleted);
    printf("\n");
    printf("accuracy %.2f%%  error %.2f%%  loss %.4f\n", r->n ? 100.0 * r->correct / r->n : 0.0,
           r->n ? 100.0 - 100.0 * r->correct / r->n : 0.0, r->loss);
    printf("\nper class:\n");
    for (int k = 0; k < r->classes; k++) {
        long count = 0;
        for (int j = 0; j < r->classes; j++) count += r->confusion[(size_t)k * r->classes + j];
        const char *label = rn_net_label(net, k);
        printf("  %3d  %-20s %7.2f%%  (%ld images)\n", k, label ? label : "",
               count ? 100.0 * r->confusion[(size_t)k * r->classes + k] / count : 0.0, count);
    }
    if (r->classes > 20) {
        printf("\n(confusion matrix of %d classes: see --json)\n", r->classes);
        return;
    }
    printf("\nconfusion matrix (rows: true class, columns: predicted class):\n     ");
    for (int j = 0; j < r->classes; j++) printf(" %5d", j);
    printf("\n");
    for (int k = 0; k < r->classes; k++) {
        printf("  %3d", k);
        for (int j = 0; j < r->classes; j++) printf(" %5ld", r->confusion[(size_t)k * r->classes + j]);
        printf("\n");
    }
}

int cmd_eval(int argc, char **argv)
{
    cli_net_args na;
    cli_net_args_init(&na);
    rn_data_kind kind = RN_DATA_FASHION_MNIST;
    const char *dir = NULL, *delete_list = NULL;
    int split_arg = RN_SPLIT_TEST, subset = 0, batch = 128, threads = 0, val = 0, json = 0, tta = 0;
    const cli_opt opts[] = {
        {"--data", "KIND", CLI_CUSTOM, &kind, 0, 0, cli_set_data_kind,
         "fashion-mnist (default) | mnist | cifar10 | cifar100 | folder", NULL},
        {"--data-dir", "DIR", CLI_TEXT, &dir, 0, 0, NULL,
         "where the files are (see resnet train --help); a folder data set is read with the "
         "model's label names and input size", NULL},
        {"--split", "S", CLI_CUSTOM, &split_arg, 0, 0, set_split,
         "test (default), train, or val: the validation split that resnet train --val N --seed S "
         "held out of the training set (give the same N and S)", NULL},
        {"--val", "N", CLI_INT, &val, 1, 100000000, NULL,
         "with --split val: the run's --val (and --seed S, default 1, the run's seed)", NULL},
        {"--subset", "N", CLI_INT, &subset, 1, 100000000, NULL,
         "only the first N images (with --split val: the first N training images before the "
         "split, as resnet train --subset)", NULL},
        {"--tta", "VIEWS", CLI_CUSTOM, &tta, 0, 0, cli_set_tta,
         "test-time augmentation: each prediction the mean class probabilities over views of the "
         "image: none (default), flip (+ mirror image), shift (+ moved by one pixel each way), "
         "flip,shift (10 views); for models trained with --flip and --crop-pad", NULL},
        {"--delete-blocks", "LIST", CLI_TEXT, &delete_list, 0, 0, NULL,
         "a lesion: evaluate with these blocks deleted (each passes its shortcut only), LIST "
         "comma-separated block indices from 0 or names such as layer2.3 (stage 2, block 3 from "
         "0); a plain block that changes the shape cannot be deleted", NULL},
        {"--batch", "N", CLI_INT, &batch, 1, 65536, NULL, "images per forward (default 128)", NULL},
        {"--threads", "T", CLI_INT, &threads, 1, 1024, NULL,
         "OpenMP threads (default: as the environment sets them)", NULL},
        {"--json", NULL, CLI_FLAG, &json, 0, 0, NULL,
         "one JSON object (with the full confusion matrix) instead of the table", NULL},
        {NULL, NULL, CLI_FLAG, NULL, 0, 0, NULL, NULL, NULL},
    };
    const cli_verb verb = {
        .usage = usage_text, .opts = opts, .net = &na,
        .net_help = "  --arch/--weights      a torchvision state_dict instead of --model (see resnet --help)\n"};
    int parsed = cli_parse(&verb, argc, argv);
    if (parsed) return parsed < 0 ? 0 : parsed;
    const int val_split = split_arg < 0;
    const rn_split split = val_split ? RN_SPLIT_TRAIN : (rn_split)split_arg;
    if (!na.model && !na.weights) return cli_error("eval: which model? give --model FILE") + 1;
    if (val_split != (val > 0))
        return cli_error(val_split ? "--split val needs --val N (the run's --val)"
                                   : "--val is for --split val") + 1;
    if (threads) {
        omp_set_num_threads((int)threads);
    }
    rn_net *net;
    if (cli_open_frozen_net(&na, &net)) return 1;
    if (delete_list && delete_blocks(net, delete_list)) {
        rn_net_free(net);
        return 1;
    }
    rn_dataset *data = NULL;
    if (val_split ? load_val_split(&data, net, kind, dir, val, na.opt.seed, subset)
                  : load_eval_data(&data, net, kind, dir, split)) {
        rn_net_free(net);
        return 1;
    }
    int rc = 0;
    if (!val_split && subset && subset < data->n) {
        rn_dataset *sub;
        if (rn_dataset_subset(&sub, data, 0, (int)subset)) rc = cli_lib_error(NULL);
        else {
            rn_dataset_free(data);
            data = sub;
        }
    }
    const char *what = dir ? dir : rn_data_kind_name(kind);
    char context[4200];
    snprintf(context, sizeof context, "%s does not fit the data", na.model ? na.model : na.weights);
    if (!rc && rn_check_data_fits(net, data, what)) rc = cli_lib_error(context);
    rn_eval_result r;
    if (!rc && rn_evaluate_tta(net, data, (int)batch, tta, 1, &r)) rc = cli_lib_error("eval");
    if (!rc) {
        const char *model = na.model ? na.model : na.weights;
        const char *sname = val_split ? "val" : split == RN_SPLIT_TEST ? "test" : "train";
        if (json) print_json(model, net, rn_data_kind_name(kind), sname, tta, &r);
        else print_table(model, net, rn_data_kind_name(kind), sname, tta, &r);
        rn_eval_result_free(&r);
    }
    rn_dataset_free(data);
    rn_net_free(net);
    return rc;
}
