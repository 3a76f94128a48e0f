"""Flags of bin/make_sample_data and bin/convert_tfrecords."""

from __future__ import annotations

from tfgender.config import TABLE_FIELDS, ConvertConfig, SampleDataConfig
from tfgender.flags.common import FLAGS, add_parsed_check, config_from_flags, define_config_flags


# --------------------------------------------------------------------------- sample data
def define_sample_data_flags() -> None:
    define_config_flags(SampleDataConfig)


def sample_data_config_from_flags() -> SampleDataConfig:
    return config_from_flags(SampleDataConfig)


# --------------------------------------------------------------------------- conversion
def define_convert_flags() -> None:
    define_config_flags(ConvertConfig)
    add_parsed_check(_check_convert)


def _check_convert() -> None:
    """--data_dir is required, except by a table (--labels), whose paths start at its folder;
    the table flags apply to --source=table only."""
    if FLAGS.source == "table":
        if not FLAGS.labels:
            raise ValueError("flag --labels: --source=table needs --labels=TABLE (a .csv, .tsv "
                             "or .parquet file of image paths and labels)")
        return
    if not FLAGS.data_dir:
        raise ValueError(f"flag --data_dir must have a value (--source={FLAGS.source})")
    for name in TABLE_FIELDS:
        if FLAGS[name].value != FLAGS[name].default:
            raise ValueError(f"flag --{name}: only --source=table takes it, not "
                             f"--source={FLAGS.source}")


def convert_config_from_flags() -> ConvertConfig:
    return config_from_flags(ConvertConfig)
