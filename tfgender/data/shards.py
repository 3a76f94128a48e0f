"""Shard integrity: a converted directory's files checked against its manifest before any step.

``verify`` runs before the first training, evaluation or cross-validation step. For each shard
it checks that the file exists, that its TFRecord framing is intact and holds the manifest's
``num_records``, and that its sha256 is the one the conversion recorded. Hashing costs a full
read of every shard, so a shard that passed is remembered in ``manifest.verified.json`` beside
the manifest, keyed by the file's size and modification time: the next run hashes only files
that changed (a shard edited after conversion gets a new mtime, so it is hashed again).

``find_damaged`` names the file behind a ``DataLossError`` that tf.data raised mid-epoch
(tf.data's message, "corrupted record at N", names none).
"""

from __future__ import annotations

import hashlib
import json
import os
import struct

import tensorflow as tf

from tfgender.files import write_json_atomic

VERIFIED = "manifest.verified.json"

# CRC-32C (Castagnoli), which TFRecord framing uses, for the header check below.
_CRC32C_TABLE = []
for _byte in range(256):
    _crc = _byte
    for _ in range(8):
        _crc = (_crc >> 1) ^ 0x82F63B78 if _crc & 1 else _crc >> 1
    _CRC32C_TABLE.append(_crc)


class DamagedShardError(tf.errors.DataLossError):
    """A shard whose framing, record count or sha256 is wrong; the message names the file."""

    def __init__(self, message: str):
        super().__init__(None, None, message)


def _masked_crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _CRC32C_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    crc ^= 0xFFFFFFFF
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def file_sha256(path: str) -> str:
    """The hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def count_frames(path: str) -> int:
    """Walks a shard's record headers (12 bytes each, payloads skipped); returns the count.

    Raises:
        FileNotFoundError: the shard is missing.
        DamagedShardError: the framing is broken (garbage, truncation), naming the file.
    """
    if not os.path.exists(path):
        raise FileNotFoundError(f"shard {path} listed in the manifest is missing; "
                                "re-run the conversion (bin/convert_tfrecords)")
    size = os.path.getsize(path)
    offset = count = 0
    with open(path, "rb") as f:
        while offset < size:
            header = f.read(12)
            problem = None
            if len(header) < 12:
                problem = "truncated record header"
            else:
                (length,) = struct.unpack("<Q", header[:8])
                (crc,) = struct.unpack("<I", header[8:])
                if crc != _masked_crc32c(header[:8]):
                    problem = "bad record length checksum"
                elif offset + 16 + length > size:
                    problem = "record runs past the end of the file"
            if problem:
                raise DamagedShardError(
                    f"corrupt TFRecord shard {path}: {problem} at byte {offset} "
                    "(is this even a TFRecord file?); re-run the conversion")
            offset += 16 + length
            count += 1
            f.seek(offset)
    return count


def _stamp(path: str, shard: dict) -> dict:
    stat = os.stat(path)
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": shard.get("sha256")}


def _remembered(root: str) -> dict:
    try:
        with open(os.path.join(root, VERIFIED)) as f:
            remembered = json.load(f)
    except (OSError, ValueError):
        return {}
    return remembered if isinstance(remembered, dict) else {}


def _check(root: str, shard: dict, manifest_name: str) -> None:
    path = os.path.join(root, shard["file"])
    found = count_frames(path)
    if found != shard["num_records"]:
        # An epoch's length comes from the manifest: a wrong count would repeat or cut data.
        raise ValueError(f"{os.path.join(root, manifest_name)}: shard {shard['file']} has "
                         f"num_records {shard['num_records']} but the file holds {found} "
                         "records; re-run the conversion")
    expected = shard.get("sha256")
    if expected and file_sha256(path) != expected:
        raise DamagedShardError(
            f"shard {path} does not match its sha256 in {manifest_name}: the file "
            "changed after conversion (damaged or edited); re-run the conversion")


def verify(root: str, shards: list[dict], manifest_name: str = "manifest.json") -> int:
    """Checks the shards of a selection against the manifest; remembers those that pass.

    Args:
        root: the converted directory.
        shards: manifest entries (``{file, num_records, sha256, ...}``).
        manifest_name: the manifest's file name, for messages.

    Returns:
        How many shards were hashed (0 when every one was remembered unchanged).

    Raises:
        FileNotFoundError: a shard is missing (named).
        DamagedShardError: a shard's framing is broken or its sha256 differs (named).
        ValueError: a shard holds another number of records than the manifest says (named).
    """
    remembered = _remembered(root)
    hashed = 0
    for shard in shards:
        path = os.path.join(root, shard["file"])
        if not os.path.exists(path):
            count_frames(path)  # raises the missing-shard error
        if remembered.get(shard["file"]) == _stamp(path, shard):
            continue
        _check(root, shard, manifest_name)
        remembered[shard["file"]] = _stamp(path, shard)
        hashed += 1
    if hashed:
        try:
            write_json_atomic(os.path.join(root, VERIFIED), remembered)
        except OSError:
            pass  # a read-only dataset: verify again next time
    return hashed


def find_damaged(root: str, shards: list[dict], manifest_name: str = "manifest.json") -> str:
    """Names what is wrong with the first damaged shard, hashing every one (nothing remembered).

    Returns:
        The error message of the first shard that fails, or "" when all pass.
    """
    for shard in shards:
        try:
            _check(root, shard, manifest_name)
        except (OSError, ValueError, tf.errors.DataLossError) as err:
            return getattr(err, "message", None) or str(err)
    return ""


__all__ = ["VERIFIED", "DamagedShardError", "count_frames", "file_sha256", "find_damaged", "verify"]
