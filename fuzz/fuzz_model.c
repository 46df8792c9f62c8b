/* libFuzzer harness: a model file (rn_net_open, src/nn/net_io.c) on any bytes: the safetensors
 * container, then the model metadata (arch, ordering, shortcut, stochastic_depth, classes,
 * input, normalize_mean/std, labels) or, without them, what the tensors tell (fc.weight,
 * conv1.weight), the network that metadata builds, and every tensor matched against it. A
 * network that opens runs one evaluation forward when it is small.
 * Seeds: fuzz/corpus/model (fuzz/make_corpus.sh). */
#include "fuzz_common.h"

#include "resnet.h"

/* Networks above these sizes open but skip the forward: the fuzzer is after the file's parsing,
 * not after timing a ResNet-152. */
#define FUZZ_MAX_MACS 20000000ull
#define FUZZ_MAX_INPUT 4096

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    rn_set_threads(1);
    return 0;
}

static void run_net(rn_net *net)
{
    rn_net_options o;
    rn_net_get_options(net, &o);
    for (int i = 0; rn_net_label(net, i); i++) (void)strlen(rn_net_label(net, i));
    float mean[16], std[16];
    (void)rn_net_get_normalization(net, mean, std);
    size_t in = (size_t)o.in_c * (size_t)o.in_h * (size_t)o.in_w;
    if (in > FUZZ_MAX_INPUT || rn_net_macs(net) > FUZZ_MAX_MACS) return;
    float *x = calloc(in, sizeof *x), *logits = calloc((size_t)o.classes, sizeof *logits);
    if (!x || !logits) abort();
    if (rn_net_forward(net, x, 1, 0, logits)) {
        fprintf(stderr, "fuzz: an opened network cannot run: %s\n", rn_last_error());
        abort();
    }
    free(x);
    free(logits);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_memfile(0, data, size);
    rn_net *net = NULL;
    if (rn_net_open(&net, path, NULL, NULL) == RN_OK) {
        run_net(net);
        rn_net_free(net);
    } else if (net) {
        abort(); /* a failed open hands out no network */
    }
    return 0;
}
