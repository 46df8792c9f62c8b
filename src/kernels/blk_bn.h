/* Inside the blocked batch norm (blk_bn.c): its per-lane loops, built for each instruction set
 * (blk_bn_lanes.h). */
#ifndef RN_KERNELS_BLK_BN_H
#define RN_KERNELS_BLK_BN_H

enum { SUM_RUN = 256 };              /* pixels summed in float before a double addition */
enum { SUM_X, SUM_SQDEV, SUM_GRAD }; /* what a sum adds up */

typedef struct {
    /* Over images [i0, i1) of block b (cbn blocks of hw pixels of cb lanes): per lane, s0 =
     * sum(x) (SUM_X), sum((x - mu)^2) (SUM_SQDEV), or s0 = sum(g), s1 = sum(g (x - mu))
     * (SUM_GRAD; g = dy, zero where the ReLU after the BN was off: relu_y <= 0 where relu_y is
     * given, or where (x - mu) rs + rh <= 0, the forward's ReLU input, where rs is given). */
    void (*sums)(int kind, double *s0, double *s1, const float *x, const float *dy,
                 const float *relu_y, const float *rs, const float *rh, const double *mu, int i0,
                 int i1, int cbn, int b, int hw, int cb);
    /* one plane: y = (x - mu) sc + sh, plus ap's plane where ap is given, then max(y, 0) when
     * relu */
    void (*normalize)(float *yp, const float *xp, const float *ap, const float *mu,
                      const float *sc, const float *sh, int relu, int hw, int cb);
    /* one plane: dx = f g - o - (x - mu) kk, g as for SUM_GRAD (rp: relu_y's plane) */
    void (*dx)(float *dxp, const float *dyp, const float *rp, const float *rs, const float *rh,
               const float *xp, const float *f, const float *o, const float *kk, const float *mu,
               int hw, int cb);
    /* not the batch norm's, but per-lane loops too: one plane's max pooling (rn_blk_maxpool) */
    void (*maxpool)(float *yp, const float *xp, int h, int w, int k, int stride, int pad, int oh,
                    int ow, int cb);
} rn_blk_bn_fns;

extern const rn_blk_bn_fns rn_blk_bn_avx512, rn_blk_bn_avx2, rn_blk_bn_generic;

/* The loops' build for this CPU. */
const rn_blk_bn_fns *rn_blk_bn_select(void);

#endif
