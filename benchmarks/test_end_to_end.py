"""End-to-end training throughput: the study's stack against tfgender's, same model and images.

Three stacks train the same architecture on the same Adience-shaped 816 px sample for the same
number of steps per timed round:

- ``study_stack``: ``legacy.create_idg_iterator`` (the study's augmentation) feeding Keras
  ``model.compile(...); model.fit(...)`` in float32;
- ``tfgender_records``: TFRecords -> ``input_pipeline.create_dataset`` (memory cache) -> the
  custom tf.function loop, precision and XLA ``auto``;
- ``tfgender_in_memory``: the same loop fed one in-memory batch (zero input cost).

Settings: TFGENDER_BENCH_MODELS (default mobilenet_v2, the study's model), TFGENDER_BENCH_STEPS
(default one pass over the sample), plus conftest's TFGENDER_BENCH_IMAGES/ROUNDS.
"""

from __future__ import annotations

import os

import conftest  # benchmarks/conftest.py: the sample, settings and summary sections
import keras
import pytest

from tfgender import devices, models
from tfgender.experiments import epoch_study, legacy
from tfgender.input import pipeline as input_pipeline

SIZE, BATCH = conftest.IMAGE_SIZE, conftest.BATCH_SIZE
MODELS = [m.strip() for m in os.environ.get("TFGENDER_BENCH_MODELS", "mobilenet_v2").split(",")
          if m.strip()]
STACKS = ("study_stack", "tfgender_records", "tfgender_in_memory")
# (numerator, denominator, target) of images per second.
TARGETS = (("tfgender_records", "tfgender_in_memory", 0.97),
           ("tfgender_records", "study_stack", 2.0))  # issue 16: >= 2x the study stack
# (stack, model) -> images per second, for the summary.
RESULTS: dict[tuple[str, str], float] = {}

pytestmark = pytest.mark.benchmark(group="end_to_end")



def _steps(bench_data) -> int:
    """Steps per timed round: TFGENDER_BENCH_STEPS, else one pass over the sample."""
    if len(bench_data.frame) < BATCH:
        pytest.skip(f"{len(bench_data.frame)} labelled images cannot fill one batch of {BATCH}: "
                    "raise TFGENDER_BENCH_IMAGES")
    return int(os.environ.get("TFGENDER_BENCH_STEPS", 0)) or max(1, len(bench_data.frame) // BATCH)


def _summary() -> list[str]:
    lines = [f"{SIZE}x{SIZE}, batch {BATCH}, {conftest.NUM_IMAGES} images drawn at 816x816, "
             f"device {conftest.device()}"]
    for model in MODELS:
        for stack in STACKS:
            rate = RESULTS.get((stack, model))
            lines.append(f"  {model:<14}{stack:<22}"
                         + (f"{rate:10.1f} img/s" if rate else "  not measured"))
        for top, bottom, target in TARGETS:
            name = f"  {model}: {top} / {bottom}"
            a, b = RESULTS.get((top, model)), RESULTS.get((bottom, model))
            if not (a and b):
                lines.append(f"{name:<62} not measured (target >= {target:g})")
                continue
            verdict = "met" if a / b >= target else "NOT met"
            lines.append(f"{name:<62} {a / b:7.2f}x  target >= {target:g}: {verdict}")
    return lines


@pytest.fixture(scope="module", autouse=True)
def _summary_section():
    conftest.SECTIONS["tfgender end-to-end training throughput"] = _summary
    yield
    devices.apply("float32")


def _measure(benchmark, stack: str, model_name: str, policy: str, jit: bool, run, steps: int):
    """Times ``run`` (one round of ``steps`` steps) after one untimed warm-up round."""
    benchmark.pedantic(run, rounds=conftest.ROUNDS, iterations=1, warmup_rounds=1)
    benchmark.extra_info.update(device=conftest.device(), model=model_name, stack=stack,
                                image_size=SIZE, batch_size=BATCH, precision=policy, xla=jit,
                                steps_per_round=steps)
    if benchmark.stats is None:  # --benchmark-disable: nothing was timed
        return
    rate = steps * BATCH / benchmark.stats.stats.median  # median round: robust to a noisy one
    benchmark.extra_info["images_per_second"] = rate
    RESULTS[(stack, model_name)] = rate


@pytest.mark.parametrize("model_name", MODELS)
def test_study_stack(benchmark, bench_data, model_name):
    steps = _steps(bench_data)
    # Whole batches only, so every step trains BATCH images as in the other stacks.
    frame = bench_data.frame.iloc[:len(bench_data.frame) // BATCH * BATCH]
    iterator = legacy.create_idg_iterator(frame, bench_data.raw_dir, batch_size=BATCH,
                                          image_size=SIZE, augment=True)
    devices.apply("float32")  # also switches off a oneDNN rewrite an earlier test left on
    keras.utils.set_random_seed(0)
    model = models.build_model(model_name, SIZE)
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.BinaryCrossentropy(from_logits=True), metrics=["accuracy"])

    def run():
        # The warm-up round traces Keras' train function; later fits reuse it.
        model.fit(iterator, steps_per_epoch=steps, epochs=1, verbose=0)

    _measure(benchmark, "study_stack", model_name, "float32", False, run, steps)


@pytest.mark.parametrize("model_name", MODELS)
def test_tfgender_records(benchmark, bench_data, model_name):
    steps = _steps(bench_data)
    runner = epoch_study.create_step_runner(model_name, image_size=SIZE, batch_size=BATCH)
    dataset = input_pipeline.create_dataset(bench_data.records_dir, batch_size=BATCH,
                                            image_size=SIZE, training=True, cache="memory")
    iterator = runner.iterator(dataset)
    # One untimed pass fills the memory cache: the figure is the steady state of epochs 2+.
    runner.run(iterator, max(1, input_pipeline.steps_per_epoch(bench_data.records_dir,
                                                               batch_size=BATCH)))
    _measure(benchmark, "tfgender_records", model_name, runner.policy, runner.jit_compile,
             lambda: runner.run(iterator, steps), steps)


@pytest.mark.parametrize("model_name", MODELS)
def test_tfgender_in_memory(benchmark, bench_data, model_name):
    steps = _steps(bench_data)
    runner = epoch_study.create_step_runner(model_name, image_size=SIZE, batch_size=BATCH)
    iterator = runner.iterator(epoch_study.in_memory_dataset(BATCH, SIZE))
    _measure(benchmark, "tfgender_in_memory", model_name, runner.policy, runner.jit_compile,
             lambda: runner.run(iterator, steps), steps)
