"""Tests of the sample-data generator (tfgender/data/sample.py) and bin/make_sample_data."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
from pathlib import Path

import fakes
import numpy as np
import pytest
from PIL import Image

from tfgender.config import SampleDataConfig
from tfgender.data import adience, sample, schema
from tfgender.data.readers import read_source

REPO = Path(__file__).resolve().parents[1]
NUM_IMAGES, SIZE = 20, 64


def _make(tmp_path, fmt, name="data", **overrides) -> tuple[Path, dict]:
    options = {"num_images": NUM_IMAGES, "image_size": SIZE, "seed": 0, **overrides}
    out_dir = tmp_path / name
    return out_dir, sample.make_sample_data(SampleDataConfig(fmt, str(out_dir), **options))


def _tree_digest(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _images(root: Path) -> list[Path]:
    return sorted(root.rglob("*.jpg"))


def _size(path: Path) -> tuple[int, int]:
    with Image.open(io.BytesIO(path.read_bytes())) as image:
        assert image.mode == "RGB"
        return image.size


# --------------------------------------------------------------------------- every format
@pytest.mark.parametrize("fmt", sample.FORMATS)
def test_same_seed_same_bytes_other_seed_differs(tmp_path, fmt):
    first, _ = _make(tmp_path, fmt, "a", num_images=8, image_size=32)
    again, _ = _make(tmp_path, fmt, "b", num_images=8, image_size=32)
    other, _ = _make(tmp_path, fmt, "c", num_images=8, image_size=32, seed=1)
    assert _tree_digest(first) == _tree_digest(again)
    first_images = {d for p, d in _tree_digest(first).items() if p.endswith(".jpg")}
    other_images = {d for p, d in _tree_digest(other).items() if p.endswith(".jpg")}
    assert len(first_images) == 8 and not first_images & other_images


def test_celeba_drawn_by_two_workers_is_the_same_tree(tmp_path, monkeypatch):
    monkeypatch.setattr(sample, "_CHUNK", 7)  # 60 images: nine chunks across the workers
    one, summary = _make(tmp_path, "celeba", "one", num_images=60, image_size=24)
    two, again = _make(tmp_path, "celeba", "two", num_images=60, image_size=24, num_workers=2)
    assert summary["labels"] == again["labels"] and summary["num_images"] == 60
    assert _tree_digest(one) == _tree_digest(two)
    assert len(_images(two)) == 60


def test_a_drawing_worker_that_dies_is_one_error_naming_the_partial_tree(tmp_path, monkeypatch):
    monkeypatch.setattr(sample, "_CHUNK", 7)
    monkeypatch.setattr(sample, "_draw_celeba_chunk", fakes.stop_this_process)
    with pytest.raises(sample.WorkerStopped) as caught:
        _make(tmp_path, "celeba", "two", num_images=20, image_size=24, num_workers=2)
    message = str(caught.value)
    assert "\n" not in message and "killed, or out of memory" in message
    assert f"{tmp_path / 'two'} is partly drawn: remove it" in message


@pytest.mark.parametrize("fmt", sample.FORMATS)
def test_summary_and_image_sizes(tmp_path, fmt):
    out_dir, summary = _make(tmp_path, fmt)
    images = _images(out_dir)
    assert summary["num_images"] == len(images) == NUM_IMAGES
    assert sum(summary["labels"].values()) == NUM_IMAGES
    assert summary["image_size"] == (SIZE, SIZE)
    assert summary["files_written"] == NUM_IMAGES + len(summary["label_files"])
    assert all((out_dir / name).is_file() for name in summary["label_files"])
    assert {_size(p) for p in images} == {(SIZE, SIZE)}


def test_native_sizes(tmp_path):
    for fmt, size in sample.NATIVE_SIZES.items():
        out_dir, summary = _make(tmp_path, fmt, fmt, num_images=1, image_size=0)
        assert summary["image_size"] == size
        assert _size(_images(out_dir)[0]) == size  # (width, height): CelebA is 178x218


def test_images_are_faces_not_noise(tmp_path):
    out_dir, _ = _make(tmp_path, "utkface", num_images=6)
    pixels = [np.asarray(Image.open(p), np.float32) for p in _images(out_dir)]
    for image in pixels:
        assert image.std() > 20  # drawn structure, not a flat colour
    changes = [np.abs(a - b).mean() for a, b in zip(pixels[:-1], pixels[1:], strict=True)]
    assert np.mean(changes) > 10  # and differ from one another


def test_refuses_non_empty_out_dir_and_bad_configs(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "old.jpg").write_bytes(b"x")
    with pytest.raises(FileExistsError):
        _make(tmp_path, "utkface")
    with pytest.raises(ValueError, match="format"):
        _make(tmp_path, "imagenet", "b")
    with pytest.raises(ValueError, match="num_images"):
        _make(tmp_path, "celeba", "c", num_images=0)
    with pytest.raises(ValueError, match="adience_folds"):
        _make(tmp_path, "utkface", "d", adience_folds=str(tmp_path))


# --------------------------------------------------------------------------- UTKFace
def test_utkface_names_and_round_trip(tmp_path):
    out_dir, summary = _make(tmp_path, "utkface", num_images=40)
    names = sorted(p.name for p in out_dir.iterdir())
    assert len(names) == 40 and all(p.is_file() for p in out_dir.iterdir())  # flat
    fields = [n.removesuffix(".jpg.chip.jpg").split("_") for n in names]
    assert all(len(f) == 4 and len(f[3]) == 17 and f[3].isdigit() for f in fields)
    assert len({f[3] for f in fields}) == 40  # unique datetimes
    assert {f[1] for f in fields} == {"0", "1"} and {f[2] for f in fields} <= set("01234")
    assert all(1 <= int(f[0]) <= 100 for f in fields)
    males = sum(f[1] == "0" for f in fields)  # UTKFace: 0 = male
    assert males == summary["labels"]["male"] == 20  # balanced

    result = read_source("utkface", out_dir)
    assert result.skipped == []
    frame = result.frame.set_index("path")
    assert len(frame) == 40
    for name, f in zip(names, fields, strict=True):
        assert frame.loc[name, "label"] == (schema.MALE if f[1] == "0" else schema.FEMALE)
        assert frame.loc[name, "age"] == f[0]


# --------------------------------------------------------------------------- CelebA
def _celeba_table(path: Path) -> dict[str, list[str]]:
    return {line.split()[0]: line.split()[1:]
            for line in path.read_text().splitlines() if line.strip()}


def test_celeba_label_files_and_round_trip(tmp_path):
    out_dir, summary = _make(tmp_path, "celeba", num_images=40)
    lines = (out_dir / "list_attr_celeba.txt").read_text().splitlines()
    assert lines[0] == "40" and lines[1].split() == list(sample.CELEBA_ATTRIBUTES)
    assert len(sample.CELEBA_ATTRIBUTES) == 40 and sample.CELEBA_ATTRIBUTES[20] == "Male"
    rows = [line.split() for line in lines[2:]]
    assert [r[0] for r in rows] == [f"{i:06d}.jpg" for i in range(1, 41)]
    assert all(len(r) == 41 and set(r[1:]) <= {"1", "-1"} for r in rows)
    assert lines[2][10:13] in (" -1", "  1")  # values padded to two characters as in CelebA
    male = {r[0]: r[21] == "1" for r in rows}
    assert summary["labels"]["male"] == sum(male.values())
    assert abs(sum(male.values()) - 20) <= 4  # about half male

    partition = {k: int(v[0]) for k, v in
                 _celeba_table(out_dir / "list_eval_partition.txt").items()}
    identity = {k: v[0] for k, v in _celeba_table(out_dir / "identity_CelebA.txt").items()}
    assert set(partition) == set(identity) == set(male)
    counts = np.bincount(list(partition.values()), minlength=3)
    assert counts[0] >= 24 and counts[1] >= 2 and counts[2] >= 2  # roughly 80/10/10
    assert list(partition.values()) == sorted(partition.values())  # train, val, test in order
    assert len(set(identity.values())) < 40  # several images per identity
    for person in set(identity.values()):
        names = [n for n, i in identity.items() if i == person]
        assert len({male[n] for n in names}) == 1  # an identity keeps its gender
        assert len({partition[n] for n in names}) == 1  # and one partition

    result = read_source("celeba", out_dir)
    assert result.skipped == []
    frame = result.frame.set_index("path")
    assert len(frame) == 40
    for name in male:
        row = frame.loc[f"img_align_celeba/{name}"]
        assert row["label"] == (schema.MALE if male[name] else schema.FEMALE)
        assert row["split"] == schema.SPLITS[partition[name]]
        assert row["group"] == identity[name]


# --------------------------------------------------------------------------- Adience
def test_adience_drawn_folds_and_round_trip(tmp_path):
    out_dir, summary = _make(tmp_path, "adience", num_images=60)
    folds = [adience.read_fold_file(out_dir / adience.fold_file_name(k)) for k in range(5)]
    assert [len(rows) for rows in folds] == [12] * 5
    header = (out_dir / "fold_0_data.txt").read_text().splitlines()[0]
    assert header.split("\t") == list(adience.FOLD_COLUMNS)
    users = [{r["user_id"] for r in rows} for rows in folds]
    assert all(len(u) >= 2 for u in users)  # several users per fold
    assert sum(len(u) for u in users) == len(set().union(*users))  # never in two folds
    rows = [r for fold in folds for r in fold]
    assert {r["gender"] for r in rows} <= {"m", "f", "u", ""}
    assert {r["age"] for r in rows} <= set(sample.ADIENCE_AGES)
    faces_per_user = {}
    for r in rows:
        faces_per_user.setdefault(r["user_id"], set()).add(r["face_id"])
        path = out_dir / adience.image_path(r["user_id"], r["face_id"], r["original_image"])
        assert path.is_file()
    assert max(len(f) for f in faces_per_user.values()) >= 2  # albums with several faces
    labelled = [r for r in rows if r["gender"] in ("m", "f")]
    assert summary["labels"]["unknown"] == len(rows) - len(labelled)

    result = read_source("adience", out_dir)
    assert result.skipped == [] and len(result.frame) == len(labelled)
    frame = result.frame.set_index("path")
    for r in labelled:
        row = frame.loc[adience.image_path(r["user_id"], r["face_id"], r["original_image"])]
        assert row["label"] == (schema.MALE if r["gender"] == "m" else schema.FEMALE)


def test_adience_from_fold_files_draws_every_row(tmp_path):
    folds_dir = tmp_path / "folds"
    folds_dir.mkdir()
    header = "\t".join(adience.FOLD_COLUMNS)
    genders = ["m", "f", "u", "", "f"]
    for fold in range(5):
        rows = [
            "\t".join([f"{fold}000@N0{fold}", f"{fold}{k}_abc_o.jpg", str(k % 2 + 1), age,
                       genders[(fold + k) % 5], "1", "2", "30", "30", "0", "0", "50"])
            for k, age in enumerate(["(25, 32)", "None", "(0, 2)"])]
        (folds_dir / adience.fold_file_name(fold)).write_text("\n".join([header, *rows]) + "\n")
    out_dir, summary = _make(tmp_path, "adience", num_images=1, adience_folds=str(folds_dir))
    for fold in range(5):  # copied unchanged
        name = adience.fold_file_name(fold)
        assert (out_dir / name).read_bytes() == (folds_dir / name).read_bytes()
    images = _images(out_dir)
    assert len(images) == summary["num_images"] == 15  # num_images is ignored
    all_rows = [r for k in range(5) for r in adience.read_fold_file(
        folds_dir / adience.fold_file_name(k))]
    for r in all_rows:  # u and empty rows get an image too
        assert (out_dir / adience.image_path(r["user_id"], r["face_id"],
                                             r["original_image"])).is_file()
    unknown = sum(r["gender"] in ("u", "") for r in all_rows)
    assert summary["labels"]["unknown"] == unknown == 6
    assert {_size(p) for p in images} == {(SIZE, SIZE)}
    assert len(read_source("adience", out_dir).frame) == 15 - unknown


def test_adience_real_fold_rows(tmp_path, shared_data):
    # The first rows of each real fold file: real ages and ids, small enough for a test.
    folds_dir = tmp_path / "folds"
    folds_dir.mkdir()
    for fold in range(5):
        name = adience.fold_file_name(fold)
        lines = (shared_data / "adience_folds" / name).read_text().splitlines()[:41]
        (folds_dir / name).write_text("\n".join(lines) + "\n")
    out_dir, summary = _make(tmp_path, "adience", image_size=16, adience_folds=str(folds_dir))
    rows = [r for k in range(5) for r in adience.read_fold_file(
        folds_dir / adience.fold_file_name(k))]
    paths = {adience.image_path(r["user_id"], r["face_id"], r["original_image"]) for r in rows}
    assert summary["num_images"] == len(paths) == len(_images(out_dir))
    assert all((out_dir / p).is_file() for p in paths)
    result = read_source("adience", out_dir)
    assert len(result.frame) == sum(r["gender"] in ("m", "f") for r in rows)


# --------------------------------------------------------------------------- CLI
@pytest.mark.slow
def test_cli_subprocess(tmp_path):
    out_dir = tmp_path / "utk"
    command = [str(REPO / "bin" / "make_sample_data"), "--format=utkface",
               f"--out_dir={out_dir}", "--num_images=6", "--image_size=32"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 0, done.stderr
    assert "wrote 6 utkface images (32x32" in done.stdout
    assert len(_images(out_dir)) == 6
    # A second run into the same directory fails with a message, not a traceback.
    again = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    assert again.returncode == 2 and "is not empty" in again.stderr


def test_cli_flagfile_and_helpshort(tmp_path):
    flagfile = tmp_path / "celeba.flags"
    flagfile.write_text(f"--format=celeba\n--num_images=3\n--image_size=24\n"
                        f"--out_dir={tmp_path / 'celeba'}\n")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    script = str(REPO / "bin" / "make_sample_data")
    done = subprocess.run([sys.executable, script, f"--flagfile={flagfile}"],
                          capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 0, done.stderr
    assert len(_images(tmp_path / "celeba")) == 3
    helped = subprocess.run([script, "--helpshort"], capture_output=True, text=True, env=env,
                            check=False)
    assert "--num_images" in helped.stdout and "--adience_folds" in helped.stdout
    assert "exec" not in helped.stdout  # the usage text, not the polyglot shell line
