"""Tests of tfgender/input/pipeline.py on small converted datasets (tiny images, a few dozen)."""

from __future__ import annotations

import os

import fakes
import numpy as np
import pytest
import tensorflow as tf

from tfgender.config import ConvertConfig, SampleDataConfig
from tfgender.data import convert, sample
from tfgender.data import records as rec
from tfgender.input import pipeline as ip

SIZE = 32


def _convert(data_dir, out_dir, **kw):
    kw.setdefault("source", "utkface")
    return convert.convert(ConvertConfig(data_dir=str(data_dir), out_dir=str(out_dir),
                                         progress=False, **kw))


@pytest.fixture(scope="module")
def utk(tmp_path_factory):
    """40 UTKFace-named 48 px images converted into train/val/test x 2 shards."""
    root = tmp_path_factory.mktemp("utk")
    fakes.write_utkface_tree(str(root / "raw"), 40, size=48)
    _convert(root / "raw", root / "out", num_shards=2, val_fraction=0.25, test_fraction=0.25)
    return str(root / "out")


def _source_records(out_dir, split=None):
    """{source_id: label} read straight from the shards, bypassing the pipeline."""
    manifest = rec.load_manifest(out_dir)
    files = [os.path.join(out_dir, s["file"]) for s in manifest["shards"]
             if split is None or s["split"] == split]
    out = {}
    for raw in tf.data.TFRecordDataset(files):
        example = rec.parse_example(raw)
        out[example[rec.SOURCE_ID].numpy().decode()] = int(example[rec.LABEL])
    return out


def _collect(dataset):
    """Lists of (source ids, labels, images) per batch."""
    batches = []
    for images, labels, meta in dataset:
        batches.append(([s.decode() for s in meta["source_id"].numpy()], labels.numpy(),
                        images.numpy()))
    return batches


def _train(utk, **kw):
    kw = {"split": "train", "batch_size": 4, "image_size": SIZE, "training": True,
          "cache": "memory", "deterministic": True, "with_metadata": True, "seed": 3, **kw}
    return ip.create_dataset(utk, **kw)


def test_eval_pass_yields_every_record_once(utk):
    batches = _collect(ip.create_dataset(utk, batch_size=7, image_size=SIZE, training=False,
                                         with_metadata=True, cache="none"))
    ids = [i for b in batches for i in b[0]]
    labels = [int(v) for b in batches for v in b[1]]
    expected = _source_records(utk)
    assert len(ids) == len(set(ids)) == 40
    assert dict(zip(ids, labels, strict=True)) == expected
    assert batches[-1][1].shape == (40 % 7,)  # the partial batch is kept in evaluation
    assert ip.count_records(utk) == 40
    assert ip.count_records(utk, split=["val", "test"]) == sum(
        len(_source_records(utk, s)) for s in ("val", "test"))


def test_training_epochs_are_pure_functions_of_seed_and_epoch(utk):
    per_epoch = ip.steps_per_epoch(utk, split="train", batch_size=4)
    num_train = ip.count_records(utk, split="train")
    assert per_epoch == num_train // 4 > 1

    def epochs(dataset, count):
        ids = [b[0] for b in _collect(dataset)]
        return [sum(ids[k * per_epoch:(k + 1) * per_epoch], []) for k in range(count)]

    run = epochs(_train(utk, num_epochs=3), 3)
    again = epochs(_train(utk, num_epochs=3), 3)
    assert run == again
    for order in run:
        assert len(order) == len(set(order)) == per_epoch * 4
    assert run[0] != run[1] and run[1] != run[2]
    resumed = epochs(_train(utk, start_epoch=2, num_epochs=3), 1)
    assert resumed[0] == run[2]
    # A resumed run skips the steps already done in the epoch and continues identically.
    skipped = _collect(_train(utk, start_epoch=1, num_epochs=2).skip(2))
    assert [b[0] for b in skipped] == [run[1][k * 4:(k + 1) * 4] for k in range(2, per_epoch)]
    other_seed = epochs(_train(utk, num_epochs=1, seed=4), 1)
    assert other_seed[0] != run[0]
    endless = _train(utk).take(per_epoch * 3 + 1)
    assert epochs(endless, 3) == run


def test_cache_modes_give_identical_images(utk, tmp_path):
    def images(cache, **kw):
        dataset = ip.create_dataset(utk, split="train", batch_size=64, image_size=SIZE,
                                    training=False, cache=cache, with_metadata=True,
                                    deterministic=True, **kw)
        return [(b[0], b[2]) for b in _collect(dataset)]

    def assert_same(got, want):
        assert len(got) == len(want)
        for (ids, pixels), (want_ids, want_pixels) in zip(got, want, strict=True):
            assert ids == want_ids
            np.testing.assert_array_equal(pixels, want_pixels)

    reference = images("none")
    assert_same(images("memory"), reference)
    for _ in range(2):  # the second pass reads the cache files the first one wrote
        assert_same(images(f"disk:{tmp_path / 'cache'}"), reference)
    assert any(name.endswith(".index") for name in os.listdir(tmp_path / "cache"))


def test_auto_cache_decides_from_record_counts(utk, tmp_path, caplog):
    caplog.set_level("INFO", logger="absl")  # absl flag parsing may have raised its level
    cache_dir = os.path.join(utk, ip.AUTO_CACHE_DIR)
    list(ip.create_dataset(utk, split="val", batch_size=64, image_size=SIZE, training=False,
                           cache="auto", ram_budget_gb=1.0))
    assert "cache=auto -> memory" in caplog.text
    assert not os.path.exists(cache_dir)
    # 10 images x 32 x 32 x 3 bytes = 30 KB: over a 10 KB budget -> disk beside the shards.
    list(ip.create_dataset(utk, split="val", batch_size=64, image_size=SIZE, training=False,
                           cache="auto", ram_budget_gb=1e-5))
    assert "cache=auto -> disk" in caplog.text
    assert any(name.endswith(".index") for name in os.listdir(cache_dir))
    with pytest.raises(ValueError, match="unknown cache"):
        ip.create_dataset(utk, batch_size=4, image_size=SIZE, training=False, cache="ram")


def test_shapes_and_dtypes_are_static(utk):
    images, labels = _train(utk, with_metadata=False).element_spec
    assert images.shape == (4, SIZE, SIZE, 3) and images.dtype == tf.uint8
    assert labels.shape == (4,) and labels.dtype == tf.int32
    spec = ip.create_dataset(utk, batch_size=4, image_size=SIZE, training=False,
                             with_metadata=True).element_spec
    assert spec[0].shape.as_list() == [None, SIZE, SIZE, 3]
    assert spec[2]["fold"].dtype == tf.int32 and spec[2]["age"].dtype == tf.string
    image, label = next(iter(_train(utk, with_metadata=False, image_size=20)))
    assert image.shape == (4, 20, 20, 3) and image.dtype == tf.uint8
    assert set(label.numpy()) <= {0, 1}


def _copy(utk, tmp_path):
    out = tmp_path / "copy"
    out.mkdir()
    for name in os.listdir(utk):
        if name.endswith((".tfrecord", ".json")):
            (out / name).write_bytes(open(os.path.join(utk, name), "rb").read())
    return out


def test_missing_and_corrupt_shards_are_named(utk, tmp_path):
    out = _copy(utk, tmp_path)
    shards = sorted(s["file"] for s in rec.load_manifest(str(out))["shards"]
                    if s["split"] == "train")
    original = (out / shards[0]).read_bytes()
    os.remove(out / shards[0])
    with pytest.raises(FileNotFoundError, match=shards[0]):
        ip.create_dataset(str(out), split="train", batch_size=4, image_size=SIZE, training=True)
    (out / shards[0]).write_bytes(os.urandom(3000))  # garbage where a shard should be
    with pytest.raises(tf.errors.DataLossError, match=shards[0]):
        ip.create_dataset(str(out / "manifest.json"), split=["train"], folds=None, batch_size=4,
                          image_size=SIZE, training=False)
    (out / shards[0]).write_bytes(original[:-7])  # truncated
    with pytest.raises(tf.errors.DataLossError, match=shards[0] + ".*past the end"):
        ip.create_dataset(str(out), split="train", batch_size=4, image_size=SIZE, training=False)
    (out / shards[0]).write_bytes(original)
    assert len(list(ip.create_dataset(str(out), split="train", batch_size=4, image_size=SIZE,
                                      training=False))) > 0


def test_empty_selection_names_what_exists(utk, tmp_path):
    with pytest.raises(ValueError, match="empty split.*split train fold -1"):
        ip.create_dataset(utk, split="nope", batch_size=4, image_size=SIZE, training=True)
    with pytest.raises(ValueError, match="empty split"):
        ip.count_records(utk, folds=[0])
    with pytest.raises(ValueError, match="cannot fill one batch"):
        ip.create_dataset(utk, split="val", batch_size=64, image_size=SIZE, training=True)
    with pytest.raises(FileNotFoundError, match="manifest.json"):
        ip.create_dataset(str(tmp_path), batch_size=4, image_size=SIZE, training=True)


def test_input_context_shards_by_file(utk):
    manifest = rec.load_manifest(utk)
    files = sorted(s["file"] for s in manifest["shards"] if s["split"] == "test")
    assert len(files) == 2
    seen = []
    for pipeline in range(2):
        context = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=pipeline)
        dataset = ip.create_dataset(utk, split="test", batch_size=64, image_size=SIZE,
                                    training=False, with_metadata=True, input_context=context)
        ids = [i for b in _collect(dataset) for i in b[0]]
        file_ids = {rec.parse_example(r)[rec.SOURCE_ID].numpy().decode()
                    for r in tf.data.TFRecordDataset(os.path.join(utk, files[pipeline]))}
        assert set(ids) == file_ids
        seen.append(set(ids))
    assert not seen[0] & seen[1]
    assert seen[0] | seen[1] == set(_source_records(utk, "test"))
    context = tf.distribute.InputContext(num_input_pipelines=3, input_pipeline_id=0)
    with pytest.raises(ValueError, match="2 shard files cannot feed 3 input pipelines"):
        ip.create_dataset(utk, split="test", batch_size=4, image_size=SIZE, training=False,
                          input_context=context)


def test_tf_data_service_yields_the_same_records(utk):
    service = tf.data.experimental.service
    dispatcher = service.DispatchServer(service.DispatcherConfig(port=0))
    address = dispatcher.target.split("://")[1]
    worker = service.WorkerServer(service.WorkerConfig(dispatcher_address=address, port=0))
    try:
        dataset = ip.create_dataset(utk, batch_size=8, image_size=SIZE, training=False,
                                    with_metadata=True, cache="none",
                                    data_service_address=dispatcher.target)
        batches = _collect(dataset)
        pairs = sorted((i, int(v)) for b in batches for i, v in zip(b[0], b[1], strict=True))
        assert pairs == sorted(_source_records(utk).items())
        # Training without a cache asks the service for every epoch anew.
        training = _train(utk, cache="none", num_epochs=2, deterministic=False,
                          data_service_address=dispatcher.target)
        ids = [i for b in _collect(training) for i in b[0]]
        per_epoch = ip.steps_per_epoch(utk, split="train", batch_size=4) * 4
        assert len(ids) == 2 * per_epoch
        train_ids = set(_source_records(utk, "train"))
        assert set(ids[:per_epoch]) <= train_ids and set(ids[per_epoch:]) <= train_ids
    finally:
        worker.stop()
        dispatcher.stop()


def test_adience_folds_and_metadata(tmp_path):
    sample.make_sample_data(SampleDataConfig("adience", str(tmp_path / "raw"), num_images=30,
                                             image_size=40))
    manifest = _convert(tmp_path / "raw", tmp_path / "out", source="adience")
    out = str(tmp_path / "out")
    expected = sum(manifest["counts"]["fold"].get(str(f), 0) for f in (0, 1, 3))
    assert ip.count_records(out, folds=[0, 1, 3]) == expected
    batches = list(ip.create_dataset(out, folds=[0, 1, 3], batch_size=50, image_size=24,
                                     training=False, with_metadata=True))
    folds = np.concatenate([b[2]["fold"].numpy() for b in batches])
    assert len(folds) == expected and set(folds) <= {0, 1, 3}
    ages = {a.decode() for b in batches for a in b[2]["age"].numpy()}
    assert ages and all(a for a in ages)
    with pytest.raises(ValueError, match="empty split.*split \\(none\\) fold 2"):
        ip.count_records(out, split="train")
