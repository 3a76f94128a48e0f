"""What every flags module shares: absl's FLAGS and the flags -> dataclass conversion."""

from __future__ import annotations

import dataclasses
import typing

from absl import flags

from tfgender.data.readers import SOURCES  # noqa: F401  (re-exported: one list of sources)

FLAGS = flags.FLAGS



def config_from_flags(cls, **overrides):
    """Builds the dataclass ``cls`` from the flags named like its fields.

    List flags become tuples of the field's element type (``tuple[int, ...]`` -> ints), so
    every config field has exactly one flag and no field can be forgotten in a hand-written
    mapping. ``overrides`` supply fields that are not read from a flag of the same name.
    """
    hints = typing.get_type_hints(cls)
    values = {}
    for field in dataclasses.fields(cls):
        if field.name in overrides:
            continue
        value = FLAGS[field.name].value
        if typing.get_origin(hints[field.name]) is tuple:
            element = typing.get_args(hints[field.name])[0]
            value = tuple(element(v) for v in value)
        values[field.name] = value
    return cls(**values, **overrides)


def ints(values) -> tuple[int, ...]:
    return tuple(int(v) for v in values)
