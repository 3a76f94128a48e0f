"""TFLite models: running an exported file, and the model that ships inside the package.

An exported TFLite file (``export.export_tflite``) takes uint8 images already decoded to its
input side by the one rule (``decode.decode_image``) and holds the crop and normalisation; it
returns the male probability. ``bundled/`` beside this module holds the model tfgender ships
(``BUNDLED_MODEL``) and its card (``BUNDLED_CARD``: how it was made, its figures), used by
``bin/predict`` and ``bin/evaluate`` when they are given no run.
"""

from __future__ import annotations

import json
import os

import numpy as np
import tensorflow as tf

BUNDLED_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bundled")
BUNDLED_NAME = "fairface_mobilenet_v2"
BUNDLED_MODEL = os.path.join(BUNDLED_DIR, BUNDLED_NAME + ".tflite")
BUNDLED_CARD = os.path.join(BUNDLED_DIR, BUNDLED_NAME + ".json")
# Probabilities are clipped this far from 0 and 1 before they become logits: an int8 model's
# output can be exactly 0 or 1.
_EPSILON = 1e-7


class TFLiteModel:
    """Runs an exported TFLite file: uint8 images at its input size -> male probabilities."""

    def __init__(self, path: str):
        self.interpreter = tf.lite.Interpreter(model_path=path)
        self._input = self.interpreter.get_input_details()[0]
        self.image_size = int(self._input["shape"][1])
        self._batch = None

    def __call__(self, images: np.ndarray) -> np.ndarray:
        images = np.asarray(images, np.uint8)
        if self._batch != len(images):
            self.interpreter.resize_tensor_input(self._input["index"], images.shape)
            self.interpreter.allocate_tensors()
            self._batch = len(images)
        self.interpreter.set_tensor(self._input["index"], images)
        self.interpreter.invoke()
        output = self.interpreter.get_output_details()[0]
        return self.interpreter.get_tensor(output["index"]).reshape(-1)


def make_logits_forward(model: TFLiteModel):
    """``forward(images) -> logits`` as ``predict.make_forward`` returns, for a TFLite file:
    uint8 ``(B, S, S, 3)`` to a float32 ``(B, 1)`` tensor (the log-odds of its probability)."""

    def forward(images):
        probability = np.clip(model(np.asarray(images)).astype(np.float64), _EPSILON,
                              1 - _EPSILON)
        return tf.constant((np.log(probability) - np.log1p(-probability))[:, None], tf.float32)

    return forward


def read_card(path: str = BUNDLED_CARD) -> dict:
    """The bundled model's card (``{}`` when there is none)."""
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return json.load(f)


def bundled_model() -> str:
    """The path of the model the package ships, or ``""`` when this copy has none."""
    return BUNDLED_MODEL if os.path.exists(BUNDLED_MODEL) else ""


def describe_bundled() -> str:
    """One line on the model the package ships: what it is and where (``""``: none)."""
    card = read_card()
    if not bundled_model():
        return ""
    if not card:
        return f"the model tfgender ships, {BUNDLED_MODEL}"
    accuracy = card["measured"][card["format"]]["metrics"]["accuracy"]
    return (f"the model tfgender ships, {card['model']} ({card['format']}, "
            f"{accuracy:.1%} on FairFace's {card['split']} split), {BUNDLED_MODEL}")


__all__ = ["BUNDLED_CARD", "BUNDLED_DIR", "BUNDLED_MODEL", "TFLiteModel", "bundled_model",
           "describe_bundled", "make_logits_forward", "read_card"]
