"""Training-step throughput of each architecture across precision and XLA, on in-memory batches.

The figure is tfgender's real step (``train_steps.make_train_step``: augmentation, forward,
loss, update) fed by one in-memory batch, so the input pipeline costs nothing. The full grid
(3 models x 2 sizes x 3 precisions x XLA on/off) is long on 2 cores; narrow it with
TFGENDER_BENCH_MODELS, TFGENDER_BENCH_SIZES, TFGENDER_BENCH_PRECISIONS, TFGENDER_BENCH_XLA
(comma-separated), TFGENDER_BENCH_BATCH and TFGENDER_BENCH_STEPS (steps per timed round).
"""

from __future__ import annotations

import os

import conftest  # benchmarks/conftest.py: rounds, batch size, summary sections
import pytest

from tfgender import devices, models
from tfgender.experiments import epoch_study


def _env_list(name: str, default) -> list[str]:
    value = os.environ.get(name, "")
    return [v.strip() for v in value.split(",") if v.strip()] or list(default)


MODELS = _env_list("TFGENDER_BENCH_MODELS", sorted(models.MODELS))
SIZES = [int(v) for v in _env_list("TFGENDER_BENCH_SIZES", ["224", "96"])]
PRECISIONS = _env_list("TFGENDER_BENCH_PRECISIONS", devices.POLICIES)
XLA = _env_list("TFGENDER_BENCH_XLA", ["false", "true"])
BATCH = int(os.environ.get("TFGENDER_BENCH_BATCH", conftest.BATCH_SIZE))
STEPS = int(os.environ.get("TFGENDER_BENCH_STEPS", "5"))
# (model, size, policy, xla) -> images per second, for the summary table.
RESULTS: dict[tuple, float] = {}

pytestmark = pytest.mark.benchmark(group="train_step")



def _summary() -> list[str]:
    lines = [f"batch {BATCH}, {STEPS} steps per round, in-memory input, device {conftest.device()}",
             f"  {'model':<14}{'size':>6}  {'precision':<16}{'XLA':<5}{'img/s':>10}"]
    for (model, size, policy, jit), rate in sorted(RESULTS.items()):
        lines.append(f"  {model:<14}{size:>6}  {policy:<16}{jit:<5}{rate:10.1f}")
    return lines


@pytest.fixture(scope="module", autouse=True)
def _summary_section():
    conftest.SECTIONS["tfgender training step throughput"] = _summary
    yield
    devices.apply("float32")


@pytest.mark.parametrize("jit", XLA, ids=lambda v: "xla_on" if v == "true" else "xla_off")
@pytest.mark.parametrize("policy", PRECISIONS)
@pytest.mark.parametrize("size", SIZES, ids=lambda v: f"{v}px")
@pytest.mark.parametrize("model_name", MODELS)
def test_train_step(benchmark, model_name, size, policy, jit):
    runner = epoch_study.create_step_runner(model_name, image_size=size, batch_size=BATCH,
                                            precision_name=policy, jit_compile=jit)
    iterator = runner.iterator(epoch_study.in_memory_dataset(BATCH, size))
    # The warm-up round traces (and with XLA compiles) the step; timed rounds do not.
    benchmark.pedantic(runner.run, args=(iterator, STEPS), rounds=conftest.ROUNDS,
                       iterations=1, warmup_rounds=1)
    benchmark.extra_info.update(device=conftest.device(), model=model_name, image_size=size,
                                batch_size=BATCH, precision=policy, xla=jit == "true",
                                steps_per_round=STEPS)
    if benchmark.stats is None:  # --benchmark-disable: nothing was timed
        return
    rate = STEPS * BATCH / benchmark.stats.stats.median  # median round: robust to a noisy one
    benchmark.extra_info["images_per_second"] = rate
    RESULTS[(model_name, size, policy, "on" if jit == "true" else "off")] = rate
