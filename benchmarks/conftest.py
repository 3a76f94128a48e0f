"""Benchmark fixtures: an Adience-shaped 816 px sample converted once per session, and a summary."""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
BENCH_DIR = Path(os.environ.get("TFGENDER_BENCH_DIR", REPO / ".bench_data"))
NUM_IMAGES = int(os.environ.get("TFGENDER_BENCH_IMAGES", "512"))
ROUNDS = int(os.environ.get("TFGENDER_BENCH_ROUNDS", "3"))  # timed rounds; figures are medians
IMAGE_SIZE = 224
BATCH_SIZE = 64
# The six pipelines, in the order the summary lists them.
FIGURES = {
    "idg_augmented": "(1) ImageDataGenerator, flip + rotation + brightness (the study)",
    "idg_plain": "(2) ImageDataGenerator, rescale only",
    "tfdata_jpeg_files": "(3) tf.data from JPEG files, parallel DCT-scaled decode",
    "tfrecord_first_epoch": "(4) create_dataset from TFRecords (converted at 256), no cache",
    "tfrecord_first_epoch_816px": "(4') the same from TFRecords keeping the 816 px JPEGs",
    "tfrecord_cached_augmented": "(5) create_dataset cached + Augmentation (XLA), steady state",
    "keras_image_dataset": "(6) image_dataset_from_directory + Keras augmentation layers",
}
# (numerator, denominator, target): what the toolkit's pipeline should gain over the baselines.
TARGETS = (("tfrecord_cached_augmented", "idg_augmented", 50.0),
           ("tfrecord_first_epoch", "idg_augmented", 10.0),
           ("tfrecord_cached_augmented", "keras_image_dataset", 10.0))
# Images per second measured in this session, filled by the benchmarks.
RESULTS: dict[str, float] = {}


def device() -> str:
    """What the figures ran on: the GPUs' names, else the CPU's cores and bfloat16 support."""
    import tensorflow as tf  # (TF import on use)

    from tfgender import devices

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        return ", ".join(tf.config.experimental.get_device_details(g).get("device_name", g.name)
                         for g in gpus)
    return f"CPU ({os.cpu_count()} cores, bf16 units: {devices.cpu_has_bf16()})"


@dataclasses.dataclass(frozen=True)
class BenchData:
    """The benchmark dataset: raw Adience tree, its conversion and a flat tree for Keras."""

    raw_dir: str
    records_dir: str  # converted with --image_size=256, as Levi & Hassner stored Adience
    records_816px_dir: str  # converted keeping the original 816 px JPEG bytes
    keras_dir: str
    frame: pd.DataFrame  # the labelled rows, ``path`` relative to ``raw_dir``
    keras_labels: list  # labels of ``keras_dir``'s files in their sorted order


def _build_once(final: Path, build) -> None:
    """Builds into ``<final>.partial`` and renames: an interrupted build is redone, not reused."""
    if final.exists():
        return
    partial = final.with_name(final.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    build(partial)
    partial.rename(final)


@pytest.fixture(scope="session")
def bench_data() -> BenchData:
    """Draws ``TFGENDER_BENCH_IMAGES`` Adience-format images at the real 816x816 and converts them
    twice: at 256 px (the conversion tfgender recommends for a 224-227 px model: the one-off
    conversion pays the big decode once) and keeping the 816 px bytes (what decoding the real
    aligned set costs every epoch without that). Cached in ``TFGENDER_BENCH_DIR``."""
    from tfgender.config import ConvertConfig, SampleDataConfig
    from tfgender.data import convert, readers, sample  # (TF import on use)

    root = BENCH_DIR / f"adience-816px-{NUM_IMAGES}"
    raw = root / "raw"
    _build_once(raw, lambda out: sample.make_sample_data(
        SampleDataConfig("adience", str(out), num_images=NUM_IMAGES, seed=0)))
    records = {256: root / "tfrecords-256px", 0: root / "tfrecords"}
    for image_size, out_dir in records.items():
        if not (out_dir / convert.MANIFEST).exists():
            # An interrupted conversion with the same settings resumes; anything else is redone.
            convert.convert(ConvertConfig(source="adience", data_dir=str(raw),
                                          out_dir=str(out_dir), image_size=image_size,
                                          overwrite=True, progress=False))
    frame = readers.read_source("adience", str(raw)).frame.reset_index(drop=True)

    def link_files(out: Path) -> None:
        # image_dataset_from_directory takes a label list in the sorted order of every image
        # under a directory; the Adience tree also holds unlabelled images, so link the
        # labelled ones into a flat directory under names that sort in frame order.
        out.mkdir(parents=True)
        for index, path in enumerate(frame["path"]):
            os.symlink(raw / path, out / f"{index:06d}.jpg")

    _build_once(root / "keras_files", link_files)
    return BenchData(raw_dir=str(raw), records_dir=str(records[256]),
                     records_816px_dir=str(records[0]),
                     keras_dir=str(root / "keras_files"), frame=frame,
                     keras_labels=[int(v) for v in frame["label"]])


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """Prints the six throughputs and whether the speed-up targets are met."""
    if not RESULTS:
        return
    write = terminalreporter.write_line
    terminalreporter.section("tfgender input pipeline throughput")
    write(f"{IMAGE_SIZE}x{IMAGE_SIZE}, batch {BATCH_SIZE}, {NUM_IMAGES} images drawn at 816x816; "
          f"median of {ROUNDS} rounds of one pass each")
    for key, label in FIGURES.items():
        value = RESULTS.get(key)
        write(f"  {label:<66} " + (f"{value:10.1f} img/s" if value else "  not measured"))
    for top, bottom, target in TARGETS:
        name = f"  {top} / {bottom}"
        if not (RESULTS.get(top) and RESULTS.get(bottom)):
            write(f"{name:<68} not measured (target >= {target:g})")
            continue
        ratio = RESULTS[top] / RESULTS[bottom]
        verdict = "met" if ratio >= target else "NOT met"
        write(f"{name:<68} {ratio:8.1f}x  target >= {target:g}: {verdict}")


# --------------------------------------------------------------------------- extra summaries
# Terminal sections of other benchmark files: title -> a function returning the lines, called
# once at the end of the session (so ratios see every result).
SECTIONS: dict = {}


class _SectionReporter:
    """Prints ``SECTIONS`` after the input pipeline summary."""

    def pytest_terminal_summary(self, terminalreporter):
        for title, lines in SECTIONS.items():
            terminalreporter.section(title)
            for line in lines():
                terminalreporter.write_line(line)


def pytest_configure(config):
    config.pluginmanager.register(_SectionReporter(), "tfgender_bench_sections")
