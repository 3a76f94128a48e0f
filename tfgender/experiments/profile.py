"""Profiler traces of tfgender's training step, per architecture and device, for TensorBoard."""

from __future__ import annotations

import glob
import json
import os
import time

import tensorflow as tf
from absl import logging

from tfgender.experiments import epoch_study


def profile_training(config) -> list[dict]:
    """Captures a profiler trace of ``config.steps`` training steps after warm-up.

    Each step is its own ``tf.profiler.experimental.Trace`` with a step number, so
    TensorBoard's profile plugin shows a step-time breakdown (input, compute, host).

    Args:
        config: a ``config.EpochStudyConfig``; ``output_dir`` is the trace log directory.

    Returns:
        One entry per (device, model): ``{"model", "device", "logdir", "precision",
        "jit_compile", "step_seconds", "input_pipeline", "step_time"}`` (the last two from
        xprof: ``input_pipeline_summary`` and ``step_time_breakdown``).

    Raises:
        ValueError: no output directory or no matching device.
    """
    if not config.output_dir:
        raise ValueError("--output_dir is required: the traces are written there")
    devices = epoch_study.list_devices(config.devices)
    if not devices:
        raise ValueError(f"no CPU/GPU device matches {list(config.devices)}")
    captured = []
    for device in devices:
        for model_name in config.models:
            runner = epoch_study.create_step_runner(
                model_name, image_size=config.image_size, batch_size=config.batch_size,
                precision_name=config.precision, jit_compile=config.jit_compile,
                device=device.name)
            iterator = runner.iterator(epoch_study.training_dataset(
                config, runner.batch_size, runner.image_size))
            runner.run(iterator, config.warmup_steps)  # tracing stays out of the profile
            runner.run_single(iterator)  # and that of the loop-free step the profile times
            tag = device.name.rsplit("device:", 1)[-1].replace(":", "").lower()
            logdir = os.path.join(config.output_dir, f"{model_name}-{tag}")
            seconds = []
            tf.profiler.experimental.start(logdir)
            try:
                for step in range(config.steps):
                    start = time.perf_counter()
                    with tf.profiler.experimental.Trace("train", step_num=step, _r=1):
                        runner.run_single(iterator)
                    seconds.append(time.perf_counter() - start)
            finally:
                tf.profiler.experimental.stop()
            logging.info("profile of %s on %s in %s", model_name, device.name, logdir)
            analysis = input_pipeline_summary(logdir, sum(seconds))
            captured.append({"model": model_name, "device": device.name, "logdir": logdir,
                             "precision": runner.policy, "jit_compile": runner.jit_compile,
                             "step_seconds": seconds, "input_pipeline": analysis,
                             "step_time": step_time_breakdown(logdir)})
    return captured


def _xprof_tool(logdir: str, tool: str) -> list | None:
    """xprof's ``tool`` output for the newest trace in ``logdir`` (its JSON tables), or None
    when xprof is not installed or no trace was written."""
    try:
        from xprof.convert import raw_to_tool_data  # (optional plugin)
    except ImportError:
        return None
    paths = sorted(glob.glob(os.path.join(logdir, "plugins", "profile", "*", "*.xplane.pb")))
    if not paths:
        return None
    data, _ = raw_to_tool_data.xspace_to_tool_data(paths[-1:], tool, {})
    return json.loads(data)


def step_time_breakdown(logdir: str) -> dict | None:
    """The step-time breakdown of the profile Overview page, as xprof computes it from the
    step markers of the newest trace in ``logdir``.

    Returns:
        ``{"steps", "step_ms", "step_ms_sd", "host_compute_ms", "input_ms", "other_ms",
        "compile_ms", "conclusion"}`` (averages over the marked steps), or None when xprof
        is not installed or no trace was written. ``steps`` is 0 when xprof found no marker.
    """
    tables = _xprof_tool(logdir, "overview_page")
    if tables is None:
        return None
    steps = tables[1]
    fields = steps.get("p", {})

    def ms(name: str) -> float:
        return float(fields.get(name, 0.0) or 0.0)

    return {"steps": len(steps.get("rows", [])), "step_ms": ms("steptime_ms_average"),
            "step_ms_sd": ms("steptime_ms_standard_deviation"),
            "host_compute_ms": ms("host_compute_time_ms_avg"),
            "input_ms": ms("infeed_time_ms_avg"), "other_ms": ms("other_time_ms_avg"),
            "compile_ms": ms("compile_time_ms_avg"),
            "conclusion": fields.get("input_conclusion", "")}


def input_pipeline_summary(logdir: str, traced_seconds: float) -> dict | None:
    """What the profiler's input-pipeline analyser says of a trace, in a few numbers.

    Returns:
        ``{"input_ms", "traced_ms", "input_fraction", "conclusion", "slowest_input_op"}``,
        or None when the profile plugin (xprof) is not installed or no trace was written.
    """
    tables = _xprof_tool(logdir, "input_pipeline_analyzer")
    if tables is None:
        return None
    summary, ops = tables[1:3]
    input_ms = float(ops["p"].get("preprocessing_us", 0)) / 1e3
    slowest = max(ops["rows"], key=lambda r: r["c"][4]["v"], default=None)  # self time
    return {"input_ms": input_ms, "traced_ms": traced_seconds * 1e3,
            "input_fraction": input_ms / (traced_seconds * 1e3) if traced_seconds else None,
            "conclusion": summary["p"].get("input_conclusion", ""),
            "slowest_input_op": slowest["c"][0]["v"] if slowest else None}
