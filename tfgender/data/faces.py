"""Procedurally drawn faces: one person's traits, and photos of them as pixels."""

from __future__ import annotations

import math

import numpy as np

# Faces are drawn at most this many pixels high, then resized: 816 px stays cheap.
MAX_DRAW_SIDE = 128
# UTKFace's race codes 0-4 (white, black, asian, indian, other), also rows of SKIN_TONES.
UTK_RACE_SHARES = (0.42, 0.19, 0.15, 0.17, 0.07)
SKIN_TONES = np.array([(0.93, 0.78, 0.68), (0.45, 0.30, 0.22), (0.90, 0.76, 0.60),
                       (0.70, 0.52, 0.40), (0.80, 0.62, 0.50)], np.float32)
HAIR_COLOURS = {"black": (0.08, 0.07, 0.06), "brown": (0.30, 0.20, 0.12),
                "blond": (0.80, 0.68, 0.45), "red": (0.55, 0.25, 0.12),
                "gray": (0.66, 0.65, 0.64)}


# --------------------------------------------------------------------------- identities
def sample_face(rng: np.random.Generator, male: bool, age: int, race: int | None = None) -> dict:
    """Fixed traits of one person; every gender cue overlaps between the sexes.

    Args:
        rng: the person's own generator (the same generator gives the same person).
        male: the person's gender.
        age: in years; children (under 13) carry weaker gender cues, beards need 17.
        race: an index into ``SKIN_TONES`` (white, black, asian, indian, other), or None to
            draw one from ``UTK_RACE_SHARES``.

    Returns:
        The traits ``draw_face`` draws: colours, hair, jaw, brows, beard, make-up, etc.
    """
    child, adult = age < 13, age >= 17
    race = int(rng.choice(5, p=UTK_RACE_SHARES)) if race is None else race
    hair_names = ["black", "brown", "blond", "red"]
    hair_p = [0.35, 0.40, 0.18, 0.07] if race == 0 else [0.85, 0.13, 0.01, 0.01]
    hair = "gray" if age > 50 and rng.random() < (age - 45) / 40 else rng.choice(hair_names,
                                                                                p=hair_p)
    long_p = (0.1 if male else 0.78) if not child else (0.15 if male else 0.65)
    cue = 0.7 if child else 1.0  # children's faces carry weaker gender cues
    sign = 1.0 if male else -1.0
    beard = ""
    if male and adult and rng.random() < 0.55:
        beard = rng.choice(["stubble", "mustache", "goatee", "full"], p=[0.5, 0.15, 0.15, 0.2])
    lipstick = (not male) and age >= 15 and rng.random() < 0.55
    lip = (np.array((0.75, 0.12, 0.22)) * rng.uniform(0.7, 1.1) if lipstick else
           np.array((0.78, 0.45, 0.42)) * rng.uniform(0.8, 1.05) - (0.05 if male else 0.0))
    return {
        "male": male, "age": age, "child": child,
        "skin": SKIN_TONES[race] * rng.uniform(0.9, 1.08, 3).astype(np.float32),
        "hair_name": hair, "hair": np.float32(HAIR_COLOURS[hair]) * rng.uniform(0.8, 1.2),
        "hair_len": rng.uniform(0.3, 1.15) if rng.random() < long_p else -1.0,
        "bald": male and age > 25 and rng.random() < 0.08 + (age - 25) / 150,
        "bangs": rng.random() < (0.15 if male else 0.35), "wavy": rng.random() < 0.3,
        "jaw": float(np.clip(rng.normal(2.4 + 0.3 * sign * cue, 0.3), 1.8, 3.6)),
        "aspect": rng.normal(0.78 + 0.02 * sign * cue + 0.04 * child, 0.04),
        "brow": max(0.012, rng.normal(0.038 + 0.007 * sign * cue, 0.009)),
        "arch": max(0.0, rng.normal(0.02 - 0.01 * sign * cue, 0.012)),
        "beard": beard, "lip": np.clip(lip, 0, 1), "lipstick": lipstick,
        "makeup": rng.uniform(0.3, 0.8) if not male and age >= 15 and rng.random() < 0.3 else 0,
        "earrings": rng.random() < (0.04 if male else 0.35),
        "eyes": np.array([(0.25, 0.15, 0.08), (0.2, 0.35, 0.55), (0.25, 0.4, 0.2)][
            rng.choice(3, p=[0.7, 0.2, 0.1] if race == 0 else [0.97, 0.02, 0.01])]),
    }


# --------------------------------------------------------------------------- drawing
def _soft(distance: np.ndarray, pixel: float) -> np.ndarray:
    """Coverage of a shape from a signed distance (positive inside), antialiased over a pixel."""
    return np.clip(distance / pixel + 0.5, 0.0, 1.0)


def _ellipse(x, y, cx, cy, rx, ry, pixel, power=2.0):
    f = (np.abs(x - cx) / rx) ** power + ((y - cy) / ry) ** 2
    return _soft((1.0 - np.sqrt(f)) * min(rx, ry), pixel)


def _paint(image: np.ndarray, mask: np.ndarray, colour) -> None:
    """Blends ``colour`` over ``image`` by ``mask``, touching only the mask's bounding box."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if not rows.size:
        return
    box = np.s_[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    colour = np.asarray(colour, np.float32)
    colour = colour[box] if colour.ndim == 3 else colour
    image[box] += mask[box][..., None] * (colour - image[box])


def draw_face(face: dict, rng: np.random.Generator, width: int, height: int,
               zoom: float) -> tuple[np.ndarray, dict]:
    """Draws one photo of ``face`` under random pose, background, light and noise.

    Args:
        face: traits from ``sample_face``.
        rng: the photo's own generator (the same generator gives the same pixels).
        width: output width in pixels.
        height: output height in pixels.
        zoom: how large the face is in the frame (1 is a tight crop).

    Returns:
        uint8 HxWx3 pixels, and what the scene shows (``glasses``, ``hat``, ``smile``,
        ``blurry``) for label files that describe it.
    """
    scale = min(1.0, MAX_DRAW_SIDE / max(width, height))
    h, w = max(8, round(height * scale)), max(8, round(width * scale))
    pixel = 2.0 / h  # canonical units: the image is 2 high, face centred near the origin
    gy, gx = np.mgrid[0:h, 0:w].astype(np.float32)
    gx, gy = (gx + 0.5 - w / 2) * pixel, (gy + 0.5 - h / 2) * pixel
    # Pose: in-plane rotation, shift and scale map each pixel into face coordinates.
    # Python floats keep the float32 grids float32 (NumPy scalars would promote them).
    angle, size = rng.normal(0, 0.1), zoom * rng.uniform(0.88, 1.12)
    sx, sy = rng.normal(0, 0.05, 2).tolist()
    cos, sin = math.cos(angle), math.sin(angle)
    x = ((gx - sx) * cos + (gy - sy) * sin) / size
    y = (-(gx - sx) * sin + (gy - sy) * cos) / size
    px = pixel / size
    yaw = rng.normal(0, 0.35)

    # Background: two colours in a random low-frequency pattern, sometimes an object.
    colours = rng.uniform(0.05, 0.95, (3, 3)).astype(np.float32)
    f1, f2 = rng.uniform(0.5, 6, 2).tolist(), rng.uniform(0, 6.3, 2).tolist()
    t = 0.5 + 0.5 * np.sin(f1[0] * gx + f2[0]) * np.cos(f1[1] * gy + f2[1])
    image = colours[0] + t[..., None] * (colours[1] - colours[0])
    if rng.random() < 0.5:
        centre, radii = rng.uniform(-1, 1, 2).tolist(), rng.uniform(0.1, 0.6, 2).tolist()
        _paint(image, _ellipse(gx, gy, *centre, *radii, pixel), colours[2])

    a = 0.42 * face["aspect"] * (0.9 if face["child"] else 1.0)
    b = 0.55 * (0.9 if face["child"] else 1.0)
    skin, hair = face["skin"], face["hair"]
    hair_tex = hair * (0.85 + 0.3 * np.sin((14 if face["wavy"] else 40) * x
                                           + (4 * np.sin(9 * y) if face["wavy"] else 0.0)))[
        ..., None]
    _paint(image, _ellipse(x, y, 0, 1.22, 0.95, 0.5, px), rng.uniform(0.05, 0.9, 3))  # clothes
    if face["hair_len"] > 0:  # long hair behind the head, down to hair_len
        back = _soft(np.minimum(a + 0.11 - np.abs(x), face["hair_len"] - y), px) * (y > -0.2)
        _paint(image, np.maximum(back, _ellipse(x, y, 0, -0.05, a + 0.1, b + 0.12, px)),
               hair_tex)
    _paint(image, _soft(np.minimum(0.2 - np.abs(x), 1.0 - y), px) * (y > 0.1), skin * 0.82)
    for side in (-1, 1):
        _paint(image, _ellipse(x, y, side * (a + 0.01), 0.02, 0.06, 0.1, px), skin * 0.9)
    cap = _ellipse(x, y, 0, -0.06, a + 0.05, b + 0.07, px)
    if face["hair_len"] <= 0 and not face["bald"]:  # short hair: a cap over the skull
        _paint(image, cap * _soft(-0.05 - y, px), hair_tex)
    # The jaw: the lower half is a superellipse, squarer for a larger exponent.
    f = np.where(y < 0, (x / a) ** 2, np.abs(x / a) ** face["jaw"]) + (y / b) ** 2
    face_mask = _soft((1.0 - np.sqrt(f)) * a, px)
    shade = (1.06 - 0.28 * np.clip(f, 0, 1))[..., None]
    _paint(image, face_mask, skin * shade)
    hairline = (-0.2 if face["bangs"] else -0.52) * b + 0.25 * (x / a) ** 2
    if not face["bald"]:
        _paint(image, cap * _soft(hairline - y, px), hair_tex)
    if face["makeup"]:
        for side in (-1, 1):
            _paint(image, _ellipse(x, y, side * 0.55 * a, 0.12, 0.08, 0.05, px)
                   * (0.4 * face["makeup"]), (0.85, 0.35, 0.4))

    shift = 0.06 * yaw  # looking sideways moves the features, not the head outline
    eye_y, eyes = -0.08, [(side * 0.38 * a + shift) for side in (-1, 1)]
    brow_colour = np.minimum(hair, 0.35) * 0.8
    for ex in eyes:
        _paint(image, _ellipse(x, y, ex, eye_y, 0.075, 0.03, px), (0.92, 0.9, 0.88))
        _paint(image, _ellipse(x, y, ex, eye_y, 0.028, 0.028, px), face["eyes"])
        _paint(image, _ellipse(x, y, ex, eye_y, 0.012, 0.012, px), (0.02, 0.02, 0.02))
        if face["makeup"]:
            _paint(image, _ellipse(x, y, ex, eye_y - 0.035, 0.08, 0.025, px)
                   * face["makeup"], (0.35, 0.2, 0.3))
        u = np.clip((x - ex) / 0.1, -1, 1)
        centre = eye_y - 0.085 - face["arch"] * (1 - u ** 2)
        brow = _soft(np.minimum(face["brow"] / 2 - np.abs(y - centre), 0.1 - np.abs(x - ex)), px)
        _paint(image, brow, brow_colour)
    nose = np.exp(-(((x - 1.5 * shift) / 0.025) ** 2)) * ((y > -0.05) & (y < 0.15))
    _paint(image, nose * 0.2, skin * 0.6)
    _paint(image, _ellipse(x, y, 1.5 * shift, 0.16, 0.05, 0.018, px) * 0.5, skin * 0.55)

    smile = rng.random()
    mouth_y, mouth_x = 0.3 + 0.03 * (face["jaw"] > 2.6), shift
    mouth = _ellipse(x, y, mouth_x, mouth_y, 0.12 * (1 + 0.3 * smile), 0.022 + 0.03 * smile, px)
    if face["beard"]:
        density = {"stubble": 0.35, "mustache": 0.0, "goatee": 0.0, "full": 0.85}[face["beard"]]
        grain = rng.random((h, w), dtype=np.float32)
        region = face_mask * _soft(y - 0.12, px) * density
        if face["beard"] == "goatee":
            region = np.maximum(region, _ellipse(x, y, mouth_x, 0.42, 0.1, 0.13, px) * 0.85)
        if face["beard"] in ("mustache", "full", "goatee"):
            region = np.maximum(region, _ellipse(x, y, mouth_x, mouth_y - 0.045, 0.13, 0.025,
                                                 px) * 0.9)
        _paint(image, region * (0.6 + 0.4 * grain) * face_mask, hair * 0.6)
    _paint(image, mouth, face["lip"])
    if smile > 0.6:
        _paint(image, _ellipse(x, y, mouth_x, mouth_y, 0.09 * (1 + 0.3 * smile), 0.012, px),
               (0.95, 0.93, 0.88))
    if face["earrings"]:
        for side in (-1, 1):
            _paint(image, _ellipse(x, y, side * (a + 0.02), 0.14, 0.022, 0.022, px),
                   (0.85, 0.75, 0.3))

    scene = {"glasses": rng.random() < 0.12, "hat": rng.random() < 0.06, "smile": smile}
    if scene["glasses"]:
        frame = rng.uniform(0, 0.4, 3)
        for ex in eyes:
            ring = np.sqrt(((x - ex) / 0.11) ** 2 + ((y - eye_y) / 0.08) ** 2)
            _paint(image, _soft(0.012 - np.abs(ring - 1) * 0.09, px), frame)
        _paint(image, _soft(np.minimum(0.01 - np.abs(y - eye_y + 0.02), 0.08 - np.abs(x)), px),
               frame)
    if scene["hat"]:
        top = -0.62 * b
        hat = _soft(np.minimum(top - y, a + 0.12 - np.abs(x)), px)
        hat = np.maximum(hat, _ellipse(x, y, 0, top, a + 0.25, 0.05, px))
        _paint(image, hat, rng.uniform(0.05, 0.9, 3))

    # Light: a brightness gradient and a colour cast; then sensor noise.
    light = rng.uniform(0.65, 1.2) + rng.normal(0, 0.25) * gx + rng.normal(0, 0.15) * gy
    image *= light[..., None] * rng.uniform(0.9, 1.1, 3).astype(np.float32)
    scene["blurry"] = rng.random() < 0.1
    image += rng.standard_normal(image.shape, np.float32) * (0.05 if scene["blurry"] else 0.015)
    pixels = np.clip(image * 255 + 0.5, 0, 255)
    if (h, w) != (height, width):
        pixels = _resize(pixels, height, width)
    return pixels.astype(np.uint8), scene


def _resize(pixels: np.ndarray, height: int, width: int) -> np.ndarray:
    import tensorflow as tf  # TF is only needed once drawing starts

    return np.clip(tf.image.resize(pixels, (height, width)).numpy(), 0, 255)
