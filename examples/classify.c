/* Classify images with a saved network: the smallest complete use of libresnet.
 * usage: classify MODEL.safetensors INPUT.safetensors
 * INPUT holds a float32 tensor "input" [N, C, H, W], already normalised. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "resnet.h"

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s MODEL.safetensors INPUT.safetensors\n", argv[0]);
        return 2;
    }
    rn_net *net = NULL;
    float *x = NULL, *logits = NULL;
    int64_t shape[4];
    int ndim, rc = 1;
    if (rn_net_open(&net, argv[1], NULL, NULL) || rn_tensor_load(argv[2], "input", &x, shape, &ndim))
        goto fail;
    rn_net_options o;
    rn_net_get_options(net, &o);
    if (ndim != 4 || shape[1] != o.in_c || shape[2] != o.in_h || shape[3] != o.in_w) {
        fprintf(stderr, "%s: 'input' must be N x %d x %d x %d for this model\n", argv[2], o.in_c,
                o.in_h, o.in_w);
        goto done;
    }
    int n = (int)shape[0];
    logits = malloc((size_t)n * o.classes * sizeof(float));
    /* inference only: fold the batch norms into the convolutions and pack the weights once */
    if (!logits || rn_net_freeze(net, 1) || rn_net_forward(net, x, n, 0, logits)) goto fail;
    for (int i = 0; i < n; i++) {
        const float *z = logits + (size_t)i * o.classes;
        int best = 0;
        double sum = 0.0;
        for (int k = 1; k < o.classes; k++) best = z[k] > z[best] ? k : best;
        for (int k = 0; k < o.classes; k++) sum += exp((double)z[k] - z[best]);
        const char *label = rn_net_label(net, best);
        printf("image %d: class %d (%s), p = %.3f\n", i, best, label ? label : "no label", 1.0 / sum);
    }
    rc = 0;
    goto done;
fail:
    fprintf(stderr, "classify: %s\n", rn_last_error());
done:
    free(logits);
    free(x);
    rn_net_free(net);
    return rc;
}
