/* SGD with momentum and weight decay, exactly torch.optim.SGD's update, as one flat loop over
 * the network's parameter arena. */
#include <stdlib.h>

#include "core/error.h"
#include "resnet.h"

struct rn_sgd {
    size_t n;
    float momentum, weight_decay;
    int nesterov;
    int started; /* torch initialises the momentum buffer with the first gradient */
    float *buf;
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
    if (!o || !o->buf) {
        free(o);
        return rn_fail(RN_ERR_NOMEM, "out of memory for SGD momentum (%zu floats)", n);
    }
    o->n = n;
    o->momentum = momentum;
    o->weight_decay = weight_decay;
    o->nesterov = nesterov;
    *out = o;
    return RN_OK;
}

void rn_sgd_free(rn_sgd *opt)
{
    if (!opt) return;
    free(opt->buf);
    free(opt);
}

int rn_sgd_step(rn_sgd *opt, rn_net *net, float lr)
{
    if (rn_net_num_params(net) != opt->n)
        return rn_fail(RN_ERR_ARG, "this optimizer was created for another network");
    float *p = rn_net_params(net);
    const float *g = rn_net_grads(net);
    const float mu = opt->momentum, wd = opt->weight_decay;
    for (size_t i = 0; i < opt->n; i++) {
        float d = g[i] + wd * p[i];
        if (mu != 0.0f) {
            float b = opt->started ? mu * opt->buf[i] + d : d;
            opt->buf[i] = b;
            d = opt->nesterov ? d + mu * b : b;
        }
        p[i] = p[i] - lr * d;
    }
    opt->started = 1;
    return RN_OK;
}
