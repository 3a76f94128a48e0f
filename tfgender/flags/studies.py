"""Flags of bin/epoch_time_study and bin/data_service."""

from __future__ import annotations

from tfgender.config import DataServiceConfig, EpochStudyConfig
from tfgender.flags.common import config_from_flags, define_config_flags


# --------------------------------------------------------------------------- epoch-time study
def define_epoch_study_flags() -> None:
    define_config_flags(EpochStudyConfig)


def epoch_study_config_from_flags() -> EpochStudyConfig:
    return config_from_flags(EpochStudyConfig)


# --------------------------------------------------------------------------- tf.data service
def define_data_service_flags() -> None:
    define_config_flags(DataServiceConfig)


def data_service_config_from_flags() -> DataServiceConfig:
    return config_from_flags(DataServiceConfig)
