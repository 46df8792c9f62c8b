/* IDX files (MNIST, Fashion-MNIST): a big-endian header (0, 0, type 0x08 = ubyte, number of
 * dimensions, then each dimension) followed by the bytes. zlib's gzread reads gzip and raw
 * files alike, so one reader serves both. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core/error.h"
#include "train/dataset.h"
#include "train/dataset_internal.h"

/* Reads exactly n bytes; what is wrong when it cannot names the file. */
static int read_exact(gzFile gz, const char *path, void *buf, size_t n, const char *what)
{
    unsigned char *p = buf;
    while (n > 0) {
        unsigned chunk = n > (1u << 30) ? (1u << 30) : (unsigned)n;
        int got = gzread(gz, p, chunk);
        if (got < 0) {
            int err;
            const char *msg = gzerror(gz, &err);
            return rn_fail(RN_ERR_FORMAT, "%s: corrupt or truncated while reading %s (%s)", path,
                           what, msg);
        }
        if (got == 0)
            return rn_fail(RN_ERR_FORMAT, "%s: truncated: file ends inside the %s", path, what);
        p += got;
        n -= (size_t)got;
    }
    return RN_OK;
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Deflate cannot expand more than 1032 times (zlib's FAQ): what a gzip file of n bytes can
 * hold at most, to refuse before allocating a header's claim that no file of that size can back. */
#define IDX_GZIP_MAX_RATIO 1032u

/* Opens path and checks its header: ubyte data with `ndim` dimensions, returned in dims;
 * *room: the most data bytes that can follow the header (exact for a raw file). */
static int idx_open(gzFile *out, const char *path, int ndim, uint32_t *dims, uint64_t *room)
{
    *out = NULL;
    FILE *probe = fopen(path, "rb"); /* gzopen's errno is unreliable; fopen's is not */
    if (!probe)
        return rn_fail(RN_ERR_IO, "%s: %s", path,
                       errno == ENOENT ? "missing file" : strerror(errno));
    long size = -1;
    if (fseek(probe, 0, SEEK_END) == 0) size = ftell(probe);
    fclose(probe);
    if (size < 0) return rn_fail(RN_ERR_IO, "%s: cannot determine the size", path);
    gzFile gz = gzopen(path, "rb");
    if (!gz) return rn_fail(RN_ERR_IO, "%s: cannot open", path);
    unsigned char head[4 + 4 * 3];
    int status = read_exact(gz, path, head, 4, "IDX header");
    if (status == RN_OK && (head[0] != 0 || head[1] != 0 || head[2] != 0x08 || head[3] != ndim))
        status = rn_fail(RN_ERR_FORMAT,
                         "%s: wrong magic %02x %02x %02x %02x (expected 00 00 08 %02x: an IDX "
                         "file of unsigned bytes with %d dimensions)",
                         path, head[0], head[1], head[2], head[3], ndim, ndim);
    if (status == RN_OK) status = read_exact(gz, path, head + 4, 4 * (size_t)ndim, "IDX header");
    if (status != RN_OK) {
        gzclose(gz);
        return status;
    }
    for (int i = 0; i < ndim; i++) dims[i] = be32(head + 4 + 4 * i);
    uint64_t header = 4 + 4 * (uint64_t)ndim;
    *room = gzdirect(gz) ? (uint64_t)size - header : (uint64_t)size * IDX_GZIP_MAX_RATIO;
    *out = gz;
    return RN_OK;
}

/* Refuses a header that declares more bytes than the file can hold. */
static int check_room(const char *path, uint64_t declared, uint64_t room, const char *what)
{
    if (declared <= room) return RN_OK;
    return rn_fail(RN_ERR_FORMAT,
                   "%s: truncated: the header declares %llu bytes of %s, the file can hold at "
                   "most %llu", path, (unsigned long long)declared, what, (unsigned long long)room);
}

/* A file longer than its header says is not the file its header describes. */
static int expect_end(gzFile gz, const char *path)
{
    unsigned char extra;
    int got = gzread(gz, &extra, 1);
    if (got > 0)
        return rn_fail(RN_ERR_FORMAT, "%s: more data than the header's dimensions declare", path);
    if (got < 0) {
        int err;
        return rn_fail(RN_ERR_FORMAT, "%s: corrupt at the end (%s)", path, gzerror(gz, &err));
    }
    return RN_OK;
}

int rn_dataset_load_idx(rn_dataset **out, const char *images_path, const char *labels_path,
                        int classes)
{
    *out = NULL;
    if (classes <= 0 || classes > 256)
        return rn_fail(RN_ERR_ARG, "IDX labels are bytes: classes must be in 1..256 (got %d)",
                       classes);
    uint32_t idims[3], ldims[1];
    uint64_t iroom, lroom;
    gzFile gi = NULL, gl = NULL;
    rn_dataset *d = NULL;
    uint8_t *raw_labels = NULL;
    int status = idx_open(&gi, images_path, 3, idims, &iroom);
    if (status == RN_OK) status = idx_open(&gl, labels_path, 1, ldims, &lroom);
    if (status != RN_OK) goto done;
    if (idims[0] != ldims[0]) {
        status = rn_fail(RN_ERR_FORMAT, "%s: %u images but %s: %u labels", images_path, idims[0],
                         labels_path, ldims[0]);
        goto done;
    }
    if (idims[0] == 0 || idims[0] > (uint32_t)INT32_MAX || idims[1] == 0 || idims[2] == 0 ||
        idims[1] > 65535 || idims[2] > 65535) {
        status = rn_fail(RN_ERR_FORMAT, "%s: implausible dimensions %u x %u x %u", images_path,
                         idims[0], idims[1], idims[2]);
        goto done;
    }
    status = check_room(images_path, (uint64_t)idims[0] * idims[1] * idims[2], iroom, "pixels");
    if (status == RN_OK) status = check_room(labels_path, ldims[0], lroom, "labels");
    if (status != RN_OK) goto done;
    status = rn_dataset_create(&d, (int)idims[0], 1, (int)idims[1], (int)idims[2], classes);
    if (status != RN_OK) goto done;
    status = read_exact(gi, images_path, d->pixels, (size_t)d->n * (size_t)d->h * (size_t)d->w,
                        "pixels");
    if (status == RN_OK) status = expect_end(gi, images_path);
    if (status != RN_OK) goto done;
    raw_labels = malloc((size_t)d->n);
    if (!raw_labels) {
        status = rn_fail(RN_ERR_NOMEM, "%s: out of memory for %d labels", labels_path, d->n);
        goto done;
    }
    status = read_exact(gl, labels_path, raw_labels, (size_t)d->n, "labels");
    if (status == RN_OK) status = expect_end(gl, labels_path);
    for (int i = 0; status == RN_OK && i < d->n; i++) {
        if (raw_labels[i] >= classes)
            status = rn_fail(RN_ERR_FORMAT, "%s: label %d of item %d out of range (%d classes)",
                             labels_path, raw_labels[i], i, classes);
        d->labels[i] = raw_labels[i];
    }
    if (status == RN_OK) status = rn_data_set_source(d, images_path);
done:
    free(raw_labels);
    if (gi) gzclose(gi);
    if (gl) gzclose(gl);
    if (status != RN_OK) {
        rn_dataset_free(d);
        return status;
    }
    *out = d;
    return RN_OK;
}
