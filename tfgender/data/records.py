"""The TFRecord schema and the manifest, defined once and used by the writer and every reader.

Each record is a ``tf.train.Example`` with these features:

- ``image/encoded``  (bytes)  the JPEG bytes (the source file's own bytes, or re-encoded
  when conversion resized the image).
- ``image/format``   (bytes)  ``b"jpeg"``.
- ``image/height``   (int64)  height of the encoded image in pixels.
- ``image/width``    (int64)  width of the encoded image in pixels.
- ``image/label``    (int64)  1 = male, 0 = female.
- ``image/source_id`` (bytes) the image's path relative to the data directory: a stable id.
- ``image/group``    (bytes)  identity / album, or the image id (see ``data/schema.py``).
- ``image/fold``     (int64)  Adience fold 0-4, else -1.
- ``image/split``    (bytes)  ``train``/``val``/``test`` or empty.
- ``image/age``      (bytes)  the age as the source gives it.
- ``image/race``     (bytes)  the race group as the source gives it (FairFace ``East Asian``,
  UTKFace's code ``0``-``4``), or empty; older conversions lack it and read as empty.

Shards are named ``<set>-00000-of-00008.tfrecord`` where ``<set>`` is the split
(``train``) or the Adience fold (``fold0``); see ``shard_name``. A conversion is complete
when its ``manifest.json`` is there (``load_manifest`` reads and checks it: schema version,
one entry per shard with its split, fold, count and sha256).
"""

from __future__ import annotations

import json
import os

import tensorflow as tf

SCHEMA_VERSION = 1

ENCODED = "image/encoded"
FORMAT = "image/format"
HEIGHT = "image/height"
WIDTH = "image/width"
LABEL = "image/label"
SOURCE_ID = "image/source_id"
GROUP = "image/group"
FOLD = "image/fold"
SPLIT = "image/split"
AGE = "image/age"
RACE = "image/race"
# A table's other columns kept for evaluation slices (--slice_columns): JSON {column: value}.
EXTRA = "image/extra"

FEATURES = {
    ENCODED: tf.io.FixedLenFeature([], tf.string),
    FORMAT: tf.io.FixedLenFeature([], tf.string, default_value=b"jpeg"),
    HEIGHT: tf.io.FixedLenFeature([], tf.int64),
    WIDTH: tf.io.FixedLenFeature([], tf.int64),
    LABEL: tf.io.FixedLenFeature([], tf.int64),
    SOURCE_ID: tf.io.FixedLenFeature([], tf.string),
    GROUP: tf.io.FixedLenFeature([], tf.string, default_value=b""),
    FOLD: tf.io.FixedLenFeature([], tf.int64, default_value=-1),
    SPLIT: tf.io.FixedLenFeature([], tf.string, default_value=b""),
    AGE: tf.io.FixedLenFeature([], tf.string, default_value=b""),
    RACE: tf.io.FixedLenFeature([], tf.string, default_value=b""),
    EXTRA: tf.io.FixedLenFeature([], tf.string, default_value=b""),
}


def _bytes(value: bytes | str) -> tf.train.Feature:
    if isinstance(value, str):
        value = value.encode("utf-8")
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def _int64(value: int) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(value)]))


def make_example(*, encoded: bytes, height: int, width: int, label: int, source_id: str,
                 group: str = "", fold: int = -1, split: str = "", age: str = "",
                 race: str = "", extra: str = "", image_format: str = "jpeg") -> bytes:
    """Serializes one face image and its metadata as a ``tf.train.Example``.

    Returns:
        The serialized example, ready for ``tf.io.TFRecordWriter.write``.
    """
    feature = {
        ENCODED: _bytes(encoded),
        FORMAT: _bytes(image_format),
        HEIGHT: _int64(height),
        WIDTH: _int64(width),
        LABEL: _int64(label),
        SOURCE_ID: _bytes(source_id),
        GROUP: _bytes(group),
        FOLD: _int64(fold),
        SPLIT: _bytes(split),
        AGE: _bytes(age),
    }
    if race:  # only sources that know it: their shards stay byte-identical to before
        feature[RACE] = _bytes(race)
    if extra:  # likewise: a table's slice columns
        feature[EXTRA] = _bytes(extra)
    example = tf.train.Example(features=tf.train.Features(feature=feature))
    # Feature maps serialize in hash order unless asked: deterministic output makes shards
    # byte-identical across processes, worker counts and reruns.
    return example.SerializeToString(deterministic=True)


def parse_example(serialized: tf.Tensor) -> dict[str, tf.Tensor]:
    """Parses one serialized example (tf.function-safe) into a dict keyed like ``FEATURES``."""
    return tf.io.parse_single_example(serialized, FEATURES)


def shard_name(set_name: str, index: int, num_shards: int) -> str:
    """Returns ``<set_name>-<index:05d>-of-<num_shards:05d>.tfrecord``."""
    return f"{set_name}-{index:05d}-of-{num_shards:05d}.tfrecord"


# --------------------------------------------------------------------------- the manifest
MANIFEST = "manifest.json"
# Written instead of MANIFEST when too many images were skipped: the directory is then not a
# usable conversion, and a rerun (with a higher --max_skipped_fraction) reuses its shards.
FAILED_MANIFEST = "manifest.failed.json"


def load_manifest(path: str) -> dict:
    """Reads a manifest from a converted directory or a manifest file path.

    Raises:
        FileNotFoundError: naming the path when no complete conversion is there.
        ValueError: the manifest is not valid JSON or fails ``check_manifest``.
    """
    if os.path.isdir(path):
        path = os.path.join(path, MANIFEST)
    if not os.path.exists(path):
        failed = os.path.join(os.path.dirname(path), FAILED_MANIFEST)
        if os.path.exists(failed):
            with open(failed) as f:
                failure = json.load(f).get("failure", "see the file")
            raise FileNotFoundError(f"{os.path.dirname(path)}: its conversion failed ({failure}; "
                                    f"{FAILED_MANIFEST}): rerun bin/convert_tfrecords")
        raise FileNotFoundError(
            f"no {MANIFEST} at {path}: not a complete conversion (run bin/convert_tfrecords)")
    with open(path) as f:
        try:
            manifest = json.load(f)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: not valid JSON ({err}); re-run the conversion") from None
    check_manifest(manifest, path)
    return manifest


def _shard_entry_problem(shard: dict) -> str:
    """What is wrong with one manifest shard entry, or "" (the writer's own field types)."""
    name = shard.get("file")
    if not isinstance(name, str) or not name or os.path.isabs(name) or \
            os.path.normpath(name) != name or name.startswith(".."):
        return f"file {name!r} is not a file name inside the directory"
    if shard.get("split") not in ("train", "val", "test", ""):
        return f"split {shard.get('split')!r} is not train, val, test or empty"
    for key in ("fold", "num_records"):
        value = shard.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < (
                -1 if key == "fold" else 0):
            return f"{key} {value!r} is not a valid count"
    sha = shard.get("sha256")
    if not (isinstance(sha, str) and len(sha) == 64 and all(c in "0123456789abcdef"
                                                            for c in sha)):
        return f"sha256 {sha!r} is not a hex digest"
    return ""


def check_manifest(manifest: dict, path: str) -> None:
    """Refuses a manifest this version cannot read or whose counts disagree, naming the field.

    Raises:
        ValueError: unknown ``schema_version``, no ``shards`` list, or ``num_records`` that is
            not the sum of its shards'.
    """
    if not isinstance(manifest, dict):
        raise ValueError(f"{path}: not a tfgender manifest (a JSON object is expected)")
    version = manifest.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ValueError(f"{path}: schema_version {version!r} is not {SCHEMA_VERSION}, "
                         "the version this tfgender reads; re-run the conversion")
    shards = manifest.get("shards")
    if not isinstance(shards, list) or not all(isinstance(s, dict) for s in shards):
        raise ValueError(f"{path}: shards must be a list of {{file, split, fold, num_records, "
                         "sha256}")
    for index, shard in enumerate(shards):
        problem = _shard_entry_problem(shard)
        if problem:
            raise ValueError(f"{path}: shards[{index}]: {problem}; re-run the conversion")
    total = sum(s["num_records"] for s in shards)
    if manifest.get("num_records") != total:
        raise ValueError(f"{path}: num_records {manifest.get('num_records')!r} is not the sum "
                         f"of its shards' num_records ({total})")
