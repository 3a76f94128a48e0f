"""Converts a dataset into sharded TFRecords and a manifest: safe to kill, resumable, reproducible.

Steps, in order:
1. read the source into the one DataFrame schema (``data/readers.py``);
2. give sources without a split a deterministic grouped train/val/test split, or, with
   ``num_folds`` k > 0, k grouped folds instead (``splits.assign_folds_or_split``: UTKFace and
   CelebA become cross-validatable like Adience);
3. plan shards: one record set per fold (``fold{k}``; any fold can be the test fold) or per
   split, rows shuffled with the split seed (so shards mix labels) and cut into shards of about
   ``shard_size_mb``;
4. write each shard under a temporary name, rename it when complete and record its checksum in
   ``.progress/`` (a rerun of the same command skips completed shards; shard contents depend only
   on the plan, never on ``num_workers``);
5. write ``manifest.json`` last: a directory with a manifest is a complete conversion.

Every image that cannot be converted (missing, empty, truncated, corrupt, not JPEG, wrong
extension, a decompression bomb, a path leaving the data directory) is reported with its path
and reason on stderr and in the manifest, and skipped.
"""

from __future__ import annotations

import collections
import concurrent.futures
import concurrent.futures.process
import dataclasses
import functools
import glob
import hashlib
import json
import math
import multiprocessing
import os
import queue as queue_lib
import shutil
import sys

import numpy as np
import pandas as pd

from tfgender import errors, quiet
from tfgender import progress as progress_lib
from tfgender.config import TABLE_FIELDS
from tfgender.data import convert_worker, image_check, image_files, readers, splits
from tfgender.data import records as rec
from tfgender.data import shards as shards_lib

# The manifest's reader lives with the schema (reading a dataset needs no writer); the
# converter writes what it reads.
from tfgender.data.records import FAILED_MANIFEST, MANIFEST
from tfgender.files import write_json_atomic

PROGRESS_DIR = ".progress"
PLAN_FILE = "plan.json"
# Config fields that do not change the output: a rerun that differs only in these resumes.
# (``num_folds`` does change it, so it is part of the fingerprint.)
_RUNTIME_FIELDS = ("num_workers", "progress", "overwrite", "max_skipped_fraction")


class ConversionError(RuntimeError):
    """The conversion cannot start or finish; the message says why and what to do."""


@dataclasses.dataclass(frozen=True)
class ShardTask:
    """One shard to write: its file name, record set and rows (dicts of schema columns)."""

    name: str
    set_name: str
    split: str
    fold: int
    rows: tuple


def _reader_options(config) -> dict:
    if config.source == "table":
        return {name: getattr(config, name) for name in TABLE_FIELDS}
    if config.source == "adience":
        return {"frontal": config.adience_frontal, "image_set": config.adience_image_set}
    if config.source == "celeba":
        return {"attributes": config.celeba_attributes}
    return {}


def _set_name(split: str, fold: int) -> str:
    # A fold, when a row has one, names its record set: the folds are the unit of selection.
    if fold >= 0:
        return f"fold{fold}"
    return split or "unsplit"


def _folds_or_split(frame: pd.DataFrame, config) -> pd.DataFrame:
    """``splits.assign_folds_or_split`` with the config's settings."""
    try:
        return splits.assign_folds_or_split(
            frame, source=config.source, num_folds=config.num_folds,
            val_fraction=config.val_fraction, test_fraction=config.test_fraction,
            seed=config.split_seed)
    except ValueError as err:
        raise ConversionError(str(err)) from None


def _estimate_bytes(frame: pd.DataFrame, data_dir: str, image_size: int) -> float:
    """Estimates the encoded bytes of ``frame``'s images after conversion (for shard sizing)."""
    sizes = []
    for path in frame["path"]:
        try:
            sizes.append(os.path.getsize(os.path.join(data_dir, path)))
        except OSError:
            sizes.append(0)
    total = float(sum(sizes))
    if image_size <= 0 or not len(frame):
        return total
    # Scale by the pixel ratio of a few images' headers: resizing shrinks the files.
    ratios = []
    for path in frame["path"].head(16):
        try:
            with open(os.path.join(data_dir, path), "rb") as f:
                width, height = image_check.jpeg_size(f.read(1 << 16))
            ratios.append(min(1.0, image_size * image_size / (width * height)))
        except (OSError, image_check.ImageCheckError):
            continue
    return total * (float(np.mean(ratios)) if ratios else 1.0)


def plan_shards(frame: pd.DataFrame, config) -> list[ShardTask]:
    """Cuts ``frame`` into shard tasks, deterministically from the config.

    Returns:
        Shard tasks sorted by file name.
    """
    tasks = []
    keys = frame.apply(lambda r: _set_name(r["split"], int(r["fold"])), axis=1)
    for set_name in sorted(keys.unique()):
        part = frame[keys == set_name]
        # A seeded shuffle, so every shard mixes labels and groups whatever the source order.
        order = np.random.RandomState(config.split_seed).permutation(len(part))
        part = part.iloc[order]
        if config.num_shards > 0:
            num = config.num_shards
        else:
            est = _estimate_bytes(part, config.data_dir, config.image_size)
            num = max(1, math.ceil(est / (config.shard_size_mb * 1e6)))
        num = max(1, min(num, len(part)))
        columns = ["path", "label", "group", "fold", "split", "age"]
        # A race name (FairFace) goes into the records; UTKFace's race code stays in its file
        # name, so its shards are byte-identical to those of earlier conversions.
        named_race = "race" in part.columns and pd.api.types.is_string_dtype(part["race"])
        extra = ["extra"] if "extra" in part.columns else []  # a table's slice columns
        rows = part[columns + (["race"] if named_race else []) + extra].to_dict("records")
        split = str(rows[0]["split"])  # every row of a record set shares its split and fold
        fold = int(rows[0]["fold"])
        for index, chunk in enumerate(np.array_split(np.arange(len(rows)), num)):
            tasks.append(ShardTask(
                name=rec.shard_name(set_name, index, num), set_name=set_name, split=split,
                fold=fold, rows=tuple(rows[i] for i in chunk)))
    return sorted(tasks, key=lambda t: t.name)


def _fingerprint(config, tasks: list[ShardTask]) -> str:
    fields = {k: v for k, v in dataclasses.asdict(config).items() if k not in _RUNTIME_FIELDS}
    fields["data_dir"] = os.path.abspath(config.data_dir)
    fields["out_dir"] = None
    payload = json.dumps({"config": fields, "shards": [
        [t.name, [r["path"] for r in t.rows]] for t in tasks]}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def _remove_outputs(out_dir: str) -> None:
    """Removes what a conversion writes (and only that) from ``out_dir``."""
    for path in glob.glob(os.path.join(out_dir, "*.tfrecord")) + glob.glob(
            os.path.join(out_dir, ".*.tmp")):
        os.remove(path)
    for name in (MANIFEST, MANIFEST + ".tmp", FAILED_MANIFEST, shards_lib.VERIFIED):
        if os.path.exists(os.path.join(out_dir, name)):
            os.remove(os.path.join(out_dir, name))
    shutil.rmtree(os.path.join(out_dir, PROGRESS_DIR), ignore_errors=True)


def _prepare_out_dir(config, fingerprint: str) -> bool:
    """Makes ``out_dir`` ready; returns True when an interrupted identical run is resumed."""
    out_dir = config.out_dir
    os.makedirs(out_dir, exist_ok=True)
    plan_path = os.path.join(out_dir, PROGRESS_DIR, PLAN_FILE)
    has_manifest = os.path.exists(os.path.join(out_dir, MANIFEST))
    resumable = False
    if os.path.exists(plan_path) and not has_manifest:
        with open(plan_path) as f:
            resumable = json.load(f).get("fingerprint") == fingerprint
    if resumable:
        for tmp in glob.glob(os.path.join(out_dir, ".*.tmp")):
            os.remove(tmp)
        return True
    if os.listdir(out_dir):
        if not config.overwrite:
            failed = os.path.exists(os.path.join(out_dir, FAILED_MANIFEST))
            what = ("a complete conversion" if has_manifest else
                    f"a failed conversion with different settings, see {FAILED_MANIFEST}"
                    if failed else
                    "an interrupted conversion with different settings"
                    if os.path.exists(plan_path) else "other files")
            raise ConversionError(
                f"--out_dir {out_dir} is not empty (it holds {what}); pass --overwrite to "
                "replace the conversion there, or choose another directory")
        _remove_outputs(out_dir)
    os.makedirs(os.path.join(out_dir, PROGRESS_DIR), exist_ok=True)
    write_json_atomic(plan_path, {"fingerprint": fingerprint})
    return False


def _completed_shard(out_dir: str, name: str) -> dict | None:
    """Returns a shard's recorded result when the shard on disk is complete and intact."""
    sidecar = os.path.join(out_dir, PROGRESS_DIR, name + ".json")
    path = os.path.join(out_dir, name)
    if not (os.path.exists(sidecar) and os.path.exists(path)):
        return None
    with open(sidecar) as f:
        result = json.load(f)
    return result if shards_lib.file_sha256(path) == result["sha256"] else None


@functools.cache
def _square_encoder(image_size: int, quality: int):
    """``decode.decode_image`` then JPEG encoding, as one graph per size (traced once per
    worker: eager, its switch/case ops cost twice the decode)."""
    import tensorflow as tf  # (workers import TF only when they need it)

    from tfgender.data import decode

    @tf.function(input_signature=[tf.TensorSpec([], tf.string)])
    def encode(data):
        return tf.io.encode_jpeg(decode.decode_image(data, image_size), quality=quality)

    return encode


def _encode_image(data: bytes, width: int, height: int, image_size: int, quality: int):
    """Decodes (which validates every byte) and optionally resizes; returns (bytes, h, w).

    The resize is ``decode.decode_image``'s, the rule the input pipeline and ``bin/predict``
    apply, so a face reaches the model the same way from a record and from its file.
    """
    import tensorflow as tf  # (workers import TF only when they need it)

    if image_size <= 0:
        image = tf.io.decode_jpeg(data, channels=3)
        return data, int(image.shape[0]), int(image.shape[1])
    del width, height  # the header is read again by the decoder
    encoded = _square_encoder(image_size, quality)(tf.constant(data)).numpy()
    return encoded, image_size, image_size


def write_shard(task: ShardTask, config, tick=None) -> dict:
    """Writes one shard (temporary name, then rename) and records it in ``.progress/``.

    Args:
        task: the shard to write.
        config: the ConvertConfig.
        tick: called with a count of images done (progress); defaults to the worker queue.

    Returns:
        ``{file, split, fold, num_records, sha256, skipped, labels}``.
    """
    import tensorflow as tf

    tick = tick or convert_worker.tick
    final = os.path.join(config.out_dir, task.name)
    tmp = os.path.join(config.out_dir, f".{task.name}.tmp")
    skipped, labels, num = [], collections.Counter(), 0
    try:
        with tf.io.TFRecordWriter(tmp) as writer:
            for row in task.rows:
                example, reason = _encode_row(row, config)
                if reason:
                    skipped.append({"path": row["path"], "reason": reason})
                else:
                    writer.write(example)
                    labels[str(row["label"])] += 1
                    num += 1
                tick(1)
        os.replace(tmp, final)
    except (OSError, tf.errors.OpError) as err:  # a full disk: ENOSPC, ResourceExhaustedError
        if os.path.exists(tmp):
            os.remove(tmp)  # no half-written shard is left behind
        reason = getattr(err, "strerror", None) or getattr(err, "message", None) or str(err)
        raise ConversionError(f"cannot write {final}: {reason.splitlines()[0]}; completed "
                              "shards are kept: free space and rerun the same command") from None
    result = {"file": task.name, "split": task.split, "fold": task.fold, "num_records": num,
              "sha256": shards_lib.file_sha256(final), "skipped": skipped, "labels": dict(labels)}
    write_json_atomic(os.path.join(config.out_dir, PROGRESS_DIR, task.name + ".json"), result)
    return result


def _encode_row(row: dict, config) -> tuple[bytes | None, str | None]:
    """One row's serialized example, or why its image is skipped: ``(example, None)`` or
    ``(None, reason)``."""
    import tensorflow as tf  # (as in write_shard: workers import it themselves)

    try:
        # A user's own table may name files anywhere; a dataset's label files may not.
        full = (row["path"] if config.source == "table" and os.path.isabs(row["path"])
                else image_check.resolve_inside(config.data_dir, row["path"]))
        # Any common format, upright and RGB, as the JPEG the record holds (image_files.py).
        data, width, height = image_files.read_image_file(full, config.max_image_pixels,
                                                          config.min_image_side,
                                                          config.jpeg_quality)
        # The skip is reported in one line below; the libraries' own lines about it are not.
        with quiet.native_stderr_silenced():
            encoded, h, w = _encode_image(data, width, height, config.image_size,
                                          config.jpeg_quality)
    except image_check.ImageCheckError as err:
        return None, str(err)
    except tf.errors.OpError as err:
        return None, "corrupt or truncated JPEG: " + errors.reason(err)
    except OSError as err:  # unreadable (permissions, a vanished file): this image only
        return None, f"cannot read: {err.strerror or err}"
    return rec.make_example(
        encoded=encoded, height=h, width=w, label=row["label"], source_id=row["path"],
        group=row["group"], fold=row["fold"], split=row["split"], age=row["age"],
        race=str(row.get("race", "")), extra=str(row.get("extra", ""))), None


def convert_dataframe(frame: pd.DataFrame, out_dir: str, *, data_dir: str = ".",
                      path_column: str = "", label_column: str = "",
                      label_map: str | dict = "", skip_unknown_labels: bool = False,
                      split_column: str = "", group_column: str = "",
                      slice_columns: tuple[str, ...] = (), **options) -> dict:
    """Converts a pandas DataFrame of image paths and labels: the one-line replacement for
    ``ImageDataGenerator.flow_from_dataframe(df, directory=data_dir, x_col=..., y_col=...)``.

    Args:
        frame: one row per image (the columns as ``table.read_dataframe`` finds them).
        out_dir: where the shards and manifest.json go.
        data_dir: where relative paths start (``flow_from_dataframe``'s ``directory``).
        path_column ... slice_columns: as the flags of ``--source=table``.
        **options: any other ``ConvertConfig`` field (``image_size``, ``val_fraction``, ...).

    Returns:
        The manifest, as ``convert``.

    Raises:
        schema.DataFormatError: a missing column, an unknown label (the row named).
        ConversionError: as ``convert``.
    """
    from tfgender.config import ConvertConfig
    from tfgender.data import table

    config = ConvertConfig(source="table", data_dir=data_dir, out_dir=out_dir,
                           path_column=path_column, label_column=label_column,
                           label_map=label_map if isinstance(label_map, str) else "",
                           skip_unknown_labels=skip_unknown_labels, split_column=split_column,
                           group_column=group_column, slice_columns=tuple(slice_columns),
                           **options)
    read = table.read_dataframe(frame, path_column=path_column, label_column=label_column,
                                label_map=label_map, skip_unknown_labels=skip_unknown_labels,
                                split_column=split_column, group_column=group_column,
                                slice_columns=tuple(slice_columns))
    return convert(config, read)


def _run_tasks(tasks: list[ShardTask], config, bar: progress_lib.Progress) -> list[dict]:
    if config.num_workers <= 1 or len(tasks) <= 1:
        return [write_shard(t, config, tick=bar.update) for t in tasks]
    ctx = multiprocessing.get_context("spawn")  # TF is not fork-safe
    progress_queue = ctx.Queue()
    results = {}
    with concurrent.futures.ProcessPoolExecutor(
            max_workers=config.num_workers, mp_context=ctx, initializer=convert_worker.init,
            initargs=(progress_queue,)) as pool:
        futures = {pool.submit(write_shard, t, config): t.name for t in tasks}
        pending = set(futures)
        while pending:
            done, pending = concurrent.futures.wait(pending, timeout=0.2)
            for future in done:
                try:
                    results[futures[future]] = future.result()
                except concurrent.futures.process.BrokenProcessPool:
                    raise ConversionError(
                        f"a conversion worker stopped before its shard was written (killed, "
                        f"or out of memory); {len(results)} of the {len(tasks)} shards left to "
                        f"write are complete in {config.out_dir}: run the same command again "
                        "to resume") from None
            while True:
                try:
                    bar.update(progress_queue.get_nowait())
                except queue_lib.Empty:
                    break
    return [results[t.name] for t in tasks]


def _counts(frame_records: pd.DataFrame) -> dict:
    return {
        "split": {k or "none": int(v) for k, v in frame_records["split"].value_counts().items()},
        "fold": {str(k): int(v) for k, v in frame_records["fold"].value_counts().items()},
        "label": {str(k): int(v) for k, v in frame_records["label"].value_counts().items()},
    }


def convert(config, read: readers.ReadResult | None = None) -> dict:
    """Converts ``config.data_dir`` into TFRecords in ``config.out_dir``.

    Args:
        config: a ``config.ConvertConfig``.
        read: the rows, already read (``convert_dataframe``); None: read ``config.source``.

    Returns:
        The manifest (also written to ``out_dir/manifest.json``).

    Raises:
        ConversionError: when ``out_dir`` holds something else and ``overwrite`` is off, or
            ``num_folds`` is invalid (see ``splits.assign_folds_or_split``).
        schema.DataFormatError: when a label file is malformed (names the file and line).
    """
    if config.source == "table" and not config.data_dir and config.labels:
        # A table's relative paths start at its own folder.
        config = dataclasses.replace(
            config, data_dir=os.path.dirname(os.path.abspath(config.labels)))
    if not config.data_dir:
        raise ConversionError("--data_dir is required (--source=table takes --labels=TABLE "
                              "instead)")
    try:  # a bad --num_folds fails before a large source is read
        splits.check_num_folds(config.source, config.num_folds)
    except ValueError as err:
        raise ConversionError(str(err)) from None
    result = read or readers.read_source(config.source, config.data_dir,
                                         **_reader_options(config))
    if result.frame.empty:
        skipped = f" ({len(result.skipped)} skipped: first {result.skipped[0]['path']}: " \
            f"{result.skipped[0]['reason']})" if result.skipped else ""
        raise ConversionError(f"{config.data_dir}: no {config.source} images to convert"
                              f"{skipped}; is --source right for this directory?")
    frame = _folds_or_split(result.frame, config)
    tasks = plan_shards(frame, config)
    resumed = _prepare_out_dir(config, _fingerprint(config, tasks))
    done = {t.name: _completed_shard(config.out_dir, t.name) for t in tasks} if resumed else {}
    todo = [t for t in tasks if not done.get(t.name)]
    if resumed:
        print(f"Resuming: {len(tasks) - len(todo)} of {len(tasks)} shards already complete",
              file=sys.stderr)
    bar = progress_lib.Progress(sum(len(t.rows) for t in todo), desc="convert",
                                enabled=config.progress)
    fresh = {r["file"]: r for r in _run_tasks(todo, config, bar)}
    bar.close()
    shard_results = [done.get(t.name) or fresh[t.name] for t in tasks]

    skipped = list(result.skipped) + [s for r in shard_results for s in r["skipped"]]
    for item in skipped:
        print(f"skipped {item['path']}: {item['reason']}", file=sys.stderr)
    bad_paths = {s["path"] for s in skipped}
    converted = frame[~frame["path"].isin(bad_paths)]
    num_records = sum(r["num_records"] for r in shard_results)
    manifest = {
        "schema_version": rec.SCHEMA_VERSION,
        "source": config.source,
        "flags": dataclasses.asdict(config),
        "image_size": config.image_size,
        "num_rows_read": int(result.rows_read),
        "num_records": int(num_records),
        "num_skipped": len(skipped),
        "dropped": dict(result.dropped),
        "counts": _counts(converted),
        "shards": [{k: r[k] for k in ("file", "split", "fold", "num_records", "sha256")}
                   for r in shard_results],
        "skipped": skipped,
    }
    rows = int(result.rows_read)
    fraction = len(skipped) / rows if rows else 1.0
    failed_path = os.path.join(config.out_dir, FAILED_MANIFEST)
    if num_records == 0:  # whatever --max_skipped_fraction allows: a dataset of nothing
        reason = (f"converted nothing: {len(skipped):,} of {rows:,} rows read were skipped and "
                  f"{sum(result.dropped.values()):,} dropped by the protocol")
        write_json_atomic(failed_path, {**manifest, "status": "failed", "failure": reason})
        raise ConversionError(f"{reason}; no {MANIFEST} was written (the rows are listed in "
                              f"{failed_path})")
    if fraction > config.max_skipped_fraction:
        reason = (f"skipped {len(skipped):,} of {rows:,} rows ({fraction:.1%}), above "
                  f"--max_skipped_fraction={config.max_skipped_fraction:g}")
        write_json_atomic(failed_path, {**manifest, "status": "failed", "failure": reason})
        # .progress/ stays: the same command with a higher fraction reuses every shard.
        raise ConversionError(f"{reason}; the skipped images are listed in {failed_path}. "
                              "Fix them, or rerun with a higher --max_skipped_fraction to "
                              "accept the conversion (its shards are reused)")
    if os.path.exists(os.path.join(config.out_dir, FAILED_MANIFEST)):
        os.remove(os.path.join(config.out_dir, FAILED_MANIFEST))
    write_json_atomic(os.path.join(config.out_dir, MANIFEST), manifest)
    shutil.rmtree(os.path.join(config.out_dir, PROGRESS_DIR), ignore_errors=True)
    dropped = ", ".join(f"{k} {v:,}" for k, v in sorted(result.dropped.items()))
    print(f"converted {num_records:,}, skipped {len(skipped):,} of {result.rows_read:,} rows read"
          + (f" ({sum(result.dropped.values()):,} dropped by the protocol: {dropped})"
             if dropped else "") + f" -> {config.out_dir}", file=sys.stderr)
    return manifest
