"""bin/make_sample_data: draws a sample face dataset in the on-disk format of a real one."""

from __future__ import annotations

import sys

from absl import app

from tfgender import flags
from tfgender.cli import run_program

flags.define_sample_data_flags()

USAGE = """Draws a sample face dataset in the on-disk format of Adience, CelebA or UTKFace.

Usage: make_sample_data --format={adience,celeba,utkface} --out_dir=DIR [--num_images=200]
       [--image_size=0] [--seed=0] [--adience_folds=DIR] [--jpeg_quality=90] [--flagfile=F]
"""


def main(argv: list[str]) -> int:
    # After the flags are parsed (cli.run_program): a bad flag fails before TensorFlow loads.
    from tfgender.data import sample

    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    config = flags.sample_data_config_from_flags()
    try:
        summary = sample.make_sample_data(config)
    except (ValueError, OSError, sample.WorkerStopped) as err:
        # bad flag values, a non-empty --out_dir, no folds, a drawing process that died
        print(f"error: {err}", file=sys.stderr)
        return 2
    labels, (width, height) = summary["labels"], summary["image_size"]
    print(f"wrote {summary['num_images']} {summary['format']} images ({width}x{height}; "
          f"{labels['male']} male, {labels['female']} female, {labels['unknown']} unknown) and "
          f"{len(summary['label_files'])} label files to {summary['out_dir']}")
    return 0


def run() -> None:
    """Entry point of ``bin/make_sample_data`` and the ``tfgender-make-sample-data`` script."""
    run_program(main, USAGE)
