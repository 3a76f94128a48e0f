"""Input pipeline throughput: the study's ImageDataGenerator against tf.data and TFRecords."""

from __future__ import annotations

import os

import conftest  # benchmarks/conftest.py: settings and the results the summary prints
import keras
import pytest
import tensorflow as tf

from tfgender.data import decode
from tfgender.experiments import legacy
from tfgender.input import augment
from tfgender.input import pipeline as input_pipeline

SIZE, BATCH = conftest.IMAGE_SIZE, conftest.BATCH_SIZE
# The study's augmentation, used by every augmented pipeline so they do comparable work.
ROTATION, BRIGHTNESS = legacy.STUDY_ROTATION_RANGE, legacy.STUDY_BRIGHTNESS_RANGE

pytestmark = pytest.mark.benchmark(group="input_pipeline")



def _steps(bench_data) -> int:
    """Batches per timed round: about one epoch of the sample."""
    return max(1, len(bench_data.frame) // BATCH)


def _measure(benchmark, key: str, consume) -> float:
    """Times ``consume`` (returns the images it took) after one untimed warm-up round.

    Iterators are built and functions traced before, or in the warm-up round, never in a
    timed one. Records images per second of the median round in ``extra_info``: every round
    takes the same number of images, and the median, as in the other benchmark files, is
    robust to a round slowed by a noisy neighbour (a 70 ms round of (5) is easily hit).
    """
    counts = []
    benchmark.pedantic(lambda: counts.append(consume()), rounds=conftest.ROUNDS,
                       iterations=1, warmup_rounds=1)
    benchmark.extra_info.update(device=conftest.device(), image_size=SIZE, batch_size=BATCH,
                                images_per_round=counts[-1])
    if benchmark.stats is None:  # --benchmark-disable: nothing was timed
        return 0.0
    assert len(set(counts[1:])) == 1, f"rounds took different numbers of images: {counts}"
    rate = counts[-1] / benchmark.stats.stats.median
    benchmark.extra_info["images_per_second"] = rate
    # The mean rate (all timed images over all timed time), kept for comparison with the
    # figures recorded before the median was used.
    benchmark.extra_info["images_per_second_mean"] = sum(counts[1:]) / benchmark.stats.stats.total
    conftest.RESULTS[key] = rate
    return rate


def _consume_batches(iterator, steps: int) -> int:
    images = 0
    for _ in range(steps):
        batch = next(iterator)[0]
        images += int(batch.shape[0])
    return images


def _idg(benchmark, bench_data, key: str, augmented: bool) -> None:
    iterator = legacy.create_idg_iterator(bench_data.frame, bench_data.raw_dir, batch_size=BATCH,
                                          image_size=SIZE, augment=augmented)
    _measure(benchmark, key, lambda: _consume_batches(iterator, _steps(bench_data)))


def test_idg_augmented(benchmark, bench_data):
    _idg(benchmark, bench_data, "idg_augmented", augmented=True)


def test_idg_plain(benchmark, bench_data):
    _idg(benchmark, bench_data, "idg_plain", augmented=False)


def test_tfdata_jpeg_files(benchmark, bench_data):
    paths = [os.path.join(bench_data.raw_dir, p) for p in bench_data.frame["path"]]
    labels = bench_data.frame["label"].to_numpy().astype("int32")

    def load(path, label):
        return decode.decode_and_resize(tf.io.read_file(path), SIZE), label

    dataset = (tf.data.Dataset.from_tensor_slices((paths, labels)).repeat()
               .shuffle(len(paths), seed=0)
               .map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=False)
               .batch(BATCH, drop_remainder=True).prefetch(tf.data.AUTOTUNE))
    iterator = iter(dataset)
    _measure(benchmark, "tfdata_jpeg_files",
             lambda: _consume_batches(iterator, _steps(bench_data)))


def _first_epoch(benchmark, bench_data, key: str, records_dir: str) -> None:
    # No cache: every round reads and decodes every record, as the first epoch does.
    dataset = input_pipeline.create_dataset(records_dir, batch_size=BATCH, image_size=SIZE,
                                            training=True, cache="none")
    iterator = iter(dataset)
    _measure(benchmark, key, lambda: _consume_batches(iterator, _steps(bench_data)))


def test_tfrecord_first_epoch(benchmark, bench_data):
    _first_epoch(benchmark, bench_data, "tfrecord_first_epoch", bench_data.records_dir)


def test_tfrecord_first_epoch_816px(benchmark, bench_data):
    _first_epoch(benchmark, bench_data, "tfrecord_first_epoch_816px", bench_data.records_816px_dir)


def test_tfrecord_cached_augmented(benchmark, bench_data):
    dataset = input_pipeline.create_dataset(bench_data.records_dir, batch_size=BATCH,
                                            image_size=SIZE, training=True, cache="memory")
    iterator = iter(dataset)

    # What the training step runs: the plan and the gather as two XLA programs (augment.py).
    augment_batch = augment.Augmentation(output_size=SIZE, max_rotation_degrees=ROTATION,
                                         brightness_range=BRIGHTNESS).compiled()

    @tf.function
    def augment_steps(iterator, first_step, steps):
        # As train_steps pulls batches: several steps per call, inside one tf.function.
        checksum = tf.constant(0.0)
        for i in tf.range(steps):
            seed = augment.make_step_seed(0, first_step + tf.cast(i, tf.int64))
            out = augment_batch(next(iterator)[0], seed)
            checksum += out[-1, -1, -1, -1]  # each XLA call computes its whole output
        return checksum

    steps = _steps(bench_data)
    step = [0]

    def consume() -> int:
        # The warm-up round fills the cache (first epoch) and traces and compiles the steps.
        augment_steps(iterator, tf.constant(step[0], tf.int64), tf.constant(steps)).numpy()
        step[0] += steps
        return steps * BATCH

    _measure(benchmark, "tfrecord_cached_augmented", consume)


def test_keras_image_dataset(benchmark, bench_data):
    dataset = keras.utils.image_dataset_from_directory(
        bench_data.keras_dir, labels=bench_data.keras_labels, label_mode="int",
        image_size=(SIZE, SIZE), batch_size=BATCH, shuffle=True, seed=0, verbose=False)
    layers = keras.Sequential([
        keras.layers.RandomFlip("horizontal"),
        keras.layers.RandomRotation(ROTATION / 360.0),  # a fraction of a full turn
        # Keras' brightness is additive (+-factor x 255), not PIL's multiplicative factor:
        # the same amount of work, a different effect.
        keras.layers.RandomBrightness(BRIGHTNESS[1] - 1.0, value_range=(0, 255)),
    ])
    dataset = (dataset.map(lambda x, y: (layers(x, training=True), y),
                           num_parallel_calls=tf.data.AUTOTUNE)
               .repeat().prefetch(tf.data.AUTOTUNE))
    iterator = iter(dataset)
    _measure(benchmark, "keras_image_dataset",
             lambda: _consume_batches(iterator, _steps(bench_data)))
