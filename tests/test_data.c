/* Tests of the data sets (src/train/dataset*.c) and the batch loader (src/train/loader.c).
 * Every file is generated here, in a temporary directory, in exactly the published formats
 * (IDX raw and gzip, CIFAR-10/100 binary, a folder of PNG and JPEG images written with
 * stb_image_write), so pixels and labels can be checked byte for byte. */
#define _POSIX_C_SOURCE 200809L

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <stb/stb_image_write.h>

#include "resnet.h"
#include "support/tmpdir.h"
#include "train/dataset.h"
#include "train/loader.h"

/* ---- helpers ---------------------------------------------------------------------------- */

/* rn_test_dir()/rel: every generated file lives under the temporary directory. */
static void tpath(char *buf, size_t cap, const char *rel)
{
    snprintf(buf, cap, "%s/%s", rn_test_dir(), rel);
}

/* Makes rn_test_dir()/rel (and its parents), removing what was there first. */
static void mkdir_fresh(const char *rel)
{
    char p[512];
    tpath(p, sizeof p, rel);
    rn_test_rm_rf(p);
    /* parents too */
    for (char *s = p + strlen(rn_test_dir()) + 1; *s; s++) {
        if (*s == '/') {
            *s = '\0';
            mkdir(p, 0755);
            *s = '/';
        }
    }
    assert_int_equal(mkdir(p, 0755), 0);
}

static void write_gz(const char *path, const void *p, size_t n)
{
    gzFile gz = gzopen(path, "wb");
    assert_non_null(gz);
    if (n) assert_int_equal(gzwrite(gz, p, (unsigned)n), (int)n);
    assert_int_equal(gzclose(gz), Z_OK);
}

static void expect_contains(const char *msg, const char *needle)
{
    if (needle && !strstr(msg, needle)) fail_msg("message \"%s\" lacks \"%s\"", msg, needle);
}

/* The call's status must be `status`, and its message must name `file` and say `what`. */
static void expect_error(int rc, int status, const char *file, const char *what)
{
    const char *msg = rn_last_error();
    if (rc != status) fail_msg("status %d, expected %d (message \"%s\")", rc, status, msg);
    expect_contains(msg, file);
    expect_contains(msg, what);
}

/* A pixel value that differs between neighbouring samples, channels, rows and columns. */
static uint8_t pattern(int i, int c, int y, int x)
{
    return (uint8_t)(i * 37 + c * 101 + y * 13 + x * 7 + (i * y * x) % 5);
}

/* ---- IDX -------------------------------------------------------------------------------- */

enum { IDX_N = 7, IDX_H = 5, IDX_W = 4 };

/* IDX bytes: magic 00 00 08 ndim, big-endian dims, data. */
static unsigned char *idx_bytes(int ndim, const uint32_t *dims, const uint8_t *data, size_t n,
                                size_t *len)
{
    *len = 4 + 4 * (size_t)ndim + n;
    unsigned char *b = malloc(*len);
    assert_non_null(b);
    b[0] = 0, b[1] = 0, b[2] = 0x08, b[3] = (unsigned char)ndim;
    for (int i = 0; i < ndim; i++)
        for (int k = 0; k < 4; k++) b[4 + 4 * i + k] = (unsigned char)(dims[i] >> (24 - 8 * k));
    memcpy(b + 4 + 4 * ndim, data, n);
    return b;
}

/* Writes images and labels for IDX_N samples with labels (i * 3) % 10 under dir, named
 * prefix-images-idx3-ubyte[.gz] and prefix-labels-idx1-ubyte[.gz]. */
static void write_idx_pair(const char *rel_dir, const char *prefix, int gz, int label_offset)
{
    uint8_t pix[IDX_N * IDX_H * IDX_W], lab[IDX_N];
    for (int i = 0; i < IDX_N; i++) {
        lab[i] = (uint8_t)((i * 3 + label_offset) % 10);
        for (int y = 0; y < IDX_H; y++)
            for (int x = 0; x < IDX_W; x++) pix[(i * IDX_H + y) * IDX_W + x] = pattern(i, 0, y, x);
    }
    uint32_t idims[3] = {IDX_N, IDX_H, IDX_W}, ldims[1] = {IDX_N};
    size_t li, ll;
    unsigned char *bi = idx_bytes(3, idims, pix, sizeof pix, &li);
    unsigned char *bl = idx_bytes(1, ldims, lab, sizeof lab, &ll);
    char rel[256], path[512];
    snprintf(rel, sizeof rel, "%s/%s-images-idx3-ubyte%s", rel_dir, prefix, gz ? ".gz" : "");
    tpath(path, sizeof path, rel);
    (gz ? write_gz : rn_test_write_file)(path, bi, li);
    snprintf(rel, sizeof rel, "%s/%s-labels-idx1-ubyte%s", rel_dir, prefix, gz ? ".gz" : "");
    tpath(path, sizeof path, rel);
    (gz ? write_gz : rn_test_write_file)(path, bl, ll);
    free(bi);
    free(bl);
}

static void check_idx(const rn_dataset *d, int label_offset)
{
    assert_int_equal(d->n, IDX_N);
    assert_int_equal(d->c, 1);
    assert_int_equal(d->h, IDX_H);
    assert_int_equal(d->w, IDX_W);
    assert_int_equal(d->classes, 10);
    for (int i = 0; i < IDX_N; i++) {
        assert_int_equal(d->labels[i], (i * 3 + label_offset) % 10);
        for (int y = 0; y < IDX_H; y++)
            for (int x = 0; x < IDX_W; x++)
                assert_int_equal(d->pixels[(i * IDX_H + y) * IDX_W + x], pattern(i, 0, y, x));
    }
}

static void test_idx_round_trip(void **state)
{
    (void)state;
    for (int gz = 0; gz <= 1; gz++) {
        const char *rel = gz ? "idx_gz" : "idx_raw";
        mkdir_fresh(rel);
        write_idx_pair(rel, "train", gz, 0);
        write_idx_pair(rel, "t10k", gz, 1);
        char dir[512], images[600], labels[600];
        tpath(dir, sizeof dir, rel);
        snprintf(images, sizeof images, "%s/train-images-idx3-ubyte%s", dir, gz ? ".gz" : "");
        snprintf(labels, sizeof labels, "%s/train-labels-idx1-ubyte%s", dir, gz ? ".gz" : "");

        rn_dataset *d = NULL;
        assert_int_equal(rn_dataset_load_idx(&d, images, labels, 10), RN_OK);
        check_idx(d, 0);
        assert_null(d->names);
        assert_string_equal(d->source, images);
        rn_dataset_free(d);

        /* by kind: the file names are found, and the names come with the kind */
        rn_data_source src;
        rn_data_source_init(&src, gz ? RN_DATA_FASHION_MNIST : RN_DATA_MNIST, dir);
        assert_int_equal(rn_dataset_load(&d, &src, RN_SPLIT_TRAIN), RN_OK);
        check_idx(d, 0);
        assert_non_null(d->names);
        assert_string_equal(d->names[0], gz ? "T-shirt/top" : "0");
        assert_string_equal(d->names[9], gz ? "Ankle boot" : "9");
        rn_dataset_free(d);
        assert_int_equal(rn_dataset_load(&d, &src, RN_SPLIT_TEST), RN_OK);
        check_idx(d, 1);
        assert_true(rn_dataset_has_split(&src, RN_SPLIT_TEST));
        rn_dataset_free(d);
    }
}

static void test_idx_errors(void **state)
{
    (void)state;
    mkdir_fresh("idx_bad");
    write_idx_pair("idx_bad", "train", 0, 0);
    char good_i[512], good_l[512], p[512];
    tpath(good_i, sizeof good_i, "idx_bad/train-images-idx3-ubyte");
    tpath(good_l, sizeof good_l, "idx_bad/train-labels-idx1-ubyte");
    size_t ni, nl;
    unsigned char *bi = rn_test_read_file(good_i, &ni), *bl = rn_test_read_file(good_l, &nl);
    rn_dataset *d = (rn_dataset *)&d;

    /* missing file */
    tpath(p, sizeof p, "idx_bad/nothing-here");
    expect_error(rn_dataset_load_idx(&d, p, good_l, 10), RN_ERR_IO, p, "missing file");
    assert_null(d);
    expect_error(rn_dataset_load_idx(&d, good_i, p, 10), RN_ERR_IO, p, "missing file");

    /* missing by kind: both spellings named */
    char dir[512];
    tpath(dir, sizeof dir, "idx_bad");
    rn_data_source src;
    rn_data_source_init(&src, RN_DATA_MNIST, dir);
    expect_error(rn_dataset_load(&d, &src, RN_SPLIT_TEST), RN_ERR_IO,
                 "t10k-images-idx3-ubyte(.gz)", "missing file");
    rn_data_source_init(&src, RN_DATA_MNIST, NULL);
    expect_error(rn_dataset_load(&d, &src, RN_SPLIT_TRAIN), RN_ERR_ARG, "mnist", "--data-dir");
    tpath(p, sizeof p, "no-such-dir");
    rn_data_source_init(&src, RN_DATA_CIFAR10, p);
    expect_error(rn_dataset_load(&d, &src, RN_SPLIT_TRAIN), RN_ERR_IO, p, "missing");

    /* truncated pixels, raw and gzip */
    tpath(p, sizeof p, "idx_bad/short-images");
    rn_test_write_file(p, bi, ni - 3);
    expect_error(rn_dataset_load_idx(&d, p, good_l, 10), RN_ERR_FORMAT, p, "truncated");
    tpath(p, sizeof p, "idx_bad/short-images.gz");
    write_gz(p, bi, ni - 3);
    expect_error(rn_dataset_load_idx(&d, p, good_l, 10), RN_ERR_FORMAT, p, "truncated");
    /* a gzip stream cut short (the compressed bytes themselves truncated) */
    {
        char full[512];
        tpath(full, sizeof full, "idx_bad/full.gz");
        write_gz(full, bi, ni);
        size_t nz;
        unsigned char *z = rn_test_read_file(full, &nz);
        tpath(p, sizeof p, "idx_bad/cut.gz");
        rn_test_write_file(p, z, nz / 2);
        free(z);
        assert_int_not_equal(rn_dataset_load_idx(&d, p, good_l, 10), RN_OK);
        expect_contains(rn_last_error(), p);
        assert_null(d);
    }
    /* truncated header */
    tpath(p, sizeof p, "idx_bad/stub");
    rn_test_write_file(p, bi, 6);
    expect_error(rn_dataset_load_idx(&d, p, good_l, 10), RN_ERR_FORMAT, p, "truncated");

    /* wrong magic: labels file given as images, and a corrupted type byte */
    expect_error(rn_dataset_load_idx(&d, good_l, good_l, 10), RN_ERR_FORMAT, good_l,
                 "wrong magic");
    tpath(p, sizeof p, "idx_bad/magic");
    bi[2] = 0x0D; /* float data */
    rn_test_write_file(p, bi, ni);
    bi[2] = 0x08;
    expect_error(rn_dataset_load_idx(&d, p, good_l, 10), RN_ERR_FORMAT, p, "wrong magic");

    /* count mismatch: 6 labels for 7 images */
    tpath(p, sizeof p, "idx_bad/six-labels");
    {
        uint32_t dims[1] = {IDX_N - 1};
        size_t len;
        unsigned char *b = idx_bytes(1, dims, bl + 8, IDX_N - 1, &len);
        rn_test_write_file(p, b, len);
        free(b);
    }
    expect_error(rn_dataset_load_idx(&d, good_i, p, 10), RN_ERR_FORMAT, p, "7 images");
    expect_contains(rn_last_error(), "6 labels");
    expect_contains(rn_last_error(), good_i);

    /* label out of range */
    tpath(p, sizeof p, "idx_bad/label-10");
    bl[8 + 4] = 10;
    rn_test_write_file(p, bl, nl);
    expect_error(rn_dataset_load_idx(&d, good_i, p, 10), RN_ERR_FORMAT, p, "out of range");

    /* more data than declared */
    tpath(p, sizeof p, "idx_bad/long-images");
    {
        unsigned char *b = malloc(ni + 1);
        assert_non_null(b);
        memcpy(b, bi, ni);
        b[ni] = 1;
        rn_test_write_file(p, b, ni + 1);
        free(b);
    }
    expect_error(rn_dataset_load_idx(&d, p, good_l, 10), RN_ERR_FORMAT, p, "more data");
    assert_null(d);
    free(bi);
    free(bl);
}

/* ---- CIFAR ------------------------------------------------------------------------------ */

/* Label of global sample i. For CIFAR-100 the fine label covers 0..99 across the samples. */
static int cifar_label(int i, int classes) { return (i * 7 + 3) % classes; }

/* Writes `count` records for samples first.. into rel. */
static void write_cifar(const char *rel, int first, int count, int hundred)
{
    size_t rec = hundred ? 3074 : 3073;
    unsigned char *b = malloc(rec * (size_t)count);
    assert_non_null(b);
    for (int r = 0; r < count; r++) {
        int i = first + r;
        unsigned char *p = b + rec * (size_t)r;
        if (hundred) {
            p[0] = (unsigned char)(cifar_label(i, 100) / 5); /* coarse, 0..19 */
            p[1] = (unsigned char)cifar_label(i, 100);
        } else {
            p[0] = (unsigned char)cifar_label(i, 10);
        }
        unsigned char *px = p + (hundred ? 2 : 1);
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < 32; y++)
                for (int x = 0; x < 32; x++) px[(c * 32 + y) * 32 + x] = pattern(i, c, y, x);
    }
    char path[512];
    tpath(path, sizeof path, rel);
    rn_test_write_file(path, b, rec * (size_t)count);
    free(b);
}

static void check_cifar(const rn_dataset *d, int first, int n, int classes)
{
    assert_int_equal(d->n, n);
    assert_int_equal(d->c, 3);
    assert_int_equal(d->h, 32);
    assert_int_equal(d->w, 32);
    assert_int_equal(d->classes, classes);
    for (int s = 0; s < n; s++) {
        int i = first + s;
        assert_int_equal(d->labels[s], cifar_label(i, classes));
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < 32; y++)
                for (int x = 0; x < 32; x++)
                    assert_int_equal(d->pixels[((size_t)(s * 3 + c) * 32 + y) * 32 + x],
                                     pattern(i, c, y, x));
    }
}

static const int cifar10_counts[5] = {3, 2, 1, 4, 2}; /* 12 train samples over five files */

static void make_cifar10(const char *rel)
{
    mkdir_fresh(rel);
    char name[256];
    int first = 0;
    for (int b = 0; b < 5; b++) {
        snprintf(name, sizeof name, "%s/data_batch_%d.bin", rel, b + 1);
        write_cifar(name, first, cifar10_counts[b], 0);
        first += cifar10_counts[b];
    }
    snprintf(name, sizeof name, "%s/test_batch.bin", rel);
    write_cifar(name, 100, 5, 0);
}

static void test_cifar10(void **state)
{
    (void)state;
    make_cifar10("c10");
    char dir[512], p[600];
    tpath(dir, sizeof dir, "c10");
    rn_data_source src;
    rn_data_source_init(&src, RN_DATA_CIFAR10, dir);
    rn_dataset *d = NULL;
    assert_int_equal(rn_dataset_load(&d, &src, RN_SPLIT_TRAIN), RN_OK);
    check_cifar(d, 0, 12, 10);
    assert_non_null(d->names); /* the published names when there is no batches.meta.txt */
    assert_string_equal(d->names[0], "airplane");
    assert_string_equal(d->names[9], "truck");
    rn_dataset_free(d);

    /* batches.meta.txt as published: one name a line, blank lines at the end */
    snprintf(p, sizeof p, "%s/batches.meta.txt", dir);
    const char *meta = "a0\nb1\nc2\nd3\ne4\nf5\ng6\nh7\ni8\nj 9\r\n\n\n";
    rn_test_write_file(p, meta, strlen(meta));
    assert_int_equal(rn_dataset_load_cifar10(&d, dir, RN_SPLIT_TEST), RN_OK);
    check_cifar(d, 100, 5, 10);
    assert_string_equal(d->names[0], "a0");
    assert_string_equal(d->names[9], "j 9");
    rn_dataset_free(d);

    /* a names file with the wrong count is named */
    rn_test_write_file(p, "a\nb\n", 4);
    expect_error(rn_dataset_load_cifar10(&d, dir, RN_SPLIT_TEST), RN_ERR_FORMAT, p,
                 "2 label names for 10 classes");
    unlink(p);

    /* missing batch */
    snprintf(p, sizeof p, "%s/data_batch_4.bin", dir);
    char moved[600];
    snprintf(moved, sizeof moved, "%s/moved.bin", dir);
    assert_int_equal(rename(p, moved), 0);
    expect_error(rn_dataset_load_cifar10(&d, dir, RN_SPLIT_TRAIN), RN_ERR_IO, p, "missing file");
    assert_int_equal(rename(moved, p), 0);

    /* truncated: one record less a byte */
    size_t n;
    unsigned char *b = rn_test_read_file(p, &n);
    rn_test_write_file(p, b, n - 1);
    expect_error(rn_dataset_load_cifar10(&d, dir, RN_SPLIT_TRAIN), RN_ERR_FORMAT, p, "truncated");
    rn_test_write_file(p, b, 0);
    expect_error(rn_dataset_load_cifar10(&d, dir, RN_SPLIT_TRAIN), RN_ERR_FORMAT, p, "empty");
    /* label out of range in the second record */
    b[3073] = 10;
    rn_test_write_file(p, b, n);
    expect_error(rn_dataset_load_cifar10(&d, dir, RN_SPLIT_TRAIN), RN_ERR_FORMAT, p,
                 "label 10 out of range");
    expect_contains(rn_last_error(), "record 1");
    assert_null(d);
    free(b);
}

static void test_cifar100(void **state)
{
    (void)state;
    mkdir_fresh("c100");
    write_cifar("c100/train.bin", 0, 120, 1); /* every fine label 0..99 appears */
    write_cifar("c100/test.bin", 500, 3, 1);
    char dir[512], p[600];
    tpath(dir, sizeof dir, "c100");
    rn_data_source src;
    rn_data_source_init(&src, RN_DATA_CIFAR100, dir);
    rn_dataset *d = NULL;
    assert_int_equal(rn_dataset_load(&d, &src, RN_SPLIT_TRAIN), RN_OK);
    check_cifar(d, 0, 120, 100);
    assert_string_equal(d->names[0], "apple");
    assert_string_equal(d->names[99], "worm");
    rn_dataset_free(d);

    snprintf(p, sizeof p, "%s/fine_label_names.txt", dir);
    FILE *fp = fopen(p, "w");
    assert_non_null(fp);
    for (int k = 0; k < 100; k++) fprintf(fp, "fine%d\n", k);
    fclose(fp);
    assert_int_equal(rn_dataset_load(&d, &src, RN_SPLIT_TEST), RN_OK);
    check_cifar(d, 500, 3, 100);
    assert_string_equal(d->names[42], "fine42");
    rn_dataset_free(d);

    /* fine label 100, then coarse label 20 */
    snprintf(p, sizeof p, "%s/test.bin", dir);
    size_t n;
    unsigned char *b = rn_test_read_file(p, &n);
    b[3074 * 2 + 1] = 100;
    rn_test_write_file(p, b, n);
    expect_error(rn_dataset_load(&d, &src, RN_SPLIT_TEST), RN_ERR_FORMAT, p,
                 "label 100 out of range");
    expect_contains(rn_last_error(), "record 2");
    b[3074 * 2 + 1] = 99;
    b[0] = 20;
    rn_test_write_file(p, b, n);
    expect_error(rn_dataset_load(&d, &src, RN_SPLIT_TEST), RN_ERR_FORMAT, p, "coarse label");
    /* a CIFAR-10 file is not whole CIFAR-100 records */
    write_cifar("c100/test.bin", 0, 5, 0);
    expect_error(rn_dataset_load(&d, &src, RN_SPLIT_TEST), RN_ERR_FORMAT, p, "truncated");
    free(b);
}

/* ---- folders of images -------------------------------------------------------------------- */

static void write_png(const char *rel, int w, int h, int comp, const uint8_t *hwc)
{
    char p[512];
    tpath(p, sizeof p, rel);
    assert_true(stbi_write_png(p, w, h, comp, hwc, w * comp) != 0);
}

/* An RGB image [h, w, 3] with pattern(i, c, y, x). */
static void pattern_hwc(uint8_t *out, int i, int h, int w)
{
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < 3; c++) out[(y * w + x) * 3 + c] = pattern(i, c, y, x);
}

enum { FH = 5, FW = 6 };

/* train: cat (2 PNG), dog (1 PNG + 1 JPEG + a text file), emu (1 grey PNG); test: dog only. */
static void make_folder(const char *rel)
{
    char sub[256];
    uint8_t img[FH * FW * 3];
    mkdir_fresh(rel);
    const char *dirs[] = {"train/cat", "train/dog", "train/emu", "test/dog", "train/.hidden"};
    for (int k = 0; k < 5; k++) {
        snprintf(sub, sizeof sub, "%s/%s", rel, dirs[k]);
        mkdir_fresh(sub);
    }
    pattern_hwc(img, 0, FH, FW);
    snprintf(sub, sizeof sub, "%s/train/cat/b.png", rel);
    write_png(sub, FW, FH, 3, img);
    pattern_hwc(img, 1, FH, FW);
    snprintf(sub, sizeof sub, "%s/train/cat/a.PNG", rel); /* sorted before b.png */
    write_png(sub, FW, FH, 3, img);
    pattern_hwc(img, 2, FH, FW);
    snprintf(sub, sizeof sub, "%s/train/dog/x.png", rel);
    write_png(sub, FW, FH, 3, img);
    snprintf(sub, sizeof sub, "%s/train/dog/notes.txt", rel);
    char p[512];
    tpath(p, sizeof p, sub);
    rn_test_write_file(p, "not an image", 12);
    /* a flat JPEG: lossy, but a flat colour survives within a few levels */
    for (int k = 0; k < FH * FW; k++) img[3 * k] = 200, img[3 * k + 1] = 100, img[3 * k + 2] = 50;
    snprintf(sub, sizeof sub, "%s/train/dog/y.jpg", rel);
    tpath(p, sizeof p, sub);
    assert_true(stbi_write_jpg(p, FW, FH, 3, img, 95) != 0);
    /* grey 1-channel PNG */
    uint8_t grey[FH * FW];
    for (int k = 0; k < FH * FW; k++) grey[k] = (uint8_t)(k * 8);
    snprintf(sub, sizeof sub, "%s/train/emu/g.png", rel);
    write_png(sub, FW, FH, 1, grey);
    pattern_hwc(img, 3, FH, FW);
    snprintf(sub, sizeof sub, "%s/test/dog/t.png", rel);
    write_png(sub, FW, FH, 3, img);
}

static void check_rgb(const rn_dataset *d, int s, int i)
{
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < FH; y++)
            for (int x = 0; x < FW; x++)
                assert_int_equal(d->pixels[((size_t)(s * 3 + c) * FH + y) * FW + x],
                                 pattern(i, c, y, x));
}

static void test_folder(void **state)
{
    (void)state;
    make_folder("fold");
    char dir[512];
    tpath(dir, sizeof dir, "fold");
    rn_data_source src;
    rn_data_source_init(&src, RN_DATA_FOLDER, dir);
    src.c = 3, src.h = FH, src.w = FW;
    rn_dataset *d = NULL;
    assert_int_equal(rn_dataset_load(&d, &src, RN_SPLIT_TRAIN), RN_OK);
    assert_int_equal(d->n, 5);
    assert_int_equal(d->classes, 3);
    assert_string_equal(d->names[0], "cat");
    assert_string_equal(d->names[1], "dog");
    assert_string_equal(d->names[2], "emu");
    const int want_labels[5] = {0, 0, 1, 1, 2};
    for (int s = 0; s < 5; s++) assert_int_equal(d->labels[s], want_labels[s]);
    check_rgb(d, 0, 1); /* a.PNG */
    check_rgb(d, 1, 0); /* b.png */
    check_rgb(d, 2, 2); /* x.png */
    const int flat[3] = {200, 100, 50};
    for (int c = 0; c < 3; c++)
        for (int k = 0; k < FH * FW; k++)
            assert_true(abs(d->pixels[(size_t)(3 * 3 + c) * FH * FW + k] - flat[c]) <= 4);
    for (int c = 0; c < 3; c++) /* grey to RGB repeats the grey value */
        for (int k = 0; k < FH * FW; k++)
            assert_int_equal(d->pixels[(size_t)(4 * 3 + c) * FH * FW + k], k * 8);
    rn_dataset_free(d);

    /* the test split numbers its classes as train does */
    assert_true(rn_dataset_has_split(&src, RN_SPLIT_TEST));
    assert_int_equal(rn_dataset_load(&d, &src, RN_SPLIT_TEST), RN_OK);
    assert_int_equal(d->n, 1);
    assert_int_equal(d->classes, 3);
    assert_int_equal(d->labels[0], 1);
    assert_string_equal(d->names[2], "emu");
    check_rgb(d, 0, 3);
    rn_dataset_free(d);

    /* 1 channel, resized: RGB to grey is stb's luma; a flat image stays flat when resized */
    src.c = 1, src.h = 3, src.w = 4;
    assert_int_equal(rn_dataset_load(&d, &src, RN_SPLIT_TRAIN), RN_OK);
    assert_int_equal(d->c, 1);
    assert_int_equal(d->h, 3);
    assert_int_equal(d->w, 4);
    int luma = (200 * 77 + 100 * 150 + 50 * 29) >> 8;
    for (int k = 0; k < 12; k++) assert_true(abs(d->pixels[3 * 12 + k] - luma) <= 5);
    rn_dataset_free(d);

    /* rn_image_load: what predict uses, the same bytes as the folder loader */
    uint8_t one[3 * FH * FW];
    char p[600];
    snprintf(p, sizeof p, "%s/train/dog/x.png", dir);
    assert_int_equal(rn_image_load(p, 3, FH, FW, one), RN_OK);
    src.c = 3, src.h = FH, src.w = FW;
    assert_int_equal(rn_dataset_load(&d, &src, RN_SPLIT_TRAIN), RN_OK);
    assert_memory_equal(one, d->pixels + 2 * sizeof one, sizeof one);
    rn_dataset_free(d);

    /* a folder without train/ is the training set itself, with no test split */
    char cls[600];
    snprintf(cls, sizeof cls, "%s/train", dir);
    src.dir = cls;
    assert_false(rn_dataset_has_split(&src, RN_SPLIT_TEST));
    assert_int_equal(rn_dataset_load(&d, &src, RN_SPLIT_TRAIN), RN_OK);
    assert_int_equal(d->n, 5);
    rn_dataset_free(d);
    expect_error(rn_dataset_load(&d, &src, RN_SPLIT_TEST), RN_ERR_IO, cls, "no test split");
}

static void test_folder_errors(void **state)
{
    (void)state;
    char dir[512], p[600];
    rn_dataset *d = (rn_dataset *)&d;
    rn_data_source src;

    /* empty class folder */
    make_folder("fbad");
    tpath(dir, sizeof dir, "fbad");
    rn_data_source_init(&src, RN_DATA_FOLDER, dir);
    src.h = FH, src.w = FW;
    mkdir_fresh("fbad/train/fox");
    snprintf(p, sizeof p, "%s/train/fox", dir);
    expect_error(rn_dataset_load(&d, &src, RN_SPLIT_TRAIN), RN_ERR_FORMAT, p,
                 "empty class folder");
    assert_null(d);
    rn_test_rm_rf(p);

    /* unreadable image */
    snprintf(p, sizeof p, "%s/train/cat/broken.png", dir);
    rn_test_write_file(p, "\x89PNG garbage", 12);
    expect_error(rn_dataset_load(&d, &src, RN_SPLIT_TRAIN), RN_ERR_FORMAT, p,
                 "broken PNG");
    unlink(p);
    expect_error(rn_image_load(p, 3, 4, 4, (uint8_t[48]){0}), RN_ERR_IO, p, "missing file");

    /* a test class the training set does not have */
    mkdir_fresh("fbad/test/yak");
    write_png("fbad/test/yak/y.png", 1, 1, 1, (const uint8_t[]){7});
    snprintf(p, sizeof p, "%s/test/yak", dir);
    expect_error(rn_dataset_load(&d, &src, RN_SPLIT_TEST), RN_ERR_FORMAT, p,
                 "not among the 3 training classes");

    /* train/ without test/ */
    snprintf(p, sizeof p, "%s/test", dir);
    rn_test_rm_rf(p);
    expect_error(rn_dataset_load(&d, &src, RN_SPLIT_TEST), RN_ERR_IO, p, "missing test folder");

    /* no class folders at all */
    mkdir_fresh("fempty");
    tpath(dir, sizeof dir, "fempty");
    src.dir = dir;
    expect_error(rn_dataset_load(&d, &src, RN_SPLIT_TRAIN), RN_ERR_FORMAT, dir,
                 "no class sub-folders");
    src.c = 2;
    expect_error(rn_dataset_load(&d, &src, RN_SPLIT_TRAIN), RN_ERR_ARG, dir, "channels");
    assert_null(d);
}

/* What predict and the folder loader read from untrusted files (src/io/image.c; its own tests
 * are tests/test_image.c): exact pixels, and errors where stb_image returned a picture. The
 * files come from tests/data/images/make_images.py; the tests run from the repository root. */
static void test_image_load_untrusted(void **state)
{
    (void)state;
    const char *dir = "tests/data/images";
    char p[512], q[512];
    size_t n;
    /* 4:2:2 chroma of an odd width: the last column was off by up to 126 levels */
    snprintf(p, sizeof p, "%s/rgb422.jpg.pixels", dir);
    if (access(p, R_OK) != 0) fail_msg("%s: missing (run the tests from the repository root)", p);
    unsigned char *hwc = rn_test_read_file(p, &n);
    assert_int_equal(n, 13 * 9 * 3);
    uint8_t chw[13 * 9 * 3];
    snprintf(p, sizeof p, "%s/rgb422.jpg", dir);
    assert_int_equal(rn_image_load(p, 3, 9, 13, chw), RN_OK);
    for (int c = 0; c < 3; c++)
        for (int k = 0; k < 13 * 9; k++)
            if (chw[c * 13 * 9 + k] != hwc[3 * k + c])
                fail_msg("%s: channel %d pixel %d is %d, Pillow decodes %d", p, c, k,
                         chw[c * 13 * 9 + k], hwc[3 * k + c]);
    free(hwc);
    /* a JPEG and a PGM cut short are errors, not pictures completed with grey or stale memory */
    static const char *const cut[] = {"rgb444.jpg", "grey.pgm"};
    for (int k = 0; k < 2; k++) {
        snprintf(p, sizeof p, "%s/%s", dir, cut[k]);
        unsigned char *b = rn_test_read_file(p, &n);
        tpath(q, sizeof q, cut[k]);
        rn_test_write_file(q, b, n - 20);
        free(b);
        expect_error(rn_image_load(q, 3, 9, 13, chw), RN_ERR_FORMAT, q, "truncated");
    }
    /* formats outside PNG, JPEG and binary PGM/PPM are refused by their first bytes */
    tpath(q, sizeof q, "image.png");
    assert_true(stbi_write_bmp(q, 13, 9, 3, chw) != 0);
    expect_error(rn_image_load(q, 3, 9, 13, chw), RN_ERR_FORMAT, q,
                 "BMP images are not supported (only PNG, JPEG or binary PGM/PPM)");
}

/* ---- splits, subsets, statistics ---------------------------------------------------------- */

/* n samples of 2 x 3 x 3 whose first pixel and label identify them (label = i % 7). */
static rn_dataset *make_synthetic(int n, int c, int h, int w)
{
    rn_dataset *d = NULL;
    assert_int_equal(rn_dataset_create(&d, n, c, h, w, 7), RN_OK);
    for (int i = 0; i < n; i++) {
        d->labels[i] = i % 7;
        for (int ch = 0; ch < c; ch++)
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++)
                    d->pixels[(((size_t)i * c + ch) * h + y) * w + x] = pattern(i, ch, y, x);
    }
    return d;
}

/* The sample index a copy came from: its pixels are compared with every source sample. */
static int origin(const rn_dataset *src, const rn_dataset *copy, int s)
{
    size_t per = (size_t)src->c * src->h * src->w;
    for (int i = 0; i < src->n; i++)
        if (memcmp(src->pixels + i * per, copy->pixels + s * per, per) == 0 &&
            src->labels[i] == copy->labels[s])
            return i;
    return -1;
}

static void test_split_subset(void **state)
{
    (void)state;
    rn_dataset *src = make_synthetic(50, 2, 3, 3);
    const char *names[7] = {"a", "b", "c", "d", "e", "f", "g"};
    assert_int_equal(rn_dataset_set_names(src, names), RN_OK);
    rn_dataset *t1, *v1, *t2, *v2, *t3, *v3;
    assert_int_equal(rn_dataset_split(src, 12, 5, &t1, &v1), RN_OK);
    assert_int_equal(rn_dataset_split(src, 12, 5, &t2, &v2), RN_OK);
    assert_int_equal(rn_dataset_split(src, 12, 6, &t3, &v3), RN_OK);
    assert_int_equal(v1->n, 12);
    assert_int_equal(t1->n, 38);
    assert_string_equal(v1->names[6], "g");
    /* same seed, same bytes */
    assert_memory_equal(v1->pixels, v2->pixels, (size_t)12 * 18);
    assert_memory_equal(t1->labels, t2->labels, (size_t)38 * sizeof(int32_t));
    /* disjoint, together the whole set, in the source's order */
    int seen[50] = {0}, last = -1;
    for (int s = 0; s < v1->n; s++) {
        int i = origin(src, v1, s);
        assert_true(i > last);
        last = i;
        seen[i]++;
    }
    last = -1;
    for (int s = 0; s < t1->n; s++) {
        int i = origin(src, t1, s);
        assert_true(i > last);
        last = i;
        seen[i]++;
    }
    for (int i = 0; i < 50; i++) assert_int_equal(seen[i], 1);
    /* another seed, another choice */
    int same = 1;
    for (int s = 0; s < 12; s++) same &= origin(src, v1, s) == origin(src, v3, s);
    assert_false(same);
    rn_dataset_free(t1), rn_dataset_free(v1), rn_dataset_free(t2), rn_dataset_free(v2);
    rn_dataset_free(t3), rn_dataset_free(v3);

    rn_dataset *d = (rn_dataset *)&d;
    expect_error(rn_dataset_split(src, 50, 1, &t1, &v1), RN_ERR_ARG, "validation split of 50",
                 NULL);
    expect_error(rn_dataset_split(src, 0, 1, &t1, &v1), RN_ERR_ARG, "validation", NULL);

    assert_int_equal(rn_dataset_subset(&d, src, 0, 10), RN_OK);
    assert_int_equal(d->n, 10);
    assert_memory_equal(d->pixels, src->pixels, (size_t)10 * 18);
    assert_memory_equal(d->labels, src->labels, 10 * sizeof(int32_t));
    rn_dataset_free(d);
    assert_int_equal(rn_dataset_subset(&d, src, 45, 5), RN_OK);
    assert_int_equal(origin(src, d, 0), 45);
    rn_dataset_free(d);
    expect_error(rn_dataset_subset(&d, src, 45, 6), RN_ERR_ARG, "outside", NULL);
    assert_null(d);
    rn_dataset_free(src);
}

static void test_stats(void **state)
{
    (void)state;
    rn_dataset *d = make_synthetic(33, 3, 7, 5);
    float mean[3], std[3];
    assert_int_equal(rn_dataset_stats(d, mean, std), RN_OK);
    size_t plane = 35;
    for (int c = 0; c < 3; c++) {
        double sum = 0.0, sq = 0.0, cnt = 33.0 * plane;
        for (int i = 0; i < 33; i++)
            for (size_t k = 0; k < plane; k++) sum += d->pixels[(i * 3 + c) * plane + k] / 255.0;
        double m = sum / cnt;
        for (int i = 0; i < 33; i++)
            for (size_t k = 0; k < plane; k++) {
                double v = d->pixels[(i * 3 + c) * plane + k] / 255.0 - m;
                sq += v * v;
            }
        assert_float_equal(mean[c], (float)m, 1e-6);
        assert_float_equal(std[c], (float)sqrt(sq / cnt), 1e-6);
        assert_true(std[c] > 0.1f);
    }
    rn_dataset_free(d);
}

/* ---- the loader --------------------------------------------------------------------------- */

/* Every batch of an epoch, concatenated: x then labels then index, as bytes. */
typedef struct {
    unsigned char *bytes;
    size_t len;
    int batches;
} epoch_dump;

static void dump_push(epoch_dump *e, const void *p, size_t n)
{
    e->bytes = realloc(e->bytes, e->len + n);
    assert_non_null(e->bytes);
    memcpy(e->bytes + e->len, p, n);
    e->len += n;
}

static size_t batch_bytes(const rn_dataset *d, int n)
{
    return (size_t)n * ((size_t)d->c * d->h * d->w * sizeof(float) + 2 * sizeof(int));
}

static epoch_dump run_epoch(rn_loader *l, const rn_dataset *d, int epoch, int first_batch)
{
    epoch_dump e = {NULL, 0, 0};
    assert_int_equal(rn_loader_start(l, epoch, first_batch), RN_OK);
    for (;;) {
        rn_batch b;
        assert_int_equal(rn_loader_next(l, &b), RN_OK);
        assert_int_equal(b.epoch, epoch);
        assert_int_equal(b.batch, first_batch + e.batches);
        assert_true(b.wait_s >= 0.0);
        if (b.n == 0) break;
        dump_push(&e, b.x, (size_t)b.n * d->c * d->h * d->w * sizeof(float));
        dump_push(&e, b.labels, (size_t)b.n * sizeof(int));
        dump_push(&e, b.index, (size_t)b.n * sizeof(int));
        e.batches++;
    }
    return e;
}

static void test_loader_eval(void **state)
{
    (void)state;
    rn_dataset *d = make_synthetic(23, 2, 3, 4);
    const float mean[2] = {0.25f, 0.5f}, std[2] = {0.5f, 2.0f};
    rn_loader_options o;
    rn_loader_options_init(&o, 0);
    o.batch = 5;
    o.mean = mean;
    o.std = std;
    rn_loader *l;
    assert_int_equal(rn_loader_create(&l, d, &o), RN_OK);
    assert_int_equal(rn_loader_num_batches(l), 5);
    rn_batch b;
    expect_error(rn_loader_next(l, &b), RN_ERR_ARG, "before rn_loader_start", NULL);
    assert_int_equal(rn_loader_start(l, 3, 0), RN_OK);
    int seen = 0;
    for (;;) {
        assert_int_equal(rn_loader_next(l, &b), RN_OK);
        if (b.n == 0) break;
        assert_int_equal(b.n, seen + 5 <= 23 ? 5 : 3); /* the partial batch is kept */
        for (int i = 0; i < b.n; i++, seen++) {
            assert_int_equal(b.index[i], seen); /* no shuffle */
            assert_int_equal(b.labels[i], d->labels[seen]);
            for (int c = 0; c < 2; c++)
                for (int k = 0; k < 12; k++) {
                    float v = d->pixels[(seen * 2 + c) * 12 + k];
                    float want = (v / 255.0f - mean[c]) / std[c];
                    assert_true(b.x[(i * 2 + c) * 12 + k] == want); /* no augmentation */
                }
        }
    }
    assert_int_equal(seen, 23);
    assert_true(rn_loader_wait_seconds(l) >= 0.0);
    rn_loader_reset_wait(l);
    assert_true(rn_loader_wait_seconds(l) == 0.0);
    expect_error(rn_loader_start(l, 0, 6), RN_ERR_ARG, "batch 6", NULL);
    rn_loader_free(l);

    o.drop_last = 1;
    assert_int_equal(rn_loader_create(&l, d, &o), RN_OK);
    assert_int_equal(rn_loader_num_batches(l), 4);
    epoch_dump e = run_epoch(l, d, 0, 0);
    assert_int_equal(e.batches, 4);
    free(e.bytes);
    rn_loader_free(l);

    o.batch = 0;
    expect_error(rn_loader_create(&l, d, &o), RN_ERR_ARG, "batch 0", NULL);
    o.batch = 4;
    const float bad_std[2] = {1.0f, 0.0f};
    o.std = bad_std;
    expect_error(rn_loader_create(&l, d, &o), RN_ERR_ARG, "std of channel 1", NULL);
    rn_dataset_free(d);
}

/* Training options with random crops (this padding) and flips, the augmentation these loader
 * tests take apart; the rest as rn_loader_options_init leaves it. */
static rn_loader_options augmenting(int batch, int crop_pad, int flip, uint64_t seed)
{
    rn_loader_options o;
    rn_loader_options_init(&o, 1);
    o.batch = batch;
    o.crop_pad = crop_pad;
    o.flip = flip;
    o.seed = seed;
    return o;
}

static void test_loader_determinism(void **state)
{
    (void)state;
    rn_dataset *d = make_synthetic(37, 3, 6, 6);
    rn_loader_options o = augmenting(8, 2, 1, 1234);
    rn_loader *threaded, *sync, *other;
    o.prefetch = 3;
    assert_int_equal(rn_loader_create(&threaded, d, &o), RN_OK);
    o.prefetch = 0;
    assert_int_equal(rn_loader_create(&sync, d, &o), RN_OK);
    o.seed = 1235;
    assert_int_equal(rn_loader_create(&other, d, &o), RN_OK);

    epoch_dump a0 = run_epoch(threaded, d, 0, 0), b0 = run_epoch(sync, d, 0, 0);
    epoch_dump a1 = run_epoch(threaded, d, 1, 0), b1 = run_epoch(sync, d, 1, 0);
    epoch_dump c0 = run_epoch(other, d, 0, 0);
    epoch_dump a0_again = run_epoch(threaded, d, 0, 0);
    assert_int_equal(a0.batches, 5);
    assert_int_equal(a0.len, batch_bytes(d, 37));
    /* same seed, same bytes, with or without the thread, and again later */
    assert_int_equal(a0.len, b0.len);
    assert_memory_equal(a0.bytes, b0.bytes, a0.len);
    assert_memory_equal(a1.bytes, b1.bytes, a1.len);
    assert_memory_equal(a0.bytes, a0_again.bytes, a0.len);
    /* another epoch or another seed: another order */
    assert_true(memcmp(a0.bytes, a1.bytes, a0.len) != 0);
    assert_true(memcmp(a0.bytes, c0.bytes, a0.len) != 0);

    /* every sample exactly once per epoch */
    {
        rn_batch bt;
        int count[37] = {0};
        assert_int_equal(rn_loader_start(threaded, 7, 0), RN_OK);
        for (;;) {
            assert_int_equal(rn_loader_next(threaded, &bt), RN_OK);
            if (bt.n == 0) break;
            for (int i = 0; i < bt.n; i++) {
                count[bt.index[i]]++;
                assert_int_equal(bt.labels[i], d->labels[bt.index[i]]);
            }
        }
        for (int i = 0; i < 37; i++) assert_int_equal(count[i], 1);
    }
    free(a0.bytes), free(b0.bytes), free(a1.bytes), free(b1.bytes), free(c0.bytes);
    free(a0_again.bytes);
    rn_loader_free(threaded);
    rn_loader_free(sync);
    rn_loader_free(other);
    rn_dataset_free(d);
}

static void test_loader_resume(void **state)
{
    (void)state;
    rn_dataset *d = make_synthetic(61, 1, 5, 5);
    rn_loader_options o = augmenting(6, 1, 1, 99);
    o.prefetch = 2;
    rn_loader *full, *resumed;
    assert_int_equal(rn_loader_create(&full, d, &o), RN_OK);
    assert_int_equal(rn_loader_create(&resumed, d, &o), RN_OK);
    int nb = rn_loader_num_batches(full);
    assert_int_equal(nb, 11);
    epoch_dump whole = run_epoch(full, d, 4, 0);
    size_t per_batch = batch_bytes(d, 6);
    for (int k = 0; k <= nb; k++) {
        /* the other loader was busy elsewhere: a restart in the middle of an epoch */
        assert_int_equal(rn_loader_start(resumed, 2, 3), RN_OK);
        rn_batch b;
        assert_int_equal(rn_loader_next(resumed, &b), RN_OK);
        epoch_dump tail = run_epoch(resumed, d, 4, k);
        assert_int_equal(tail.batches, nb - k);
        size_t skip = k < nb ? (size_t)k * per_batch : whole.len; /* the last batch is partial */
        assert_int_equal(tail.len, whole.len - skip);
        if (tail.len) assert_memory_equal(tail.bytes, whole.bytes + skip, tail.len);
        free(tail.bytes);
    }
    free(whole.bytes);
    rn_loader_free(full);
    rn_loader_free(resumed);
    rn_dataset_free(d);
}

/* Restarts in quick succession, each taking a batch or two: a batch prepared for an earlier
 * start must never be handed out (run under -fsanitize=thread too). */
static void test_loader_restart_stress(void **state)
{
    (void)state;
    rn_dataset *d = make_synthetic(61, 1, 5, 5);
    rn_loader_options o = augmenting(6, 1, 1, 3);
    o.prefetch = 0;
    rn_loader *ref, *l;
    assert_int_equal(rn_loader_create(&ref, d, &o), RN_OK);
    o.prefetch = 2;
    assert_int_equal(rn_loader_create(&l, d, &o), RN_OK);
    int nb = rn_loader_num_batches(l);
    epoch_dump want[4];
    for (int e = 0; e < 4; e++) want[e] = run_epoch(ref, d, e, 0);
    size_t per_batch = batch_bytes(d, 6), x_bytes = (size_t)6 * 25 * sizeof(float);
    for (int i = 0; i < 300; i++) {
        int e = i % 4, k = (i * 7) % nb;
        assert_int_equal(rn_loader_start(l, e, k), RN_OK);
        for (int t = 0; t < 2 && k + t < nb - 1; t++) { /* full batches only */
            rn_batch b;
            assert_int_equal(rn_loader_next(l, &b), RN_OK);
            assert_int_equal(b.n, 6);
            assert_memory_equal(b.x, want[e].bytes + (size_t)(k + t) * per_batch, x_bytes);
        }
    }
    for (int e = 0; e < 4; e++) free(want[e].bytes);
    rn_loader_free(ref);
    rn_loader_free(l);
    rn_dataset_free(d);
}

/* One image of distinct values 1..h*w; every output must be the crop window at some offset in
 * [-pad, pad], flipped or not, with pixel 0 outside; and every offset and flip must occur. */
static void test_crop_flip(void **state)
{
    (void)state;
    enum { H = 4, W = 5, P = 2 };
    rn_dataset *d = NULL;
    assert_int_equal(rn_dataset_create(&d, 1, 1, H, W, 1), RN_OK);
    for (int k = 0; k < H * W; k++) d->pixels[k] = (uint8_t)(k + 1);
    int offset[2][400];
    for (int flip_on = 0; flip_on <= 1; flip_on++) {
        rn_loader_options o = augmenting(1, P, flip_on, 7);
        rn_loader *l;
        assert_int_equal(rn_loader_create(&l, d, &o), RN_OK);
        int hits[2 * P + 1][2 * P + 1][2];
        memset(hits, 0, sizeof hits);
        for (int epoch = 0; epoch < 400; epoch++) {
            rn_batch b;
            assert_int_equal(rn_loader_start(l, epoch, 0), RN_OK);
            assert_int_equal(rn_loader_next(l, &b), RN_OK);
            assert_int_equal(b.n, 1);
            int matches = 0;
            for (int dy = -P; dy <= P; dy++)
                for (int dx = -P; dx <= P; dx++)
                    for (int f = 0; f <= 1; f++) {
                        int ok = 1;
                        for (int y = 0; y < H && ok; y++)
                            for (int x = 0; x < W && ok; x++) {
                                int sy = y + dy, sx = (f ? W - 1 - x : x) + dx;
                                int v = sy >= 0 && sy < H && sx >= 0 && sx < W
                                            ? d->pixels[sy * W + sx]
                                            : 0;
                                ok = b.x[y * W + x] == (float)v / 255.0f;
                            }
                        if (ok) {
                            matches++;
                            hits[dy + P][dx + P][f]++;
                            offset[flip_on][epoch] = (dy + P) * (2 * P + 1) + dx + P;
                        }
                    }
            assert_int_equal(matches, 1); /* distinct values: exactly one explanation */
        }
        for (int dy = 0; dy <= 2 * P; dy++)
            for (int dx = 0; dx <= 2 * P; dx++) {
                assert_true(hits[dy][dx][0] > 0);
                if (flip_on) assert_true(hits[dy][dx][1] > 0);
                else assert_int_equal(hits[dy][dx][1], 0);
            }
        rn_loader_free(l);
    }
    /* switching flip off leaves the crops as they were: the draws do not shift */
    assert_memory_equal(offset[0], offset[1], sizeof offset[0]);
    /* no padding: the image itself or its mirror, each often */
    rn_loader_options o = augmenting(1, 0, 1, 0);
    rn_loader *l;
    assert_int_equal(rn_loader_create(&l, d, &o), RN_OK);
    int flipped = 0;
    for (int epoch = 0; epoch < 64; epoch++) {
        rn_batch b;
        assert_int_equal(rn_loader_start(l, epoch, 0), RN_OK);
        assert_int_equal(rn_loader_next(l, &b), RN_OK);
        flipped += b.x[0] == (float)W / 255.0f; /* first pixel is the row's last */
        assert_true(b.x[0] == (float)W / 255.0f || b.x[0] == 1.0f / 255.0f);
    }
    assert_true(flipped > 10 && flipped < 54);
    rn_loader_free(l);
    rn_dataset_free(d);
}

/* Random erasing changes one rectangle of 2-40% of the image (the same in every channel) and
 * nothing else: the crop and flip draws come first and stay as they were. With probability
 * 1/2 about half the images change; with 0 the loader rejects nothing and changes nothing. */
static void test_random_erasing(void **state)
{
    (void)state;
    enum { N = 200, C = 2, H = 12, W = 10 };
    rn_dataset *d = make_synthetic(N, C, H, W);
    rn_batch a, b;
    rn_loader_options o = augmenting(N, 2, 1, 5);
    o.prefetch = 0;
    o.erase = 1.5f;
    rn_loader *bad = NULL;
    assert_int_equal(rn_loader_create(&bad, d, &o), RN_ERR_ARG);
    const float probs[] = {1.0f, 0.5f};
    for (int pi = 0; pi < 2; pi++) {
        rn_loader *plain, *erasing;
        o.erase = 0.0f;
        assert_int_equal(rn_loader_create(&plain, d, &o), RN_OK);
        o.erase = probs[pi];
        assert_int_equal(rn_loader_create(&erasing, d, &o), RN_OK);
        assert_int_equal(rn_loader_start(plain, 3, 0), RN_OK);
        assert_int_equal(rn_loader_start(erasing, 3, 0), RN_OK);
        assert_int_equal(rn_loader_next(plain, &a), RN_OK);
        assert_int_equal(rn_loader_next(erasing, &b), RN_OK);
        assert_int_equal(a.n, N);
        assert_int_equal(b.n, N);
        int changed = 0;
        for (int i = 0; i < N; i++) {
            int y0 = H, y1 = -1, x0 = W, x1 = -1;
            for (int ch = 0; ch < C; ch++)
                for (int y = 0; y < H; y++)
                    for (int x = 0; x < W; x++) {
                        size_t e = (((size_t)i * C + ch) * H + y) * W + x;
                        if (a.x[e] == b.x[e]) continue;
                        y0 = y < y0 ? y : y0, y1 = y > y1 ? y : y1;
                        x0 = x < x0 ? x : x0, x1 = x > x1 ? x : x1;
                    }
            if (y1 < 0) continue;
            changed++;
            /* the changed pixels' box lies within a rectangle of at most 40% (+ rounding) */
            assert_true((y1 - y0 + 1) * (x1 - x0 + 1) <= (int)(0.4 * H * W) + H + W);
        }
        if (pi == 0) assert_true(changed >= N - 4); /* random values rarely match all pixels */
        else assert_true(changed > N / 2 - 30 && changed < N / 2 + 30);
        rn_loader_free(plain);
        rn_loader_free(erasing);
    }
    rn_dataset_free(d);
}

/* Freeing while the thread is mid-batch, after a few batches, or before any start. */
static void test_loader_shutdown(void **state)
{
    (void)state;
    rn_dataset *d = make_synthetic(400, 3, 32, 32);
    rn_loader_options o = augmenting(200, 4, 1, 0);
    o.prefetch = 4;
    for (int trial = 0; trial < 20; trial++) {
        rn_loader *l;
        assert_int_equal(rn_loader_create(&l, d, &o), RN_OK);
        if (trial % 3 != 2) assert_int_equal(rn_loader_start(l, trial, trial % 2), RN_OK);
        if (trial % 3 == 1) {
            rn_batch b;
            assert_int_equal(rn_loader_next(l, &b), RN_OK);
            assert_int_equal(rn_loader_start(l, trial + 1, 0), RN_OK);
        }
        rn_loader_free(l);
    }
    rn_loader_free(NULL);
    rn_dataset_free(NULL);
    rn_dataset_free(d);
}

/* ---- the installed Fashion-MNIST ---------------------------------------------------------- */

static void test_fashion_mnist_installed(void **state)
{
    (void)state;
    struct stat st;
    if (stat(RN_FASHION_MNIST_DIR, &st) != 0) {
        fprintf(stderr, "NOTE: %s is absent (apt-get install dataset-fashion-mnist); "
                        "the check of the real data set is SKIPPED, not passed\n",
                RN_FASHION_MNIST_DIR);
        skip();
    }
    rn_data_source src;
    rn_data_source_init(&src, RN_DATA_FASHION_MNIST, NULL);
    const int want[2] = {60000, 10000};
    for (int split = 0; split < 2; split++) {
        rn_dataset *d = NULL;
        int rc = rn_dataset_load(&d, &src, (rn_split)split);
        if (rc != RN_OK) fail_msg("%s", rn_last_error());
        assert_int_equal(d->n, want[split]);
        assert_int_equal(d->c, 1);
        assert_int_equal(d->h, 28);
        assert_int_equal(d->w, 28);
        int count[10] = {0};
        for (int i = 0; i < d->n; i++) {
            assert_true(d->labels[i] >= 0 && d->labels[i] < 10);
            count[d->labels[i]]++;
        }
        for (int k = 0; k < 10; k++) assert_int_equal(count[k], want[split] / 10); /* balanced */
        assert_string_equal(d->names[9], "Ankle boot");
        if (split == 0) {
            float mean, std;
            assert_int_equal(rn_dataset_stats(d, &mean, &std), RN_OK);
            /* the values usually quoted for Fashion-MNIST: 0.2860, 0.3530 */
            assert_float_equal(mean, 0.2860f, 5e-4);
            assert_float_equal(std, 0.3530f, 5e-4);
        }
        rn_dataset_free(d);
    }
}

/* ---- fuzz regressions --------------------------------------------------------------------
 * fuzz/corpus/idx/crash-*: inputs that once crashed fuzz/fuzz_idx.c, split as it splits them
 * (byte 0: bit 0 gzip the images, bit 1 gzip the labels; byte 1: classes - 1; bytes 2-3: the
 * images file's length; the images file; the labels file) and read through the normal API.
 * The tests run from the repository root. */
static void test_idx_fuzz_regression(void **state)
{
    (void)state;
    /* 92 bytes whose images header declares 3 x 64517 x 62981 images: 12 GB were allocated
     * and zeroed before the first pixel was read; now the header is held against the file */
    const char *input = "fuzz/corpus/idx/crash-declared-size-oom";
    if (access(input, R_OK) != 0) fail_msg("%s: missing (run the tests from the repository root)", input);
    size_t n;
    unsigned char *in = rn_test_read_file(input, &n);
    assert_true(n >= 4);
    size_t ni = (size_t)in[2] | (size_t)in[3] << 8;
    assert_true(4 + ni <= n);
    assert_int_equal(in[0] & 1, 0);
    char images[512], images_gz[512], labels[512];
    tpath(images, sizeof images, "fuzz-images");
    tpath(images_gz, sizeof images_gz, "fuzz-images.gz");
    tpath(labels, sizeof labels, "fuzz-labels");
    rn_test_write_file(images, in + 4, ni);
    write_gz(images_gz, in + 4, ni);
    (in[0] & 2 ? write_gz : rn_test_write_file)(labels, in + 4 + ni, n - 4 - ni);
    rn_dataset *d = (rn_dataset *)&d;
    expect_error(rn_dataset_load_idx(&d, images, labels, in[1] + 1), RN_ERR_FORMAT, images,
                 "declares 12190035531 bytes of pixels, the file can hold at most 61");
    assert_null(d);
    /* the same header behind gzip: at most 1032 times the compressed size */
    expect_error(rn_dataset_load_idx(&d, images_gz, labels, in[1] + 1), RN_ERR_FORMAT, images_gz,
                 "declares 12190035531 bytes of pixels");
    assert_null(d);
    free(in);
}

static void test_kind_names(void **state)
{
    (void)state;
    const char *kinds[] = {"fashion-mnist", "mnist", "cifar10", "cifar100", "folder"};
    for (int k = 0; k < 5; k++) {
        rn_data_kind kind;
        assert_int_equal(rn_data_kind_parse(kinds[k], &kind), RN_OK);
        assert_int_equal((int)kind, k);
        assert_string_equal(rn_data_kind_name(kind), kinds[k]);
    }
    rn_data_kind kind;
    expect_error(rn_data_kind_parse("imagenet", &kind), RN_ERR_ARG, "imagenet", "cifar100");
    assert_string_equal(rn_data_default_dir(RN_DATA_FASHION_MNIST), RN_FASHION_MNIST_DIR);
    assert_null(rn_data_default_dir(RN_DATA_MNIST));
    int pad, flip;
    rn_loader_default_augment(RN_DATA_CIFAR10, 32, &pad, &flip);
    assert_int_equal(pad, 4);
    assert_int_equal(flip, 1);
    rn_loader_default_augment(RN_DATA_MNIST, 28, &pad, &flip);
    assert_int_equal(pad, 0);
    assert_int_equal(flip, 0);
    rn_loader_default_augment(RN_DATA_FASHION_MNIST, 28, &pad, &flip);
    assert_int_equal(pad, 2);
    assert_int_equal(flip, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kind_names),
        cmocka_unit_test(test_idx_round_trip),
        cmocka_unit_test(test_idx_errors),
        cmocka_unit_test(test_idx_fuzz_regression),
        cmocka_unit_test(test_cifar10),
        cmocka_unit_test(test_cifar100),
        cmocka_unit_test(test_folder),
        cmocka_unit_test(test_folder_errors),
        cmocka_unit_test(test_image_load_untrusted),
        cmocka_unit_test(test_split_subset),
        cmocka_unit_test(test_stats),
        cmocka_unit_test(test_loader_eval),
        cmocka_unit_test(test_loader_determinism),
        cmocka_unit_test(test_loader_resume),
        cmocka_unit_test(test_loader_restart_stress),
        cmocka_unit_test(test_crop_flip),
        cmocka_unit_test(test_random_erasing),
        cmocka_unit_test(test_loader_shutdown),
        cmocka_unit_test(test_fashion_mnist_installed),
    };
    return cmocka_run_group_tests(tests, rn_test_group_setup, rn_test_group_teardown);
}
