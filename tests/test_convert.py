"""Tests of tfgender/data/convert.py and bin/convert_tfrecords: round trips, bad input, resume."""

from __future__ import annotations

import glob
import json
import os
import signal
import subprocess
import sys
import time

import fakes
import numpy as np
import pytest
import tensorflow as tf

from tfgender.config import ConvertConfig
from tfgender.data import convert, image_check
from tfgender.data import records as rec
from tfgender.data import shards as shards_lib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_UTK = os.path.join(REPO, "..", "shared", "data", "utkface_sample")


def _config(data_dir, out_dir, **kw) -> ConvertConfig:
    kw.setdefault("progress", False)
    kw.setdefault("source", "utkface")
    return ConvertConfig(data_dir=str(data_dir), out_dir=str(out_dir), **kw)


def _read_records(out_dir) -> list[dict]:
    manifest = rec.load_manifest(str(out_dir))
    files = [os.path.join(out_dir, s["file"]) for s in manifest["shards"]]
    out = []
    for raw in tf.data.TFRecordDataset(files):
        ex = rec.parse_example(raw)
        out.append({k: v.numpy() for k, v in ex.items()})
    return out


def _shard_bytes(out_dir) -> dict[str, bytes]:
    return {os.path.basename(p): open(p, "rb").read()
            for p in sorted(glob.glob(os.path.join(out_dir, "*.tfrecord")))}


def test_round_trip_keeps_bytes_labels_and_ids(tmp_path):
    names = fakes.write_utkface_tree(str(tmp_path / "utk"), 12)
    manifest = convert.convert(_config(tmp_path / "utk", tmp_path / "out", num_shards=2,
                                       test_fraction=0.25, val_fraction=0.25))
    records = _read_records(tmp_path / "out")
    assert manifest["num_records"] == len(records) == 12
    assert manifest["num_skipped"] == 0
    by_id = {r[rec.SOURCE_ID].decode(): r for r in records}
    assert sorted(by_id) == names
    for name, r in by_id.items():
        gender = int(name.split("_")[1])
        assert r[rec.LABEL] == 1 - gender  # UTKFace 0 = male -> label 1
        source = open(tmp_path / "utk" / name, "rb").read()
        assert r[rec.ENCODED] == source  # no --image_size: the original bytes are kept
        pixels = tf.io.decode_jpeg(r[rec.ENCODED]).numpy()
        np.testing.assert_array_equal(pixels, tf.io.decode_jpeg(source).numpy())
        assert (r[rec.HEIGHT], r[rec.WIDTH]) == (32, 32)
        assert r[rec.GROUP].decode() == name.split(".")[0]
    splits = {r[rec.SPLIT].decode() for r in records}
    assert splits == {"train", "val", "test"}
    counts = manifest["counts"]
    assert counts["label"]["1"] + counts["label"]["0"] == 12
    assert sum(counts["split"].values()) == 12
    assert sum(s["num_records"] for s in manifest["shards"]) == 12
    for shard in manifest["shards"]:
        assert shard["sha256"] == shards_lib.file_sha256(str(tmp_path / "out" / shard["file"]))


def test_resize_at_conversion(tmp_path):
    fakes.write_utkface_tree(str(tmp_path / "utk"), 4, size=80)
    convert.convert(_config(tmp_path / "utk", tmp_path / "out", image_size=24,
                            test_fraction=0.0, val_fraction=0.0))
    for r in _read_records(tmp_path / "out"):
        image = tf.io.decode_jpeg(r[rec.ENCODED]).numpy()
        assert image.shape == (24, 24, 3) == (r[rec.HEIGHT], r[rec.WIDTH], 3)


def _write_bad_files(root):
    """One file per bad-input case, each with a valid UTKFace name; returns name -> reason part."""
    good = fakes.jpeg_bytes(32)
    cases = {
        "30_0_0_20170101000000001.jpg.chip.jpg": (b"", "zero-byte"),
        "30_1_0_20170101000000002.jpg.chip.jpg": (good[: len(good) // 2], "truncated"),
        "30_0_1_20170101000000003.jpg.chip.jpg": (b"\xff\xd8\xff\xe0" + os.urandom(300),
                                                  "corrupt"),
        "30_1_1_20170101000000004.jpg.chip.jpg": (b"\x89PNG\r\n\x1a\n" + os.urandom(64),
                                                  "not an image Pillow can read"),
        "30_0_2_20170101000000005.jpg.chip.jpg": (fakes.bomb_jpeg(), "decompression bomb"),
        "30_1_2_20170101000000006.jpg.chip.jpg": (fakes.jpeg_bytes(1),
                                                  "image is 1x1, below --min_image_side=16"),
    }
    for name, (data, _) in cases.items():
        with open(os.path.join(root, name), "wb") as f:
            f.write(data)
    return {name: reason for name, (_, reason) in cases.items()}


def test_bad_images_are_reported_and_skipped(tmp_path, capfd):
    root = tmp_path / "utk"
    fakes.write_utkface_tree(str(root), 6)
    bad = _write_bad_files(str(root))
    manifest = convert.convert(_config(root, tmp_path / "out", max_image_pixels=10_000_000,
                                       max_skipped_fraction=1.0))
    skipped = {s["path"]: s["reason"] for s in manifest["skipped"]}
    assert set(skipped) == set(bad)
    for name, reason in bad.items():
        assert reason in skipped[name] or (reason == "corrupt" and "JPEG" in skipped[name]), (
            name, skipped[name])
    assert manifest["num_records"] == 6
    assert manifest["num_records"] + manifest["num_skipped"] == manifest["num_rows_read"]
    err = capfd.readouterr().err
    for name in bad:
        assert name in err
    assert "converted 6, skipped 6 of 12 rows read" in err


def test_escaping_and_absolute_paths_are_refused(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "outside.jpg").write_bytes(fakes.jpeg_bytes(8))
    with pytest.raises(image_check.ImageCheckError, match="leaves the data directory"):
        image_check.resolve_inside(str(tmp_path / "data"), "../outside.jpg")
    with pytest.raises(image_check.ImageCheckError, match="absolute"):
        image_check.resolve_inside(str(tmp_path / "data"), str(tmp_path / "outside.jpg"))
    os.symlink(tmp_path / "outside.jpg", tmp_path / "data" / "link.jpg")
    with pytest.raises(image_check.ImageCheckError, match="leaves the data directory"):
        image_check.resolve_inside(str(tmp_path / "data"), "link.jpg")


def test_adience_row_escaping_data_dir_is_skipped(tmp_path):
    data = tmp_path / "adience"
    data.mkdir()
    header = ("user_id\toriginal_image\tface_id\tage\tgender\tx\ty\tdx\tdy\ttilt_ang\t"
              "fiducial_yaw_angle\tfiducial_score")
    rows = {0: [("u0", "a.jpg", 1, "m"), ("../../..", "evil.jpg", 2, "f")],
            1: [("u1", "b.jpg", 3, "f"), ("u1", "missing.jpg", 4, "m")]}
    for fold in range(5):
        lines = [header] + [f"{u}\t{img}\t{fid}\t(25, 32)\t{g}\t0\t0\t10\t10\t0\t0\t50"
                            for u, img, fid, g in rows.get(fold, [])]
        (data / f"fold_{fold}_data.txt").write_text("\n".join(lines) + "\n")
    for u, img, fid in (("u0", "a.jpg", 1), ("u1", "b.jpg", 3)):
        (data / "aligned" / u).mkdir(parents=True, exist_ok=True)
        (data / "aligned" / u / f"landmark_aligned_face.{fid}.{img}").write_bytes(
            fakes.jpeg_bytes(16))
    manifest = convert.convert(_config(data, tmp_path / "out", source="adience",
                                       max_skipped_fraction=1.0))
    reasons = {s["path"]: s["reason"] for s in manifest["skipped"]}
    assert manifest["num_records"] == 2
    assert any("leaves the data directory" in r for r in reasons.values())
    assert any(r == "missing file" for r in reasons.values())
    assert {s["fold"] for s in manifest["shards"]} == {0, 1}


def test_output_identical_for_one_and_two_workers(tmp_path):
    fakes.write_utkface_tree(str(tmp_path / "utk"), 16)
    convert.convert(_config(tmp_path / "utk", tmp_path / "w1", num_shards=2, num_workers=1))
    convert.convert(_config(tmp_path / "utk", tmp_path / "w2", num_shards=2, num_workers=2))
    one, two = _shard_bytes(tmp_path / "w1"), _shard_bytes(tmp_path / "w2")
    assert len(one) == 6  # train, val, test x 2 shards
    assert one == two


@pytest.mark.slow
def test_a_worker_that_dies_is_one_error_and_the_same_command_resumes(tmp_path, monkeypatch):
    fakes.write_utkface_tree(str(tmp_path / "utk"), 16)
    config = _config(tmp_path / "utk", tmp_path / "out", num_shards=2, num_workers=2)
    with monkeypatch.context() as patched:
        patched.setattr(convert, "write_shard", fakes.stop_this_process)
        with pytest.raises(convert.ConversionError) as caught:
            convert.convert(config)
    message = str(caught.value)
    assert "\n" not in message and "worker stopped" in message
    assert f"in {tmp_path / 'out'}: run the same command again to resume" in message
    assert not (tmp_path / "out" / convert.MANIFEST).exists()
    convert.convert(config)
    convert.convert(_config(tmp_path / "utk", tmp_path / "one", num_shards=2))
    assert _shard_bytes(tmp_path / "out") == _shard_bytes(tmp_path / "one")


def test_non_empty_out_dir_is_refused_without_overwrite(tmp_path):
    fakes.write_utkface_tree(str(tmp_path / "utk"), 4)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("mine")
    with pytest.raises(convert.ConversionError, match="--overwrite"):
        convert.convert(_config(tmp_path / "utk", tmp_path / "out"))
    convert.convert(_config(tmp_path / "utk", tmp_path / "out", overwrite=True))
    assert (tmp_path / "out" / "notes.txt").read_text() == "mine"  # not ours: left alone
    with pytest.raises(convert.ConversionError, match="complete conversion"):
        convert.convert(_config(tmp_path / "utk", tmp_path / "out"))


def _cli(*args):
    return [os.path.join(REPO, "bin", "convert_tfrecords"), *args]


@pytest.mark.slow
def test_cli_exits_non_zero_above_max_skipped_fraction(tmp_path):
    fakes.write_utkface_tree(str(tmp_path / "utk"), 3)
    (tmp_path / "utk" / "40_0_0_20170101000000009.jpg.chip.jpg").write_bytes(b"")
    args = ["--source=utkface", f"--data_dir={tmp_path / 'utk'}", "--noprogress"]
    proc = subprocess.run(_cli(*args, f"--out_dir={tmp_path / 'a'}",
                               "--max_skipped_fraction=0.1"), capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    assert "error: skipped 1 of 4 rows (25.0%), above --max_skipped_fraction=0.1" in proc.stderr
    # No manifest that looks complete: the failure is recorded beside the kept shards.
    assert not (tmp_path / "a" / convert.MANIFEST).exists()
    failed = json.load(open(tmp_path / "a" / convert.FAILED_MANIFEST))
    assert failed["status"] == "failed" and failed["num_skipped"] == 1
    with pytest.raises(FileNotFoundError, match="its conversion failed"):
        rec.load_manifest(str(tmp_path / "a"))
    # The same command fails the same way; a higher fraction accepts the same shards.
    proc = subprocess.run(_cli(*args, f"--out_dir={tmp_path / 'a'}",
                               "--max_skipped_fraction=0.1"), capture_output=True, text=True)
    assert proc.returncode == 2 and "above --max_skipped_fraction" in proc.stderr
    proc = subprocess.run(_cli(*args, f"--out_dir={tmp_path / 'a'}",
                               "--max_skipped_fraction=0.5"), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "already complete" in proc.stderr
    assert json.load(open(tmp_path / "a" / convert.MANIFEST))["num_skipped"] == 1
    assert not (tmp_path / "a" / convert.FAILED_MANIFEST).exists()


def test_a_corrupt_image_is_one_line_and_a_conversion_of_nothing_fails(tmp_path):
    fakes.write_utkface_tree(str(tmp_path / "utk"), 3)
    first = sorted(os.listdir(tmp_path / "utk"))[0]
    data = (tmp_path / "utk" / first).read_bytes()
    (tmp_path / "utk" / first).write_bytes(data[: len(data) // 2])  # truncated
    args = ["--source=utkface", f"--data_dir={tmp_path / 'utk'}", "--noprogress",
            "--image_size=32", "--max_skipped_fraction=1.0"]
    proc = subprocess.run(_cli(*args, f"--out_dir={tmp_path / 'a'}"), capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr
    # libjpeg's and TensorFlow's own lines about the image (and TensorFlow's at exit) are not
    # shown beside the skip's one line.
    lines = proc.stderr.strip().splitlines()
    assert lines[0].startswith(f"skipped {first}: corrupt or truncated"), proc.stderr
    assert lines[1:] == [f"converted 2, skipped 1 of 3 rows read -> {tmp_path / 'a'}"], lines
    for name in os.listdir(tmp_path / "utk"):
        (tmp_path / "utk" / name).write_bytes(b"")
    # (In this process: bin/convert_tfrecords prints a ConversionError as its error line.)
    with pytest.raises(convert.ConversionError, match="converted nothing: 3 of 3 rows read "
                       "were skipped"):
        convert.convert(_config(tmp_path / "utk", tmp_path / "b", max_skipped_fraction=1.0))
    assert not (tmp_path / "b" / convert.MANIFEST).exists()


@pytest.mark.slow
def test_killed_conversion_reruns_to_identical_shards(tmp_path):
    fakes.write_utkface_tree(str(tmp_path / "utk"), 160, size=160)
    args = ["--source=utkface", f"--data_dir={tmp_path / 'utk'}", "--num_shards=4",
            "--image_size=96", "--noprogress", "--test_fraction=0", "--val_fraction=0"]
    clean = tmp_path / "clean"
    # Two workers write the same shards as one; each spawned worker imports TensorFlow
    # quietly (data/convert_worker.py), so the console has none of its start-up notices.
    done = subprocess.run(_cli(*args, f"--out_dir={clean}", "--num_workers=2"), check=True,
                          capture_output=True, text=True)
    for noise in ("cuInit", "oneDNN custom operations", "cuda drivers"):
        assert noise not in done.stderr, done.stderr[-2000:]

    killed = tmp_path / "killed"
    proc = subprocess.Popen(_cli(*args, f"--out_dir={killed}"), stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not glob.glob(str(killed / ".progress" / "*.tfrecord.json")):
        assert proc.poll() is None and time.time() < deadline, "conversion ended before the kill"
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (killed / "manifest.json").exists(), "the run finished before it was killed"
    proc = subprocess.run(_cli(*args, f"--out_dir={killed}"), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "Resuming: " in proc.stderr
    assert _shard_bytes(killed) == _shard_bytes(clean)
    assert not glob.glob(str(killed / ".*.tmp"))


@pytest.mark.skipif(not os.path.isdir(SHARED_UTK), reason="../shared/data/utkface_sample absent")
def test_real_utkface_sample_converts_completely(tmp_path):
    manifest = convert.convert(_config(SHARED_UTK, tmp_path / "out", num_workers=2))
    assert manifest["num_records"] == 2000
    assert manifest["num_skipped"] == 0
    assert manifest["counts"]["label"] == {"0": 1000, "1": 1000}
    assert set(manifest["counts"]["split"]) == {"train", "val", "test"}


def test_manifest_missing_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        rec.load_manifest(str(tmp_path))


def _sample(fmt, root, num_images, seed=0):
    from tfgender.config import SampleDataConfig
    from tfgender.data import sample

    sample.make_sample_data(SampleDataConfig(format=fmt, out_dir=str(root), num_images=num_images,
                                             image_size=32, seed=seed))
    return root


def _fold_of_each_group(records) -> dict[str, set[int]]:
    folds = {}
    for r in records:
        folds.setdefault(r[rec.GROUP].decode(), set()).add(int(r[rec.FOLD]))
    return folds


def test_utkface_num_folds_writes_group_exclusive_folds(tmp_path):
    raw = _sample("utkface", tmp_path / "utk", 30)
    manifest = convert.convert(_config(raw, tmp_path / "out", num_folds=3, num_shards=1))
    records = _read_records(tmp_path / "out")
    # All rows present, each once.
    on_disk = sorted(p.name for p in raw.rglob("*.jpg"))
    assert sorted(os.path.basename(r[rec.SOURCE_ID].decode()) for r in records) == on_disk
    assert manifest["num_records"] == len(records) == 30
    # Folds 0..2, named and recorded like Adience's, with the split cleared.
    assert sorted(s["file"] for s in manifest["shards"]) == [
        f"fold{k}-00000-of-00001.tfrecord" for k in range(3)]
    assert {int(s["fold"]) for s in manifest["shards"]} == {0, 1, 2}
    assert all(s["split"] == "" for s in manifest["shards"])
    assert {int(r[rec.FOLD]) for r in records} == {0, 1, 2}
    assert {r[rec.SPLIT] for r in records} == {b""}
    counts = manifest["counts"]["fold"]
    assert sorted(counts) == ["0", "1", "2"] and sum(counts.values()) == 30
    assert all(v == 10 for v in counts.values())  # one image per group: dealt evenly
    for shard in manifest["shards"]:
        assert counts[str(shard["fold"])] == shard["num_records"]
    # Every group (for UTKFace, the image id) in exactly one fold.
    assert all(len(folds) == 1 for folds in _fold_of_each_group(records).values())


def test_celeba_num_folds_are_identity_exclusive(tmp_path):
    raw = _sample("celeba", tmp_path / "celeba", 40)
    identities = dict(line.split() for line in (raw / "identity_CelebA.txt").read_text().split(
        "\n") if line.strip())
    convert.convert(_config(raw, tmp_path / "out", source="celeba", num_folds=3, num_shards=1))
    records = _read_records(tmp_path / "out")
    assert len(records) == 40 and {r[rec.SPLIT] for r in records} == {b""}  # partition replaced
    groups = _fold_of_each_group(records)
    assert sorted(groups) == sorted(set(identities.values()))  # groups are the identities
    assert len(groups) < 40  # several images per identity, so exclusivity means something
    assert all(len(folds) == 1 for folds in groups.values())
    assert {k for folds in groups.values() for k in folds} == {0, 1, 2}


@pytest.mark.parametrize("source, num_folds, message", [
    ("adience", 3, "Adience keeps the benchmark's 5"),
    ("utkface", 1, "at least 2"),
    ("utkface", -2, "at least 2"),
    ("utkface", 99, "exceeds the 6 groups"),
])
def test_bad_num_folds_is_a_clear_error(tmp_path, source, num_folds, message):
    fakes.write_utkface_tree(str(tmp_path / "utk"), 6)
    with pytest.raises(convert.ConversionError, match=message):
        convert.convert(_config(tmp_path / "utk", tmp_path / "out", source=source,
                                num_folds=num_folds))
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_adience_num_folds_five_keeps_its_folds(tmp_path):
    raw = _sample("adience", tmp_path / "adience", 20)
    plain = convert.convert(_config(raw, tmp_path / "a", source="adience", num_shards=1))
    five = convert.convert(_config(raw, tmp_path / "b", source="adience", num_shards=1,
                                   num_folds=5))
    assert five["counts"] == plain["counts"]
    assert _shard_bytes(tmp_path / "a") == _shard_bytes(tmp_path / "b")


def test_num_folds_is_part_of_the_conversion_fingerprint(tmp_path, monkeypatch, capfd):
    fakes.write_utkface_tree(str(tmp_path / "utk"), 12)
    written = []
    real_write_shard = convert.write_shard

    def write_one_then_die(task, config, tick=None):
        if written:
            raise KeyboardInterrupt  # killed after the first shard
        written.append(task.name)
        return real_write_shard(task, config, tick)

    monkeypatch.setattr(convert, "write_shard", write_one_then_die)
    with pytest.raises(KeyboardInterrupt):
        convert.convert(_config(tmp_path / "utk", tmp_path / "out", num_folds=3))
    monkeypatch.setattr(convert, "write_shard", real_write_shard)
    # Other folds than the interrupted run's: refused, not mixed in.
    with pytest.raises(convert.ConversionError, match="different settings"):
        convert.convert(_config(tmp_path / "utk", tmp_path / "out", num_folds=4))
    capfd.readouterr()
    resumed = convert.convert(_config(tmp_path / "utk", tmp_path / "out", num_folds=3))
    assert "Resuming: 1 of 3 shards already complete" in capfd.readouterr().err
    assert sorted(resumed["counts"]["fold"]) == ["0", "1", "2"]
    replaced = convert.convert(_config(tmp_path / "utk", tmp_path / "out", num_folds=4,
                                       overwrite=True))
    assert sorted(replaced["counts"]["fold"]) == ["0", "1", "2", "3"]
    assert sorted(os.listdir(tmp_path / "out")) == sorted(
        [s["file"] for s in replaced["shards"]] + ["manifest.json"])



@pytest.mark.parametrize("source", ["utkface", "folders"])
def test_a_directory_without_images_of_the_source_is_a_one_line_error(tmp_path, source):
    data = tmp_path / "data"
    (data / "male").mkdir(parents=True)
    (data / "male" / "notes.txt").write_text("no images here")
    proc = subprocess.run(_cli(f"--source={source}", f"--data_dir={data}",
                               f"--out_dir={tmp_path / 'out'}"), capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert f"error: {data}: no {source} images to convert" in proc.stderr
    assert not (tmp_path / "out" / convert.MANIFEST).exists()



def _edited_copy(sample_records, tmp_path, edit):
    import shutil

    copy = tmp_path / "records"
    shutil.copytree(sample_records, copy)
    path = copy / convert.MANIFEST
    manifest = json.load(open(path))
    text = edit(manifest)
    path.write_text(text if isinstance(text, str) else json.dumps(manifest))
    return str(copy), str(path)


def test_a_wrong_manifest_is_refused_naming_the_field(sample_records, tmp_path):
    from tfgender.input import pipeline as input_pipeline

    def more_train_records(manifest):
        shard = next(s for s in manifest["shards"] if s["split"] == "train")
        shard["num_records"] += 100
        manifest["num_records"] += 100

    data, path = _edited_copy(sample_records, tmp_path / "a", more_train_records)
    with pytest.raises(ValueError, match=r"shard train-00000-of-00002.tfrecord has num_records"):
        input_pipeline.create_dataset(data, split="train", batch_size=4, image_size=32,
                                      training=True, cache="none")
    data, path = _edited_copy(sample_records, tmp_path / "b",
                              lambda m: m.update(schema_version=99))
    with pytest.raises(ValueError, match=rf"{path}: schema_version 99 is not 1"):
        rec.load_manifest(data)
    data, path = _edited_copy(sample_records, tmp_path / "c",
                              lambda m: m.update(num_records=m["num_records"] + 1))
    with pytest.raises(ValueError, match=rf"{path}: num_records \d+ is not the sum"):
        rec.load_manifest(data)
    data, path = _edited_copy(sample_records, tmp_path / "d", lambda m: "{\n  oops")
    with pytest.raises(ValueError, match=rf"{path}: not valid JSON"):
        rec.load_manifest(data)



def test_a_full_disk_is_a_conversion_error_and_leaves_no_partial_shard(tmp_path, monkeypatch):
    fakes.write_utkface_tree(str(tmp_path / "utk"), 12)
    real_writer = tf.io.TFRecordWriter

    class FullDiskWriter(real_writer):
        def write(self, record):
            super().write(record)
            raise tf.errors.ResourceExhaustedError(None, None, "No space left on device")

    monkeypatch.setattr(tf.io, "TFRecordWriter", FullDiskWriter)
    with pytest.raises(convert.ConversionError, match=r"cannot write .*No space left on device"):
        convert.convert(_config(tmp_path / "utk", tmp_path / "out", num_shards=1))
    assert not glob.glob(str(tmp_path / "out" / ".*.tmp"))
    assert not (tmp_path / "out" / convert.MANIFEST).exists()
    monkeypatch.setattr(tf.io, "TFRecordWriter", real_writer)  # space again: the rerun works
    manifest = convert.convert(_config(tmp_path / "utk", tmp_path / "out", num_shards=1))
    assert manifest["num_records"] == 12


if __name__ == "__main__":
    sys.exit(pytest.main([__file__]))
