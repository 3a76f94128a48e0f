"""tf.distribute strategy selection: TensorFlow's own engine, configured by TF_CONFIG."""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np
import tensorflow as tf
from absl import logging

from tfgender.choices import STRATEGIES


def _tf_config_workers() -> int:
    try:
        cluster = json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {})
    except json.JSONDecodeError as err:
        raise ValueError(f"TF_CONFIG is not valid JSON: {err}") from None
    return len(cluster.get("worker", [])) + len(cluster.get("chief", []))


def create_strategy(kind: str = "auto") -> tf.distribute.Strategy:
    """Returns the strategy to train under, and logs the choice.

    Args:
        kind: ``auto`` (multi-worker when TF_CONFIG names several tasks, mirrored over several
            GPUs, else the default strategy), ``default``, ``mirrored`` (all local GPUs, or all
            logical CPUs when there is no GPU) or ``multi_worker``.
    """
    if kind not in STRATEGIES:
        raise ValueError(f"unknown distribution {kind!r}; expected one of {STRATEGIES}")
    if kind == "auto":
        if _tf_config_workers() > 1:
            kind = "multi_worker"
        elif len(tf.config.list_logical_devices("GPU")) > 1:
            kind = "mirrored"
        else:
            kind = "default"
    if kind == "multi_worker":
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    elif kind == "mirrored":
        devices = [d.name for d in tf.config.list_logical_devices("GPU")] or [
            d.name for d in tf.config.list_logical_devices("CPU")]
        strategy = tf.distribute.MirroredStrategy(devices=devices)
    else:
        strategy = tf.distribute.get_strategy()
    try:
        devices = ", ".join(strategy.extended.worker_devices)
    except RuntimeError:  # the default strategy has no device list
        devices = "the default device"
    logging.info("distribution: %s with %d replica(s) on %s", kind,
                 strategy.num_replicas_in_sync, devices)
    return strategy


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """True on the task that writes the real checkpoints and summaries."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    return task_type == "chief" or (task_type == "worker" and task_id == 0
                                    and "chief" not in resolver.cluster_spec().as_dict())


def task_dir(workdir: str, strategy: tf.distribute.Strategy) -> str:
    """The chief writes into ``workdir``; other workers into a temporary sibling it removes."""
    if is_chief(strategy):
        return workdir
    resolver = strategy.cluster_resolver
    return os.path.join(workdir, f".worker-{resolver.task_type}-{resolver.task_id}")


def set_cpu_devices(num: int) -> None:
    """Splits the host CPU into ``num`` logical devices (``num`` <= 1: leaves it alone).

    MirroredStrategy then runs one replica per logical CPU: the way to exercise multi-replica
    code paths (global-batch loss averaging, all-reduce) on a machine without GPUs.

    Raises:
        ValueError: TensorFlow's devices were initialised before with another layout.
    """
    if num <= 1:
        return
    cpu = tf.config.list_physical_devices("CPU")[0]
    current = tf.config.get_logical_device_configuration(cpu)
    if current is not None and len(current) == num:
        return
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(num)])
    except RuntimeError as err:
        raise ValueError(f"cannot split the CPU into {num} logical devices: TensorFlow's "
                         f"devices are already initialised in this process ({err})") from None
    logging.info("CPU split into %d logical devices", num)


def _num_workers(strategy: tf.distribute.Strategy) -> int:
    """Processes in the strategy's cluster (chief and workers); 0 without a cluster."""
    resolver = strategy.cluster_resolver
    if resolver is None:
        return 0
    spec = resolver.cluster_spec()
    return sum(spec.num_tasks(job) for job in ("chief", "worker") if job in spec.jobs)


def _gathered(strategy: tf.distribute.Strategy, value: int) -> tf.Tensor:
    """Every worker's ``value`` (one all-gather; every worker calls); ``[value]`` alone."""
    if _num_workers(strategy) > 1:
        return strategy.gather(strategy.run(lambda: tf.constant([value], tf.int64)), axis=0)
    return tf.constant([value], tf.int64)


def same_on_all_workers(strategy: tf.distribute.Strategy, value: int) -> bool:
    """True when every worker passed the same ``value`` (every worker calls)."""
    return bool(tf.reduce_all(_gathered(strategy, value) == value))


def min_over_workers(strategy: tf.distribute.Strategy, value: int) -> int:
    """The smallest ``value`` any worker passed (every worker calls)."""
    return int(tf.reduce_min(_gathered(strategy, value)))


def weights_digest(variables) -> str:
    """SHA-256 of the variables' values, in order: replicas and workers in sync agree on it."""
    digest = hashlib.sha256()
    for variable in variables:
        digest.update(np.ascontiguousarray(variable.numpy()).tobytes())
    return digest.hexdigest()
