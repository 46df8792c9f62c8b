/* libFuzzer harness: the image decoders (src/io/image.c) on any bytes: PNG through libpng, JPEG
 * through libjpeg-turbo, binary PGM/PPM, and the refusal of everything else. The channels asked
 * for follow the input's length (0 = the file's own, 1, 3), so the conversions are reached too.
 * An accepted image must be within the limits of io/image.h and have the channels asked for;
 * every pixel is read, so that AddressSanitizer sees an image shorter than its size says; a
 * refusal must leave no image and name the file.
 * Seeds: fuzz/corpus/image (the files of tests/data/images/, tests/data/images/make_images.py). */
#include "fuzz_common.h"

#include "io/image.h"
#include "resnet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int channels[3] = {0, 1, 3};
    const int want = channels[size % 3];
    rn_image *img = NULL;
    if (rn_image_decode(&img, data, size, want, "fuzz.img") != RN_OK) {
        if (img || !strstr(rn_last_error(), "fuzz.img")) abort();
        return 0;
    }
    if (!img || img->w <= 0 || img->h <= 0 || img->w > RN_IMAGE_MAX_SIDE ||
        img->h > RN_IMAGE_MAX_SIDE || (img->c != 1 && img->c != 3) || (want && img->c != want))
        abort();
    size_t n = (size_t)img->w * (size_t)img->h * (size_t)img->c;
    if (n > RN_IMAGE_MAX_BYTES) abort();
    unsigned sum = 0;
    for (size_t k = 0; k < n; k++) sum += img->pixels[k];
    /* a branch on the sum, so that reading uninitialised pixels is a use, not dead code */
    if (sum == 0xffffffffu) fprintf(stderr, "sum\n");
    rn_image_free(img);
    return 0;
}
