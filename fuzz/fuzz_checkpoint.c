/* libFuzzer harness: checkpoints (src/train/checkpoint.c) on any bytes: the safetensors
 * container, the "checkpoint" metadata (version, config, state, metrics), the training
 * configuration inside it (rn_train_config_from_json), and the tensors and momentum buffer
 * loaded into a small network and its optimizer. A configuration that is read and passes
 * rn_train_config_check must also survive a write and a second read unchanged.
 * Seeds: fuzz/corpus/checkpoint (fuzz/make_corpus.sh). */
#include "fuzz_common.h"

#include "resnet.h"
#include "train/checkpoint.h"
#include "train/trainer.h"

/* The network the seeds were written from (fuzz/make_corpus.sh). */
#define FUZZ_ARCH "resnet8-w2"

static rn_net *g_net;
static rn_sgd *g_sgd;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    rn_set_threads(1);
    rn_net_options o;
    rn_net_options_init(&o);
    o.classes = 10, o.in_c = 1, o.in_h = 8, o.in_w = 8;
    if (rn_net_create(&g_net, FUZZ_ARCH, &o) || rn_sgd_create(&g_sgd, g_net, 0.9f, 5e-4f, 0)) {
        fprintf(stderr, "fuzz: %s\n", rn_last_error());
        abort();
    }
    return 0;
}

/* A configuration that reads and checks writes out and reads back as itself. */
static void config_round_trip(const rn_train_config *cfg)
{
    if (rn_train_config_check(cfg)) return;
    char *a = rn_train_config_to_json(cfg);
    if (!a) abort();
    rn_train_config again;
    rn_train_config_init(&again);
    if (rn_train_config_from_json(&again, a)) {
        fprintf(stderr, "fuzz: a checked configuration does not read back: %s\n%s\n",
                rn_last_error(), a);
        abort();
    }
    char *b = rn_train_config_to_json(&again);
    if (!b || strcmp(a, b)) {
        fprintf(stderr, "fuzz: configuration changed on a round trip:\n%s\n%s\n", a, b ? b : "");
        abort();
    }
    free(a);
    free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_memfile(0, data, size);
    rn_train_config cfg;
    rn_train_config_init(&cfg);
    int epoch, batch;
    long step;
    if (rn_checkpoint_read_config(path, &cfg, &epoch, &batch, &step) == RN_OK)
        config_round_trip(&cfg);
    rn_train_state state;
    char *metrics = NULL;
    if (rn_checkpoint_load(path, g_net, g_sgd, &state, &metrics) == RN_OK && metrics)
        (void)strlen(metrics);
    free(metrics);
    return 0;
}
