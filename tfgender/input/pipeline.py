"""TFRecords -> decoded, cached, shuffled and batched ``tf.data.Dataset`` of uint8 face images."""

from __future__ import annotations

import functools
import hashlib
import os

import tensorflow as tf
from absl import logging

from tfgender.data import records as rec
from tfgender.data import shards as shards_lib
from tfgender.data.decode import decode_and_resize

CACHE_MODES = ("auto", "memory", "none", "disk:PATH")
# Share of physical RAM that ``cache="auto"`` may fill (cache + shuffle buffer) and that tf.data
# autotuning may use for its buffers: the rest is for the model, the step and the OS.
DEFAULT_RAM_FRACTION = 0.4
# "auto" puts a disk cache here, inside the converted directory: every run on that conversion
# finds it, and the key (shard checksums, image size, ...) keeps caches of different
# selections or re-conversions apart.
AUTO_CACHE_DIR = "tfdata_cache"
# A fixed interleave width: the default (the number of CPU cores) would make the record order,
# and so every "deterministic" epoch order, depend on the machine.
CYCLE_LENGTH = 8
_EPOCH_SEED_MULTIPLIERS = (1_000_003, 7919, 13)
_SPLIT_NONE = "(none)"


def _epoch_seed(seed: int, epoch):
    """The shuffle seed of one epoch: a pure function of (seed, epoch), never of history."""
    mul_seed, mul_epoch, offset = _EPOCH_SEED_MULTIPLIERS
    return seed * mul_seed + epoch * mul_epoch + offset


def set_run_seed(seed: int) -> None:
    """Seeds a run's randomness and clears TensorFlow's global seed.

    All randomness in tfgender is explicit: Keras seed generators (initialisation, dropout;
    ``keras.utils.set_random_seed`` also seeds Python and NumPy), stateless ops (augmentation)
    and per-epoch shuffle seeds. TF's global seed is unused, and a global seed of 0 breaks
    tf.data shuffles with tensor seeds (TF compares the seed pair to (0, 0) in Python), so it
    is cleared (``_without_global_seed`` guards pipelines built under someone else's seed).
    """
    import keras  # (only here: the pipeline itself needs no Keras)

    keras.utils.set_random_seed(seed)
    tf.random.set_seed(None)


def _without_global_seed(build):
    """Calls ``build()`` with TF's global seed cleared, then restores it.

    The epoch seeds are explicit, so the global seed must not matter; but with a global seed
    of 0 (``keras.utils.set_random_seed(0)``) tf.data compares the (global, op) seed pair to
    (0, 0) in Python, which fails for a tensor op seed.
    """
    from tensorflow.python.eager import context  # (no public getter)

    saved = context.global_seed()
    if saved is None:
        return build()
    tf.random.set_seed(None)
    try:
        return build()
    finally:
        tf.random.set_seed(saved)


def _as_list(value) -> list | None:
    if value is None:
        return None
    return [value] if isinstance(value, (str, int)) else list(value)


def _resolve(data_dir: str) -> tuple[str, dict]:
    """Returns (directory holding the shards, manifest) for a directory or a manifest path."""
    data_dir = os.fspath(data_dir)
    root = data_dir if os.path.isdir(data_dir) else os.path.dirname(data_dir)
    return root, rec.load_manifest(data_dir)


def select_shards(manifest: dict, split=None, folds=None) -> list[dict]:
    """Picks the manifest's shards of the given split(s) and Adience fold(s).

    Args:
        manifest: a manifest from ``records.load_manifest``.
        split: ``"train"``/``"val"``/``"test"``, a list of them, or None for any split.
        folds: a list of Adience folds (e.g. ``[0, 1, 2, 3]``), an int, or None for any fold.

    Returns:
        The selected shard entries (``{file, split, fold, num_records, sha256}``) sorted by file.

    Raises:
        ValueError: "empty split" when nothing matches, naming the splits and folds there are.
    """
    splits, fold_list = _as_list(split), _as_list(folds)
    if fold_list is not None:
        fold_list = [int(f) for f in fold_list]
    chosen = [s for s in manifest["shards"]
              if (splits is None or s["split"] in splits)
              and (fold_list is None or int(s["fold"]) in fold_list)]
    if not chosen or not sum(s["num_records"] for s in chosen):
        have = {}
        for s in manifest["shards"]:
            key = (s["split"] or _SPLIT_NONE, int(s["fold"]))
            have[key] = have.get(key, 0) + s["num_records"]
        listing = ", ".join(f"split {k[0]} fold {k[1]}: {n} records"
                            for k, n in sorted(have.items())) or "no shards"
        raise ValueError(f"empty split: no records match split={split!r}, folds={folds!r}; "
                         f"the conversion holds {listing}")
    return sorted(chosen, key=lambda s: s["file"])


def count_records(data_dir: str, *, split=None, folds=None) -> int:
    """Counts the records of a selection from the manifest (no shard is read).

    Args:
        data_dir: a converted directory or its manifest.json path.
        split: see ``select_shards``.
        folds: see ``select_shards``.

    Returns:
        The number of records.
    """
    _, manifest = _resolve(data_dir)
    return sum(s["num_records"] for s in select_shards(manifest, split, folds))


def steps_per_epoch(data_dir: str, *, split=None, folds=None, batch_size: int) -> int:
    """Full batches per training epoch (the last partial batch is dropped, as in training).

    Args:
        data_dir: a converted directory or its manifest.json path.
        split: see ``select_shards``.
        folds: see ``select_shards``.
        batch_size: the batch size.

    Returns:
        ``count_records(...) // batch_size``.
    """
    return count_records(data_dir, split=split, folds=folds) // batch_size


def describe_data_loss(data_dir: str, err: tf.errors.DataLossError) -> str:
    """One line for a DataLossError raised while reading: the damaged shard, hashed again.

    tf.data's own message ("corrupted record at N") names no file; the shards were verified
    before the first step, so a shard damaged since is found by hashing them all again.
    """
    if isinstance(err, shards_lib.DamagedShardError):  # found before the first step
        return err.message
    first = next((line for line in (err.message or "").splitlines() if line.strip()), "")
    try:
        root, manifest = _resolve(data_dir)
    except (OSError, ValueError):
        return f"corrupt data while reading {data_dir}: {first}"
    found = shards_lib.find_damaged(root, manifest["shards"], rec.MANIFEST)
    if found:
        return f"{found} (it changed while in use)"
    return (f"corrupt data while reading {data_dir} ({first}), though every shard still "
            "matches its sha256; re-run the conversion")


def _parse_and_decode(serialized, image_size: int, with_metadata: bool):
    example = rec.parse_example(serialized)
    image = decode_and_resize(example[rec.ENCODED], image_size)
    label = tf.cast(example[rec.LABEL], tf.int32)
    if not with_metadata:
        return image, label
    metadata = {"source_id": example[rec.SOURCE_ID], "group": example[rec.GROUP],
                "age": example[rec.AGE], "race": example[rec.RACE],
                "extra": example[rec.EXTRA], "fold": tf.cast(example[rec.FOLD], tf.int32)}
    return image, label, metadata


def _ram_budget_bytes(ram_budget_gb) -> int:
    if ram_budget_gb is not None:
        return int(ram_budget_gb * 1e9)
    physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return int(DEFAULT_RAM_FRACTION * physical)


def _cache_key(shards, image_size, with_metadata, input_context) -> str:
    parts = [str(image_size), str(with_metadata)] + [f"{s['file']}:{s['sha256']}" for s in shards]
    if input_context is not None:
        parts.append(f"{input_context.input_pipeline_id}/{input_context.num_input_pipelines}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def _choose_cache(cache, *, root, shards, image_size, with_metadata, input_context, training,
                  shuffle_buffer, budget) -> str | None:
    """Returns None (no cache), "" (memory) or a disk cache file prefix."""
    key = _cache_key(shards, image_size, with_metadata, input_context)
    if cache == "none":
        return None
    if cache == "memory":
        return ""
    if cache.startswith("disk:") and len(cache) > 5:
        os.makedirs(cache[5:], exist_ok=True)
        return os.path.join(cache[5:], key)
    if cache != "auto":
        raise ValueError(f"unknown cache {cache!r}; expected one of {CACHE_MODES}")
    num = sum(s["num_records"] for s in shards)
    per_image = image_size * image_size * 3
    # The shuffle buffer holds decoded images too, whatever the cache, so it shares the budget.
    needed = num * per_image + (min(shuffle_buffer, num) * per_image if training else 0)
    if needed <= budget:
        logging.info("input_pipeline: cache=auto -> memory: %d images x %d px need %.2f GB "
                     "(with the shuffle buffer) of a %.2f GB budget", num, image_size,
                     needed / 1e9, budget / 1e9)
        return ""
    directory = os.path.join(root, AUTO_CACHE_DIR)
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError:
        pass
    if not os.access(directory, os.W_OK):
        logging.warning("input_pipeline: cache=auto -> none: %.2f GB exceed the %.2f GB RAM "
                        "budget and %s is not writable", needed / 1e9, budget / 1e9, directory)
        return None
    prefix = os.path.join(directory, key)
    logging.info("input_pipeline: cache=auto -> disk at %s: %d images x %d px need %.2f GB, "
                 "more than the %.2f GB RAM budget", prefix, num, image_size, needed / 1e9,
                 budget / 1e9)
    return prefix


def _options(deterministic: bool, budget: int) -> tf.data.Options:
    options = tf.data.Options()
    options.deterministic = deterministic
    options.autotune.enabled = True
    options.autotune.ram_budget = budget  # prefetch/parallelism buffers stay inside the budget
    # One thread per op: parallelism comes from parallel map/interleave; nested op threads
    # would oversubscribe the cores the training step needs.
    options.threading.max_intra_op_parallelism = 1
    # Sharding is done here, by file; tf.distribute must not shard a second time.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return options


def create_dataset(data_dir, *, split=None, folds=None, batch_size: int, image_size: int,
                   training: bool, cache: str = "auto", shuffle_buffer: int = 10_000,
                   seed: int = 0, start_epoch: int = 0, num_epochs: int | None = None,
                   deterministic: bool = False, with_metadata: bool = False,
                   drop_remainder: bool | None = None, data_service_address: str | None = None,
                   input_context: tf.distribute.InputContext | None = None,
                   ram_budget_gb: float | None = None) -> tf.data.Dataset:
    """Builds the input pipeline of a converted dataset.

    Training yields epochs ``start_epoch, start_epoch + 1, ...`` (``num_epochs`` is the epoch to
    stop before, None for endless), each shuffled with a seed that depends only on
    ``(seed, epoch)``: a run resumed at epoch k that skips the steps already done in it sees
    exactly the batches of an uninterrupted run. That holds with ``deterministic=True`` and no
    data service (otherwise the order that reaches the shuffle may vary).

    Args:
        data_dir: a converted directory or its manifest.json path.
        split: ``"train"``/``"val"``/``"test"``, a list of them, or None for all.
        folds: Adience folds to use (e.g. ``[0, 1, 2, 3]``), or None for all.
        batch_size: the batch this pipeline yields (under tf.distribute, the per-replica batch:
            ``input_context.get_per_replica_batch_size(global_batch)``).
        image_size: side of the square uint8 images.
        training: shuffle per epoch and repeat; else one pass in file order.
        cache: "memory", "disk:DIR" (files in DIR, named by a key of the selection), "none", or
            "auto": memory when the decoded images and the shuffle buffer fit the RAM budget,
            else a disk cache in ``<data_dir>/tfdata_cache/`` (the decision is logged).
        shuffle_buffer: shuffle buffer in images (decoded: 150 KB each at 224 px).
        seed: the run's seed.
        start_epoch: the first epoch to yield (resuming).
        num_epochs: the epoch to stop before, or None for an endless dataset.
        deterministic: keep the element order fixed (parallel steps then wait for stragglers).
        with_metadata: add a dict {"source_id", "group", "age", "race", "extra" (strings), "fold"
            (int32)}.
        drop_remainder: drop the last partial batch; default True in training (static shapes
            for XLA), False otherwise (evaluation sees every record).
        data_service_address: a tf.data service dispatcher ("grpc://host:port"): reading and
            decoding run on its workers, each record once per epoch.
        input_context: a ``tf.distribute.InputContext``: this pipeline reads every
            ``num_input_pipelines``-th shard file.
        ram_budget_gb: RAM for the cache decision and tf.data autotuning; default 40% of RAM.

    Returns:
        Batches ``(images uint8 (B, S, S, 3), labels int32 (B,))``, plus the metadata dict.

    Raises:
        FileNotFoundError: no manifest, or a shard file is missing (named).
        tf.errors.DataLossError: a shard's framing is corrupt or its sha256 is not the
            manifest's (named).
        ValueError: an empty selection, too few shards for the input pipelines, fewer records
            than one training batch, or an unknown cache mode.
    """
    # 1. Shards from the manifest, sorted, so the file order never depends on the file system.
    root, manifest = _resolve(data_dir)
    shards = select_shards(manifest, split, folds)
    if input_context is not None:
        # By file, not by record: each pipeline reads only its own files.
        num = input_context.num_input_pipelines
        if len(shards) < num:
            raise ValueError(f"{len(shards)} shard files cannot feed {num} input pipelines "
                             "(sharding is by file): convert with --num_shards >= " + str(num))
        shards = shards[input_context.input_pipeline_id::num]
    paths = [os.path.join(root, s["file"]) for s in shards]
    # Fail now, naming the file, not mid-epoch: framing, record counts and sha256.
    shards_lib.verify(root, shards, rec.MANIFEST)
    num_records = sum(s["num_records"] for s in shards)
    if drop_remainder is None:
        drop_remainder = training
    if training and drop_remainder and num_records < batch_size:
        # Every epoch would be empty and an endless flat_map would spin forever.
        raise ValueError(f"{num_records} records cannot fill one batch of {batch_size}")
    budget = _ram_budget_bytes(ram_budget_gb)

    # 2. Read files in parallel; a fixed cycle length keeps the order machine-independent.
    files = tf.data.Dataset.from_tensor_slices(paths)
    records = files.interleave(tf.data.TFRecordDataset, cycle_length=min(CYCLE_LENGTH, len(paths)),
                               block_length=1, num_parallel_calls=tf.data.AUTOTUNE,
                               deterministic=deterministic)
    # 3. Parse and decode in parallel; crop and DCT scaling are fused into the JPEG decode.
    base = records.map(functools.partial(_parse_and_decode, image_size=image_size,
                                         with_metadata=with_metadata),
                       num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
    # 4. Optionally move all of the above to tf.data service workers; augmentation stays in
    #    the training step (on the accelerator), so only decoded uint8 images travel.
    if data_service_address:
        base = base.apply(tf.data.experimental.service.distribute(
            processing_mode=tf.data.experimental.service.ShardingPolicy.DYNAMIC,
            service=data_service_address))
    # 5. Cache the decoded, resized uint8 images: later epochs skip reading and decoding. The
    #    cache comes before any random step so every epoch still gets its own shuffle (and
    #    augmentation, which happens later, on device).
    prefix = _choose_cache(cache, root=root, shards=shards, image_size=image_size,
                           with_metadata=with_metadata, input_context=input_context,
                           training=training, shuffle_buffer=shuffle_buffer, budget=budget)
    if prefix is not None:
        base = base.cache(prefix)

    if training:
        # 6. One dataset per epoch, shuffled with a seed of (seed, epoch) only: resuming at
        #    epoch k reproduces epoch k. The cached ``base`` is shared by all epochs.
        #    drop_remainder keeps batch shapes static for XLA.
        def epoch(index):
            shuffled = base.shuffle(shuffle_buffer, seed=_epoch_seed(seed, index),
                                    reshuffle_each_iteration=False)
            return shuffled.batch(batch_size, drop_remainder=drop_remainder)

        stop = num_epochs if num_epochs is not None else 2**62
        dataset = _without_global_seed(
            lambda: tf.data.Dataset.range(start_epoch, stop).flat_map(epoch))
    else:
        # 6'. Evaluation: one pass in file order, by default keeping the last partial batch.
        dataset = base.batch(batch_size, drop_remainder=drop_remainder)
    # 7. Prefetch last, so batch preparation overlaps the training step.
    dataset = dataset.prefetch(tf.data.AUTOTUNE)
    return dataset.with_options(_options(deterministic, budget))
