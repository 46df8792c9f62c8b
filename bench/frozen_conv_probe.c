/* Every convolution of a network at one batch size, as a frozen network runs it: the planar
 * forward with its weights packed once (rn_conv_forward_packed, Winograd where the engine picks
 * it) beside the channel-blocked one with its weights packed once (rn_convb_forward, and for
 * 3x3 stride-1 shapes also rn_convb_wino_forward, the faster of the two counting), all with
 * bias and ReLU, on the caller's threads, the best of 5 calls each. The measurement behind the
 * blocked engine's plan in docs/performance.md, not part of the library.
 *   cc -O2 -fopenmp -Iinclude -Isrc bench/frozen_conv_probe.c build/libresnet.a -lplplot -lcjson \
 *      -lprotobuf-c -lpng -ljpeg -lstb -lz -lm -lpthread -o build/frozen_conv_probe
 *   OMP_NUM_THREADS=1 build/frozen_conv_probe ARCH BATCH [SIDE]     e.g. resnet50 1 224 */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "kernels/kernels.h"
#include "resnet.h"

enum { CALLS = 5 };

static float *filled(size_t len, int period, float step)
{
    float *p = rn_alloc_lines(len, sizeof *p);
    for (size_t i = 0; p && i < len; i++) p[i] = (float)(i % (size_t)period) * step;
    return p;
}

/* Times one shape both ways; adds the best times to *planar and *blocked. 0, or -1 when out of
 * memory. */
static int one_shape(const rn_conv_info *c, int batch, double *planar, double *blocked)
{
    rn_conv_shape sh;
    if (rn_conv_shape_init(&sh, batch, c->in_c, c->in_h, c->in_w, c->out_c, c->k, c->k, c->stride,
                           c->pad))
        return -1;
    sh.threads = omp_get_max_threads();
    const size_t xl = (size_t)batch * c->in_c * c->in_h * c->in_w;
    const size_t yl = (size_t)batch * c->out_c * sh.oh * sh.ow;
    const size_t wl = (size_t)c->out_c * c->in_c * c->k * c->k;
    float *x = filled(xl, 7, 0.1f), *w = filled(wl, 5, 0.01f), *bias = filled((size_t)c->out_c, 3, 0.1f);
    float *y = rn_alloc_lines(yl, sizeof *y);
    float *work = rn_alloc_lines(rn_conv_workspace(&sh) + 1, sizeof *work);
    float *packed = rn_alloc_lines(rn_conv_packed_floats_max(&sh), sizeof *packed);
    float *xb = rn_alloc_lines(rn_blk_floats(batch, c->in_c, c->in_h, c->in_w), sizeof *xb);
    float *yb = rn_alloc_lines(rn_blk_floats(batch, c->out_c, sh.oh, sh.ow), sizeof *yb);
    float *packed_b = rn_alloc_lines(rn_convb_packed_floats(&sh), sizeof *packed_b);
    float *work_b = rn_alloc_lines(rn_convb_workspace(&sh) + 1, sizeof *work_b);
    const int wino = rn_convb_wino_fits(&sh);
    float *packed_w = wino ? rn_alloc_lines(rn_convb_wino_packed_floats(&sh), sizeof *packed_w) : NULL;
    float *work_w = wino ? rn_alloc_lines(rn_convb_wino_workspace(&sh) + 1, sizeof *work_w) : NULL;
    int rc = x && w && bias && y && work && packed && xb && yb && packed_b && work_b &&
                     (!wino || (packed_w && work_w))
                 ? 0
                 : -1;
    if (!rc) {
        rn_conv_pack(packed, w, NULL, &sh, work);
        rn_convb_pack(packed_b, w, NULL, bias, &sh);
        rn_blk_from_nchw(xb, x, batch, c->in_c, c->in_h, c->in_w);
        if (wino) rn_convb_wino_pack(packed_w, w, NULL, bias, &sh);
        double best_p = 1e30, best_b = 1e30, best_w = 1e30;
        for (int i = 0; i < CALLS; i++) {
            double t0 = rn_clock_s();
            rn_conv_forward_packed(y, x, packed, bias, 1, &sh, work);
            const double tp = rn_clock_s() - t0;
            t0 = rn_clock_s();
            rn_convb_forward(yb, xb, packed_b, 1, &sh, work_b);
            const double tb = rn_clock_s() - t0;
            if (tp < best_p) best_p = tp;
            if (tb < best_b) best_b = tb;
            if (!wino) continue;
            t0 = rn_clock_s();
            rn_convb_wino_forward(yb, xb, packed_w, 1, &sh, work_w);
            const double tw = rn_clock_s() - t0;
            if (tw < best_w) best_w = tw;
        }
        printf("%-24s %dx%d/%d %4d->%-4d %3dx%-3d planar %7.3f ms (%-8s) blocked %7.3f ms", c->name,
               c->k, c->k, c->stride, c->in_c, c->out_c, c->in_h, c->in_w, best_p * 1e3,
               rn_conv_packing(&sh) == RN_CONV_WINOGRAD ? "Winograd" : "direct", best_b * 1e3);
        if (wino) printf(", Winograd %7.3f ms", best_w * 1e3);
        if (best_w < best_b) best_b = best_w;
        printf("  %.2fx\n", best_p / best_b);
        *planar += best_p;
        *blocked += best_b;
    }
    free(x), free(w), free(bias), free(y), free(work), free(packed), free(xb), free(yb);
    free(packed_b), free(work_b), free(packed_w), free(work_w);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s ARCH BATCH [SIDE]\n", argv[0]);
        return 2;
    }
    const int batch = atoi(argv[2]), side = argc > 3 ? atoi(argv[3]) : 224;
    rn_net_options o;
    rn_net_options_init(&o);
    o.in_c = 3, o.in_h = o.in_w = side;
    rn_net *net;
    if (batch < 1 || rn_net_create(&net, argv[1], &o)) {
        fprintf(stderr, "frozen_conv_probe: %s\n", batch < 1 ? "BATCH must be positive" : rn_last_error());
        return 2;
    }
    double planar = 0, blocked = 0;
    int rc = 0;
    for (int i = 0; !rc && i < rn_net_num_convs(net); i++) {
        rn_conv_info c;
        rc = rn_net_conv_info(net, i, &c) || one_shape(&c, batch, &planar, &blocked);
    }
    if (rc) fprintf(stderr, "frozen_conv_probe: out of memory\n");
    else printf("all %d convolutions: planar %.2f ms, blocked %.2f ms: %.2fx\n", rn_net_num_convs(net),
                planar * 1e3, blocked * 1e3, planar / blocked);
    rn_net_free(net);
    return rc ? 1 : 0;
}
