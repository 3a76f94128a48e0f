"""Conversion throughput (images/s) with 1 and 2 worker processes on the 816 px Adience sample."""

from __future__ import annotations

import shutil

import pytest

from tfgender.config import ConvertConfig
from tfgender.data import convert


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("image_size", [0, 256], ids=["keep_original", "resize_256"])
def test_convert_throughput(benchmark, bench_data, tmp_path, workers, image_size):
    """Full conversions (read, check, decode, optionally resize + re-encode, write)."""
    out = tmp_path / "out"

    def run():
        shutil.rmtree(out, ignore_errors=True)
        return convert.convert(ConvertConfig(
            source="adience", data_dir=bench_data.raw_dir, out_dir=str(out),
            image_size=image_size, num_shards=4, num_workers=workers, progress=False))

    manifest = benchmark.pedantic(run, rounds=3, warmup_rounds=1)
    images = manifest["num_records"] + manifest["num_skipped"]
    benchmark.extra_info.update(
        workers=workers, image_size=image_size, source_size=816, images=images,
        images_per_second=images / benchmark.stats.stats.median)
