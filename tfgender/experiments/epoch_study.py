"""The epoch-time study: steady-state training throughput per device, extrapolated to Adience.

The original study reported the runtime of one training epoch on Adience (12,194 aligned
faces, 80% of them for training) on a 2-core laptop CPU and on a K80 GPU. This module measures
tfgender's real training step (``train_steps.make_train_step``: augmentation, forward, loss,
update) after warm-up, turns images per second into a runtime per epoch at that scale, and sets
the achieved training FLOP/s against the device's measured matmul peak.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import math
import os
import platform
import time

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from tfgender import devices, models
from tfgender.config import TrainConfig
from tfgender.input import pipeline as input_pipeline
from tfgender.training import precision
from tfgender.training import state as state_lib
from tfgender.training.loop import Setup
from tfgender.training.steps import make_train_step

ADIENCE_IMAGES = 12_194
TRAIN_FRACTION = 0.8
# The study's published rows. The model behind them is MobileNetV2 as far as we know.
PUBLISHED = (
    {"device_kind": "cpu", "device": "2-core laptop CPU", "epoch_seconds": 26 * 60 + 47},
    {"device_kind": "gpu", "device": "NVIDIA K80 GPU", "epoch_seconds": 7 * 60 + 8},
)
PUBLISHED_MODEL = "as published (MobileNetV2 as far as we know)"
# Forward + backward costs about three forward passes (two matmuls per forward one).
TRAINING_FLOPS_PER_FORWARD = 3
MARKDOWN_FILE = "epoch_time_study.md"
JSON_FILE = "epoch_time_study.json"
_PEAK_DTYPE = {"float32": "float32", "mixed_bfloat16": "bfloat16", "onednn_bfloat16": "bfloat16",
               "mixed_bfloat16_matmul": "bfloat16", "mixed_float16": "float16"}


def adience_train_images(total: int | None = None, fraction: float | None = None) -> int:
    """Training images of one Adience epoch: ``floor(total * fraction)`` (9,755 by default)."""
    total = ADIENCE_IMAGES if total is None else total
    fraction = TRAIN_FRACTION if fraction is None else fraction
    return int(math.floor(total * fraction + 1e-9))


def extrapolate_epoch_seconds(images_per_second: float, num_images: int | None = None) -> float:
    """Runtime of one epoch that shows every training image once, at a steady-state rate.

    Args:
        images_per_second: measured training throughput (> 0).
        num_images: training images per epoch; default ``adience_train_images()``.

    Returns:
        ``num_images / images_per_second`` in seconds.

    Raises:
        ValueError: a throughput that is not positive.
    """
    if not images_per_second > 0:
        raise ValueError(f"images_per_second must be positive, got {images_per_second}")
    return (adience_train_images() if num_images is None else num_images) / images_per_second


def format_duration(seconds: float) -> str:
    """Formats seconds as the study did: ``26m47s``, ``7m8s``, ``1h2m3s`` or ``41.3s``."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    total = int(round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes}m{secs}s" if hours else f"{minutes}m{secs}s"


def training_flops_fraction(forward_flops_per_image: float | None, images_per_second: float,
                            peak_gflops: float | None) -> tuple[float | None, float | None]:
    """Achieved training GFLOP/s (3 x forward FLOPs x images/s) and its fraction of the peak."""
    if not forward_flops_per_image or not peak_gflops:
        return None, None
    achieved = TRAINING_FLOPS_PER_FORWARD * forward_flops_per_image * images_per_second / 1e9
    return achieved, achieved / peak_gflops


@dataclasses.dataclass
class StepRunner:
    """One architecture's real training step, ready to time (``run`` returns seconds)."""

    model_name: str
    image_size: int
    batch_size: int
    policy: str
    jit_compile: bool
    strategy: tf.distribute.Strategy
    model: keras.Model
    train_steps: object
    state: dict
    precision_why: str = ""  # why the policy was chosen (``precision.explain_precision``)

    def iterator(self, dataset: tf.data.Dataset):
        """A distributed iterator over ``dataset`` (batches of uint8 images, int32 labels)."""
        return iter(self.strategy.experimental_distribute_dataset(dataset))

    def run(self, iterator, steps: int) -> float:
        """Runs ``steps`` training steps in one call and returns the wall time in seconds."""
        return self._timed(self.train_steps, iterator, tf.constant(steps, tf.int64))

    def run_single(self, iterator) -> float:
        """One step through the loop-free ``train_steps.single`` (the profiler attributes its
        ops to the step's marker); returns the wall time in seconds."""
        return self._timed(self.train_steps.single, iterator)

    def _timed(self, step_fn, *args) -> float:
        start = time.perf_counter()
        step_fn(*args)
        int(self.state["step"].numpy())  # reading the counter waits for the last update
        return time.perf_counter() - start


def _device_kind(device: str | None) -> str | None:
    if not device:
        return None
    return "gpu" if "GPU" in device.upper() else "cpu"


def create_step_runner(model_name: str, *, image_size: int = 0, batch_size: int = 64,
                       precision_name: str = "auto", jit_compile: str = "auto",
                       device: str | None = None, seed: int = 0,
                       model_options: dict | None = None) -> StepRunner:
    """Builds a model, its optimizer and tfgender's training step as ``bin/train`` would.

    The model and optimizer follow ``TrainConfig``'s defaults (head, dropout, Adam,
    augmentation); the global Keras policy is restored afterwards.

    Args:
        model_name: a key of ``models.MODELS``.
        image_size: input side; 0: the architecture's default.
        batch_size: images per step.
        precision_name: ``auto`` or a policy of ``devices.POLICIES``.
        jit_compile: ``auto``, ``true`` or ``false``.
        device: a logical device name (``/device:CPU:0``); None: the default placement.
        seed: the run seed (initialisation, augmentation).
        model_options: ``models.build_model`` options over the defaults (``alpha``,
            ``conv_norm``, ``head_units``, ``dropout``; ``models.changed_options`` gives a run's).

    Returns:
        A ``StepRunner``.
    """
    info = models.MODELS[model_name]
    size = image_size or info.default_image_size
    kind = _device_kind(device)
    # As bin/train resolves it: ``auto`` times the candidates for this size and batch.
    policy, why = precision.explain_precision(precision_name, model_name, kind,
                                              image_size=size, batch_size=batch_size,
                                              model_options=model_options)
    jit = precision.resolve_jit(jit_compile, kind)
    options = models.config_fields(model_options or {})
    config = TrainConfig(data_dir="", model=model_name, image_size=size, batch_size=batch_size,
                         seed=seed, precision=policy, jit_compile=str(jit).lower(),
                         progress=False, **options)
    setup = Setup(image_size=size, cache_image_size=size, policy=policy, jit_compile=jit,
                  normalization=info.normalization, train_records=batch_size, eval_records=0,
                  steps_per_epoch=1, data_steps_per_epoch=1)
    strategy = (tf.distribute.OneDeviceStrategy(device) if device
                else tf.distribute.get_strategy())
    previous = keras.mixed_precision.global_policy()
    input_pipeline.set_run_seed(seed)
    # Left in force: the oneDNN rewrite must still be on when the runner's step first runs.
    devices.apply(policy)
    try:
        # bin/train's builder: the same model, optimizer, schedule and counters.
        model, optimizer, _, state = state_lib.build(config, setup, strategy)
        train_steps, _ = make_train_step(model, optimizer, strategy, config, setup, state)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    return StepRunner(model_name, size, batch_size, policy, jit, strategy, model, train_steps,
                      state, precision_why=why)


def in_memory_dataset(batch_size: int, image_size: int, seed: int = 0) -> tf.data.Dataset:
    """One random uint8 batch repeated forever: a training input that costs nothing."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (batch_size, image_size, image_size, 3), dtype=np.uint8)
    labels = rng.integers(0, 2, (batch_size,), dtype=np.int32)
    return tf.data.Dataset.from_tensors((images, labels)).repeat()


def forward_flops_per_image(model: keras.Model, image_size: int) -> float | None:
    """Forward-pass FLOPs of one image, from the TF graph profiler (None if it cannot count)."""
    forward = tf.function(lambda x: model(x, training=False))
    graph = forward.get_concrete_function(
        tf.TensorSpec([1, image_size, image_size, 3], tf.float32)).graph
    options = (tf.compat.v1.profiler.ProfileOptionBuilder(
        tf.compat.v1.profiler.ProfileOptionBuilder.float_operation())
        .with_empty_output().build())
    try:
        profile = tf.compat.v1.profiler.profile(graph=graph, cmd="op", options=options)
    except Exception as err:  # (a missing statistic must not end the study)
        logging.warning("FLOP count failed for %s: %s", model.name, err)
        return None
    return float(profile.total_float_ops) or None


def measure_matmul_peak(dtype: str, *, size: int = 4096, repeats: int = 5,
                        device: str | None = None) -> float:
    """The device's matmul throughput in GFLOP/s: the best of ``repeats`` square products.

    Args:
        dtype: ``float32``, ``bfloat16`` or ``float16``.
        size: side of the square matrices (2 x size^3 FLOPs per product).
        repeats: timed products after one warm-up.
        device: a logical device name; None: the default placement.
    """
    with tf.device(device):
        a = tf.cast(tf.random.stateless_uniform([size, size], [1, 2]), dtype)
        b = tf.cast(tf.random.stateless_uniform([size, size], [3, 4]), dtype)

        @tf.function
        def product(x, y):
            # A scalar result keeps the host copy out of the timing; the sum costs size^2.
            return tf.reduce_sum(tf.cast(tf.matmul(x, y), tf.float32))

        product(a, b).numpy()
        best = math.inf
        for _ in range(repeats):
            start = time.perf_counter()
            product(a, b).numpy()
            best = min(best, time.perf_counter() - start)
    return 2.0 * size**3 / best / 1e9


def list_devices(requested=()) -> list[tf.config.LogicalDevice]:
    """The CPU and GPU logical devices (filtered to names containing a requested string)."""
    found = [d for d in tf.config.list_logical_devices() if d.device_type in ("CPU", "GPU")]
    if requested:
        found = [d for d in found if any(r.upper() in d.name.upper() for r in requested)]
    return found


def _device_description(device: tf.config.LogicalDevice) -> str:
    if device.device_type == "GPU":
        index = int(device.name.rsplit(":", 1)[1])
        details = tf.config.experimental.get_device_details(
            tf.config.list_physical_devices("GPU")[index])
        return details.get("device_name", device.name)
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        name = names[0] if names else name
    except OSError:
        pass
    return f"{name} ({os.cpu_count()} cores)"


def training_dataset(config, batch_size: int, image_size: int) -> tf.data.Dataset:
    """``config.data_dir``'s TFRecords (cached in memory), else ``in_memory_dataset``."""
    if config.data_dir:
        return input_pipeline.create_dataset(config.data_dir, batch_size=batch_size,
                                             image_size=image_size, training=True,
                                             cache="memory")
    return in_memory_dataset(batch_size, image_size)


def measure_model(config, model_name: str, device: tf.config.LogicalDevice) -> dict:
    """Times one architecture's steady-state training step on one device.

    Args:
        config: a ``config.EpochStudyConfig``.
        model_name: the architecture.
        device: the logical device.

    Returns:
        A result row (device, model, precision, XLA, images/s, extrapolated epoch, ...).
    """
    runner = create_step_runner(model_name, image_size=config.image_size,
                                batch_size=config.batch_size, precision_name=config.precision,
                                jit_compile=config.jit_compile, device=device.name)
    iterator = runner.iterator(training_dataset(config, runner.batch_size, runner.image_size))
    warmup = runner.run(iterator, config.warmup_steps)  # traces (and compiles) the step
    seconds = runner.run(iterator, config.steps)
    rate = config.steps * runner.batch_size / seconds
    epoch = extrapolate_epoch_seconds(rate)
    row = {"device_kind": device.device_type.lower(), "device_name": device.name,
           "device": _device_description(device), "model": model_name,
           "image_size": runner.image_size, "batch_size": runner.batch_size,
           "precision": runner.policy, "precision_requested": config.precision,
           "precision_why": runner.precision_why, "jit_compile": runner.jit_compile,
           "input": "tfrecords" if config.data_dir else "in_memory",
           "warmup_steps": config.warmup_steps, "warmup_seconds": warmup,
           "steps": config.steps, "seconds_per_step": seconds / config.steps,
           "images_per_second": rate, "epoch_images": adience_train_images(),
           "epoch_seconds": epoch, "epoch": format_duration(epoch),
           "forward_flops_per_image": forward_flops_per_image(runner.model, runner.image_size)}
    if config.full_epoch:
        steps = adience_train_images() // runner.batch_size  # full batches, as training does
        measured = runner.run(iterator, steps)
        predicted = extrapolate_epoch_seconds(rate, steps * runner.batch_size)
        row["full_epoch"] = {"steps": steps, "images": steps * runner.batch_size,
                             "seconds": measured, "predicted_seconds": predicted,
                             "relative_error": (predicted - measured) / measured}
    del runner, iterator
    gc.collect()
    return row


def run_study(config) -> dict:
    """Measures every requested architecture on every visible device and writes the table.

    Args:
        config: a ``config.EpochStudyConfig``.

    Returns:
        The report (also ``<output_dir>/epoch_time_study.json`` and ``.md``).

    Raises:
        ValueError: an unknown model, no matching device, or non-positive steps.
    """
    unknown = [m for m in config.models if m not in models.MODELS]
    if unknown or not config.models:
        raise ValueError(f"unknown models {unknown}; known: {', '.join(sorted(models.MODELS))}")
    if config.steps < 1 or config.warmup_steps < 1 or config.batch_size < 1:
        raise ValueError("--steps, --warmup_steps and --batch_size must be positive")
    targets = list_devices(config.devices)
    if not targets:
        raise ValueError(f"no CPU/GPU device matches {list(config.devices)}")
    peaks, rows = {}, []
    for device in targets:
        dtypes = ("float32", "bfloat16") + (("float16",) if device.device_type == "GPU" else ())
        peaks[device.name] = {dtype: measure_matmul_peak(dtype, size=config.matmul_size,
                                                         device=device.name)
                              for dtype in dtypes}
        logging.info("%s matmul peak (GFLOP/s): %s", device.name, peaks[device.name])
        for model_name in config.models:
            row = measure_model(config, model_name, device)
            peak = peaks[device.name].get(_PEAK_DTYPE[row["precision"]])
            row["peak_gflops"] = peak
            row["training_gflops"], row["fraction_of_peak"] = training_flops_fraction(
                row["forward_flops_per_image"], row["images_per_second"], peak)
            # Against float32's peak too: the issue's yardstick, whatever the precision.
            row["fraction_of_float32_peak"] = training_flops_fraction(
                row["forward_flops_per_image"], row["images_per_second"],
                peaks[device.name].get("float32"))[1]
            published = [p for p in PUBLISHED if p["device_kind"] == row["device_kind"]]
            row["speedup_vs_published"] = (published[0]["epoch_seconds"] / row["epoch_seconds"]
                                           if published else None)
            logging.info("%s %s: %.1f img/s, epoch %s", device.name, model_name,
                         row["images_per_second"], row["epoch"])
            rows.append(row)
    report = {
        "adience": {"images": ADIENCE_IMAGES, "train_fraction": TRAIN_FRACTION,
                    "train_images": adience_train_images()},
        "published": [dict(p, model=PUBLISHED_MODEL, epoch=format_duration(p["epoch_seconds"]))
                      for p in PUBLISHED],
        "measured": rows, "matmul_peak_gflops": peaks,
        "environment": {"tensorflow": tf.__version__, "keras": keras.__version__,
                        "cpu_count": os.cpu_count(), "cpu_bf16": devices.cpu_has_bf16()},
        "config": dataclasses.asdict(config),
    }
    if config.output_dir:
        os.makedirs(config.output_dir, exist_ok=True)
        with open(os.path.join(config.output_dir, JSON_FILE), "w") as f:
            json.dump(report, f, indent=2, sort_keys=True)
        with open(os.path.join(config.output_dir, MARKDOWN_FILE), "w") as f:
            f.write(format_markdown(report))
    return report


def _num(value, pattern: str) -> str:
    return "n/a" if value is None else pattern.format(value)


def format_markdown(report: dict) -> str:
    """Renders a study report as a markdown table with the published rows beside ours."""
    images = report["adience"]["train_images"]
    lines = [
        "# Epoch-time study",
        "",
        f"Runtime of one training epoch at the Adience scale: {images:,} training images "
        f"({100 * report['adience']['train_fraction']:g}% of {report['adience']['images']:,}), "
        "extrapolated from the steady-state "
        "throughput of tfgender's training step (augmentation, forward, loss, update) after "
        "warm-up. Published rows are the study's, on its hardware.",
        "",
        "| Source | Device | Model | Image | Batch | Precision | XLA | Images/s "
        "| Time per epoch | vs study | Training GFLOP/s | % of matmul peak (of float32's) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for p in report["published"]:
        lines.append(f"| study | {p['device']} | {p['model']} | | | | | | {p['epoch']} "
                     "| | | |")
    for r in report["measured"]:
        percent = None if r["fraction_of_peak"] is None else 100 * r["fraction_of_peak"]
        of_float32 = r.get("fraction_of_float32_peak")
        if percent is not None and of_float32 is not None and _PEAK_DTYPE[r["precision"]] != \
                "float32":
            percent_text = f"{percent:.1f}% ({100 * of_float32:.1f}%)"
        else:
            percent_text = _num(percent, "{:.1f}%")
        lines.append(
            f"| tfgender ({r['input']}) | {r['device']} | {r['model']} | {r['image_size']} "
            f"| {r['batch_size']} | {r['precision']} | {'on' if r['jit_compile'] else 'off'} "
            f"| {r['images_per_second']:.1f} | {r['epoch']} "
            f"| {_num(r['speedup_vs_published'], '{:.1f}x')} "
            f"| {_num(r['training_gflops'], '{:.1f}')} | {percent_text} |")
    lines += ["", "Matmul peak (GFLOP/s, best square tf.matmul in a tf.function):", ""]
    for device, peaks in report["matmul_peak_gflops"].items():
        listing = ", ".join(f"{dtype} {value:.1f}" for dtype, value in peaks.items())
        lines.append(f"- {device}: {listing}")
    chosen = [r for r in report["measured"] if r.get("precision_requested") == "auto"]
    if chosen:
        lines += ["", "What `--precision=auto` chose:", ""]
        lines += [f"- {r['device_name']} {r['model']} at {r['image_size']} px, batch "
                  f"{r['batch_size']}: {r['precision']} ({r['precision_why']})" for r in chosen]
    checks = [r for r in report["measured"] if "full_epoch" in r]
    if checks:
        lines += ["", "Extrapolation check (one real epoch of full batches):", ""]
        for r in checks:
            e = r["full_epoch"]
            lines.append(f"- {r['device_name']} {r['model']}: {e['images']} images in "
                         f"{format_duration(e['seconds'])}, predicted "
                         f"{format_duration(e['predicted_seconds'])} "
                         f"({100 * e['relative_error']:+.1f}%)")
    lines += ["", "Training FLOPs are 3x the forward FLOPs counted by TensorFlow's graph "
              "profiler; the percentage compares them with the matmul peak of the policy's "
              "compute dtype (in brackets, with float32's where that differs). \"vs study\" "
              "divides the study's time on the same kind of device "
              "(different hardware) by ours.", ""]
    return "\n".join(lines)
