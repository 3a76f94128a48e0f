"""Flags of bin/evaluate, bin/predict, bin/export and bin/compare_peers."""

from __future__ import annotations

from absl import flags

from tfgender.config import ComparePeersConfig, EvaluateConfig, ExportConfig, PredictConfig
from tfgender.flags.common import (
    FLAGS,
    add_parsed_check,
    config_from_flags,
    define_config_flags,
    ints,
)


# --------------------------------------------------------------------------- evaluation
def define_evaluate_flags() -> None:
    """A flag per ``EvaluateConfig`` field, and ``--fold`` (a shorthand for ``--folds``)."""
    define_config_flags(EvaluateConfig)
    flags.DEFINE_integer("fold", -1, "One Adience fold to evaluate: shorthand for --folds=N; "
                         "-1: none.", lower_bound=-1)
    add_parsed_check(evaluate_config_from_flags)


def evaluate_config_from_flags() -> EvaluateConfig:
    folds = ints("folds") or ((FLAGS.fold,) if FLAGS.fold >= 0 else ())
    return config_from_flags(EvaluateConfig, folds=folds)


# --------------------------------------------------------------------------- prediction
def define_predict_flags() -> None:
    define_config_flags(PredictConfig)


def predict_config_from_flags(extra_inputs=()) -> PredictConfig:
    return config_from_flags(PredictConfig,
                              inputs=tuple(FLAGS.inputs) + tuple(extra_inputs))


# --------------------------------------------------------------------------- export
def define_export_flags() -> None:
    define_config_flags(ExportConfig)  # --workdir and --output required


def export_config_from_flags() -> ExportConfig:
    return config_from_flags(ExportConfig)


# --------------------------------------------------------------------------- peer comparison
def define_compare_peers_flags() -> None:
    define_config_flags(ComparePeersConfig)


def compare_peers_config_from_flags() -> ComparePeersConfig:
    return config_from_flags(ComparePeersConfig)
