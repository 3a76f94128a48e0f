"""A bounded, seeded fuzz test of bad input: label files, manifests and shards.

Each case damages one file (a truncation, flipped bytes, or one field replaced) and runs what
reads it: the conversion for label files, the input pipeline that train and evaluate build
before their first step for manifests and shards, and a few whole train/evaluate runs. Every
outcome must be either a clear error (one of the types the programs print as one ``error:``
line, a one-line message) or a correct result (counts that agree with what is on disk). A
traceback's exception type, a message over several lines or a wrong count fails the case.
"""

from __future__ import annotations

import functools
import json
import os
import random
import shutil

import pytest
import tensorflow as tf

from tfgender.config import ConvertConfig, EvaluateConfig, SampleDataConfig, TrainConfig
from tfgender.data import convert, sample, schema, shards
from tfgender.data import records as rec
from tfgender.evaluation import evaluate
from tfgender.input import pipeline as input_pipeline
from tfgender.training import loop

# A longer search: TFGENDER_FUZZ_SEED=7 TFGENDER_FUZZ_CASES=100 pytest tests/test_fuzz.py -s
SEED = int(os.environ.get("TFGENDER_FUZZ_SEED", "20261201"))
CASES_PER_KIND = int(os.environ.get("TFGENDER_FUZZ_CASES", "10"))  # per file and mutation
TOKENS = ("", "-1", "x", "999999999", "nan", "1e400", "../../etc/passwd", "a" * 300, "\t",
          "Male,Female", "(0, 2)", "é", "0x10")
# What bin/convert_tfrecords, bin/train and bin/evaluate print as one error line.
CONVERT_ERRORS = (convert.ConversionError, schema.DataFormatError, FileNotFoundError)
READ_ERRORS = (ValueError, FileNotFoundError, tf.errors.DataLossError)

_tried = {"cases": 0, "errors": 0, "correct": 0}


def _mutate(data: bytes, kind: str, rng: random.Random, delimiter: bytes | None) -> bytes:
    if kind == "truncate":
        return data[:rng.randrange(len(data))]
    if kind == "flip":
        out = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            out[rng.randrange(len(out))] = rng.randrange(256)
        return bytes(out)
    lines = data.split(b"\n")  # "field": one field of one line replaced
    index = rng.randrange(len(lines))
    fields = lines[index].split(delimiter) if delimiter else lines[index].split()
    if fields:
        fields[rng.randrange(len(fields))] = rng.choice(TOKENS).encode()
    lines[index] = (delimiter or b" ").join(fields)
    return b"\n".join(lines)


def _one_line(err: BaseException) -> None:
    message = getattr(err, "message", None) or str(err)
    assert message and "\n" not in message.strip(), repr(message)


def _check_conversion(data_dir: str, out_dir: str, source: str) -> None:
    try:
        manifest = convert.convert(ConvertConfig(
            source=source, data_dir=data_dir, out_dir=out_dir, image_size=24,
            val_fraction=0.2, test_fraction=0.2, max_skipped_fraction=1.0, progress=False))
    except CONVERT_ERRORS as err:
        _one_line(err)
        _tried["errors"] += 1
        return
    # Rows the protocol drops (Adience gender u) are counted apart from the rows read.
    assert manifest["num_records"] + manifest["num_skipped"] == manifest["num_rows_read"]
    on_disk = sum(shards.count_frames(os.path.join(out_dir, s["file"]))
                  for s in manifest["shards"])
    assert on_disk == manifest["num_records"]
    _tried["correct"] += 1


@pytest.fixture(scope="module")
def sources(tmp_path_factory, shared_data) -> dict:
    """Clean trees of each label-file format: (data dir, label file, delimiter, source)."""
    root = tmp_path_factory.mktemp("fuzz_sources")
    trees = {}
    for name in ("adience", "celeba"):
        sample.make_sample_data(SampleDataConfig(format=name, out_dir=str(root / name),
                                                 num_images=30, image_size=48, seed=4))
    trees["adience"] = (root / "adience", "fold_0_data.txt", b"\t", "adience")
    trees["celeba"] = (root / "celeba", "list_attr_celeba.txt", None, "celeba")
    fairface = root / "fairface"
    (fairface / "train").mkdir(parents=True)
    lines = (shared_data / "fairface" / "fairface_label_train.csv").read_text().splitlines()
    for line in lines[1:31]:
        shutil.copy(shared_data / "fairface" / line.split(",", 1)[0], fairface / line.split(",")[0])
    (fairface / "fairface_label_train.csv").write_text("\n".join(lines[:31]) + "\n")
    trees["fairface"] = (fairface, "fairface_label_train.csv", b",", "fairface")
    return trees


@pytest.mark.slow
@pytest.mark.parametrize("name", ["adience", "celeba", "fairface"])
def test_damaged_label_files_convert_or_fail_clearly(sources, tmp_path, name):
    data_dir, label_file, delimiter, source = sources[name]
    rng = random.Random(f"{SEED}-{name}")
    clean = (data_dir / label_file).read_bytes()
    for kind in ("truncate", "flip", "field"):
        for case in range(CASES_PER_KIND):
            work = tmp_path / f"{kind}{case}"
            shutil.copytree(data_dir, work / "src")
            (work / "src" / label_file).write_bytes(_mutate(clean, kind, rng, delimiter))
            _tried["cases"] += 1
            _check_conversion(str(work / "src"), str(work / "out"), source)
            shutil.rmtree(work)


def _read_all(data_dir: str) -> None:
    """What train and evaluate do before the first step, then one full pass per split."""
    try:
        manifest = rec.load_manifest(data_dir)
        for split in sorted({s["split"] for s in manifest["shards"]}):
            expected = input_pipeline.count_records(data_dir, split=split)
            dataset = input_pipeline.create_dataset(data_dir, split=split, batch_size=16,
                                                    image_size=48, training=False,
                                                    cache="none")
            assert sum(int(labels.shape[0]) for _, labels in dataset) == expected
    except READ_ERRORS as err:
        _one_line(err)
        _tried["errors"] += 1
        return
    _tried["correct"] += 1


@pytest.fixture(scope="module")
def records(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("fuzz_records")
    sample.make_sample_data(SampleDataConfig(format="utkface", out_dir=str(root / "raw"),
                                             num_images=60, image_size=32, seed=5))
    convert.convert(ConvertConfig(source="utkface", data_dir=str(root / "raw"),
                                  out_dir=str(root / "records"), num_shards=2, image_size=48,
                                  val_fraction=0.2, test_fraction=0.2, progress=False))
    return str(root / "records")


def _field_edit(manifest: dict, rng: random.Random) -> dict:
    edited = json.loads(json.dumps(manifest))
    value = rng.choice([0, -1, 5000, "x", None, 1.5, [], {}, "../../x", 99])
    if rng.random() < 0.4:
        edited[rng.choice(["schema_version", "num_records", "source", "shards"])] = value
    else:
        shard = rng.choice(edited["shards"])
        shard[rng.choice(["file", "split", "fold", "num_records", "sha256"])] = value
    return edited


@pytest.mark.slow
def test_damaged_manifests_and_shards_are_refused_clearly_or_read_exactly(records, tmp_path):
    rng = random.Random(f"{SEED}-records")
    manifest_text = open(os.path.join(records, convert.MANIFEST), "rb").read()
    manifest = json.loads(manifest_text)
    files = [s["file"] for s in manifest["shards"]]
    for kind in ("truncate", "flip", "field", "shard-truncate", "shard-flip"):
        for case in range(CASES_PER_KIND):
            work = str(tmp_path / f"{kind}{case}")
            shutil.copytree(records, work)
            if kind == "field":
                with open(os.path.join(work, convert.MANIFEST), "w") as f:
                    json.dump(_field_edit(manifest, rng), f)
            elif kind.startswith("shard-"):
                path = os.path.join(work, rng.choice(files))
                data = open(path, "rb").read()
                with open(path, "wb") as f:
                    f.write(_mutate(data, kind.split("-")[1], rng, None))
            else:
                with open(os.path.join(work, convert.MANIFEST), "wb") as f:
                    f.write(_mutate(manifest_text, kind, rng, None))
            _tried["cases"] += 1
            _read_all(work)
            shutil.rmtree(work)


@pytest.mark.slow
def test_train_and_evaluate_on_a_damaged_shard_fail_clearly(records, tmp_path):
    rng = random.Random(f"{SEED}-runs")
    workdir = str(tmp_path / "run")
    config = TrainConfig(data_dir=records, model="levi_hassner", image_size=40,
                         cache_image_size=48, batch_size=8, epochs=1, steps_per_epoch=2,
                         precision="float32", jit_compile="false", cache="none",
                         summary_images=0, progress=False)
    loop.train_and_evaluate(config, workdir)
    for kind in ("truncate", "flip"):
        damaged = str(tmp_path / kind)
        shutil.copytree(records, damaged)
        shard = sorted(s["file"] for s in rec.load_manifest(damaged)["shards"]
                       if s["split"] == "val")[0]  # read by both
        path = os.path.join(damaged, shard)
        data = open(path, "rb").read()
        with open(path, "wb") as f:
            f.write(_mutate(data, kind, rng, None))
        runs = (functools.partial(loop.train_and_evaluate,
                                  TrainConfig(**{**config.__dict__, "data_dir": damaged}),
                                  str(tmp_path / f"run_{kind}")),
                functools.partial(evaluate.evaluate, EvaluateConfig(
                    workdir=workdir, data_dir=damaged, split="val", batch_size=8)))
        for run in runs:
            _tried["cases"] += 1
            with pytest.raises((loop.TrainingError, evaluate.EvaluationError)) as caught:
                run()
            _one_line(caught.value)
            assert shard in str(caught.value)
            _tried["errors"] += 1


def test_report_how_many_cases_were_tried():
    """Prints the tally (run last in this module; pytest keeps file order)."""
    print(f"fuzz: {_tried['cases']} cases, {_tried['errors']} clear errors, "
          f"{_tried['correct']} correct runs")
    assert _tried["cases"] == 0 or _tried["cases"] == _tried["errors"] + _tried["correct"]
