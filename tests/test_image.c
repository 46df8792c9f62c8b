/* Tests of the image decoders (src/io/image.c). The files under tests/data/images/ and the
 * pixels Pillow decodes from them (NAME.pixels, NAME.grey.pixels) are written by
 * tests/data/images/make_images.py; broken files are made here from them: every truncation,
 * random bytes, random byte changes, huge declared sizes. The tests run from the repository
 * root. */
#define _POSIX_C_SOURCE 200809L

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "io/image.h"
#include "resnet.h"
#include "support/tmpdir.h"

#define DATA "tests/data/images/"
enum { W = 13, H = 9 };


static const struct {
    const char *file;
    int c;      /* the file's own channels */
    int jpeg;   /* colour JPEG: grey is libjpeg's Y plane (NAME.grey.pixels), not the luma */
} cases[] = {
    {"grey.png", 1, 0},          {"rgb.png", 3, 0},          {"rgba.png", 3, 0},
    {"grey_alpha.png", 1, 0},    {"palette.png", 3, 0},      {"palette4_trns.png", 3, 0},
    {"grey1.png", 1, 0},         {"grey16.png", 1, 0},       {"rgb16.png", 3, 0},
    {"rgb_adam7.png", 3, 0},     {"grey.jpg", 1, 0},         {"rgb420.jpg", 3, 1},
    {"rgb422.jpg", 3, 1},        {"rgb444.jpg", 3, 1},       {"rgb_progressive.jpg", 3, 1},
    {"grey.pgm", 1, 0},          {"rgb.ppm", 3, 0},          {"grey16_comment.pgm", 1, 0},
};
#define NCASES (sizeof cases / sizeof cases[0])

/* ---- helpers ----------------------------------------------------------------------------- */

static int group_setup(void **state)
{
    (void)state;
    if (access(DATA "rgb.png", R_OK) != 0) {
        fprintf(stderr, "%srgb.png: missing (run the tests from the repository root)\n", DATA);
        return -1;
    }
    return rn_test_group_setup(state);
}

static uint8_t *read_all(const char *path, size_t *n)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) fail_msg("%s: cannot open", path);
    assert_int_equal(fseek(fp, 0, SEEK_END), 0);
    long len = ftell(fp);
    assert_true(len > 0);
    assert_int_equal(fseek(fp, 0, SEEK_SET), 0);
    uint8_t *buf = malloc((size_t)len);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)len, fp), (size_t)len);
    fclose(fp);
    *n = (size_t)len;
    return buf;
}

static uint8_t *read_data(const char *name, const char *suffix, size_t *n)
{
    char p[256];
    snprintf(p, sizeof p, DATA "%s%s", name, suffix);
    return read_all(p, n);
}

/* The call's status must be `status`, and its message must name `file` and say `what`. */
static void expect_error(int rc, int status, const char *file, const char *what)
{
    const char *msg = rn_last_error();
    if (rc != status) fail_msg("status %d, expected %d (message \"%s\")", rc, status, msg);
    if (file && !strstr(msg, file)) fail_msg("message \"%s\" lacks \"%s\"", msg, file);
    if (what && !strstr(msg, what)) fail_msg("message \"%s\" lacks \"%s\"", msg, what);
}

/* Decodes exactly n bytes copied into a buffer of that size, so that ASan sees any over-read. */
static int decode_copy(rn_image **img, const uint8_t *data, size_t n, int channels,
                       const char *name)
{
    uint8_t *copy = malloc(n ? n : 1);
    assert_non_null(copy);
    if (n) memcpy(copy, data, n);
    int rc = rn_image_decode(img, copy, n, channels, name);
    free(copy);
    return rc;
}

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    for (int k = 0; k < 4; k++) p[k] = (uint8_t)(v >> (24 - 8 * k));
}

static size_t jpeg_segment(const uint8_t *b, size_t n, int lo, int hi);

/* ---- pixels ------------------------------------------------------------------------------ */

static void test_decode_matches_pillow(void **state)
{
    (void)state;
    for (size_t k = 0; k < NCASES; k++) {
        char path[256];
        snprintf(path, sizeof path, DATA "%s", cases[k].file);
        size_t n_want, n_file;
        uint8_t *want = read_data(cases[k].file, ".pixels", &n_want);
        uint8_t *bytes = read_data(cases[k].file, "", &n_file);
        rn_image *img = NULL, *again = NULL;
        if (rn_image_read(&img, path, 0) != RN_OK) fail_msg("%s: %s", path, rn_last_error());
        assert_int_equal(img->w, W);
        assert_int_equal(img->h, H);
        if (img->c != cases[k].c)
            fail_msg("%s: %d channels, expected %d", path, img->c, cases[k].c);
        assert_int_equal(n_want, (size_t)W * H * cases[k].c);
        if (memcmp(img->pixels, want, n_want) != 0)
            fail_msg("%s: pixels differ from Pillow's", path);
        assert_int_equal(rn_image_decode(&again, bytes, n_file, 0, path), RN_OK);
        assert_memory_equal(again->pixels, img->pixels, n_want);
        rn_image_free(again);
        rn_image_free(img);
        free(bytes);
        free(want);
    }
}

/* Asked for 3 channels, grey repeats; asked for 1, colour becomes stb's luma, except colour
 * JPEGs, whose grey is the decoded Y plane (what Pillow's draft mode "L" gives too). */
static void test_channel_conversion(void **state)
{
    (void)state;
    for (size_t k = 0; k < NCASES; k++) {
        char path[256];
        snprintf(path, sizeof path, DATA "%s", cases[k].file);
        size_t n;
        uint8_t *want = read_data(cases[k].file, ".pixels", &n), *grey = NULL;
        if (cases[k].jpeg) grey = read_data(cases[k].file, ".grey.pixels", &n);
        rn_image *rgb = NULL, *one = NULL;
        assert_int_equal(rn_image_read(&rgb, path, 3), RN_OK);
        assert_int_equal(rn_image_read(&one, path, 1), RN_OK);
        assert_int_equal(rgb->c, 3);
        assert_int_equal(one->c, 1);
        for (int p = 0; p < W * H; p++) {
            const uint8_t *src = want + (size_t)p * cases[k].c;
            for (int ch = 0; ch < 3; ch++)
                if (rgb->pixels[3 * p + ch] != src[cases[k].c == 3 ? ch : 0])
                    fail_msg("%s: RGB pixel %d channel %d", path, p, ch);
            int y = cases[k].c == 1 ? src[0]
                    : grey      ? grey[p]
                                : (src[0] * 77 + src[1] * 150 + src[2] * 29) >> 8;
            if (one->pixels[p] != y)
                fail_msg("%s: grey pixel %d is %d, not %d", path, p, one->pixels[p], y);
        }
        rn_image_free(rgb);
        rn_image_free(one);
        free(want);
        free(grey);
    }
}

/* ---- broken files ------------------------------------------------------------------------ */

/* Every prefix of every file is an error that names the file; from 4 bytes on (the format is
 * known) it says "truncated". libjpeg itself would fill a short file with grey. */
static void test_every_truncation(void **state)
{
    (void)state;
    for (size_t k = 0; k < NCASES; k++) {
        size_t n;
        uint8_t *bytes = read_data(cases[k].file, "", &n);
        for (size_t cut = 0; cut < n; cut++) {
            rn_image *img = (rn_image *)&img;
            int rc = decode_copy(&img, bytes, cut, 0, cases[k].file);
            if (rc != RN_ERR_FORMAT)
                fail_msg("%s cut to %zu bytes: status %d (%s)", cases[k].file, cut, rc,
                         rc ? rn_last_error() : "decoded");
            assert_null(img);
            expect_error(rc, RN_ERR_FORMAT, cases[k].file, cut >= 4 ? "truncated" : NULL);
        }
        free(bytes);
    }
}

/* A baseline JPEG whose scan data stops early but whose file still ends in EOI: libjpeg warns
 * ("premature end of data segment") and would fill the rest with grey. */
static void test_jpeg_short_scan(void **state)
{
    (void)state;
    static const char *const files[] = {"grey.jpg", "rgb420.jpg", "rgb422.jpg", "rgb444.jpg"};
    for (size_t k = 0; k < sizeof files / sizeof files[0]; k++) {
        size_t n;
        uint8_t *b = read_data(files[k], "", &n);
        size_t sos = jpeg_segment(b, n, 0xda, 0xda);
        assert_true(sos > 0);
        size_t data = sos + 2 + ((size_t)b[sos + 2] << 8 | b[sos + 3]);
        for (int quarter = 1; quarter <= 3; quarter++) {
            size_t cut = data + (n - 2 - data) * (size_t)quarter / 4;
            memcpy(b + cut, "\xff\xd9", 2);
            rn_image *img = NULL;
            expect_error(decode_copy(&img, b, cut + 2, 0, files[k]), RN_ERR_FORMAT, files[k],
                         "truncated JPEG (its scan data ends before the image does)");
            assert_null(img);
        }
        free(b);
    }
}

static void test_random_bytes(void **state)
{
    (void)state;
    static const struct {
        const char *magic;
        size_t len;
    } starts[] = {{"x", 1}, {"\x89PNG\r\n\x1a\n", 8}, {"\xff\xd8\xff", 3}, {"P5\n", 3}, {"P6 ", 3}};
    uint64_t s = 0x9e3779b97f4a7c15u;
    uint8_t buf[3000];
    for (size_t m = 0; m < sizeof starts / sizeof starts[0]; m++)
        for (int t = 0; t < 300; t++) {
            size_t n = starts[m].len + rng_next(&s) % (sizeof buf - 8);
            for (size_t i = 0; i < n; i++) buf[i] = (uint8_t)rng_next(&s);
            memcpy(buf, starts[m].magic, starts[m].len);
            rn_image *img = NULL;
            int rc = decode_copy(&img, buf, n, 0, "random.bin");
            expect_error(rc, RN_ERR_FORMAT, "random.bin", m == 0 ? "not a PNG, JPEG" : NULL);
            assert_null(img);
        }
}

/* Files with 1 to 4 bytes changed: decoded or refused, never a crash (ASan, UBSan). */
static void test_changed_bytes(void **state)
{
    (void)state;
    uint64_t s = 12345;
    for (size_t k = 0; k < NCASES; k++) {
        size_t n;
        uint8_t *bytes = read_data(cases[k].file, "", &n);
        for (int t = 0; t < 150; t++) {
            uint8_t *m = malloc(n);
            assert_non_null(m);
            memcpy(m, bytes, n);
            for (int c = 1 + (int)(rng_next(&s) % 4); c > 0; c--)
                m[rng_next(&s) % n] = (uint8_t)rng_next(&s);
            rn_image *img = NULL;
            int rc = rn_image_decode(&img, m, n, (int)(rng_next(&s) % 2) * 2 + 1, cases[k].file);
            if (rc == RN_OK) {
                assert_true(img->w > 0 && img->w <= RN_IMAGE_MAX_SIDE);
                assert_true(img->h > 0 && img->h <= RN_IMAGE_MAX_SIDE);
                rn_image_free(img);
            } else {
                expect_error(rc, RN_ERR_FORMAT, cases[k].file, NULL);
                assert_null(img);
            }
            free(m);
        }
        free(bytes);
    }
}

/* rgb.png with the IHDR's width, height and colour type replaced (CRC recomputed). */
static int png_with_header(uint32_t w, uint32_t h, int color, int channels)
{
    size_t n;
    uint8_t *b = read_data("rgb.png", "", &n);
    assert_memory_equal(b + 12, "IHDR", 4);
    put_be32(b + 16, w);
    put_be32(b + 20, h);
    b[25] = (uint8_t)color;
    put_be32(b + 29, (uint32_t)crc32(0, b + 12, 17));
    rn_image *img = NULL;
    int rc = decode_copy(&img, b, n, channels, "huge.png");
    assert_null(img);
    free(b);
    return rc;
}

static void test_png_huge_header(void **state)
{
    (void)state;
    expect_error(png_with_header(1000000, 1000000, 2, 0), RN_ERR_FORMAT, "huge.png",
                 "too large: PNG of 1000000 x 1000000 pixels (at most 16384 on a side)");
    expect_error(png_with_header(0xffffffffu, 1, 2, 0), RN_ERR_FORMAT, "huge.png", "too large");
    expect_error(png_with_header(16385, 9, 2, 0), RN_ERR_FORMAT, "huge.png", "too large");
    expect_error(png_with_header(13, 16385, 2, 0), RN_ERR_FORMAT, "huge.png", "too large");
    /* within the sides, above 256 MiB of pixels: refused before any pixel memory */
    expect_error(png_with_header(16384, 16384, 2, 0), RN_ERR_FORMAT, "huge.png",
                 "16384 x 16384 pixels x 3 channels decodes to more than 256 MiB");
    expect_error(png_with_header(16384, 16384, 6, 0), RN_ERR_FORMAT, "huge.png", "256 MiB");
    /* grey of 256 MiB is allowed, but not when it is to become RGB */
    expect_error(png_with_header(16384, 16384, 0, 3), RN_ERR_FORMAT, "huge.png", "256 MiB");
    /* at the limit the size passes and the missing pixels are the error */
    int rc = png_with_header(16384, 9, 2, 0);
    expect_error(rc, RN_ERR_FORMAT, "huge.png", "broken PNG");
    assert_null(strstr(rn_last_error(), "too large"));
}

/* The offset of the first marker segment of kind lo..hi (FF lo .. FF hi) before the scan data,
 * walking the segments from SOI; 0 when there is none. */
static size_t jpeg_segment(const uint8_t *b, size_t n, int lo, int hi)
{
    size_t i = 2;
    while (i + 4 <= n && b[i] == 0xff) {
        if (b[i + 1] >= lo && b[i + 1] <= hi) return i;
        if (b[i + 1] == 0xda) break;
        i += 2 + ((size_t)b[i + 2] << 8 | b[i + 3]);
    }
    return 0;
}

/* rgb444.jpg / grey.jpg with the frame header's size replaced. */
static int jpeg_with_size(const char *file, unsigned w, unsigned h, int channels)
{
    size_t n;
    uint8_t *b = read_data(file, "", &n);
    size_t sof = jpeg_segment(b, n, 0xc0, 0xc2);
    assert_true(sof > 0 && sof + 9 < n);
    b[sof + 5] = (uint8_t)(h >> 8), b[sof + 6] = (uint8_t)h;
    b[sof + 7] = (uint8_t)(w >> 8), b[sof + 8] = (uint8_t)w;
    rn_image *img = NULL;
    int rc = decode_copy(&img, b, n, channels, "huge.jpg");
    assert_null(img);
    free(b);
    return rc;
}

static void test_jpeg_huge_header(void **state)
{
    (void)state;
    expect_error(jpeg_with_size("rgb444.jpg", 60000, 60000, 0), RN_ERR_FORMAT, "huge.jpg",
                 "too large: JPEG of 60000 x 60000 pixels (at most 16384 on a side)");
    expect_error(jpeg_with_size("rgb444.jpg", 65535, 9, 0), RN_ERR_FORMAT, "huge.jpg", "too large");
    expect_error(jpeg_with_size("rgb444.jpg", 65535, 1, 0), RN_ERR_FORMAT, "huge.jpg", "too large");
    expect_error(jpeg_with_size("rgb444.jpg", 16385, 9, 0), RN_ERR_FORMAT, "huge.jpg", "too large");
    expect_error(jpeg_with_size("rgb444.jpg", 16384, 16384, 0), RN_ERR_FORMAT, "huge.jpg",
                 "16384 x 16384 pixels x 3 channels decodes to more than 256 MiB");
    /* a colour file read as grey still holds its three components while decoding */
    expect_error(jpeg_with_size("rgb444.jpg", 16384, 16384, 1), RN_ERR_FORMAT, "huge.jpg",
                 "256 MiB");
    expect_error(jpeg_with_size("grey.jpg", 16384, 16384, 3), RN_ERR_FORMAT, "huge.jpg", "256 MiB");
    expect_error(jpeg_with_size("rgb444.jpg", 13, 0, 0), RN_ERR_FORMAT, "huge.jpg", "broken JPEG");
    /* at the limit the size passes and the missing pixels are the error */
    int rc = jpeg_with_size("rgb444.jpg", 16384, 9, 0);
    expect_error(rc, RN_ERR_FORMAT, "huge.jpg", "truncated JPEG");
}

/* Each scan of a progressive JPEG decodes the whole image again: copies of its first scan (DC
 * coefficients, whose data decodes the same each time) make a small file that costs as much as
 * a huge one. */
static int jpeg_with_scans(int extra)
{
    size_t n;
    uint8_t *b = read_data("rgb_progressive.jpg", "", &n);
    size_t first = jpeg_segment(b, n, 0xda, 0xda);
    assert_true(first > 0);
    size_t end = first + 2 + ((size_t)b[first + 2] << 8 | b[first + 3]);
    /* the scan's data ends at the next marker that is not a stuffed 0xff or a restart */
    while (end + 1 < n && !(b[end] == 0xff && b[end + 1] != 0 && (b[end + 1] & 0xf8) != 0xd0))
        end++;
    size_t scan = end - first, total = n + (size_t)extra * scan;
    uint8_t *m = malloc(total);
    assert_non_null(m);
    memcpy(m, b, end);
    for (int e = 0; e < extra; e++) memcpy(m + end + (size_t)e * scan, b + first, scan);
    memcpy(m + end + (size_t)extra * scan, b + end, n - end);
    rn_image *img = NULL;
    int rc = rn_image_decode(&img, m, total, 0, "scans.jpg");
    rn_image_free(img);
    free(m);
    free(b);
    return rc;
}

static void test_jpeg_scan_limit(void **state)
{
    (void)state;
    /* the file has 10 scans of its own */
    assert_int_equal(jpeg_with_scans(RN_IMAGE_MAX_JPEG_SCANS - 20), RN_OK);
    expect_error(jpeg_with_scans(RN_IMAGE_MAX_JPEG_SCANS), RN_ERR_FORMAT, "scans.jpg",
                 "more than 500 scans");
}

static void test_unsupported(void **state)
{
    (void)state;
    rn_image *img = (rn_image *)&img;
    size_t n;
    uint8_t *b = read_data("cmyk.jpg", "", &n);
    expect_error(decode_copy(&img, b, n, 0, "cmyk.jpg"), RN_ERR_FORMAT, "cmyk.jpg",
                 "CMYK JPEG: not supported");
    assert_null(img);
    free(b);
    static const struct {
        const char *bytes;
        size_t n;
        const char *what;
    } other[] = {
        {"BM6\x03\0\0\0\0\0\0", 10,
         "BMP images are not supported (only PNG, JPEG or binary PGM/PPM)"},
        {"GIF89a\x01\0\x01\0", 10, "GIF images"},
        {"II*\0\x08\0\0\0", 8, "TIFF images"},
        {"RIFF\x10\0\0\0WEBPVP8 ", 16, "WebP images"},
        {"P2\n2 2\n255\n1 2 3 4\n", 19, "plain-text, bitmap or PAM netpbm images"},
        {"hello world", 11, "not a PNG, JPEG or binary PGM/PPM image (first bytes 68 65 6c 6c)"},
        {"\x89PN", 3, "first bytes 89 50 4e)"},
    };
    for (size_t k = 0; k < sizeof other / sizeof other[0]; k++)
        expect_error(decode_copy(&img, (const uint8_t *)other[k].bytes, other[k].n, 0, "other.img"),
                     RN_ERR_FORMAT, "other.img", other[k].what);
    expect_error(decode_copy(&img, NULL, 0, 0, "empty.png"), RN_ERR_FORMAT, "empty.png",
                 "empty file");
    expect_error(rn_image_decode(&img, (const uint8_t *)"P5", 2, 2, "x.pgm"), RN_ERR_ARG, "x.pgm",
                 "1 or 3 channels, not 2");
}

static int pnm(const char *text, size_t n, rn_image **img)
{
    *img = NULL;
    return decode_copy(img, (const uint8_t *)text, n, 0, "t.pgm");
}

static void test_pnm(void **state)
{
    (void)state;
    rn_image *img;
    /* maxval 15 and 1000 are scaled with rounding; 65535 keeps the high byte */
    assert_int_equal(pnm("P5 3 1 15\n\x00\x0f\x07", 13, &img), RN_OK);
    assert_memory_equal(img->pixels, "\x00\xff\x77", 3);
    rn_image_free(img);
    assert_int_equal(pnm("P5\n2 1\n1000\n\x03\xe8\x01\xf4", 16, &img), RN_OK);
    assert_memory_equal(img->pixels, "\xff\x80", 2);
    rn_image_free(img);
    assert_int_equal(pnm("P6\t1 1 65535\r\x12\x34\x56\x78\x9a\xbc", 19, &img), RN_OK);
    assert_memory_equal(img->pixels, "\x12\x56\x9a", 3);
    rn_image_free(img);
    static const struct {
        const char *text, *what;
    } bad[] = {
        {"P5\n2 1\n15\n\x03\x10", "sample 16 above the maxval 15"},
        {"P5\n2 1\n0\n\x00\x00", "maxval 0 (1 to 65535)"},
        {"P5\n2 1\n70000\n\x00\x00\x00\x00", "maxval 70000"},
        {"P5\nx 1\n255\n\x00", "width is not a number"},
        {"P52 1\n255\n\x00\x00", "no whitespace after P5"},
        {"P5\n2 1\n255", "truncated PGM/PPM header"},
        {"P5\n2 1\n255\n\x01", "truncated PGM (2 bytes of pixels, 1 in the file)"},
        {"P5\n99999999999 1\n255\n\x00", "width is out of range"},
        {"P5\n100000 100000\n255\n\x00", "too large: PGM of 100000 x 100000 pixels"},
        {"P6\n16384 16384\n255\n\x00", "16384 x 16384 pixels x 3 channels decodes to more"},
        {"P5\n0 1\n255\n\x00", "an empty image"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        expect_error(pnm(bad[k].text, strlen(bad[k].text), &img), RN_ERR_FORMAT, "t.pgm",
                     bad[k].what);
        assert_null(img);
    }
}

/* ---- files ------------------------------------------------------------------------------- */

static void test_files(void **state)
{
    (void)state;
    rn_image *img = (rn_image *)&img;
    char p[256];
    snprintf(p, sizeof p, "%s/nothere.png", rn_test_dir());
    expect_error(rn_image_read(&img, p, 0), RN_ERR_IO, p, "missing file");
    assert_null(img);
    expect_error(rn_image_read(&img, rn_test_dir(), 0), RN_ERR_IO, rn_test_dir(), "read error");
    /* a file over the limit is refused by its size, without reading it */
    snprintf(p, sizeof p, "%s/huge.png", rn_test_dir());
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "\x89PNG\r\n\x1a\n", 8), 8);
    assert_int_equal(ftruncate(fd, (off_t)RN_IMAGE_MAX_FILE_BYTES + 1), 0);
    close(fd);
    expect_error(rn_image_read(&img, p, 0), RN_ERR_FORMAT, p,
                 "too large: a file of 268435457 bytes");
    unlink(p);
    uint8_t byte = 0;
    expect_error(rn_image_decode(&img, &byte, RN_IMAGE_MAX_FILE_BYTES + 1, 0, "big.png"),
                 RN_ERR_FORMAT, "big.png", "(at most 256 MiB)");
}

/* Warnings (a damaged ancillary PNG chunk, stray bytes before a JPEG marker) decode the image
 * and print nothing: the libraries' own handlers would write to stderr. */
static void test_warnings_are_silent(void **state)
{
    (void)state;
    size_t n, np;
    uint8_t *png = read_data("rgb.png", "", &n);
    /* after IHDR (8 + 25 bytes): a tEXt chunk with a wrong CRC */
    static const uint8_t text[] = {0, 0, 0, 3, 't', 'E', 'X', 't', 'a', '\0', 'b', 1, 2, 3, 4};
    uint8_t *bad_png = malloc(n + sizeof text);
    assert_non_null(bad_png);
    memcpy(bad_png, png, 33);
    memcpy(bad_png + 33, text, sizeof text);
    memcpy(bad_png + 33 + sizeof text, png + 33, n - 33);
    uint8_t *jpg = read_data("rgb444.jpg", "", &np);
    /* two stray bytes before the quantisation tables */
    size_t at = jpeg_segment(jpg, np, 0xdb, 0xdb);
    assert_true(at > 2);
    uint8_t *bad_jpg = malloc(np + 2);
    assert_non_null(bad_jpg);
    memcpy(bad_jpg, jpg, at);
    memcpy(bad_jpg + at, "\x12\x34", 2);
    memcpy(bad_jpg + at + 2, jpg + at, np - at);

    char log[256];
    snprintf(log, sizeof log, "%s/stderr.txt", rn_test_dir());
    fflush(stderr);
    int saved = dup(2), fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(saved >= 0 && fd >= 0);
    dup2(fd, 2);
    close(fd);
    rn_image *a = NULL, *b = NULL;
    int rc_png = rn_image_decode(&a, bad_png, n + sizeof text, 0, "warn.png");
    int rc_jpg = rn_image_decode(&b, bad_jpg, np + 2, 0, "warn.jpg");
    fflush(stderr);
    dup2(saved, 2);
    close(saved);

    assert_int_equal(rc_png, RN_OK);
    assert_int_equal(rc_jpg, RN_OK);
    size_t nw;
    uint8_t *want = read_data("rgb.png", ".pixels", &nw);
    assert_memory_equal(a->pixels, want, nw);
    free(want);
    want = read_data("rgb444.jpg", ".pixels", &nw);
    assert_memory_equal(b->pixels, want, nw);
    free(want);
    struct stat st;
    assert_int_equal(stat(log, &st), 0);
    if (st.st_size != 0) fail_msg("the decoders wrote %lld bytes to stderr", (long long)st.st_size);
    rn_image_free(a);
    rn_image_free(b);
    free(png);
    free(bad_png);
    free(jpg);
    free(bad_jpg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_matches_pillow),
        cmocka_unit_test(test_channel_conversion),
        cmocka_unit_test(test_every_truncation),
        cmocka_unit_test(test_jpeg_short_scan),
        cmocka_unit_test(test_random_bytes),
        cmocka_unit_test(test_changed_bytes),
        cmocka_unit_test(test_png_huge_header),
        cmocka_unit_test(test_jpeg_huge_header),
        cmocka_unit_test(test_jpeg_scan_limit),
        cmocka_unit_test(test_unsupported),
        cmocka_unit_test(test_pnm),
        cmocka_unit_test(test_files),
        cmocka_unit_test(test_warnings_are_silent),
    };
    return cmocka_run_group_tests(tests, group_setup, rn_test_group_teardown);
}
