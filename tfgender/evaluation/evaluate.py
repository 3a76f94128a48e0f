"""Evaluation of a trained run: metrics, slices, 10-crop oversampling, timing and summaries."""

from __future__ import annotations

import json
import os
import time

import numpy as np
import tensorflow as tf
from absl import logging
from tensorboard.plugins.pr_curve import summary as pr_summary

from tfgender import devices
from tfgender.data import records, utkface
from tfgender.evaluation import figures, predict
from tfgender.evaluation.metrics import best_logit_offset, binary_metrics
from tfgender.files import write_json_atomic
from tfgender.input import pipeline as input_pipeline

# The eight Adience age groups (Levi & Hassner 2015).
ADIENCE_AGE_GROUPS = ((0, 2), (4, 6), (8, 12), (15, 20), (25, 32), (38, 43), (48, 53), (60, 100))
UTKFACE_AGE_BANDS = ((0, 12), (13, 19), (20, 39), (40, 59), (60, None))
# Their names, in age order: 0-12, 13-19, 20-39, 40-59, 60+.
UTKFACE_BAND_NAMES = tuple(f"{low}+" if high is None else f"{low}-{high}"
                           for low, high in UTKFACE_AGE_BANDS)
UNKNOWN = "unknown"

class EvaluationError(ValueError):
    """The dataset selection cannot be evaluated (no manifest, an empty split); says why."""


def _numbers(text: str) -> list[float]:
    cleaned = "".join(c if c.isdigit() or c == "." else " " for c in text)
    return [float(n) for n in cleaned.split() if n.strip(".")]


def adience_age_group(age: str) -> str:
    """Buckets an Adience age string (``"(25, 32)"``, ``"35"``, ``"None"``) into its group.

    Odd ranges (``"(38, 42)"``, ``"(8, 23)"``) and bare ages go to the group nearest their
    midpoint (distance to the range, then to its centre; a full tie goes to the younger).

    Returns:
        ``"25-32"`` style group names, or ``"unknown"``.
    """
    values = _numbers(age)
    if not values:
        return UNKNOWN
    mid = sum(values[:2]) / len(values[:2])
    low, high = min(ADIENCE_AGE_GROUPS, key=lambda g: (max(g[0] - mid, 0, mid - g[1]),
                                                      abs((g[0] + g[1]) / 2 - mid)))
    return f"{low}-{high}"


def utkface_band(age: int) -> str:
    """The UTKFace age band of an age in years: 0-12, 13-19, 20-39, 40-59 or 60+."""
    for (_, high), name in zip(UTKFACE_AGE_BANDS, UTKFACE_BAND_NAMES, strict=True):
        if high is None or age <= high:
            return name
    return UNKNOWN


def slice_keys(source: str, labels, source_ids, ages, folds,
               races=None, extras=None) -> dict[str, list[str]]:
    """Each example's value in every slice: gender (true label), fold, and per source age/race.

    Args:
        source: the manifest's source (``adience``, ``utkface``, ``fairface``, ...).
        labels, source_ids, ages, folds: per-example values as read from the records.
        races: per-example race strings from the records (FairFace, tables), or None.
        extras: per-example JSON texts of a table's other slice columns, or None.

    Returns:
        ``{slice name: [value per example]}``; FairFace adds ``age`` (its bands), ``race``
        and ``race_gender`` (``"Black female"``).
    """
    genders = ["male" if int(label) else "female" for label in labels]
    keys = {"gender": genders}
    if any(int(f) >= 0 for f in folds):
        keys["fold"] = [str(int(f)) if int(f) >= 0 else UNKNOWN for f in folds]
    if source == "adience":
        keys["age"] = [adience_age_group(a) for a in ages]
    elif source == "fairface":
        races = [r or UNKNOWN for r in (races if races is not None else [""] * len(genders))]
        keys["age"] = [a or UNKNOWN for a in ages]
        keys["race"] = races
        keys["race_gender"] = [f"{r} {g}" for r, g in zip(races, genders, strict=True)]
    elif source == "utkface":
        race, band = [], []
        for source_id in source_ids:
            try:
                parsed = utkface.parse_name(os.path.basename(source_id))
                race.append(utkface.RACES[parsed["race"]])
                band.append(utkface_band(int(parsed["age"])))
            except ValueError:
                race.append(UNKNOWN)
                band.append(UNKNOWN)
        keys["race"], keys["age"] = race, band
    elif source == "table":  # what --slice_columns kept
        if any(ages):
            keys["age"] = [a or UNKNOWN for a in ages]
        if races is not None and any(races):
            keys["race"] = [r or UNKNOWN for r in races]
            keys["race_gender"] = [f"{r} {g}" for r, g in zip(keys["race"], genders, strict=True)]
    if extras is not None and any(extras):
        parsed = [json.loads(e) if e else {} for e in extras]
        for name in sorted({k for p in parsed for k in p} - set(keys)):  # gender stays the label
            keys[name] = [p.get(name) or UNKNOWN for p in parsed]
    return keys


def fairness_summary(slices: dict, min_count: int = 20) -> dict:
    """The worst slice and the largest accuracy gap between race groups.

    Args:
        slices: ``slice_accuracy``'s result.
        min_count: slices with fewer examples are left out of the worst slice (too noisy).

    Returns:
        ``{"worst_slice": {"slice", "value", "accuracy", "count"} | None,
        "race_gap": {"best", "worst", "gap"} | None}``.
    """
    candidates = [(v["accuracy"], name, value, v["count"])
                  for name, values in slices.items() for value, v in values.items()
                  if v["count"] >= min_count and value != UNKNOWN]
    worst = None
    if candidates:
        accuracy, name, value, count = min(candidates)
        worst = {"slice": name, "value": value, "accuracy": accuracy, "count": count}
    races = {k: v["accuracy"] for k, v in slices.get("race", {}).items() if k != UNKNOWN}
    gap = None
    if len(races) >= 2:
        best, low = max(races, key=races.get), min(races, key=races.get)
        gap = {"best": {"race": best, "accuracy": races[best]},
               "worst": {"race": low, "accuracy": races[low]},
               "gap": races[best] - races[low]}
    return {"worst_slice": worst, "race_gap": gap, "min_count": min_count}


def age_order(value: str):
    """Sort key of an age band or group name: by its first number, then by name."""
    numbers = _numbers(value)
    return (numbers[0] if numbers else float("inf"), value)


def slice_accuracy(labels, predicted, keys: dict[str, list[str]]) -> dict:
    """Accuracy and count per slice value: ``{slice: {value: {accuracy, count}}}``."""
    correct = np.asarray(labels).astype(np.int64) == np.asarray(predicted).astype(np.int64)
    out = {}
    for name, values in keys.items():
        values = np.asarray(values)
        out[name] = {str(v): {"accuracy": float(correct[values == v].mean()),
                              "count": int((values == v).sum())}
                     for v in sorted(set(values.tolist()), key=age_order)}
    return out


def center_crop_pass(loaded, data_dir: str, split: str, batch_size: int = 64) -> dict:
    """One centre-crop pass of a loaded model over a split, in record order: ``collect``'s
    metadata lists, with ``logits`` and ``labels`` as flat arrays (``peers`` compares them
    with the peer's, ``export`` chooses a decision threshold on them).

    Raises:
        FileNotFoundError, ValueError: no conversion there, or an empty split.
    """
    dataset = input_pipeline.create_dataset(
        data_dir, split=split, batch_size=batch_size, image_size=loaded.cache_image_size,
        training=False, cache="none", deterministic=True, with_metadata=True)
    data = collect(dataset, {"center": predict.make_forward(loaded)}, batch_size)
    return {**data, "logits": np.concatenate(data["logits"]["center"])[:, 0],
            "labels": np.concatenate(data["labels"])}


def collect(dataset, forwards: dict, batch_size: int) -> dict:
    """One pass over an eval dataset with metadata: every forward's logits and wall times.

    Args:
        dataset: batches of (images, labels, metadata) from ``create_dataset(with_metadata=True)``.
        forwards: ``{mode: fn(images) -> logits}``.
        batch_size: the dataset's batch size (only full batches after the first are timed).

    Returns:
        ``{"logits": {mode: [array per batch]}, "times": {mode: [seconds]}, "labels": [array
        per batch], "source_ids", "ages", "races", "extras": [str per example], "folds": [array per
        batch]}``.
    """
    out = {"logits": {m: [] for m in forwards}, "times": {m: [] for m in forwards},
           "labels": [], "source_ids": [], "ages": [], "races": [], "extras": [], "folds": []}
    for index, (images, labels, meta) in enumerate(dataset):
        for mode, forward in forwards.items():
            start = time.perf_counter()
            logits = forward(images).numpy()  # .numpy() waits for the device
            elapsed = time.perf_counter() - start
            # The first batch traces and warms up; a partial batch is not a step of batch_size.
            if index > 0 and len(logits) == batch_size:
                out["times"][mode].append(elapsed)
            out["logits"][mode].append(logits)
        out["labels"].append(labels.numpy())
        out["source_ids"] += [s.decode("utf-8", "replace") for s in meta["source_id"].numpy()]
        out["ages"] += [a.decode("utf-8", "replace") for a in meta["age"].numpy()]
        out["races"] += [r.decode("utf-8", "replace") for r in meta["race"].numpy()]
        out["extras"] += [e.decode("utf-8", "replace") for e in meta["extra"].numpy()]
        out["folds"].append(meta["fold"].numpy())
    return out


def worst_examples(labels, probabilities, keys: dict[str, list[str]],
                   per_value: int) -> dict[str, dict[str, list[int]]]:
    """The worst-classified examples of every slice value: highest log-loss first.

    Returns:
        ``{slice: {value: [example index, ...]}}``, at most ``per_value`` indices each, values
        in ``age_order``.
    """
    labels = np.asarray(labels).astype(bool)
    p = np.clip(np.asarray(probabilities, np.float64), 1e-7, 1 - 1e-7)
    loss = -np.log(np.where(labels, p, 1 - p))
    out = {}
    for name, values in keys.items():
        values = np.asarray(values)
        out[name] = {}
        for value in sorted(set(values.tolist()), key=age_order):
            members = np.flatnonzero(values == value)
            order = members[np.argsort(-loss[members], kind="stable")]
            out[name][str(value)] = [int(i) for i in order[:per_value]]
    return out


def _gather_images(dataset, wanted: set[int], source_ids: list[str]) -> dict[int, np.ndarray]:
    """A second pass over the same deterministic dataset: the images at ``wanted`` indices
    (checked against the first pass's source ids, so a changed order cannot mislabel)."""
    images_at, start = {}, 0
    for images, _, meta in dataset:
        count = int(images.shape[0])
        hits = [i for i in range(start, start + count) if i in wanted]
        if hits:
            batch, ids = images.numpy(), meta["source_id"].numpy()
            for i in hits:
                if ids[i - start].decode("utf-8", "replace") != source_ids[i]:
                    raise EvaluationError(f"the evaluation order changed between two passes "
                                          f"(example {i}); worst faces not drawn")
                images_at[i] = np.clip(batch[i - start], 0, 255).astype(np.uint8)
        start += count
        if len(images_at) == len(wanted):
            break
    return images_at


def _worst_faces_figures(worst, images_at, labels, probabilities, slices) -> dict:
    """``{slice: uint8 (1, H, W, 3) figure}``: one row per slice value, its worst faces."""
    figures_by_slice = {}
    for name, values in worst.items():
        rows = []
        for value, indices in values.items():
            stats = slices[name][value]
            faces = [(images_at[i], f"true {'m' if labels[i] else 'f'}, "
                                    f"p(male) {probabilities[i]:.2f}") for i in indices]
            rows.append((f"{value}\n{stats['accuracy']:.1%} of {stats['count']:,}", faces))
        figures_by_slice[name] = figures.face_grid_image(
            rows, title=f"worst-classified faces by {name.replace('_', ' x ')}")
    return figures_by_slice


def _write_summaries(summary_dir: str, step: int, result: dict, labels: np.ndarray,
                     probabilities: np.ndarray, worst_faces: dict) -> None:
    writer = tf.summary.create_file_writer(summary_dir)
    with writer.as_default():
        for name, image in worst_faces.items():
            tf.summary.image(f"evaluate/worst_faces/{name}", image, step=step,
                             description="per slice value, the faces with the highest loss")
        for key in ("accuracy", "loss", "auc", "seconds_per_step"):
            if result.get(key) is not None:
                tf.summary.scalar(f"evaluate/{key}", result[key], step=step)
        for mode in ("center_crop", "oversample"):
            for key in ("accuracy", "loss", "auc"):
                if mode in result and result[mode][key] is not None:
                    tf.summary.scalar(f"evaluate/{mode}/{key}", result[mode][key], step=step)
        cm = result["confusion_matrix"]
        tf.summary.image("evaluate/confusion_matrix", figures.confusion_matrix_image(cm),
                         step=step, description="rows: true class; columns: prediction")
        # TensorBoard's PR curve plugin: precision and recall of "male" at 201 thresholds.
        tf.summary.experimental.write_raw_pb(pr_summary.pb(
            "evaluate/pr_curve_male", labels.astype(bool), probabilities.astype(np.float32),
            num_thresholds=201).SerializeToString(), step=step)
        tf.summary.text("evaluate/confusion_matrix_table",
                        "| true \\ predicted | female | male |\n|---|---|---|\n"
                        f"| female | {cm['tn']} | {cm['fp']} |\n| male | {cm['fn']} | {cm['tp']} |",
                        step=step)
    writer.close()


def _selection_name(config) -> str:
    return "folds_" + "_".join(str(f) for f in config.folds) if config.folds else config.split


def evaluate(config) -> dict:
    """Evaluates a trained model on a split or folds of a converted dataset.

    Args:
        config: a ``config.EvaluateConfig``.

    Returns:
        The metrics: top-level ``accuracy``, ``loss``, ``auc``, ``num_examples``,
        ``confusion_matrix`` and ``slices`` of the main mode (``mode``: ``oversample`` with
        ``config.oversample``, else ``center_crop``), ``seconds_per_step`` (median wall time of
        one batch of ``batch_size`` after a warm-up batch; also as ``test_time_per_step``), and a
        sub-dict per mode; ``worst_faces``: the PNG grids written (per slice, each value's
        ``config.worst_faces`` highest-loss faces). Also written as JSON and TensorBoard
        summaries.

    Raises:
        predict.ModelError: the model cannot be loaded or does not fit the request.
        EvaluationError: no converted dataset there, the selection is empty, or a shard is
            missing, damaged or disagrees with the manifest (named).
    """
    loaded = predict.load_model(
        workdir=config.workdir, checkpoint=config.checkpoint, model_path=config.model_path,
        model_name=config.model_name, image_size=config.image_size,
        cache_image_size=config.cache_image_size)
    selection = {"folds": list(config.folds)} if config.folds else {"split": config.split}
    try:
        manifest = records.load_manifest(config.data_dir)
        input_pipeline.count_records(config.data_dir, **selection)
    except (FileNotFoundError, ValueError) as err:
        raise EvaluationError(f"{config.data_dir}: {err}") from None
    forwards = {"center_crop": predict.make_forward(loaded)}
    if config.oversample:
        forwards["oversample"] = predict.make_forward(loaded, oversample=True)
    try:
        dataset = input_pipeline.create_dataset(
            config.data_dir, **selection, batch_size=config.batch_size,
            image_size=loaded.cache_image_size, training=False, cache="none",
            deterministic=True, with_metadata=True)
        data = collect(dataset, forwards, config.batch_size)
    except tf.errors.DataLossError as err:
        raise EvaluationError(input_pipeline.describe_data_loss(config.data_dir, err)) from None
    except (FileNotFoundError, ValueError) as err:  # a missing shard, a wrong count
        raise EvaluationError(str(err)) from None
    labels = np.concatenate(data["labels"])
    modes = {}
    for mode in forwards:
        logits = np.concatenate(data["logits"][mode])
        # Levi & Hassner average the probabilities of the views.
        probabilities = predict.sigmoid(logits).mean(axis=1)
        times = data["times"][mode]
        # One view: its logits, as the training loop's evaluation; several: their mean.
        scores = ({"logits": logits[:, 0]} if logits.shape[1] == 1 else
                  {"probabilities": probabilities})
        modes[mode] = {**binary_metrics(labels, **scores), "views": logits.shape[1],
                       "seconds_per_step": float(np.median(times)) if times else None,
                       "timed_steps": len(times), "probabilities": probabilities}
    main = "oversample" if config.oversample else "center_crop"
    keys = slice_keys(manifest.get("source", ""), labels, data["source_ids"], data["ages"],
                      np.concatenate(data["folds"]), races=data["races"],
                      extras=data["extras"])
    slices = slice_accuracy(labels, modes[main]["probabilities"] > 0.5, keys)
    main_probabilities = modes[main]["probabilities"]
    summary_dir = config.summary_dir or (
        os.path.join(config.workdir, "evaluate", _selection_name(config)) if config.workdir
        else "")
    worst_faces, worst_paths = {}, []
    if config.worst_faces and summary_dir:
        worst = worst_examples(labels, main_probabilities, keys, config.worst_faces)
        wanted = {i for values in worst.values() for indices in values.values() for i in indices}
        try:  # the second pass reads the shards again: the first pass's errors, named
            images_at = _gather_images(dataset, wanted, data["source_ids"])
        except tf.errors.DataLossError as err:
            raise EvaluationError(input_pipeline.describe_data_loss(config.data_dir,
                                                                    err)) from None
        worst_faces = _worst_faces_figures(worst, images_at, labels, main_probabilities, slices)
        for name, image in worst_faces.items():
            path = os.path.join(summary_dir, f"worst_faces_{name}.png")
            try:
                os.makedirs(summary_dir, exist_ok=True)
                with open(path, "wb") as f:
                    f.write(tf.io.encode_png(image[0]).numpy())
            except OSError as err:  # a full disk, an unwritable --summary_dir
                raise EvaluationError(f"cannot write {path}: {err.strerror or err}") from None
            worst_paths.append(path)
    # The decision threshold that would classify this split best (centre crop): to choose on
    # a validation split and bake into an export (bin/export --logit_offset), never on test.
    threshold = best_logit_offset(labels, np.concatenate(data["logits"]["center_crop"])[:, 0]) \
        if "center_crop" in data["logits"] else None
    for metrics in modes.values():
        del metrics["probabilities"]
    result = {
        **{k: v for k, v in modes[main].items() if k != "views"}, "mode": main,
        "test_time_per_step": modes[main]["seconds_per_step"], "slices": slices,
        "fairness": fairness_summary(slices), **modes,
        "model": loaded.name, "model_source": loaded.source, "image_size": loaded.image_size,
        "cache_image_size": loaded.cache_image_size, "crop_fraction": loaded.crop_fraction,
        "data_dir": config.data_dir, "source": manifest.get("source"), "selection": selection,
        "batch_size": config.batch_size, "device": devices.device_kind(), "step": loaded.step,
        "threshold": threshold,
    }
    if summary_dir:
        _write_summaries(summary_dir, loaded.step, result, labels, main_probabilities,
                         worst_faces)
    result["worst_faces"] = worst_paths
    output = config.output_json or (os.path.join(summary_dir, "metrics.json")
                                    if summary_dir else "")
    if output:
        os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
        write_json_atomic(output, result)
        logging.info("metrics written to %s", output)
    result["output_json"] = output
    return result


__all__ = ["EvaluationError", "adience_age_group", "age_order", "evaluate", "fairness_summary",
           "slice_accuracy", "slice_keys", "utkface_band", "worst_examples"]
