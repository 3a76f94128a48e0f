"""Side-by-side timings of single pipeline levers, behind the choices docs/log.md records.

Not a pytest module: each lever is one function compared with its alternatives in one process.

    .venv/bin/python benchmarks/levers.py resample   # augmentation resample variants
    .venv/bin/python benchmarks/levers.py augment_pipeline  # (5) as one or two XLA programs
    .venv/bin/python benchmarks/levers.py decode     # decode + resize of 256 px records
    .venv/bin/python benchmarks/levers.py train_step MODEL [BATCH]  # precision levers
    .venv/bin/python benchmarks/levers.py batch_size MODEL  # float32 step at batch 32/64/128
    .venv/bin/python benchmarks/levers.py batch_norm MODEL  # Keras' or the fused layer
    .venv/bin/python benchmarks/levers.py layer_precision MODEL  # bf16 only where it pays

``decode`` and ``augment_pipeline`` read the records ``benchmarks/conftest.py`` converts (run
the pipeline benchmark once first). Every figure is a median of 3 rounds, in images per second.
"""

from __future__ import annotations

import glob
import statistics
import sys
import time
from pathlib import Path
from unittest import mock

import numpy as np
import tensorflow as tf

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tfgender.data import decode  # noqa: E402
from tfgender.data import records as rec  # noqa: E402
from tfgender.experiments import epoch_study, legacy  # noqa: E402
from tfgender.input import augment  # noqa: E402
from tfgender.input import pipeline as input_pipeline  # noqa: E402

SIZE, BATCH, ROUNDS = 224, 64, 3


def _median_rate(run, images_per_call: int, calls: int) -> float:
    run()  # trace, compile, fill buffers
    rates = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for _ in range(calls):
            run()
        rates.append(images_per_call * calls / (time.perf_counter() - start))
    return statistics.median(rates)


def resample_levers() -> dict:
    """The study's augmentation (flip, 90 degree rotation, brightness) on one cached batch.

    "one program" compiles ``Augmentation`` whole; "two programs" is ``compiled()``, what the
    training step runs: the plan (source indices) and the render (gather) as separate XLA
    programs.
    """
    images = tf.constant(np.random.default_rng(0).integers(0, 256, (BATCH, SIZE, SIZE, 3),
                                                           dtype=np.uint8))
    variants = {
        "bilinear rotation, one program": dict(interpolation="bilinear"),
        "bilinear rotation, two programs": dict(interpolation="bilinear", two=True),
        "nearest rotation (auto), one program": dict(interpolation="auto"),
        "nearest rotation (auto), two programs": dict(interpolation="auto", two=True),
        "nearest rotation, no brightness, two programs": dict(brightness_range=None, two=True),
        "no rotation (integer crop + flip), two programs": dict(max_rotation_degrees=0.0,
                                                                two=True),
    }
    results = {}
    for name, options in variants.items():
        kwargs = dict(output_size=SIZE, max_rotation_degrees=90.0, brightness_range=(0.8, 1.2))
        kwargs.update(options)
        two = kwargs.pop("two", False)
        augmentation = augment.Augmentation(**kwargs)
        apply = augmentation.compiled() if two else tf.function(augmentation, jit_compile=True)
        step = tf.Variable(0, dtype=tf.int64)

        @tf.function
        def run_once(images, step, apply=apply):
            return apply(images, augment.make_step_seed(0, step))

        def run(run_once=run_once, step=step):
            step.assign_add(1)
            run_once(images, step)[0, 0, 0, 0].numpy()

        results[name] = _median_rate(run, BATCH, 20)
    return results


def _bench_records() -> list[str]:
    """The 256 px record files of the input pipeline benchmark's sample."""
    pattern = str(REPO / ".bench_data" / "adience-816px-*" / "tfrecords-256px" / "*.tfrecord")
    files = sorted(glob.glob(pattern))
    if not files:
        raise SystemExit(f"no records match {pattern}: run benchmarks/test_input_pipeline.py once")
    return files


def augment_pipeline_levers() -> dict:
    """The input benchmark's (5): cached batches and the study's augmentation, the latter
    compiled as one XLA program or as ``Augmentation.compiled()``'s two (plan, render)."""
    records_dir = str(Path(_bench_records()[0]).parent)
    augmentation = augment.Augmentation(output_size=SIZE,
                                        max_rotation_degrees=legacy.STUDY_ROTATION_RANGE,
                                        brightness_range=legacy.STUDY_BRIGHTNESS_RANGE)
    variants = {"one XLA program": tf.function(augmentation, jit_compile=True),
                "two XLA programs (compiled())": augmentation.compiled()}
    steps = 8
    results = {}
    for name, apply in variants.items():
        iterator = iter(input_pipeline.create_dataset(records_dir, batch_size=BATCH,
                                                      image_size=SIZE, training=True,
                                                      cache="memory"))

        @tf.function
        def run_steps(iterator, first, apply=apply):
            # As the benchmark's (5): the step counter comes in as a tensor, no variable.
            checksum = tf.constant(0.0)
            for i in tf.range(steps):
                seed = augment.make_step_seed(0, first + tf.cast(i, tf.int64))
                checksum += apply(next(iterator)[0], seed)[-1, -1, -1, -1]
            return checksum

        calls = [0]

        def run(run_steps=run_steps, iterator=iterator, calls=calls):
            calls[0] += 1
            run_steps(iterator, tf.constant(calls[0] * steps, tf.int64)).numpy()

        results[name] = _median_rate(run, steps * BATCH, 5)
    return results


def decode_levers() -> dict:
    """Records converted at 256 px (the benchmark sample) decoded and resized to 224."""
    files = _bench_records()

    def encoded(serialized):
        return rec.parse_example(serialized)[rec.ENCODED]

    def decode_jpeg(serialized):
        return tf.io.decode_jpeg(encoded(serialized), channels=3)

    variants = {
        "decode + centre crop (no resize)":
            lambda s: tf.image.resize_with_crop_or_pad(decode_jpeg(s), SIZE, SIZE),
        "decode + bilinear resize":
            lambda s: tf.cast(tf.image.resize(decode_jpeg(s), [SIZE, SIZE]), tf.uint8),
        "decode + antialiased resize":
            lambda s: tf.cast(tf.image.resize(decode_jpeg(s), [SIZE, SIZE], antialias=True),
                              tf.uint8),
        "decode.decode_and_resize": lambda s: decode.decode_and_resize(
            encoded(s), SIZE),
    }
    results = {}
    for name, fn in variants.items():
        dataset = (tf.data.TFRecordDataset(files).repeat()
                   .map(fn, num_parallel_calls=tf.data.AUTOTUNE, deterministic=False)
                   .batch(BATCH, drop_remainder=True).prefetch(tf.data.AUTOTUNE))
        iterator = iter(dataset)
        results[name] = _median_rate(lambda iterator=iterator: next(iterator), BATCH, 8)
    return results


def _step_rate(model_name: str, policy: str, batch: int) -> float:
    runner = epoch_study.create_step_runner(model_name, image_size=SIZE, batch_size=batch,
                                            precision_name=policy, jit_compile="false")
    iterator = runner.iterator(epoch_study.in_memory_dataset(batch, SIZE))
    return _median_rate(lambda: runner.run(iterator, 3), 3 * batch, 1)


def batch_size_levers(model_name: str) -> dict:
    """One model's float32 training step at 224 and three batch sizes, in-memory input."""
    return {f"float32, batch {batch}": _step_rate(model_name, "float32", batch)
            for batch in (32, 64, 128)}


def batch_norm_levers(model_name: str) -> dict:
    """One model's training step (``auto`` precision) with Keras' BatchNormalization, as
    ``keras.applications`` builds it, and with ``FusedBatchNormalization`` (the default)."""
    with mock.patch("tfgender.models.head.fuse_batch_norm", lambda model: model):
        keras_layer = _step_rate(model_name, "auto", BATCH)
    return {"keras.layers.BatchNormalization": keras_layer,
            "FusedBatchNormalization (default)": _step_rate(model_name, "auto", BATCH)}


def train_step_levers(model_name: str, batch: str = str(BATCH)) -> dict:
    """One model's training step at 224, in-memory input, across precision levers.

    Each lever goes through ``devices.apply`` (inside ``create_step_runner``), which also
    switches the process-wide oneDNN rewrite on or off.
    """
    return {name: _step_rate(model_name, name, int(batch))
            for name in ("float32", "mixed_bfloat16", "onednn_bfloat16")}


def _with_layer_policies(build, rule):
    """``models.build_model`` followed by ``rule(layer) -> policy name or None`` per layer."""
    import keras

    from tfgender import models

    def built(*args, **kwargs):
        model = build(*args, **kwargs)
        for layer in models.walk_layers(model):
            policy = rule(layer, keras)
            if policy:
                layer.dtype_policy = policy
        return model

    return built


def layer_precision_levers(model_name: str, batch: str = str(BATCH)) -> dict:
    """One model's step at 224 with bfloat16 everywhere, nowhere, or only in the matmul-shaped
    layers (1x1 convolutions and the head's hidden Dense layers) with the depthwise
    convolutions, batch norms and the logits in float32; and the reverse (mixed everywhere but
    the depthwise convolutions). Keras casts at each boundary between the two."""
    from tfgender import models

    def pointwise(layer, keras):
        if isinstance(layer, keras.layers.Conv2D) and not isinstance(
                layer, keras.layers.DepthwiseConv2D) and tuple(layer.kernel_size) == (1, 1):
            return "mixed_bfloat16"
        if isinstance(layer, keras.layers.Dense) and layer.units > 1:
            return "mixed_bfloat16"
        return None

    def depthwise_float32(layer, keras):
        return "float32" if isinstance(layer, keras.layers.DepthwiseConv2D) else None

    results = {name: _step_rate(model_name, name, int(batch))
               for name in ("float32", "mixed_bfloat16")}
    build = models.build_model
    with mock.patch.object(epoch_study.models, "build_model",
                           _with_layer_policies(build, pointwise)):
        results["float32, bf16 1x1 convs and hidden Dense"] = _step_rate(model_name, "float32",
                                                                         int(batch))
    with mock.patch.object(epoch_study.models, "build_model",
                           _with_layer_policies(build, depthwise_float32)):
        results["mixed_bfloat16, float32 depthwise"] = _step_rate(model_name, "mixed_bfloat16",
                                                                  int(batch))
    return results


def main(argv: list[str]) -> int:
    levers = {"resample": resample_levers, "augment_pipeline": augment_pipeline_levers,
              "decode": decode_levers, "train_step": train_step_levers,
              "batch_size": batch_size_levers, "batch_norm": batch_norm_levers,
              "layer_precision": layer_precision_levers}
    if len(argv) < 2 or argv[1] not in levers:
        print(__doc__, file=sys.stderr)
        return 2
    results = levers[argv[1]](*argv[2:])
    for name, rate in results.items():
        print(f"{argv[1]:<16} {name:<40} {rate:10.1f} images/s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
