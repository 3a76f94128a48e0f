"""bin/profile_run: profiler traces of the training step of each architecture, for TensorBoard."""

from __future__ import annotations

import sys

from absl import app

from tfgender import flags
from tfgender.cli import run_program

flags.define_epoch_study_flags()

USAGE = """Captures TensorBoard profiler traces of tfgender's training step (after warm-up)
for each architecture on every visible device; view with the profile plugin.

Usage: profile_run --output_dir=runs/profile [--models=mobilenet_v2] [--steps=5]
       [--batch_size=64] [--image_size=224] [--precision=auto] [--jit_compile=auto]
       (a whole training run: bin/train ... --profile_steps=START,END)
"""


def main(argv: list[str]) -> int:
    # After the flags are parsed (cli.run_program): a bad flag fails before TensorFlow loads.
    from tfgender.experiments import profile

    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    try:
        captured = profile.profile_training(flags.epoch_study_config_from_flags())
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for entry in captured:
        mean = sum(entry["step_seconds"]) / len(entry["step_seconds"])
        print(f"{entry['model']} on {entry['device']} ({entry['precision']}, XLA "
              f"{'on' if entry['jit_compile'] else 'off'}): {mean * 1000:.1f} ms/step, "
              f"trace in {entry['logdir']}")
        steps = entry.get("step_time")
        if steps and steps["steps"]:
            print(f"  xprof step time over {steps['steps']} marked steps: "
                  f"{steps['step_ms']:.1f} ms (sd {steps['step_ms_sd']:.1f}): host compute "
                  f"{steps['host_compute_ms']:.1f}, input {steps['input_ms']:.1f}, other "
                  f"{steps['other_ms']:.1f}, compilation {steps['compile_ms']:.1f} ms")
        elif steps:
            print("  xprof found no step marker in the trace")
        analysis = entry.get("input_pipeline")
        if analysis and analysis["input_fraction"] is not None:
            print(f"  input pipeline analyser: {analysis['input_ms']:.1f} ms of input "
                  f"processing in {analysis['traced_ms']:.0f} ms traced "
                  f"({100 * analysis['input_fraction']:.2f}%); slowest input op "
                  f"{analysis['slowest_input_op']}; {analysis['conclusion']}")
    print(f"view with: tensorboard --logdir {flags.FLAGS.output_dir}")
    return 0


def run() -> None:
    """Entry point of ``bin/profile_run``."""
    run_program(main, USAGE)
