"""Per-device precision and XLA defaults, chosen from measurement rather than by habit.

Measured on this project's 2-core AVX-512/AMX-BF16 CPU (see BUILD_NOTES.md): graph mode with
oneDNN is the fast path; XLA ``jit_compile`` made a MobileNetV2 train step 10x slower;
``mixed_bfloat16`` made ResNet50 ~1.4x faster but MobileNetV2 ~1.3x slower, and oneDNN's own
bfloat16 graph rewrite (``onednn_bfloat16``) was faster still for ResNet50. On a CUDA GPU the
usual answer holds: ``mixed_float16`` with XLA.
"""

from __future__ import annotations

import functools

import keras
import tensorflow as tf
from absl import logging

# ``onednn_bfloat16`` is not a Keras policy: the model is float32 and Grappler's
# auto_mixed_precision_onednn_bfloat16 pass rewrites the graph's oneDNN ops to bfloat16.
POLICIES = ("float32", "mixed_float16", "mixed_bfloat16", "onednn_bfloat16")
# Architectures measured faster with oneDNN's bfloat16 rewrite than with Keras' mixed_bfloat16
# and float32 on a CPU with AMX/AVX512-BF16 (benchmarks/levers.py train_step, BUILD_NOTES).
_CPU_BF16_FASTER = frozenset({"resnet50"})
_ONEDNN_REWRITE = "auto_mixed_precision_onednn_bfloat16"


def keras_policy(name: str) -> str:
    """The Keras mixed precision policy a precision name builds its model under."""
    return "float32" if name == "onednn_bfloat16" else name


def apply(name: str) -> None:
    """Makes ``name`` the process's precision: the Keras policy and the oneDNN graph rewrite.

    The rewrite is a process-wide Grappler option read when a ``tf.function`` first runs, so
    call this before the first step and not again with another name until then; every other
    name switches the rewrite off.

    Raises:
        ValueError: ``name`` is not one of ``POLICIES``.
    """
    if name not in POLICIES:
        raise ValueError(f"unknown precision {name!r}; expected one of {POLICIES}")
    keras.mixed_precision.set_global_policy(keras_policy(name))
    tf.config.optimizer.set_experimental_options({_ONEDNN_REWRITE: name == "onednn_bfloat16"})


@functools.lru_cache(maxsize=1)
def cpu_has_bf16() -> bool:
    """True when the CPU has native bfloat16 matrix instructions (AMX-BF16 or AVX512-BF16)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def device_kind() -> str:
    """``"gpu"`` when TensorFlow sees a GPU, else ``"cpu"``."""
    return "gpu" if tf.config.list_physical_devices("GPU") else "cpu"


def resolve_precision(requested: str, model_name: str, device: str | None = None) -> str:
    """Turns ``auto`` into a Keras mixed precision policy name for this device and model.

    Args:
        requested: ``auto`` or one of ``POLICIES``.
        model_name: the architecture (choices differ per architecture on CPU).
        device: ``cpu``/``gpu``; detected when None.

    Returns:
        One of ``POLICIES``.
    """
    if requested != "auto":
        if requested not in POLICIES:
            raise ValueError(f"unknown precision {requested!r}; expected auto or {POLICIES}")
        return requested
    device = device or device_kind()
    if device == "gpu":
        choice, why = "mixed_float16", "GPU: float16 tensor cores"
    elif model_name in _CPU_BF16_FASTER and cpu_has_bf16():
        choice = "onednn_bfloat16"
        why = f"CPU with bf16 matrix units: oneDNN's bf16 rewrite measured fastest for {model_name}"
    else:
        choice, why = "float32", "CPU: measured fastest (or unmeasured) for this model"
    logging.info("precision=auto -> %s (%s)", choice, why)
    return choice


def resolve_jit(requested: str, device: str | None = None) -> bool:
    """Turns ``auto|true|false`` into whether the model step is XLA-compiled."""
    if requested in ("true", "false"):
        return requested == "true"
    if requested != "auto":
        raise ValueError(f"unknown jit_compile {requested!r}; expected auto, true or false")
    device = device or device_kind()
    choice = device == "gpu"
    logging.info("jit_compile=auto -> %s (%s)", choice,
                 "GPU: XLA fuses the step" if choice else "CPU: oneDNN graph mode measured faster")
    return choice
