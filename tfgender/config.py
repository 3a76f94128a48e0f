"""Every program's configuration: frozen dataclasses, one per program, with their defaults.

The library takes these and nothing else; ``tfgender.flags`` turns command lines into them
(one flag per field, same name, same default: ``tests/test_configs.py`` checks that), so a
library module or a study builds a config without importing absl or the CLI layer.
"""

from __future__ import annotations

import dataclasses


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
    num_workers: int = 1  # CelebA: parallel drawing processes (the tree is the same)


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
    min_image_side: int = 16
    max_skipped_fraction: float = 0.05
    overwrite: bool = False
    progress: bool = True


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
    worst_faces: int = 6  # per slice value, in worst_faces_<slice>.png; 0: none


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
    detect_faces: bool = False
    detector: str = "haar_default"  # tfgender.evaluation.detect.DETECTORS
    annotate: str = ""  # a directory for annotated copies (implies detect_faces)


@dataclasses.dataclass(frozen=True)
class ExportConfig:
    """What ``export.export`` writes; see ``define_export_flags`` for meanings."""

    workdir: str
    output: str
    format: str = "saved_model"
    checkpoint: str = "best"
    data_dir: str = ""  # tflite_int8: the converted dataset whose records calibrate
    calibration_images: int = 200


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


@dataclasses.dataclass(frozen=True)
class DataServiceConfig:
    """What ``data_service.serve`` starts; see ``define_data_service_flags`` for meanings."""

    role: str
    port: int = 0  # 0: any free port (printed at start)
    dispatcher_address: str = ""  # workers only: host:port of the dispatcher
    worker_address: str = ""  # workers only: host[:port] clients connect to; "": this host's name
    journal_dir: str = ""  # dispatcher only: journal state here to survive a restart


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
    train_minutes: float = 0.0  # 0: no budget; else the whole epochs that fit it (<= epochs)
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
    width_multiplier: float = 1.0
    kernel_init: str = "paper"
    conv_norm: str = "lrn"
    weights: str = ""
    freeze_base: bool = False
    freeze_base_epochs: int = 0
    fine_tune_learning_rate: float = 0.0
    init_checkpoint: str = ""
    flip: bool = True
    max_rotation: float = 15.0
    brightness: tuple[float, ...] = (0.8, 1.2)
    contrast: tuple[float, ...] = ()
    saturation: tuple[float, ...] = ()
    hue: float = 0.0
    crop_scale: tuple[float, ...] = ()
    augment_interpolation: str = "auto"
    random_erasing: float = 0.0  # probability; 0: off
    erasing_scale: tuple[float, ...] = (0.02, 0.33)
    label_smoothing: float = 0.0
    mixup_alpha: float = 0.0
    ema_momentum: float = 0.0  # 0: no moving average of the weights
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
