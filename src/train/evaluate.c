/* Evaluation of a network on a data set (see evaluate.h). */
#include "train/evaluate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "kernels/kernels.h"
#include "train/loader.h"
#include "train/tta.h"

int rn_check_data_fits(const rn_net *net, const rn_dataset *data, const char *what)
{
    rn_net_options o;
    rn_net_get_options(net, &o);
    if (!what) what = data->source ? data->source : "the data set";
    if (data->c != o.in_c || data->h != o.in_h || data->w != o.in_w)
        return rn_fail(RN_ERR_MISMATCH, "%s: images are %dx%dx%d but the model takes %dx%dx%d", what,
                       data->c, data->h, data->w, o.in_c, o.in_h, o.in_w);
    if (data->classes != o.classes)
        return rn_fail(RN_ERR_MISMATCH, "%s: %d classes but the model has %d", what, data->classes,
                       o.classes);
    return RN_OK;
}

void rn_eval_result_free(rn_eval_result *r)
{
    if (!r) return;
    free(r->confusion);
    r->confusion = NULL;
}

int rn_evaluate(rn_net *net, const rn_dataset *data, int batch, int confusion, rn_eval_result *out)
{
    return rn_evaluate_tta(net, data, batch, 0, confusion, out);
}

int rn_evaluate_tta(rn_net *net, const rn_dataset *data, int batch, int tta, int confusion,
                    rn_eval_result *out)
{
    memset(out, 0, sizeof *out);
    int st = rn_check_data_fits(net, data, NULL);
    if (st) return st;
    rn_net_options o;
    rn_net_get_options(net, &o);
    const int k = o.classes;
    float mean[RN_MAX_INPUT_CHANNELS], std[RN_MAX_INPUT_CHANNELS];
    int has_norm = rn_net_get_normalization(net, mean, std);

    rn_loader_options lo;
    rn_loader_options_init(&lo, 0);
    lo.batch = batch > 0 ? batch : 128;
    lo.prefetch = 1;
    lo.mean = has_norm ? mean : NULL;
    lo.std = has_norm ? std : NULL;
    rn_loader *loader = NULL;
    float *logits = malloc((size_t)lo.batch * (size_t)k * sizeof *logits);
    double *probs = tta ? malloc((size_t)lo.batch * (size_t)k * sizeof *probs) : NULL;
    if (confusion) out->confusion = calloc((size_t)k * (size_t)k, sizeof *out->confusion);
    if (!logits || (tta && !probs) || (confusion && !out->confusion)) {
        free(logits);
        free(probs);
        rn_eval_result_free(out);
        return rn_fail(RN_ERR_NOMEM, "out of memory for evaluation");
    }
    out->classes = k;
    st = rn_loader_create(&loader, data, &lo);
    if (!st) st = rn_loader_start(loader, 0, 0);
    double loss_sum = 0.0;
    while (!st) {
        rn_batch b;
        st = rn_loader_next(loader, &b);
        if (st || b.n == 0) break;
        if (tta) {
            /* the loss of the averaged probabilities */
            st = rn_tta_probs(net, b.x, b.n, tta, probs);
            if (st) break;
            for (int i = 0; i < b.n; i++)
                loss_sum -= log(fmax(probs[(size_t)i * k + b.labels[i]], 1e-300));
        } else {
            st = rn_net_forward(net, b.x, b.n, 0, logits);
            if (st) break;
            loss_sum += rn_softmax_xent(NULL, logits, b.labels, b.n, k, 0.0f) * b.n;
        }
        for (int i = 0; i < b.n; i++) {
            const float *z = logits + (size_t)i * k;
            const double *p = tta ? probs + (size_t)i * k : NULL;
            int best = 0;
            for (int j = 1; j < k; j++)
                if (p ? p[j] > p[best] : z[j] > z[best]) best = j;
            out->correct += best == b.labels[i];
            if (out->confusion) out->confusion[(size_t)b.labels[i] * k + best]++;
        }
        out->n += b.n;
    }
    rn_loader_free(loader);
    free(logits);
    free(probs);
    if (st) {
        rn_eval_result_free(out);
        return st;
    }
    out->loss = out->n ? loss_sum / out->n : 0.0;
    return RN_OK;
}
