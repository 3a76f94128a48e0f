"""bin/data_service: runs a tf.data service dispatcher or worker until it is stopped."""

from __future__ import annotations

import sys

from absl import app

from tfgender import flags
from tfgender.cli import run_program

flags.define_data_service_flags()

USAGE = """Serves a tf.data service dispatcher or worker (reading and decoding for trainers).

Usage: data_service --role=dispatcher --port=5050
       data_service --role=worker --dispatcher_address=HOST:5050 --port=5051
       then: train ... --data_service_address=grpc://HOST:5050
Runs until killed; one dispatcher per cluster, any number of workers.
"""


def main(argv: list[str]) -> int:
    # After the flags are parsed (cli.run_program): a bad flag fails before TensorFlow loads.
    from tfgender.input import service as data_service

    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    try:
        data_service.serve(flags.data_service_config_from_flags())
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


def run() -> None:
    """Entry point of ``bin/data_service``."""
    run_program(main, USAGE)
