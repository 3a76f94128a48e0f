"""The config fields are the one declaration of every flag: each has a help text, its choices
come from tfgender.choices, and the modules that implement an option accept the same names."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from tfgender import choices, config

CONFIGS = [cls for cls in vars(config).values()
           if isinstance(cls, type) and dataclasses.is_dataclass(cls)]


@pytest.mark.parametrize("cls", CONFIGS, ids=lambda cls: cls.__name__)
def test_every_field_says_what_its_flag_says(cls):
    for field in dataclasses.fields(cls):
        meta = field.metadata
        assert meta.get("help"), (cls.__name__, field.name)  # made with config.opt
        if meta["choices"] is not None and field.default is not config.REQUIRED:
            assert field.default in meta["choices"], (cls.__name__, field.name)
        if meta["lower"] is not None and field.default is not config.REQUIRED:
            assert field.default >= meta["lower"], (cls.__name__, field.name)


def test_the_configs_import_neither_absl_nor_tensorflow():
    code = ("import sys, tfgender.config\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('absl', 'tensorflow', 'keras')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "[]"


def test_the_implementing_modules_accept_the_choices():
    from tfgender import models
    from tfgender.data import adience, readers, sample
    from tfgender.evaluation import detect

    assert set(readers._READERS) == set(choices.SOURCES)
    assert sample.FORMATS == choices.SAMPLE_FORMATS
    assert tuple(adience.IMAGE_SETS) == choices.ADIENCE_IMAGE_SETS
    assert tuple(detect.DETECTORS) == choices.DETECTORS
    assert tuple(models.MODELS) == choices.MODELS
    assert detect.DEFAULT_DETECTOR == config.PredictConfig.detector


def test_a_field_of_a_type_without_a_flag_is_refused():
    from tfgender.flags.common import define_config_flags

    @dataclasses.dataclass(frozen=True)
    class Odd:
        mapping: dict = config.opt(config.REQUIRED, "A mapping.")

    with pytest.raises(TypeError, match="mapping: no flag for a field of type"):
        define_config_flags(Odd)


def _text(value) -> str:
    """A value as a command line writes it."""
    if isinstance(value, tuple):
        return ",".join(_text(v) for v in value)
    return str(value).lower() if isinstance(value, bool) else str(value)


@pytest.mark.parametrize("cls", CONFIGS, ids=lambda cls: cls.__name__)
def test_parse_value_reads_back_every_default_as_written(cls):
    for field in dataclasses.fields(cls):
        if field.default is not config.REQUIRED:
            assert config.parse_value(cls, field.name, _text(field.default)) == field.default


@pytest.mark.parametrize("name, text, message", [
    ("batch_size", "x", "'x' is not a valid int"), ("batch_size", "0", "below the minimum 1"),
    ("hue", "0.7", "above the maximum 0.5"), ("learning_rate", "nan", "not a valid float"),
    ("optimizer", "rmsprop", "not one of adam, adamw, sgd"), ("flip", "maybe", "valid bool"),
    ("crop_scale", "0.8,x", "give float values separated by commas")])
def test_parse_value_refuses_what_the_flag_refuses(name, text, message):
    with pytest.raises(ValueError, match=message):
        config.parse_value(config.TrainConfig, name, text)
    assert config.parse_value(config.TrainConfig, "flip", "no") is False
    assert config.parse_value(config.TrainConfig, "head_units", "") == ()
