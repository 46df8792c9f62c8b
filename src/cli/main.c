/* resnet: the command-line tool. One verb per file. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static int usage(FILE *out)
{
    fputs("usage: resnet <verb> [options]\n"
          "\n"
          "verbs:\n"
          "  info     summary of a network: per-stage shapes, parameters, multiply-adds\n"
          "  init     write a freshly initialised network to a safetensors file\n"
          "  forward  run inference on a tensor file and write the logits\n"
          "  bench    time a training step or inference of a network on random data\n"
          "  train    train a network on a data set (default: resnet8-w32-s2 on Fashion-MNIST),\n"
          "           with checkpoints, resume (--resume RUN_DIR) and metrics\n"
          "  eval     accuracy, loss, per-class accuracy and confusion matrix of a model on a data set\n"
          "  predict  the top classes of image files, with probabilities and label names\n"
          "  experiment  why residual blocks work: one claim per experiment, trained and measured\n"
          "           on real data, with plots (resnet experiment --help lists them)\n"
          "  plot     training curves (loss and error per epoch) of one or more runs, as PNG and SVG\n"
          "  export   the network as an ONNX model (for ONNX Runtime, TensorRT, OpenVINO, browsers)\n"
          "\n"
          "network options (info, init, forward, bench, eval, predict, export):\n",
          out);
    cli_net_args a;
    cli_net_args_init(&a);
    cli_print_options(out, cli_net_opts(&a));
    fputs("\n"
          "run 'resnet <verb> --help' for a verb's own options.\n",
          out);
    return out == stderr ? 2 : 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) return usage(stderr);
    const char *verb = argv[1];
    if (!strcmp(verb, "-h") || !strcmp(verb, "--help") || !strcmp(verb, "help")) return usage(stdout);
    if (!strcmp(verb, "info")) return cmd_info(argc - 1, argv + 1);
    if (!strcmp(verb, "init")) return cmd_init(argc - 1, argv + 1);
    if (!strcmp(verb, "forward")) return cmd_forward(argc - 1, argv + 1);
    if (!strcmp(verb, "bench")) return cmd_bench(argc - 1, argv + 1);
    if (!strcmp(verb, "train")) return cmd_train(argc - 1, argv + 1);
    if (!strcmp(verb, "eval")) return cmd_eval(argc - 1, argv + 1);
    if (!strcmp(verb, "predict")) return cmd_predict(argc - 1, argv + 1);
    if (!strcmp(verb, "experiment")) return cmd_experiment(argc - 1, argv + 1);
    if (!strcmp(verb, "plot")) return cmd_plot(argc - 1, argv + 1);
    if (!strcmp(verb, "export")) return cmd_export(argc - 1, argv + 1);
    fprintf(stderr, "resnet: unknown verb '%s' (resnet --help lists them)\n", verb);
    return 2;
}
