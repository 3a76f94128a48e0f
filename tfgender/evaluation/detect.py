"""Faces in ordinary photos: found by a detector that ships inside a registry package.

``bin/predict --detect_faces`` finds the faces of each photo with one of OpenCV's bundled Haar
cascades (``opencv-python-headless``; no model download), cuts each out with the margin the
training faces had around them (FairFace's crops hold the face with a quarter of its size on
every side), resizes it by the one rule (``decode.square_and_resize``) and classifies it.
"""

from __future__ import annotations

import os

import numpy as np

# name -> OpenCV cascade file; the default was chosen by measuring on the tests' photos.
DETECTORS = {"haar_default": "haarcascade_frontalface_default.xml",
             "haar_alt2": "haarcascade_frontalface_alt2.xml"}
DEFAULT_DETECTOR = "haar_default"
# Measured on 24 real FairFace faces pasted into 8 photos (BUILD_NOTES.md): scale step 1.05 and
# 3 neighbours found 17 with no false detection (the default cascade), against 14-16 otherwise.
SCALE_FACTOR, MIN_NEIGHBORS = 1.05, 3
MARGIN = 0.25  # of the detected box's side, added on every side (FairFace's padding)


class DetectorUnavailableError(RuntimeError):
    """OpenCV is not installed (``pip install opencv-python-headless``)."""


def _cascade(name: str):
    try:
        import cv2  # noqa: PLC0415  (optional until a photo is searched)
    except ImportError as err:
        raise DetectorUnavailableError(
            "--detect_faces needs OpenCV: pip install 'opencv-python-headless<5'") from err
    if name not in DETECTORS:
        raise ValueError(f"unknown detector {name!r}; known: {', '.join(DETECTORS)}")
    path = os.path.join(cv2.data.haarcascades, DETECTORS[name])
    cascade = cv2.CascadeClassifier(path)
    if cascade.empty():
        raise DetectorUnavailableError(f"OpenCV has no {DETECTORS[name]} (looked in {path})")
    return cv2, cascade


def detect_faces(image: np.ndarray, detector: str = DEFAULT_DETECTOR,
                 min_size: int = 24) -> list[tuple[int, int, int, int]]:
    """Boxes ``(x, y, width, height)`` of the faces in an RGB uint8 image, left to right."""
    cv2, cascade = _cascade(detector)
    gray = cv2.equalizeHist(cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY))
    boxes = cascade.detectMultiScale(gray, scaleFactor=SCALE_FACTOR, minNeighbors=MIN_NEIGHBORS,
                                     minSize=(min_size, min_size))
    return sorted((int(x), int(y), int(w), int(h)) for x, y, w, h in boxes)


def face_crop(image: np.ndarray, box, margin: float = MARGIN) -> np.ndarray:
    """The square around a detected face with ``margin`` of its side on every side, clipped
    to the image."""
    x, y, w, h = box
    side = int(round(max(w, h) * (1 + 2 * margin)))
    cx, cy = x + w / 2, y + h / 2
    left, top = int(round(cx - side / 2)), int(round(cy - side / 2))
    left, top = max(0, left), max(0, top)
    right = min(image.shape[1], left + side)
    bottom = min(image.shape[0], top + side)
    return image[top:bottom, left:right]


def annotate(image: np.ndarray, faces: list[dict], path: str) -> None:
    """Writes a JPEG copy of ``image`` with each face's box and label drawn on it."""
    cv2, _ = _cascade(DEFAULT_DETECTOR)
    canvas = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2BGR)
    for face in faces:
        x, y, w, h = face["x"], face["y"], face["width"], face["height"]
        colour = (255, 128, 0) if face["gender"] == "male" else (60, 20, 220)
        cv2.rectangle(canvas, (x, y), (x + w, y + h), colour, 2)
        label = f"{face['gender']} {face['probability_male']:.2f}"
        cv2.putText(canvas, label, (x, max(12, y - 6)), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                    colour, 1, cv2.LINE_AA)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if not cv2.imwrite(path, canvas):
        raise OSError(f"cannot write {path}")


__all__ = ["DEFAULT_DETECTOR", "DETECTORS", "DetectorUnavailableError", "MARGIN", "annotate",
           "detect_faces", "face_crop"]
