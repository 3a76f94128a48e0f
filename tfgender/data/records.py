"""The TFRecord schema, defined once and used by the writer and every reader.

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
(``train``) or the Adience fold (``fold0``); see ``shard_name``.
"""

from __future__ import annotations

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
}


def _bytes(value: bytes | str) -> tf.train.Feature:
    if isinstance(value, str):
        value = value.encode("utf-8")
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def _int64(value: int) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(value)]))


def make_example(*, encoded: bytes, height: int, width: int, label: int, source_id: str,
                 group: str = "", fold: int = -1, split: str = "", age: str = "",
                 race: str = "", image_format: str = "jpeg") -> bytes:
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
