/* Test-time augmentation: a model's class probabilities averaged over views of each image (the
 * image, its mirror image, and copies moved by one pixel), the views that a model trained with
 * random crops and flips has learned to classify. What it buys: docs/results.md. */
#ifndef RN_TRAIN_TTA_H
#define RN_TRAIN_TTA_H

#include "resnet.h"

enum {
    RN_TTA_FLIP = 1, /* + the mirror image (horizontal flip) */
    RN_TTA_SHIFT = 2 /* + the image moved by one pixel up, down, left and right (zero pixels fill
                        the gap, as the crop's padding); with FLIP, its mirror image moved too */
};

/* "none" (0), "flip", "shift", "flip,shift" or "shift,flip"; RN_ERR_ARG on anything else. */
int rn_tta_parse(const char *text, int *flags);
/* "none", "flip", "shift", "flip,shift" */
const char *rn_tta_name(int flags);
/* Views per image: 1 (none), 2 (flip), 5 (shift), 10 (flip,shift). */
int rn_tta_views(int flags);

/* View v (0 <= v < rn_tta_views(flags)) of n images x [n, c, h, w] into y (not x): view 0 is the
 * image, then the mirror image, then the moves by (dy, dx) = (-1,0), (1,0), (0,-1), (0,1) of
 * the image and, with FLIP, of the mirror image. y[.., r, q] = x[.., r + dy, q' + dx] with q' = q
 * or w - 1 - q (mirrored); fill[c] where that lies outside the image. */
void rn_tta_view(const float *x, float *y, int n, int c, int h, int w, int flags, int v,
                 const float *fill);

/* The class probabilities (softmax, in double) of n normalised images x [n, in_c, in_h, in_w]
 * in evaluation mode, averaged over the views of `flags`: probs [n, classes]. The views' fill
 * is the normalised value of a zero pixel (the network's normalisation). flags = 0 gives the
 * softmax of one forward pass. */
int rn_tta_probs(rn_net *net, const float *x, int n, int flags, double *probs);

#endif
