"""Command-line programs: each parses flags, builds a config and calls one library function.

They parse and check their flags before TensorFlow is imported (its import costs seconds).
"""

from __future__ import annotations

import sys

from absl import app
from absl import flags as absl_flags

from tfgender import flags, quiet
from tfgender.flags.common import PARSED_CHECKS, expand_flagfiles


def run_program(main, usage: str) -> None:
    """Runs an absl ``main`` with a proper ``--help`` text and a useful ``--helpshort``.

    Args:
        main: the program's ``main(argv)``.
        usage: the text ``--help`` prints before the flags.
    """
    # --help prints __main__'s docstring; in bin/ that is the sh/python polyglot line.
    sys.modules["__main__"].__doc__ = usage
    # --helpshort lists the main module's key flags, but ours are defined in tfgender.flags.
    for module in flags.DEFINING_MODULES:
        for flag in flags.FLAGS.get_key_flags_for_module(module):
            flags.FLAGS.register_key_flag_for_module(sys.argv[0], flag)

    def quiet_main(argv: list[str]) -> int:
        # The flags import nothing of TensorFlow (tfgender.choices), so a bad flag has
        # already failed; each main imports the library, and with it TensorFlow, after this.
        quiet.import_quietly()
        try:
            return main(argv)
        except absl_flags.Error as err:  # a value absl parsed but the config cannot take
            print(f"error: {err}", file=sys.stderr)
            return 2

    app.run(quiet_main, flags_parser=parse_flags)


def announce_bundled_model(config) -> None:
    """bin/predict, bin/evaluate and bin/compare_peers with neither --workdir nor --model_path
    use the model the package ships: one line on stderr says which (with none, loading it
    says there is none)."""
    if config.workdir or getattr(config, "model_path", ""):
        return
    from tfgender.evaluation import tflite  # (after the flags: TensorFlow)

    if bundled := tflite.describe_bundled():
        print(f"no --workdir: {bundled}", file=sys.stderr)


# Flags naming files or directories (a list flag: each element). tfgender reads and writes
# them with Python's own file functions: a URL (gs://, s3://, ram://) would be taken for a
# relative local path. ``--weights`` and ``--cache`` also take words (imagenet, disk:PATH).
PATH_FLAGS = ("workdir", "data_dir", "out_dir", "output_dir", "init_checkpoint", "images_dir",
              "output", "output_json", "model_path", "summary_dir", "annotate", "adience_folds",
              "journal_dir", "weights", "cache", "inputs", "labels")


def parse_flags(argv: list[str]) -> list[str]:
    """absl's flag parsing, with a bad value as one ``error:`` line and exit status 2."""
    try:
        rest = flags.FLAGS(expand_flagfiles(argv))
        for check in PARSED_CHECKS:
            check()
    except (absl_flags.Error, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    for name in PATH_FLAGS:
        value = flags.FLAGS[name].value if name in flags.FLAGS else None
        values = value if isinstance(value, list) else [value]
        url = next((v for v in values if isinstance(v, str) and "://" in v), None)
        if url is not None:
            print(f"error: flag --{name}={url}: object-store paths (scheme://) are not "
                  "supported; use a local or mounted path", file=sys.stderr)
            sys.exit(2)
    return rest
