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
    "Output 'logits': [N, classes], before softmax.\n"
    "  --output FILE     the .onnx file (written atomically)\n"
    "  --opset N         ONNX opset, 11 to 17 (default 13)\n"
    "  --batch B         dynamic (default: a symbolic batch dimension N) or a fixed batch size\n";

static int parse_batch(const char *v, long *batch)
{
    if (!strcmp(v, "dynamic")) {
        *batch = 0;
        return 0;
    }
    return cli_parse_int("--batch", v, 1, RN_ONNX_MAX_BATCH, batch);
}

int cmd_export(int argc, char **argv)
{
    cli_net_args a;
    cli_net_args_init(&a);
    const char *output = NULL, *v;
    long opset = RN_ONNX_OPSET_DEFAULT, batch = 0;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        if (!strcmp(o, "--help") || !strcmp(o, "-h")) {
            fputs(usage_text, stdout);
            return 0;
        }
        int r = cli_net_arg(&a, argc, argv, &i);
        if (r < 0) return 2;
        if (r) continue;
        if (!strcmp(o, "--output")) {
            if (!(output = cli_value(argc, argv, &i))) return 2;
        } else if (!strcmp(o, "--opset")) {
            if (!(v = cli_value(argc, argv, &i)) ||
                cli_parse_int(o, v, RN_ONNX_OPSET_MIN, RN_ONNX_OPSET_MAX, &opset))
                return 2;
        } else if (!strcmp(o, "--batch")) {
            if (!(v = cli_value(argc, argv, &i)) || parse_batch(v, &batch)) return 2;
        } else return cli_error("export: unknown option '%s' (see resnet export --help)", o) + 1;
    }
    if (!output) return cli_error("export: give --output FILE.onnx") + 1;
    rn_net *net;
    if (cli_open_net(&a, &net)) return 1;
    int rc = 0;
    if (rn_net_export_onnx(net, output, (int)opset, (int)batch)) rc = cli_lib_error(NULL);
    else {
        rn_net_options o;
        rn_net_get_options(net, &o);
        char n[24] = "N";
        if (batch) snprintf(n, sizeof n, "%ld", batch);
        printf("wrote %s: %s, opset %ld, input [%s, %d, %d, %d], %d classes\n", output,
               rn_net_arch(net), opset, n, o.in_c, o.in_h, o.in_w, o.classes);
    }
    rn_net_free(net);
    return rc;
}
