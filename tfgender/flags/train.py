"""Flags of bin/train, and of the programs that add to them (bin/cross_validate, bin/sweep)."""

from __future__ import annotations

from absl import flags

from tfgender.config import CrossValidateConfig, TrainConfig, check_train
from tfgender.flags.common import (
    FLAGS,
    add_parsed_check,
    config_from_flags,
    define_config_flags,
)


# --------------------------------------------------------------------------- training
def define_train_flags(check: bool = True) -> None:
    """A flag per ``TrainConfig`` field, and ``--workdir`` (an argument, not a setting).

    Args:
        check: refuse, once parsed, what ``config.check_train`` refuses; bin/sweep checks
            each trial's config instead (its ``--param`` may change the model).
    """
    define_config_flags(TrainConfig)
    flags.DEFINE_string("workdir", None, "Run directory: checkpoints, TensorBoard, summary.",
                        required=True)
    if check:
        add_parsed_check(lambda: check_train(train_config_from_flags()))


def train_config_from_flags() -> TrainConfig:
    return config_from_flags(TrainConfig)


# --------------------------------------------------------------------------- cross-validation
def define_cross_validate_flags() -> None:
    """Flags of ``bin/cross_validate`` beyond the training flags (``define_train_flags``)."""
    define_config_flags(CrossValidateConfig)


def cross_validate_options_from_flags() -> CrossValidateConfig:
    """``cross_validate.cross_validate``'s options beyond the TrainConfig."""
    return config_from_flags(CrossValidateConfig)


# --------------------------------------------------------------------------- sweep
def define_sweep_flags() -> None:
    """Flags of ``bin/sweep`` beyond the training flags (``define_train_flags``)."""
    flags.DEFINE_multi_string(
        "param", [], "A training flag to search over, repeatable: NAME=V1,V2 (grid values or "
        "random choices); list flags separate values with ';' and elements with ',' or '/' "
        "(head_units=512/512/512;1024/512/256); random search also takes "
        "NAME=uniform:LOW:HIGH or NAME=loguniform:LOW:HIGH.")
    flags.DEFINE_enum("search", "grid", ["grid", "random"],
                      "grid: every combination of the values; random: --max_trials draws.")
    flags.DEFINE_integer("max_trials", 0, "Budget of trials; 0: the whole grid (random search "
                         "needs a budget). Raising it on a rerun adds trials.", lower_bound=0)
    flags.DEFINE_integer("sweep_seed", 0, "Seed of the random search's draws (--seed stays the "
                         "training seed of every trial).", lower_bound=0)
    add_parsed_check(_check_sweep_base)


def _check_sweep_base() -> None:
    """The base config's checks, except those a ``--param`` may settle: each trial's config is
    checked before the first trial starts (``sweep.run_sweep``)."""
    swept = {spec.partition("=")[0].strip().lstrip("-") for spec in FLAGS.param}
    try:
        check_train(train_config_from_flags())
    except ValueError as err:  # settled by a swept flag the message names, or the model
        if "model" not in swept and not any(f"--{name}" in str(err) for name in swept):
            raise



def sweep_options_from_flags() -> dict:
    """Keyword arguments of ``sweep.run_sweep`` beyond the base config and directory."""
    return {"search": FLAGS.search, "max_trials": FLAGS.max_trials, "seed": FLAGS.sweep_seed}
