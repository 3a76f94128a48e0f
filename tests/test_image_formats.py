"""Every common image format, in conversion and in bin/predict, by one rule (image_files.py):
each converted or reported, never lost silently, and predicted from the same pixels the
record holds."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tfgender.config import ConvertConfig
from tfgender.data import convert, decode, image_check, image_files
from tfgender.data import records as rec
from tfgender.evaluation import predict

SIZE = 40


def _face(seed: int) -> np.ndarray:
    """A drawn RGB image with structure (a gradient and a disc), not noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:SIZE, 0:SIZE + 8]
    image = np.stack([x * 5, y * 6, (x + y) * 3], axis=-1).astype(np.float32)
    image[(y - 20) ** 2 + (x - 24) ** 2 < 120] = rng.uniform(0, 255, 3)
    return image.clip(0, 255).astype(np.uint8)


def _encode(image: Image.Image, fmt: str, **kw) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **kw)
    return out.getvalue()


def _cases() -> dict[str, bytes]:
    """file name -> bytes: every format and mode the rule covers."""
    rgb = Image.fromarray(_face(0))
    rgba = rgb.convert("RGBA")
    rgba.putalpha(Image.fromarray((np.arange(SIZE * (SIZE + 8)) % 256).astype(np.uint8)
                                  .reshape(SIZE, SIZE + 8)))
    grey16 = Image.fromarray(np.asarray(rgb.convert("L"), np.uint16) * 257)  # I;16
    second = Image.fromarray(_face(1))
    rotated = Image.fromarray(np.ascontiguousarray(np.rot90(_face(2))))
    exif = Image.Exif()
    exif[0x0112] = 6  # stored turned: the viewer rotates it 90 degrees clockwise
    return {
        "a.jpg": _encode(rgb, "JPEG", quality=95),
        "b.png": _encode(rgb, "PNG"),
        "c_alpha.png": _encode(rgba, "PNG"),
        "d_grey16.png": _encode(grey16, "PNG"),
        "e_palette.png": _encode(rgb.convert("P"), "PNG"),
        "f.bmp": _encode(rgb, "BMP"),
        "g_animated.gif": _encode(rgb.convert("P"), "GIF", save_all=True,
                                  append_images=[second.convert("P")]),
        "h.webp": _encode(rgb, "WEBP", quality=90),
        "i.tiff": _encode(rgb, "TIFF"),
        "j_cmyk.jpg": _encode(rgb.convert("CMYK"), "JPEG", quality=95),
        "k_grey.jpg": _encode(rgb.convert("L"), "JPEG", quality=95),
        "l_exif.jpg": _encode(rotated, "JPEG", quality=95, exif=exif),
        "m.tif": _encode(rgb.convert("L"), "TIFF"),
        "n_rgb16.png": _rgb16_png(),
    }


def _rgb16_png() -> bytes:
    """A 16-bit RGB PNG (Pillow writes none: OpenCV, whose channel order is BGR)."""
    import cv2

    wide = _face(0).astype(np.uint16) * 257
    ok, buffer = cv2.imencode(".png", np.ascontiguousarray(wide[..., ::-1]))
    assert ok
    return buffer.tobytes()


def _tree(root) -> dict[str, bytes]:
    cases = _cases()
    for folder in ("male", "female"):
        (root / folder).mkdir(parents=True)
    for index, (name, data) in enumerate(sorted(cases.items())):
        (root / ("male" if index % 2 else "female") / name).write_bytes(data)
    return cases


def test_the_rule_gives_rgb_jpeg_bytes_upright_and_first_frames():
    cases = _cases()
    for name, data in cases.items():
        out, width, height = image_files.standard_bytes(data)
        image = tf.io.decode_jpeg(out, channels=3).numpy()
        assert image.shape[2] == 3 and image.shape[:2] == (height, width), name
    assert image_files.standard_bytes(cases["a.jpg"])[0] == cases["a.jpg"]  # kept as is
    # EXIF orientation 6: stored turned, read upright (the original's shape and pixels).
    upright = tf.io.decode_jpeg(image_files.standard_bytes(cases["l_exif.jpg"])[0]).numpy()
    assert upright.shape == (SIZE, SIZE + 8, 3)
    assert np.abs(upright.astype(int) - _face(2)).mean() < 6
    # An animated GIF's first frame; transparency over white; 16-bit keeps its high byte.
    first = tf.io.decode_jpeg(image_files.standard_bytes(cases["g_animated.gif"])[0]).numpy()
    assert np.abs(first.astype(int) - _face(0)).mean() < np.abs(
        first.astype(int) - _face(1)).mean()
    alpha = tf.io.decode_jpeg(image_files.standard_bytes(cases["c_alpha.png"])[0]).numpy()
    assert alpha[0, 0].min() > 240  # alpha 0 at the first pixel: white
    rgb16 = tf.io.decode_jpeg(image_files.standard_bytes(cases["n_rgb16.png"])[0]).numpy()
    assert np.abs(rgb16.astype(int) - _face(0)).mean() < 6  # the high byte (JPEG-encoded)
    grey = tf.io.decode_jpeg(image_files.standard_bytes(cases["d_grey16.png"])[0]).numpy()
    want = np.asarray(Image.fromarray(_face(0)).convert("L"), int)
    assert np.abs(grey[..., 0].astype(int) - want).mean() < 3


def test_every_format_is_converted_and_every_corrupt_file_is_reported(tmp_path):
    cases = _tree(tmp_path / "faces")
    for index, (name, data) in enumerate(sorted(cases.items())):  # a broken copy of each
        stem, suffix = os.path.splitext(name)
        folder = "male" if index % 2 else "female"
        (tmp_path / "faces" / folder / f"{stem}_broken{suffix}").write_bytes(
            data[: len(data) // 3])
    manifest = convert.convert(ConvertConfig(
        source="folders", data_dir=str(tmp_path / "faces"), out_dir=str(tmp_path / "out"),
        max_skipped_fraction=1.0, min_image_side=8, val_fraction=0, test_fraction=0,
        progress=False))
    assert manifest["num_records"] == len(cases), manifest["skipped"]
    assert manifest["num_rows_read"] == 2 * len(cases)  # none lost: converted or reported
    skipped = {os.path.basename(s["path"]) for s in manifest["skipped"]}
    assert skipped == {f"{os.path.splitext(n)[0]}_broken{os.path.splitext(n)[1]}"
                       for n in cases}


def test_bin_predict_sees_the_pixels_the_record_holds(tmp_path):
    cases = _tree(tmp_path / "faces")
    convert.convert(ConvertConfig(
        source="folders", data_dir=str(tmp_path / "faces"), out_dir=str(tmp_path / "out"),
        min_image_side=8, val_fraction=0, test_fraction=0, jpeg_quality=95,
        progress=False))
    records = {}
    for path in tf.io.gfile.glob(str(tmp_path / "out" / "*.tfrecord")):
        for raw in tf.data.TFRecordDataset(path):
            example = rec.parse_example(raw)
            records[example[rec.SOURCE_ID].numpy().decode()] = example[rec.ENCODED]
    assert len(records) == len(cases)
    for source_id, encoded in records.items():
        from_record = decode.decode_image(encoded, 32).numpy()
        from_file = predict.decode_square(str(tmp_path / "faces" / source_id), 32)
        np.testing.assert_array_equal(from_file, from_record, err_msg=source_id)


def test_a_file_that_is_no_image_or_a_bomb_is_one_reason():
    with pytest.raises(image_check.ImageCheckError, match="not an image Pillow can read"):
        image_files.standard_bytes(b"hello, this is text")
    big = _encode(Image.new("L", (3000, 3000)), "PNG")
    with pytest.raises(image_check.ImageCheckError, match="above --max_image_pixels"):
        image_files.standard_bytes(big, max_pixels=1_000_000)
