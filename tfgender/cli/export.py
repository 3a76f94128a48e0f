"""bin/export: a trained run's model as a SavedModel (from image bytes) or a TFLite file."""

from __future__ import annotations

import sys

from tfgender import flags
from tfgender.cli import run_program

flags.define_export_flags()

USAGE = """Exports a trained run's model for use outside tfgender.

Usage: export --workdir=RUN --format=saved_model --output=DIR
       export --workdir=RUN --format=tflite --output=model.tflite
       export --workdir=RUN --format=tflite_int8 --data_dir=CONVERTED --output=model_int8.tflite
  The SavedModel's serving_default takes image_bytes (a batch of encoded JPEG/PNG) and returns
  probability_male; TFLite files take uint8 images at the run's cache size.
"""


def main(argv: list[str]) -> int:
    # After the flags are parsed (cli.run_program): a bad flag fails before TensorFlow loads.
    from tfgender.evaluation import export, predict

    if len(argv) > 1:
        print(f"error: unexpected arguments: {argv[1:]}", file=sys.stderr)
        return 2
    config = flags.export_config_from_flags()
    try:
        path = export.export(config)
    except (export.ExportError, predict.ModelError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # a full disk or an unwritable --output: the file written is whole
        print(f"error: cannot write {err.filename or config.output}: {err.strerror or err}",
              file=sys.stderr)
        return 2
    print(f"exported {config.format} to {path}", file=sys.stderr)
    return 0


def run() -> None:
    """Entry point of ``bin/export`` and ``tfgender-export``."""
    run_program(main, USAGE)
