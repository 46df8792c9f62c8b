/* Image files from untrusted sources (see image.h): PNG through libpng, JPEG through
 * libjpeg-turbo, binary PGM/PPM read here. Both libraries report errors by longjmp; each decoder
 * keeps everything it must clean up in a job struct owned by its caller, so nothing that the
 * jump could leave indeterminate is a local of the function that called setjmp. */
#define _POSIX_C_SOURCE 200809L

#include "io/image.h"

#include "core/error.h"

#include <errno.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jerror.h>
#include <jpeglib.h>
#include <png.h>

#define SUPPORTED "PNG, JPEG or binary PGM/PPM"

/* ---- sizes and pixel buffers --------------------------------------------------------------- */

static int mul_ok(size_t a, size_t b, size_t *out)
{
    if (b != 0 && a > SIZE_MAX / b) return 0;
    *out = a * b;
    return 1;
}

/* held: the channels the decoder holds at once, the file's or the output's, whichever is more. */
static int check_size(const char *name, const char *format, uint64_t w, uint64_t h, int held)
{
    if (w == 0 || h == 0)
        return rn_fail(RN_ERR_FORMAT, "%s: %s of %llu x %llu pixels: an empty image", name, format,
                       (unsigned long long)w, (unsigned long long)h);
    if (w > RN_IMAGE_MAX_SIDE || h > RN_IMAGE_MAX_SIDE)
        return rn_fail(RN_ERR_FORMAT,
                       "%s: too large: %s of %llu x %llu pixels (at most %d on a side)", name,
                       format, (unsigned long long)w, (unsigned long long)h, RN_IMAGE_MAX_SIDE);
    size_t plane, bytes;
    if (!mul_ok((size_t)w, (size_t)h, &plane) || !mul_ok(plane, (size_t)held, &bytes) ||
        bytes > RN_IMAGE_MAX_BYTES)
        return rn_fail(RN_ERR_FORMAT,
                       "%s: too large: %s of %llu x %llu pixels x %d channels decodes to more than "
                       "%zu MiB", name, format, (unsigned long long)w, (unsigned long long)h, held,
                       RN_IMAGE_MAX_BYTES >> 20);
    return RN_OK;
}

/* One allocation for the struct and its pixels; the caller has passed check_size. */
static int image_new(rn_image **out, int w, int h, int c, const char *name)
{
    size_t bytes = (size_t)w * (size_t)h * (size_t)c;
    rn_image *img = malloc(sizeof *img + bytes);
    if (!img)
        return rn_fail(RN_ERR_NOMEM, "%s: out of memory for %d x %d x %d pixels", name, w, h, c);
    img->w = w, img->h = h, img->c = c;
    img->pixels = (uint8_t *)(img + 1);
    *out = img;
    return RN_OK;
}

void rn_image_free(rn_image *img)
{
    free(img);
}

/* stb_image's luma, which the data sets were built with before these decoders. */
static uint8_t luma(const uint8_t *rgb)
{
    return (uint8_t)((rgb[0] * 77 + rgb[1] * 150 + rgb[2] * 29) >> 8);
}

/* Replaces *img by a copy with `want` channels (1 or 3) when it has the other count. */
static int convert_channels(rn_image **img, int want, const char *name)
{
    rn_image *src = *img, *dst;
    if (want == 0 || want == src->c) return RN_OK;
    int status = image_new(&dst, src->w, src->h, want, name);
    if (status != RN_OK) return status;
    size_t n = (size_t)src->w * (size_t)src->h;
    for (size_t k = 0; k < n; k++) {
        if (want == 1) dst->pixels[k] = luma(src->pixels + 3 * k);
        else memset(dst->pixels + 3 * k, src->pixels[k], 3);
    }
    rn_image_free(src);
    *img = dst;
    return RN_OK;
}

static int max_int(int a, int b)
{
    return a > b ? a : b;
}

/* ---- PNG ----------------------------------------------------------------------------------- */

typedef struct {
    const char *name;
    const uint8_t *data;
    size_t size, pos;
    int want;
    png_structp png;
    png_infop info;
    png_bytep *rows;
    rn_image *img;
    int truncated;
    char msg[200];
} png_job;

static void png_on_error(png_structp png, png_const_charp msg)
{
    png_job *j = png_get_error_ptr(png);
    snprintf(j->msg, sizeof j->msg, "%s", msg);
    png_longjmp(png, 1);
}

/* Warnings (bad ancillary chunks and the like) are not errors, and the library prints nothing. */
static void png_on_warning(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg;
}

static void png_read_bytes(png_structp png, png_bytep out, size_t n)
{
    png_job *j = png_get_io_ptr(png);
    if (n > j->size - j->pos) {
        j->truncated = 1;
        png_error(png, "truncated");
    }
    memcpy(out, j->data + j->pos, n);
    j->pos += n;
}

/* The IHDR chunk's size, read before libpng so that a huge one gets a message with numbers;
 * libpng's own user limits stay as the backstop. */
static int png_check_ihdr(const png_job *j)
{
    if (j->size < 24 || memcmp(j->data + 12, "IHDR", 4) != 0) return RN_OK; /* libpng says why */
    png_uint_32 w = png_get_uint_32(j->data + 16), h = png_get_uint_32(j->data + 20);
    if (w > RN_IMAGE_MAX_SIDE || h > RN_IMAGE_MAX_SIDE) return check_size(j->name, "PNG", w, h, 1);
    return RN_OK;
}

/* Expands palette, low-bit grey and 16-bit samples to 8-bit grey or RGB and drops alpha (also
 * the alpha that palette expansion makes from a tRNS chunk). */
static void png_set_transforms(png_structp png, int color, int depth)
{
    if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if ((color & PNG_COLOR_MASK_COLOR) == 0 && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (depth == 16) png_set_strip_16(png);
    png_set_strip_alpha(png);
    (void)png_set_interlace_handling(png);
}

/* Runs inside png_run's setjmp: libpng's errors jump back there, past this frame. */
static int png_body(png_job *j)
{
    png_set_user_limits(j->png, RN_IMAGE_MAX_SIDE, RN_IMAGE_MAX_SIDE);
    png_set_read_fn(j->png, j, png_read_bytes);
    png_read_info(j->png, j->info);
    png_uint_32 w, h;
    int depth, color;
    if (!png_get_IHDR(j->png, j->info, &w, &h, &depth, &color, NULL, NULL, NULL))
        return rn_fail(RN_ERR_FORMAT, "%s: broken PNG: no image header", j->name);
    png_set_transforms(j->png, color, depth);
    png_read_update_info(j->png, j->info);
    int c = png_get_channels(j->png, j->info);
    if (png_get_bit_depth(j->png, j->info) != 8 || (c != 1 && c != 3) ||
        png_get_image_width(j->png, j->info) != w || png_get_image_height(j->png, j->info) != h)
        return rn_fail(RN_ERR_FORMAT, "%s: unsupported PNG (colour type %d, %d bits)", j->name,
                       color, depth);
    int status = check_size(j->name, "PNG", w, h, max_int(c, j->want));
    if (status != RN_OK) return status;
    if (png_get_rowbytes(j->png, j->info) != (size_t)w * (size_t)c)
        return rn_fail(RN_ERR_FORMAT, "%s: unsupported PNG (rows of %zu bytes for %u pixels)",
                       j->name, (size_t)png_get_rowbytes(j->png, j->info), (unsigned)w);
    if ((status = image_new(&j->img, (int)w, (int)h, c, j->name)) != RN_OK) return status;
    if (!(j->rows = malloc((size_t)h * sizeof *j->rows)))
        return rn_fail(RN_ERR_NOMEM, "%s: out of memory", j->name);
    for (png_uint_32 y = 0; y < h; y++) j->rows[y] = j->img->pixels + (size_t)y * w * (size_t)c;
    png_read_image(j->png, j->rows);
    png_read_end(j->png, NULL); /* to IEND: a file cut after its pixels is truncated too */
    return RN_OK;
}

static int png_run(png_job *j)
{
    if (setjmp(png_jmpbuf(j->png))) {
        if (j->truncated)
            return rn_fail(RN_ERR_FORMAT, "%s: truncated PNG (the file ends after %zu bytes)",
                           j->name, j->size);
        return rn_fail(RN_ERR_FORMAT, "%s: broken PNG: %s", j->name, j->msg);
    }
    return png_body(j);
}

static int decode_png(rn_image **out, const uint8_t *data, size_t size, int want, const char *name)
{
    png_job j = {.name = name, .data = data, .size = size, .want = want};
    int status = png_check_ihdr(&j);
    if (status != RN_OK) return status;
    j.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &j, png_on_error, png_on_warning);
    if (j.png) j.info = png_create_info_struct(j.png);
    status = j.info ? png_run(&j) : rn_fail(RN_ERR_NOMEM, "%s: out of memory", name);
    png_destroy_read_struct(&j.png, &j.info, NULL);
    free(j.rows);
    if (status == RN_OK) status = convert_channels(&j.img, want, name);
    if (status != RN_OK) {
        rn_image_free(j.img);
        return status;
    }
    *out = j.img;
    return RN_OK;
}

/* ---- JPEG ---------------------------------------------------------------------------------- */

typedef struct {
    struct jpeg_error_mgr pub; /* first: libjpeg hands back a pointer to it */
    jmp_buf jump;
    int truncated, scans;
    char msg[JMSG_LENGTH_MAX];
} jpeg_errors;

typedef struct {
    const char *name;
    const uint8_t *data;
    size_t size;
    int want, channels;
    struct jpeg_decompress_struct cinfo;
    jpeg_errors err;
    struct jpeg_progress_mgr progress;
    rn_image *img;
} jpeg_job;

static void jpeg_on_error(j_common_ptr cinfo)
{
    jpeg_errors *e = (jpeg_errors *)cinfo->err;
    e->pub.format_message(cinfo, e->msg);
    longjmp(e->jump, 1);
}

/* libjpeg meets the end of a short file, or of scan data shorter than the image, with a warning
 * and decodes the missing pixels as grey; here both are errors. Other warnings (stray bytes
 * before a marker, an odd progression of scans) pass, as in other viewers. */
static void jpeg_on_message(j_common_ptr cinfo, int level)
{
    jpeg_errors *e = (jpeg_errors *)cinfo->err;
    if (level < 0 && (e->pub.msg_code == JWRN_JPEG_EOF || e->pub.msg_code == JWRN_HIT_MARKER)) {
        e->truncated = e->pub.msg_code == JWRN_JPEG_EOF ? 1 : 2;
        longjmp(e->jump, 1);
    }
}

static void jpeg_no_output(j_common_ptr cinfo)
{
    (void)cinfo;
}

static void jpeg_on_progress(j_common_ptr cinfo)
{
    if (!cinfo->is_decompressor) return;
    jpeg_errors *e = (jpeg_errors *)cinfo->err;
    int scan = ((j_decompress_ptr)cinfo)->input_scan_number;
    if (scan > RN_IMAGE_MAX_JPEG_SCANS) {
        e->scans = scan;
        longjmp(e->jump, 1);
    }
}

static int jpeg_failure(const jpeg_job *j)
{
    if (j->err.truncated == 1)
        return rn_fail(RN_ERR_FORMAT, "%s: truncated JPEG (the file ends after %zu bytes)",
                       j->name, j->size);
    if (j->err.truncated == 2)
        return rn_fail(RN_ERR_FORMAT, "%s: truncated JPEG (its scan data ends before the image "
                       "does)", j->name);
    if (j->err.scans)
        return rn_fail(RN_ERR_FORMAT, "%s: JPEG with more than %d scans (refused: each scan "
                       "decodes the whole image again)", j->name, RN_IMAGE_MAX_JPEG_SCANS);
    /* libjpeg's own limit (65500) is met in jpeg_read_header, before ours */
    if (j->err.pub.msg_code == JERR_IMAGE_TOO_BIG &&
        check_size(j->name, "JPEG", j->cinfo.image_width, j->cinfo.image_height, 1) != RN_OK)
        return RN_ERR_FORMAT;
    return rn_fail(RN_ERR_FORMAT, "%s: broken JPEG: %s", j->name, j->err.msg);
}

/* The output colour space for a file's colour space, or an error for CMYK and the like. */
static int jpeg_choose_output(jpeg_job *j)
{
    J_COLOR_SPACE space = j->cinfo.jpeg_color_space;
    if (space == JCS_CMYK || space == JCS_YCCK)
        return rn_fail(RN_ERR_FORMAT, "%s: CMYK JPEG: not supported (convert it to RGB)", j->name);
    if (space != JCS_GRAYSCALE && space != JCS_YCbCr && space != JCS_RGB)
        return rn_fail(RN_ERR_FORMAT, "%s: JPEG of %d components in an unknown colour space: not "
                       "supported (grey or colour only)", j->name, j->cinfo.num_components);
    j->channels = j->want ? j->want : space == JCS_GRAYSCALE ? 1 : 3;
    j->cinfo.out_color_space = j->channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
    return RN_OK;
}

/* Runs inside jpeg_run's setjmp: libjpeg's errors jump back there, past this frame. */
static int jpeg_body(jpeg_job *j)
{
    jpeg_create_decompress(&j->cinfo);
    j->cinfo.progress = &j->progress;
    jpeg_mem_src(&j->cinfo, j->data, (unsigned long)j->size);
    (void)jpeg_read_header(&j->cinfo, TRUE);
    int status = jpeg_choose_output(j);
    if (status != RN_OK) return status;
    const int c = j->channels;
    /* every component of the file is held while decoding, whatever the output keeps */
    status = check_size(j->name, "JPEG", j->cinfo.image_width, j->cinfo.image_height,
                        max_int(j->cinfo.num_components, c));
    if (status != RN_OK) return status;
    (void)jpeg_start_decompress(&j->cinfo);
    JDIMENSION w = j->cinfo.output_width, h = j->cinfo.output_height;
    if (w != j->cinfo.image_width || h != j->cinfo.image_height || j->cinfo.output_components != c)
        return rn_fail(RN_ERR_FORMAT, "%s: JPEG decodes to %u x %u x %d, not the %u x %u x %d "
                       "it declares", j->name, (unsigned)w, (unsigned)h,
                       j->cinfo.output_components, (unsigned)j->cinfo.image_width,
                       (unsigned)j->cinfo.image_height, c);
    if ((status = image_new(&j->img, (int)w, (int)h, c, j->name)) != RN_OK) return status;
    while (j->cinfo.output_scanline < h) {
        JSAMPROW row = j->img->pixels + (size_t)j->cinfo.output_scanline * w * (size_t)c;
        if (jpeg_read_scanlines(&j->cinfo, &row, 1) != 1)
            return rn_fail(RN_ERR_FORMAT, "%s: JPEG decoding stopped at row %u", j->name,
                           (unsigned)j->cinfo.output_scanline);
    }
    (void)jpeg_finish_decompress(&j->cinfo); /* reads on to EOI */
    return RN_OK;
}

static int jpeg_run(jpeg_job *j)
{
    if (setjmp(j->err.jump)) return jpeg_failure(j);
    return jpeg_body(j);
}

static int decode_jpeg(rn_image **out, const uint8_t *data, size_t size, int want,
                       const char *name)
{
    jpeg_job *j = calloc(1, sizeof *j); /* zeroed: destroying a never-created cinfo is safe */
    if (!j) return rn_fail(RN_ERR_NOMEM, "%s: out of memory", name);
    j->name = name, j->data = data, j->size = size, j->want = want;
    j->cinfo.err = jpeg_std_error(&j->err.pub);
    j->err.pub.error_exit = jpeg_on_error;
    j->err.pub.emit_message = jpeg_on_message;
    j->err.pub.output_message = jpeg_no_output;
    j->progress.progress_monitor = jpeg_on_progress;
    int status = jpeg_run(j);
    jpeg_destroy_decompress(&j->cinfo);
    rn_image *img = j->img;
    free(j);
    if (status != RN_OK) {
        rn_image_free(img);
        return status;
    }
    *out = img;
    return RN_OK;
}

/* ---- binary PGM / PPM ---------------------------------------------------------------------- */

static int pnm_space(uint8_t b)
{
    return b == ' ' || b == '\t' || b == '\n' || b == '\v' || b == '\f' || b == '\r';
}

/* The next header number at *pos, past whitespace and # comments. */
static int pnm_number(const uint8_t *d, size_t n, size_t *pos, const char *what, uint32_t *out,
                      const char *name)
{
    size_t p = *pos;
    while (p < n && (pnm_space(d[p]) || d[p] == '#'))
        if (d[p++] == '#')
            while (p < n && d[p] != '\n' && d[p] != '\r') p++;
    if (p == n) return rn_fail(RN_ERR_FORMAT, "%s: truncated PGM/PPM header (no %s)", name, what);
    if (d[p] < '0' || d[p] > '9')
        return rn_fail(RN_ERR_FORMAT, "%s: broken PGM/PPM header: %s is not a number", name, what);
    uint32_t v = 0;
    for (; p < n && d[p] >= '0' && d[p] <= '9'; p++) {
        if (v > 100000000u)
            return rn_fail(RN_ERR_FORMAT, "%s: broken PGM/PPM header: %s is out of range", name,
                           what);
        v = v * 10 + (uint32_t)(d[p] - '0');
    }
    *pos = p;
    *out = v;
    return RN_OK;
}

/* Samples to 8 bits: maxval 255 as they are, 65535 by the high byte (as for 16-bit PNG), any
 * other maxval scaled with rounding. A sample above maxval is an error. */
static int pnm_samples(uint8_t *dst, const uint8_t *src, size_t count, uint32_t maxval,
                       const char *name)
{
    int wide = maxval > 255;
    for (size_t k = 0; k < count; k++) {
        uint32_t v = wide ? (uint32_t)src[2 * k] << 8 | src[2 * k + 1] : src[k];
        if (v > maxval)
            return rn_fail(RN_ERR_FORMAT, "%s: PGM/PPM sample %u above the maxval %u", name,
                           (unsigned)v, (unsigned)maxval);
        dst[k] = (uint8_t)(maxval == 255 ? v : maxval == 65535 ? v >> 8
                                                               : (v * 255 + maxval / 2) / maxval);
    }
    return RN_OK;
}

static int decode_pnm(rn_image **out, const uint8_t *data, size_t size, int want, const char *name)
{
    int c = data[1] == '5' ? 1 : 3;
    size_t pos = 2;
    if (size == pos) return rn_fail(RN_ERR_FORMAT, "%s: truncated PGM/PPM header", name);
    if (!pnm_space(data[pos]) && data[pos] != '#')
        return rn_fail(RN_ERR_FORMAT, "%s: broken PGM/PPM header (no whitespace after P%c)", name,
                       data[1]);
    uint32_t w, h, maxval;
    int status = pnm_number(data, size, &pos, "width", &w, name);
    if (status == RN_OK) status = pnm_number(data, size, &pos, "height", &h, name);
    if (status == RN_OK) status = pnm_number(data, size, &pos, "maxval", &maxval, name);
    if (status != RN_OK) return status;
    if (maxval == 0 || maxval > 65535)
        return rn_fail(RN_ERR_FORMAT, "%s: broken PGM/PPM header: maxval %u (1 to 65535)", name,
                       (unsigned)maxval);
    if (pos == size || !pnm_space(data[pos]))
        return rn_fail(RN_ERR_FORMAT, "%s: truncated PGM/PPM header (no whitespace after it)",
                       name);
    pos++;
    if ((status = check_size(name, c == 1 ? "PGM" : "PPM", w, h, max_int(c, want))) != RN_OK)
        return status;
    size_t count = (size_t)w * h * (size_t)c, bytes = count * (maxval > 255 ? 2 : 1);
    if (bytes > size - pos)
        return rn_fail(RN_ERR_FORMAT, "%s: truncated %s (%zu bytes of pixels, %zu in the file)",
                       name, c == 1 ? "PGM" : "PPM", bytes, size - pos);
    rn_image *img;
    if ((status = image_new(&img, (int)w, (int)h, c, name)) != RN_OK) return status;
    status = pnm_samples(img->pixels, data + pos, count, maxval, name);
    if (status == RN_OK) status = convert_channels(&img, want, name);
    if (status != RN_OK) {
        rn_image_free(img);
        return status;
    }
    *out = img;
    return RN_OK;
}

/* ---- dispatch on the first bytes ----------------------------------------------------------- */

/* Formats told apart only to name them in the error. */
static const char *unsupported_format(const uint8_t *d, size_t n)
{
    static const struct {
        const char *magic;
        size_t len;
        const char *name;
    } known[] = {
        {"BM", 2, "BMP"},          {"GIF8", 4, "GIF"},     {"II*\0", 4, "TIFF"},
        {"MM\0*", 4, "TIFF"},      {"8BPS", 4, "PSD"},     {"#?RADIANCE", 10, "HDR"},
        {"#?RGBE", 6, "HDR"},      {"qoif", 4, "QOI"},     {"\0\0\0\x0cjP  ", 8, "JPEG 2000"},
        {"\xff\x4f\xff\x51", 4, "JPEG 2000"}, {"\x76\x2f\x31\x01", 4, "OpenEXR"},
    };
    for (size_t k = 0; k < sizeof known / sizeof known[0]; k++)
        if (n >= known[k].len && memcmp(d, known[k].magic, known[k].len) == 0) return known[k].name;
    if (n >= 12 && memcmp(d, "RIFF", 4) == 0 && memcmp(d + 8, "WEBP", 4) == 0) return "WebP";
    if (n >= 12 && memcmp(d + 4, "ftyp", 4) == 0) return "HEIF/AVIF";
    if (n >= 2 && d[0] == 'P' && d[1] && strchr("12347", d[1]))
        return "plain-text, bitmap or PAM netpbm";
    return NULL;
}

int rn_image_decode(rn_image **out, const uint8_t *data, size_t size, int channels,
                    const char *name)
{
    *out = NULL;
    if (!name) name = "image";
    if (channels != 0 && channels != 1 && channels != 3)
        return rn_fail(RN_ERR_ARG, "%s: images convert to 1 or 3 channels, not %d", name, channels);
    if (size > RN_IMAGE_MAX_FILE_BYTES)
        return rn_fail(RN_ERR_FORMAT, "%s: too large: a file of %zu bytes (at most %zu MiB)", name,
                       size, RN_IMAGE_MAX_FILE_BYTES >> 20);
    if (size == 0) return rn_fail(RN_ERR_FORMAT, "%s: empty file, not an image", name);
    if (size >= 4 && memcmp(data, "\x89PNG", 4) == 0)
        return decode_png(out, data, size, channels, name);
    if (size >= 3 && memcmp(data, "\xff\xd8\xff", 3) == 0)
        return decode_jpeg(out, data, size, channels, name);
    if (size >= 2 && data[0] == 'P' && (data[1] == '5' || data[1] == '6'))
        return decode_pnm(out, data, size, channels, name);
    const char *other = unsupported_format(data, size);
    if (other)
        return rn_fail(RN_ERR_FORMAT, "%s: %s images are not supported (only " SUPPORTED ")", name,
                       other);
    char first[16] = "";
    for (size_t k = 0; k < size && k < 4; k++)
        snprintf(first + 3 * k, sizeof first - 3 * k, " %02x", data[k]);
    return rn_fail(RN_ERR_FORMAT, "%s: not a " SUPPORTED " image (first bytes%s)", name, first);
}

/* ---- files --------------------------------------------------------------------------------- */

/* The whole file, at most RN_IMAGE_MAX_FILE_BYTES (+1, to tell a larger one). */
static int read_capped(FILE *fp, const char *path, uint8_t **data, size_t *size)
{
    const size_t cap_max = RN_IMAGE_MAX_FILE_BYTES + 1;
    size_t cap = 0, n = 0;
    uint8_t *buf = NULL;
    struct stat st;
    if (fstat(fileno(fp), &st) == 0 && S_ISREG(st.st_mode)) {
        if ((uintmax_t)st.st_size > RN_IMAGE_MAX_FILE_BYTES)
            return rn_fail(RN_ERR_FORMAT, "%s: too large: a file of %jd bytes (at most %zu MiB)",
                           path, (intmax_t)st.st_size, RN_IMAGE_MAX_FILE_BYTES >> 20);
        cap = (size_t)st.st_size + 1; /* one more, to see a file that grew */
        if (!(buf = malloc(cap)))
            return rn_fail(RN_ERR_NOMEM, "%s: out of memory reading it", path);
    }
    for (;;) {
        if (n == cap) {
            size_t grown = cap < 65536 ? 65536 : cap > cap_max / 2 ? cap_max : 2 * cap;
            uint8_t *p = n < cap_max ? realloc(buf, grown) : NULL;
            if (!p) {
                free(buf);
                return n < cap_max ? rn_fail(RN_ERR_NOMEM, "%s: out of memory reading it", path)
                                   : rn_fail(RN_ERR_FORMAT, "%s: too large: a file of more than "
                                             "%zu MiB", path, RN_IMAGE_MAX_FILE_BYTES >> 20);
            }
            buf = p, cap = grown;
        }
        size_t got = fread(buf + n, 1, cap - n, fp);
        n += got;
        if (got == 0) break;
    }
    if (ferror(fp)) {
        int err = errno;
        free(buf);
        return rn_fail(RN_ERR_IO, "%s: read error: %s", path, strerror(err));
    }
    *data = buf;
    *size = n;
    return RN_OK;
}

int rn_image_read(rn_image **out, const char *path, int channels)
{
    *out = NULL;
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return rn_fail(RN_ERR_IO, "%s: %s", path,
                       errno == ENOENT ? "missing file" : strerror(errno));
    uint8_t *data = NULL;
    size_t size = 0;
    int status = read_capped(fp, path, &data, &size);
    fclose(fp);
    if (status == RN_OK) status = rn_image_decode(out, data, size, channels, path);
    free(data);
    return status;
}
