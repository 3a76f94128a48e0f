"""bin/sweep: grid or random search over training flags, one resumable run per trial."""

from __future__ import annotations

import sys

from absl import app

from tfgender import flags
from tfgender.cli import run_program

flags.define_train_flags(check=False)  # each trial's config is checked: sweep.run_sweep
flags.define_sweep_flags()

USAGE = """Searches over training flags: each trial trains into <workdir>/<trial_id> with
HParams summaries; at the end a table of the trials, best validation metric first, is printed
and written to <workdir>/trials.md. Rerunning skips finished trials and resumes an interrupted
one; a larger --max_trials adds trials.

Usage: sweep --flagfile=configs/mobilenet_v2_adience.flags --data_dir=CONVERTED
       --workdir=runs/sweep --param=learning_rate=1e-3,5e-4,1e-4
       --param='head_units=512/512/512;1024/512/256'  (grid; every bin/train flag works)
       sweep ... --search=random --max_trials=20 --param=learning_rate=loguniform:1e-5:1e-2
"""


def main(argv: list[str]) -> int:
    # After the flags are parsed (cli.run_program): a bad flag fails before TensorFlow loads.
    from tfgender.experiments import sweep

    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    config = flags.train_config_from_flags()
    workdir = flags.FLAGS.workdir
    try:
        space = sweep.parse_space(flags.FLAGS.param)
        results = sweep.run_sweep(config, workdir, space, **flags.sweep_options_from_flags())
    except sweep.SweepError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    failed = [r["trial_id"] for r in results["trials"] if r["status"] != "finished"]
    print(f"done: {len(results['trials']) - len(failed)} of {len(results['trials'])} trials "
          f"finished; table in {workdir}/{sweep.TABLE}, results in {workdir}/{sweep.RESULTS}; "
          f"compare them with: tensorboard --logdir {workdir}")
    if failed:
        print(f"failed trials (rerun to retry): {', '.join(failed)}", file=sys.stderr)
    return 2 if failed and len(failed) == len(results["trials"]) else 0


def run() -> None:
    """Entry point of ``bin/sweep`` and ``tfgender-sweep``."""
    run_program(main, USAGE)
