"""Flags of bin/make_sample_data and bin/convert_tfrecords."""

from __future__ import annotations

from tfgender.config import ConvertConfig, SampleDataConfig
from tfgender.flags.common import config_from_flags, define_config_flags


# --------------------------------------------------------------------------- sample data
def define_sample_data_flags() -> None:
    define_config_flags(SampleDataConfig)


def sample_data_config_from_flags() -> SampleDataConfig:
    return config_from_flags(SampleDataConfig)


# --------------------------------------------------------------------------- conversion
def define_convert_flags() -> None:
    define_config_flags(ConvertConfig)


def convert_config_from_flags() -> ConvertConfig:
    return config_from_flags(ConvertConfig)
