"""The study's loader (Keras ImageDataGenerator on JPEG files), kept as a baseline to measure."""

from __future__ import annotations

import os

import pandas as pd
import tensorflow as tf

# The study's augmentation. Rotation: its 90 degrees (see augment.py for why the toolkit uses
# far less). Brightness: the study's source is not part of this repository, so the range is
# the commonly used symmetric (0.5, 1.5) (PIL brightness factors: 0.5 halves every pixel).
STUDY_ROTATION_RANGE = 90
STUDY_BRIGHTNESS_RANGE = (0.5, 1.5)
CLASS_MODES = ("binary", "raw")


def create_idg_iterator(frame: pd.DataFrame, data_dir: str, *, batch_size: int = 64,
                        image_size: int = 224, augment: bool = True,
                        rotation_range: float = STUDY_ROTATION_RANGE,
                        brightness_range: tuple[float, float] | None = STUDY_BRIGHTNESS_RANGE,
                        shuffle: bool = True, seed: int = 0, class_mode: str = "binary"):
    """Builds the study's ``ImageDataGenerator.flow_from_dataframe`` iterator.

    Each batch is loaded with PIL, resized with the legacy default "nearest" interpolation
    (what the study got), augmented in numpy/scipy one image at a time and rescaled to [0, 1].
    Rotation needs scipy (``scipy.ndimage``), brightness needs PIL.

    Args:
        frame: a schema frame (``readers.read_source(...).frame``): ``path`` relative to
            ``data_dir`` and ``label`` (1 = male, 0 = female).
        data_dir: the dataset root the paths are relative to.
        batch_size: images per batch.
        image_size: side of the square output images.
        augment: horizontal flip, rotation and brightness as the study did; False rescales only.
        rotation_range: maximum rotation in degrees.
        brightness_range: (low, high) PIL brightness factors, or None.
        shuffle: shuffle the rows each epoch.
        seed: the shuffle and augmentation seed.
        class_mode: "binary" (labels as the strings "0"/"1", mapped to 0.0/1.0) or "raw".

    Returns:
        A ``DataFrameIterator`` (endless) of (float32 (B, S, S, 3) in [0, 1], labels (B,)).

    Raises:
        ValueError: an unknown ``class_mode``.
    """
    if class_mode not in CLASS_MODES:
        raise ValueError(f"unknown class_mode {class_mode!r}; expected one of {CLASS_MODES}")
    options = {"rescale": 1.0 / 255}
    if augment:
        options.update(horizontal_flip=True, rotation_range=rotation_range,
                       brightness_range=brightness_range)
    generator = tf.keras.preprocessing.image.ImageDataGenerator(**options)
    frame = frame[["path", "label"]].copy()
    if class_mode == "binary":
        # flow_from_dataframe wants class names as strings; fixing the class list keeps
        # "0" -> 0.0 and "1" -> 1.0 even when a batch (or the frame) holds one class only.
        frame["label"] = frame["label"].astype(int).astype(str)
    return generator.flow_from_dataframe(
        frame, directory=os.fspath(data_dir), x_col="path", y_col="label",
        target_size=(image_size, image_size), class_mode=class_mode,
        classes=["0", "1"] if class_mode == "binary" else None, batch_size=batch_size,
        shuffle=shuffle, seed=seed)
