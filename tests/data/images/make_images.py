#!/usr/bin/python3
"""Writes the small image files of tests/test_image.c and, beside each, NAME.pixels: the pixels
Pillow decodes from it (8-bit, interleaved rows; grey for grey files, RGB for the rest; 16-bit
samples by their high byte, alpha dropped), and for colour JPEGs NAME.grey.pixels, the Y plane
libjpeg gives when asked for grey (Pillow's draft mode "L").
Run from anywhere with Debian's Pillow: /usr/bin/python3 tests/data/images/make_images.py"""
import os
import struct
import zlib

import numpy as np
from PIL import Image

OUT = os.path.dirname(os.path.abspath(__file__))
W, H = 13, 9  # odd sizes: partial JPEG blocks, odd columns of subsampled chroma


def path(name):
    return os.path.join(OUT, name)


def picture():
    rng = np.random.default_rng(20240607)
    y, x = np.mgrid[0:H, 0:W]
    r = 20 * x + 7 * y
    g = 255 - 25 * y + 3 * x
    b = 128 + 60 * np.sin(x * 0.9 + y * 0.5)
    rgb = np.stack([r, g, b], -1) + rng.integers(-12, 13, (H, W, 3))
    return rgb.clip(0, 255).astype(np.uint8)


def expect(name, pixels):
    np.ascontiguousarray(pixels, np.uint8).tofile(path(name + ".pixels"))


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def write_png(name, rows_of_bytes, w, h, depth, color, interlace=0):
    ihdr = struct.pack(">IIBBBBB", w, h, depth, color, 0, 0, interlace)
    raw = b"".join(b"\0" + r for r in rows_of_bytes)
    with open(path(name), "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr)
                + png_chunk(b"IDAT", zlib.compress(raw)) + png_chunk(b"IEND", b""))


def adam7_rows(a):
    """The rows of the seven Adam7 passes of a [h, w, c] uint8 array, in file order."""
    rows = []
    for x0, y0, dx, dy in ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4),
                           (1, 0, 2, 2), (0, 1, 1, 2)):
        sub = a[y0::dy, x0::dx]
        if sub.shape[0] and sub.shape[1]:
            rows += [bytes(r.tobytes()) for r in sub]
    return rows


def pngs(rgb):
    grey = rgb[:, :, 1].copy()
    Image.fromarray(grey).save(path("grey.png"))
    expect("grey.png", grey)
    Image.fromarray(rgb).save(path("rgb.png"))
    expect("rgb.png", rgb)
    rgba = np.dstack([rgb, rgb[:, :, 0] // 3])
    Image.fromarray(rgba).save(path("rgba.png"))
    expect("rgba.png", np.asarray(Image.open(path("rgba.png")).convert("RGB")))
    la = Image.fromarray(np.dstack([grey, 255 - grey]), "LA")
    la.save(path("grey_alpha.png"))
    expect("grey_alpha.png", np.asarray(Image.open(path("grey_alpha.png")).convert("L")))
    pal = Image.fromarray(rgb).convert("P", palette=Image.ADAPTIVE, colors=40)
    pal.save(path("palette.png"))
    expect("palette.png", np.asarray(Image.open(path("palette.png")).convert("RGB")))
    pal4 = Image.fromarray(rgb).convert("P", palette=Image.ADAPTIVE, colors=12)
    pal4.save(path("palette4_trns.png"), bits=4, transparency=3)
    expect("palette4_trns.png", np.asarray(Image.open(path("palette4_trns.png")).convert("RGB")))
    Image.fromarray(grey > 128).save(path("grey1.png"))
    expect("grey1.png", np.asarray(Image.open(path("grey1.png")).convert("L")))
    g16 = grey.astype(np.uint16) * 256 + np.arange(W, dtype=np.uint16) * 19  # low bytes vary
    Image.fromarray(g16).save(path("grey16.png"))
    expect("grey16.png", np.asarray(Image.open(path("grey16.png")), np.uint16) >> 8)
    # 16-bit RGB and Adam7 interlacing: Pillow writes neither, so the chunks are written here
    rgb16 = (rgb.astype(np.uint16) * 256 + np.arange(3, dtype=np.uint16) * 101).astype(">u2")
    write_png("rgb16.png", [r.tobytes() for r in rgb16], W, H, 16, 2)
    expect("rgb16.png", np.asarray(Image.open(path("rgb16.png")).convert("RGB")))
    write_png("rgb_adam7.png", adam7_rows(rgb), W, H, 8, 2, interlace=1)
    assert Image.open(path("rgb_adam7.png")).info.get("interlace") == 1
    expect("rgb_adam7.png", np.asarray(Image.open(path("rgb_adam7.png")).convert("RGB")))
    for name in ("grey16.png", "rgb16.png", "rgb_adam7.png"):
        assert np.array_equal(np.fromfile(path(name + ".pixels"), np.uint8),
                              (rgb if name != "grey16.png" else grey).ravel()), name


def jpegs(rgb):
    Image.fromarray(rgb[:, :, 0]).save(path("grey.jpg"), quality=90)
    expect("grey.jpg", np.asarray(Image.open(path("grey.jpg"))))
    colour = {"rgb420.jpg": dict(quality=80, subsampling=2),
              "rgb422.jpg": dict(quality=92, subsampling=1),
              "rgb444.jpg": dict(quality=95, subsampling=0),
              "rgb_progressive.jpg": dict(quality=85, progressive=True)}
    for name, opts in colour.items():
        Image.fromarray(rgb).save(path(name), **opts)
        im = Image.open(path(name))
        assert im.mode == "RGB"
        expect(name, np.asarray(im))
        im = Image.open(path(name))
        im.draft("L", im.size)
        assert im.mode == "L"
        np.ascontiguousarray(np.asarray(im)).tofile(path(name + ".grey.pixels"))
    Image.fromarray(rgb).convert("CMYK").save(path("cmyk.jpg"), quality=90)


def netpbm(rgb):
    grey = rgb[:, :, 2]
    Image.fromarray(grey).save(path("grey.pgm"))
    expect("grey.pgm", np.asarray(Image.open(path("grey.pgm"))))
    Image.fromarray(rgb).save(path("rgb.ppm"))
    expect("rgb.ppm", np.asarray(Image.open(path("rgb.ppm"))))
    g16 = (grey.astype(np.uint16) * 257 + 5).astype(">u2")  # big-endian in the file
    with open(path("grey16_comment.pgm"), "wb") as f:
        f.write(b"P5\n# a comment\n%d %d\n65535\n" % (W, H) + g16.tobytes())
    expect("grey16_comment.pgm", np.asarray(Image.open(path("grey16_comment.pgm")), np.uint16) >> 8)


def main():
    rgb = picture()
    pngs(rgb)
    jpegs(rgb)
    netpbm(rgb)


if __name__ == "__main__":
    main()
