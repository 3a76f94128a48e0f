"""Procedurally drawn face datasets in the exact on-disk formats of Adience, CelebA and UTKFace."""

from __future__ import annotations

import datetime
import math
import shutil
from pathlib import Path

import numpy as np

from tfgender.data import adience

FORMATS = ("adience", "celeba", "utkface")
NATIVE_SIZES = {"adience": (816, 816), "celeba": (178, 218), "utkface": (200, 200)}  # (w, h)
# Faces are drawn at most this many pixels high, then resized: 816 px stays cheap.
MAX_DRAW_SIDE = 128
# How large the face is in the frame: aligned crops are tight, CelebA keeps shoulders.
ZOOMS = {"adience": 1.1, "celeba": 0.8, "utkface": 1.05}
CELEBA_ATTRIBUTES = (
    "5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips Big_Nose "
    "Black_Hair Blond_Hair Blurry Brown_Hair Bushy_Eyebrows Chubby Double_Chin Eyeglasses Goatee "
    "Gray_Hair Heavy_Makeup High_Cheekbones Male Mouth_Slightly_Open Mustache Narrow_Eyes "
    "No_Beard Oval_Face Pale_Skin Pointy_Nose Receding_Hairline Rosy_Cheeks Sideburns Smiling "
    "Straight_Hair Wavy_Hair Wearing_Earrings Wearing_Hat Wearing_Lipstick Wearing_Necklace "
    "Wearing_Necktie Young").split()
# Adience age labels with their share of the real fold files (None and bare numbers rarer).
ADIENCE_AGES = {"(0, 2)": 13, "(4, 6)": 11, "(8, 12)": 11, "(15, 20)": 9, "(25, 32)": 26,
                "(38, 43)": 12, "(48, 53)": 4, "(60, 100)": 5, "None": 4, "35": 2, "22": 1,
                "(27, 32)": 1, "(38, 42)": 1}
UTK_RACE_SHARES = (0.42, 0.19, 0.15, 0.17, 0.07)  # white, black, asian, indian, other
SKIN_TONES = np.array([(0.93, 0.78, 0.68), (0.45, 0.30, 0.22), (0.90, 0.76, 0.60),
                       (0.70, 0.52, 0.40), (0.80, 0.62, 0.50)], np.float32)
HAIR_COLOURS = {"black": (0.08, 0.07, 0.06), "brown": (0.30, 0.20, 0.12),
                "blond": (0.80, 0.68, 0.45), "red": (0.55, 0.25, 0.12),
                "gray": (0.66, 0.65, 0.64)}


def make_sample_data(config) -> dict:
    """Draws a sample dataset that the real readers (``tfgender.data.readers``) read as is.

    Images are procedurally drawn faces whose gender shows only through overlapping,
    probabilistic cues (hair length, jaw, brows, facial hair, lips, earrings), under nuisance
    variation (pose, light, skin tone, background, noise, glasses, hats), so a small CNN
    learns it well but not perfectly. The same seed writes a byte-identical tree.

    Args:
        config: a ``tfgender.flags.SampleDataConfig``. ``image_size`` 0 keeps the real size
            (Adience 816x816, CelebA 178x218, UTKFace 200x200), else images are square.
            ``adience_folds`` (Adience only) names a directory of real fold files: they are
            copied unchanged and one image is drawn for every row; ``num_images`` is ignored.

    Returns:
        A summary: ``format``, ``out_dir``, ``num_images``, ``labels`` (counts of
        ``male``/``female``/``unknown`` as the label files give them), ``image_size``
        (width, height), ``label_files`` (names) and ``files_written``.

    Raises:
        ValueError: an unknown format, a bad count, size or quality, or ``adience_folds``
            with another format.
        FileExistsError: ``out_dir`` exists and is not empty (a second run would mix trees).
    """
    _check_config(config)
    out_dir = Path(config.out_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise FileExistsError(f"{out_dir} is not empty; draw sample data into a new directory")
    out_dir.mkdir(parents=True, exist_ok=True)
    size = NATIVE_SIZES[config.format]
    if config.image_size > 0:
        size = (config.image_size, config.image_size)
    writer = {"adience": _write_adience, "celeba": _write_celeba, "utkface": _write_utkface}
    labels, label_files = writer[config.format](config, out_dir, size)
    return {"format": config.format, "out_dir": str(out_dir), "num_images": sum(labels.values()),
            "labels": labels, "image_size": size, "label_files": label_files,
            "files_written": sum(labels.values()) + len(label_files)}


def _check_config(config) -> None:
    if config.format not in FORMATS:
        raise ValueError(f"unknown sample data format {config.format!r}; expected {FORMATS}")
    if config.num_images < 1 and not config.adience_folds:
        raise ValueError(f"num_images must be at least 1, got {config.num_images}")
    if config.image_size < 0:
        raise ValueError(f"image_size must be 0 (native) or positive, got {config.image_size}")
    if not 1 <= config.jpeg_quality <= 100:
        raise ValueError(f"jpeg_quality must be 1-100, got {config.jpeg_quality}")
    if config.adience_folds and config.format != "adience":
        raise ValueError("adience_folds only applies to --format=adience")


def _rng(seed: int, stream: int, index: int) -> np.random.Generator:
    # One generator per (identity or image): each is independent of how many came before.
    return np.random.default_rng([seed, stream, index])


# --------------------------------------------------------------------------- identities
def _sample_face(rng: np.random.Generator, male: bool, age: int, race: int | None = None) -> dict:
    """Fixed traits of one person; every gender cue overlaps between the sexes."""
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


def _draw_face(face: dict, rng: np.random.Generator, width: int, height: int,
               zoom: float) -> tuple[np.ndarray, dict]:
    """Draws one photo of ``face``; returns uint8 HxWx3 pixels and what the scene shows."""
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
    import tensorflow as tf  # noqa: PLC0415 - TF is only needed once drawing starts

    return np.clip(tf.image.resize(pixels, (height, width)).numpy(), 0, 255)


def _write_jpeg(path: Path, pixels: np.ndarray, quality: int) -> None:
    import tensorflow as tf  # noqa: PLC0415

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(tf.io.encode_jpeg(pixels, quality=quality).numpy())


# --------------------------------------------------------------------------- formats
def _write_utkface(config, out_dir: Path, size) -> tuple[dict, list]:
    """Flat ``<age>_<gender>_<race>_<datetime>.jpg.chip.jpg`` files, gender 0 male, 1 female."""
    rng = _rng(config.seed, 2, 0)
    n = config.num_images
    males = rng.permutation(np.arange(n) < (n + int(rng.integers(2))) // 2)
    races = rng.choice(5, n, p=UTK_RACE_SHARES)
    # About a third children, as in UTKFace; adults skew young (median in the late twenties).
    ages = np.where(rng.random(n) < 0.33, rng.choice(np.arange(1, 13), n),
                    np.clip(rng.lognormal(math.log(30), 0.4, n), 13, 100).astype(int))
    # Strictly increasing capture times keep the 17-digit datetimes unique.
    start = datetime.datetime(2016, 12, 20) + datetime.timedelta(seconds=int(rng.integers(86400)))
    offsets = np.cumsum(rng.integers(1, 90_000, n))
    for i in range(n):
        stamp = start + datetime.timedelta(milliseconds=int(offsets[i]))
        name = (f"{ages[i]}_{0 if males[i] else 1}_{races[i]}_"
                f"{stamp:%Y%m%d%H%M%S}{stamp.microsecond // 1000:03d}.jpg.chip.jpg")
        face = _sample_face(_rng(config.seed, 0, i), bool(males[i]), int(ages[i]), int(races[i]))
        pixels, _ = _draw_face(face, _rng(config.seed, 1, i), *size, ZOOMS["utkface"])
        _write_jpeg(out_dir / name, pixels, config.jpeg_quality)
    return _counts(males.tolist()), []


def _write_celeba(config, out_dir: Path, size) -> tuple[dict, list]:
    """``list_attr_celeba.txt``, ``list_eval_partition.txt``, ``identity_CelebA.txt`` and
    ``img_align_celeba/``; identities keep their gender and never span two partitions."""
    rng = _rng(config.seed, 2, 0)
    n = config.num_images
    sizes = []
    while sum(sizes) < n:  # several images per identity, fewer when the set is tiny
        sizes.append(int(min(n - sum(sizes), 1 + rng.poisson(min(4.0, n / 10)))))
    ids = rng.choice(np.arange(1, max(10177, 2 * len(sizes)) + 1), len(sizes), replace=False)
    # Alternate towards whichever gender has fewer images: the set stays balanced.
    males, counts = [], [0, 0]
    for k in sizes:
        male = counts[1] < counts[0] or (counts[1] == counts[0] and rng.random() < 0.5)
        males.append(male)
        counts[male] += k
    # Identity-exclusive partitions: each identity joins the split furthest below 80/10/10.
    targets, filled, partition = np.array([0.8, 0.1, 0.1]) * n, np.zeros(3), {}
    for j in rng.permutation(len(sizes)):
        split = int(np.argmax(targets - filled))
        partition[j], filled[split] = split, filled[split] + sizes[j]
    images = [(partition[j], j) for j in range(len(sizes)) for _ in range(sizes[j])]
    order = sorted(range(n), key=lambda i: (images[i][0], rng.random()))
    faces = {}
    attr_lines = [f"{n}", " ".join(CELEBA_ATTRIBUTES) + " "]
    split_lines, identity_lines = [], []
    for number, i in enumerate(order, start=1):
        split, j = images[i]
        if j not in faces:
            rng_j = _rng(config.seed, 0, j)  # celebrities: mostly young adults
            faces[j] = _sample_face(rng_j, males[j], 18 + min(52, int(rng_j.gamma(2.0, 7.0))))
        image_rng = _rng(config.seed, 1, number)
        pixels, scene = _draw_face(faces[j], image_rng, *size, ZOOMS["celeba"])
        name = f"{number:06d}.jpg"
        _write_jpeg(out_dir / "img_align_celeba" / name, pixels, config.jpeg_quality)
        values = _celeba_attributes(faces[j], scene, image_rng)
        attr_lines.append(name + "".join(f" {1 if v else -1:2d}" for v in values))
        split_lines.append(f"{name} {split}")
        identity_lines.append(f"{name} {ids[j]}")
    files = {"list_attr_celeba.txt": attr_lines, "list_eval_partition.txt": split_lines,
             "identity_CelebA.txt": identity_lines}
    for name, lines in files.items():
        (out_dir / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return _counts([males[j] for _, j in images]), sorted(files)


def _celeba_attributes(face: dict, scene: dict, rng: np.random.Generator) -> list[bool]:
    """The 40 attributes: those the drawing shows follow it, the rest are plausible noise."""
    drawn = {
        "5_o_Clock_Shadow": face["beard"] == "stubble", "Arched_Eyebrows": face["arch"] > 0.025,
        "Bald": face["bald"], "Bangs": face["bangs"] and not face["bald"],
        "Black_Hair": face["hair_name"] == "black", "Blond_Hair": face["hair_name"] == "blond",
        "Brown_Hair": face["hair_name"] in ("brown", "red"), "Blurry": scene["blurry"],
        "Bushy_Eyebrows": face["brow"] > 0.05, "Chubby": face["aspect"] > 0.84,
        "Eyeglasses": scene["glasses"], "Goatee": face["beard"] == "goatee",
        "Gray_Hair": face["hair_name"] == "gray", "Heavy_Makeup": face["makeup"] > 0.5,
        "High_Cheekbones": scene["smile"] > 0.6, "Male": face["male"],
        "Mouth_Slightly_Open": scene["smile"] > 0.6, "Mustache": face["beard"] == "mustache",
        "No_Beard": face["beard"] in ("", "stubble"), "Pale_Skin": face["skin"].mean() > 0.82,
        "Rosy_Cheeks": face["makeup"] > 0.6, "Sideburns": face["beard"] == "full",
        "Smiling": scene["smile"] > 0.6, "Straight_Hair": not face["wavy"],
        "Wavy_Hair": face["wavy"], "Wearing_Earrings": face["earrings"],
        "Wearing_Hat": scene["hat"], "Wearing_Lipstick": face["lipstick"],
        "Wearing_Necklace": not face["male"] and rng.random() < 0.25,
        "Wearing_Necktie": face["male"] and rng.random() < 0.15, "Young": face["age"] < 40,
    }
    return [bool(drawn[name]) if name in drawn else rng.random() < 0.2
            for name in CELEBA_ATTRIBUTES]


def _write_adience(config, out_dir: Path, size) -> tuple[dict, list]:
    """Fold files (copied from ``adience_folds`` or drawn) and one aligned image per row."""
    if config.adience_folds:
        sources = sorted(Path(config.adience_folds).glob("fold_*data.txt"))
        if not sources:
            raise FileNotFoundError(f"no fold_*data.txt files in {config.adience_folds}")
        for source in sources:
            shutil.copyfile(source, out_dir / source.name)
        folds = [adience.read_fold_file(s) for s in sources]
    else:
        folds = _draw_adience_folds(config)
        for number, rows in enumerate(folds):
            lines = ["\t".join(adience.FOLD_COLUMNS)]
            lines += ["\t".join(str(r[c]) for c in adience.FOLD_COLUMNS) for r in rows]
            (out_dir / adience.fold_file_name(number)).write_text("\n".join(lines) + "\n")
        sources = [out_dir / adience.fold_file_name(k) for k in range(len(folds))]
    faces, genders, seen = {}, [], set()
    for row in (r for rows in folds for r in rows):
        path = adience.image_path(row["user_id"], row["face_id"], row["original_image"])
        if path in seen:  # a frontal fold file repeats rows of the full one
            continue
        seen.add(path)
        key = (row["user_id"], row["face_id"], row["gender"])
        if key not in faces:
            rng = _rng(config.seed, 0, len(faces))
            male = row["gender"] == "m" if row["gender"] in ("m", "f") else rng.random() < 0.5
            faces[key] = _sample_face(rng, male, _adience_age(row["age"], rng))
        pixels, _ = _draw_face(faces[key], _rng(config.seed, 1, len(seen)), *size,
                               ZOOMS["adience"])
        _write_jpeg(out_dir / path, pixels, config.jpeg_quality)
        genders.append({"m": True, "f": False}.get(row["gender"]))
    return _counts(genders), [s.name for s in sources]


def _adience_age(label: str, rng: np.random.Generator) -> int:
    """A concrete age for drawing: inside a ``(lo, hi)`` range, or an adult when unknown."""
    numbers = [int(v) for v in label.strip("()").split(",") if v.strip().isdigit()]
    if not numbers:
        return int(rng.integers(18, 50))
    return int(rng.integers(min(numbers), max(numbers) + 1))


def _draw_adience_folds(config) -> list[list[dict]]:
    """Five folds of album rows: users never in two folds, faces recurring within an album."""
    rng = _rng(config.seed, 2, 0)
    ages, age_p = list(ADIENCE_AGES), np.array(list(ADIENCE_AGES.values()), float)
    folds, face_id, users = [], 0, set()
    for fold in range(5):
        remaining = config.num_images // 5 + (fold < config.num_images % 5)
        rows = []
        while remaining > 0:
            user = f"{rng.integers(10**7, 2 * 10**8)}@N0{rng.integers(0, 9)}"
            if user in users:
                continue
            users.add(user)
            count = int(min(remaining, 1 + rng.poisson(max(1.0, min(12.0, remaining / 3)))))
            people = []
            for _ in range(1 + count // 4):
                face_id += 1
                kind = rng.random()
                # Mostly m/f; babies are often u, and unknown ages often lack a gender.
                age = "(0, 2)" if kind < 0.05 else "None" if kind < 0.09 else str(
                    rng.choice(ages, p=age_p / age_p.sum()))
                gender = "u" if kind < 0.05 else "" if kind < 0.09 else "mf"[rng.random() < .53]
                people.append((face_id, age, gender))
            photos = [f"{rng.integers(10**10, 2 * 10**10)}_{rng.integers(16**10):010x}_o.jpg"
                      for _ in range(count)]
            for k, photo in enumerate(photos):
                person = people[k % len(people)]
                dx = int(rng.integers(200, 1400))
                rows.append({
                    "user_id": user, "original_image": photo, "face_id": person[0],
                    "age": person[1], "gender": person[2], "x": int(rng.integers(0, 2500)),
                    "y": int(rng.integers(0, 1800)), "dx": dx, "dy": dx + int(rng.integers(2)),
                    "tilt_ang": int(rng.integers(-36, 37)) * 5,
                    "fiducial_yaw_angle": int(rng.choice([-60, -45, -30, -15, 0, 15, 30, 45])),
                    "fiducial_score": int(rng.integers(0, 200))})
            remaining -= count
        folds.append(rows)
    return folds


def _counts(males: list) -> dict:
    """Label counts; ``None`` marks an image whose label file gives no gender."""
    return {"male": sum(m is True for m in males), "female": sum(m is False for m in males),
            "unknown": sum(m is None for m in males)}
