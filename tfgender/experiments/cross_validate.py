"""Cross-validation over any converted folds (Adience, or UTKFace/CelebA with --num_folds)."""

from __future__ import annotations

import dataclasses
import json
import math
import os

import keras
import numpy as np
from absl import logging

from tfgender.config import CrossValidateConfig, EvaluateConfig
from tfgender.data import records
from tfgender.evaluation import evaluate as evaluate_lib
from tfgender.files import write_json_atomic
from tfgender.training import loop

TEST_METRICS = "test_metrics.json"
RESULTS = "cross_validation.json"
METRICS = ("accuracy", "auc", "loss")
# Train, validation and test each need a fold of their own.
MIN_FOLDS = 3


class CrossValidationError(ValueError):
    """The dataset or the fold selection cannot be cross-validated; says why."""


def manifest_folds(data_dir: str) -> tuple[int, ...]:
    """The folds of a converted dataset, from its manifest (fold -1 means "no fold").

    Raises:
        CrossValidationError: no converted dataset at ``data_dir``.
    """
    try:
        manifest = records.load_manifest(data_dir)
    except (FileNotFoundError, ValueError) as err:
        raise CrossValidationError(str(err)) from None
    return tuple(sorted(int(k) for k in manifest.get("counts", {}).get("fold", {})
                        if int(k) >= 0))


def fold_plan(all_folds, test_fold: int) -> dict:
    """The train/validation/test folds of one round.

    The validation fold is the one after the test fold (cyclically), so every fold is the
    validation fold once. Folds are group-exclusive (Adience's albums, CelebA's identities,
    UTKFace's images: see ``data/splits.py``), hence so are the three sets.

    Args:
        all_folds: every fold of the dataset, e.g. ``(0, 1, 2, 3, 4)``.
        test_fold: the held-out fold.

    Returns:
        ``{"train_folds": (...), "val_fold": int, "test_fold": int}``.
    """
    ordered = sorted(all_folds)
    val_fold = ordered[(ordered.index(test_fold) + 1) % len(ordered)]
    train_folds = tuple(f for f in ordered if f not in (test_fold, val_fold))
    return {"train_folds": train_folds, "val_fold": val_fold, "test_fold": test_fold}


def mean_and_stderr(values) -> tuple[float | None, float | None]:
    """Mean and standard error (sample std / sqrt(n), ddof=1) of the values that are not None.

    Returns:
        ``(mean, stderr)``; the mean is None without values, the standard error with fewer
        than two.
    """
    values = np.asarray([v for v in values if v is not None], np.float64)
    if not values.size:
        return None, None
    if values.size < 2:
        return float(values.mean()), None
    return float(values.mean()), float(values.std(ddof=1) / math.sqrt(values.size))


def _run_fold(train_config, fold_dir: str, plan: dict, oversample: bool,
              eval_batch_size: int) -> dict:
    """Trains (or resumes) one round and evaluates its best model on the test fold."""
    config = dataclasses.replace(train_config, train_folds=plan["train_folds"],
                                 eval_folds=(plan["val_fold"],))
    summary = loop.train_and_evaluate(config, fold_dir)
    result = evaluate_lib.evaluate(EvaluateConfig(
        data_dir=train_config.data_dir, workdir=fold_dir, checkpoint="best",
        folds=(plan["test_fold"],), oversample=oversample, batch_size=eval_batch_size,
        worst_faces=0))  # a round's figures: bin/evaluate on its fold draws them
    metrics = {k: result[k] for k in (*METRICS, "num_examples", "confusion_matrix", "mode")}
    metrics.update(fold=plan["test_fold"], train_folds=list(plan["train_folds"]),
                   val_fold=plan["val_fold"], steps=summary["steps"],
                   best_val=summary["best"], slices=result["slices"])
    write_json_atomic(os.path.join(fold_dir, TEST_METRICS), metrics)
    # Each round builds a fresh model; free the previous one's graph and memory.
    keras.utils.clear_session()
    return metrics


def _load_finished(path: str, plan: dict) -> dict:
    with open(path) as f:
        metrics = json.load(f)
    if (tuple(metrics.get("train_folds", ())) != plan["train_folds"]
            or metrics.get("val_fold") != plan["val_fold"]):
        raise CrossValidationError(
            f"{path} was trained on folds {metrics.get('train_folds')} (validation "
            f"{metrics.get('val_fold')}), not {list(plan['train_folds'])} (validation "
            f"{plan['val_fold']}): use another --workdir")
    return metrics


def cross_validate(train_config, workdir: str, options: CrossValidateConfig | None = None
                   ) -> dict:
    """Levi & Hassner's Adience protocol: one round per held-out test fold, then mean +- s.e.

    Any converted dataset with folds works: Adience's five, or the k grouped folds of
    UTKFace/CelebA converted with ``--num_folds=k``. Every round starts from
    ``train_config.init_checkpoint`` when one is set (fine-tuning a pretrained run per fold).

    Round ``k`` trains on every fold except ``k`` and its validation fold (the next one) into
    ``workdir/fold_k``, then evaluates the best model on fold ``k`` into
    ``workdir/fold_k/test_metrics.json``. Rerunning skips finished rounds and resumes an
    interrupted one from its checkpoints.

    Args:
        train_config: a ``config.TrainConfig``; its splits and folds are replaced per round.
        workdir: directory of the rounds and of ``cross_validation.json``.
        options: a ``config.CrossValidateConfig`` (the test folds, 10-crop oversampling, the
            evaluation batch); None: its defaults, every fold.

    Returns:
        ``{"folds": [per-round metrics], "mean": {metric: value}, "stderr": {metric: value},
        "table": markdown}``, also written to ``workdir/cross_validation.json``.

    Raises:
        CrossValidationError: fewer than three folds, or a requested fold not in the dataset,
            or a finished round of a different fold plan in ``workdir``.
        loop.TrainingError, evaluate.EvaluationError: from a round.
    """
    options = options or CrossValidateConfig()
    all_folds = manifest_folds(train_config.data_dir)
    if len(all_folds) < MIN_FOLDS:
        raise CrossValidationError(
            f"{train_config.data_dir} has {len(all_folds)} fold(s) {list(all_folds)}; "
            f"cross-validation needs at least {MIN_FOLDS} (train, validation, test): convert "
            "Adience, or UTKFace/CelebA with bin/convert_tfrecords --num_folds=5")
    test_folds = tuple(options.folds or all_folds)
    unknown = sorted(set(test_folds) - set(all_folds))
    if unknown or not test_folds or len(set(test_folds)) != len(test_folds):
        raise CrossValidationError(f"folds {list(test_folds)}: each must be one of the "
                                   f"dataset's folds {list(all_folds)}, once")
    if train_config.train_folds or train_config.eval_folds:
        logging.warning("cross-validation chooses the folds; ignoring train_folds=%s "
                        "eval_folds=%s", train_config.train_folds, train_config.eval_folds)
    os.makedirs(workdir, exist_ok=True)

    rounds = []
    for k in test_folds:
        plan = fold_plan(all_folds, k)
        fold_dir = os.path.join(workdir, f"fold_{k}")
        done = os.path.join(fold_dir, TEST_METRICS)
        if os.path.exists(done):
            logging.info("fold %d already finished (%s)", k, done)
            print(f"fold {k} already finished", flush=True)
            rounds.append(_load_finished(done, plan))
            continue
        print(f"fold {k}: train on folds {list(plan['train_folds'])}, validate on fold "
              f"{plan['val_fold']}, test on fold {k}", flush=True)
        rounds.append(_run_fold(train_config, fold_dir, plan, options.oversample,
                                options.eval_batch_size))

    mean, stderr = {}, {}
    for metric in METRICS:
        mean[metric], stderr[metric] = mean_and_stderr([r[metric] for r in rounds])
    results = {"folds": rounds, "mean": mean, "stderr": stderr, "all_folds": list(all_folds),
               "model": train_config.model, "data_dir": train_config.data_dir,
               "config": dataclasses.asdict(train_config)}
    results["table"] = markdown_table(results)
    write_json_atomic(os.path.join(workdir, RESULTS), results)
    print(results["table"], flush=True)
    return results


def _cell(value, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _mean_cell(mean, stderr) -> str:
    return _cell(mean) if stderr is None else f"{_cell(mean)} ± {_cell(stderr)}"


def markdown_table(results: dict) -> str:
    """Per-fold accuracy, AUC and loss and their mean ± standard error, as a markdown table."""
    lines = ["| test fold | train folds | val fold | images | accuracy | AUC | loss |",
             "|---|---|---|---|---|---|---|"]
    for r in results["folds"]:
        lines.append(f"| {r['fold']} | {','.join(str(f) for f in r['train_folds'])} | "
                     f"{r['val_fold']} | {r['num_examples']} | {_cell(r['accuracy'])} | "
                     f"{_cell(r['auc'])} | {_cell(r['loss'])} |")
    mean, stderr = results["mean"], results["stderr"]
    lines.append(f"| mean ± s.e. | | | | {_mean_cell(mean['accuracy'], stderr['accuracy'])} | "
                 f"{_mean_cell(mean['auc'], stderr['auc'])} | "
                 f"{_mean_cell(mean['loss'], stderr['loss'])} |")
    return "\n".join(lines)


__all__ = ["CrossValidationError", "cross_validate", "fold_plan", "manifest_folds",
           "markdown_table", "mean_and_stderr"]
