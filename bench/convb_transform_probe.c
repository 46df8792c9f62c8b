/* Blocked Winograd's data transforms alone, per tile: F(2x2, 3x3) and F(4x4, 3x3), the input's
 * (in), the output's (out) and the weight gradient's output-gradient transform (dy), of the
 * build this CPU runs (rn_convb_select). Each pass transforms TILES interior tiles of one
 * channel block, a call each, into (or from) position-major buffers laid out as the convolution's chunks are
 * (kernels/convb.h), which at 64 tiles sit in the L2 cache as they do there; best of ROUNDS.
 * Before/after a change to convb_row.h: build this against each commit's library. Not part of
 * the library.
 *   cc -O2 -fopenmp -Iinclude -Isrc bench/convb_transform_probe.c build/libresnet.a -lm \
 *      -o build/convb_transform_probe
 *   build/convb_transform_probe [ROUNDS]          (RN_SIMD=avx2: the 8-lane build) */
#include <stdio.h>
#include <stdlib.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "kernels/convb.h"
#include "kernels/kernels.h"

enum { TILES = 64, HW = 32 };

static double per_tile_ns(const rn_convb_wino_fns *t, int which, float *buf, size_t ps,
                          const float *plane, float *out, const float *bias, int rounds)
{
    double best = 1e30;
    const int per_row = HW / t->m - 2; /* interior tiles of a tile row */
    for (int r = 0; r < rounds; r++) {
        const double t0 = rn_clock_s();
        for (int k = 0; k < TILES; k++) {
            const int tx = 1 + k % per_row, ty = 1 + k / per_row % per_row;
            float *v = buf + (size_t)k * rn_blk_lanes();
            if (which == 0) t->in(v, ps, plane, HW, HW, ty, tx);
            else if (which == 1) t->out(out, v, ps, bias, NULL, 1, HW, HW, ty, tx);
            else t->dy(v, ps, plane, HW, HW, ty, tx);
        }
        const double dt = rn_clock_s() - t0;
        if (dt < best) best = dt;
    }
    return best * 1e9 / TILES;
}

int main(int argc, char **argv)
{
    const int rounds = argc > 1 ? atoi(argv[1]) : 2000;
    if (rounds < 1) {
        fprintf(stderr, "usage: %s [ROUNDS]\n", argv[0]);
        return 2;
    }
    const rn_convb_fns f = rn_convb_select();
    const int cb = f.lanes;
    const size_t ps = rn_convb_wino_position_floats(1, TILES, cb);
    /* on cache lines, as the engine's arrays are (core/alloc.h) */
    float *plane = rn_alloc_lines((size_t)HW * HW * cb, sizeof(float));
    float *out = rn_alloc_lines((size_t)HW * HW * cb, sizeof(float));
    float *buf = rn_alloc_lines(36 * ps, sizeof(float));
    float *bias = rn_alloc_lines_zero(16, sizeof(float));
    if (!plane || !out || !buf || !bias) {
        fprintf(stderr, "%s: out of memory\n", argv[0]);
        return 1;
    }
    for (size_t i = 0; i < (size_t)HW * HW * cb; i++) plane[i] = (float)(i % 13) * 0.1f - 0.6f;
    for (size_t i = 0; i < 36 * ps; i++) buf[i] = (float)(i % 7) * 0.1f - 0.3f;
    printf("blocked Winograd transforms, %d lanes, %d tiles a call, best of %d (ns per tile)\n", cb,
           TILES, rounds);
    for (int m = 2; m <= 4; m += 2) {
        const rn_convb_wino_fns *t = rn_convb_wino_pick(&f, m);
        printf("F(%dx%d, 3x3): in %6.1f  out %6.1f  dy %6.1f\n", m, m,
               per_tile_ns(t, 0, buf, ps, plane, out, bias, rounds),
               per_tile_ns(t, 1, buf, ps, plane, out, bias, rounds),
               per_tile_ns(t, 2, buf, ps, plane, out, bias, rounds));
    }
    free(plane);
    free(out);
    free(buf);
    free(bias);
    return 0;
}
