/* Data-parallel settings of a network (see data_parallel.h). */
#include "nn/data_parallel.h"

#include "nn/net.h"

void rn_net_set_bn_allsum(rn_net *net, const rn_bn_allsum *bn) { net->run.bn_allsum = bn; }

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
