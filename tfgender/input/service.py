"""tf.data service servers: a dispatcher and the workers that read and decode for trainers."""

from __future__ import annotations

import socket
import time

import tensorflow as tf
from absl import logging

GRPC_PREFIX = "grpc://"
# How often a serving process checks for newly registered workers or tasks to report.
REPORT_SECONDS = 0.5
service = tf.data.experimental.service


def _strip_protocol(address: str) -> str:
    return address[len(GRPC_PREFIX):] if address.startswith(GRPC_PREFIX) else address


def start_dispatcher(port: int = 0, journal_dir: str = "") -> service.DispatchServer:
    """Starts a tf.data service dispatcher in this process.

    Args:
        port: port to listen on; 0 picks a free one (see the server's ``target``).
        journal_dir: if set, the dispatcher journals its state there (fault-tolerant mode), so
            a restarted dispatcher keeps its registered workers and jobs.

    Returns:
        The running ``DispatchServer``; trainers use ``--data_service_address=<its target>``.
    """
    config = service.DispatcherConfig(
        port=port, work_dir=journal_dir or None, fault_tolerant_mode=bool(journal_dir))
    return service.DispatchServer(config)


def start_worker(dispatcher_address: str, port: int = 0,
                 worker_address: str = "") -> service.WorkerServer:
    """Starts a tf.data service worker in this process and registers it with a dispatcher.

    Args:
        dispatcher_address: ``host:port`` of the dispatcher (a ``grpc://`` prefix is accepted).
        port: port to listen on; 0 picks a free one.
        worker_address: the address the dispatcher hands to trainers for this worker: ``host``
            or ``host:port``; empty: this machine's host name. TensorFlow's own default,
            ``localhost``, only works when every trainer runs on this machine.

    Returns:
        The running ``WorkerServer``.

    Raises:
        ValueError: no dispatcher address.
    """
    if not dispatcher_address:
        raise ValueError("a worker needs the dispatcher's address (--dispatcher_address)")
    if not worker_address:
        worker_address = socket.gethostname()
    if ":" not in worker_address:
        # TensorFlow substitutes the port the worker actually bound.
        worker_address += ":%port%"
    config = service.WorkerConfig(
        dispatcher_address=_strip_protocol(dispatcher_address), worker_address=worker_address,
        port=port)
    return service.WorkerServer(config)


def serve(config) -> None:
    """Starts the server ``config`` asks for and serves until the process is stopped.

    Args:
        config: a ``config.DataServiceConfig``.

    Raises:
        ValueError: an unknown role, or a worker without a dispatcher address.
    """
    if config.role == "dispatcher":
        server = start_dispatcher(config.port, config.journal_dir)
        # ``target`` names localhost; trainers elsewhere use this machine's name instead.
        port = server.target.rsplit(":", 1)[1]
        print(f"tf.data service dispatcher serving on port {port}: train with "
              f"--data_service_address=grpc://{socket.gethostname()}:{port}", flush=True)
    elif config.role == "worker":
        server = start_worker(config.dispatcher_address, config.port, config.worker_address)
        port = server._address.rsplit(":", 1)[1]  # (the bound port; no public API)
        print(f"tf.data service worker serving on port {port} for dispatcher "
              f"{config.dispatcher_address}", flush=True)
    else:
        raise ValueError(f"unknown role {config.role!r}; expected dispatcher or worker")
    logging.info("%s serving until stopped", config.role)
    try:
        _report_until_stopped(server, config.role)
    except KeyboardInterrupt:
        logging.info("interrupted: stopping the %s", config.role)


def _report_until_stopped(server, role: str) -> None:
    """Blocks like ``server.join()``, printing each change of registered workers or tasks.

    The lines tell an operator that the cluster is wired up (workers reached the dispatcher)
    and in use (a worker received a trainer's task).
    """
    # No public accessors: the servers' own test hooks.
    count = server._num_workers if role == "dispatcher" else server._num_tasks
    what = "worker(s) registered" if role == "dispatcher" else "task(s) running"
    last = 0
    while True:
        now = count()
        if now != last:
            print(f"{role}: {now} {what}", flush=True)
            last = now
        time.sleep(REPORT_SECONDS)
