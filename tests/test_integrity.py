"""Shard integrity: a shard damaged after conversion is refused before the first step, named."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
import tensorflow as tf

from tfgender.config import EvaluateConfig, TrainConfig
from tfgender.data import records as rec
from tfgender.data import shards
from tfgender.evaluation import evaluate
from tfgender.input import pipeline as input_pipeline
from tfgender.training import loop

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _copy(records, tmp_path):
    out = tmp_path / "records"
    # Without what earlier tests' runs remembered of the shared fixture's shards.
    shutil.copytree(records, out, ignore=shutil.ignore_patterns(shards.VERIFIED))
    return str(out)


def _train_shard(data_dir) -> str:
    return sorted(s["file"] for s in rec.load_manifest(data_dir)["shards"]
                  if s["split"] == "train")[0]


def _flip_middle(path, keep_mtime=False):
    """Overwrites 16 bytes in the middle of the file with other bytes; the size is unchanged."""
    stat = os.stat(path)
    with open(path, "r+b") as f:
        f.seek(stat.st_size // 2)
        data = f.read(16)
        f.seek(stat.st_size // 2)
        f.write(bytes(b ^ 0x5A for b in data))
    if keep_mtime:
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def _tiny(data_dir, **kw) -> TrainConfig:
    base = dict(data_dir=data_dir, model="levi_hassner", image_size=40, cache_image_size=48,
                batch_size=8, epochs=1, steps_per_epoch=2, precision="float32",
                jit_compile="false", cache="none", summary_images=0, progress=False)
    return TrainConfig(**{**base, **kw})


def test_verified_shards_are_remembered_and_hashed_again_only_when_changed(sample_records,
                                                                           tmp_path):
    data_dir = _copy(sample_records, tmp_path)
    manifest = rec.load_manifest(data_dir)
    assert shards.verify(data_dir, manifest["shards"]) == len(manifest["shards"])
    assert os.path.exists(os.path.join(data_dir, shards.VERIFIED))
    assert shards.verify(data_dir, manifest["shards"]) == 0  # remembered: nothing hashed
    path = os.path.join(data_dir, _train_shard(data_dir))
    os.utime(path, ns=(0, os.stat(path).st_mtime_ns + 10**9))  # touched, content unchanged
    assert shards.verify(data_dir, manifest["shards"]) == 1


def test_a_shard_damaged_after_conversion_is_refused_by_train_and_evaluate(sample_records,
                                                                          tmp_path):
    data_dir = _copy(sample_records, tmp_path)
    workdir = str(tmp_path / "run")
    loop.train_and_evaluate(_tiny(data_dir), workdir)  # verifies and remembers the shards
    name = _train_shard(data_dir)
    _flip_middle(os.path.join(data_dir, name))
    message = f"shard {os.path.join(data_dir, name)} does not match its sha256 in manifest.json"
    with pytest.raises(loop.TrainingError, match=message):
        loop.train_and_evaluate(_tiny(data_dir, epochs=2), workdir)
    with pytest.raises(evaluate.EvaluationError, match=message):
        evaluate.evaluate(EvaluateConfig(workdir=workdir, data_dir=data_dir, split="train",
                                         batch_size=8))


def test_bin_train_says_it_in_one_line(sample_records, tmp_path):
    data_dir = _copy(sample_records, tmp_path)
    name = _train_shard(data_dir)
    _flip_middle(os.path.join(data_dir, name))
    proc = subprocess.run(
        [os.path.join(REPO, "bin", "train"), f"--flagfile={REPO}/configs/smoke.flags",
         f"--data_dir={data_dir}", f"--workdir={tmp_path / 'run'}"],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and name in errors[0] and "sha256" in errors[0], proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr


def test_a_shard_damaged_while_in_use_is_named_when_reading_fails(sample_records, tmp_path):
    data_dir = _copy(sample_records, tmp_path)
    manifest = rec.load_manifest(data_dir)
    shards.verify(data_dir, manifest["shards"])
    name = _train_shard(data_dir)
    _flip_middle(os.path.join(data_dir, name), keep_mtime=True)  # looks unchanged
    dataset = input_pipeline.create_dataset(data_dir, split="train", batch_size=8,
                                            image_size=48, training=False, cache="none")
    with pytest.raises(tf.errors.DataLossError) as caught:
        for _ in dataset:
            pass
    assert name not in caught.value.message  # tf.data's own message names no file
    described = input_pipeline.describe_data_loss(data_dir, caught.value)
    assert name in described and "sha256" in described and "changed while in use" in described


def test_a_missing_or_truncated_shard_is_one_training_error(sample_records, tmp_path):
    data_dir = _copy(sample_records, tmp_path)
    name = _train_shard(data_dir)
    path = os.path.join(data_dir, name)
    data = open(path, "rb").read()
    os.remove(path)
    with pytest.raises(loop.TrainingError, match=f"shard {path} listed in the manifest is "
                       "missing"):
        loop.train_and_evaluate(_tiny(data_dir), str(tmp_path / "run"))
    with open(path, "wb") as f:
        f.write(data[:-5])
    with pytest.raises(loop.TrainingError, match=f"corrupt TFRecord shard {path}: record "
                       "runs past the end"):
        loop.train_and_evaluate(_tiny(data_dir), str(tmp_path / "run"))


def test_atomic_writes_hold_numbers_as_numbers_and_never_share_a_temporary(tmp_path):
    import json as json_lib

    import numpy as np

    from tfgender import files

    path = tmp_path / "out.json"
    files.write_json_atomic(str(path), {"loss": np.float32(0.25), "n": np.int64(3),
                                        "where": tmp_path / "x", "v": np.arange(2)})
    assert json_lib.loads(path.read_text()) == {"loss": 0.25, "n": 3,
                                                "where": str(tmp_path / "x"), "v": [0, 1]}
    assert oct(path.stat().st_mode & 0o777) == oct(0o666 & ~_umask())
    with pytest.raises(TypeError, match="cannot be written as JSON"):
        files.write_json_atomic(str(path), {"bad": object()})
    assert json_lib.loads(path.read_text())["n"] == 3  # the last good file stays
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]  # no temporary left


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
