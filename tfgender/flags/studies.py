"""Flags of bin/epoch_time_study and bin/data_service."""

from __future__ import annotations

from absl import flags

from tfgender.choices import DATA_SERVICE_ROLES, JIT_COMPILE, PRECISIONS
from tfgender.config import DataServiceConfig, EpochStudyConfig
from tfgender.flags.common import config_from_flags


# --------------------------------------------------------------------------- epoch-time study
def define_epoch_study_flags() -> None:
    flags.DEFINE_string("output_dir", "", "Where epoch_time_study.md/.json (or traces) go.")
    flags.DEFINE_list("models", ["levi_hassner", "resnet50", "mobilenet_v2"], "Architectures.")
    flags.DEFINE_integer("steps", 20, "Timed training steps per architecture and device.")
    flags.DEFINE_integer("warmup_steps", 3, "Untimed steps first (tracing, compilation).")
    flags.DEFINE_integer("batch_size", 64, "Images per step.", lower_bound=1)
    flags.DEFINE_integer("image_size", 0, "Model input side; 0: each architecture's default.",
                         lower_bound=0)
    flags.DEFINE_enum("precision", "auto",
                      ["auto", *PRECISIONS],
                      "Compute precision; auto: bin/train's per-device choice.")
    flags.DEFINE_enum("jit_compile", "auto", list(JIT_COMPILE), "XLA-compile the step.")
    flags.DEFINE_list("devices", [], "Only devices whose name contains one of these (CPU, GPU:0).")
    flags.DEFINE_bool("full_epoch", False, "Also time one real epoch to check the extrapolation.")
    flags.DEFINE_string("data_dir", "", "Feed converted TFRecords instead of in-memory batches.")
    flags.DEFINE_integer("matmul_size", 4096, "Side of the matrices of the matmul peak.")


def epoch_study_config_from_flags() -> EpochStudyConfig:
    return config_from_flags(EpochStudyConfig)


# --------------------------------------------------------------------------- tf.data service


def define_data_service_flags() -> None:
    flags.DEFINE_enum("role", None, DATA_SERVICE_ROLES,
                      "dispatcher: the one coordinator; worker: reads and decodes for it.")
    flags.DEFINE_integer("port", 0, "Port to serve on; 0: any free port (printed).")
    flags.DEFINE_string("dispatcher_address", "",
                        "Workers: the dispatcher's host:port (a grpc:// prefix is accepted).")
    flags.DEFINE_string("worker_address", "",
                        "Workers: the host (or host:port) trainers use to reach this worker; "
                        "default: this machine's host name and --port.")
    flags.DEFINE_string("journal_dir", "",
                        "Dispatcher: journal its state here (fault-tolerant mode), so a "
                        "restarted dispatcher keeps its workers and jobs.")
    flags.mark_flag_as_required("role")


def data_service_config_from_flags() -> DataServiceConfig:
    return config_from_flags(DataServiceConfig)
