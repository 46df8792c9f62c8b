/* Evaluation of a network on a data set: loss, accuracy, confusion matrix. */
#ifndef RN_TRAIN_EVALUATE_H
#define RN_TRAIN_EVALUATE_H

#include "resnet.h"
#include "train/dataset.h"

typedef struct {
    int n;           /* images evaluated */
    int classes;
    double loss;     /* mean cross-entropy (no label smoothing) */
    long correct;    /* top-1 */
    long *confusion; /* [classes * classes]: row = true label, column = prediction; NULL unless
                        asked for */
} rn_eval_result;

/* RN_OK when the data fit the network: the same image shape and class count; otherwise
 * RN_ERR_MISMATCH with a message naming both (`what` names the data, e.g. its folder). */
int rn_check_data_fits(const rn_net *net, const rn_dataset *data, const char *what);
/* Runs the whole data set in evaluation mode, batch images at a time, normalised with the
 * network's normalisation (x / 255 when it has none). */
int rn_evaluate(rn_net *net, const rn_dataset *data, int batch, int confusion, rn_eval_result *out);
/* As rn_evaluate, each image's prediction the mean class probabilities over the views of
 * test-time augmentation `tta` (RN_TTA_* flags, train/tta.h; 0 = rn_evaluate); the loss is the
 * cross-entropy of those mean probabilities. */
int rn_evaluate_tta(rn_net *net, const rn_dataset *data, int batch, int tta, int confusion,
                    rn_eval_result *out);
void rn_eval_result_free(rn_eval_result *r);

#endif
