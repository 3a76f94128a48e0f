"""Tests of scale-out: multi-worker bin/train clusters, the tf.data service, mirrored replicas.

Everything runs on 127.0.0.1 with ports chosen at run time; every subprocess has a deadline
and is killed when a test ends.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import time

import numpy as np
import pytest
import tensorflow as tf

from tfgender import models
from tfgender.input import service as data_service
from tfgender.training import distribute

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN = os.path.join(REPO, "bin", "train")
DATA_SERVICE = os.path.join(REPO, "bin", "data_service")
SMOKE = os.path.join(REPO, "configs", "smoke.flags")
DEADLINE = 240  # seconds any one subprocess may run
DIGEST = re.compile(r"final weights sha256 ([0-9a-f]{64})")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _Proc:
    """A subprocess whose stdout and stderr go to files (no pipe can fill up and block it)."""

    def __init__(self, args, log_prefix, env=None):
        self.out_path, self.err_path = f"{log_prefix}.out", f"{log_prefix}.err"
        with open(self.out_path, "w") as out, open(self.err_path, "w") as err:
            self.popen = subprocess.Popen(args, stdout=out, stderr=err,
                                          env={**os.environ, **(env or {})})

    @property
    def stdout(self) -> str:
        return open(self.out_path).read()

    @property
    def stderr(self) -> str:
        return open(self.err_path).read()

    def wait(self, timeout=DEADLINE) -> int:
        return self.popen.wait(timeout=timeout)

    def wait_for(self, text: str, timeout=DEADLINE) -> None:
        deadline = time.time() + timeout
        while text not in self.stdout:
            assert self.popen.poll() is None, f"exited before {text!r}: {self.stderr[-3000:]}"
            assert time.time() < deadline, f"no {text!r} after {timeout} s"
            time.sleep(0.2)

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait()


@contextlib.contextmanager
def _killed_at_exit(procs: list):
    try:
        yield procs
    finally:
        for proc in procs:
            proc.kill()


def _start_cluster(procs: list, tmp_path, name: str, args: list, num_workers: int = 2) -> list:
    """Starts one bin/train process per worker, each with its own TF_CONFIG."""
    cluster = {"worker": [f"127.0.0.1:{_free_port()}" for _ in range(num_workers)]}
    workers = []
    for index in range(num_workers):
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        workers.append(_Proc([TRAIN, *args, "--distribution=multi_worker"],
                             tmp_path / f"{name}-{index}", env={"TF_CONFIG": tf_config}))
    procs.extend(workers)
    return workers


def _digest(proc: _Proc) -> str:
    found = DIGEST.findall(proc.stderr)
    assert len(found) == 1, proc.stderr[-3000:]
    return found[0]


def _checkpoint_digest(workdir, image_size=64) -> str:
    """The weights digest of the model in ``workdir``'s latest checkpoint (smoke.flags model)."""
    model = models.build_model("levi_hassner", image_size)
    latest = tf.train.latest_checkpoint(os.path.join(workdir, "checkpoints"))
    tf.train.Checkpoint(model=model).restore(latest).expect_partial()
    return distribute.weights_digest(model.weights)


def _smoke(sample_records, workdir, *extra) -> list:
    return [f"--flagfile={SMOKE}", f"--data_dir={sample_records}", f"--workdir={workdir}",
            *extra]


@pytest.mark.slow
def test_a_killed_worker_fails_the_run_clearly_and_the_cluster_resumes_in_sync(sample_records,
                                                                               tmp_path):
    workdir = tmp_path / "run"
    args = _smoke(sample_records, workdir, "--epochs=6", "--steps_per_epoch=2",
                  "--summary_images=0")
    with _killed_at_exit([]) as procs:
        chief, other = _start_cluster(procs, tmp_path, "first", args)
        chief.wait_for("epoch 1/6")  # printed after the epoch's checkpoint is written
        killed_at = time.time()
        other.kill()
        assert chief.wait(timeout=120) == 2, chief.stderr[-3000:]
        assert time.time() - killed_at < 90, "the lost worker was noticed too late"
    assert "error: lost contact with a peer worker" in chief.stderr
    assert "restart every worker with the same command to resume" in chief.stderr
    assert not (workdir / "summary.json").exists()
    step = int(tf.train.latest_checkpoint(str(workdir / "checkpoints")).rsplit("-", 1)[1])
    assert 2 <= step < 12

    with _killed_at_exit([]) as procs:
        workers = _start_cluster(procs, tmp_path, "rerun", args)
        for worker in workers:
            assert worker.wait() == 0, worker.stderr[-3000:]
    for worker in workers:
        # Both restore the chief's checkpoint (the other worker's own files were throwaway).
        assert f"Resumed from step {step}" in worker.stdout
    # The two workers trained in sync, and only the chief keeps files.
    digests = {_digest(worker) for worker in workers}
    assert len(digests) == 1, "the workers ended with different weights"
    summary = json.load(open(workdir / "summary.json"))
    assert summary["steps"] == 12 and summary["resumed_from_step"] == step
    assert summary["replicas"] == 2 and summary["weights_sha256"] in digests
    # What the chief saved is what every worker held at the end.
    assert _checkpoint_digest(workdir) in digests
    # The other worker's checkpoints went to a temporary directory, removed at the end.
    assert not [name for name in os.listdir(workdir) if name.startswith(".worker")]
    for worker in workers:
        assert "epoch 6/6" in worker.stdout


@pytest.mark.slow
def test_data_service_dispatcher_and_two_workers_feed_training(sample_records, tmp_path):
    port = _free_port()
    with _killed_at_exit([]) as procs:
        dispatcher = _Proc([DATA_SERVICE, "--role=dispatcher", f"--port={port}"],
                           tmp_path / "dispatcher")
        procs.append(dispatcher)
        workers = [_Proc([DATA_SERVICE, "--role=worker", "--worker_address=127.0.0.1",
                          f"--dispatcher_address=127.0.0.1:{port}"], tmp_path / f"tfdata-{i}")
                   for i in range(2)]
        procs.extend(workers)
        dispatcher.wait_for(f"serving on port {port}")
        dispatcher.wait_for("dispatcher: 2 worker(s) registered")
        trainer = _Proc([TRAIN, *_smoke(sample_records, tmp_path / "run",
                                        f"--data_service_address=grpc://127.0.0.1:{port}")],
                        tmp_path / "train")
        procs.append(trainer)
        assert trainer.wait() == 0, trainer.stderr[-3000:]
        # Each tf.data worker received a task of the trainer's job: data went through both.
        for worker in workers:
            worker.wait_for("worker: 1 task(s) running", timeout=30)
        assert all(proc.popen.poll() is None for proc in [dispatcher, *workers])
    summary = json.load(open(tmp_path / "run" / "summary.json"))
    assert summary["steps"] == 4 and np.isfinite(summary["final"]["train"]["loss"])


def _checkpoint_values(workdir) -> dict:
    """Every saved value: weights (saved under the optimizer), slots, step, seed states."""
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(workdir / "checkpoints")))
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()
            if name != "_CHECKPOINTABLE_OBJECT_GRAPH"}


@pytest.mark.slow
def test_mirrored_on_two_logical_cpus_matches_one_device(sample_records, tmp_path):
    # No randomness that depends on the replica: no flips, rotation, brightness, dropout, and
    # the cached images are the model size (a random crop of the same size is the identity).
    same = ["--deterministic", "--noflip", "--max_rotation=0", "--brightness=",
            "--cache_image_size=64", "--dropout=0,0,0", "--summary_images=0"]
    with _killed_at_exit([]) as procs:
        single = _Proc([TRAIN, *_smoke(sample_records, tmp_path / "single", *same)],
                       tmp_path / "single")
        mirrored = _Proc([TRAIN, *_smoke(sample_records, tmp_path / "mirrored", *same,
                                         "--distribution=mirrored", "--num_cpu_devices=2")],
                         tmp_path / "mirrored")
        procs.extend([single, mirrored])
        for proc in procs:
            assert proc.wait() == 0, proc.stderr[-3000:]
    assert "distribution: mirrored with 2 replica(s) on" in mirrored.stderr
    assert "device:CPU:1" in mirrored.stderr
    assert json.load(open(tmp_path / "mirrored" / "summary.json"))["replicas"] == 2
    one = json.load(open(tmp_path / "single" / "history.json"))
    two = json.load(open(tmp_path / "mirrored" / "history.json"))
    for a, b in zip(one, two, strict=True):
        assert b["train"]["loss"] == pytest.approx(a["train"]["loss"], rel=1e-4)
        assert b["eval"]["loss"] == pytest.approx(a["eval"]["loss"], rel=1e-4)
    want, got = _checkpoint_values(tmp_path / "single"), _checkpoint_values(tmp_path / "mirrored")
    assert set(want) == set(got) and want
    for name in want:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-3, atol=1e-5, err_msg=name)


def test_cpu_devices_cannot_change_once_tensorflow_is_initialised():
    tf.config.list_logical_devices("CPU")  # initialises the runtime in this process
    with pytest.raises(ValueError, match="already initialised"):
        distribute.set_cpu_devices(len(tf.config.list_logical_devices("CPU")) + 1)


def test_a_data_service_worker_needs_a_dispatcher():
    with pytest.raises(ValueError, match="dispatcher_address"):
        data_service.start_worker("")
