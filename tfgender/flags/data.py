"""Flags of bin/make_sample_data and bin/convert_tfrecords."""

from __future__ import annotations

from absl import flags

from tfgender.config import ConvertConfig, SampleDataConfig
from tfgender.data.sample import FORMATS as SAMPLE_FORMATS
from tfgender.flags.common import SOURCES, config_from_flags


# --------------------------------------------------------------------------- sample data
def define_sample_data_flags() -> None:
    flags.DEFINE_enum("format", "utkface", SAMPLE_FORMATS, "On-disk format of the dataset to draw.")
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
    flags.DEFINE_integer("num_workers", 1,
                         "--format=celeba: processes that draw images in parallel; the tree "
                         "is byte-identical to one process's. Other formats draw in one.",
                         lower_bound=1)
    flags.mark_flag_as_required("out_dir")


def sample_data_config_from_flags() -> SampleDataConfig:
    return config_from_flags(SampleDataConfig)


# --------------------------------------------------------------------------- conversion
def define_convert_flags() -> None:
    flags.DEFINE_enum("source", None, SOURCES, "Dataset format of --data_dir.")
    flags.DEFINE_string("data_dir", None, "Root of the dataset (label files and images).")
    flags.DEFINE_string("out_dir", None, "Directory for the shards and manifest.json.")
    flags.DEFINE_integer("image_size", 0,
                         "Resize the shorter side to this many pixels once, at conversion "
                         "(e.g. 256 as Levi & Hassner); 0 keeps the original JPEG bytes.",
                         lower_bound=0)
    flags.DEFINE_integer("jpeg_quality", 95, "JPEG quality when images are re-encoded.")
    flags.DEFINE_float("shard_size_mb", 100.0, "Target shard size in MB.")
    flags.DEFINE_integer("num_shards", 0, "Shards per split/fold; overrides --shard_size_mb.",
                         lower_bound=0)
    flags.DEFINE_integer("num_workers", 1, "Parallel worker processes; output is identical.",
                         lower_bound=1)
    flags.DEFINE_float("val_fraction", 0.1,
                       "Sources without a split: fraction of groups for validation.",
                       lower_bound=0.0, upper_bound=1.0)
    flags.DEFINE_float("test_fraction", 0.2,
                       "Sources without a split: fraction of groups for test.",
                       lower_bound=0.0, upper_bound=1.0)
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
    flags.DEFINE_integer("min_image_side", 16,
                         "Images whose shorter side is below this many pixels are skipped "
                         "with a reason (too small to hold a face).", lower_bound=1)
    flags.DEFINE_integer("max_image_pixels", 40_000_000,
                         "Images whose header claims more pixels are rejected before decoding.")
    flags.DEFINE_float("max_skipped_fraction", 0.05,
                       "Exit non-zero when more than this fraction of rows was skipped.")
    flags.DEFINE_bool("overwrite", False, "Allow writing into a non-empty --out_dir.")
    flags.DEFINE_bool("progress", True, "Show a progress bar on stderr.")
    for name in ("source", "data_dir", "out_dir"):
        flags.mark_flag_as_required(name)


def convert_config_from_flags() -> ConvertConfig:
    return config_from_flags(ConvertConfig)
