"""Tests of experiments/cross_validate.py and bin/cross_validate on a tiny Adience-format set."""

from __future__ import annotations

import json
import math
import os
import subprocess

import numpy as np
import pytest
import tensorflow as tf

from tfgender.config import ConvertConfig, CrossValidateConfig, SampleDataConfig, TrainConfig
from tfgender.experiments import cross_validate

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CROSS_VALIDATE = os.path.join(REPO, "bin", "cross_validate")
SMOKE = os.path.join(REPO, "configs", "smoke.flags")



@pytest.fixture(scope="module")
def adience_records(tmp_path_factory) -> str:
    """60 drawn Adience-format faces at 48 px in five subject-exclusive folds, converted."""
    from tfgender.data import convert, sample

    root = tmp_path_factory.mktemp("adience_cv")
    sample.make_sample_data(SampleDataConfig(format="adience", out_dir=str(root / "raw"),
                                             num_images=60, image_size=48, seed=0))
    convert.convert(ConvertConfig(source="adience", data_dir=str(root / "raw"),
                                  out_dir=str(root / "records"), num_shards=1, progress=False))
    return str(root / "records")


def _tiny(data_dir, **kw) -> TrainConfig:
    base = dict(data_dir=data_dir, model="levi_hassner", image_size=40, cache_image_size=48,
                batch_size=4, epochs=1, steps_per_epoch=1, precision="float32",
                jit_compile="false", cache="memory", dropout=(0.1,),
                summary_images=0, progress=False)
    base.update(kw)
    return TrainConfig(**base)


def test_fold_plan_rotates_the_validation_fold():
    assert cross_validate.fold_plan((0, 1, 2, 3, 4), 4) == {
        "train_folds": (1, 2, 3), "val_fold": 0, "test_fold": 4}
    assert cross_validate.fold_plan((0, 1, 2, 3, 4), 1)["train_folds"] == (0, 3, 4)
    vals = [cross_validate.fold_plan(range(5), k)["val_fold"] for k in range(5)]
    assert sorted(vals) == list(range(5))


def test_mean_and_stderr_use_the_sample_standard_deviation():
    mean, stderr = cross_validate.mean_and_stderr([0.5, 0.7, 0.9, None])
    assert mean == pytest.approx(0.7)
    assert stderr == pytest.approx(np.std([0.5, 0.7, 0.9], ddof=1) / math.sqrt(3))
    assert cross_validate.mean_and_stderr([0.4]) == (0.4, None)
    assert cross_validate.mean_and_stderr([None]) == (None, None)


@pytest.mark.slow
def test_three_folds_then_a_rerun_skips_them(adience_records, tmp_path, capsys):
    workdir = tmp_path / "cv"
    results = cross_validate.cross_validate(_tiny(adience_records), str(workdir),
                                            CrossValidateConfig(folds=(0, 2, 4), eval_batch_size=8))
    manifest = json.load(open(os.path.join(adience_records, "manifest.json")))
    fold_counts = manifest["counts"]["fold"]
    assert results["all_folds"] == [0, 1, 2, 3, 4]
    assert [r["fold"] for r in results["folds"]] == [0, 2, 4]
    for r in results["folds"]:
        k = r["fold"]
        assert r["num_examples"] == fold_counts[str(k)]
        summary = json.load(open(workdir / f"fold_{k}" / "summary.json"))
        train_folds = set(summary["config"]["train_folds"])
        val_folds = set(summary["config"]["eval_folds"])
        assert val_folds == {(k + 1) % 5}
        assert train_folds | val_folds | {k} == {0, 1, 2, 3, 4}
        assert not train_folds & val_folds and k not in train_folds | val_folds
        assert summary["steps"] == 1
        saved = json.load(open(workdir / f"fold_{k}" / "test_metrics.json"))
        assert saved["accuracy"] == r["accuracy"] and saved["val_fold"] == (k + 1) % 5
        assert 0.0 <= r["accuracy"] <= 1.0 and r["loss"] > 0
    for metric in ("accuracy", "loss"):
        values = [r[metric] for r in results["folds"]]
        assert results["mean"][metric] == pytest.approx(np.mean(values))
        assert results["stderr"][metric] == pytest.approx(
            np.std(values, ddof=1) / math.sqrt(len(values)))
    aucs = [r["auc"] for r in results["folds"] if r["auc"] is not None]
    if aucs:
        assert results["mean"]["auc"] == pytest.approx(np.mean(aucs))
    on_disk = json.load(open(workdir / "cross_validation.json"))
    assert on_disk["mean"] == results["mean"] and on_disk["stderr"] == results["stderr"]
    out = capsys.readouterr().out
    assert "| mean ± s.e. |" in out and f"{results['mean']['accuracy']:.4f} ± " in out

    # A finished fold is not touched again; a missing one is run.
    stamps = {p: os.stat(p).st_mtime_ns for k in (0, 2, 4)
              for p in (workdir / f"fold_{k}" / "test_metrics.json",
                        workdir / f"fold_{k}" / "summary.json")}
    os.remove(workdir / "fold_4" / "test_metrics.json")
    again = cross_validate.cross_validate(_tiny(adience_records), str(workdir),
                                          CrossValidateConfig(folds=(0, 2, 4), eval_batch_size=8))
    out = capsys.readouterr().out
    assert "fold 0 already finished" in out and "fold 2 already finished" in out
    assert "fold 4 already finished" not in out
    for k in (0, 2):
        for name in ("test_metrics.json", "summary.json"):
            path = workdir / f"fold_{k}" / name
            assert os.stat(path).st_mtime_ns == stamps[path]
    assert [r["accuracy"] for r in again["folds"][:2]] == \
        [r["accuracy"] for r in results["folds"][:2]]
    # Fold 4 resumed from its final checkpoint: no further training step, same best model.
    assert again["folds"][2]["steps"] == 1
    assert again["folds"][2]["accuracy"] == pytest.approx(results["folds"][2]["accuracy"])


def test_each_round_fine_tunes_from_the_pretrained_run(adience_records, tmp_path):
    from tfgender import models
    from tfgender.evaluation import predict
    from tfgender.training import loop

    def base(workdir, checkpoint):
        loaded = predict.load_model(workdir=str(workdir), checkpoint=checkpoint)
        return [w.numpy() for layer in models.base_layers(loaded.model) for w in layer.weights]

    pretrain_dir = tmp_path / "pretrain"
    loop.train_and_evaluate(_tiny(adience_records, train_folds=(0, 1, 2), eval_folds=(3,)),
                             str(pretrain_dir))
    pretrained = base(pretrain_dir, "latest")
    finetune = _tiny(adience_records, epochs=2, freeze_base_epochs=1,
                     init_checkpoint=str(pretrain_dir), fine_tune_learning_rate=1e-5)
    results = cross_validate.cross_validate(finetune, str(tmp_path / "cv"),
                                            CrossValidateConfig(folds=(2,), eval_batch_size=8))
    (r,) = results["folds"]
    assert (r["fold"], r["train_folds"], r["val_fold"]) == (2, [0, 1, 4], 3)
    fold_dir = tmp_path / "cv" / "fold_2"
    summary = json.load(open(fold_dir / "summary.json"))
    assert summary["config"]["init_checkpoint"] == str(pretrain_dir) and summary["steps"] == 2
    frozen = base(fold_dir, str(fold_dir / "checkpoints" / "ckpt-1"))
    assert all(np.array_equal(a, b) for a, b in zip(frozen, pretrained, strict=True))
    trained = base(fold_dir, str(fold_dir / "checkpoints" / "ckpt-2"))
    assert not all(np.array_equal(a, b) for a, b in zip(trained, pretrained, strict=True))
    assert results["mean"]["accuracy"] == r["accuracy"]


def test_too_few_folds_is_a_clear_error(sample_records, tmp_path):
    with pytest.raises(cross_validate.CrossValidationError, match="at least 3"):
        cross_validate.cross_validate(_tiny(sample_records), str(tmp_path / "cv"))


def test_unknown_fold_is_rejected(adience_records, tmp_path):
    with pytest.raises(cross_validate.CrossValidationError, match="dataset's folds"):
        cross_validate.cross_validate(_tiny(adience_records), str(tmp_path / "cv"),
                                      CrossValidateConfig(folds=(7,)))


def test_bin_cross_validate_reports_an_error_without_folds(sample_records, tmp_path):
    proc = subprocess.run([CROSS_VALIDATE, f"--flagfile={SMOKE}", f"--data_dir={sample_records}",
                           f"--workdir={tmp_path / 'cv'}", "--folds=0,1,2"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "error:" in proc.stderr and "at least 3" in proc.stderr


@pytest.mark.slow
def test_bin_cross_validate_on_utkface_converted_with_num_folds(tmp_path):
    """A dataset without folds of its own, given three by --num_folds, cross-validates as is,
    through bin/cross_validate with its own and the training flags."""
    from tfgender.data import convert, sample
    from tfgender.data import records as rec

    sample.make_sample_data(SampleDataConfig(format="utkface", out_dir=str(tmp_path / "raw"),
                                             num_images=48, image_size=72, seed=5))
    records = str(tmp_path / "records")
    convert.convert(ConvertConfig(source="utkface", data_dir=str(tmp_path / "raw"),
                                  out_dir=records, num_folds=3, num_shards=1, progress=False))
    assert cross_validate.manifest_folds(records) == (0, 1, 2)
    workdir = tmp_path / "cv"
    proc = subprocess.run([CROSS_VALIDATE, f"--flagfile={SMOKE}", f"--data_dir={records}",
                           f"--workdir={workdir}", "--steps_per_epoch=1", "--summary_images=0",
                           "--eval_batch_size=8", "--folds=0,1,2", "--batch_size=4"],
                          capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "done: 3 folds" in proc.stdout and "| mean ± s.e. |" in proc.stdout

    results = json.load(open(workdir / "cross_validation.json"))
    assert results["config"]["batch_size"] == 4  # a training flag reaches every fold
    assert results["all_folds"] == [0, 1, 2]
    assert [r["fold"] for r in results["folds"]] == [0, 1, 2]
    groups = {}  # fold -> the groups (UTKFace image ids) its records hold
    for raw in tf.data.TFRecordDataset([str(p) for p in (tmp_path / "records").glob("*.tfrecord")]):
        ex = rec.parse_example(raw)
        groups.setdefault(int(ex[rec.FOLD]), set()).add(ex[rec.GROUP].numpy().decode())
    manifest = json.load(open(os.path.join(records, "manifest.json")))
    for r in results["folds"]:
        k = r["fold"]
        sets = [set(r["train_folds"]), {r["val_fold"]}, {k}]
        assert set.union(*sets) == {0, 1, 2} and sum(map(len, sets)) == 3
        seen = [set().union(*(groups[f] for f in s)) for s in sets]
        assert not (seen[0] & seen[1] or seen[0] & seen[2] or seen[1] & seen[2])
        assert r["num_examples"] == manifest["counts"]["fold"][str(k)]
        assert r["steps"] == 2  # smoke: two epochs of one step
        assert 0.0 <= r["accuracy"] <= 1.0 and np.isfinite(r["loss"])
        # UTKFace's own evaluation slices work on fold-based data too.
        assert set(r["slices"]["fold"]) == {str(k)}
        assert sum(v["count"] for v in r["slices"]["age"].values()) == r["num_examples"]
    for metric in ("accuracy", "loss"):
        values = [r[metric] for r in results["folds"]]
        assert results["mean"][metric] == pytest.approx(np.mean(values))
        assert results["stderr"][metric] == pytest.approx(
            np.std(values, ddof=1) / math.sqrt(3))
