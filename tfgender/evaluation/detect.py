"""Faces in ordinary photos: found by a detector that ships inside a registry package.

``bin/predict --detect_faces`` finds the faces of each photo, cuts each out as the training
images frame a face (FairFace's crops: the face level and centred with a quarter of its size
on every side), resizes it by the one rule (``decode.square_and_resize``) and classifies it.

Detectors, none downloading anything: ``mtcnn`` (the ``mtcnn`` package: a TensorFlow cascade
whose weights are in its wheel; boxes and five landmarks) and OpenCV's bundled Haar cascades
(``opencv-python-headless``; boxes only). With landmarks the crop is turned so that the eyes
are level, as FairFace's crops were. docs/benchmarks.md has the measurement that chose the default
and each detector's framing (``FRAMING``).
"""

from __future__ import annotations

import functools
import math
import os

import numpy as np

# name -> OpenCV cascade file ("" for those that are no cascade). mtcnn_haar is mtcnn, plus
# the faces haar_alt2 finds where mtcnn found none (profiles, faces that fill the photo).
DETECTORS = {"mtcnn_haar": "", "mtcnn": "", "haar_default": "haarcascade_frontalface_default.xml",
             "haar_alt2": "haarcascade_frontalface_alt2.xml"}
DEFAULT_DETECTOR = "mtcnn_haar"  # the best recall at no false detection (docs/benchmarks.md)
# The Haar cascades' settings, measured on 24 real FairFace faces pasted into 8 photos
# (docs/log.md, session 5): scale step 1.05 and 3 neighbours.
SCALE_FACTOR, MIN_NEIGHBORS = 1.05, 3
# MTCNN's faces kept: its own final-stage confidence.
MIN_CONFIDENCE = 0.9
# Each detector's box -> the training crop: the crop's side is ``scale`` times the box's
# longer side and its centre sits ``shift`` of that side below the box's centre. Fitted on
# pasted FairFace crops so that the crop is the training image (benchmarks/detectors.py
# --fit: the medians over 134, 102 and 104 found faces).
FRAMING = {"mtcnn": (0.97, 0.066), "haar_default": (1.07, 0.078), "haar_alt2": (1.08, 0.080)}
MARGIN = 0.25  # FairFace's padding: a quarter of the face's side on every side (the default)


class DetectorUnavailableError(RuntimeError):
    """The detector's package is not installed; says which to install."""


def _cv2():
    try:
        import cv2  # (optional until a photo is searched)
    except ImportError as err:
        raise DetectorUnavailableError(
            "--detect_faces needs OpenCV: pip install 'opencv-python-headless<5'") from err
    return cv2


@functools.cache
def _mtcnn():
    try:
        from mtcnn import MTCNN  # (an optional package)
    except ImportError as err:
        raise DetectorUnavailableError(
            "--detector=mtcnn needs the mtcnn package: pip install 'tfgender[detect]' (or "
            "'mtcnn==1.0.0'), or choose --detector=haar_default") from err
    return MTCNN(device="CPU:0")


def _cascade(name: str):
    cv2 = _cv2()
    path = os.path.join(cv2.data.haarcascades, DETECTORS[name])
    cascade = cv2.CascadeClassifier(path)
    if cascade.empty():
        raise DetectorUnavailableError(f"OpenCV has no {DETECTORS[name]} (looked in {path})")
    return cv2, cascade


def detect(image: np.ndarray, detector: str = DEFAULT_DETECTOR, min_size: int = 24) -> list[dict]:
    """The faces in an RGB uint8 image, left to right.

    Returns:
        ``{"box": (x, y, width, height), "eyes": ((x, y), (x, y)) or None, "detector": name}``
        per face; ``eyes`` are the left and right eye in the image (MTCNN's landmarks);
        ``detector`` is the one that found it (``FRAMING``'s key).

    Raises:
        ValueError: an unknown detector.
        DetectorUnavailableError: its package is not installed.
    """
    if detector not in DETECTORS:
        raise ValueError(f"unknown detector {detector!r}; known: {', '.join(DETECTORS)}")
    faces = []
    if detector == "mtcnn_haar":
        faces = detect(image, "mtcnn", min_size)
        for face in detect(image, "haar_alt2", min_size):
            x, y, w, h = face["box"]
            cx, cy = x + w / 2, y + h / 2
            if not any(fx <= cx <= fx + fw and fy <= cy <= fy + fh
                       for fx, fy, fw, fh in (f["box"] for f in faces)):
                faces.append(face)
    elif detector == "mtcnn":
        found = _mtcnn().detect_faces(np.ascontiguousarray(image), min_face_size=min_size)
        for face in found:
            if face["confidence"] < MIN_CONFIDENCE:
                continue
            points = face["keypoints"]
            eyes = tuple(sorted((tuple(map(float, points["left_eye"])),
                                 tuple(map(float, points["right_eye"])))))
            faces.append({"box": tuple(int(round(v)) for v in face["box"]), "eyes": eyes,
                          "detector": detector})
    else:
        cv2, cascade = _cascade(detector)
        gray = cv2.equalizeHist(cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY))
        boxes = cascade.detectMultiScale(gray, scaleFactor=SCALE_FACTOR,
                                         minNeighbors=MIN_NEIGHBORS, minSize=(min_size, min_size))
        faces = [{"box": (int(x), int(y), int(w), int(h)), "eyes": None, "detector": detector}
                 for x, y, w, h in boxes]
    return sorted(faces, key=lambda face: face["box"])


def detect_faces(image: np.ndarray, detector: str = DEFAULT_DETECTOR,
                 min_size: int = 24) -> list[tuple[int, int, int, int]]:
    """Boxes ``(x, y, width, height)`` of the faces in an RGB uint8 image, left to right."""
    return [face["box"] for face in detect(image, detector, min_size)]


def crop_geometry(face: dict) -> tuple[float, float, float, float]:
    """The training crop of a detected face: ``(centre x, centre y, side, angle in degrees)``,
    the angle turning the eyes level (0 without landmarks)."""
    x, y, w, h = face["box"]
    scale, shift = FRAMING[face.get("detector", DEFAULT_DETECTOR)]
    side = max(w, h) * scale
    angle = 0.0
    if face.get("eyes"):
        (lx, ly), (rx, ry) = face["eyes"]
        angle = math.degrees(math.atan2(ry - ly, rx - lx))
    return x + w / 2, y + h / 2 + shift * side, side, angle


def crop_box(face: dict) -> tuple[float, float, float, float]:
    """The training crop's square ``(left, top, right, bottom)`` before any turn."""
    cx, cy, side, _ = crop_geometry(face)
    return cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2


def face_crop(image: np.ndarray, face) -> np.ndarray:
    """The training crop of a face: a square turned so that the eyes are level, the image's
    edge pixels repeated where it reaches past the photo.

    Args:
        image: the RGB uint8 photo.
        face: a ``detect`` result, or a bare box ``(x, y, width, height)`` framed as FairFace
            pads its faces (``MARGIN``).
    """
    if not isinstance(face, dict):
        x, y, w, h = face
        side = max(w, h) * (1 + 2 * MARGIN)
        center, angle = (x + w / 2, y + h / 2), 0.0
    else:
        cx, cy, side, angle = crop_geometry(face)
        center = (cx, cy)
    cv2 = _cv2()
    size = max(1, int(round(side)))
    # Turn about the face's centre, then move that centre to the middle of the crop.
    matrix = cv2.getRotationMatrix2D(center, angle, 1.0)
    matrix[:, 2] += (size / 2 - center[0], size / 2 - center[1])
    return cv2.warpAffine(np.ascontiguousarray(image), matrix, (size, size),
                          flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def annotate(image: np.ndarray, faces: list[dict], path: str) -> None:
    """Writes a JPEG copy of ``image`` with each face's box and label drawn on it."""
    cv2 = _cv2()
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


__all__ = ["DEFAULT_DETECTOR", "DETECTORS", "DetectorUnavailableError", "FRAMING", "MARGIN",
           "annotate", "crop_box", "crop_geometry", "detect", "detect_faces", "face_crop"]
