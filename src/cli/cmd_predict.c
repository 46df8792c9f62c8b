/* resnet predict: the top classes of image files, with probabilities and label names. */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "train/dataset.h"
#include "train/tta.h"

int cmd_predict(int argc, char **argv)
{
    cli_net_args na;
    cli_net_args_init(&na);
    int top = 5, json = 0, n_images = 0, tta = 0;
    const char **images = calloc((size_t)argc, sizeof *images);
    if (!images) return cli_error("out of memory");
    const cli_opt opts[] = {
        {"--top", "K", CLI_INT, &top, 1, 100000, NULL,
         "the K most probable classes (default 5, at most the number of classes)", NULL},
        {"--tta", "VIEWS", CLI_CUSTOM, &tta, 0, 0, cli_set_tta,
         "test-time augmentation: the mean probabilities over views of the image: none "
         "(default), flip, shift or flip,shift (see resnet eval --help)", NULL},
        {"--json", NULL, CLI_FLAG, &json, 0, 0, NULL,
         "a JSON array: per image its file and the top classes with probabilities", NULL},
        {NULL, NULL, CLI_FLAG, NULL, 0, 0, NULL, NULL, NULL},
    };
    const cli_verb verb = {
        .usage = "usage: resnet predict --model FILE IMAGE... [--top K] [--tta VIEWS] [--json]\n"
                 "Classifies image files (PNG, JPEG, binary PGM/PPM): each is decoded, converted to the\n"
                 "model's channels, resized to its input size (as the folder data set does), normalised with\n"
                 "the model's stored mean and std, and run in evaluation mode.\n",
        .opts = opts, .net = &na, .args = images, .max_args = argc, .n_args = &n_images};
    int r = cli_parse(&verb, argc, argv);
    if (r) {
        free(images);
        return r < 0 ? 0 : r;
    }
    if (!na.model && !na.weights) {
        free(images);
        return cli_error("predict: which model? give --model FILE") + 1;
    }
    if (!n_images) {
        free(images);
        return cli_error("predict: no image files given") + 1;
    }
    rn_net *net;
    if (cli_open_frozen_net(&na, &net)) {
        free(images);
        return 1;
    }
    rn_net_options o;
    rn_net_get_options(net, &o);
    const int k = o.classes;
    if (top > k) top = k;
    const size_t per = (size_t)o.in_c * o.in_h * o.in_w;
    float mean[RN_MAX_INPUT_CHANNELS] = {0}, std[RN_MAX_INPUT_CHANNELS];
    for (int c = 0; c < RN_MAX_INPUT_CHANNELS; c++) std[c] = 1.0f;
    rn_net_get_normalization(net, mean, std);
    uint8_t *pix = malloc(per);
    float *x = malloc(per * sizeof *x);
    double *prob = malloc((size_t)k * sizeof *prob);
    int *order = malloc((size_t)k * sizeof *order);
    int rc = 0;
    if (!pix || !x || !prob || !order) rc = cli_error("out of memory");
    cJSON *all = json ? cJSON_CreateArray() : NULL;
    for (int i = 0; !rc && i < n_images; i++) {
        if (rn_image_load(images[i], o.in_c, o.in_h, o.in_w, pix)) {
            rc = cli_lib_error(NULL);
            break;
        }
        const size_t plane = (size_t)o.in_h * o.in_w;
        for (size_t j = 0; j < per; j++) {
            int c = (int)(j / plane);
            x[j] = ((float)pix[j] / 255.0f - mean[c]) / std[c];
        }
        if (rn_tta_probs(net, x, 1, tta, prob)) {
            rc = cli_lib_error(images[i]);
            break;
        }
        for (int j = 0; j < k; j++) order[j] = j;
        /* the top classes by selection, ties to the lower index */
        for (int a = 0; a < top; a++) {
            int best = a;
            for (int b = a + 1; b < k; b++)
                if (prob[order[b]] > prob[order[best]]) best = b;
            int tmp = order[a];
            order[a] = order[best];
            order[best] = tmp;
        }
        if (json) {
            cJSON *item = cJSON_CreateObject(), *arr = cJSON_CreateArray();
            cJSON_AddStringToObject(item, "image", images[i]);
            for (int a = 0; a < top; a++) {
                cJSON *c = cJSON_CreateObject();
                cJSON_AddNumberToObject(c, "class", order[a]);
                if (rn_net_label(net, order[a])) cJSON_AddStringToObject(c, "label", rn_net_label(net, order[a]));
                cJSON_AddNumberToObject(c, "probability", prob[order[a]]);
                cJSON_AddItemToArray(arr, c);
            }
            cJSON_AddItemToObject(item, "top", arr);
            cJSON_AddItemToArray(all, item);
        } else {
            printf("%s\n", images[i]);
            for (int a = 0; a < top; a++) {
                const char *label = rn_net_label(net, order[a]);
                printf("  %2d. %-20s %8.4f  (class %d)\n", a + 1, label ? label : "", prob[order[a]],
                       order[a]);
            }
        }
    }
    if (!rc && all) {
        char *text = cJSON_Print(all);
        if (text) puts(text);
        free(text);
    }
    cJSON_Delete(all);
    free(pix);
    free(x);
    free(prob);
    free(order);
    free(images);
    rn_net_free(net);
    return rc;
}
