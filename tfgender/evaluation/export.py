"""Models that leave the toolkit: a SavedModel that takes image bytes, TFLite float and int8.

- ``saved_model``: a TensorFlow SavedModel whose ``serving_default`` signature takes a batch
  of encoded JPEG/PNG/GIF/BMP bytes (``image_bytes``, string ``[batch]``) and returns
  ``probability_male`` (float32 ``[batch]``). Decoding and resizing happen inside, by
  ``decode.decode_image``, the rule conversion and ``bin/predict`` use; then the run's centre
  crop and normalisation. TensorFlow Serving loads it as it is.
- ``tflite`` / ``tflite_int8``: a TFLite flatbuffer from decoded uint8 images at the run's
  cache size (``[batch, S, S, 3]``, what ``predict.decode_square`` gives) to
  ``probability_male``; the crop and normalisation are inside. ``tflite_int8`` is
  post-training quantised with a representative sample of a converted dataset's records
  (the first ``calibration_images`` in file order).
  (TFLite has no JPEG decoder op: the caller decodes, by ``predict.decode_square``.)
"""

from __future__ import annotations

import dataclasses
import os
import tempfile

import keras
import tensorflow as tf

from tfgender import devices, models
from tfgender.choices import EXPORT_FORMATS as FORMATS
from tfgender.data import decode
from tfgender.evaluation import forward, predict, tflite
from tfgender.files import write_bytes_atomic, write_json_atomic
from tfgender.input import pipeline as input_pipeline


class ExportError(ValueError):
    """The export cannot be made as asked (bad format, output, or calibration data)."""


def _probability_fn(loaded: predict.LoadedModel, logit_offset: float = 0.0):
    """uint8 ``(B, S, S, 3)`` -> male probability ``(B,)``, as ``predict.make_forward``;
    ``logit_offset`` (a decision threshold chosen on a validation split) is subtracted from
    the logit first, so that 0.5 stays the decision point of the exported file."""
    size, fraction = loaded.image_size, loaded.crop_fraction

    def probability(images):
        logits = forward.eval_logits(loaded.model, images, image_size=size,
                                     normalization=loaded.normalization, crop_fraction=fraction)
        return tf.sigmoid(logits[:, 0] - logit_offset)

    return probability


def export_saved_model(loaded: predict.LoadedModel, output: str,
                       logit_offset: float = 0.0) -> str:
    """Writes the SavedModel; returns its directory."""
    probability = _probability_fn(loaded, logit_offset)
    side = loaded.cache_image_size

    def serve(image_bytes):
        images = tf.map_fn(lambda data: decode.decode_image(data, side), image_bytes,
                           fn_output_signature=tf.TensorSpec([side, side, 3], tf.uint8))
        return {"probability_male": probability(images)}

    archive = keras.export.ExportArchive()
    archive.track(loaded.model)
    archive.add_endpoint("serving_default", serve,
                         input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
    archive.write_out(output, verbose=False)
    return output


def float32_copy(model: keras.Model) -> keras.Model:
    """``model`` computing in float32 everywhere, with the same weights: TFLite has no
    bfloat16 kernels (a ``mixed_bfloat16`` or ``mixed_bfloat16_matmul`` run's layers would
    need TF Select ops). The variables of every policy are float32, so they copy exactly.
    The model itself when it is float32 already."""
    layers = [layer for layer in models.walk_layers(model)
              if getattr(layer, "dtype_policy", None) is not None]
    if all(layer.dtype_policy.name == "float32" for layer in layers):
        return model
    copy = keras.models.clone_model(model)
    for layer in models.walk_layers(copy):
        if getattr(layer, "dtype_policy", None) is not None:
            layer.dtype_policy = "float32"
    copy.set_weights(model.get_weights())
    return copy


def _representative_images(data_dir: str, side: int, count: int):
    dataset = input_pipeline.create_dataset(data_dir, batch_size=1,
                                            image_size=side, training=False, cache="none")
    for images, _ in dataset.take(count):
        yield [images]


def export_tflite(loaded: predict.LoadedModel, output: str, *, int8: bool = False,
                  data_dir: str = "", calibration_images: int = 200,
                  logit_offset: float = 0.0) -> str:
    """Writes a TFLite flatbuffer (float, or int8 calibrated on ``data_dir``'s records)."""
    if int8:
        if not data_dir:
            raise ExportError("--format=tflite_int8 needs --data_dir: a converted dataset "
                              "whose records calibrate the quantisation")
        try:
            input_pipeline.count_records(data_dir)
        except (FileNotFoundError, ValueError) as err:
            raise ExportError(f"--data_dir={data_dir}: {err}") from None
    side = loaded.cache_image_size
    loaded = dataclasses.replace(loaded, model=float32_copy(loaded.model))
    probability = _probability_fn(loaded, logit_offset)

    def serve(images):
        return {"probability_male": probability(images)}

    # Through a SavedModel: the converter then finds the model's variables by themselves
    # (from a concrete function it read garbage for Keras 3's variables).
    archive = keras.export.ExportArchive()
    archive.track(loaded.model)
    archive.add_endpoint("serving_default", serve, input_signature=[
        tf.TensorSpec([None, side, side, 3], tf.uint8, name="images")])
    with tempfile.TemporaryDirectory() as saved:
        archive.write_out(saved, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved)
        flatbuffer = _convert(converter, int8=int8, data_dir=data_dir, side=side,
                              calibration_images=calibration_images)
    write_bytes_atomic(output, flatbuffer)
    return output


def _convert(converter, *, int8: bool, data_dir: str, side: int,
             calibration_images: int) -> bytes:
    if int8:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: _representative_images(
            data_dir, side, calibration_images)
    return converter.convert()


def choose_logit_offset(loaded: predict.LoadedModel, data_dir: str, split: str) -> dict:
    """The decision threshold (``metrics.best_logit_offset``) of the model's centre-crop
    logits on ``split`` of ``data_dir``: a validation split, never the one reported.

    Raises:
        ExportError: the split is empty or the directory no conversion.
    """
    from tfgender.evaluation import evaluate, metrics  # (evaluate imports export's peers)

    try:
        data = evaluate.center_crop_pass(loaded, data_dir, split)
    except (FileNotFoundError, ValueError) as err:
        raise ExportError(f"--data_dir={data_dir} --bundle_threshold_split={split}: "
                          f"{err}") from None
    return metrics.best_logit_offset(data["labels"], data["logits"])


def bundle(config) -> str:
    """Makes the model the package ships from a run: TFLite float and int8, both measured on
    ``config.data_dir``'s ``config.bundle_split``; int8 is kept where it loses at most
    ``config.bundle_tolerance`` of accuracy (float otherwise), if within
    ``config.bundle_max_mb``. Writes ``tflite.BUNDLED_NAME`` ``.tflite`` and its card
    (``.json``: what was measured, by slice, and how the run was made) into ``config.output``.

    Returns:
        The path of the ``.tflite`` file written.

    Raises:
        ExportError: no --data_dir, or neither file fits the size limit.
    """
    from tfgender.config import EvaluateConfig
    from tfgender.evaluation import evaluate  # (evaluate imports export's peers)

    if not config.data_dir:
        raise ExportError("--format=bundle needs --data_dir: a converted dataset to calibrate "
                          "int8 on and to measure both files on")
    loaded = predict.load_model(workdir=config.workdir, checkpoint=config.checkpoint)
    os.makedirs(config.output, exist_ok=True)
    threshold = {"offset": config.logit_offset}
    if config.bundle_threshold_split == config.bundle_split:
        raise ExportError(f"--bundle_threshold_split={config.bundle_threshold_split} is the "
                          "split the card reports: choose the threshold on another (val)")
    if config.bundle_threshold_split:  # chosen there, measured on --bundle_split
        threshold = {**choose_logit_offset(loaded, config.data_dir,
                                           config.bundle_threshold_split),
                     "split": config.bundle_threshold_split}
    candidates = {}
    with tempfile.TemporaryDirectory() as scratch:
        for fmt in ("tflite", "tflite_int8"):
            path = export_tflite(loaded, os.path.join(scratch, fmt + ".tflite"),
                                 int8=fmt == "tflite_int8", data_dir=config.data_dir,
                                 calibration_images=config.calibration_images,
                                 logit_offset=threshold["offset"])
            try:
                metrics = evaluate.evaluate(EvaluateConfig(
                    data_dir=config.data_dir, model_path=path, split=config.bundle_split,
                    worst_faces=0))
            except evaluate.EvaluationError as err:
                raise ExportError(f"--data_dir={config.data_dir}: {err}") from None
            keep = ("accuracy", "auc", "loss", "num_examples", "slices", "fairness",
                    "seconds_per_step")
            candidates[fmt] = {"bytes": os.path.getsize(path),
                               "metrics": {k: metrics[k] for k in keep}}
            with open(path, "rb") as f:
                candidates[fmt]["flatbuffer"] = f.read()
    limit = config.bundle_max_mb * 1e6
    float_accuracy = candidates["tflite"]["metrics"]["accuracy"]
    int8 = candidates["tflite_int8"]
    if int8["bytes"] <= limit and float_accuracy - int8["metrics"]["accuracy"] <= \
            config.bundle_tolerance:
        chosen = "tflite_int8"
    elif candidates["tflite"]["bytes"] <= limit:
        chosen = "tflite"
    else:
        raise ExportError(f"neither TFLite file fits --bundle_max_mb={config.bundle_max_mb:g} "
                          f"(float {candidates['tflite']['bytes'] / 1e6:.1f} MB, int8 "
                          f"{int8['bytes'] / 1e6:.1f} MB within its tolerance)")
    summary = predict.read_summary(config.workdir)
    card = {
        "model": loaded.name, "image_size": loaded.image_size,
        "cache_image_size": loaded.cache_image_size, "crop_fraction": loaded.crop_fraction,
        "steps": loaded.step, "format": chosen, "source_run": os.path.abspath(config.workdir),
        "run_config": summary.get("config", {}), "run_precision": summary.get("precision"),
        "run_best": summary.get("best"), "data_dir": config.data_dir,
        "split": config.bundle_split, "cpu": devices.cpu_model(),
        "tolerance": config.bundle_tolerance, "logit_offset": threshold,
        "measured": {fmt: {k: v for k, v in c.items() if k != "flatbuffer"}
                     for fmt, c in candidates.items()},
    }
    path = os.path.join(config.output, tflite.BUNDLED_NAME + ".tflite")
    write_bytes_atomic(path, candidates[chosen]["flatbuffer"])
    write_json_atomic(os.path.join(config.output, tflite.BUNDLED_NAME + ".json"), card)
    return path


def export(config) -> str:
    """Exports a run's model as ``config.format`` to ``config.output``; returns the path.

    Raises:
        ExportError: unknown format, an output that exists, or missing calibration data.
        predict.ModelError: the run's model cannot be loaded.
    """
    if config.format not in FORMATS:
        raise ExportError(f"unknown --format={config.format}; known: {', '.join(FORMATS)}")
    if config.format == "bundle":  # remade in place: the folder exists
        return bundle(config)
    if os.path.exists(config.output):
        raise ExportError(f"--output={config.output} exists; remove it or choose another path")
    parent = os.path.dirname(os.path.abspath(config.output))
    os.makedirs(parent, exist_ok=True)
    loaded = predict.load_model(workdir=config.workdir, checkpoint=config.checkpoint)
    if config.format == "saved_model":
        return export_saved_model(loaded, config.output, config.logit_offset)
    return export_tflite(loaded, config.output, int8=config.format == "tflite_int8",
                         data_dir=config.data_dir,
                         calibration_images=config.calibration_images,
                         logit_offset=config.logit_offset)


__all__ = ["ExportError", "FORMATS", "bundle", "choose_logit_offset", "export",
           "export_saved_model", "export_tflite"]
