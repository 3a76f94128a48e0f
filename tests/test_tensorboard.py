"""TensorBoard serves a short run: scalars, HParams, images and the profile, over its HTTP API."""

from __future__ import annotations

import gzip
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from tfgender.config import TrainConfig
from tfgender.training import loop


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, body: dict | None = None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        body = response.read()
        if response.headers.get("Content-Encoding") == "gzip":  # the profile plugin's data
            body = gzip.decompress(body)
        return json.loads(body)


@pytest.fixture(scope="module")
def served_run(sample_records, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("tb") / "run"
    config = TrainConfig(data_dir=sample_records, model="levi_hassner", image_size=40,
                         cache_image_size=48, batch_size=8, epochs=2, steps_per_epoch=4,
                         precision="float32", jit_compile="false", cache="memory",
                         summary_images=2, progress=False, profile_steps=(1, 3))
    loop.train_and_evaluate(config, str(workdir))
    tensorboard = os.path.join(os.path.dirname(sys.executable), "tensorboard")
    if not os.path.exists(tensorboard):
        pytest.skip("tensorboard is not installed beside this Python")
    port = _free_port()
    server = subprocess.Popen([tensorboard, f"--logdir={workdir}", f"--port={port}",
                               "--host=127.0.0.1", "--load_fast=false"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            _get(base + "/data/plugins_listing")
            break
        except (urllib.error.URLError, ConnectionError):
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                pytest.skip(f"tensorboard did not start: {server.stderr.read()[-300:]!r}")
            time.sleep(1)
    yield base
    server.kill()
    server.wait(timeout=30)


def _wait_for(fetch, ok, seconds=60):
    """TensorBoard loads event files in the background: poll until ``ok(value)``."""
    deadline = time.monotonic() + seconds
    while True:
        value = fetch()
        if ok(value) or time.monotonic() > deadline:
            return value
        time.sleep(1)


@pytest.mark.slow
def test_tensorboard_serves_the_runs_scalars_hparams_images_and_profile(served_run):
    plugins = _get(served_run + "/data/plugins_listing")
    assert {"scalars", "images", "hparams"} <= set(plugins)
    scalars = _wait_for(lambda: _get(served_run + "/data/plugin/scalars/tags"),
                        lambda tags: any("eval/accuracy" in t for t in tags.values()))
    assert any("eval/accuracy" in tags for tags in scalars.values()), scalars
    assert any("train/loss" in tags for tags in scalars.values()), scalars
    # Keras' 200-threshold estimate on training batches is not named as the exact eval AUC.
    assert any("train/auc_estimate" in tags and "train/auc" not in tags
               for tags in scalars.values()), scalars
    assert any("eval/auc" in tags for tags in scalars.values()), scalars
    images = _get(served_run + "/data/plugin/images/tags")
    assert any("train/augmented_inputs" in tags for tags in images.values()), images
    experiment = _get(served_run + "/data/plugin/hparams/experiment", {"experimentName": ""})
    names = {info["name"] for info in experiment["hparamInfos"]}
    # The eight that matter, not sixty flags (TensorBoard lists them alphabetically).
    assert names == {"model", "image_size", "batch_size", "learning_rate", "schedule",
                     "optimizer", "precision", "epochs"}, names
    metrics = [m["name"]["tag"] for m in experiment["metricInfos"]]
    assert "eval/accuracy" in metrics
    profile = next((name for name in plugins if "profile" in name), None)
    assert profile, plugins  # the xprof plugin is installed with the toolkit


def test_the_profile_overview_shows_the_marked_steps_times(served_run):
    # What the profile plugin's Overview page draws: xprof's step-time breakdown of this
    # run's trace, with each profiled step found by its marker (no "No step marker" warning).
    runs = _wait_for(lambda: _get(served_run + "/data/plugin/profile/runs"), bool)
    assert runs, "the profile plugin lists no run"
    run = runs[0]
    query = urllib.parse.urlencode({"run": run, "tag": "overview_page"})
    hosts = _get(served_run + "/data/plugin/profile/hosts?" + query)
    host = hosts[0]["hostname"] if hosts and isinstance(hosts[0], dict) else (hosts or [""])[0]
    query = urllib.parse.urlencode({"run": run, "tag": "overview_page", "host": host})
    overview = _get(served_run + "/data/plugin/profile/data?" + query)
    steps = overview[1]
    assert [row["c"][0]["v"] for row in steps["rows"]] == ["train 1", "train 2"], steps["rows"]
    assert float(steps["p"]["steptime_ms_average"]) > 0, steps["p"]
    assert not any("No step marker" in json.dumps(part) for part in overview), overview[-1]
