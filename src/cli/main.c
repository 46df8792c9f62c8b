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
          "network options (info, init, forward, bench, export):\n"
          "  --arch NAME             resnet20..1202, plain20..110, highway20..110, preresnet110/164/1001,\n"
          "                          resnet18..152, plain18/34, wrn-D-K (e.g. wrn-16-4);\n"
          "                          CIFAR-style variants resnetD-wW (W/2W/4W channels) and\n"
          "                          resnetD[-wW]-s2 (stride-2 stem), e.g. resnet8-w32-s2\n"
          "  --model FILE            a file written by resnet.c (carries its architecture)\n"
          "  --weights FILE          a torchvision-style state_dict file (needs --arch)\n"
          "  --ordering O            original | bn-after-add | relu-before-add | relu-preact | full-preact\n"
          "  --shortcut A|B|C        zero-padded identity | projection where needed | always projection\n"
          "  --classes K             number of classes\n"
          "  --input-shape CxHxW     input shape (info also accepts --input CxHxW)\n"
          "  --zero-init-last-bn     start every residual branch at zero\n"
          "  --gate-bias B           initial highway gate bias (default -2)\n"
          "  --stochastic-depth P    survival probability of the last block (linear rule)\n"
          "  --seed S                initialisation seed (default 1)\n"
          "\n"
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
    fprintf(stderr, "resnet: unknown verb '%s'\n\n", verb);
    return usage(stderr);
}
