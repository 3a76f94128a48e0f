"""Every program's flags are its config's fields; every flagfile in configs/ parses into a
TrainConfig, says what it sets, and names its own command first."""

from __future__ import annotations

import dataclasses
import glob
import json
import os
import subprocess
import sys
import typing

import pytest
from absl import flags

from tfgender import config as tf_config
from tfgender import flags as tf_flags

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = sorted(glob.glob(os.path.join(REPO, "configs", "*.flags")))


@pytest.fixture()
def flag_values(train_flag_values):
    """bin/train's flags (conftest.train_flag_values)."""
    return train_flag_values


@pytest.mark.parametrize("path", CONFIGS, ids=os.path.basename)
def test_config_parses_and_starts_with_its_command(path, flag_values, monkeypatch):
    first = open(path).readline()
    assert first.startswith("# bin/") or first.startswith("# Included"), first
    monkeypatch.chdir(REPO)  # flagfiles include configs/base.flags relative to the repo
    flag_values.unparse_flags()
    flag_values(["prog", f"--flagfile={path}", "--data_dir=d", "--workdir=w"])
    config = tf_flags.train_config_from_flags()
    tf_config.check_train(config)  # what bin/train's parser refuses, none of the shipped files
    # Each --name=value line of the file itself reaches the config (later lines win, as in absl).
    own = {}
    for line in open(path):
        name, sep, value = line.strip().partition("=")
        if sep and name.startswith("--") and name != "--flagfile":
            own[name[2:]] = value
    for name, value in own.items():
        flag_values[name].parse(value)  # the same text through the flag's own parser
        assert getattr(config, name) == _as_field(TRAIN_HINTS[name], flag_values[name].value), \
            (path, name)


TRAIN_HINTS = typing.get_type_hints(tf_config.TrainConfig)

# Which config each program's flags are turned into (tfgender.flags.*_config_from_flags).
PROGRAM_CONFIGS = {
    "train": tf_config.TrainConfig, "sweep": tf_config.TrainConfig,
    "cross_validate": tf_config.TrainConfig, "evaluate": tf_config.EvaluateConfig,
    "predict": tf_config.PredictConfig, "export": tf_config.ExportConfig,
    "compare_peers": tf_config.ComparePeersConfig, "convert_tfrecords": tf_config.ConvertConfig,
    "make_sample_data": tf_config.SampleDataConfig,
    "epoch_time_study": tf_config.EpochStudyConfig, "profile_run": tf_config.EpochStudyConfig,
    "data_service": tf_config.DataServiceConfig,
}
# bin/cross_validate reads a second config: its own options beside the training ones.
EXTRA_CONFIGS = {"cross_validate": tf_config.CrossValidateConfig}
# Flags a program reads beside its config: the run directory (an argument of
# train_and_evaluate, not a setting), the study drivers' options (flags.*_options_from_flags),
# and evaluate's --fold (parsed into the config's folds tuple by evaluate_config_from_flags).
PROGRAM_OPTIONS = {
    "train": {"workdir"},
    "sweep": {"workdir", "param", "search", "max_trials", "sweep_seed"},
    "cross_validate": {"workdir"},
    "evaluate": {"fold"},
}

_DUMP_FLAGS = """
import importlib, json, sys
from absl import flags
from tfgender import flags as tf_flags
out = {}
for program in sys.argv[1:]:
    importlib.import_module("tfgender.cli." + program)
    by_module = flags.FLAGS.flags_by_module_dict()
    defined = [f for m in tf_flags.DEFINING_MODULES for f in by_module.get(m, [])]
    out[program] = {f.name: f.default for f in defined}
    for f in defined:
        delattr(flags.FLAGS, f.name)  # the next program defines its own
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def program_flags():
    """{program: {flag: default}} of every tfgender.cli program, each defined on its own."""
    done = subprocess.run([sys.executable, "-c", _DUMP_FLAGS, *PROGRAM_CONFIGS], cwd=REPO,
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def _as_field(hint, value):
    """A flag value as config_from_flags stores it: list flags become typed tuples."""
    if typing.get_origin(hint) is tuple:
        return tuple(typing.get_args(hint)[0](v) for v in value)
    return value


def test_every_programs_flags_and_defaults_are_unchanged(program_flags):
    """tests/program_flags.json was written from the code before the issue-14 relayout. A flag
    added, removed or given a new default on purpose is a change to write into it too."""
    with open(os.path.join(REPO, "tests", "program_flags.json")) as f:
        recorded = json.load(f)
    for program, defaults in recorded.items():
        assert program_flags[program] == defaults, program
    assert set(program_flags) == set(recorded)


def test_every_program_is_mapped_to_its_config():
    cli = os.path.join(REPO, "tfgender", "cli")
    programs = {name[:-3] for name in os.listdir(cli)
                if name.endswith(".py") and name not in ("__init__.py", "quiet.py")}
    assert programs == set(PROGRAM_CONFIGS)


@pytest.mark.parametrize("program", sorted(PROGRAM_CONFIGS))
def test_a_programs_flags_are_its_configs_fields_with_the_same_defaults(program,
                                                                        program_flags):
    cls = PROGRAM_CONFIGS[program]
    defaults = program_flags[program]
    classes = (cls, *([EXTRA_CONFIGS[program]] if program in EXTRA_CONFIGS else []))
    hints = {k: v for c in classes for k, v in typing.get_type_hints(c).items()}
    fields = {f.name: f for c in classes for f in dataclasses.fields(c)}
    overridden = {"folds"} if cls is tf_config.EvaluateConfig else set()
    assert set(defaults) - set(fields) - PROGRAM_OPTIONS.get(program, set()) == set()
    assert set(fields) - set(defaults) - overridden == set()
    for name, field in fields.items():
        if name in overridden or field.default is dataclasses.MISSING:
            continue  # required: the flag has no meaningful default (checked when parsed)
        flag_default = defaults[name]
        if flag_default is not None:
            flag_default = _as_field(hints[name], flag_default)
        assert flag_default == field.default, (program, name)


def test_study_settings_are_as_published(flag_values, monkeypatch):
    monkeypatch.chdir(REPO)
    flag_values.unparse_flags()
    flag_values(["prog", "--flagfile=configs/mobilenet_v2_tuned.flags", "--data_dir=d",
                 "--workdir=w"])
    config = tf_flags.train_config_from_flags()
    assert (config.batch_size, config.head_units, config.learning_rate, config.weight_decay,
            config.dropout) == (64, (512, 512, 512), 5e-4, 1e-3, (0.5, 0.5, 0.0))


@pytest.mark.parametrize("path", CONFIGS, ids=os.path.basename)
def test_a_flagfile_means_the_same_from_any_working_directory(path, flag_values, monkeypatch,
                                                              tmp_path):
    from tfgender.flags.common import expand_flagfiles

    monkeypatch.chdir(REPO)
    flag_values.unparse_flags()
    flag_values(["prog", f"--flagfile={os.path.relpath(path)}", "--data_dir=d", "--workdir=w"])
    from_repo = tf_flags.train_config_from_flags()
    monkeypatch.chdir(tmp_path)  # an installed user's folder: absl alone cannot find includes
    flag_values.unparse_flags()
    flag_values(expand_flagfiles(["prog", f"--flagfile={path}", "--data_dir=d",
                                  "--workdir=w"]))
    assert tf_flags.train_config_from_flags() == from_repo


@pytest.mark.parametrize("name", ["smoke", "smoke.flags", "configs/smoke.flags"])
def test_a_shipped_flagfile_by_its_name_from_any_folder(name, monkeypatch, tmp_path):
    # An installed user has no configs/ folder: the presets are package data (setup.cfg).
    from tfgender.flags.common import expand_flagfiles, presets

    monkeypatch.chdir(tmp_path)
    with open(os.path.join(REPO, "configs", "smoke.flags")) as f:
        want = [line.strip() for line in f if line.startswith("-")]
    assert expand_flagfiles(["prog", f"--flagfile={name}"]) == ["prog", *want]
    assert {os.path.basename(p)[: -len(".flags")] for p in CONFIGS} == set(presets())
    # A file of that name in the working directory comes first (absl's rule); a folder of
    # that name does not hide the preset; another folder's missing file is no preset.
    (tmp_path / "smoke").mkdir()
    assert expand_flagfiles(["prog", "--flagfile=smoke"]) == ["prog", *want]
    (tmp_path / "smoke.flags").write_text("--epochs=3\n")
    assert expand_flagfiles(["prog", "--flagfile=smoke.flags"]) == ["prog", "--epochs=3"]
    with pytest.raises(flags.Error, match="myexp/smoke.flags: No such file"):
        expand_flagfiles(["prog", "--flagfile=myexp/smoke.flags"])


def test_flagfile_errors_name_the_file(tmp_path):
    from tfgender.flags.common import expand_flagfiles

    loop = tmp_path / "loop.flags"
    loop.write_text(f"# a comment\n--flagfile={loop}\n")
    with pytest.raises(flags.Error, match=f"loop.flags: {loop} includes itself"):
        expand_flagfiles(["prog", f"--flagfile={loop}"])
    (tmp_path / "a.flags").write_text("--epochs=3\n--flagfile=missing.flags\n")
    with pytest.raises(flags.Error, match="flag --flagfile=missing.flags: cannot read .*"
                       r"missing.flags: No such file or directory \(shipped flagfiles: .*smoke"):
        expand_flagfiles(["prog", f"--flagfile={tmp_path / 'a.flags'}"])
    (tmp_path / "b.flags").write_text("--epochs=3\n\n// comment\n--batch_size=4\n")
    assert expand_flagfiles(["prog", "--flagfile", str(tmp_path / "b.flags"), "--epochs=5"]) \
        == ["prog", "--epochs=3", "--batch_size=4", "--epochs=5"]


@pytest.mark.parametrize("program", sorted(p for p, cls in PROGRAM_CONFIGS.items() if any(
    f.default is tf_config.REQUIRED and f.metadata.get("flag_default") is tf_config.REQUIRED
    for f in dataclasses.fields(cls))))
def test_a_program_started_without_its_required_flags_names_them_in_error_lines(program):
    # bin/export once went on without --workdir and ended in a TypeError traceback.
    required = [f.name for f in dataclasses.fields(PROGRAM_CONFIGS[program])
                if f.default is tf_config.REQUIRED
                and f.metadata.get("flag_default") is tf_config.REQUIRED]
    proc = subprocess.run([os.path.join(REPO, "bin", program)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: ")
    for name in required:
        assert f"--{name}=None" in proc.stderr, (name, proc.stderr)


@pytest.mark.parametrize("path", CONFIGS, ids=os.path.basename)
def test_python_reads_a_flagfile_as_bin_train_does(path, flag_values, monkeypatch, tmp_path):
    from tfgender.flags import config_from_flagfile

    monkeypatch.chdir(REPO)
    flag_values.unparse_flags()
    flag_values(["prog", f"--flagfile={os.path.relpath(path)}", "--data_dir=d", "--workdir=w"])
    want = tf_flags.train_config_from_flags()
    monkeypatch.chdir(tmp_path)
    name = os.path.basename(path)[: -len(".flags")]
    assert config_from_flagfile(tf_config.TrainConfig, name, data_dir="d") == want
    assert config_from_flagfile(tf_config.TrainConfig, name, data_dir="d",
                                epochs=3).epochs == 3


def test_python_names_a_flagfiles_bad_line(tmp_path):
    from tfgender.flags import config_from_flagfile

    bad = tmp_path / "bad.flags"
    bad.write_text("--flagfile=smoke\n--batch_size=zero\n")
    with pytest.raises(ValueError, match=r"bad.flags: --batch_size=zero: "):
        config_from_flagfile(tf_config.TrainConfig, str(bad), data_dir="d")
    bad.write_text("--workdir=runs/x\n")
    with pytest.raises(ValueError, match="--workdir is not an option of TrainConfig"):
        config_from_flagfile(tf_config.TrainConfig, str(bad), data_dir="d")
    with pytest.raises(ValueError, match="TrainConfig needs data_dir"):
        config_from_flagfile(tf_config.TrainConfig, "smoke")
    with pytest.raises(ValueError, match="cannot read"):
        config_from_flagfile(tf_config.TrainConfig, str(tmp_path / "none.flags"), data_dir="d")


def test_python_reads_bools_as_absl_does_and_lists_as_tuples(tmp_path):
    from tfgender.flags import config_from_flagfile

    path = tmp_path / "b.flags"
    path.write_text("--flagfile=smoke\n--noflip\n--deterministic\n")
    config = config_from_flagfile(tf_config.TrainConfig, str(path), data_dir="d",
                                  head_units=[64, 32])
    assert config.flip is False and config.deterministic is True
    assert config.head_units == (64, 32)
    path.write_text("--nocache\n")  # --cache is a string: absl refuses the bool form too
    with pytest.raises(ValueError, match="--nocache"):
        config_from_flagfile(tf_config.TrainConfig, str(path), data_dir="d")
