/* Training-mode batch normalisation whose statistics cover a batch split over several
 * processes (synchronised batch norm, for data-parallel training): the per-channel sums are
 * added up over the processes through a callback before they are used, so each process
 * normalises its slice with the whole batch's mean and variance and back-propagates with the
 * whole batch's gradient sums, as one process on the whole batch would. The kernels know
 * nothing of how the sums travel (src/dist/ does that). */
#ifndef RN_KERNELS_BATCHNORM_SYNC_H
#define RN_KERNELS_BATCHNORM_SYNC_H

typedef struct {
    /* buf[0 .. n) becomes its element-wise sum over every process, the same bits on each;
     * every process calls it the same number of times, in the same order. */
    void (*sum)(void *ctx, double *buf, int n);
    void *ctx;
    double *buf; /* scratch of at least 2 * channels + 1 doubles for the widest batch norm */
    int cap;
} rn_bn_allsum;

/* As rn_bn_forward_train (relu: rn_bn_relu_forward_train) with the statistics of every
 * process's slice together; returns the values per channel they cover (the global n * hw), for
 * rn_bn_update_running. With one process the same bits as rn_bn_forward_train. */
int rn_bn_forward_train_allsum(float *y, float *mean, float *var, const float *x,
                               const float *gamma, const float *beta, int n, int c, int hw,
                               float eps, int relu, const rn_bn_allsum *s);
/* As rn_bn_backward_train (relu_y non-NULL: rn_bn_relu_backward_train): dx from the gradient
 * sums of every process; dgamma and dbeta receive this process's own sums (the parameter
 * gradients are added up over the processes with the rest of the gradients). */
void rn_bn_backward_train_allsum(float *dx, float *dgamma, float *dbeta, const float *dy,
                                 const float *relu_y, const float *x, const float *gamma,
                                 const float *mean, const float *var, int n, int c, int hw,
                                 float eps, const rn_bn_allsum *s);

#endif
