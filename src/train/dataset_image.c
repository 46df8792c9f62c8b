/* One image file to [c, h, w] bytes: decoded by Debian's stb_image (which also converts grey,
 * RGB and alpha to the channels asked for) and resized by stb_image_resize, whose filtered
 * downsampling does not alias the way plain bilinear sampling of a large photo would. */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stb/stb_image.h>
#include <stb/stb_image_resize.h>

#include "core/error.h"
#include "train/dataset.h"

int rn_image_load(const char *path, int c, int h, int w, uint8_t *out)
{
    if (c != 1 && c != 3)
        return rn_fail(RN_ERR_ARG, "%s: images convert to 1 or 3 channels, not %d", path, c);
    if (h <= 0 || w <= 0) return rn_fail(RN_ERR_ARG, "%s: bad target size %d x %d", path, h, w);
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return rn_fail(RN_ERR_IO, "%s: %s", path,
                       errno == ENOENT ? "missing file" : strerror(errno));
    int iw, ih, comp;
    unsigned char *img = stbi_load_from_file(fp, &iw, &ih, &comp, c);
    fclose(fp);
    if (!img)
        return rn_fail(RN_ERR_FORMAT, "%s: unreadable image (%s)", path, stbi_failure_reason());
    unsigned char *sized = img;
    if (iw != w || ih != h) {
        sized = malloc((size_t)w * (size_t)h * (size_t)c);
        if (!sized) {
            stbi_image_free(img);
            return rn_fail(RN_ERR_NOMEM, "%s: out of memory resizing to %d x %d", path, h, w);
        }
        if (!stbir_resize_uint8(img, iw, ih, 0, sized, w, h, 0, c)) {
            free(sized);
            stbi_image_free(img);
            return rn_fail(RN_ERR_NOMEM, "%s: resizing %d x %d to %d x %d failed", path, ih, iw,
                           h, w);
        }
    }
    /* stb gives interleaved pixels (h, w, c); the network wants planes (c, h, w). */
    size_t plane = (size_t)h * (size_t)w;
    for (int ch = 0; ch < c; ch++)
        for (size_t k = 0; k < plane; k++)
            out[(size_t)ch * plane + k] = sized[k * (size_t)c + (size_t)ch];
    if (sized != img) free(sized);
    stbi_image_free(img);
    return RN_OK;
}
