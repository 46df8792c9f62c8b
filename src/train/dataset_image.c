/* One image file to [c, h, w] bytes: decoded by io/image.c (libpng, libjpeg-turbo; it also
 * converts grey and RGB to the channels asked for) and resized by stb_image_resize, whose
 * filtered downsampling does not alias the way plain bilinear sampling of a large photo would. */
#include <stdlib.h>

#include <stb/stb_image_resize.h>

#include "core/error.h"
#include "io/image.h"
#include "train/dataset.h"

int rn_image_load(const char *path, int c, int h, int w, uint8_t *out)
{
    if (c != 1 && c != 3)
        return rn_fail(RN_ERR_ARG, "%s: images convert to 1 or 3 channels, not %d", path, c);
    if (h <= 0 || w <= 0) return rn_fail(RN_ERR_ARG, "%s: bad target size %d x %d", path, h, w);
    rn_image *img;
    int status = rn_image_read(&img, path, c);
    if (status != RN_OK) return status;
    const uint8_t *sized = img->pixels;
    uint8_t *resized = NULL;
    if (img->w != w || img->h != h) {
        resized = malloc((size_t)w * (size_t)h * (size_t)c);
        if (!resized) {
            rn_image_free(img);
            return rn_fail(RN_ERR_NOMEM, "%s: out of memory resizing to %d x %d", path, h, w);
        }
        if (!stbir_resize_uint8(img->pixels, img->w, img->h, 0, resized, w, h, 0, c)) {
            status = rn_fail(RN_ERR_NOMEM, "%s: resizing %d x %d to %d x %d failed", path, img->h,
                             img->w, h, w);
            free(resized);
            rn_image_free(img);
            return status;
        }
        sized = resized;
    }
    /* decoded pixels are interleaved (h, w, c); the network wants planes (c, h, w) */
    size_t plane = (size_t)h * (size_t)w;
    for (int ch = 0; ch < c; ch++)
        for (size_t k = 0; k < plane; k++)
            out[(size_t)ch * plane + k] = sized[k * (size_t)c + (size_t)ch];
    free(resized);
    rn_image_free(img);
    return RN_OK;
}
