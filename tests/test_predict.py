"""Tests of evaluation/predict.py and bin/predict: folders, bad files, CSV and JSON output."""

from __future__ import annotations

import csv
import glob
import io
import json
import os
import subprocess

import keras
import numpy as np
import pytest
import tensorflow as tf
from test_evaluate import CACHE, SIZE, make_run

from tfgender import models
from tfgender.config import PredictConfig
from tfgender.data import decode, image_files
from tfgender.data import records as rec
from tfgender.evaluation import predict
from tfgender.files import BEST_MODEL
from tfgender.input import augment

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PREDICT = os.path.join(REPO, "bin", "predict")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> str:
    return make_run(tmp_path_factory.mktemp("run") / "run", seed=1)


@pytest.fixture
def image_dir(tmp_path) -> dict:
    """Good JPEG and PNG faces (one nested, one not square), a corrupt JPEG, a text 'JPEG'."""
    root = tmp_path / "images"
    (root / "nested").mkdir(parents=True)
    rng = np.random.RandomState(0)
    good = {}
    for name, shape in (("a.jpg", (60, 60)), ("nested/b.JPEG", (50, 70)), ("c.png", (64, 64))):
        image = rng.randint(0, 256, shape + (3,), dtype=np.uint8)
        encode = tf.io.encode_png if name.endswith(".png") else tf.io.encode_jpeg
        (root / name).write_bytes(encode(image).numpy())
        good[str(root / name)] = image
    jpeg = tf.io.encode_jpeg(rng.randint(0, 256, (60, 60, 3), dtype=np.uint8)).numpy()
    (root / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 3])
    (root / "notes.jpg").write_text("this is not an image\n")
    (root / "readme.txt").write_text("ignored: not an image suffix\n")
    return {"root": str(root), "good": good,
            "bad": [str(root / "notes.jpg"), str(root / "truncated.jpg")]}


def _expected_probability(workdir, path) -> float:
    """Decode, centre square, resize, centre crop, normalise, model: written out by hand.
    A PNG is first the JPEG a record would hold of it (image_files.standard_bytes)."""
    data = open(path, "rb").read()
    if not path.lower().endswith((".jpg", ".jpeg")):
        data = image_files.standard_bytes(data)[0]
    image = tf.io.decode_image(data, channels=3, expand_animations=False)
    h, w = image.shape[:2]
    side = min(h, w)
    square = image[(h - side) // 2:(h - side) // 2 + side, (w - side) // 2:(w - side) // 2 + side]
    # decode.resize_square's rule: antialiased only when shrinking by more than 4/3.
    square = tf.cast(square, tf.float32)
    if side == CACHE:
        resized = square.numpy()
    else:
        resized = tf.image.resize(square, [CACHE, CACHE], antialias=3 * side > 4 * CACHE).numpy()
    resized = np.round(resized).clip(0, 255)
    offset = (CACHE - SIZE) // 2
    inputs = resized[offset:offset + SIZE, offset:offset + SIZE]
    model = keras.models.load_model(os.path.join(workdir, BEST_MODEL), compile=False)
    if not models.takes_pixels(model):  # a file saved without its normalisation
        inputs = inputs - augment.IMAGENET_RGB_MEAN
    logit = float(model.predict(inputs[None].astype(np.float32), verbose=0)[0, 0])
    return 1.0 / (1.0 + np.exp(-logit))


def test_predict_skips_bad_files_and_matches_a_direct_computation(run_dir, image_dir, tmp_path,
                                                                  capsys):
    out = tmp_path / "out.json"
    rows = predict.predict(PredictConfig(inputs=(image_dir["root"],), workdir=run_dir,
                                         output=str(out), batch_size=2))
    assert sorted(r["path"] for r in rows) == sorted(image_dir["good"])
    stderr = capsys.readouterr().err
    for bad in image_dir["bad"]:
        assert f"skipped {bad}:" in stderr
    assert "readme.txt" not in stderr
    written = json.load(open(out))
    assert written["predictions"] == rows
    assert sorted(s["path"] for s in written["skipped"]) == sorted(image_dir["bad"])
    assert all(s["reason"] for s in written["skipped"])
    for row in rows:
        expected = _expected_probability(run_dir, row["path"])
        assert row["probability_male"] == pytest.approx(expected, abs=1e-5)
        assert row["gender"] == ("male" if expected > 0.5 else "female")
    assert len({r["probability_male"] for r in rows}) == len(rows)  # a model that discriminates


def test_csv_output_and_bad_arguments(run_dir, image_dir, tmp_path):
    out = tmp_path / "out.csv"
    a_jpg = os.path.join(image_dir["root"], "a.jpg")
    rows = predict.predict(PredictConfig(inputs=(a_jpg, str(tmp_path / "missing.jpg")),
                                         workdir=run_dir, output=str(out)))
    parsed = list(csv.DictReader(open(out)))
    assert [r["path"] for r in parsed] == [a_jpg] and len(rows) == 1
    assert float(parsed[0]["probability_male"]) == rows[0]["probability_male"]
    with pytest.raises(ValueError, match=".csv or .json"):
        predict.predict(PredictConfig(inputs=(a_jpg,), workdir=run_dir, output="x.txt"))
    with pytest.raises(predict.ModelError, match="image size mismatch"):
        predict.predict(PredictConfig(inputs=(a_jpg,), workdir=run_dir, image_size=64))


@pytest.mark.slow
def test_bin_predict_json_file_and_csv_on_stdout(run_dir, image_dir, tmp_path):
    out = tmp_path / "p.json"
    proc = subprocess.run([PREDICT, f"--workdir={run_dir}", f"--output={out}",
                           image_dir["root"]], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for bad in image_dir["bad"]:
        assert bad in proc.stderr
    assert len(json.load(open(out))["predictions"]) == 3
    proc = subprocess.run([PREDICT, f"--workdir={run_dir}",
                           f"--inputs={image_dir['root']}/a.jpg,{image_dir['root']}/nested"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = list(csv.DictReader(io.StringIO(proc.stdout)))
    assert [os.path.basename(r["path"]) for r in rows] == ["a.jpg", "b.JPEG"]
    assert {r["gender"] for r in rows} <= {"male", "female"}


def test_each_file_once_reasons_in_words_and_nothing_predicted_is_an_error(run_dir, image_dir,
                                                                          tmp_path):
    a_jpg = os.path.join(image_dir["root"], "a.jpg")
    paths, skipped = predict.find_images([a_jpg, image_dir["root"], a_jpg])
    assert paths.count(a_jpg) == 1 and len(paths) == 5 and skipped == []
    (tmp_path / "empty.jpg").write_bytes(b"")
    _, skipped = predict.predict_images(
        predict.load_model(workdir=run_dir),
        [str(tmp_path / "empty.jpg"), *image_dir["bad"]])
    reasons = {os.path.basename(s["path"]): s["reason"] for s in skipped}
    assert reasons["empty.jpg"] == "empty file"
    assert reasons["notes.jpg"] == "not an image Pillow can read (JPEG, PNG, BMP, GIF, WebP, TIFF)"
    assert all("{{" not in r and "function_node" not in r for r in reasons.values()), reasons
    proc = subprocess.run([PREDICT, f"--workdir={run_dir}", str(tmp_path / "no_such.jpg"),
                           str(tmp_path / "empty.jpg")], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "error: nothing could be predicted" in proc.stderr
    assert f"skipped {tmp_path / 'no_such.jpg'}: no such file or directory" in proc.stderr


def test_a_face_gets_the_same_probability_from_its_file_and_from_its_record(
        run_dir, fairface_records, tmp_path):
    """One decode rule: conversion + the input pipeline, and bin/predict on the file."""
    from tfgender.config import ConvertConfig
    from tfgender.data import convert
    from tfgender.input import pipeline as input_pipeline

    raw = os.path.join(os.path.dirname(fairface_records), "raw")  # 224 px real faces
    records = str(tmp_path / "records")
    convert.convert(ConvertConfig(source="fairface", data_dir=raw, out_dir=records,
                                  image_size=CACHE, val_fraction=0.0, test_fraction=1.0,
                                  progress=False))
    loaded = predict.load_model(workdir=run_dir)
    forward = predict.make_forward(loaded)
    from_records = {}
    for images, _, meta in input_pipeline.create_dataset(
            records, split="test", batch_size=16, image_size=CACHE, training=False,
            cache="none", with_metadata=True):
        logits = forward(images).numpy()[:, 0]
        for source_id, probability in zip(meta["source_id"].numpy(), predict.sigmoid(logits),
                                          strict=True):
            from_records[os.path.join(raw, source_id.decode())] = float(probability)
    rows, skipped = predict.predict_images(loaded, sorted(from_records))
    assert not skipped and len(rows) == len(from_records) == 60
    differences = np.array([abs(r["probability_male"] - from_records[r["path"]]) for r in rows])
    spread = np.std(list(from_records.values()))
    # The record went through one JPEG re-encoding more (quality 95, 4:2:0 chroma: 2.8 grey
    # levels apart on average at 48 px), and this random model is steep; nothing else differs:
    assert spread > 0.05 and differences.mean() < 0.02 and differences.max() < 0.2, (
        differences.max(), differences.mean(), spread)
    # ... the record's pixels are exactly predict's after that one JPEG round trip.
    for raw_record in tf.data.TFRecordDataset(sorted(glob.glob(f"{records}/*.tfrecord"))):
        example = rec.parse_example(raw_record)
        path = os.path.join(raw, example[rec.SOURCE_ID].numpy().decode())
        round_trip = tf.io.decode_jpeg(tf.io.encode_jpeg(predict.decode_square(path, CACHE),
                                                         quality=95))
        np.testing.assert_array_equal(
            decode.decode_and_resize(example[rec.ENCODED], CACHE).numpy(), round_trip.numpy())
