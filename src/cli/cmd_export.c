/* resnet export: a network as an ONNX model, for ONNX Runtime, TensorRT, OpenVINO or a browser. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static const char usage_text[] =
    "usage: resnet export (--model FILE | --arch NAME [--weights FILE]) [network options]\n"
    "                     --output M.onnx [--opset N] [--batch dynamic|N]\n"
    "Writes the network's evaluation forward as an ONNX model: Conv, BatchNormalization (running\n"
    "statistics), Relu, MaxPool, Add, GlobalAveragePool, Flatten, Gemm; Slice and Pad for\n"
    "shortcut A, Sigmoid/Sub/Mul for highway gates, Mul by the survival probability for\n"
    "stochastic depth. Weights keep their torchvision names.\n"
    "Input 'input': float32 [N, C, H, W], normalised as in training:\n"
    "x = (pixel / 255 - mean) / std per channel, with the model's mean and std (stored in the\n"
    "ONNX metadata as normalize_mean and normalize_std, beside arch, ordering, classes, input\n"
    "and labels).\n"
    "Output 'logits': [N, classes], before softmax.\n";

static int set_batch(void *target, const char *option, const char *value)
{
    if (!strcmp(value, "dynamic")) {
        *(int *)target = 0;
        return 0;
    }
    const cli_opt fixed = {option, "N", CLI_INT, target, 1, RN_ONNX_MAX_BATCH, NULL, NULL, NULL};
    return cli_set(&fixed, value);
}

int cmd_export(int argc, char **argv)
{
    cli_net_args a;
    cli_net_args_init(&a);
    const char *output = NULL;
    int opset = RN_ONNX_OPSET_DEFAULT, batch = 0;
    const cli_opt opts[] = {
        {"--output", "FILE", CLI_TEXT, &output, 0, 0, NULL, "the .onnx file (written atomically)", NULL},
        {"--opset", "N", CLI_INT, &opset, RN_ONNX_OPSET_MIN, RN_ONNX_OPSET_MAX, NULL,
         "ONNX opset, 11 to 17 (default 13)", NULL},
        {"--batch", "B", CLI_CUSTOM, &batch, 0, 0, set_batch,
         "dynamic (default: a symbolic batch dimension N) or a fixed batch size", NULL},
        {NULL, NULL, CLI_FLAG, NULL, 0, 0, NULL, NULL, NULL},
    };
    const cli_verb verb = {.usage = usage_text, .opts = opts, .net = &a};
    int r = cli_parse(&verb, argc, argv);
    if (r) return r < 0 ? 0 : r;
    if (!output) return cli_error("export: give --output FILE.onnx") + 1;
    rn_net *net;
    if (cli_open_net(&a, &net)) return 1;
    int rc = 0;
    if (rn_net_export_onnx(net, output, opset, batch)) rc = cli_lib_error(NULL);
    else {
        rn_net_options o;
        rn_net_get_options(net, &o);
        char n[24] = "N";
        if (batch) snprintf(n, sizeof n, "%d", batch);
        printf("wrote %s: %s, opset %d, input [%s, %d, %d, %d], %d classes\n", output,
               rn_net_arch(net), opset, n, o.in_c, o.in_h, o.in_w, o.classes);
    }
    rn_net_free(net);
    return rc;
}
