/* Training-mode batch normalization on channel-blocked tensors (kernels.h), fused with the ReLU
 * after it as the planar kernels are (batchnorm.c), with the same numerics: two passes for the
 * statistics (mean, then squared deviations), sums in float over runs of SUM_RUN pixels and in
 * double across them, the per-element passes in float.
 *
 * On blocks a pixel's CB channels are one vector, so every sum runs over pixels with the
 * channels in the lanes. The batch's images are cut into IMAGE_GROUPS fixed groups whose sums
 * are taken in parallel and then added in order: the same bits whatever the thread count
 * (and a layer of one block still has IMAGE_GROUPS tasks for the threads). */
#include <math.h>
#include <string.h>

#include "kernels/batchnorm_sync.h"
#include "kernels/blk_bn.h"
#include "kernels/cpu.h"
#include "kernels/kernels.h"
#include "kernels/parallel.h"

enum { IMAGE_GROUPS = 8, CHUNK_BLOCKS = 8 };

const rn_blk_bn_fns *rn_blk_bn_select(void)
{
    switch (rn_cpu_simd()) {
    case RN_SIMD_AVX512: return &rn_blk_bn_avx512;
    case RN_SIMD_AVX2: return &rn_blk_bn_avx2;
    default: return &rn_blk_bn_generic;
    }
}

/* Per channel over the whole batch: out0 (and out1) of length c. mu: per channel, or NULL.
 * SUM_GRAD: the ReLU's mask from relu_y, or from x with the forward's scale rs and shift rh (per
 * channel) where rs is given. */
static void channel_sums(int kind, double *out0, double *out1, const float *x, const float *dy,
                         const float *relu_y, const float *rs, const float *rh, const float *mu,
                         int n, int c, int hw)
{
    const int cb = rn_blk_lanes(), cbn = rn_blk_count(c, cb);
    const int groups = n < IMAGE_GROUPS ? n : IMAGE_GROUPS;
    const rn_blk_bn_fns *f = rn_blk_bn_select();
    for (int b0 = 0; b0 < cbn; b0 += CHUNK_BLOCKS) {
        const int nb = cbn - b0 < CHUNK_BLOCKS ? cbn - b0 : CHUNK_BLOCKS;
        double part[CHUNK_BLOCKS][IMAGE_GROUPS][2][RN_BLK_MAX_LANES];
        const int tasks = nb * groups;
#pragma omp parallel for schedule(dynamic, 1) if ((size_t)n * nb * hw * cb >= RN_OMP_MIN_WORK)
        for (int t = 0; t < tasks; t++) {
            const int bc = t / groups, g = t % groups, b = b0 + bc;
            double m[RN_BLK_MAX_LANES] = {0};
            float sc[RN_BLK_MAX_LANES] = {0}, sh[RN_BLK_MAX_LANES] = {0};
            for (int l = 0; l < cb && mu; l++) m[l] = b * cb + l < c ? mu[b * cb + l] : 0.0;
            for (int l = 0; l < cb && rs && b * cb + l < c; l++)
                sc[l] = rs[b * cb + l], sh[l] = rh[b * cb + l];
            const int i0 = (int)((long)g * n / groups), i1 = (int)((long)(g + 1) * n / groups);
            f->sums(kind, part[bc][g][0], part[bc][g][1], x, dy, relu_y, rs ? sc : NULL, sh,
                    mu ? m : NULL, i0, i1, cbn, b, hw, cb);
        }
        for (int bc = 0; bc < nb; bc++)
            for (int l = 0; l < cb; l++) {
                const int ch = (b0 + bc) * cb + l;
                if (ch >= c) continue;
                double s0 = 0.0, s1 = 0.0;
                for (int g = 0; g < groups; g++) {
                    s0 += part[bc][g][0][l];
                    if (kind == SUM_GRAD) s1 += part[bc][g][1][l];
                }
                out0[ch] = s0;
                if (out1) out1[ch] = s1;
            }
    }
}

/* Per (image, block) plane: y = (x - mean) * scale + shift, plus add where it is given, then
 * max(y, 0) when relu; the lanes past c get scale, mean and shift 0, so they stay 0 (or add's,
 * which are 0 in a blocked tensor). */
static void normalize(float *y, const float *x, const float *add, const float *mean,
                      const float *scale, const float *shift, int relu, int n, int c, int hw)
{
    const int cb = rn_blk_lanes(), cbn = rn_blk_count(c, cb);
    const long planes = (long)n * cbn;
    const rn_blk_bn_fns *f = rn_blk_bn_select();
#pragma omp parallel for schedule(dynamic, rn_omp_plane_chunk((size_t)hw * cb)) \
    if ((size_t)planes * hw * cb >= RN_OMP_MIN_WORK)
    for (long p = 0; p < planes; p++) {
        const int b = (int)(p % cbn);
        float mu[RN_BLK_MAX_LANES] = {0}, sc[RN_BLK_MAX_LANES] = {0}, sh[RN_BLK_MAX_LANES] = {0};
        for (int l = 0; l < cb && b * cb + l < c; l++)
            mu[l] = mean[b * cb + l], sc[l] = scale[b * cb + l], sh[l] = shift[b * cb + l];
        const size_t o = (size_t)p * hw * cb;
        f->normalize(y + o, x + o, add ? add + o : NULL, mu, sc, sh, relu, hw, cb);
    }
}

static int forward_train(float *y, float *mean, float *var, float *scale_out, const float *x,
                         const float *add, const float *gamma, const float *beta, int n, int c,
                         int hw, float eps, int relu, double *work, const rn_bn_allsum *sync)
{
    double m = (double)n * hw;
    /* the sums go through sync's buffer, which has room for the count after them */
    double *s = sync ? sync->buf : work;
    channel_sums(SUM_X, s, NULL, x, NULL, NULL, NULL, NULL, NULL, n, c, hw);
    if (sync) {
        s[c] = m;
        sync->sum(sync->ctx, s, c + 1);
        m = s[c];
    }
    for (int ch = 0; ch < c; ch++) mean[ch] = (float)(s[ch] / m);
    /* the deviations from the mean as the planar kernel rounds it: a float */
    channel_sums(SUM_SQDEV, s, NULL, x, NULL, NULL, NULL, NULL, mean, n, c, hw);
    if (sync) sync->sum(sync->ctx, s, c);
    float *scale = (float *)(work + c);
    for (int ch = 0; ch < c; ch++) {
        const double v = s[ch] / m;
        var[ch] = (float)v;
        scale[ch] = (float)(gamma[ch] / sqrt(v + (double)eps));
    }
    normalize(y, x, add, mean, scale, beta, relu, n, c, hw);
    if (scale_out) memcpy(scale_out, scale, (size_t)c * sizeof(float));
    return (int)m;
}

int rn_blk_bn_forward_train(float *y, float *mean, float *var, float *scale, const float *x,
                            const float *gamma, const float *beta, int n, int c, int hw, float eps,
                            int relu, double *work, const rn_bn_allsum *sync)
{
    return forward_train(y, mean, var, scale, x, NULL, gamma, beta, n, c, hw, eps, relu, work,
                         sync);
}

int rn_blk_bn_add_forward_train(float *y, float *mean, float *var, float *scale, const float *x,
                                const float *add, const float *gamma, const float *beta, int n,
                                int c, int hw, float eps, int relu, double *work,
                                const rn_bn_allsum *sync)
{
    return forward_train(y, mean, var, scale, x, add, gamma, beta, n, c, hw, eps, relu, work,
                         sync);
}

void rn_blk_bn_backward(float *dx, float *dgamma, float *dbeta, const float *dy,
                        const float *relu_y, const float *relu_scale, const float *relu_shift,
                        const float *x, const float *gamma, const float *mean, const float *var,
                        int n, int c, int hw, float eps, int train, double *work,
                        const rn_bn_allsum *sync)
{
    const int cb = rn_blk_lanes(), cbn = rn_blk_count(c, cb);
    const int sums = train || dgamma || dbeta;
    if (!train) sync = NULL; /* the running statistics are the same on every process already */
    double m = (double)n * hw;
    double *sdy = sync ? sync->buf : work, *sdyx = sdy + c;
    float *fs = (float *)(work + 2 * (size_t)c), *off = fs + c, *k = off + c;
    if (sums)
        channel_sums(SUM_GRAD, sdy, sdyx, x, dy, relu_y, relu_scale, relu_shift, mean, n, c, hw);
    for (int ch = 0; ch < c; ch++) {
        const double invstd = 1.0 / sqrt((double)var[ch] + (double)eps);
        if (sums) sdyx[ch] *= invstd;
        /* this process's own share: the parameter gradients are summed with the others */
        if (dbeta) dbeta[ch] += (float)sdy[ch];
        if (dgamma) dgamma[ch] += (float)sdyx[ch];
    }
    if (sync) {
        sdy[2 * c] = m;
        sync->sum(sync->ctx, sdy, 2 * c + 1);
        m = sdy[2 * c];
    }
    for (int ch = 0; ch < c; ch++) {
        const double invstd = 1.0 / sqrt((double)var[ch] + (double)eps);
        const double s1 = sums ? sdyx[ch] : 0.0, s0 = sums ? sdy[ch] : 0.0;
        const double scale = gamma[ch] * invstd;
        fs[ch] = (float)scale;
        off[ch] = train ? (float)(scale * s0 / m) : 0.0f;
        k[ch] = train ? (float)(scale * invstd * s1 / m) : 0.0f;
    }
    if (!dx) return;
    const long planes = (long)n * cbn;
    const rn_blk_bn_fns *fn = rn_blk_bn_select();
#pragma omp parallel for schedule(dynamic, rn_omp_plane_chunk((size_t)hw * cb)) \
    if ((size_t)planes * hw * cb >= RN_OMP_MIN_WORK)
    for (long p = 0; p < planes; p++) {
        const int b = (int)(p % cbn);
        float f[RN_BLK_MAX_LANES] = {0}, o[RN_BLK_MAX_LANES] = {0}, kk[RN_BLK_MAX_LANES] = {0},
              mu[RN_BLK_MAX_LANES] = {0}, sc[RN_BLK_MAX_LANES] = {0}, sh[RN_BLK_MAX_LANES] = {0};
        for (int l = 0; l < cb && b * cb + l < c; l++) {
            const int ch = b * cb + l;
            f[l] = fs[ch], o[l] = off[ch], kk[l] = k[ch], mu[l] = mean[ch];
            if (relu_scale) sc[l] = relu_scale[ch], sh[l] = relu_shift[ch];
        }
        const size_t base = (size_t)p * hw * cb;
        fn->dx(dx + base, dy + base, relu_y && !relu_scale ? relu_y + base : NULL,
               relu_scale ? sc : NULL, sh, x + base, f, o, kk, mu, hw, cb);
    }
}
