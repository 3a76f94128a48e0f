"""Tests of the FairFace and class-folder readers, their splits and their conversion."""

from __future__ import annotations

import shutil

import pytest

from tfgender.data import fairface, folders, schema, splits
from tfgender.data.readers import SOURCES, read_source
from tfgender.data.schema import DataFormatError

HEADER = "file,age,gender,race,service_test"


def _write_csv(path, rows):
    path.write_text("\n".join([HEADER, *rows]) + "\n")
    return path


# --------------------------------------------------------------------------- FairFace
def test_fairface_real_csv_counts(shared_data):
    result = read_source("fairface", shared_data / "fairface")
    frame = result.frame
    schema.validate_frame(frame)
    assert len(frame) == result.rows_read == 30_000
    assert frame["label"].value_counts().to_dict() == {1: 15_840, 0: 14_160}
    assert frame["age"].value_counts()["more than 70"] == 281
    assert frame["race"].value_counts().to_dict()["Middle Eastern"] == 3_202
    assert set(frame["split"]) == {""} and set(frame["source"]) == {"fairface"}
    assert frame.iloc[0]["path"] == "train/1.jpg" and frame["group"].equals(frame["path"])


def test_fairface_split_by_fractions_and_val_csv_is_test(tmp_path):
    _write_csv(tmp_path / "fairface_label_train.csv",
               [f"train/{i}.jpg,20-29,{'Male' if i % 2 else 'Female'},White,True"
                for i in range(100)])
    _write_csv(tmp_path / "fairface_label_val.csv",
               ["val/1.jpg,3-9,Female,Black,False", "val/2.jpg,more than 70,Male,Indian,True"])
    frame = read_source("fairface", tmp_path).frame
    out = splits.assign_folds_or_split(frame, source="fairface", num_folds=0,
                                       val_fraction=0.1, test_fraction=0.2)
    from_val = out["path"].str.startswith("val/")
    assert set(out.loc[from_val, "split"]) == {"test"}
    assert out.loc[~from_val, "split"].value_counts().to_dict() == {
        "train": 70, "test": 20, "val": 10}
    # Deterministic: the same split again.
    again = splits.assign_folds_or_split(frame, source="fairface", num_folds=0,
                                         val_fraction=0.1, test_fraction=0.2)
    assert again["split"].tolist() == out["split"].tolist()


def test_fairface_val_csv_only_is_one_test_split(tmp_path):
    _write_csv(tmp_path / "fairface_label_val.csv",
               ["val/1.jpg,3-9,Female,Black,False", "val/2.jpg,50-59,Male,East Asian,True"])
    frame = read_source("fairface", tmp_path).frame
    out = splits.assign_folds_or_split(frame, source="fairface", num_folds=0,
                                       val_fraction=0.1, test_fraction=0.2)
    assert out["split"].tolist() == ["test", "test"]
    assert out["race"].tolist() == ["Black", "East Asian"]


@pytest.mark.parametrize("row, message", [
    ("train/2.jpg,20-29,Male,White", "expected 5 comma-separated fields, found 4"),
    ("train/2.jpg,03-Sep,Male,White,True", "age '03-Sep' is not one of FairFace's bands"),
    ("train/2.jpg,20-29,male,White,True", "gender 'male' is not Male or Female"),
    ("train/2.jpg,20-29,Male,Asian,True", "race 'Asian' is not one of"),
    (",20-29,Male,White,True", "empty file column"),
    ("train/1.jpg,20-29,Male,White,True", "is listed again"),
])
def test_fairface_malformed_row_names_file_and_line(tmp_path, row, message):
    path = _write_csv(tmp_path / "fairface_label_train.csv",
                      ["train/1.jpg,20-29,Male,White,True", row])
    with pytest.raises(DataFormatError) as info:
        read_source("fairface", tmp_path)
    assert str(info.value).startswith(f"{path}, line 3: ")
    assert message in str(info.value)


def test_fairface_without_label_files(tmp_path):
    with pytest.raises(DataFormatError, match="no FairFace label file"):
        fairface.read_fairface(tmp_path)
    (tmp_path / "fairface_label_train.csv").write_text("file,gender\ntrain/1.jpg,Male\n")
    with pytest.raises(DataFormatError, match=r"line 1: header lacks columns \['age', 'race'\]"):
        fairface.read_fairface(tmp_path)


# --------------------------------------------------------------------------- class folders
def _tree(root, utk_dir, layout):
    """Copies real UTKFace JPEGs into ``root/<folder>/<sub>/<n>.jpg`` per ``layout``."""
    jpegs = sorted(utk_dir.rglob("*.jpg"))
    index = 0
    for folder, count in layout.items():
        for n in range(count):
            target = root / folder / ("nested/deeper" if n % 2 else "") / f"{n}.jpg"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(jpegs[index], target)
            index += 1
    return root


def test_folders_labels_every_image_recursively(tmp_path, shared_data):
    root = _tree(tmp_path / "faces", shared_data / "utkface_sample", {"Men": 5, "women": 4})
    (root / "women" / "notes.txt").write_text("not an image")
    (root / "women" / "scan.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (root / "README.md").write_text("top-level files are ignored")
    result = read_source("folders", root)
    frame = result.frame
    schema.validate_frame(frame)
    # Every common image format is a row (conversion reports one it cannot read).
    assert frame.groupby("label").size().to_dict() == {1: 5, 0: 5}
    assert "women/scan.png" in set(frame["path"]) and "women/notes.txt" not in set(frame["path"])
    assert frame["path"].str.contains("/nested/deeper/").sum() == 2 + 2
    assert result.skipped == [] and result.rows_read == 10


@pytest.mark.parametrize("names, message", [
    (["male", "female", "unknown"], "unknown names no class"),
    (["boys", "girls"], "boys, girls names no class"),
    ([], "found no sub-folders"),
    (["male", "M"], "folders 'M' and 'male' name the same class"),
])
def test_folders_refuses_other_class_folders(tmp_path, names, message):
    for name in names:
        (tmp_path / name).mkdir()
    with pytest.raises(DataFormatError) as info:
        folders.read_folders(tmp_path)
    assert message in str(info.value)
    if names and "same class" not in message:
        assert str(sorted(names)) in str(info.value)  # lists what was found


def test_folders_whole_tree_into_test(tmp_path, shared_data):
    root = _tree(tmp_path / "faces", shared_data / "utkface_sample", {"m": 3, "f": 3})
    frame = read_source("folders", root).frame
    out = splits.assign_folds_or_split(frame, source="folders", num_folds=0,
                                       val_fraction=0.0, test_fraction=1.0)
    assert set(out["split"]) == {"test"} and len(out) == 6


def test_sources_are_one_list():
    from tfgender import choices, flags

    assert flags.SOURCES is SOURCES is choices.SOURCES
    assert {"fairface", "folders"} <= set(SOURCES)
