"""bin/epoch_time_study: per-epoch training runtime of each architecture on every device."""

from __future__ import annotations

import os
import sys

from absl import app

from tfgender import flags
from tfgender.cli import run_program

flags.define_epoch_study_flags()

USAGE = """Measures steady-state training throughput of each architecture on every visible
device and writes the study's table: runtime per epoch at the Adience scale (9,755 training
images) beside the study's published rows, with the achieved share of the matmul peak.

Usage: epoch_time_study --output_dir=runs/epoch_study [--models=mobilenet_v2,resnet50]
       [--steps=20] [--batch_size=64] [--image_size=224] [--full_epoch] [--data_dir=CONVERTED]
"""


def main(argv: list[str]) -> int:
    # After the flags are parsed (cli.run_program): a bad flag fails before TensorFlow loads.
    from tfgender.experiments import epoch_study

    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    config = flags.epoch_study_config_from_flags()
    try:
        report = epoch_study.run_study(config)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(epoch_study.format_markdown(report))
    if config.output_dir:
        print(f"written: {os.path.join(config.output_dir, epoch_study.MARKDOWN_FILE)} and "
              f"{epoch_study.JSON_FILE}")
    return 0


def run() -> None:
    """Entry point of ``bin/epoch_time_study``."""
    run_program(main, USAGE)
