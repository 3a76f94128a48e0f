"""Exported models on this CPU: single-image latency, batch throughput and int8's accuracy drop.

Four ways to run a trained run's model, on the same decoded faces of a real split:

- ``keras``: the toolkit's own forward pass (``predict.make_forward``: uint8 images at the
  run's cache size -> centre crop, normalisation, model), a ``tf.function``;
- ``saved_model``: ``bin/export --format=saved_model``'s ``serving_default``, fed encoded JPEG
  bytes (so its figure includes decoding, as TensorFlow Serving would run it);
- ``tflite`` and ``tflite_int8``: ``bin/export``'s flatbuffers in ``tf.lite.Interpreter``, fed
  uint8 images (the int8 one calibrated on the first 200 records of the same dataset's files).

Settings: TFGENDER_BENCH_EXPORT_RUN (a trained workdir; default runs/fairface, made by the
commands in configs/fairface.flags), TFGENDER_BENCH_EXPORT_DATA (its converted dataset;
default data/fairface), TFGENDER_BENCH_EXPORT_SPLIT (default val: the split models are chosen
on, not the test split), TFGENDER_BENCH_EXPORT_IMAGES (default 1000), plus conftest's
TFGENDER_BENCH_ROUNDS. Skipped, saying what to make, when the run or the data is missing.
"""

from __future__ import annotations

import os
import tempfile

import conftest  # benchmarks/conftest.py: settings and summary sections
import numpy as np
import pytest
import tensorflow as tf

from tfgender.config import ExportConfig
from tfgender.evaluation import export, predict, tflite
from tfgender.input import pipeline as input_pipeline

RUN = os.environ.get("TFGENDER_BENCH_EXPORT_RUN", str(conftest.REPO / "runs" / "fairface"))
DATA = os.environ.get("TFGENDER_BENCH_EXPORT_DATA", str(conftest.REPO / "data" / "fairface"))
SPLIT = os.environ.get("TFGENDER_BENCH_EXPORT_SPLIT", "val")
NUM_IMAGES = int(os.environ.get("TFGENDER_BENCH_EXPORT_IMAGES", "1000"))
BATCH = 64
FORMATS = ("keras", "saved_model", "tflite", "tflite_int8")
# format -> {"latency_ms", "images_per_second", "accuracy", "max_diff"}, for the summary.
RESULTS: dict[str, dict] = {f: {} for f in FORMATS}
INFO: dict = {}  # "run": what was exported, "sizes": format -> MB

pytestmark = pytest.mark.benchmark(group="export")


class _Models:
    """The four runners and the faces: ``run[format](images, jpegs) -> probabilities``."""

    def __init__(self, out_dir: str):
        loaded = predict.load_model(workdir=RUN)
        self.run_name = f"{RUN} ({loaded.name}, {loaded.image_size} px, step {loaded.step})"
        dataset = input_pipeline.create_dataset(DATA, split=SPLIT, batch_size=BATCH,
                                                image_size=loaded.cache_image_size,
                                                training=False, cache="none")
        images, labels = [], []
        for batch_images, batch_labels in dataset:
            images.append(batch_images.numpy())
            labels.append(batch_labels.numpy())
            if sum(len(b) for b in images) >= NUM_IMAGES:
                break
        self.images = np.concatenate(images)[:NUM_IMAGES]
        self.labels = np.concatenate(labels)[:NUM_IMAGES].reshape(-1)
        self.jpegs = np.array([tf.io.encode_jpeg(image, quality=95).numpy()
                               for image in self.images], dtype=object)
        forward = predict.make_forward(loaded)
        paths = {}
        for fmt in FORMATS[1:]:
            paths[fmt] = os.path.join(out_dir, fmt + ("" if fmt == "saved_model" else ".tflite"))
            export.export(ExportConfig(workdir=RUN, output=paths[fmt], format=fmt,
                                       data_dir=DATA if fmt == "tflite_int8" else ""))
        serving = tf.saved_model.load(paths["saved_model"]).signatures["serving_default"]
        tflite = {fmt: tflite.TFLiteModel(paths[fmt]) for fmt in ("tflite", "tflite_int8")}
        self.run = {
            "keras": lambda images, jpegs: predict.sigmoid(forward(images).numpy()[:, 0]),
            "saved_model": lambda images, jpegs: serving(
                image_bytes=tf.constant(list(jpegs)))["probability_male"].numpy(),
            "tflite": lambda images, jpegs: tflite["tflite"](images),
            "tflite_int8": lambda images, jpegs: tflite["tflite_int8"](images),
        }
        self.sizes = {fmt: _size_mb(path) for fmt, path in paths.items()}
        self.reference = _probabilities(self, "keras")  # what every format is compared with


def _size_mb(path: str) -> float:
    if os.path.isdir(path):
        return sum(os.path.getsize(os.path.join(root, f)) for root, _, files in os.walk(path)
                   for f in files) / 1e6
    return os.path.getsize(path) / 1e6


@pytest.fixture(scope="module")
def models():
    if not os.path.exists(os.path.join(RUN, "summary.json")):
        pytest.skip(f"no trained run at {RUN}: run the commands in configs/fairface.flags' "
                    "header, or set TFGENDER_BENCH_EXPORT_RUN")
    if not os.path.exists(os.path.join(DATA, "manifest.json")):
        pytest.skip(f"no converted dataset at {DATA}: set TFGENDER_BENCH_EXPORT_DATA")
    conftest.SECTIONS["tfgender exported models"] = _summary
    with tempfile.TemporaryDirectory() as out_dir:
        made = _Models(out_dir)
        INFO.update(run=made.run_name, sizes=made.sizes)
        yield made


def _probabilities(models, fmt: str) -> np.ndarray:
    return np.concatenate([models.run[fmt](models.images[i:i + BATCH], models.jpegs[i:i + BATCH])
                           for i in range(0, len(models.images), BATCH)])


@pytest.mark.parametrize("fmt", FORMATS)
def test_accuracy_on_the_split(models, fmt):
    """Accuracy of each format on the same faces, and its largest difference from keras."""
    reference = models.reference
    got = reference if fmt == "keras" else _probabilities(models, fmt)
    RESULTS[fmt]["accuracy"] = float(np.mean((got > 0.5) == (models.labels > 0.5)))
    RESULTS[fmt]["max_diff"] = float(np.max(np.abs(got - reference)))
    # Float exports compute what the toolkit computes; int8 is allowed to differ.
    if fmt in ("saved_model", "tflite"):
        # saved_model decodes a re-encoded JPEG: close, not identical.
        assert RESULTS[fmt]["max_diff"] < (0.2 if fmt == "saved_model" else 1e-3)


@pytest.mark.parametrize("fmt", FORMATS)
def test_single_image_latency(benchmark, models, fmt):
    image, jpeg = models.images[:1], models.jpegs[:1]
    models.run[fmt](image, jpeg)  # built, traced and allocated before timing
    benchmark(models.run[fmt], image, jpeg)
    benchmark.extra_info.update(device=conftest.device(), format=fmt, batch=1)
    if benchmark.stats is not None:
        RESULTS[fmt]["latency_ms"] = benchmark.stats.stats.median * 1e3


@pytest.mark.parametrize("fmt", FORMATS)
def test_batch_throughput(benchmark, models, fmt):
    images, jpegs = models.images[:BATCH], models.jpegs[:BATCH]
    benchmark.pedantic(models.run[fmt], args=(images, jpegs), rounds=conftest.ROUNDS * 3,
                       iterations=1, warmup_rounds=1)
    benchmark.extra_info.update(device=conftest.device(), format=fmt, batch=BATCH)
    if benchmark.stats is not None:
        RESULTS[fmt]["images_per_second"] = BATCH / benchmark.stats.stats.median


def _summary() -> list[str]:
    lines = [f"run {INFO.get('run', RUN)}; {NUM_IMAGES} faces of split {SPLIT!r}; "
             f"device {conftest.device()}"]
    lines.append(f"  {'format':<13}{'size MB':>9}{'latency ms (1)':>16}{'img/s (64)':>12}"
                 f"{'accuracy':>10}{'max |p - keras|':>17}")

    def cell(r, key, width, spec):
        return f"{r[key]:{width}{spec}}" if key in r else f"{'-':>{width}}"

    for fmt in FORMATS:
        r = RESULTS[fmt]
        size = INFO.get("sizes", {}).get(fmt)

        lines.append(f"  {fmt:<13}" + (f"{size:9.1f}" if size else f"{'-':>9}")
                     + cell(r, "latency_ms", 16, ".2f") + cell(r, "images_per_second", 12, ".1f")
                     + cell(r, "accuracy", 10, ".4f") + cell(r, "max_diff", 17, ".4f"))
    if "accuracy" in RESULTS["tflite_int8"] and "accuracy" in RESULTS["keras"]:
        drop = RESULTS["keras"]["accuracy"] - RESULTS["tflite_int8"]["accuracy"]
        lines.append(f"  int8 accuracy drop against keras: {drop * 100:+.2f} points")
    return lines
