"""bin/convert_tfrecords: a dataset's label files and JPEGs -> sharded TFRecords + manifest."""

from __future__ import annotations

import sys

from absl import app

from tfgender import flags, quiet
from tfgender.cli import run_program

flags.define_convert_flags()


def main(argv: list[str]) -> int:
    # After the flags are parsed (cli.run_program): a bad flag fails before TensorFlow loads.
    from tfgender.data import convert as convert_lib
    from tfgender.data import schema

    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    config = flags.convert_config_from_flags()
    quiet.silence_native_stderr_at_exit()  # each skipped image has its one line already
    try:
        convert_lib.convert(config)
    except (convert_lib.ConversionError, schema.DataFormatError, FileNotFoundError) as err:
        # Includes too many skipped images: then no manifest.json is written.
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


USAGE = """Converts a face dataset into sharded TFRecords and manifest.json.

Usage: convert_tfrecords --source={adience,celeba,utkface,fairface,folders} --data_dir=DIR
       --out_dir=OUT
       [--image_size=0] [--num_workers=1] [--shard_size_mb=100] [--flagfile=F]
       convert_tfrecords --source=table --labels=faces.csv --out_dir=OUT
       [--path_column=filename] [--label_column=class] [--label_map=male:1,female:0]
       [--split_column=...] [--group_column=...]
  Images: JPEG, PNG, BMP, GIF, WebP, TIFF (any other format or a corrupt file is one
  "skipped" line).
"""


def run() -> None:
    """Entry point of ``bin/convert_tfrecords`` and ``tfgender-convert-tfrecords``."""
    run_program(main, USAGE)
