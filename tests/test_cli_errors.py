"""Ordinary mistakes on the command line: one ``error:`` line naming the flag, exit status 2."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


# One program start per kind of refusal proves the exit status and the console a user sees;
# the other flags go through the same parser in this process (below).
@pytest.mark.parametrize("program, flag, others", [
    ("convert_tfrecords", "--image_size=-5", []), ("convert_tfrecords", "--num_workers=0", []),
    ("convert_tfrecords", "--test_fraction=1.5", []), ("train", "--batch_size=0", []),
    ("convert_tfrecords", "--out_dir=s3://b/data", ["--source=utkface", "--data_dir=d"]),
    ("evaluate", "--data_dir=ram://data", ["--workdir=run"]),
    ("evaluate", "--folds=x", ["--data_dir=data"]),  # a list read outside the config fields
])
def test_a_bad_flag_is_one_line_naming_it_and_exit_status_2(program, flag, others):
    proc = subprocess.run([os.path.join(REPO, "bin", program), flag, *others],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = _error_lines(proc.stderr)
    name = flag.split("=")[0]
    assert len(lines) == 1 and name in lines[0], proc.stderr[-2000:]
    if "://" in flag:
        assert flag in lines[0] and "not supported" in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


PROGRAMS = sorted(name[:-3] for name in os.listdir(os.path.join(REPO, "tfgender", "cli"))
                  if name.endswith(".py") and name != "__init__.py")


@pytest.mark.parametrize("program", PROGRAMS)
def test_every_program_checks_its_flags_before_importing_tensorflow(program):
    # TensorFlow's import takes seconds: a mistyped flag must not wait for it.
    code = ("import sys\n"
            f"from tfgender.cli import {program} as program\n"
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules\n"
            "sys.argv = ['prog', '--no_such_flag=1']\n"
            "try:\n"
            "    program.run()\n"
            "except SystemExit as exited:\n"
            "    print(exited.code, 'tensorflow' in sys.modules)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, cwd=REPO, env={**os.environ, "PYTHONPATH": REPO})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["2", "False"], (proc.stdout, proc.stderr[-2000:])
    assert _error_lines(proc.stderr) and "no_such_flag" in proc.stderr


@pytest.mark.parametrize("flag", ["--learning_rate=-1", "--epochs=0", "--cache_image_size=-3",
                                  "--shuffle_buffer=-1", "--checkpoint_every_steps=-5",
                                  "--max_non_finite_steps=-1", "--early_stopping_patience=-1",
                                  "--workdir=gs://bucket/run", "--init_checkpoint=gs://b/run",
                                  "--weights=gs://b/base.h5", "--cache=disk:s3://b/cache"])
def test_bin_trains_parser_refuses_in_one_line(train_flag_values, capsys, flag):
    from tfgender.cli import parse_flags

    with pytest.raises(SystemExit) as exited:
        parse_flags(["train", "--data_dir=data", "--workdir=run", flag])
    assert exited.value.code == 2
    lines = _error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and flag.split("=")[0] in lines[0], lines
    if "://" in flag:
        assert flag in lines[0] and "not supported" in lines[0], lines


@pytest.mark.parametrize("flag", ["--crop_scale=0.8,x", "--head_units=512,wide"])
def test_a_list_flag_with_a_non_number_is_one_line_naming_it(train_flag_values, capsys, flag):
    # absl takes any strings for a list flag: the parser converts them to the field's type.
    from tfgender.cli import parse_flags

    with pytest.raises(SystemExit) as exited:
        parse_flags(["train", "--data_dir=data", "--workdir=run", flag])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    lines = _error_lines(err)
    assert len(lines) == 1 and flag in lines[0] and "values separated by commas" in lines[0]
    assert "Traceback" not in err


def test_the_readme_says_object_store_paths_are_not_supported():
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


def test_train_helpshort_answers_a_first_days_questions():
    # Issue 32: what --helpshort left users guessing at.
    proc = subprocess.run([os.path.join(REPO, "bin", "train"), "--helpshort"],
                          capture_output=True, text=True, timeout=120)
    text = " ".join(proc.stdout.split())  # absl wraps the lines
    for answer in ("auto: memory when the decoded images and the shuffle buffer fit",  # --cache
                   "<relu|relu6|gelu|", "Levi & Hassner's fc6 and fc7 are ReLU",  # --activation
                   "at most one per --head_units width",  # --dropout
                   "read from $KERAS_HOME/models, by default ~/.keras/models",  # --weights
                   "the path of a .h5 / .weights.h5 file",
                   "levi_hassner 227, resnet50 and mobilenet_v2 224",  # --image_size
                   "adds weight_decay * sum(w**2) to the loss",  # --weight_decay
                   "any source converted with --num_folds",  # --train_folds
                   "the name of a flagfile shipped with tfgender"):  # --flagfile
        assert answer in text, answer
