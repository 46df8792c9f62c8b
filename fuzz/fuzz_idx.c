/* libFuzzer harness: IDX data sets (src/train/dataset_idx.c), raw and gzip, on any bytes.
 * The input is split into an images file and a labels file:
 *   byte 0   bit 0: gzip the images file, bit 1: gzip the labels file (the harness compresses,
 *            so the fuzzer mutates the IDX bytes behind the gzip layer too); raw bytes that
 *            happen to start like gzip reach zlib's gzip path on their own
 *   byte 1   classes - 1 (1..256)
 *   byte 2-3 length of the images file (little-endian, cut to what is there)
 *   then the images file, then the labels file (the rest).
 * An accepted data set must hold n images of h x w with every label below `classes`.
 * Seeds: fuzz/corpus/idx (fuzz/make_corpus.sh). */
#include "fuzz_common.h"

#include <zlib.h>

#include "resnet.h"
#include "train/dataset.h"

/* gzip of data into a fresh buffer (free it); *out_size its length. */
static unsigned char *gzip_bytes(const uint8_t *data, size_t size, size_t *out_size)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) abort();
    size_t cap = deflateBound(&z, (uLong)size) + 64;
    unsigned char *out = malloc(cap);
    if (!out) abort();
    z.next_in = (Bytef *)data;
    z.avail_in = (uInt)size;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    if (deflate(&z, Z_FINISH) != Z_STREAM_END) abort();
    *out_size = z.total_out;
    deflateEnd(&z);
    return out;
}

/* Writes part to memory file `slot`, gzip'ed when asked; returns the path. */
static const char *put(int slot, const uint8_t *part, size_t size, int gz)
{
    if (!gz) return fuzz_memfile(slot, part, size);
    size_t n;
    unsigned char *z = gzip_bytes(part, size, &n);
    const char *path = fuzz_memfile(slot, z, n);
    free(z);
    return path;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4) return 0;
    int flags = data[0], classes = data[1] + 1;
    size_t ni = (size_t)data[2] | (size_t)data[3] << 8;
    data += 4, size -= 4;
    if (ni > size) ni = size;
    const char *images = put(0, data, ni, flags & 1);
    const char *labels = put(1, data + ni, size - ni, flags & 2);
    rn_dataset *d = NULL;
    if (rn_dataset_load_idx(&d, images, labels, classes) == RN_OK) {
        if (d->n <= 0 || d->c != 1 || d->h <= 0 || d->w <= 0 || d->classes != classes) abort();
        size_t px = (size_t)d->n * (size_t)d->h * (size_t)d->w;
        unsigned sum = 0;
        for (size_t i = 0; i < px; i++) sum += d->pixels[i];
        (void)sum;
        for (int i = 0; i < d->n; i++)
            if (d->labels[i] < 0 || d->labels[i] >= classes) abort();
        rn_dataset_free(d);
    } else if (d) {
        abort(); /* a refused file hands out no data set */
    }
    return 0;
}
