/* Read-only listing of a network's convolutions (rn_net_num_convs, rn_net_conv_info): the
 * shapes a kernel benchmark or a summary needs, which the named tensors alone do not give
 * (strides and input sizes); and the time each took in a frozen forward (rn_net_conv_time). */
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "nn/net.h"

int rn_net_num_convs(const rn_net *net)
{
    return net->n_convs;
}

static int check_index(const rn_net *net, int index)
{
    if (index < 0 || index >= net->n_convs)
        return rn_fail(RN_ERR_ARG, "convolution %d out of range (the network has %d)", index,
                       net->n_convs);
    return RN_OK;
}

int rn_net_conv_info(const rn_net *net, int index, rn_conv_info *out)
{
    const int st = check_index(net, index);
    if (st) return st;
    const rn_conv *c = net->convs[index];
    memset(out, 0, sizeof *out);
    /* The name: the weight tensor registered for this convolution, less ".weight". */
    for (int i = 0; i < net->n_tensors; i++) {
        const rn_tensor_entry *e = &net->tensors[i];
        if ((const void *)e->bind_data != (const void *)&c->w) continue;
        size_t len = strlen(e->name), leaf = strlen(".weight");
        if (len > leaf && !strcmp(e->name + len - leaf, ".weight")) len -= leaf;
        if (len >= sizeof out->name) len = sizeof out->name - 1;
        memcpy(out->name, e->name, len);
        out->name[len] = '\0';
        break;
    }
    out->in_c = c->in_c;
    out->in_h = c->in.h;
    out->in_w = c->in.w;
    out->out_c = c->out_c;
    out->out_h = c->out.h;
    out->out_w = c->out.w;
    out->k = c->k;
    out->stride = c->stride;
    out->pad = c->pad;
    out->has_bias = c->has_bias;
    return RN_OK;
}

int rn_net_profile_convs(rn_net *net, int on)
{
    for (int i = 0; on && i < net->n_convs; i++) {
        net->convs[i]->prof_s = 0.0;
        net->convs[i]->prof_calls = 0;
    }
    net->profile = on != 0;
    return RN_OK;
}

int rn_net_conv_time(const rn_net *net, int index, double *seconds, long *calls)
{
    const int st = check_index(net, index);
    if (st) return st;
    *seconds = net->convs[index]->prof_s;
    *calls = net->convs[index]->prof_calls;
    return RN_OK;
}
