"""What every flags module shares: absl's FLAGS, the flags generated from a config dataclass's
fields, and their conversion back into that dataclass."""

from __future__ import annotations

import dataclasses
import os
import typing

from absl import flags

from tfgender.config import REQUIRED, parse_value

FLAGS = flags.FLAGS

# The flags define_config_flags defines belong to the module that calls it (tfgender.flags.train
# and the others: bin/ programs list those modules' flags in --helpshort), not to this one.
flags.disclaim_key_flags()


# Checks that tie a program's flags together (list lengths, a flag the chosen model does not
# take): cli.parse_flags runs them once the command line is parsed, before TensorFlow loads.
PARSED_CHECKS: list = []


def add_parsed_check(check) -> None:
    """Registers ``check()`` (it reads FLAGS; raises ValueError or flags.Error with one line)."""
    PARSED_CHECKS.append(check)


def define_config_flags(cls, required=None) -> None:
    """Defines one flag per field of the dataclass ``cls``, from the field's type and ``opt``.

    str is a string flag (an enum with ``choices``), int, float and bool their own flags with
    the field's bounds, and ``tuple[...]`` a list flag whose default is the default's elements
    as strings (``config_from_flags`` converts them back). A field without a default has the
    flag default None (or its ``flag_default``).

    Args:
        cls: a config dataclass of ``tfgender.config``, its fields made with ``opt``.
        required: the flags to mark required, in this order (absl reports missing ones so);
            None: the fields without a default or a ``flag_default``, in field order.
    """
    hints = typing.get_type_hints(cls)
    fields = dataclasses.fields(cls)
    for field in fields:
        _define_field_flag(field, hints[field.name])
    if required is None:
        required = [f.name for f in fields if f.default is REQUIRED
                    and f.metadata["flag_default"] is REQUIRED]
    for name in required:
        flags.mark_flag_as_required(name)
    # List elements of the field's type: checked at parse time (absl takes any strings).
    add_parsed_check(lambda: config_from_flags(cls))


def _define_field_flag(field: dataclasses.Field, hint) -> None:
    meta = field.metadata
    default = field.default if field.default is not REQUIRED else meta["flag_default"]
    default = None if default is REQUIRED else default
    name, help_text = field.name, meta["help"]
    bounds = {"lower_bound": meta["lower"], "upper_bound": meta["upper"]}
    if typing.get_origin(hint) is tuple:
        flags.DEFINE_list(name, None if default is None else [str(v) for v in default],
                          help_text)
    elif meta["choices"] is not None:
        flags.DEFINE_enum(name, default, list(meta["choices"]), help_text)
    elif hint is bool:
        flags.DEFINE_bool(name, default, help_text)
    elif hint is int:
        flags.DEFINE_integer(name, default, help_text, **bounds)
    elif hint is float:
        flags.DEFINE_float(name, default, help_text, **bounds)
    elif hint is str:
        flags.DEFINE_string(name, default, help_text)
    else:
        raise TypeError(f"{field.name}: no flag for a field of type {hint}")


def config_from_flags(cls, **overrides):
    """Builds the dataclass ``cls`` from the flags named like its fields.

    List flags become tuples of the field's element type (``tuple[int, ...]`` -> ints), so
    every config field has exactly one flag and no field can be forgotten in a hand-written
    mapping. ``overrides`` supply fields that are not read from a flag of the same name.

    Raises:
        flags.IllegalFlagValueError: a list element is not of the field's type (the flag
            named); ``cli.run_program`` prints it as one line.
    """
    hints = typing.get_type_hints(cls)
    values = {}
    for field in dataclasses.fields(cls):
        if field.name in overrides:
            continue
        value = FLAGS[field.name].value
        if typing.get_origin(hints[field.name]) is tuple and value is not None:
            text = ",".join(value)  # absl split it on the commas: the same elements again
            try:
                value = parse_value(cls, field.name, text)
            except ValueError as err:
                raise flags.IllegalFlagValueError(f"flag --{field.name}={text}: {err}") from None
        values[field.name] = value
    return cls(**values, **overrides)


def config_from_flagfile(cls, flagfile: str, **overrides):
    """The dataclass ``cls`` from a flagfile, for Python code: what ``--flagfile=`` gives a
    program (included files, the field's reading of each value), then ``overrides``.

    Args:
        cls: a config dataclass (``config.TrainConfig``, ...).
        flagfile: a path, or a shipped flagfile's name (``fairface_mobilenet_v2``).
        **overrides: field values, as Python values; they win over the file's.

    Raises:
        ValueError: the file cannot be read, a line names no field of ``cls``, or its value
            is not one the field takes (the file and the flag named); a field without a
            default that neither gives.
    """
    try:
        argv = expand_flagfiles([f"--flagfile={flagfile}"])
    except flags.Error as err:
        raise ValueError(str(err)) from None
    hints = typing.get_type_hints(cls)
    values = {}
    for arg in argv:
        name, has_value, text = arg.lstrip("-").partition("=")
        if not has_value:  # a bool: --flip / --noflip, as absl reads them
            if hints.get(name) is not bool and hints.get(name[2:]) is bool \
                    and name.startswith("no"):
                name, text = name[2:], "false"
            elif hints.get(name) is bool:
                text = "true"
            else:
                raise ValueError(f"{flagfile}: --{name} needs a value")
        if name not in hints:
            raise ValueError(f"{flagfile}: --{name} is not an option of {cls.__name__}")
        try:
            values[name] = parse_value(cls, name, text)
        except ValueError as err:
            raise ValueError(f"{flagfile}: --{name}={text}: {err}") from None
    # Lists as the fields hold them (tuples), so a config compares and checks the same.
    values.update({name: tuple(value) if isinstance(value, list) else value
                   for name, value in overrides.items()})
    missing = [f.name for f in dataclasses.fields(cls) if f.name not in values
               and f.default is REQUIRED and f.default_factory is REQUIRED]
    if missing:
        raise ValueError(f"{cls.__name__} needs {', '.join(missing)} (the flagfile "
                         f"{flagfile} does not give it)")
    return cls(**values)


def ints(name: str) -> tuple[int, ...]:
    """The list flag ``name``'s elements as ints.

    Raises:
        flags.IllegalFlagValueError: an element is no int (the flag named, as
            ``config_from_flags`` names one).
    """
    values = FLAGS[name].value or []
    try:
        return tuple(int(v) for v in values)
    except ValueError:
        raise flags.IllegalFlagValueError(
            f"flag --{name}={','.join(values)}: give int values separated by commas") from None


def expand_flagfiles(argv: list[str], _including: tuple[str, ...] = ()) -> list[str]:
    """``argv`` with every ``--flagfile=PATH`` replaced by the flags in that file, recursively.

    absl looks a nested ``--flagfile`` up from the working directory only, so the shipped
    flagfiles (which include ``configs/base.flags``) worked only from the repository root.
    Here a relative path is looked up from the working directory first (absl's rule, so
    nothing that worked changes), then from the including file's folder and each folder
    above it. Lines are absl's: blank lines and ``#`` or ``//`` comments are skipped.

    Raises:
        flags.Error: a flagfile that cannot be read, or one that includes itself.
    """
    out, args = [], list(argv)
    while args:
        arg = args.pop(0)
        name, _, value = arg.lstrip("-").partition("=")
        if not arg.startswith("-") or name != "flagfile":
            out.append(arg)
            continue
        if not _:  # "--flagfile PATH"
            if not args:
                raise flags.Error("flag --flagfile needs a path")
            value = args.pop(0)
        path = _find_flagfile(value, _including[-1] if _including else "")
        if path in _including:
            raise flags.Error(f"flag --flagfile={value}: {path} includes itself")
        try:
            with open(path) as f:
                lines = [line.strip() for line in f]
        except OSError as err:
            raise flags.Error(f"flag --flagfile={value}: cannot read {path}: "
                              f"{err.strerror or err} (shipped flagfiles: "
                              f"{', '.join(presets())})") from None
        flag_lines = [line for line in lines if line.startswith("-")]
        out += expand_flagfiles(flag_lines, (*_including, path))
    return out


# The shipped flagfiles (the repository's configs/ links here): installed with the package, so
# --flagfile=smoke (or configs/smoke.flags, as the usage texts write it) works from anywhere.
PRESETS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                           "configs")


def presets() -> list[str]:
    """The names of the shipped flagfiles (``--flagfile=NAME``)."""
    return sorted(name[: -len(".flags")] for name in os.listdir(PRESETS_DIR)
                  if name.endswith(".flags"))


def _find_flagfile(value: str, including: str) -> str:
    """Where ``--flagfile=value`` is: the file as given (from the working directory, absl's
    rule), else from the including file's folder and each folder above it, else the shipped
    flagfile of that name (``smoke``, ``smoke.flags`` or ``configs/smoke.flags``; a folder of
    that name, such as the demo's ``demo/``, does not hide it)."""
    if os.path.isabs(value) or os.path.isfile(value):
        return os.path.abspath(value)
    folder = os.path.dirname(including)
    while including:
        candidate = os.path.join(folder, value)
        if os.path.isfile(candidate):
            return candidate
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    # A shipped flagfile: a bare name, or configs/NAME as the usage texts write it (another
    # folder is the user's own path, and its absence is an error, not a preset).
    folder, name = os.path.split(os.path.normpath(value))
    if folder in ("", "configs"):
        preset = os.path.join(PRESETS_DIR, name if name.endswith(".flags") else name + ".flags")
        if os.path.isfile(preset):
            return preset
    return os.path.abspath(value)  # not found anywhere: the error names it as given
