"""bin/train: trains one architecture on a converted dataset with the custom tf.function loop."""

from __future__ import annotations

import sys

from absl import app

from tfgender import flags
from tfgender.cli import run_program

flags.define_train_flags()

USAGE = """Trains a gender classifier on a converted dataset; rerunning resumes.

Usage: train --flagfile=configs/smoke.flags --workdir=runs/smoke [--data_dir=CONVERTED]
       [--model=mobilenet_v2] [--epochs=10] [--batch_size=64] ...  (flags after --flagfile
       override the file's values)

--flagfile takes a path, or the name of a flagfile shipped with tfgender (smoke, demo,
fairface_mobilenet_v2, ...; the repository's configs/): found from any folder.
"""


def main(argv: list[str]) -> int:
    # After the flags are parsed (cli.run_program): a bad flag fails before TensorFlow loads.
    from tfgender.training import interrupt, loop

    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    config = flags.train_config_from_flags()
    try:
        summary = loop.train_and_evaluate(config, flags.FLAGS.workdir)
    except loop.TrainingError as err:  # also a non-finite loss (actions.NonFiniteLossError)
        print(f"error: {err}", file=sys.stderr)
        return 2
    except interrupt.Interrupted as err:
        print(str(err), file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:  # before the first step or after the last: nothing to save
        print("interrupted outside the training loop; the checkpoints in the workdir are "
              "kept: rerun the same command to resume", file=sys.stderr)
        return 130
    final = summary["final"] or {}
    evaluation = final.get("eval", {})
    print(f"done: {summary['steps']} steps; eval accuracy {evaluation.get('accuracy', 0):.4f} "
          f"auc {evaluation.get('auc', 0):.4f}; summary in {flags.FLAGS.workdir}/summary.json; "
          f"view with: tensorboard --logdir {flags.FLAGS.workdir}")
    return 0


def run() -> None:
    """Entry point of ``bin/train`` and ``tfgender-train``."""
    run_program(main, USAGE)
