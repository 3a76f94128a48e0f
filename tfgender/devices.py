"""What this process runs on, and the precision it computes in: the helpers that training,
evaluation and export share (``training/precision.py`` chooses a precision by measuring).
"""

from __future__ import annotations

import functools

import keras
import tensorflow as tf

from tfgender.choices import PRECISIONS

# ``onednn_bfloat16`` is not a Keras policy: the model is float32 and Grappler's
# auto_mixed_precision_onednn_bfloat16 pass rewrites the graph's oneDNN ops to bfloat16.
POLICIES = PRECISIONS
_ONEDNN_REWRITE = "auto_mixed_precision_onednn_bfloat16"


def keras_policy(name: str) -> str:
    """The global Keras policy a precision name builds its model under
    (``models.set_layer_policies`` then gives ``mixed_bfloat16_matmul``'s matmul layers their
    own)."""
    return "float32" if name in ("onednn_bfloat16", "mixed_bfloat16_matmul") else name


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


def cpu_model() -> str:
    """The CPU's model name, family and model numbers, as ``/proc/cpuinfo`` gives them."""
    fields = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        return "unknown CPU"
    return (f"{fields.get('model name', 'unknown CPU')} (family {fields.get('cpu family', '?')} "
            f"model {fields.get('model', '?')})")
