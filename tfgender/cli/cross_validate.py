"""bin/cross_validate: Levi & Hassner's fold protocol, one training run per held-out fold."""

from __future__ import annotations

import sys

from absl import app

from tfgender import flags
from tfgender.cli import run_program

flags.define_train_flags()
flags.define_cross_validate_flags()

USAGE = """Cross-validates over a converted dataset's folds (Adience's five, or UTKFace/CelebA
converted with --num_folds=k): for each test fold k, trains on the others except the validation
fold k+1, tests the best model on fold k, and reports mean +- s.e. With --init_checkpoint every
fold starts from that run. Rerunning skips finished folds and resumes an interrupted one.

Usage: cross_validate --flagfile=configs/levi_hassner_adience.flags --data_dir=CONVERTED
       --workdir=runs/cv [--folds=0,1,2,3,4] [--oversample]  (every bin/train flag works)
"""


def main(argv: list[str]) -> int:
    # After the flags are parsed (cli.run_program): a bad flag fails before TensorFlow loads.
    from tfgender.evaluation import evaluate, predict
    from tfgender.experiments import cross_validate
    from tfgender.training import loop

    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    config = flags.train_config_from_flags()
    try:
        results = cross_validate.cross_validate(
            config, flags.FLAGS.workdir, flags.cross_validate_options_from_flags())
    except (cross_validate.CrossValidationError, loop.TrainingError,
            evaluate.EvaluationError, predict.ModelError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"done: {len(results['folds'])} folds; results in "
          f"{flags.FLAGS.workdir}/{cross_validate.RESULTS}")
    return 0


def run() -> None:
    """Entry point of ``bin/cross_validate``."""
    run_program(main, USAGE)
