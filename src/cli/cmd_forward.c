/* resnet forward: tensor in, tensor out. Reads the tensor "input" [N, C, H, W] (float32) of a
 * safetensors file, runs the network in evaluation mode, writes "logits" [N, classes]. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/rng.h"

enum { CHUNK = 32 }; /* images per forward: bounds activation memory */

static int read_input(const char *path, float **x, int shape[4])
{
    int64_t dims[4];
    int ndim;
    if (rn_tensor_load(path, "input", x, dims, &ndim)) return cli_lib_error(NULL);
    int rc = 0;
    if (ndim != 4)
        rc = cli_error("%s: tensor 'input' must have 4 dimensions (N x C x H x W), not %d", path, ndim);
    for (int d = 0; !rc && d < 4; d++) {
        if (dims[d] < 1 || dims[d] > 1000000)
            rc = cli_error("%s: tensor 'input' has an empty or huge dimension %d (%lld)", path, d,
                           (long long)dims[d]);
        shape[d] = (int)dims[d];
    }
    if (rc) {
        free(*x);
        *x = NULL;
    }
    return rc;
}

int cmd_forward(int argc, char **argv)
{
    cli_net_args a;
    cli_net_args_init(&a);
    const char *input = NULL, *output = NULL;
    long random_n = 0;
    const cli_opt opts[] = {
        {"--input", "X.safetensors", CLI_TEXT, &input, 0, 0, NULL,
         "the images: tensor 'input' [N, C, H, W], float32 (its shape sets the network's input)", NULL},
        {"--random-input", "N", CLI_LONG, &random_n, 1, 4096, NULL,
         "N standard-normal images (drawn with --seed) instead of a file", NULL},
        {"--output", "Y.safetensors", CLI_TEXT, &output, 0, 0, NULL,
         "where to write tensor 'logits' [N, classes]", NULL},
        {NULL, NULL, CLI_FLAG, NULL, 0, 0, NULL, NULL, NULL},
    };
    const cli_verb verb = {
        .usage = "usage: resnet forward (--model FILE | --arch NAME [--weights FILE]) [network options]\n"
                 "                      (--input X.safetensors | --random-input N) [--output Y.safetensors]\n"
                 "Runs the network in evaluation mode on a tensor of images and writes the logits.\n",
        .opts = opts, .net = &a};
    int r = cli_parse(&verb, argc, argv);
    if (r) return r < 0 ? 0 : r;
    if (!input == !random_n) return cli_error("forward: give --input FILE or --random-input N") + 1;

    float *x = NULL;
    int shape[4];
    if (input) {
        if (read_input(input, &x, shape)) return 1;
        /* The tensor decides the input shape the network is built for. */
        a.opt.in_c = shape[1];
        a.opt.in_h = shape[2];
        a.opt.in_w = shape[3];
    }
    rn_net *net;
    if (cli_open_frozen_net(&a, &net)) {
        free(x);
        return 1;
    }
    rn_net_options o;
    rn_net_get_options(net, &o);
    if (!input) {
        shape[0] = (int)random_n, shape[1] = o.in_c, shape[2] = o.in_h, shape[3] = o.in_w;
        size_t len = (size_t)random_n * o.in_c * o.in_h * o.in_w;
        x = malloc(len * sizeof(float));
        if (!x) {
            rn_net_free(net);
            return cli_error("out of memory");
        }
        rn_rng rng;
        rn_rng_seed(&rng, o.seed ^ 0x5eed);
        for (size_t i = 0; i < len; i++) x[i] = rn_rng_normal(&rng);
    }
    int n = shape[0], k = o.classes, rc = 0;
    size_t per_image = (size_t)shape[1] * shape[2] * shape[3];
    float *logits = malloc((size_t)n * k * sizeof(float));
    if (!logits) rc = cli_error("out of memory");
    for (int i = 0; !rc && i < n; i += CHUNK) {
        int m = n - i < CHUNK ? n - i : CHUNK;
        if (rn_net_forward(net, x + (size_t)i * per_image, m, 0, logits + (size_t)i * k))
            rc = cli_lib_error("forward");
    }
    if (!rc) {
        for (int i = 0; i < n && i < 8; i++) {
            int best = 0;
            for (int j = 1; j < k; j++)
                if (logits[(size_t)i * k + j] > logits[(size_t)i * k + best]) best = j;
            const char *label = rn_net_label(net, best);
            printf("image %d: class %d%s%s%s (logit %.4f)\n", i, best, label ? " \"" : "",
                   label ? label : "", label ? "\"" : "", (double)logits[(size_t)i * k + best]);
        }
        if (n > 8) printf("... %d images in all\n", n);
    }
    if (!rc && output) {
        int64_t lshape[2] = {n, k};
        if (rn_tensor_save(output, "logits", logits, lshape, 2)) rc = cli_lib_error(output);
        else printf("wrote %s: logits [%d, %d]\n", output, n, k);
    }
    free(logits);
    free(x);
    rn_net_free(net);
    return rc;
}
