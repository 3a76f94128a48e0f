"""tfgender's training step against PyTorch's on the same CPU: what a user would pick instead.

The same network on both sides: torchvision's ``mobilenet_v2`` / ``resnet50`` features with
global average pooling and tfgender's default head (Dense 1024-512-256, ReLU, dropout 0.5, one
logit), Adam at 1e-3, binary cross-entropy on the logit, one in-memory batch (no input cost).
tfgender's step is the one ``bin/train`` builds (``epoch_study.create_step_runner``), with
``--precision=auto`` and its augmentation inside the step (flip, rotation, brightness: work the
PyTorch step does not do). PyTorch's variants: float32 NCHW, channels_last, bfloat16 autocast
+ channels_last, and ``torch.compile`` of the last (TFGENDER_BENCH_TORCH_COMPILE=1; minutes of
compiling).

Needs the optional extra: ``pip install -e .[torch]``; skipped without it (``make test`` never
needs torch). Settings: TFGENDER_BENCH_TORCH_STEPS (steps per round, default 5),
TFGENDER_BENCH_ROUNDS (rounds; the best is kept, as the issue measured).
"""

from __future__ import annotations

import os
import platform
import time

import conftest
import pytest

try:  # a torchvision built for another torch fails with a RuntimeError, not an ImportError
    import torch
    import torchvision
except (ImportError, RuntimeError) as err:
    pytest.skip(f"PyTorch is an optional extra (pip install -e .[torch]): {err}",
                allow_module_level=True)

BATCH = 64
STEPS = int(os.environ.get("TFGENDER_BENCH_TORCH_STEPS", "5"))
ROUNDS = conftest.ROUNDS
# (model, input size): the study's 224 px for both, and the ImageNet recipe's 112 px.
CASES = [("mobilenet_v2", 224), ("resnet50", 224), ("mobilenet_v2", 112)]
VARIANTS = ["float32", "channels_last", "bfloat16_channels_last"]
if os.environ.get("TFGENDER_BENCH_TORCH_COMPILE") == "1":
    VARIANTS.append("compile_bfloat16_channels_last")
HEAD = (1024, 512, 256)
# (framework or variant, model, size) -> images per second.
RESULTS: dict[tuple[str, str, int], float] = {}

pytestmark = pytest.mark.benchmark(group="vs_pytorch")


def _cpu() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        return f"{names[0]} x{len(names)}" if names else platform.processor()
    except OSError:
        return platform.processor()


def _summary() -> list[str]:
    lines = [f"batch {BATCH}, {STEPS} steps per round, best of {ROUNDS}; {_cpu()}; "
             f"torch {torch.__version__} ({torch.get_num_threads()} threads), torchvision "
             f"{torchvision.__version__}"]
    for model, size in CASES:
        ours = RESULTS.get(("tfgender", model, size))
        theirs = {v: RESULTS[(v, model, size)] for v in VARIANTS if (v, model, size) in RESULTS}
        if not ours or not theirs:
            lines.append(f"{model} {size} px: not measured")
            continue
        best = max(theirs, key=theirs.get)
        lines.append(f"{model} {size} px: tfgender {ours:.1f} img/s, pytorch best "
                     f"{theirs[best]:.1f} img/s ({best}), ratio {ours / theirs[best]:.2f}x")
        lines.append("    pytorch: " + ", ".join(f"{v} {r:.1f}" for v, r in theirs.items()))
    return lines


@pytest.fixture(scope="module", autouse=True)
def _summary_section():
    conftest.SECTIONS["tfgender vs PyTorch, one training step (issue 35)"] = _summary
    yield


def _best_rate(benchmark, run, extra: dict) -> float:
    """Times ``run`` (one round of STEPS steps) ROUNDS times after a warm-up round; returns
    the images per second of the fastest round."""
    benchmark.pedantic(run, rounds=ROUNDS, iterations=1, warmup_rounds=1)
    benchmark.extra_info.update(cpu=_cpu(), batch_size=BATCH, steps_per_round=STEPS, **extra)
    if benchmark.stats is None:  # --benchmark-disable
        return 0.0
    rate = STEPS * BATCH / benchmark.stats.stats.min
    benchmark.extra_info["images_per_second"] = rate
    return rate


@pytest.mark.parametrize("model_name, size", CASES)
def test_tfgender_step(benchmark, model_name, size):
    from tfgender import devices
    from tfgender.experiments import epoch_study

    runner = epoch_study.create_step_runner(model_name, image_size=size, batch_size=BATCH)
    iterator = runner.iterator(epoch_study.in_memory_dataset(BATCH, size))
    import tensorflow as tf

    rate = _best_rate(benchmark, lambda: runner.run(iterator, STEPS), {
        "framework": f"tensorflow {tf.__version__}", "model": model_name, "image_size": size,
        "precision": runner.policy, "why": runner.precision_why, "xla": runner.jit_compile,
        "threads": (tf.config.threading.get_intra_op_parallelism_threads(),
                    tf.config.threading.get_inter_op_parallelism_threads())})
    RESULTS[("tfgender", model_name, size)] = rate
    devices.apply("float32")


class _Net(torch.nn.Module):
    """torchvision's features, global average pooling and tfgender's default head."""

    def __init__(self, model_name: str):
        super().__init__()
        if model_name == "mobilenet_v2":
            base = torchvision.models.mobilenet_v2(weights=None)
            self.features, width = base.features, base.last_channel
        else:
            base = torchvision.models.resnet50(weights=None)
            self.features = torch.nn.Sequential(*list(base.children())[:-2])
            width = base.fc.in_features
        layers, previous = [], width
        for units in HEAD:
            layers += [torch.nn.Linear(previous, units), torch.nn.ReLU(), torch.nn.Dropout(0.5)]
            previous = units
        self.head = torch.nn.Sequential(*layers, torch.nn.Linear(previous, 1))

    def forward(self, images):
        pooled = torch.nn.functional.adaptive_avg_pool2d(self.features(images), 1).flatten(1)
        return self.head(pooled)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("model_name, size", CASES)
def test_pytorch_step(benchmark, model_name, size, variant):
    torch.manual_seed(0)
    model = _Net(model_name).train()
    images = torch.rand(BATCH, 3, size, size)
    labels = torch.randint(0, 2, (BATCH, 1)).float()
    if variant != "float32":
        model = model.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    bf16 = "bfloat16" in variant
    step_model = model
    if variant.startswith("compile"):
        step_model = torch.compile(model)

    def step():
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = step_model(images)
        loss = loss_fn(logits.float(), labels)
        loss.backward()
        optimizer.step()

    compile_seconds = None
    if variant.startswith("compile"):
        start = time.perf_counter()
        step()  # compiles
        compile_seconds = time.perf_counter() - start

    def run():
        for _ in range(STEPS):
            step()

    rate = _best_rate(benchmark, run, {
        "framework": f"torch {torch.__version__}", "model": model_name, "image_size": size,
        "variant": variant, "threads": torch.get_num_threads(),
        "compile_seconds": compile_seconds})
    RESULTS[(variant, model_name, size)] = rate
