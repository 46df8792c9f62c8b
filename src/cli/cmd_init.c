/* resnet init: a freshly initialised network, saved as safetensors. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

int cmd_init(int argc, char **argv)
{
    cli_net_args a;
    cli_net_args_init(&a);
    const char *output = NULL;
    const cli_opt opts[] = {
        {"--output", "FILE.safetensors", CLI_TEXT, &output, 0, 0, NULL, "where to write it", NULL},
        {NULL, NULL, CLI_FLAG, NULL, 0, 0, NULL, NULL, NULL},
    };
    const cli_verb verb = {
        .usage = "usage: resnet init --arch NAME [network options] [--seed S] --output FILE.safetensors\n"
                 "Writes a freshly initialised network (the weights --seed draws) to a file.\n",
        .opts = opts, .net = &a};
    int r = cli_parse(&verb, argc, argv);
    if (r) return r < 0 ? 0 : r;
    if (!output) return cli_error("init: give --output FILE.safetensors") + 1;
    if (a.model || a.weights) return cli_error("init: builds from --arch; --model/--weights do not apply") + 1;
    rn_net *net;
    if (cli_open_net(&a, &net)) return 1;
    int rc = 0;
    if (rn_net_save(net, output)) rc = cli_lib_error(output);
    else printf("wrote %s: %s, %zu parameters\n", output, rn_net_arch(net), rn_net_num_params(net));
    rn_net_free(net);
    return rc;
}
