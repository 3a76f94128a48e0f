"""Group photos made from real face crops pasted at known places: what face detectors are
measured on (``benchmarks/detectors.py``, ``tests/test_detect.py``).

Each pasted crop is a whole training image (a FairFace crop: the face with a quarter of its
size around it), so a detector's crop of a found face can be compared with the crop the model
was trained on: ``crop_overlap``.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

BACKGROUNDS = ("flat", "noise", "gradient", "clutter")
MARGIN = 20  # pixels between pasted faces, and around them


def background(kind: str, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """A uint8 ``(height, width, 3)`` background: flat grey, noise, a colour gradient, or
    clutter (blurred rectangles of random colours, a room's edges and surfaces)."""
    if kind == "flat":
        return np.full((height, width, 3), rng.integers(60, 200), np.uint8)
    if kind == "noise":
        return rng.integers(60, 200, (height, width, 3)).astype(np.uint8)
    if kind == "gradient":
        ramp = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :, None]
        low, high = rng.uniform(20, 235, 3), rng.uniform(20, 235, 3)
        return np.broadcast_to(low + (high - low) * ramp, (height, width, 3)).astype(np.uint8)
    if kind == "clutter":
        canvas = np.full((height, width, 3), rng.integers(80, 180, 3), np.float32)
        for _ in range(12):
            top, left = rng.integers(0, height), rng.integers(0, width)
            canvas[top:top + rng.integers(20, height), left:left + rng.integers(20, width)] = \
                rng.uniform(0, 255, 3)
        blurred = tf.image.resize(tf.image.resize(canvas[None], [height // 8, width // 8]),
                                  [height, width])
        return np.clip(np.round(blurred[0].numpy()), 0, 255).astype(np.uint8)
    raise ValueError(f"unknown background {kind!r}; known: {', '.join(BACKGROUNDS)}")


def make_group_photo(faces, side: int, kind: str, rng: np.random.Generator):
    """Pastes ``faces`` (uint8 crops) in a row, each resized to ``side`` px, on a background.

    Returns:
        (uint8 photo, ``[(left, top, side)]`` of each pasted face).
    """
    height = side + 2 * MARGIN + 20
    width = len(faces) * (side + MARGIN) + MARGIN + 20
    canvas = background(kind, height, width, rng)
    places = []
    for i, face in enumerate(faces):
        pixels = tf.image.resize(face, [side, side], antialias=True).numpy()
        left = MARGIN + i * (side + MARGIN) + int(rng.integers(0, 20))
        top = MARGIN + int(rng.integers(0, 20))
        canvas[top:top + side, left:left + side] = np.clip(np.round(pixels), 0, 255)
        places.append((left, top, side))
    return canvas, places


def match(boxes, places) -> tuple[list, int]:
    """Pairs each pasted face with the first detection centred inside it.

    Returns:
        (``[(place, box)]`` for the faces found, the number of detections that are no pasted
        face: false detections).
    """
    pairs, used = [], set()
    for left, top, side in places:
        for i, (x, y, w, h) in enumerate(boxes):
            inside = left <= x + w / 2 <= left + side and top <= y + h / 2 <= top + side
            if i not in used and inside:
                pairs.append(((left, top, side), (x, y, w, h)))
                used.add(i)
                break
    return pairs, len(boxes) - len(used)


def crop_overlap(place, crop) -> float:
    """Intersection over union of a pasted face's square and a detector's crop ``(left, top,
    right, bottom)``: 1.0 when the crop is exactly the training image."""
    left, top, side = place
    x0, y0, x1, y1 = crop
    inter = (max(0, min(left + side, x1) - max(left, x0))
             * max(0, min(top + side, y1) - max(top, y0)))
    union = side * side + (x1 - x0) * (y1 - y0) - inter
    return inter / union if union else 0.0


__all__ = ["BACKGROUNDS", "background", "crop_overlap", "make_group_photo", "match"]
