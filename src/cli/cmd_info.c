/* resnet info: what a network is made of, per stage. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

typedef struct {
    char name[32];
    int stage;
    int blocks;
    int c, h, w;
    size_t params;
    uint64_t macs;
} stage_row;

/* One row for the stem, one per stage of blocks, one for the head. */
static int collect(const rn_net *net, stage_row *rows, int max_rows)
{
    int n = 0, units = rn_net_num_units(net);
    for (int i = 0; i < units; i++) {
        rn_unit_info u;
        rn_net_unit(net, i, &u);
        int is_block = i > 0 && i < units - 1;
        if (n == 0 || u.stage != rows[n - 1].stage) {
            if (n == max_rows) break;
            memset(&rows[n], 0, sizeof rows[n]);
            rows[n].stage = u.stage;
            if (is_block) snprintf(rows[n].name, sizeof rows[n].name, "layer%d", u.stage);
            else snprintf(rows[n].name, sizeof rows[n].name, "%s", u.name);
            n++;
        }
        stage_row *r = &rows[n - 1];
        r->blocks += is_block;
        r->c = u.out_c;
        r->h = u.out_h;
        r->w = u.out_w;
        r->params += u.params;
        r->macs += u.macs;
    }
    return n;
}

static int print_json(const rn_net *net, const stage_row *rows, int n)
{
    rn_net_options o;
    rn_net_get_options(net, &o);
    cJSON *root = cJSON_CreateObject(), *stages = cJSON_CreateArray();
    cJSON_AddStringToObject(root, "arch", rn_net_arch(net));
    cJSON_AddStringToObject(root, "ordering", rn_ordering_name(o.ordering));
    cJSON_AddStringToObject(root, "shortcut", rn_shortcut_name(o.shortcut));
    cJSON_AddNumberToObject(root, "classes", o.classes);
    int shape[3] = {o.in_c, o.in_h, o.in_w};
    cJSON_AddItemToObject(root, "input", cJSON_CreateIntArray(shape, 3));
    cJSON_AddNumberToObject(root, "params", (double)rn_net_num_params(net));
    cJSON_AddNumberToObject(root, "macs", (double)rn_net_macs(net));
    cJSON_AddNumberToObject(root, "blocks", rn_net_num_blocks(net));
    for (int i = 0; i < n; i++) {
        cJSON *s = cJSON_CreateObject();
        int out[3] = {rows[i].c, rows[i].h, rows[i].w};
        cJSON_AddStringToObject(s, "name", rows[i].name);
        cJSON_AddNumberToObject(s, "blocks", rows[i].blocks);
        cJSON_AddItemToObject(s, "output", cJSON_CreateIntArray(out, 3));
        cJSON_AddNumberToObject(s, "params", (double)rows[i].params);
        cJSON_AddNumberToObject(s, "macs", (double)rows[i].macs);
        cJSON_AddItemToArray(stages, s);
    }
    cJSON_AddItemToObject(root, "stages", stages);
    char *text = cJSON_Print(root);
    int ok = text != NULL;
    if (ok) puts(text);
    free(text);
    cJSON_Delete(root);
    return ok ? 0 : cli_error("out of memory");
}

static void print_table(const rn_net *net, const stage_row *rows, int n)
{
    rn_net_options o;
    rn_net_get_options(net, &o);
    char p[32], m[32];
    printf("%s: %s blocks, shortcut %s, %d classes, input %dx%dx%d\n\n", rn_net_arch(net),
           rn_ordering_name(o.ordering), rn_shortcut_name(o.shortcut), o.classes, o.in_c, o.in_h,
           o.in_w);
    printf("%-8s %6s  %-14s %12s %16s\n", "stage", "blocks", "output", "params", "mult-adds");
    for (int i = 0; i < n; i++) {
        char shape[32];
        snprintf(shape, sizeof shape, "%dx%dx%d", rows[i].c, rows[i].h, rows[i].w);
        cli_thousands(p, sizeof p, rows[i].params);
        cli_thousands(m, sizeof m, rows[i].macs);
        printf("%-8s %6d  %-14s %12s %16s\n", rows[i].name, rows[i].blocks, shape, p, m);
    }
    cli_thousands(p, sizeof p, rn_net_num_params(net));
    cli_thousands(m, sizeof m, rn_net_macs(net));
    printf("%-8s %6d  %-14s %12s %16s\n", "total", rn_net_num_blocks(net), "", p, m);
    printf("\n%.2f M parameters, %.2f M multiply-adds per image (%.3f GFLOP forward)\n",
           rn_net_num_params(net) / 1e6, rn_net_macs(net) / 1e6, 2.0 * rn_net_macs(net) / 1e9);
}

int cmd_info(int argc, char **argv)
{
    cli_net_args a;
    cli_net_args_init(&a);
    int json = 0;
    const cli_opt opts[] = {
        {"--json", NULL, CLI_FLAG, &json, 0, 0, NULL, "one JSON object instead of the table", NULL},
        {NULL, NULL, CLI_FLAG, NULL, 0, 0, NULL, NULL, NULL},
    };
    const cli_verb verb = {
        .usage = "usage: resnet info (--arch NAME | --model FILE) [network options] [--json]\n"
                 "The network's stages: output shapes, blocks, parameters and multiply-adds.\n",
        .opts = opts, .net = &a};
    int r = cli_parse(&verb, argc, argv);
    if (r) return r < 0 ? 0 : r;
    rn_net *net;
    if (cli_open_net(&a, &net)) return 1;
    stage_row rows[16];
    int n = collect(net, rows, 16);
    int rc = 0;
    if (json) rc = print_json(net, rows, n);
    else print_table(net, rows, n);
    rn_net_free(net);
    return rc;
}
