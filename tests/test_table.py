"""--source=table: a CSV, TSV or parquet table of paths and labels (flow_from_dataframe's
input), and a DataFrame converted in-process."""

from __future__ import annotations

import json
import os
import subprocess

import fakes
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from tfgender.config import ConvertConfig
from tfgender.data import convert, schema, table
from tfgender.data import records as rec

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPELLINGS = [("male", 1), ("Female", 0), ("M", 1), ("f", 0), ("man", 1), ("WOMAN", 0),
             ("men", 1), ("women", 0), ("1", 1), ("0", 0), ("1.0", 1), ("True", 1)]


def _frame() -> pd.DataFrame:
    n = len(SPELLINGS)
    return pd.DataFrame({"filename": [f"img/{i}.jpg" for i in range(n)],
                         "class": [SPELLINGS[i % len(SPELLINGS)][0] for i in range(n)],
                         "age": [str(20 + i) for i in range(n)]})


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".parquet", ".txt"])
def test_every_table_format_and_label_spelling(tmp_path, suffix):
    frame = _frame()
    path = tmp_path / f"labels{suffix}"
    if suffix == ".parquet":
        frame.to_parquet(path)
    else:
        frame.to_csv(path, sep="\t" if suffix in (".tsv", ".txt") else ",", index=False)
    result = table.read_table(tmp_path, labels=str(path), slice_columns=("age",))
    assert list(result.frame["label"]) == [label for _, label in SPELLINGS]
    assert list(result.frame["path"]) == list(frame["filename"])
    assert list(result.frame["age"]) == list(frame["age"])
    assert set(result.frame["source"]) == {"table"} and result.rows_read == len(frame)
    schema.validate_frame(result.frame)


def test_usual_column_names_a_label_map_and_the_split_and_group_columns(tmp_path):
    frame = pd.DataFrame({"image": ["a.jpg", "b.jpg", "c.jpg", "d.jpg"],
                          "Gender": ["homme", "femme", "homme", "femme"],
                          "subset": ["train", "", "TEST", "val"],
                          "person": ["p1", "p1", "p2", ""],
                          "race": ["x", "y", "z", "w"]})
    result = table.read_dataframe(frame, label_map="homme:1,femme:0", split_column="subset",
                                  group_column="person", slice_columns=("race",))
    out = result.frame
    assert list(out["label"]) == [1, 0, 1, 0]
    assert list(out["split"]) == ["train", "", "test", "val"]
    assert list(out["group"]) == ["p1", "p1", "p2", "d.jpg"]  # no subject: the image alone
    assert list(out["race"]) == ["x", "y", "z", "w"]


def test_unknown_labels_missing_columns_and_repeats_are_named(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("filename,class\na.jpg,male\nb.jpg,other\nc.jpg,\n")
    with pytest.raises(schema.DataFormatError, match=r"labels.csv, line 3: class 'other' is "
                       "no known label .*--label_map or --skip_unknown_labels"):
        table.read_table(tmp_path, labels=str(path))
    result = table.read_table(tmp_path, labels=str(path), skip_unknown_labels=True)
    assert len(result.frame) == 1 and result.dropped == {"class other": 1, "class (empty)": 1}
    assert result.rows_read == 1  # the rows kept or skipped; the dropped are counted apart
    with pytest.raises(schema.DataFormatError, match="--label_map entry 'homme=1'"):
        table.read_table(tmp_path, labels=str(path), label_map="homme=1")
    # A DataFrame's own map, any case and type; a missing value is an empty cell.
    mapped = table.read_dataframe(pd.DataFrame({"path": ["a", "b"], "sex": ["Homme", 0]}),
                                  label_map={"homme": 1, 0: 0}).frame
    assert list(mapped["label"]) == [1, 0]
    with pytest.raises(schema.DataFormatError, match="row 1: empty path"):
        table.read_dataframe(pd.DataFrame({"path": ["a", None], "sex": ["m", "f"]}))
    with pytest.raises(schema.DataFormatError, match=r"no label column: name it with "
                       r"--label_column .*columns: file, age"):
        table.read_dataframe(pd.DataFrame({"file": ["a"], "age": ["3"]}))
    with pytest.raises(schema.DataFormatError, match="no path column 'photo'"):
        table.read_table(tmp_path, labels=str(path), path_column="photo")
    with pytest.raises(schema.DataFormatError, match=r"line 3: filename 'a.jpg' is listed again "
                       r"\(first at .*line 2\)"):
        path.write_text("filename,class\na.jpg,m\na.jpg,f\n")
        table.read_table(tmp_path, labels=str(path))
    with pytest.raises(schema.DataFormatError, match="no_such.csv: table file not found"):
        table.read_table(tmp_path, labels=str(tmp_path / "no_such.csv"))
    with pytest.raises(schema.DataFormatError, match="--slice_columns=height: no column height"):
        table.read_dataframe(pd.DataFrame({"file": ["a"], "sex": ["m"]}),
                             slice_columns=("height",))
    with pytest.raises(ValueError, match="--label_map entry 'homme=1'"):
        table.parse_label_map("homme=1")


def _tree(root, n=12):
    """n drawn JPEG faces in root/img and a table of them (labels alternating)."""
    (root / "img").mkdir(parents=True)
    rows = []
    for i in range(n):
        (root / "img" / f"{i}.jpg").write_bytes(fakes.jpeg_bytes(24, seed=i))
        rows.append({"filename": f"img/{i}.jpg", "class": "male" if i % 2 else "female",
                     "subject": f"s{i // 2}"})
    return pd.DataFrame(rows)


def test_a_dataframe_converts_to_the_same_shards_as_its_csv(tmp_path):
    frame = _tree(tmp_path / "faces")
    frame.to_csv(tmp_path / "faces" / "labels.csv", index=False)
    from_csv = convert.convert(ConvertConfig(
        source="table", data_dir="", labels=str(tmp_path / "faces" / "labels.csv"),
        out_dir=str(tmp_path / "a"), group_column="subject", progress=False))
    from_frame = convert.convert_dataframe(
        frame, str(tmp_path / "b"), data_dir=str(tmp_path / "faces"), group_column="subject",
        progress=False)
    assert from_csv["num_records"] == from_frame["num_records"] == 12
    assert [s["sha256"] for s in from_csv["shards"]] == [s["sha256"] for s in from_frame["shards"]]
    # One subject's two images sit on one side of the split.
    sides = {}
    for shard in from_csv["shards"]:
        for raw in tf.data.TFRecordDataset(str(tmp_path / "a" / shard["file"])):
            group = rec.parse_example(raw)[rec.GROUP].numpy().decode()
            sides.setdefault(group, set()).add(shard["split"])
    assert all(len(s) == 1 for s in sides.values()) and len(sides) == 6


def test_slice_columns_reach_the_records_and_the_evaluations_slices(tmp_path):
    from tfgender.evaluation import evaluate
    from tfgender.input import pipeline as input_pipeline

    frame = _tree(tmp_path / "faces")
    frame["age"] = [str(20 + i) for i in range(len(frame))]
    frame["race"] = ["A", "B"] * (len(frame) // 2)
    frame["glasses"] = ["yes", "no", ""] * (len(frame) // 3)
    convert.convert_dataframe(frame, str(tmp_path / "out"), data_dir=str(tmp_path / "faces"),
                              slice_columns=("age", "race", "glasses"), val_fraction=0,
                              test_fraction=1.0, progress=False)
    dataset = input_pipeline.create_dataset(str(tmp_path / "out"), split="test", batch_size=4,
                                            image_size=24, training=False, cache="none",
                                            with_metadata=True)
    data = evaluate.collect(dataset, {"center": lambda images: tf.zeros([len(images), 1])}, 4)
    keys = evaluate.slice_keys("table", np.concatenate(data["labels"]), data["source_ids"],
                               data["ages"], np.concatenate(data["folds"]), races=data["races"],
                               extras=data["extras"])
    by_path = dict(zip(frame["filename"], frame["glasses"], strict=True))
    assert set(keys) == {"gender", "age", "race", "race_gender", "glasses"}
    assert keys["glasses"] == [by_path[p] or evaluate.UNKNOWN for p in data["source_ids"]]
    assert sorted(keys["age"]) == sorted(frame["age"])


def test_bin_convert_tfrecords_takes_a_table_with_absolute_paths(tmp_path):
    frame = _tree(tmp_path / "faces", n=6)
    frame["filename"] = [str(tmp_path / "faces" / p) for p in frame["filename"]]
    frame.to_csv(tmp_path / "labels.csv", index=False)
    proc = subprocess.run([os.path.join(REPO, "bin", "convert_tfrecords"), "--source=table",
                           f"--labels={tmp_path / 'labels.csv'}", f"--out_dir={tmp_path / 'o'}",
                           "--noprogress"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.load(open(tmp_path / "o" / "manifest.json"))["num_records"] == 6
    proc = subprocess.run([os.path.join(REPO, "bin", "convert_tfrecords"), "--source=utkface",
                           f"--labels={tmp_path / 'labels.csv'}", f"--data_dir={tmp_path}",
                           f"--out_dir={tmp_path / 'p'}"], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 2 and "error: flag --labels: only --source=table takes it" \
        in proc.stderr, proc.stderr
