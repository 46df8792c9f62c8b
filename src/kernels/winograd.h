/* Winograd F(2x2, 3x3) for 3x3 stride-1 convolutions (Lavin and Gray, 2015).
 *
 * Each 2x2 block of outputs ("tile") comes from a 4x4 patch d of the padded input:
 *   Y = A^T [ sum over c of (G g G^T) .* (B^T d B) ] A,
 * 16 multiplies per tile and channel pair instead of 36. The 16 element-wise products over
 * channels are 16 matrix multiplies, U[xi] (k x c) times V[xi] (c x tiles), on rn_gemm; the
 * transforms are additions only, written as loops over tiles that the compiler vectorises
 * (built twice: portable, and with AVX2 in winograd_avx2.c).
 *
 * Every output is a fixed sequence of float operations whatever the thread count or the
 * number of images handled together, so results stay bit-identical across thread counts. */
#ifndef RN_KERNELS_WINOGRAD_H
#define RN_KERNELS_WINOGRAD_H

#include <stddef.h>

typedef struct {
    int c, k, h, w;        /* one image: input [c, h, w], weights [k, c, 3, 3] */
    int ph, pw;            /* zero padding, top and bottom, left and right */
    int oh, ow;            /* output [k, oh, ow] */
    int th, tw;            /* tiles down and across */
    int gh, gw;            /* a phase plane of the padded input: gh rows of gw = tw + 1 */
    size_t ps;             /* floats from one phase plane to the next (with slack) */
    int tiles;             /* th * gw per image, the junk tile column included */
    int nb;                /* images per matrix multiply (small maps batch up) */
} rn_wino_geom;

/* 0 and the geometry, or -1 when the output would be empty. nb is chosen for n images
 * shared by threads. */
int rn_wino_make(rn_wino_geom *g, int c, int h, int w, int k, int ph, int pw, int n,
                 int threads);
/* Floats of the packed transformed weights (shared by all threads). */
size_t rn_wino_weights_floats(const rn_wino_geom *g);
/* Floats of scratch one thread needs besides its GEMM packing buffer. */
size_t rn_wino_rest_floats(const rn_wino_geom *g);

/* The weights w[k, c, 3, 3] transformed and packed for rn_wino_run into upack
 * (rn_wino_weights_floats). */
void rn_wino_pack(float *upack, const float *w, const rn_wino_geom *g, int threads);
/* y[n, k, oh, ow] = conv3x3(x[n, c, h, w], w) (+ b), then max(y, 0) when relu. upack: the
 * weights packed by rn_wino_pack; off: c ints; packs: threads GEMM packing buffers; rest:
 * threads slices of rn_wino_rest_floats. threads > 1 opens a parallel region (call it from
 * outside one). */
void rn_wino_run(float *y, const float *x, const float *upack, const float *b, int relu, int n,
                 const rn_wino_geom *g, int *off, float *packs, float *rest, int threads);

/* The transforms, one instance per instruction set (winograd_transforms.h). */
typedef struct {
    /* x[h, w], one channel of one image, into four zeroed phase planes ps apart: padded
     * pixel (py, px) to plane (py % 2) * 2 + px % 2, row py / 2, column px / 2 */
    void (*split)(float *p, size_t ps, const float *x, int h, int w, int ph, int pw, int gw);
    /* p: one channel's four phase planes, ps apart; v: the first of 16 matrices vstride
     * apart, at this channel's row and this image's first tile; n = tiles. */
    void (*input)(float *v, size_t vstride, const float *p, size_t ps, int gw, int n);
    /* m: the first of 16 matrices mstride apart at this output channel's row and this
     * image's first tile; y: [oh, ow] of one channel, + bias, then max(y, 0) when relu.
     * Reads up to 7 tiles past the image's last one. */
    void (*output)(float *y, const float *m, size_t mstride, int th, int gw, int oh, int ow,
                   float bias, int relu);
} rn_wino_transforms;
extern const rn_wino_transforms rn_wino_generic, rn_wino_avx2;

#endif
