"""Per-device precision and XLA defaults, chosen by measuring this machine.

``--precision=auto`` times each precision that can win on this hardware for the run's
architecture, image size and batch (a few steps each, in fresh processes) the first time that
combination is seen, and keeps the fastest in the user's cache (``calibration_path``). A CPU
without bf16 units has one candidate, float32, and times nothing. What earlier measurement
found (docs/benchmarks.md, per CPU and with the command that measured it) is the fallback table
where measuring is off: the answer differs between CPUs that look alike, which is why it is
measured rather than looked up. On a CUDA GPU the usual answer holds: ``mixed_float16`` with
XLA.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys

import tensorflow as tf
from absl import logging

from tfgender import devices
from tfgender.files import write_json_atomic

# Architectures measured faster with oneDNN's bfloat16 rewrite than with Keras' mixed_bfloat16
# and float32 on a CPU with AMX/AVX512-BF16 (benchmarks/levers.py train_step; docs/log.md,
# sessions 2-3).
_CPU_BF16_FASTER = frozenset({"resnet50"})

# What a calibration's second pass re-times: candidates within this factor of the fastest.
# One pass in a fixed order let a VM's drift of 10-20% between runs decide a close call.
_CLOSE = 1.25


def candidates(device: str, has_bf16: bool) -> tuple[str, ...]:
    """The precisions that can win on this device: nothing is timed where only one can.

    A CPU without bfloat16 matrix units emulates bfloat16 (slower than float32 in every
    measurement here), so float32 is its only candidate; with them, float32, oneDNN's bf16
    rewrite, Keras' ``mixed_bfloat16`` and bfloat16 in the matmul layers only; a GPU,
    ``mixed_float16`` and float32.
    """
    if device == "gpu":
        return ("mixed_float16", "float32")
    if not has_bf16:
        return ("float32",)
    return ("float32", "onednn_bfloat16", "mixed_bfloat16", "mixed_bfloat16_matmul")


def calibration_path() -> str:
    """Where measured choices are kept: ``$TFGENDER_PRECISION_CACHE``, else the user's cache
    directory (``$XDG_CACHE_HOME`` or ``~/.cache``) ``/tfgender/precision.json``."""
    if os.environ.get("TFGENDER_PRECISION_CACHE"):
        return os.environ["TFGENDER_PRECISION_CACHE"]
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(root, "tfgender", "precision.json")


def calibration_key(model_name: str, image_size: int, batch_size: int, device: str,
                    options: dict | None = None) -> str:
    """The table's key; ``options`` (the run's model options that differ from the defaults:
    width, conv_norm, head) are part of it, since each changes what a step computes."""
    hardware = devices.cpu_model() if device == "cpu" else device
    key = (f"{hardware} | TensorFlow {tf.__version__} | {model_name} | {image_size} px | "
           f"batch {batch_size}")
    if options:
        key += " | " + ", ".join(f"{name} {_text(value)}" for name, value in
                                 sorted(options.items()))
    return key


def _text(value) -> str:
    return "/".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


def choose_by_measuring(model_name: str, image_size: int, batch_size: int, *,
                        device: str | None = None, has_bf16: bool | None = None,
                        timer=None, path: str | None = None,
                        model_options: dict | None = None) -> tuple[str, dict]:
    """The fastest precision for this (hardware, TensorFlow, model, size, batch), measured once.

    Each candidate is timed once; those within ``_CLOSE`` of the fastest are timed again in
    the reverse order and keep their faster time, so a machine that drifts during the
    calibration does not decide a close call by the order of the candidates. An entry cached
    among other candidates (an older tfgender offered fewer) is measured again.

    Args:
        timer: ``timer(precision) -> seconds per step``; default ``time_step_in_subprocess``
            (a clean process each: oneDNN's rewrite is a process-wide option).
        path: the JSON table of measured choices; default ``calibration_path()``.
        model_options: ``models.build_model`` options of the run's model (``alpha``,
            ``conv_norm``, ``head_units``, ``dropout``) that differ from the defaults: the
            timed model is the run's, and the options are part of the key.

    Returns:
        (choice, the table entry ``{"choice", "seconds_per_step": {precision: s},
        "candidates", "why"}``).
    """
    device = device or devices.device_kind()
    has_bf16 = devices.cpu_has_bf16() if has_bf16 is None else has_bf16
    options = candidates(device, has_bf16)
    if len(options) == 1:
        return options[0], {"choice": options[0], "seconds_per_step": {},
                            "why": f"the only candidate on this {device} (no bf16 units)"}
    path = path or calibration_path()
    key = calibration_key(model_name, image_size, batch_size, device, model_options)
    table = _read_table(path)
    cached = table.get(key, {})
    if cached.get("choice") in options and cached.get("candidates") == list(options):
        return cached["choice"], {**cached, "why": f"from {path}: {cached['why']}"}
    # A pause of minutes on a new machine must say why before it starts (stderr: the console
    # and a nohup log alike).
    print(f"precision=auto: timing {len(options)} candidates ({', '.join(options)}) for "
          f"{model_name} at {image_size} px, batch {batch_size}, each in a fresh process: "
          "a few minutes, once for this machine and model (kept in "
          f"{path}; --precision=NAME or TFGENDER_PRECISION_CALIBRATION=off skips it)",
          file=sys.stderr, flush=True)
    timer = timer or functools.partial(time_step_in_subprocess, model_name, image_size,
                                       batch_size, model_options=model_options)
    seconds = {}

    def time_each(names):
        for option in names:
            try:
                took = float(timer(option))
            except (RuntimeError, OSError, ValueError) as err:  # a candidate that cannot run
                logging.warning("precision calibration: %s failed (%s)", option, err)
                continue
            seconds[option] = min(took, seconds.get(option, took))

    time_each(options)
    if not seconds:
        return options[0], {"choice": options[0], "seconds_per_step": {},
                            "candidates": list(options),
                            "why": "every candidate failed to run; float32 kept"}
    fastest = min(seconds.values())
    close = [o for o in reversed(options) if seconds.get(o, float("inf")) <= fastest * _CLOSE]
    if len(close) > 1:
        time_each(close)
    choice = min(seconds, key=seconds.get)
    again = f"; {', '.join(reversed(close))} timed twice (best kept)" if len(close) > 1 else ""
    entry = {"choice": choice, "seconds_per_step": seconds, "candidates": list(options),
             "why": f"measured fastest of {', '.join(seconds)}{again}"}
    timed = ", ".join(f"{k} {v * 1000:.0f} ms/step" for k, v in seconds.items())
    print(f"precision=auto: {choice} ({timed})", file=sys.stderr, flush=True)
    table[key] = entry
    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        write_json_atomic(path, table)
    except OSError as err:  # an unwritable cache: measure again next time
        logging.warning("precision calibration not saved to %s: %s", path, err)
    return choice, entry


def _read_table(path: str) -> dict:
    try:
        with open(path) as f:
            table = json.load(f)
    except (OSError, ValueError):
        return {}
    return table if isinstance(table, dict) else {}


def time_step_in_subprocess(model_name: str, image_size: int, batch_size: int,
                            policy: str, steps: int = 5,
                            model_options: dict | None = None) -> float:
    """Seconds per training step of ``policy``, timed in a fresh Python process (the model
    built with ``model_options``, as ``choose_by_measuring`` takes them)."""
    code = ("import json, sys; from tfgender.experiments import epoch_study as e; "
            "r = e.create_step_runner(sys.argv[1], image_size=int(sys.argv[2]), "
            "batch_size=int(sys.argv[3]), precision_name=sys.argv[4], jit_compile='false', "
            "model_options=json.loads(sys.argv[6])); "
            "it = r.iterator(e.in_memory_dataset(r.batch_size, r.image_size).repeat()); "
            "r.run(it, 2); print(json.dumps(r.run(it, int(sys.argv[5])) / int(sys.argv[5])))")
    proc = subprocess.run([sys.executable, "-c", code, model_name, str(image_size),
                           str(batch_size), policy, str(steps), json.dumps(model_options or {})],
                          capture_output=True, text=True, timeout=600)
    if proc.returncode:
        tail = proc.stderr.strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"exit {proc.returncode}: {tail[0][:200]}")
    return float(proc.stdout.strip().splitlines()[-1])


def _may_measure() -> bool:
    """False with ``TFGENDER_PRECISION_CALIBRATION=off`` (the test suite), and with several
    workers (each would time alone, and they must agree): then the table decides."""
    if os.environ.get("TFGENDER_PRECISION_CALIBRATION", "on") == "off":
        return False
    try:
        cluster = json.loads(os.environ.get("TF_CONFIG") or "{}").get("cluster", {})
    except ValueError:
        return False
    return len(cluster.get("worker", [])) + len(cluster.get("chief", [])) <= 1


def resolve_precision(requested: str, model_name: str, device: str | None = None, *,
                      image_size: int = 0, batch_size: int = 0,
                      model_options: dict | None = None) -> str:
    """Turns ``auto`` into a precision for this device and model, and logs why.

    With ``image_size`` and ``batch_size``, ``auto`` measures (``choose_by_measuring``: the
    first time a hardware/TensorFlow/model/size/batch is seen, each candidate is timed for a
    few steps; the fastest is kept in the user's cache). Without them it takes the table of
    what earlier measurement found (ResNet50 with oneDNN's bf16 rewrite on bf16 CPUs).

    Returns:
        One of ``POLICIES``.
    """
    choice, why = explain_precision(requested, model_name, device, image_size=image_size,
                                    batch_size=batch_size, model_options=model_options)
    if requested == "auto":
        logging.info("precision=auto -> %s (%s)", choice, why)
    return choice


def explain_precision(requested: str, model_name: str, device: str | None = None, *,
                      image_size: int = 0, batch_size: int = 0,
                      model_options: dict | None = None) -> tuple[str, str]:
    """``resolve_precision``'s choice and the reason for it, in words (with the measured
    milliseconds per step of each candidate where ``auto`` timed them)."""
    if requested != "auto":
        if requested not in devices.POLICIES:
            raise ValueError(f"unknown precision {requested!r}; expected auto or "
                             f"{devices.POLICIES}")
        return requested, "as requested"
    device = device or devices.device_kind()
    if image_size and batch_size and _may_measure():
        choice, entry = choose_by_measuring(model_name, image_size, batch_size, device=device,
                                            model_options=model_options)
        timed = ", ".join(f"{k} {v * 1000:.0f} ms/step"
                          for k, v in entry["seconds_per_step"].items()) or "not timed"
        return choice, f"{entry['why']}; {timed}"
    if device == "gpu":
        return "mixed_float16", "GPU: float16 tensor cores"
    if model_name in _CPU_BF16_FASTER and devices.cpu_has_bf16():
        return "onednn_bfloat16", (f"CPU with bf16 matrix units: oneDNN's bf16 rewrite measured "
                                   f"fastest for {model_name}")
    return "float32", "CPU: measured fastest (or unmeasured) for this model"


def resolve_jit(requested: str, device: str | None = None) -> bool:
    """Turns ``auto|true|false`` into whether the model step is XLA-compiled."""
    if requested in ("true", "false"):
        return requested == "true"
    if requested != "auto":
        raise ValueError(f"unknown jit_compile {requested!r}; expected auto, true or false")
    device = device or devices.device_kind()
    choice = device == "gpu"
    logging.info("jit_compile=auto -> %s (%s)", choice,
                 "GPU: XLA fuses the step" if choice else "CPU: oneDNN graph mode measured faster")
    return choice
