/* libFuzzer harness: the safetensors reader (src/io/safetensors.c) on any bytes: the header
 * length, the JSON header (dtypes, shapes, data_offsets, __metadata__), then every entry it
 * accepts is read back, the one-tensor reader (rn_tensor_load) is run on the first one, and the
 * whole file is loaded into a small network (rn_net_load: names, shapes, dtypes, normalisation
 * and labels), which then runs one forward. What the reader accepts must be readable: an
 * accepted entry that cannot be read is reported as a crash.
 * Seeds: fuzz/corpus/safetensors (fuzz/make_corpus.sh). */
#include "fuzz_common.h"

#include "io/safetensors.h"
#include "resnet.h"

/* The network every input is loaded into: small, so that the fuzzer's seeds (written by
 * `resnet init` with the same options) stay small and a forward costs little. */
#define FUZZ_ARCH "resnet8-w2"
#define FUZZ_CLASSES 10
#define FUZZ_C 1
#define FUZZ_H 8
#define FUZZ_W 8

static rn_net *g_net;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    rn_set_threads(1);
    rn_net_options o;
    rn_net_options_init(&o);
    o.classes = FUZZ_CLASSES, o.in_c = FUZZ_C, o.in_h = FUZZ_H, o.in_w = FUZZ_W;
    if (rn_net_create(&g_net, FUZZ_ARCH, &o)) {
        fprintf(stderr, "fuzz: %s\n", rn_last_error());
        abort();
    }
    return 0;
}

/* Reads every accepted entry; returns a copy of the first F32 entry's name (or NULL). */
static char *walk(const rn_st_file *f)
{
    char *first_f32 = NULL;
    for (int i = 0; i < rn_st_count(f); i++) {
        const rn_st_entry *e = rn_st_entry_at(f, i);
        if (rn_st_find(f, e->name) != e) abort(); /* names are unique once accepted */
        const unsigned char *bytes = rn_st_data(f, e);
        unsigned sum = 0;
        for (size_t k = 0; k < e->nbytes; k++) sum += bytes[k];
        (void)sum;
        int f32 = !strcmp(e->dtype, "F32"), i64 = !strcmp(e->dtype, "I64");
        if (!f32 && !i64) continue;
        void *dst = malloc(e->nbytes ? e->nbytes : 1);
        if (!dst) abort();
        int st = f32 ? rn_st_read_f32(f, e->name, dst, e->numel)
                     : rn_st_read_i64(f, e->name, dst, e->numel);
        if (st) {
            fprintf(stderr, "fuzz: accepted entry '%s' unreadable: %s\n", e->name, rn_last_error());
            abort();
        }
        free(dst);
        if (f32 && !first_f32) first_f32 = strdup(e->name);
    }
    static const char *const keys[] = {"format", "arch", "ordering", "shortcut", "classes",
                                       "input", "normalize_mean", "normalize_std", "labels"};
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        const char *v = rn_st_meta(f, keys[k]);
        if (v) (void)strlen(v);
    }
    return first_f32;
}

static void run_net(void)
{
    float x[FUZZ_C * FUZZ_H * FUZZ_W], logits[FUZZ_CLASSES], mean[16], std[16];
    for (size_t i = 0; i < sizeof x / sizeof x[0]; i++) x[i] = (float)(i % 7) * 0.25f - 0.5f;
    if (rn_net_forward(g_net, x, 1, 0, logits)) abort();
    for (int i = 0; rn_net_label(g_net, i); i++) (void)strlen(rn_net_label(g_net, i));
    (void)rn_net_get_normalization(g_net, mean, std);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_memfile(0, data, size);
    rn_st_file *f;
    char *name = NULL;
    if (rn_st_open(&f, path) == RN_OK) {
        name = walk(f);
        rn_st_close(f);
    }
    if (name) {
        float *t = NULL;
        int64_t shape[4];
        int ndim;
        if (rn_tensor_load(path, name, &t, shape, &ndim) == RN_OK && (ndim < 0 || ndim > 4)) abort();
        free(t);
        free(name);
    }
    if (rn_net_load(g_net, path) == RN_OK) run_net();
    return 0;
}
