/* resnet init: a freshly initialised network, saved as safetensors. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

int cmd_init(int argc, char **argv)
{
    cli_net_args a;
    cli_net_args_init(&a);
    const char *output = NULL;
    for (int i = 1; i < argc; i++) {
        int r = cli_net_arg(&a, argc, argv, &i);
        if (r < 0) return 2;
        if (r) continue;
        if (!strcmp(argv[i], "--output")) {
            if (!(output = cli_value(argc, argv, &i))) return 2;
        } else if (!strcmp(argv[i], "--help")) {
            puts("usage: resnet init --arch NAME [network options] [--seed S] --output FILE.safetensors");
            return 0;
        } else return cli_error("init: unknown option '%s'", argv[i]) + 1;
    }
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
