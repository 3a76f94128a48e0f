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
    from tfgender.data import adience, readers, sample
    from tfgender.evaluation import detect

    assert set(readers._READERS) == set(choices.SOURCES)
    assert sample.FORMATS == choices.SAMPLE_FORMATS
    assert tuple(adience.IMAGE_SETS) == choices.ADIENCE_IMAGE_SETS
    assert tuple(detect.DETECTORS) == choices.DETECTORS
    assert detect.DEFAULT_DETECTOR == config.PredictConfig.detector


def test_a_field_of_a_type_without_a_flag_is_refused():
    from tfgender.flags.common import define_config_flags

    @dataclasses.dataclass(frozen=True)
    class Odd:
        mapping: dict = config.opt(config.REQUIRED, "A mapping.")

    with pytest.raises(TypeError, match="mapping: no flag for a field of type"):
        define_config_flags(Odd)
