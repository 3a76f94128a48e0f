"""tf.distribute strategy selection: TensorFlow's own engine, configured by TF_CONFIG."""

from __future__ import annotations

import json
import os

import tensorflow as tf
from absl import logging

STRATEGIES = ("auto", "default", "mirrored", "multi_worker")


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
    logging.info("distribution: %s with %d replica(s)", kind, strategy.num_replicas_in_sync)
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
