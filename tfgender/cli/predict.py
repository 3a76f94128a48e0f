"""bin/predict: gender of the faces in image files and folders, as CSV or JSON."""

from __future__ import annotations

import sys

from tfgender import flags
from tfgender.cli import announce_bundled_model, run_program

flags.define_predict_flags()

USAGE = """Predicts the gender of face images with a trained run's model.

Usage: predict [--workdir=RUN] [--output=FILE.csv|FILE.json] PATH [PATH...]
       predict --workdir=RUN --inputs=a.jpg,faces/
  Without --workdir or --model_path: the model tfgender ships (MobileNetV2 trained on
  FairFace; README "The model that ships").
  Accepted: JPEG, PNG, BMP, GIF (first frame), WebP and TIFF, upright by their EXIF
  orientation, read by the rule conversion applies. Folders are searched recursively for
  them; each file is predicted once; CSV goes to stdout without --output. Unreadable images
  are reported on stderr (and in JSON output) and skipped; no image predicted at all is an
  error (exit 2).
  --detect_faces finds the faces in ordinary photos first (one row per face, with its box);
  --annotate=DIR also writes each photo with the boxes and labels drawn.
"""


def main(argv: list[str]) -> int:
    # After the flags are parsed (cli.run_program): a bad flag fails before TensorFlow loads.
    from tfgender.evaluation import detect, predict

    config = flags.predict_config_from_flags(argv[1:])
    announce_bundled_model(config)
    try:
        rows = predict.predict(config)
    except (predict.ModelError, detect.DetectorUnavailableError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # --annotate or --output cannot be written (a file, no space)
        print(f"error: cannot write {err.filename or 'the output'}: {err.strerror or err}",
              file=sys.stderr)
        return 2
    faces = config.detect_faces or config.annotate
    if not rows:
        why = ("no face found in any readable photo" if faces
               else "no readable .jpg, .jpeg or .png image")
        print(f"error: nothing could be predicted from {', '.join(config.inputs) or 'no input'}"
              f": {why}", file=sys.stderr)
        return 2
    what = (f"{len(rows)} faces in {len({row['path'] for row in rows})} photos" if faces
            else f"{len(rows)} images")
    print(f"predicted {what}" + (f"; written to {config.output}" if config.output else ""),
          file=sys.stderr)
    return 0


def run() -> None:
    """Entry point of ``bin/predict`` and ``tfgender-predict``."""
    run_program(main, USAGE)
