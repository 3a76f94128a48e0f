"""bin/train stopped and rerun: a killed run and a signalled run resume to identical weights.

Apart from tests/test_train.py so that the two pytest workers share the training tests.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import numpy as np
import pytest
import tensorflow as tf

from tfgender.evaluation import predict

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN = os.path.join(REPO, "bin", "train")
SMOKE = os.path.join(REPO, "configs", "smoke.flags")


def _run_cli(*args, timeout=600):
    return subprocess.run([TRAIN, *args], capture_output=True, text=True, timeout=timeout)


_SIGNAL_ARGS = [f"--flagfile={SMOKE}", "--deterministic", "--epochs=4", "--steps_per_epoch=3",
                "--keep_checkpoints=10", "--model=levi_hassner"]


def _checkpoint_values(workdir) -> dict:
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(workdir / "checkpoints")))
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()
            if "save_counter" not in name}


@pytest.fixture(scope="module")
def clean_deterministic_run(sample_records, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("clean") / "run"
    proc = _run_cli(*_SIGNAL_ARGS, f"--data_dir={sample_records}", f"--workdir={workdir}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return workdir


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_both_signals_are_recorded_the_same_way_and_the_old_handlers_come_back(signum):
    # What tells SIGINT from SIGTERM is only this: the end to end run below sends SIGTERM.
    from tfgender.training import interrupt

    before = signal.getsignal(signum)
    with interrupt.stop_signals() as stop:
        os.kill(os.getpid(), signum)
        time.sleep(0.01)  # Python runs the handler between bytecodes
        assert stop["signum"] == signum
        os.kill(os.getpid(), signal.SIGTERM if signum == signal.SIGINT else signal.SIGINT)
        time.sleep(0.01)
        assert stop["signum"] == signum  # the first one counts
    assert signal.getsignal(signum) is before
    stopped = interrupt.Interrupted(signum, 7, "ckpts")
    assert stopped.exit_code == 128 + signum
    assert str(stopped).startswith(f"interrupted ({signal.Signals(signum).name}) at step 7")


@pytest.mark.slow
@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143)])
def test_a_signal_mid_epoch_saves_that_step_and_the_rerun_ends_identical(
        sample_records, clean_deterministic_run, tmp_path, signum, code):
    args = [*_SIGNAL_ARGS, f"--data_dir={sample_records}", f"--workdir={tmp_path / 'run'}"]
    running = subprocess.Popen([TRAIN, *args], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while not (tmp_path / "run" / "checkpoints" / "checkpoint").exists():  # epoch 1 saved
        assert running.poll() is None and time.time() < deadline, "run ended before the signal"
        time.sleep(0.01)
    running.send_signal(signum)
    _, stderr = running.communicate(timeout=300)
    assert running.returncode == code, stderr[-3000:]
    assert "Traceback" not in stderr
    line = next(x for x in stderr.splitlines() if x.startswith("interrupted"))
    step = int(line.split(" at step ")[1].split(";")[0])
    assert 3 < step < 12 and step % 3, line  # inside an epoch, not at its end
    assert "rerun the same command to resume" in line
    assert tf.train.latest_checkpoint(str(tmp_path / "run" / "checkpoints")).endswith(
        f"ckpt-{step}")
    # The stopped run has no summary yet; the config it wrote at its start rebuilds its model.
    assert not (tmp_path / "run" / "summary.json").exists()
    loaded = predict.load_model(workdir=str(tmp_path / "run"), checkpoint="latest")
    assert loaded.source.endswith(f"ckpt-{step}") and loaded.name == "levi_hassner"
    proc = _run_cli(*args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"Resumed from step {step}" in proc.stdout + proc.stderr
    want, got = _checkpoint_values(clean_deterministic_run), _checkpoint_values(tmp_path / "run")
    for name in want:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)


@pytest.mark.slow
def test_killed_run_resumes_and_ends_with_identical_weights(sample_records, clean_deterministic_run,
                                                            tmp_path):
    # The clean run's flags and a checkpoint every 2 steps, which changes when it saves and
    # nothing it computes.
    args = [*_SIGNAL_ARGS, f"--data_dir={sample_records}", "--checkpoint_every_steps=2"]

    killed = tmp_path / "killed"
    running = subprocess.Popen([TRAIN, *args, f"--workdir={killed}"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not (killed / "checkpoints" / "checkpoint").exists():
        assert running.poll() is None and time.time() < deadline, "run ended before the kill"
        time.sleep(0.01)
    os.kill(running.pid, signal.SIGKILL)
    running.wait()
    assert not (killed / "summary.json").exists(), "the run finished before it was killed"
    saved_before = set(os.listdir(killed / "checkpoints"))
    first_step = int(tf.train.latest_checkpoint(str(killed / "checkpoints")).rsplit("-", 1)[1])

    proc = _run_cli(*args, f"--workdir={killed}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"Resumed from step {first_step}" in proc.stdout + proc.stderr
    assert saved_before <= set(os.listdir(killed / "checkpoints"))  # nothing lost
    assert json.load(open(killed / "summary.json"))["steps"] == 12
    want, got = _checkpoint_values(clean_deterministic_run), _checkpoint_values(killed)
    assert set(want) == set(got)
    for name in want:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)
