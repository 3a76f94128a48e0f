"""TensorBoard output of a run: train/ and eval/ scalars, HParams, images."""

from __future__ import annotations

import dataclasses
import os

import tensorflow as tf
from tensorboard.plugins.hparams import api as hp

from tfgender.input import augment

HPARAM_METRICS = ("eval/accuracy", "eval/auc", "eval/loss", "train/images_per_second")


def create_writers(out_dir: str, enabled: bool = True) -> dict:
    """Summary writers for ``out_dir/train``, ``out_dir/eval`` and the run root (HParams)."""
    if not enabled:
        noop = tf.summary.create_noop_writer()
        return {"train": noop, "eval": noop, "root": noop}
    return {name: tf.summary.create_file_writer(os.path.join(out_dir, sub))
            for name, sub in (("train", "train"), ("eval", "eval"), ("root", "."))}


def _hparam_value(value):
    if isinstance(value, bool | int | float | str):
        return value
    return ",".join(str(v) for v in value) if isinstance(value, tuple | list) else str(value)


# The hyperparameters the HParams dashboard shows for a run, in this order after a sweep's
# swept ones; the whole configuration is in summary.json.
KEY_HPARAMS = ("model", "image_size", "batch_size", "learning_rate", "schedule", "optimizer",
               "precision", "epochs")


def hparams_of(config, setup, swept=()) -> dict:
    """The run's HParams: the swept ones first, then ``KEY_HPARAMS`` as resolved on this
    machine (``precision`` and ``image_size`` as the run used them)."""
    values = {k: _hparam_value(v) for k, v in dataclasses.asdict(config).items()}
    values.update(precision=setup.policy, image_size=setup.image_size)
    names = list(dict.fromkeys([*swept, *KEY_HPARAMS]))
    return {name: values[name] for name in names}


def write_hparams(writers: dict, config, setup, trial_id: str, swept=()) -> None:
    """Declares the experiment (its hyperparameters and metrics) and records the run's values
    so runs compare in TensorBoard's HParams dashboard.

    Args:
        swept: names of the hyperparameters a sweep varies: shown first (and so checked).
    """
    values = hparams_of(config, setup, swept)
    with writers["root"].as_default():
        hp.hparams_config(hparams=[hp.HParam(k) for k in values],
                          metrics=[hp.Metric(m) for m in HPARAM_METRICS])
        hp.hparams(values, trial_id=trial_id)


def write_final_hparams_metrics(writers: dict, summary: dict) -> None:
    """Writes the final metrics under the HParams metric tags at the root of the run."""
    final = summary.get("final") or {}
    with writers["root"].as_default():
        for name in HPARAM_METRICS:
            group, key = name.split("/")
            value = (final.get(group) or {}).get(key) if group == "eval" else (
                summary["images_per_second"][-1] if summary["images_per_second"] else None)
            if value is not None:
                tf.summary.scalar(name, value, step=summary["steps"])
        writers["root"].flush()


def write_augmented_images(writer, dataset, config, setup) -> None:
    """Writes a few augmented training inputs, as the model's step sees them (before norm)."""
    images, _ = next(iter(dataset))
    if hasattr(images, "values"):  # a PerReplica value: take the first replica's batch
        images = images.values[0]
    images = images[: config.summary_images]
    out = augment.make_augmentation(config, setup)(images, augment.make_step_seed(config.seed, 0))
    with writer.as_default():
        tf.summary.image("train/augmented_inputs", out / 255.0, step=0,
                         max_outputs=config.summary_images)


def write_epoch(writers: dict, step: int, train: dict, evaluation: dict, *, lr: float,
                images_per_second: float, step_time: float,
                train_seconds: float | None = None) -> None:
    """Writes one epoch's ``train/...`` and ``eval/...`` scalars.

    With ``train_seconds`` (training time so far, across resumes, evaluation excluded) the
    validation accuracy is also written against it, ``eval/accuracy_by_training_second``
    (its step is the second): time to accuracy, comparable across recipes.
    """
    with writers["train"].as_default():
        for key, value in train.items():
            tf.summary.scalar(f"train/{key}", value, step=step)
        tf.summary.scalar("train/learning_rate", lr, step=step)
        tf.summary.scalar("train/images_per_second", images_per_second, step=step)
        tf.summary.scalar("train/step_time_seconds", step_time, step=step)
    with writers["eval"].as_default():
        for key, value in evaluation.items():
            tf.summary.scalar(f"eval/{key}", value, step=step)
        if train_seconds is not None and "accuracy" in evaluation:
            tf.summary.scalar("eval/accuracy_by_training_second", evaluation["accuracy"],
                              step=int(round(train_seconds)))
    for writer in writers.values():
        writer.flush()
