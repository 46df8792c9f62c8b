/* The training configuration, described once. Each row is one field of rn_train_config; from
 * this table come its defaults (the library's and `resnet train`'s), its range checks, the
 * JSON written into checkpoints and read back, and the options and --help of `resnet train`.
 * Adding an option is one row here plus its use (and the field in trainer.h).
 *
 * X(TYPE, field, "json key", "--option", "--off-option", "METAVAR",
 *   "library default", "resnet train default", lo, hi, FLAGS, GROUP, "help", "off help")
 *
 * TYPE    INT, FLOAT: a number in [lo, hi] (FLAGS LO_OPEN / HI_OPEN make an end open); the
 *         library default is allowed too, where it means "not set" (subset 0, crop_pad -1).
 *         BOOL: the option sets 1, the off option 0; JSON true/false.
 *         TRI: -1 (the data set's default), the option sets 1, the off option 0.
 *         DATA, PATH, SHAPE, ARCH, ORDERING, SHORTCUT, SCHEDULE, SEED: text, parsed and written
 *         by the functions of config.c (SHAPE fills in_c, in_h and in_w; SCHEDULE the kind and
 *         the milestones); a JSON string.
 * --off-option sets 0 (INT, BOOL, TRI); NULL when there is none. A NULL option: JSON only.
 * FLAGS   RESUMABLE: may be given with --resume (it does not change the results);
 *         NO_DEFAULT_HELP: --help does not print the default.
 * GROUP   the heading of --help the option is listed under (config.c has their texts).
 *
 * The JSON keys are the checkpoint format: never rename one (old checkpoints must still read).
 * The defaults of `resnet train` differ from the library's (He et al.'s CIFAR recipe):
 * resnet8-w32-s2 for 20 epochs with label smoothing (and Fashion-MNIST's default crop and flip)
 * is the recipe that was best on a 5000-image validation split among those that fit 10 minutes
 * on 2 cores of the Zen 5 machines (93.09% in 8:53; docs/results.md). Batch 64 at lr 0.05 rather
 * than 128 at 0.1: 7.00% against 7.24% on the split for resnet8 (7 epochs), 6.48% against 6.64%
 * for this net (10 epochs). */
#ifndef RN_TRAIN_CONFIG_TABLE_H
#define RN_TRAIN_CONFIG_TABLE_H

#define RN_TRAIN_CONFIG_TABLE(X)                                                                   \
    X(DATA, data, "data", "--data", NULL, "KIND", "fashion-mnist", "fashion-mnist", 0, 0, 0,      \
      GROUP_DATA, "fashion-mnist | mnist | cifar10 | cifar100 | folder", NULL)                     \
    X(PATH, data_dir, "data_dir", "--data-dir", NULL, "DIR", "", "", 0, 0, NO_DEFAULT_HELP,       \
      GROUP_DATA,                                                                                  \
      "where the files are (fashion-mnist: " RN_FASHION_MNIST_DIR "); folder: DIR/<class>/*.png|"  \
      "jpg, or DIR/train and DIR/test of those",                                                   \
      NULL)                                                                                        \
    X(INT, subset, "subset", "--subset", NULL, "N", "0", "0", 1, 100000000, NO_DEFAULT_HELP,      \
      GROUP_DATA, "only the first N training and N test images (quick runs, tests)", NULL)         \
    X(INT, val, "val", "--val", NULL, "N", "0", "0", 1, 100000000, NO_DEFAULT_HELP, GROUP_DATA,   \
      "hold out N training images (seeded) and evaluate on them instead of the test set: tune "    \
      "on this, never on the test set",                                                            \
      NULL)                                                                                        \
    X(SHAPE, in_c, "input", "--input-shape", NULL, "CxHxW", "", "", 0, 0, NO_DEFAULT_HELP,        \
      GROUP_DATA, "the network's input; folder: the size images are converted to (default "       \
      "3x32x32); other data: their own shape",                                                     \
      NULL)                                                                                        \
    X(ARCH, arch, "arch", "--arch", NULL, "NAME", "resnet20", "resnet8-w32-s2", 0, 0, 0,          \
      GROUP_NETWORK, "resnet20..1202, plain20..., highway20..., preresnet110/164, resnet18..152, " \
      "wrn-D-K, resnetD-wW-s2; see resnet --help",                                                \
      NULL)                                                                                        \
    X(ORDERING, ordering, "ordering", "--ordering", NULL, "O", "default", "default", 0, 0,        \
      NO_DEFAULT_HELP, GROUP_NETWORK,                                                              \
      "original | bn-after-add | relu-before-add | relu-preact | full-preact (default: the "       \
      "architecture's)",                                                                           \
      NULL)                                                                                        \
    X(SHORTCUT, shortcut, "shortcut", "--shortcut", NULL, "A|B|C", "default", "default", 0, 0,    \
      NO_DEFAULT_HELP, GROUP_NETWORK,                                                              \
      "option A (zero-padded identity), B (projections where needed), C (all)", NULL)              \
    X(BOOL, zero_init_last_bn, "zero_init_last_bn", "--zero-init-last-bn", NULL, "", "0", "0", 0, \
      1, NO_DEFAULT_HELP, GROUP_NETWORK, "start each residual branch at zero", NULL)               \
    X(FLOAT, survival_last, "stochastic_depth", "--stochastic-depth", NULL, "P", "1", "1", 0, 1,  \
      LO_OPEN, GROUP_NETWORK, "survival probability of the last block (linear decay rule)", NULL)  \
    X(FLOAT, gate_bias, "gate_bias", "--gate-bias", NULL, "B", "-2", "-2", -100, 100, 0,          \
      GROUP_NETWORK, "highway gates' initial bias", NULL)                                          \
    X(INT, epochs, "epochs", "--epochs", NULL, "N", "10", "20", 1, 100000, 0, GROUP_OPTIM,        \
      "passes over the training set", NULL)                                                        \
    X(INT, batch, "batch", "--batch", NULL, "N", "128", "64", 1, 65536, 0, GROUP_OPTIM,           \
      "images per step", NULL)                                                                     \
    X(INT, accum, "accum", "--accum", NULL, "K", "1", "1", 1, 65536, 0, GROUP_OPTIM,              \
      "split each batch into K micro-batches whose gradients add up to the batch's (when a "       \
      "batch does not fit in memory; BN sees micro-batches)",                                      \
      NULL)                                                                                        \
    X(FLOAT, lr, "lr", "--lr", NULL, "LR", "0.1", "0.05", 0, 3e38, LO_OPEN, GROUP_OPTIM,          \
      "base learning rate", NULL)                                                                  \
    X(SCHEDULE, schedule, "schedule", "--schedule", NULL, "S", "step", "cosine", 0, 0, 0,         \
      GROUP_OPTIM,                                                                                 \
      "cosine | step (divide by 10 at 50% and 75% of training, the paper's) | step:F1,F2,... "     \
      "(at those fractions) | constant",                                                           \
      NULL)                                                                                        \
    X(FLOAT, warmup, "warmup", "--warmup", NULL, "E", "0", "0", 0, 100000, 0, GROUP_OPTIM,        \
      "linear warm-up over the first E epochs (fractions allowed)", NULL)                          \
    X(FLOAT, momentum, "momentum", "--momentum", NULL, "M", "0.9", "0.9", 0, 1, HI_OPEN,          \
      GROUP_OPTIM, "SGD momentum", NULL)                                                           \
    X(BOOL, nesterov, "nesterov", "--nesterov", NULL, "", "0", "0", 0, 1, NO_DEFAULT_HELP,        \
      GROUP_OPTIM, "Nesterov momentum", NULL)                                                      \
    X(FLOAT, weight_decay, "weight_decay", "--wd", NULL, "W", "1e-4", "5e-4", 0, 10, 0,           \
      GROUP_OPTIM, "weight decay", NULL)                                                           \
    X(BOOL, decay_1d, "decay_bn", NULL, "--no-wd-bn", "", "1", "1", 0, 1, NO_DEFAULT_HELP,        \
      GROUP_OPTIM, NULL, "no weight decay on BN parameters and biases")                            \
    X(FLOAT, label_smoothing, "label_smoothing", "--label-smoothing", NULL, "E", "0", "0.1", 0,   \
      1, HI_OPEN, GROUP_OPTIM, "targets (1 - E) one-hot + E / classes; 0: off", NULL)             \
    X(FLOAT, clip_grad_norm, "clip_grad_norm", "--clip-grad-norm", NULL, "C", "0", "0", 0, 1e6, 0, \
      GROUP_OPTIM, "scale the gradients down to L2 norm C when above it; 0: off", NULL)           \
    X(INT, crop_pad, "crop_pad", "--crop-pad", "--no-crop", "P", "-1", "-1", 0, 64,               \
      NO_DEFAULT_HELP, GROUP_AUGMENT, "random crop with P pixels of zero padding",                 \
      "no random crop")                                                                            \
    X(TRI, flip, "flip", "--flip", "--no-flip", "", "-1", "-1", 0, 1, NO_DEFAULT_HELP,            \
      GROUP_AUGMENT, "random horizontal flips", "no random flips")                                 \
    X(FLOAT, erase, "erase", "--erase", NULL, "P", "0", "0", 0, 1, 0, GROUP_AUGMENT,              \
      "random erasing: with probability P a rectangle of 2-40% of the image becomes random "       \
      "pixels; 0: off",                                                                           \
      NULL)                                                                                        \
    X(SEED, seed, "seed", "--seed", NULL, "S", "1", "1", 0, 0, 0, GROUP_RUN,                      \
      "every random choice (init, split, order, augmentation)", NULL)                              \
    X(INT, threads, "threads", "--threads", NULL, "T", "0", "0", 1, 1024,                         \
      RESUMABLE | NO_DEFAULT_HELP, GROUP_RUN,                                                      \
      "OpenMP threads (default: all cores); results do not depend on it", NULL)               \
    X(BN, bn_local, "bn", "--bn", NULL, "MODE", "sync", "sync", 0, 0, 0, GROUP_RUN,               \
      "under mpirun: sync (batch norm statistics over the global batch, as one process computes "  \
      "them) | local (each process's own slice, as DistributedDataParallel)",                      \
      NULL)

#endif
