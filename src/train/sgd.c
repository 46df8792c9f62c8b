/* SGD with momentum and weight decay, exactly torch.optim.SGD's update, as one flat loop over
 * the network's parameter arena (one loop per run of parameters that share a weight decay). */
#include <math.h>
#include <stdlib.h>

#include "core/error.h"
#include "kernels/kernels.h"
#include "resnet.h"

typedef struct {
    size_t begin, end; /* [begin, end) of the parameter arena */
    float weight_decay;
} sgd_range;

struct rn_sgd {
    size_t n;
    float momentum, weight_decay;
    int nesterov;
    int started; /* torch initialises the momentum buffer with the first gradient */
    float *buf;
    sgd_range *ranges; /* cover [0, n) in order */
    int n_ranges;
};

int rn_sgd_create(rn_sgd **out, const rn_net *net, float momentum, float weight_decay, int nesterov)
{
    *out = NULL;
    if (!(momentum >= 0.0f && momentum < 1.0f) || !(weight_decay >= 0.0f))
        return rn_fail(RN_ERR_ARG, "SGD needs 0 <= momentum < 1 and weight decay >= 0 (got %g, %g)",
                       (double)momentum, (double)weight_decay);
    if (nesterov && momentum == 0.0f)
        return rn_fail(RN_ERR_ARG, "Nesterov momentum needs a momentum > 0");
    rn_sgd *o = calloc(1, sizeof *o);
    size_t n = rn_net_num_params(net);
    if (o) o->buf = calloc(n ? n : 1, sizeof(float));
    if (o) o->ranges = malloc(sizeof *o->ranges);
    if (!o || !o->buf || !o->ranges) {
        if (o) {
            free(o->buf);
            free(o->ranges);
        }
        free(o);
        return rn_fail(RN_ERR_NOMEM, "out of memory for SGD momentum (%zu floats)", n);
    }
    o->n = n;
    o->momentum = momentum;
    o->weight_decay = weight_decay;
    o->nesterov = nesterov;
    o->ranges[0] = (sgd_range){0, n, weight_decay};
    o->n_ranges = 1;
    *out = o;
    return RN_OK;
}

void rn_sgd_free(rn_sgd *opt)
{
    if (!opt) return;
    free(opt->buf);
    free(opt->ranges);
    free(opt);
}

int rn_sgd_set_decay_1d(rn_sgd *opt, const rn_net *net, int decay)
{
    if (rn_net_num_params(net) != opt->n)
        return rn_fail(RN_ERR_ARG, "this optimizer was created for another network");
    /* One weight decay per parameter, then runs of equal values. The parameter views tile the
     * arena; anything not covered by a view (there should be nothing) keeps the decay. */
    float *wd = malloc((opt->n ? opt->n : 1) * sizeof *wd);
    if (!wd) return rn_fail(RN_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < opt->n; i++) wd[i] = opt->weight_decay;
    const float *base = rn_net_params((rn_net *)net);
    for (int t = 0; !decay && t < rn_net_num_tensors(net); t++) {
        rn_tensor_info info;
        rn_net_tensor(net, t, &info);
        if (info.kind != RN_TENSOR_PARAM || info.ndim > 1) continue;
        size_t off = (size_t)(info.data - base);
        for (size_t i = 0; i < info.numel; i++) wd[off + i] = 0.0f;
    }
    int runs = 0;
    for (size_t i = 0; i < opt->n; i++)
        if (i == 0 || wd[i] != wd[i - 1]) runs++;
    sgd_range *r = malloc((runs ? (size_t)runs : 1) * sizeof *r);
    if (!r) {
        free(wd);
        return rn_fail(RN_ERR_NOMEM, "out of memory");
    }
    int k = -1;
    for (size_t i = 0; i < opt->n; i++) {
        if (i == 0 || wd[i] != wd[i - 1]) r[++k] = (sgd_range){i, i, wd[i]};
        r[k].end = i + 1;
    }
    free(wd);
    free(opt->ranges);
    opt->ranges = r;
    opt->n_ranges = runs;
    return RN_OK;
}

int rn_sgd_step(rn_sgd *opt, rn_net *net, float lr)
{
    if (rn_net_num_params(net) != opt->n)
        return rn_fail(RN_ERR_ARG, "this optimizer was created for another network");
    if (rn_net_frozen(net))
        return rn_fail(RN_ERR_ARG,
                       "a network frozen for inference (rn_net_freeze) cannot be trained");
    float *p = rn_net_params(net);
    const float *g = rn_net_grads(net);
    const float mu = opt->momentum;
    for (int r = 0; r < opt->n_ranges; r++) {
        const size_t b = opt->ranges[r].begin;
        rn_sgd_update(p + b, g + b, opt->buf + b, opt->ranges[r].end - b, lr,
                      opt->ranges[r].weight_decay, mu, opt->started, opt->nesterov);
    }
    opt->started = 1;
    return RN_OK;
}

double rn_net_clip_grad_norm(rn_net *net, float max_norm)
{
    float *g = rn_net_grads(net);
    const size_t n = rn_net_num_params(net);
    /* in double and in order: the same bits for any thread count */
    double sq = 0.0;
    for (size_t i = 0; i < n; i++) sq += (double)g[i] * g[i];
    const double norm = sqrt(sq);
    const float coef = (float)(max_norm / (norm + 1e-6));
    if (max_norm > 0 && coef < 1.0f)
        for (size_t i = 0; i < n; i++) g[i] *= coef;
    return norm;
}

float *rn_sgd_momentum_buffer(rn_sgd *opt, size_t *count)
{
    if (count) *count = opt->n;
    return opt->buf;
}

int rn_sgd_started(const rn_sgd *opt) { return opt->started; }
void rn_sgd_set_started(rn_sgd *opt, int started) { opt->started = started != 0; }
