/* resnet bench --mode infer --layers: where a frozen network's inference time goes, one row per
 * convolution (rn_net_profile_convs, rn_net_conv_time): its mean time a call over the timed
 * steps, GFLOP/s counting direct multiply-adds, and that against the FMA peak measured on the
 * same threads. The shares are of the whole forward's time (the rest: pooling, the classifier,
 * the input's conversion). */
#include <cjson/cJSON.h>
#include <stdio.h>

#include "cli/cli.h"
#include "kernels/kernels.h"

int bench_layers_report(const rn_net *net, int batch, int threads, double forward_s, long steps,
                        cJSON *json)
{
    const double peak = rn_convb_fma_peak(threads, 0.5);
    cJSON *rows = json ? cJSON_AddArrayToObject(json, "layers") : NULL;
    if (json && (!rows || !cJSON_AddNumberToObject(json, "fma_peak_gflop_per_s", peak)))
        return cli_error("out of memory");
    if (!json)
        printf("per convolution: mean of %ld calls each, FMA peak %.1f GFLOP/s at %d threads\n"
               "%-3s %-24s %11s %6s %9s %9s %8s %5s %6s\n",
               steps, peak, threads, "#", "name", "C->K", "k/s", "input", "ms/call", "GFLOP/s",
               "peak", "share");
    double conv_s = 0.0;
    for (int i = 0; i < rn_net_num_convs(net); i++) {
        rn_conv_info c;
        double s;
        long calls;
        if (rn_net_conv_info(net, i, &c) || rn_net_conv_time(net, i, &s, &calls))
            return cli_lib_error("layers");
        if (!calls) continue; /* a deleted block's */
        conv_s += s;
        const double ms = 1e3 * s / (double)calls, gf = bench_conv_gflop(&c, batch) / (ms / 1e3);
        const double share = forward_s > 0 ? s / forward_s : 0.0;
        if (json) {
            cJSON *r = cJSON_CreateObject();
            if (!r || !cJSON_AddItemToArray(rows, r) || !cJSON_AddStringToObject(r, "name", c.name) ||
                !cJSON_AddNumberToObject(r, "in_c", c.in_c) ||
                !cJSON_AddNumberToObject(r, "out_c", c.out_c) ||
                !cJSON_AddNumberToObject(r, "k", c.k) ||
                !cJSON_AddNumberToObject(r, "stride", c.stride) ||
                !cJSON_AddNumberToObject(r, "in_h", c.in_h) ||
                !cJSON_AddNumberToObject(r, "in_w", c.in_w) ||
                !cJSON_AddNumberToObject(r, "calls", (double)calls) ||
                !cJSON_AddNumberToObject(r, "ms_per_call", ms) ||
                !cJSON_AddNumberToObject(r, "gflop_per_s", gf) ||
                !cJSON_AddNumberToObject(r, "peak_share", gf / peak) ||
                !cJSON_AddNumberToObject(r, "time_share", share))
                return cli_error("out of memory");
            continue;
        }
        char ck[24], ks[12], in[16];
        snprintf(ck, sizeof ck, "%d->%d", c.in_c, c.out_c);
        snprintf(ks, sizeof ks, "%d/%d", c.k, c.stride);
        snprintf(in, sizeof in, "%dx%d", c.in_h, c.in_w);
        printf("%-3d %-24s %11s %6s %9s %9.3f %8.1f %4.0f%% %5.1f%%\n", i, c.name, ck, ks, in, ms,
               gf, 100 * gf / peak, 100 * share);
    }
    if (json) return cJSON_AddNumberToObject(json, "conv_share", forward_s > 0 ? conv_s / forward_s : 0)
                         ? 0
                         : cli_error("out of memory");
    printf("convolutions: %.2f of %.2f ms a forward (%.0f%%)\n", 1e3 * conv_s / (double)steps,
           1e3 * forward_s / (double)steps, forward_s > 0 ? 100 * conv_s / forward_s : 0.0);
    return 0;
}
