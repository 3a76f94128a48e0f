"""Tests of the Adience, CelebA and UTKFace readers and ``read_source``."""

from __future__ import annotations

import re
import shutil

import pandas as pd
import pytest

from tfgender.data import adience, celeba, schema, utkface
from tfgender.data.readers import ReadResult, read_source
from tfgender.data.schema import DataFormatError

ADIENCE_HEADER = "\t".join(adience.FOLD_COLUMNS)
REAL_FOLD_COUNTS = [4007, 3624, 3191, 3318, 3463]  # m + f rows per fold
REAL_FOLD_ROWS = [4496, 3745, 3953, 3459, 3834]  # all rows, u and empty included


def _fold_row(user="u1", image="img.jpg", face_id="1", age="(25, 32)", gender="m"):
    return "\t".join([user, image, face_id, age, gender, "0", "0", "10", "10", "0", "0", "90"])


def _write_fold(directory, fold, rows, frontal=False):
    path = directory / adience.fold_file_name(fold, frontal)
    path.write_text("\n".join([ADIENCE_HEADER, *rows]) + "\n")
    return path


# --------------------------------------------------------------------------- Adience, real files
def test_adience_real_folds(shared_data):
    result = read_source("adience", shared_data / "adience_folds")
    frame = result.frame
    assert frame.groupby("fold").size().tolist() == REAL_FOLD_COUNTS
    assert len(frame) == result.rows_read == 17_603
    assert result.dropped == {"gender u": 1100, "gender empty": 784}
    assert result.skipped == []
    assert list(frame.columns[:len(schema.COLUMNS)]) == list(schema.COLUMNS)
    schema.validate_frame(frame)
    assert frame["label"].value_counts().to_dict() == {1: 8192, 0: 9411}
    assert (frame.groupby("group")["fold"].nunique() == 1).all()  # subject-exclusive folds
    assert set(frame["source"]) == {"adience"} and set(frame["split"]) == {""}
    first = frame.iloc[0]
    assert first["path"] == ("aligned/30601258@N03/"
                             "landmark_aligned_face.1.10399646885_67c7d20df9_o.jpg")
    assert (first["group"], first["age"], first["label"]) == ("30601258@N03", "(25, 23)", 0)
    pattern = re.compile(r"aligned/[^/]+/landmark_aligned_face\.\d+\.[^/]+\.jpg")
    assert frame["path"].map(pattern.fullmatch).notna().all()
    # The real files list some faces twice (same album, image and face_id: one image file);
    # they are kept so counts match the benchmark, and never disagree on label or fold.
    assert frame["path"].nunique() == 17_492
    repeated = frame[frame["path"].duplicated(keep=False)].groupby("path")
    assert (repeated["label"].nunique() == 1).all() and (repeated["fold"].nunique() == 1).all()


def test_adience_real_fold_files_raw_rows(shared_data):
    folds = shared_data / "adience_folds"
    rows = [adience.read_fold_file(folds / adience.fold_file_name(n)) for n in range(5)]
    assert [len(r) for r in rows] == REAL_FOLD_ROWS
    genders = pd.Series([row["gender"] for fold in rows for row in fold]).value_counts()
    assert genders.to_dict() == {"f": 9411, "m": 8192, "u": 1100, "": 784}
    assert rows[0][0]["line"] == 2 and rows[0][0]["face_id"] == 1


def test_adience_real_subset_and_faces_image_set(shared_data):
    result = adience.read_adience(shared_data / "adience_folds", folds=[3, 1], image_set="faces")
    assert result.frame.groupby("fold").size().to_dict() == {1: 3624, 3: 3318}
    assert result.frame["path"].str.match(r"faces/[^/]+/coarse_tilt_aligned_face\.\d+\.").all()


# --------------------------------------------------------------------------- Adience, small files
def test_adience_folds_dir_frontal_and_trailing_fields(tmp_path):
    folds_dir = tmp_path / "folds"
    folds_dir.mkdir()
    for fold in range(5):
        _write_fold(folds_dir, fold, [
            _fold_row(user=f"user{fold}", face_id="3", gender="f") + "\t\t ",  # trailing junk
            "",
            _fold_row(user=f"user{fold}", age="None", gender="u"),
        ], frontal=True)
    result = adience.read_adience(tmp_path, frontal=True, folds_dir=folds_dir)
    assert len(result.frame) == 5 and result.dropped == {"gender u": 5}
    assert result.frame["path"].iloc[2] == "aligned/user2/landmark_aligned_face.3.img.jpg"
    assert result.frame["fold"].tolist() == [0, 1, 2, 3, 4]
    assert result.frame["face_id"].tolist() == [3] * 5
    with pytest.raises(DataFormatError, match="fold_0_data.txt"):
        adience.read_adience(tmp_path, folds_dir=folds_dir)  # not frontal: files absent


@pytest.mark.parametrize("bad_row, problem", [
    (_fold_row().rsplit("\t", 1)[0], "12 tab-separated columns, found 11"),
    (_fold_row(face_id="x"), "face_id 'x' is not an integer"),
    (_fold_row(gender="male"), "gender 'male'"),
    (_fold_row(user=""), "user_id is empty"),
])
def test_adience_malformed_row_names_file_and_line(tmp_path, bad_row, problem):
    _write_fold(tmp_path, 0, [_fold_row(), bad_row])
    with pytest.raises(DataFormatError) as raised:
        adience.read_adience(tmp_path, folds=[0])
    message = str(raised.value)
    assert "fold_0_data.txt, line 3" in message and problem in message


def test_adience_missing_header_and_shared_user(tmp_path):
    (tmp_path / "fold_0_data.txt").write_text(_fold_row() + "\n")
    with pytest.raises(DataFormatError, match=r"fold_0_data.txt, line 1: expected the header"):
        adience.read_adience(tmp_path, folds=[0])
    _write_fold(tmp_path, 0, [_fold_row(user="a")])
    _write_fold(tmp_path, 1, [_fold_row(user="b"), _fold_row(user="a")])
    with pytest.raises(DataFormatError, match=r"fold_1_data.txt, line 3: user_id 'a' .* fold 0"):
        adience.read_adience(tmp_path, folds=[0, 1])


def test_adience_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="folds are 0-4"):
        adience.read_adience(tmp_path, folds=[5])
    with pytest.raises(ValueError, match="image set"):
        adience.read_adience(tmp_path, image_set="crops")


# --------------------------------------------------------------------------- UTKFace
def test_utkface_real_sample(shared_data):
    result = read_source("utkface", shared_data / "utkface_sample")
    frame = result.frame
    assert len(frame) == result.rows_read == 2000 and result.skipped == []
    assert frame["label"].value_counts().to_dict() == {0: 1000, 1: 1000}
    assert frame["race"].value_counts().sort_index().to_dict() == {r: 400 for r in range(5)}
    schema.validate_frame(frame)
    # The sample's folders say the truth the names encode: males/ -> 1, females/ -> 0.
    folder_label = frame["path"].str.split("/").str[0].map({"males": 1, "females": 0})
    assert (folder_label == frame["label"]).all()
    race_folder = frame["path"].str.split("/").str[1].map({v: k for k, v in utkface.RACES.items()})
    assert (race_folder == frame["race"]).all()
    assert frame["path"].tolist() == sorted(frame["path"])
    first = frame.iloc[0]
    assert first["path"] == "females/asian/10_1_2_20170103201007646.jpg.chip.jpg"
    assert (first["group"], first["age"], first["fold"]) == ("10_1_2_20170103201007646", "10", -1)


def test_utkface_malformed_names_are_skipped(tmp_path):
    names = {
        "a/25_1_3_20170101000000000.jpg": None,  # plain .jpg: a row
        "a/30_0_0_20170101000000001.jpg.chip.jpg": None,
        "39_1_20170116174525125.jpg.chip.jpg": "found 3 fields",
        "x_0_1_20170101000000002.jpg": "age 'x'",
        "30_2_0_20170101000000003.jpg": "gender 2",
        "30_0_7_20170101000000004.jpg": "race 7",
        "30_0_-1_20170101000000005.jpg": "race '-1'",
        "b/30_0_1_20170101000000006.png": "not a .jpg image",
        "README.txt": None,  # ignored silently
    }
    for name in names:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"not decoded by the reader")
    result = utkface.read_utkface(tmp_path)
    frame = result.frame
    assert frame["path"].tolist() == ["a/25_1_3_20170101000000000.jpg",
                                      "a/30_0_0_20170101000000001.jpg.chip.jpg"]
    assert frame["label"].tolist() == [0, 1] and frame["race"].tolist() == [3, 0]
    assert frame["group"].tolist() == ["25_1_3_20170101000000000", "30_0_0_20170101000000001"]
    reasons = {s["path"]: s["reason"] for s in result.skipped}
    expected = {name: reason for name, reason in names.items() if reason}
    assert reasons.keys() == expected.keys()
    for name, reason in expected.items():
        assert reason in reasons[name]
    assert result.rows_read == 2 + len(expected)
    with pytest.raises(DataFormatError, match="not a directory"):
        utkface.read_utkface(tmp_path / "absent")


# --------------------------------------------------------------------------- CelebA
CELEBA_ATTRIBUTES = ["Smiling", "Male", "Young"]
CELEBA_ROWS = [("000001.jpg", 1, -1, 1), ("000002.jpg", -1, -1, 1), ("000003.jpg", 1, 1, -1),
               ("000004.jpg", -1, 1, 1), ("000005.jpg", 1, 1, 1)]
CELEBA_PARTITION = [("000001.jpg", 0), ("000002.jpg", 0), ("000003.jpg", 1), ("000004.jpg", 2)]
CELEBA_IDENTITY = [("000001.jpg", 2880), ("000002.jpg", 2937), ("000003.jpg", 2880),
                   ("000004.jpg", 4), ("000005.jpg", 10)]


def _write_celeba_txt(directory, rows=CELEBA_ROWS, count=None, identity=True):
    lines = [str(len(rows) if count is None else count), " ".join(CELEBA_ATTRIBUTES) + " "]
    lines += [name + "".join(f" {v:2d}" for v in values) for name, *values in rows]
    (directory / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")
    partition = [f"{name} {value}" for name, value in CELEBA_PARTITION]
    (directory / "list_eval_partition.txt").write_text("\n".join(partition) + "\n")
    if identity:
        ids = [f"{name} {value}" for name, value in CELEBA_IDENTITY]
        (directory / "identity_CelebA.txt").write_text("\n".join(ids) + "\n")


def _write_celeba_csv(directory):
    lines = [",".join(["image_id", *CELEBA_ATTRIBUTES])]
    lines += [",".join([name, *map(str, values)]) for name, *values in CELEBA_ROWS]
    (directory / "list_attr_celeba.csv").write_text("\n".join(lines) + "\n")
    partition = ["image_id,partition"] + [f"{name},{value}" for name, value in CELEBA_PARTITION]
    (directory / "list_eval_partition.csv").write_text("\n".join(partition) + "\n")
    ids = [f"{name} {value}" for name, value in CELEBA_IDENTITY]
    (directory / "identity_CelebA.txt").write_text("\n".join(ids) + "\n")


def test_celeba_txt_and_csv_read_the_same(tmp_path):
    (tmp_path / "txt").mkdir()
    (tmp_path / "csv").mkdir()
    _write_celeba_txt(tmp_path / "txt")
    _write_celeba_csv(tmp_path / "csv")
    from_txt = celeba.read_celeba(tmp_path / "txt", attributes=["Young", "Smiling"])
    from_csv = read_source("celeba", tmp_path / "csv", attributes=("Young", "Smiling"))
    assert isinstance(from_txt, ReadResult)
    pd.testing.assert_frame_equal(from_txt.frame, from_csv.frame)
    frame = from_txt.frame
    assert list(frame.columns) == [*schema.COLUMNS, "Young", "Smiling"]
    assert frame["path"].tolist() == [f"img_align_celeba/00000{i}.jpg" for i in range(1, 6)]
    assert frame["label"].tolist() == [0, 0, 1, 1, 1]  # from Male, the second column
    assert frame["Young"].tolist() == [1, 1, -1, 1, 1]
    assert frame["split"].tolist() == ["train", "train", "val", "test", ""]
    assert frame["group"].tolist() == ["2880", "2937", "2880", "4", "10"]  # identities
    assert set(frame["fold"]) == {-1} and set(frame["age"]) == {""}
    assert from_txt.rows_read == 5 and from_txt.skipped == [] and from_txt.dropped == {}
    schema.validate_frame(frame)


def test_celeba_without_identity_and_txt_preferred(tmp_path):
    _write_celeba_txt(tmp_path, identity=False)
    (tmp_path / "list_attr_celeba.csv").write_text("image_id,Male\n999999.jpg,1\n")
    frame = celeba.read_celeba(tmp_path).frame
    assert frame["group"].tolist() == ["000001", "000002", "000003", "000004", "000005"]
    assert list(frame.columns) == list(schema.COLUMNS)


@pytest.mark.parametrize("rows, count, where, problem", [
    ([*CELEBA_ROWS[:2], ("000003.jpg", 1, 0, 1), *CELEBA_ROWS[3:]], None, "line 5",
     "Male is 0, expected -1 or 1"),
    (CELEBA_ROWS, 6, "line 1", "the count says 6 images but 5 rows follow"),
    ([*CELEBA_ROWS[:3], ("000004.jpg", 1, 1)], None, "line 6", "expected 4 values, found 3"),
    ([*CELEBA_ROWS[:3], ("000004.jpg", 1, 1, 1, 1)], None, "line 6", "expected 4 values, found 5"),
    ([*CELEBA_ROWS[:3], ("000001.jpg", 1, 1, 1)], None, "line 6", "listed twice"),
])
def test_celeba_malformed_attribute_file(tmp_path, rows, count, where, problem):
    _write_celeba_txt(tmp_path, rows=rows, count=count)
    with pytest.raises(DataFormatError) as raised:
        celeba.read_celeba(tmp_path)
    message = str(raised.value)
    assert f"list_attr_celeba.txt, {where}" in message and problem in message


def test_celeba_line_numbers_count_blank_lines_and_non_integers(tmp_path):
    _write_celeba_txt(tmp_path)
    path = tmp_path / "list_attr_celeba.txt"
    lines = path.read_text().split("\n")
    lines[3:3] = ["", "  "]  # two blank lines after the first row
    lines[7] = lines[7].replace(" 1", " y", 1)  # the fourth row, now on line 8
    path.write_text("\n".join(lines))
    with pytest.raises(DataFormatError, match=r"list_attr_celeba.txt, line 8: non-integer"):
        celeba.read_celeba(tmp_path)
    path.write_text("five\n" + "\n".join(lines[1:]))
    with pytest.raises(DataFormatError, match=r"list_attr_celeba.txt, line 1: expected the image"):
        celeba.read_celeba(tmp_path)


def test_celeba_malformed_csv_and_partition_files(tmp_path):
    _write_celeba_csv(tmp_path)
    attr = tmp_path / "list_attr_celeba.csv"
    attr.write_text(attr.read_text().replace("000003.jpg,1,1,-1", "000003.jpg,1,1,2"))
    with pytest.raises(DataFormatError, match=r"list_attr_celeba.csv, line 4: Young is 2"):
        celeba.read_celeba(tmp_path)
    _write_celeba_csv(tmp_path)
    (tmp_path / "list_eval_partition.csv").write_text("image_id,partition\n000001.jpg,0\n"
                                                     "000002.jpg,3\n")
    with pytest.raises(DataFormatError, match=r"list_eval_partition.csv, line 3: partition 3"):
        celeba.read_celeba(tmp_path)
    _write_celeba_txt(tmp_path)
    (tmp_path / "list_eval_partition.txt").write_text("000001.jpg 0\n000002.jpg\n")
    with pytest.raises(DataFormatError, match=r"list_eval_partition.txt, line 2: expected 2"):
        celeba.read_celeba(tmp_path)


def test_celeba_attribute_and_identity_errors(tmp_path):
    _write_celeba_txt(tmp_path)
    with pytest.raises(DataFormatError, match=r"list_attr_celeba.txt, line 2: unknown attr"):
        celeba.read_celeba(tmp_path, attributes=["Bald"])
    (tmp_path / "identity_CelebA.txt").write_text("000001.jpg 1\n")
    with pytest.raises(DataFormatError, match=r"identity_CelebA.txt: no identity for 000002"):
        celeba.read_celeba(tmp_path)
    shutil.rmtree(tmp_path)
    tmp_path.mkdir()
    with pytest.raises(DataFormatError, match="list_attr_celeba"):
        celeba.read_celeba(tmp_path)


def test_read_source_rejects_unknown_source(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset source 'imdb'"):
        read_source("imdb", tmp_path)
