/* Image files from untrusted sources, decoded into 8-bit pixels.
 *
 * The format is told by the file's first bytes, never by its name:
 *   PNG   libpng: grey, grey+alpha, RGB, RGBA, palette, 1 to 16 bits, interlaced or not
 *   JPEG  libjpeg-turbo: grey, YCbCr and RGB (baseline and progressive); CMYK/YCCK refused
 *   PGM/PPM  binary netpbm (P5 grey, P6 RGB), maxval 1 to 65535: a few lines read here, since
 *         the format is a text header and raw samples
 * Anything else (BMP, GIF, TIFF, WebP, plain-text netpbm, ...) is refused with the list above.
 *
 * Alpha is dropped (no compositing); 16-bit samples keep their high byte (maxval 65535) or are
 * scaled (other PGM/PPM maxvals). RGB to grey is the luma (77 R + 150 G + 29 B) >> 8; a colour
 * JPEG read as grey is its decoded Y plane. Grey to RGB repeats the grey value.
 *
 * Limits, checked before any pixel memory is allocated: a file of at most RN_IMAGE_MAX_FILE_BYTES,
 * at most RN_IMAGE_MAX_SIDE pixels on a side, and at most RN_IMAGE_MAX_BYTES of decoded pixels
 * (width x height x the channels the decoder holds). A progressive JPEG has at most
 * RN_IMAGE_MAX_JPEG_SCANS scans: each scan revisits the whole image, so a small file of many
 * scans costs as much time as a huge one. Truncated files are errors, not half-grey pictures.
 * Every error is RN_ERR_FORMAT (RN_ERR_IO when the file cannot be read, RN_ERR_NOMEM) with a
 * message that names the file and the problem. */
#ifndef RN_IO_IMAGE_H
#define RN_IO_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#define RN_IMAGE_MAX_SIDE 16384
#define RN_IMAGE_MAX_BYTES ((size_t)256 << 20)
#define RN_IMAGE_MAX_FILE_BYTES ((size_t)256 << 20)
#define RN_IMAGE_MAX_JPEG_SCANS 500

typedef struct {
    int w, h, c;     /* c: 1 (grey) or 3 (RGB) */
    uint8_t *pixels; /* [h, w, c], interleaved */
} rn_image;

/* Decodes size bytes of an image file. channels: 1 or 3 to convert to, 0 for the file's own
 * (1 for grey files, 3 for the rest). name is the file's name, for messages. On success *out is
 * a new image for rn_image_free; on failure NULL. */
int rn_image_decode(rn_image **out, const uint8_t *data, size_t size, int channels,
                    const char *name);
/* Reads the file at path (at most RN_IMAGE_MAX_FILE_BYTES) and decodes it as above. */
int rn_image_read(rn_image **out, const char *path, int channels);
void rn_image_free(rn_image *img);

#endif
