"""CelebA at its real size: conversion, the cache decision, epochs from disk, input stalls.

Usage (run it alone on the machine; each phase's figures land in WORK/results.json and a
rerun skips the phases already measured, so an interrupted run resumes):

    .venv/bin/python benchmarks/celeba_scale.py --work=/tmp/celeba_scale \
        [--num_images=202599] [--subset_images=20000] [--image_size=224]

Phases:
  generate     bin/make_sample_data --format=celeba at CelebA's 178x218 and layout, the full
               set and a subset that fits the RAM budget decoded
  encode       the limit of conversion: decoding, resizing and re-encoding one such JPEG
               (the conversion's own graph), one process, images/s
  convert      bin/convert_tfrecords with 2 workers on the full set, with 1 and 2 on the
               subset: images/s and the peak resident memory of the process tree
  pipeline     create_dataset(cache=auto) on the full set: the decision, its disk
               footprint, the first (cache-writing) epoch and a second epoch read from the
               disk cache, as images/s, beside the subset's memory cache (first, steady)
  step         MobileNetV2's training step at --image_size fed by the disk-cached full set
               against the same step fed one in-memory batch (target >= 0.97)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = REPO / "bin"
PHASES = ("generate", "encode", "convert", "pipeline", "step")


def _results(work: Path) -> dict:
    path = work / "results.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _save(work: Path, results: dict) -> None:
    tmp = work / "results.json.tmp"
    tmp.write_text(json.dumps(results, indent=2))
    os.replace(tmp, work / "results.json")


def _tree_rss(pid: int) -> int:
    """Resident bytes of ``pid`` and all its descendants (from ``ps``)."""
    rows = subprocess.run(["ps", "-eo", "pid=,ppid=,rss="], capture_output=True, text=True,
                          check=True).stdout.split("\n")
    children, rss = {}, {}
    for row in rows:
        parts = row.split()
        if len(parts) == 3:
            p, parent, kb = map(int, parts)
            children.setdefault(parent, []).append(p)
            rss[p] = kb * 1024
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        total += rss.get(p, 0)
        stack.extend(children.get(p, []))
    return total


def _run_measured(cmd: list[str]) -> dict:
    """Runs ``cmd``; returns its wall seconds and the peak RSS of its process tree."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak = [0]

    def watch():
        while proc.poll() is None:
            try:
                peak[0] = max(peak[0], _tree_rss(proc.pid))
            except (subprocess.CalledProcessError, ValueError):
                pass
            time.sleep(0.5)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    output, _ = proc.communicate()
    watcher.join()
    seconds = time.perf_counter() - start
    if proc.returncode:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{output[-2000:]}")
    return {"seconds": seconds, "peak_rss_gb": peak[0] / 1e9, "tail": output.strip()[-300:]}


def _du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def generate(args, work: Path) -> dict:
    out = {}
    for name, n in (("full", args.num_images), ("subset", args.subset_images)):
        raw = work / f"raw_{name}"
        if (raw / "list_eval_partition.txt").exists():
            continue
        shutil.rmtree(raw, ignore_errors=True)  # an interrupted draw: the generator wants it empty
        result = _run_measured([str(BIN / "make_sample_data"), "--format=celeba",
                                f"--num_images={n}", f"--out_dir={raw}",
                                f"--num_workers={args.workers}"])
        out[name] = {"images": n, "workers": args.workers, "seconds": result["seconds"],
                     "images_per_second": n / result["seconds"],
                     "bytes": _du(raw)}
    return out


def encode(args, work: Path) -> dict:
    import tensorflow as tf

    from tfgender.data import convert

    files = sorted((work / "raw_subset" / "img_align_celeba").glob("*.jpg"))[:500]
    data = [f.read_bytes() for f in files]
    encoder = convert._square_encoder(args.image_size, 95)  # (the converter's own)
    encoder(tf.constant(data[0]))  # trace
    start = time.perf_counter()
    for blob in data:
        encoder(tf.constant(blob)).numpy()
    seconds = time.perf_counter() - start
    return {"images": len(data), "ms_per_image": 1000 * seconds / len(data),
            "images_per_second": len(data) / seconds, "source_size": "178x218",
            "image_size": args.image_size}


def convert(args, work: Path) -> dict:
    out = {}
    runs = (("full", 2), ("subset", 1), ("subset", 2))
    for name, workers in runs:
        records = work / f"records_{name}_w{workers}"
        if (records / "manifest.json").exists():
            continue
        result = _run_measured([
            str(BIN / "convert_tfrecords"), "--source=celeba", f"--data_dir={work / f'raw_{name}'}",
            f"--out_dir={records}", f"--image_size={args.image_size}",
            f"--num_workers={workers}", "--noprogress"])
        manifest = json.loads((records / "manifest.json").read_text())
        images = manifest["num_records"] + manifest.get("num_skipped", 0)
        out[f"{name}_w{workers}"] = {
            "images": images, "seconds": result["seconds"],
            "images_per_second": images / result["seconds"],
            "peak_rss_gb": result["peak_rss_gb"], "shard_bytes": _du(records),
            "manifest_bytes": (records / "manifest.json").stat().st_size,
            "shards": len(manifest["shards"])}
    return out


def _epoch_rates(dataset, steps: int, epochs: int, batch: int) -> list[float]:
    iterator = iter(dataset)
    rates = []
    for _ in range(epochs):
        start = time.perf_counter()
        for _ in range(steps):
            next(iterator)
        rates.append(steps * batch / (time.perf_counter() - start))
    return rates


def _peak_rss_gb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9


def pipeline(args, work: Path) -> dict:
    import logging as std_logging

    from absl import logging

    from tfgender.input import pipeline as input_pipeline

    messages = []

    class Keep(std_logging.Handler):  # the pipeline logs its cache decision through absl
        def emit(self, record):
            messages.append(record.getMessage())

    std_logging.getLogger("absl").addHandler(Keep())
    logging.set_verbosity(logging.INFO)
    batch = 64
    out = {}
    for name, records in (("subset_memory", work / "records_subset_w2"),
                          ("full_auto", work / "records_full_w2")):
        messages.clear()
        steps = input_pipeline.steps_per_epoch(str(records), split="train", batch_size=batch)
        dataset = input_pipeline.create_dataset(
            str(records), split="train", batch_size=batch, image_size=args.image_size,
            training=True, cache="memory" if name.startswith("subset") else "auto")
        rates = _epoch_rates(dataset, steps, 2, batch)
        decisions = [m for m in messages if "cache=" in m]
        cache_dir = records / input_pipeline.AUTO_CACHE_DIR
        out[name] = {"train_images": steps * batch, "first_epoch_images_per_second": rates[0],
                     "second_epoch_images_per_second": rates[1],
                     "decision": decisions[0] if decisions else "(memory, as asked)",
                     "disk_cache_bytes": _du(cache_dir) if cache_dir.exists() else 0,
                     "peak_rss_gb_so_far": _peak_rss_gb()}
        del dataset
    return out


def step(args, work: Path) -> dict:
    from tfgender.experiments import epoch_study
    from tfgender.input import pipeline as input_pipeline

    batch, steps, rounds = 64, args.step_steps, 2
    runner = epoch_study.create_step_runner("mobilenet_v2", image_size=args.image_size,
                                            batch_size=batch)
    fed = runner.iterator(input_pipeline.create_dataset(
        str(work / "records_full_w2"), split="train", batch_size=batch,
        image_size=args.image_size, training=True, cache="auto"))
    memory = runner.iterator(epoch_study.in_memory_dataset(batch, args.image_size))
    runner.run(fed, 2)  # trace and warm both
    runner.run(memory, 2)
    times = {"records_disk_cache": [], "in_memory": []}
    for _ in range(rounds):  # interleaved, so a drift in the machine hits both alike
        times["records_disk_cache"].append(runner.run(fed, steps))
        times["in_memory"].append(runner.run(memory, steps))
    rates = {k: steps * batch / min(v) for k, v in times.items()}
    return {"model": "mobilenet_v2", "image_size": args.image_size, "batch_size": batch,
            "precision": runner.policy, "steps_per_round": steps, "rounds": rounds,
            "images_per_second": rates,
            "ratio": rates["records_disk_cache"] / rates["in_memory"], "target": 0.97}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", required=True, type=Path)
    parser.add_argument("--num_images", type=int, default=202_599)
    parser.add_argument("--subset_images", type=int, default=20_000)
    parser.add_argument("--image_size", type=int, default=224)
    parser.add_argument("--step_steps", type=int, default=10)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="processes that draw the images (generate phase)")
    parser.add_argument("--phases", default=",".join(PHASES))
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    results = _results(args.work)
    cpu = re.search(r"Model name:\s*(.*)", subprocess.run(["lscpu"], capture_output=True,
                                                          text=True).stdout)
    results.setdefault("machine", {"cpu": cpu.group(1) if cpu else "?",
                                   "cores": os.cpu_count()})
    for phase in args.phases.split(","):
        if phase in results:
            print(f"== {phase}: measured already", flush=True)
            continue
        print(f"== {phase}", flush=True)
        results[phase] = globals()[phase](args, args.work)
        _save(args.work, results)
        print(json.dumps(results[phase], indent=1), flush=True)


if __name__ == "__main__":
    main()
