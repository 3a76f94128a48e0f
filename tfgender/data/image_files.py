"""Every common image format -> the bytes a record holds and a prediction decodes: one rule.

Records keep JPEG bytes (small shards, one decoder in the input pipeline). A JPEG file that
needs no turning is kept byte for byte. Any other file goes through Pillow once:

- the first frame (an animated GIF or WebP, a multi-page TIFF);
- EXIF orientation applied, so a phone photo is upright (JPEGs too);
- to 8-bit RGB by ``RGB_RULE``: 16-bit samples keep their high byte, grayscale is repeated
  in the three channels, a palette is looked up, CMYK goes through Pillow's conversion, and
  transparency is composited over white;
- encoded as JPEG at the given quality (``--jpeg_quality``).

``bin/convert_tfrecords`` and ``bin/predict`` both call ``standard_bytes``, so a face reaches
the model with the same pixels from its file as from a record converted at ``--image_size=0``
and the default ``--jpeg_quality=95`` (a resized record is a further JPEG encoding).
"""

from __future__ import annotations

import io
import os
import warnings

import numpy as np

from tfgender.data import image_check

# The suffixes conversion and prediction take (any case).
SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")
RGB_RULE = ("first frame; EXIF orientation applied; 16-bit samples keep their high byte; "
            "grayscale repeated in R, G and B; palette looked up; CMYK by Pillow's conversion; "
            "transparency composited over white; JPEG-encoded")
_ORIENTATION = 0x0112
_BACKGROUND = (255, 255, 255)


def read_image_file(path: str, max_pixels: int, min_side: int = 1,
                    quality: int = 95) -> tuple[bytes, int, int]:
    """Reads an image file of any of ``SUFFIXES`` after checking it is safe to decode.

    Returns:
        (JPEG bytes, width, height): the file's own bytes for an upright JPEG, else
        ``standard_bytes``' re-encoding.

    Raises:
        ImageCheckError: missing, empty, another suffix, not an image, too many pixels for
            ``max_pixels`` (a decompression bomb), a side below ``min_side``, corrupt.
    """
    if not os.path.lexists(path):
        raise image_check.ImageCheckError("missing file")
    if not os.path.isfile(path):
        raise image_check.ImageCheckError("not a regular file")
    ext = os.path.splitext(path)[1].lower()
    if ext not in SUFFIXES:
        raise image_check.ImageCheckError(
            f"wrong extension {ext or '(none)'!r}: expected one of {', '.join(SUFFIXES)}")
    with open(path, "rb") as f:
        data = f.read()
    if not data:
        raise image_check.ImageCheckError("zero-byte file")
    return standard_bytes(data, max_pixels, min_side, quality)


def standard_bytes(data: bytes, max_pixels: int = 40_000_000, min_side: int = 1,
                   quality: int = 95) -> tuple[bytes, int, int]:
    """An image file's bytes as the JPEG a record holds (see the module docstring).

    Returns:
        (JPEG bytes, width, height).

    Raises:
        ImageCheckError: not an image Pillow reads, a bomb, too small, or corrupt.
    """
    from PIL import Image, UnidentifiedImageError  # (conversion workers only)

    if data.startswith(b"\xff\xd8"):  # JPEG: the header check first, as before any decode
        width, height = image_check.jpeg_size(data)
        _check_size(width, height, max_pixels, min_side)
    # --max_image_pixels is the limit (checked on the header below), not Pillow's own.
    Image.MAX_IMAGE_PIXELS = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))  # lazy: the header only
        width, height = image.size
        _check_size(width, height, max_pixels, min_side)
        orientation = image.getexif().get(_ORIENTATION, 1)
        # MPO: a phone's JPEG with a second picture after the first, which decode_jpeg reads.
        if image.format in ("JPEG", "MPO") and orientation in (1, None) \
                and image.mode in ("RGB", "L"):
            return data, width, height  # kept byte for byte: decode_jpeg reads it as is
        image.seek(0)
        image.load()
        rgb = to_rgb(image, orientation)
    except (UnidentifiedImageError, Image.DecompressionBombError,
            Image.DecompressionBombWarning) as err:
        raise image_check.ImageCheckError(_pil_reason(err)) from None
    except (OSError, ValueError, SyntaxError, EOFError) as err:  # truncated, corrupt
        raise image_check.ImageCheckError(f"corrupt or truncated image: {err}") from None
    out = io.BytesIO()
    rgb.save(out, format="JPEG", quality=quality)
    return out.getvalue(), rgb.width, rgb.height


def to_rgb(image, orientation: int = 1):
    """A loaded Pillow image as 8-bit RGB by ``RGB_RULE`` (orientation: its EXIF tag)."""
    from PIL import Image, ImageOps

    if orientation not in (1, None):
        image = ImageOps.exif_transpose(image)
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):  # 16-bit grayscale: the high byte
        samples = np.asarray(image, dtype=np.uint32)
        image = Image.fromarray((samples >> 8).clip(0, 255).astype(np.uint8))  # mode L
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, _BACKGROUND + (255,))
        image = Image.alpha_composite(background, rgba)
    return image.convert("RGB")


def _check_size(width: int, height: int, max_pixels: int, min_side: int) -> None:
    if width * height > max_pixels:
        raise image_check.ImageCheckError(
            f"header claims {width}x{height} = {width * height:,} pixels, above "
            f"--max_image_pixels={max_pixels:,} (possible decompression bomb)")
    if min(width, height) < min_side:
        raise image_check.ImageCheckError(f"image is {width}x{height}, below "
                                          f"--min_image_side={min_side}")


def _pil_reason(err: Exception) -> str:
    text = str(err)
    if "cannot identify image file" in text:
        return "not an image Pillow can read (JPEG, PNG, BMP, GIF, WebP, TIFF)"
    return f"refused: {text}"
