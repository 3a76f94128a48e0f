"""Cheap checks of an image file before any decoding: existence, type, header size bounds.

Everything here reads at most the file's header, so a decompression bomb (a small file whose
header claims an enormous image) is rejected before a decoder allocates its pixels.
"""

from __future__ import annotations

import os
import struct

_SOF_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_MAGIC = {
    b"\x89PNG": "PNG",
    b"GIF8": "GIF",
    b"BM": "BMP",
    b"RIFF": "RIFF/WebP",
    b"II*\x00": "TIFF",
    b"MM\x00*": "TIFF",
}


class ImageCheckError(ValueError):
    """An image file that cannot be converted; ``str()`` is the reason."""


def jpeg_size(data: bytes) -> tuple[int, int]:
    """Returns (width, height) read from a JPEG's start-of-frame marker.

    Raises:
        ImageCheckError: when the bytes are not a JPEG or no frame header is found.
    """
    if not data.startswith(b"\xff\xd8"):
        kind = next((name for magic, name in _MAGIC.items() if data.startswith(magic)), None)
        raise ImageCheckError(f"not JPEG content ({kind})" if kind else "not JPEG content")
    pos = 2
    n = len(data)
    while pos + 4 <= n:
        if data[pos] != 0xFF:
            raise ImageCheckError(f"corrupt JPEG header (no marker at byte {pos})")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # markers without a length
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2:pos + 4])
        if length < 2:
            raise ImageCheckError(f"corrupt JPEG header (segment length {length})")
        if marker in _SOF_MARKERS:
            if pos + 9 > n:
                break
            height, width = struct.unpack(">HH", data[pos + 5:pos + 9])
            if width == 0 or height == 0:
                raise ImageCheckError(f"corrupt JPEG header (size {width}x{height})")
            return width, height
        if marker == 0xDA:  # start of scan before any frame header
            break
        pos += 2 + length
    raise ImageCheckError("truncated or corrupt JPEG (no frame header)")


def resolve_inside(data_dir: str, relative_path: str) -> str:
    """Joins a label file's path to ``data_dir``, refusing paths that leave it.

    Raises:
        ImageCheckError: for an absolute path or one that escapes ``data_dir`` (``..``, links).
    """
    if os.path.isabs(relative_path) or relative_path.startswith(("/", "\\")):
        raise ImageCheckError("absolute path in label file: refused")
    root = os.path.realpath(data_dir)
    full = os.path.realpath(os.path.join(root, relative_path))
    if os.path.commonpath([root, full]) != root:
        raise ImageCheckError("path leaves the data directory: refused")
    return full
