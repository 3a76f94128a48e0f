"""Inference with a trained run's model: loading it, its forward pass, and image-file predictions.

``load_model`` and ``make_forward`` are shared with ``evaluation/evaluate.py``, so predictions
and evaluation see an image through exactly the same crop, normalisation and model.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import sys

import keras
import numpy as np
import tensorflow as tf

from tfgender import devices, errors, models
from tfgender.data import decode, image_check, image_files
from tfgender.evaluation import forward, tflite
from tfgender.files import BEST_MODEL, CHECKPOINT_DIR, RUN_CONFIG_FILE, SUMMARY_FILE
from tfgender.input import augment

OVERSAMPLE_VIEWS = 10
IMAGE_SUFFIXES = image_files.SUFFIXES  # JPEG, PNG, BMP, GIF, WebP, TIFF
PREDICT_MAX_PIXELS = 250_000_000
FIELDS = ("path", "gender", "probability_male")
FACE_FIELDS = ("path", "face", "x", "y", "width", "height", "gender", "probability_male")


class ModelError(RuntimeError):
    """A trained model cannot be loaded, or does not fit what was requested; says why."""


@dataclasses.dataclass(frozen=True)
class LoadedModel:
    """A trained model and the input facts its training used."""

    model: keras.Model | tflite.TFLiteModel  # a TFLite file holds the crop and normalisation
    name: str
    image_size: int
    cache_image_size: int
    crop_fraction: float | None  # see augment.eval_transform
    normalization: str
    source: str  # the file or checkpoint the weights came from
    step: int  # the run's training step (TensorBoard x-axis), 0 if unknown


def read_summary(workdir: str) -> dict:
    """A run's ``summary.json``; before the run has written one (a run stopped in its first
    epochs), the ``run_config.json`` it wrote when it started, which holds the model, its
    input size, precision and config; ``{}`` when neither exists."""
    for name in (SUMMARY_FILE, RUN_CONFIG_FILE):
        path = os.path.join(workdir, name)
        if os.path.exists(path):
            with open(path) as f:
                return json.load(f)
    return {}


def _rebuild_from_checkpoint(workdir: str, checkpoint: str, summary: dict):
    if not summary:
        raise ModelError(f"--checkpoint={checkpoint} rebuilds the model from "
                              f"{workdir}/{RUN_CONFIG_FILE} (or {SUMMARY_FILE}), which "
                         "does not exist: the run never started")
    path = checkpoint
    if checkpoint == "latest":
        path = tf.train.latest_checkpoint(os.path.join(workdir, CHECKPOINT_DIR))
        if not path:
            raise ModelError(f"no checkpoint in {workdir}/{CHECKPOINT_DIR}")
    elif not tf.io.gfile.exists(path + ".index"):
        raise ModelError(f"no checkpoint at {path} (expected {path}.index)")
    run = summary.get("config", {})
    policy = keras.mixed_precision.global_policy()
    # Built under the run's policy, so the network computes as the saved .keras model would.
    keras.mixed_precision.set_global_policy(
        devices.keras_policy(summary.get("precision", "float32")))
    try:
        model = models.build_model(
            summary["model"], summary["image_size"],
            precision_name=summary.get("precision", "float32"), weights=None,
            freeze_base=False, **models.model_kwargs(run))
    finally:
        keras.mixed_precision.set_global_policy(policy)
    try:
        tf.train.Checkpoint(model=model).restore(path).expect_partial() \
            .assert_existing_objects_matched()
    except (AssertionError, ValueError, tf.errors.NotFoundError) as err:
        raise ModelError(f"checkpoint {path} does not fit the {summary['model']} model the "
                         f"run in {workdir} records: {err}") from None
    return model, path


def load_model(*, workdir: str = "", checkpoint: str = "best", model_path: str = "",
               model_name: str = "", image_size: int = 0,
               cache_image_size: int = 0) -> LoadedModel:
    """Loads a trained model and the input facts of its run.

    Args:
        workdir: a training run directory (``best_model.keras``, ``checkpoints/``,
            ``summary.json``); ignored for the weights when ``model_path`` is given.
        checkpoint: ``"best"`` (``best_model.keras``), ``"latest"`` (rebuild the model from
            ``summary.json`` and restore the latest checkpoint) or a checkpoint prefix.
        model_path: a ``.keras`` file to load instead (one saved without its normalisation,
            as runs before ``models.with_normalization`` saved, needs ``model_name`` and
            ``image_size``; the run's ``summary.json`` beside it gives the framing), or a
            ``.tflite`` file from ``bin/export``. With neither
            ``workdir`` nor ``model_path``, the model the package ships (``tflite.py``).
        model_name: the architecture of ``model_path`` (selects the normalisation).
        image_size: the expected model input side; 0 accepts the model's.
        cache_image_size: the side images are decoded to before the crop; 0 takes the run's.

    Returns:
        A ``LoadedModel``.

    Raises:
        ModelError: nothing to load, a model that does not match what was requested.
    """
    if model_path.endswith(".tflite") or not (model_path or workdir):
        return _load_tflite(model_path, model_name, image_size, cache_image_size)
    summary = read_summary(workdir) if workdir else {}
    run = summary.get("config", {})
    if model_path:
        if not os.path.exists(model_path):
            raise ModelError(f"--model_path={model_path} does not exist")
        model, source = keras.models.load_model(model_path, compile=False), model_path
        # A run's file in its run directory: the run's framing (cache size, crop) from beside it.
        run = read_summary(os.path.dirname(os.path.abspath(model_path))).get("config", {})
        if not models.takes_pixels(model) and not (model_name and image_size):
            raise ModelError("--model_path needs --model_name and --image_size (a file saved "
                             "without its normalisation)")
    elif not workdir:
        raise ModelError("give --workdir (a training run) or --model_path")
    elif checkpoint == "best":
        source = os.path.join(workdir, BEST_MODEL)
        if not os.path.exists(source):
            raise ModelError(f"no {BEST_MODEL} in {workdir} (the run has not finished an "
                                  "epoch?); try --checkpoint=latest")
        model = keras.models.load_model(source, compile=False)
    else:
        model, source = _rebuild_from_checkpoint(workdir, checkpoint, summary)
    name = model_name or summary.get("model") or model.name
    if name not in models.MODELS:
        raise ModelError(f"unknown architecture {name!r} (known: "
                              f"{', '.join(sorted(models.MODELS))}); give --model_name")
    input_size = model.input_shape[1]
    for what, size in (("requested --image_size", image_size),
                       (f"run in {workdir}", summary.get("image_size", 0))):
        if size and size != input_size:
            raise ModelError(f"image size mismatch: {source} takes {input_size} px inputs "
                                  f"but the {what} is {size} px")
    crop_scale = run.get("crop_scale") or ()
    return LoadedModel(
        model=model, name=name, image_size=input_size,
        cache_image_size=cache_image_size or run.get("cache_image_size") or input_size,
        crop_fraction=max(crop_scale) if crop_scale else None,
        normalization="" if models.takes_pixels(model) else models.MODELS[name].normalization,
        source=source,
        step=int(summary.get("steps", 0)))


def _load_tflite(path: str, model_name: str, image_size: int,
                 cache_image_size: int) -> LoadedModel:
    """A TFLite file (``path``, or the bundled model when empty) as a ``LoadedModel``; its
    card (the ``.json`` beside it, if any) names the architecture and the training facts."""
    if not path:
        path = tflite.bundled_model()
        if not path:
            raise ModelError("give --workdir (a training run) or --model_path: this copy of "
                             f"tfgender ships no bundled model ({tflite.BUNDLED_MODEL})")
    if not os.path.isfile(path):
        raise ModelError(f"--model_path={path} does not exist")
    try:
        model = tflite.TFLiteModel(path)
    except (ValueError, RuntimeError) as err:
        raise ModelError(f"{path} is not a TFLite model: {errors.reason(err)}") from None
    card = tflite.read_card(os.path.splitext(path)[0] + ".json")
    for flag, wanted, size in (("--cache_image_size", cache_image_size, model.image_size),
                               ("--image_size", image_size, card.get("image_size", 0))):
        if wanted and size and wanted != size:
            raise ModelError(f"{flag}={wanted} does not fit {path}, which takes {size} px")
    return LoadedModel(model=model, name=model_name or card.get("model", "tflite"),
                       image_size=card.get("image_size", model.image_size),
                       cache_image_size=model.image_size,
                       crop_fraction=card.get("crop_fraction"), normalization="",
                       source=path, step=int(card.get("steps", 0)))


def make_forward(loaded: LoadedModel, oversample: bool = False):
    """Builds ``forward(images) -> logits``: the evaluation transform, normalisation and model.

    Args:
        loaded: the model and its input facts.
        oversample: False for one view (the centre crop, as in training's evaluation); True
            for Levi & Hassner's 10 views (four corners and centre, each also mirrored).

    Returns:
        A tf.function from uint8 ``(B, S, S, 3)`` (``S`` = ``loaded.cache_image_size``) to
        float32 logits ``(B, views)``.
    """
    if isinstance(loaded.model, tflite.TFLiteModel):  # its crop is inside: the centre only
        if oversample:
            raise ModelError(f"{loaded.source} takes whole images and crops their centre "
                             "inside; --oversample needs a run's model (--workdir)")
        return tflite.make_logits_forward(loaded.model)
    size, fraction = loaded.image_size, loaded.crop_fraction
    spec = tf.TensorSpec([None, loaded.cache_image_size, loaded.cache_image_size, 3], tf.uint8)

    @tf.function(input_signature=[spec])
    def center(images):
        return forward.eval_logits(loaded.model, images, image_size=size,
                                   normalization=loaded.normalization, crop_fraction=fraction)

    @tf.function(input_signature=[spec])
    def ten_crops(images):
        if fraction:  # scale so a crop covers the fraction of the image training saw
            side = round(size / fraction)
            images = tf.image.resize(images, [side, side], antialias=True)
        crops = augment.oversample_crops(images, size)  # (B, 10, size, size, 3)
        flat = tf.reshape(crops, [-1, size, size, 3])
        return tf.reshape(forward.logits(loaded.model, flat, loaded.normalization),
                          [-1, OVERSAMPLE_VIEWS])

    return ten_crops if oversample else center


def sigmoid(logits) -> np.ndarray:
    """Numerically safe logistic function in float64 (no overflow for large logits)."""
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(logits, np.float64)))


def find_images(inputs) -> tuple[list[str], list[dict]]:
    """Expands files and folders (recursively, sorted) into image paths.

    A file named explicitly is taken whatever its suffix; inside folders only files with
    one of ``image_files.SUFFIXES`` (any case) are taken.

    Args:
        inputs: file and folder paths.

    Returns:
        (image paths, each file once in the order first named; skipped ``{path, reason}``
        for inputs that do not exist).
    """
    paths, skipped, seen = [], [], set()
    for item in inputs:
        if os.path.isdir(item):
            found = []
            for root, dirs, files in os.walk(item):
                dirs.sort()
                found += [os.path.join(root, f) for f in files
                          if f.lower().endswith(IMAGE_SUFFIXES)]
            candidates = sorted(found)
        elif os.path.exists(item):
            candidates = [item]
        else:
            skipped.append({"path": item, "reason": "no such file or directory"})
            continue
        for path in candidates:  # a file named twice (or inside a named folder) once
            key = os.path.realpath(path)
            if key not in seen:
                seen.add(key)
                paths.append(path)
    return paths, skipped


def read_standard(path: str) -> bytes:
    """An image file as the JPEG bytes conversion would store for it (``image_files``: any
    common format, EXIF orientation applied, RGB).

    Raises:
        OSError: the file cannot be read.
        ImageCheckError: not an image, or corrupt (a ValueError).
    """
    with open(path, "rb") as f:
        data = f.read()
    if not data:
        raise image_check.ImageCheckError("empty file")
    # A phone's 50-megapixel photo is a photo, not a bomb: a higher limit than conversion's.
    return image_files.standard_bytes(data, max_pixels=PREDICT_MAX_PIXELS)[0]


def decode_square(path: str, size: int) -> np.ndarray:
    """Reads an image file and applies ``decode.decode_image`` to the bytes conversion would
    have stored (``read_standard``): the rule records went through.

    Returns:
        uint8 ``(size, size, 3)``.

    Raises:
        tf.errors.OpError, OSError, ValueError: the file cannot be read or decoded.
    """
    return decode.decode_image(tf.constant(read_standard(path)), size).numpy()


# TensorFlow's decode errors, in words (their text starts with a ``{{function_node ...}}`` tag).
_DECODE_REASONS = (("Input is empty", "empty file"),
                   ("Unknown image file format", "not a JPEG, PNG, GIF or BMP image"),
                   ("Invalid JPEG data or crop window", "corrupt or truncated JPEG"),
                   ("jpeg::Uncompress failed", "corrupt or truncated JPEG"),
                   ("image has no pixels", "image has no pixels"))


def _reason(err: Exception) -> str:
    message = errors.reason(err)
    for fragment, words in _DECODE_REASONS:
        if fragment in message:
            return words
    if isinstance(err, tf.errors.OpError):
        return "cannot decode the image: " + message
    return message


def predict_images(loaded: LoadedModel, paths, batch_size: int = 32):
    """Classifies image files in batches; files that cannot be decoded are skipped.

    Args:
        loaded: from ``load_model``.
        paths: image file paths.
        batch_size: images per model call.

    Returns:
        (rows ``{path, gender, probability_male}`` in input order, skipped ``{path, reason}``).
    """
    forward = make_forward(loaded)
    rows, skipped, batch, batch_paths = [], [], [], []

    def flush():
        logits = forward(tf.constant(np.stack(batch))).numpy()[:, 0]
        for path, probability in zip(batch_paths, sigmoid(logits), strict=True):
            rows.append({"path": path, "gender": "male" if probability > 0.5 else "female",
                         "probability_male": float(probability)})
        batch.clear()
        batch_paths.clear()

    for path in paths:
        try:
            batch.append(decode_square(path, loaded.cache_image_size))
        except (tf.errors.OpError, OSError, ValueError) as err:
            skipped.append({"path": path, "reason": _reason(err)})
            continue
        batch_paths.append(path)
        if len(batch) == batch_size:
            flush()
    if batch:
        flush()
    return rows, skipped


def _csv_text(rows) -> str:
    buffer = io.StringIO()
    fields = FACE_FIELDS if rows and "face" in rows[0] else FIELDS
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def write_predictions(rows, skipped, output: str, loaded: LoadedModel) -> None:
    """Writes rows as CSV or JSON (by ``output``'s suffix), or CSV to stdout when empty.

    JSON also lists the skipped files and the model; CSV holds predicted images only.

    Raises:
        ValueError: a suffix other than .csv or .json.
    """
    if not output:
        sys.stdout.write(_csv_text(rows))
        sys.stdout.flush()
        return
    suffix = os.path.splitext(output)[1].lower()
    if suffix == ".json":
        text = json.dumps({"model": loaded.name, "model_source": loaded.source,
                           "predictions": rows, "skipped": skipped}, indent=2)
    elif suffix == ".csv":
        text = _csv_text(rows)
    else:
        raise ValueError(f"--output={output}: use a .csv or .json file name")
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    with open(output, "w") as f:
        f.write(text)


def predict_faces(loaded: LoadedModel, paths, *, detector: str = "", annotate_dir: str = ""):
    """Finds the faces in photos and classifies each (``detect.py``).

    Returns:
        (rows ``{path, face, x, y, width, height, gender, probability_male}``, one per face,
        skipped ``{path, reason}`` for unreadable photos and photos without a face).
    """
    from tfgender.evaluation import detect  # (OpenCV only when asked for)

    forward = make_forward(loaded)
    rows, skipped = [], []
    for path in paths:
        try:
            image = tf.io.decode_jpeg(read_standard(path), channels=3).numpy()
        except (tf.errors.OpError, OSError, ValueError) as err:
            skipped.append({"path": path, "reason": _reason(err)})
            continue
        found = detect.detect(image, detector or detect.DEFAULT_DETECTOR)
        if not found:
            skipped.append({"path": path, "reason": "no face found"})
            continue
        boxes = [face["box"] for face in found]
        crops = np.stack([decode.square_and_resize(detect.face_crop(image, face),
                                                   loaded.cache_image_size).numpy()
                          for face in found])
        probabilities = sigmoid(forward(tf.constant(crops)).numpy()[:, 0])
        faces = [{"path": path, "face": i, "x": x, "y": y, "width": w, "height": h,
                  "gender": "male" if p > 0.5 else "female", "probability_male": float(p)}
                 for i, ((x, y, w, h), p) in enumerate(zip(boxes, probabilities, strict=True))]
        rows += faces
        if annotate_dir:
            detect.annotate(image, faces, os.path.join(
                annotate_dir, os.path.splitext(os.path.basename(path))[0] + ".annotated.jpg"))
    return rows, skipped


def predict(config) -> list[dict]:
    """Classifies the images named by ``config.inputs`` and writes the predictions.

    Unreadable or corrupt images are reported on stderr with their path and reason, listed
    under ``skipped`` in JSON output, and otherwise skipped.

    Args:
        config: a ``config.PredictConfig``.

    Returns:
        One ``{path, gender, probability_male}`` per predicted image.

    Raises:
        ModelError: the model cannot be loaded or does not fit.
        ValueError: no inputs, or an unsupported output suffix.
    """
    if not config.inputs:
        raise ValueError("no inputs: give image files or folders")
    if config.output and os.path.splitext(config.output)[1].lower() not in (".csv", ".json"):
        raise ValueError(f"--output={config.output}: use a .csv or .json file name")
    loaded = load_model(workdir=config.workdir, checkpoint=config.checkpoint,
                                 model_path=config.model_path, model_name=config.model_name,
                                 image_size=config.image_size,
                                 cache_image_size=config.cache_image_size)
    paths, skipped = find_images(config.inputs)
    if config.detect_faces or config.annotate:
        rows, unreadable = predict_faces(loaded, paths, detector=config.detector,
                                         annotate_dir=config.annotate)
    else:
        rows, unreadable = predict_images(loaded, paths, config.batch_size)
    skipped += unreadable
    for item in skipped:
        print(f"skipped {item['path']}: {item['reason']}", file=sys.stderr)
    write_predictions(rows, skipped, config.output, loaded)
    return rows


__all__ = ["LoadedModel", "ModelError", "decode_square", "find_images", "load_model",
           "make_forward", "predict", "predict_images", "read_summary", "sigmoid",
           "write_predictions"]
