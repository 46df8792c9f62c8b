/* Test-time augmentation (see tta.h). */
#include "train/tta.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

int rn_tta_parse(const char *text, int *flags)
{
    static const struct {
        const char *name;
        int flags;
    } known[] = {{"none", 0},
                 {"flip", RN_TTA_FLIP},
                 {"shift", RN_TTA_SHIFT},
                 {"flip,shift", RN_TTA_FLIP | RN_TTA_SHIFT},
                 {"shift,flip", RN_TTA_FLIP | RN_TTA_SHIFT}};
    for (size_t i = 0; text && i < sizeof known / sizeof known[0]; i++)
        if (!strcmp(text, known[i].name)) {
            *flags = known[i].flags;
            return RN_OK;
        }
    return rn_fail(RN_ERR_ARG, "test-time augmentation '%s': expected none, flip, shift or flip,shift",
                   text ? text : "");
}

const char *rn_tta_name(int flags)
{
    static const char *const names[] = {"none", "flip", "shift", "flip,shift"};
    return names[flags & 3];
}

int rn_tta_views(int flags)
{
    int flip = !!(flags & RN_TTA_FLIP), shift = !!(flags & RN_TTA_SHIFT);
    return (1 + flip) * (1 + 4 * shift);
}

void rn_tta_view(const float *x, float *y, int n, int c, int h, int w, int flags, int v,
                 const float *fill)
{
    static const int moves[4][2] = {{-1, 0}, {1, 0}, {0, -1}, {0, 1}};
    const int flips = 1 + !!(flags & RN_TTA_FLIP);
    int mirror = 0, dy = 0, dx = 0;
    if (v < flips) mirror = v;
    else {
        int m = v - flips; /* the moves of the image, then of the mirror image */
        mirror = m / 4;
        dy = moves[m % 4][0], dx = moves[m % 4][1];
    }
    for (int i = 0; i < n; i++)
        for (int ch = 0; ch < c; ch++) {
            const float *src = x + ((size_t)i * c + ch) * h * w;
            float *dst = y + ((size_t)i * c + ch) * h * w;
            for (int r = 0; r < h; r++) {
                int sr = r + dy;
                for (int q = 0; q < w; q++) {
                    int sq = (mirror ? w - 1 - q : q) + dx;
                    int inside = sr >= 0 && sr < h && sq >= 0 && sq < w;
                    dst[(size_t)r * w + q] = inside ? src[(size_t)sr * w + sq] : fill[ch];
                }
            }
        }
}

int rn_tta_probs(rn_net *net, const float *x, int n, int flags, double *probs)
{
    rn_net_options o;
    rn_net_get_options(net, &o);
    const int k = o.classes, views = rn_tta_views(flags);
    const size_t per = (size_t)o.in_c * o.in_h * o.in_w;
    float mean[RN_MAX_INPUT_CHANNELS], std[RN_MAX_INPUT_CHANNELS], fill[RN_MAX_INPUT_CHANNELS];
    if (o.in_c > RN_MAX_INPUT_CHANNELS)
        return rn_fail(RN_ERR_ARG, "test-time augmentation: at most %d channels",
                       RN_MAX_INPUT_CHANNELS);
    int has_norm = rn_net_get_normalization(net, mean, std);
    for (int ch = 0; ch < o.in_c; ch++) fill[ch] = has_norm ? (0.0f - mean[ch]) / std[ch] : 0.0f;
    float *logits = malloc((size_t)n * k * sizeof *logits);
    float *y = views > 1 ? malloc((size_t)n * per * sizeof *y) : NULL;
    if (!logits || (views > 1 && !y)) {
        free(logits);
        free(y);
        return rn_fail(RN_ERR_NOMEM, "out of memory for test-time augmentation");
    }
    memset(probs, 0, (size_t)n * k * sizeof *probs);
    int st = RN_OK;
    for (int v = 0; v < views && !st; v++) {
        if (v) rn_tta_view(x, y, n, o.in_c, o.in_h, o.in_w, flags, v, fill);
        st = rn_net_forward(net, v ? y : x, n, 0, logits);
        for (int i = 0; i < n && !st; i++) {
            const float *z = logits + (size_t)i * k;
            double mx = z[0], sum = 0.0;
            for (int j = 1; j < k; j++)
                if (z[j] > mx) mx = z[j];
            for (int j = 0; j < k; j++) sum += exp((double)z[j] - mx);
            for (int j = 0; j < k; j++) probs[(size_t)i * k + j] += exp((double)z[j] - mx) / sum;
        }
    }
    if (!st && views > 1)
        for (size_t j = 0; j < (size_t)n * k; j++) probs[j] /= views;
    free(logits);
    free(y);
    return st;
}
