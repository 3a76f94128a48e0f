"""Flags of bin/train, and of the programs that add to them (bin/cross_validate, bin/sweep)."""

from __future__ import annotations

import dataclasses

from absl import flags

from tfgender.choices import (
    CONV_NORMS,
    JIT_COMPILE,
    KERNEL_INITS,
    OPTIMIZERS,
    PRECISIONS,
    SCHEDULES,
    STRATEGIES,
)
from tfgender.config import TrainConfig
from tfgender.flags.common import FLAGS, config_from_flags, ints


# --------------------------------------------------------------------------- training
def define_train_flags() -> None:
    flags.DEFINE_string("data_dir", None, "A converted dataset (directory with manifest.json).")
    flags.DEFINE_string("workdir", None, "Run directory: checkpoints, TensorBoard, summary.")
    flags.DEFINE_string("model", "mobilenet_v2",
                        "Architecture: levi_hassner|resnet50|mobilenet_v2.")
    flags.DEFINE_integer("image_size", 0, "Model input side; 0: the architecture's default.",
                         lower_bound=0)
    flags.DEFINE_integer("cache_image_size", 0,
                         "Side of the decoded, cached images the augmentation crops from; "
                         "0: the model input size (Levi & Hassner cropped 227 from 256).",
                         lower_bound=0)
    flags.DEFINE_string("train_split", "train", "Split to train on (ignored with --train_folds).")
    flags.DEFINE_string("eval_split", "val", "Split to evaluate on (ignored with --eval_folds).")
    flags.DEFINE_list("train_folds", [], "Adience folds to train on, e.g. 0,1,2,3.")
    flags.DEFINE_list("eval_folds", [], "Adience folds to evaluate on, e.g. 4.")
    flags.DEFINE_integer("batch_size", 64, "Global batch size.", lower_bound=1)
    flags.DEFINE_integer("epochs", 10, "Epochs to train.", lower_bound=1)
    flags.DEFINE_integer("steps_per_epoch", 0, "Steps per epoch; 0: one pass over the data.",
                         lower_bound=0)
    flags.DEFINE_float("train_minutes", 0.0,
                       "A budget of minutes (training and evaluation): after epoch 2 the run "
                       "times its epochs, plans the whole epochs that fit (at most --epochs) "
                       "and ends its schedule there; a checkpoint keeps the plan. 0: train "
                       "--epochs.", lower_bound=0.0)
    flags.DEFINE_float("learning_rate", 1e-3, "Peak learning rate.", lower_bound=0.0)
    flags.DEFINE_enum("optimizer", "adam", list(OPTIMIZERS), "Optimizer.")
    flags.DEFINE_float("momentum", 0.9, "SGD momentum.")
    flags.DEFINE_enum("schedule", "constant", list(SCHEDULES),
                      "Learning-rate schedule after warm-up.")
    flags.DEFINE_float("warmup_epochs", 0.0, "Linear warm-up length in epochs.", lower_bound=0.0)
    flags.DEFINE_float("decay_epochs", 10.0, "Step/exponential decay period in epochs.")
    flags.DEFINE_float("decay_rate", 0.1, "Step/exponential decay factor per period.")
    flags.DEFINE_float("weight_decay", 0.0, "L2 penalty on dense kernels, as in the study.")
    flags.DEFINE_float("decoupled_weight_decay", 0.0, "AdamW/SGD decoupled weight decay.")
    flags.DEFINE_list("head_units", ["1024", "512", "256"], "Dense head widths.")
    flags.DEFINE_list("dropout", ["0.5", "0.5", "0.5"], "Dropout after each dense layer.")
    flags.DEFINE_string("activation", "relu", "Dense head activation.")
    flags.DEFINE_float("width_multiplier", 1.0,
                       "Width multiplier (Keras' alpha): MobileNetV2's (0.35-1.4 scale every "
                       "layer's channels) and Levi & Hassner's (scales its three convolutions' "
                       "filters); ResNet50 ignores it.", lower_bound=0.1)
    flags.DEFINE_enum("kernel_init", "paper", list(KERNEL_INITS),
                      "Levi & Hassner's kernel initialiser: paper (Gaussian, stddev 0.01) or "
                      "he (he_normal); other architectures ignore it.")
    flags.DEFINE_enum("conv_norm", "lrn", list(CONV_NORMS),
                      "Levi & Hassner's normalisation: lrn (the paper's, after pool1 and "
                      "pool2) or batch (batch normalisation before every conv's ReLU); other "
                      "architectures ignore it.")
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
    flags.DEFINE_list("contrast", [], "Contrast factor range, e.g. 0.7,1.3 (each image "
                      "blended with its mean grey); empty: off.")
    flags.DEFINE_list("saturation", [], "Saturation factor range, e.g. 0.7,1.3 (each pixel "
                      "blended with its grey value; 0 is greyscale); empty: off.")
    flags.DEFINE_float("hue", 0.0, "Random hue rotation in +- this fraction of the colour "
                       "circle (at most 0.5); 0: off.", lower_bound=0.0, upper_bound=0.5)
    flags.DEFINE_list("crop_scale", [],
                      "Scale-jitter crop side range as fractions, e.g. 0.8,1.0; empty: a "
                      "random crop of the model size from the cached image.")
    flags.DEFINE_enum("augment_interpolation", "auto", ["auto", "bilinear", "nearest"],
                      "Resampling of the augmentation: auto is nearest when the image keeps its "
                      "scale (flip, crop, rotation) and bilinear when crop_scale resizes it.")
    flags.DEFINE_float("random_erasing", 0.0,
                       "Random erasing: the chance that a training image gets one rectangle "
                       "filled with the mean colour (0.25-0.5 is usual); 0: off.",
                       lower_bound=0.0, upper_bound=1.0)
    flags.DEFINE_list("erasing_scale", ["0.02", "0.33"],
                      "Random erasing's rectangle area range as fractions of the image.")
    flags.DEFINE_float("ema_momentum", 0.0,
                       "Evaluate, keep and export a moving average of the weights (Keras' "
                       "use_ema) with this momentum, e.g. 0.999 (about the last 1,000 steps); "
                       "0: the raw weights.", lower_bound=0.0, upper_bound=0.99999)
    flags.DEFINE_float("label_smoothing", 0.0,
                       "Label smoothing of the training loss: targets 0/1 become e/2 and "
                       "1 - e/2; 0: off.", lower_bound=0.0, upper_bound=1.0)
    flags.DEFINE_float("mixup_alpha", 0.0,
                       "Mixup: blend each training image with another, weight ~ "
                       "Beta(alpha, alpha) (0.2 is usual); 0: off.", lower_bound=0.0)
    flags.DEFINE_float("bn_momentum", 0.0,
                       "BatchNormalization moving-average momentum; 0 keeps the architecture's "
                       "(MobileNetV2 0.999 is too slow for short from-scratch runs: use 0.9).")
    flags.DEFINE_string("cache", "auto", "Decoded-image cache: auto|memory|none|disk:PATH.")
    flags.DEFINE_integer("shuffle_buffer", 10_000, "Shuffle buffer (records).")
    flags.DEFINE_enum("precision", "auto",
                      ["auto", *PRECISIONS],
                      "Compute precision; auto chooses per device from measurement.")
    flags.DEFINE_enum("jit_compile", "auto", list(JIT_COMPILE),
                      "XLA-compile the model step; auto chooses per device.")
    flags.DEFINE_integer("steps_per_execution", 1, "Train steps per tf.function call.",
                         lower_bound=1)
    flags.DEFINE_integer("seed", 0, "Global seed (initialisation, data order, augmentation).")
    flags.DEFINE_bool("deterministic", False,
                      "Deterministic ops and data order: a resumed run ends bit-identical.")
    flags.DEFINE_enum("distribution", "auto", list(STRATEGIES),
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
    flags.DEFINE_integer("keep_checkpoints", 3, "Checkpoints kept.", lower_bound=1)
    flags.DEFINE_integer("max_non_finite_steps", 20,
                         "Stop with an error after this many consecutive non-finite losses.")
    flags.DEFINE_list("profile_steps", [], "START,END: capture a profiler trace of these steps.")
    flags.DEFINE_integer("summary_images", 4, "Augmented input images written to TensorBoard.")
    flags.DEFINE_bool("progress", True, "Show a progress bar per epoch.")
    flags.mark_flags_as_required(["data_dir", "workdir"])


def train_config_from_flags() -> TrainConfig:
    return config_from_flags(TrainConfig)


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
    return {"folds": ints(FLAGS.folds) or None, "oversample": FLAGS.oversample,
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
