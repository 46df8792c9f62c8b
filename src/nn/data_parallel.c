/* Data-parallel settings of a network (see data_parallel.h). */
#include "nn/data_parallel.h"

#include <string.h>

#include "core/error.h"
#include "nn/net.h"

void rn_net_set_bn_allsum(rn_net *net, const rn_bn_allsum *bn) { net->run.bn_allsum = bn; }

void rn_net_set_block_grads_hook(rn_net *net, void (*fn)(void *ctx, int block), void *ctx)
{
    net->run.block_grads_done = fn;
    net->run.block_grads_ctx = ctx;
}

/* A block's tensors are those named after it ("layer2.0" owns "layer2.0.conv1.weight"). */
int rn_net_block_param_range(const rn_net *net, int block, size_t *lo, size_t *hi)
{
    if (block < 0 || block >= net->n_blocks) return rn_fail(RN_ERR_ARG, "no block %d", block);
    const char *name = net->blocks[block]->name;
    const size_t len = strlen(name);
    size_t a = (size_t)-1, b = 0, count = 0;
    for (int i = 0; i < net->n_tensors; i++) {
        const rn_tensor_entry *e = &net->tensors[i];
        if (e->kind != RN_TENSOR_PARAM || strncmp(e->name, name, len) || e->name[len] != '.')
            continue;
        if (e->offset < a) a = e->offset;
        if (e->offset + e->numel > b) b = e->offset + e->numel;
        count += e->numel;
    }
    if (!count || b - a != count)
        return rn_fail(RN_ERR_ARG, "block %s: its parameters are not one range", name);
    *lo = a, *hi = b;
    return RN_OK;
}

void rn_net_set_loss_grad_scale(rn_net *net, float scale)
{
    net->run.loss_grad_scale = scale == 1.0f ? 0.0f : scale;
}

/* Every batch norm's running mean and variance are buffers of its channel count, and they are
 * the network's only float buffers. */
int rn_net_max_bn_channels(const rn_net *net)
{
    int most = 0;
    for (int i = 0; i < net->n_tensors; i++)
        if (net->tensors[i].kind == RN_TENSOR_BUFFER && (int)net->tensors[i].numel > most)
            most = (int)net->tensors[i].numel;
    return most;
}
