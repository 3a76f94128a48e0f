"""Ordinary mistakes on the command line: one ``error:`` line naming the flag, exit status 2."""

from __future__ import annotations

import os
import subprocess

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("program, flag", [
    ("convert_tfrecords", "--image_size=-5"), ("convert_tfrecords", "--num_workers=0"),
    ("convert_tfrecords", "--test_fraction=1.5"), ("train", "--batch_size=0"),
    ("train", "--learning_rate=-1"), ("train", "--epochs=0"), ("train", "--cache_image_size=-3"),
])
def test_an_out_of_range_flag_is_one_line_naming_it(program, flag):
    proc = subprocess.run([os.path.join(REPO, "bin", program), flag], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    name = flag.split("=")[0]
    assert len(lines) == 1 and name in lines[0], proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("program, flag, others", [
    ("train", "--workdir=gs://bucket/run", ["--data_dir=data"]),
    ("convert_tfrecords", "--out_dir=s3://b/data", ["--source=utkface", "--data_dir=d"]),
    ("evaluate", "--data_dir=ram://data", ["--workdir=run"]),
])
def test_an_object_store_path_is_refused_in_one_line(program, flag, others):
    proc = subprocess.run([os.path.join(REPO, "bin", program), flag, *others],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and flag in lines[0] and "not supported" in lines[0], proc.stderr
    readme = open(os.path.join(REPO, "README.md")).read()
    assert "gs://` are not supported" in readme.replace("\n", " ")


def test_every_bin_program_is_also_a_console_script():
    import configparser

    parser = configparser.ConfigParser()
    parser.read(os.path.join(REPO, "setup.cfg"))
    scripts = dict(line.split(" = ") for line in
                   parser["options.entry_points"]["console_scripts"].strip().splitlines())
    programs = sorted(os.listdir(os.path.join(REPO, "bin")))
    assert sorted(scripts) == sorted("tfgender-" + p.replace("_", "-") for p in programs)
    for program in programs:
        module, function = scripts["tfgender-" + program.replace("_", "-")].split(":")
        assert module == f"tfgender.cli.{program}" and function == "run"
        # Read, not imported: each program module defines its flags when imported.
        source = open(os.path.join(REPO, "tfgender", "cli", program + ".py")).read()
        assert "\ndef run() -> None:" in source
