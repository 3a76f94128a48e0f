"""Every flagfile in configs/ parses into a TrainConfig and names its own command first."""

from __future__ import annotations

import glob
import os

import pytest
from absl import flags

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
    assert config.batch_size > 0 and config.epochs > 0


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


def test_flagfile_errors_name_the_file(tmp_path):
    from tfgender.flags.common import expand_flagfiles

    loop = tmp_path / "loop.flags"
    loop.write_text(f"# a comment\n--flagfile={loop}\n")
    with pytest.raises(flags.Error, match=f"loop.flags: {loop} includes itself"):
        expand_flagfiles(["prog", f"--flagfile={loop}"])
    (tmp_path / "a.flags").write_text("--epochs=3\n--flagfile=missing.flags\n")
    with pytest.raises(flags.Error, match="flag --flagfile=missing.flags: cannot read .*"
                       "missing.flags: No such file"):
        expand_flagfiles(["prog", f"--flagfile={tmp_path / 'a.flags'}"])
    (tmp_path / "b.flags").write_text("--epochs=3\n\n// comment\n--batch_size=4\n")
    assert expand_flagfiles(["prog", "--flagfile", str(tmp_path / "b.flags"), "--epochs=5"]) \
        == ["prog", "--epochs=3", "--batch_size=4", "--epochs=5"]
