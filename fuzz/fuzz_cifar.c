/* libFuzzer harness: CIFAR-10 and CIFAR-100 binary files (src/train/dataset_cifar.c) and their
 * label-name files, on any bytes. The files are written into a private folder:
 *   byte 0   bit 0: CIFAR-100 (train.bin / test.bin, fine_label_names.txt), else CIFAR-10
 *            (data_batch_1..5.bin / test_batch.bin, batches.meta.txt); bit 1: the train split
 *            (CIFAR-10: the same records in each of the five batch files); bit 2: a names file
 *   byte 1-2 length of the names file (little-endian, cut to what is there), when bit 2 is set
 *   then the names file, then the records (the rest).
 * An accepted data set must hold n 3 x 32 x 32 images with every label below `classes`, and a
 * name for every class.
 * Seeds: fuzz/corpus/cifar (fuzz/make_corpus.sh). */
#include "fuzz_common.h"

#include "resnet.h"
#include "train/dataset.h"

static void check(const rn_dataset *d, int classes)
{
    if (d->n <= 0 || d->c != 3 || d->h != 32 || d->w != 32 || d->classes != classes) abort();
    unsigned sum = 0;
    for (size_t i = 0; i < (size_t)d->n * 3072; i++) sum += d->pixels[i];
    (void)sum;
    for (int i = 0; i < d->n; i++)
        if (d->labels[i] < 0 || d->labels[i] >= classes) abort();
    if (!d->names) abort();
    for (int i = 0; i < classes; i++)
        if (!d->names[i]) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    int flags = data[0];
    data++, size--;
    int c100 = flags & 1, train = (flags & 2) != 0;
    const char *names_file = c100 ? "fine_label_names.txt" : "batches.meta.txt";
    const char *other_names = c100 ? "batches.meta.txt" : "fine_label_names.txt";
    fuzz_dir_file(other_names, NULL, 0);
    if (flags & 4) {
        if (size < 2) return 0;
        size_t nn = (size_t)data[0] | (size_t)data[1] << 8;
        data += 2, size -= 2;
        if (nn > size) nn = size;
        fuzz_dir_file(names_file, data, nn);
        data += nn, size -= nn;
    } else {
        fuzz_dir_file(names_file, NULL, 0);
    }
    rn_dataset *d = NULL;
    int st;
    if (c100) {
        fuzz_dir_file(train ? "train.bin" : "test.bin", data, size);
        st = rn_dataset_load_cifar100(&d, fuzz_dir(), train ? RN_SPLIT_TRAIN : RN_SPLIT_TEST);
    } else if (train) {
        for (int i = 1; i <= 5; i++) {
            char name[32];
            snprintf(name, sizeof name, "data_batch_%d.bin", i);
            fuzz_dir_file(name, data, size);
        }
        st = rn_dataset_load_cifar10(&d, fuzz_dir(), RN_SPLIT_TRAIN);
    } else {
        fuzz_dir_file("test_batch.bin", data, size);
        st = rn_dataset_load_cifar10(&d, fuzz_dir(), RN_SPLIT_TEST);
    }
    if (st == RN_OK) {
        check(d, c100 ? 100 : 10);
        rn_dataset_free(d);
    } else if (d) {
        abort(); /* a refused file hands out no data set */
    }
    return 0;
}
