"""bin/evaluate: accuracy, loss, AUC, slices and timing of a trained run on a converted split."""

from __future__ import annotations

import os
import sys

from absl import app

from tfgender import flags
from tfgender.cli import announce_bundled_model, run_program

flags.define_evaluate_flags()

USAGE = """Evaluates a trained run on a split or folds of a converted dataset.

Usage: evaluate [--workdir=RUN] --data_dir=CONVERTED [--split=test | --folds=4]
       [--oversample] [--batch_size=64] [--checkpoint=best|latest|PREFIX]
       [--output_json=FILE]
       evaluate --model_path=MODEL.keras --model_name=levi_hassner --image_size=227
       --data_dir=CONVERTED ...       (or --model_path=MODEL.tflite from bin/export)
  Without --workdir or --model_path: the model tfgender ships (MobileNetV2 trained on
  FairFace; README "The model that ships").
"""


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def format_table(result: dict) -> str:
    """The short table bin/evaluate prints: one line per mode, then the confusion matrix."""
    lines = [f"{result['num_examples']} images of {result['selection']} in {result['data_dir']}",
             f"{'mode':<12} {'views':>5} {'accuracy':>9} {'auc':>7} {'loss':>7} {'s/step':>8}"]
    for mode in ("center_crop", "oversample"):
        if mode in result:
            m = result[mode]
            main = " *" if mode == result["mode"] else ""
            lines.append(f"{mode:<12} {m['views']:>5} {_fmt(m['accuracy']):>9} "
                         f"{_fmt(m['auc']):>7} {_fmt(m['loss']):>7} "
                         f"{_fmt(m['seconds_per_step']):>8}{main}")
    cm = result["confusion_matrix"]
    lines.append(f"confusion (male positive): tn {cm['tn']} fp {cm['fp']} fn {cm['fn']} "
                 f"tp {cm['tp']}")
    for name, values in result["slices"].items():
        parts = ", ".join(f"{k} {v['accuracy']:.3f} (n={v['count']})" for k, v in values.items())
        lines.append(f"{name}: {parts}")
    fairness = result.get("fairness") or {}
    worst = fairness.get("worst_slice")
    if worst:
        lines.append(f"worst slice (n>={fairness['min_count']}): {worst['slice']} "
                     f"{worst['value']} {worst['accuracy']:.3f} (n={worst['count']})")
    gap = fairness.get("race_gap")
    if gap:
        lines.append(f"largest race gap: {gap['gap']:.3f} ({gap['best']['race']} "
                     f"{gap['best']['accuracy']:.3f} vs {gap['worst']['race']} "
                     f"{gap['worst']['accuracy']:.3f})")
    threshold = result.get("threshold")
    if threshold and threshold["offset"]:
        lines.append(f"decision threshold (centre crop): logit offset {threshold['offset']:+.3f} "
                     f"would read {threshold['accuracy']:.4f} on this split, against "
                     f"{threshold['accuracy_at_zero']:.4f} at 0; choose it on a validation "
                     "split, then bin/export --logit_offset")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    # After the flags are parsed (cli.run_program): a bad flag fails before TensorFlow loads.
    from tfgender.evaluation import evaluate, predict

    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    config = flags.evaluate_config_from_flags()
    announce_bundled_model(config)
    try:
        result = evaluate.evaluate(config)
    except (evaluate.EvaluationError, predict.ModelError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(format_table(result))
    if result["output_json"]:
        print(f"metrics in {result['output_json']}")
    if result["worst_faces"]:
        print(f"worst-classified faces by slice: {os.path.dirname(result['worst_faces'][0])}/"
              f"worst_faces_{{{','.join(_slice_names(result['worst_faces']))}}}.png")
    return 0


def _slice_names(paths) -> list[str]:
    return [os.path.basename(p)[len("worst_faces_"):-len(".png")] for p in paths]


def run() -> None:
    """Entry point of ``bin/evaluate`` and ``tfgender-evaluate``."""
    run_program(main, USAGE)
