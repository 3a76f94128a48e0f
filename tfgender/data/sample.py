"""Procedurally drawn face datasets in the exact on-disk formats of Adience, CelebA and UTKFace."""

from __future__ import annotations

import datetime
import math
import shutil
from pathlib import Path

import numpy as np

from tfgender.choices import SAMPLE_FORMATS as FORMATS
from tfgender.data import adience
from tfgender.data.faces import UTK_RACE_SHARES, draw_face, sample_face

NATIVE_SIZES = {"adience": (816, 816), "celeba": (178, 218), "utkface": (200, 200)}  # (w, h)
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


def make_sample_data(config) -> dict:
    """Draws a sample dataset that the real readers (``tfgender.data.readers``) read as is.

    Images are procedurally drawn faces whose gender shows only through overlapping,
    probabilistic cues (hair length, jaw, brows, facial hair, lips, earrings), under nuisance
    variation (pose, light, skin tone, background, noise, glasses, hats), so a small CNN
    learns it well but not perfectly. The same seed writes a byte-identical tree.

    Args:
        config: a ``config.SampleDataConfig``. ``image_size`` 0 keeps the real size
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
        WorkerStopped: a drawing process of ``num_workers`` > 1 died; names ``out_dir``.
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
    try:
        labels, label_files = writer[config.format](config, out_dir, size)
    except WorkerStopped as err:  # the tree is partial: a rerun must start from an empty one
        raise WorkerStopped(f"{err}; {out_dir} is partly drawn: remove it and run the same "
                            "command again (the images are the same each time)") from None
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


def _write_jpeg(path: Path, pixels: np.ndarray, quality: int) -> None:
    import tensorflow as tf

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
        face = sample_face(_rng(config.seed, 0, i), bool(males[i]), int(ages[i]), int(races[i]))
        pixels, _ = draw_face(face, _rng(config.seed, 1, i), *size, ZOOMS["utkface"])
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
    # Every image depends only on (seed, identity, number): drawn in chunks, in any process.
    jobs = [(number, images[i][1], bool(males[images[i][1]]))
            for number, i in enumerate(order, start=1)]
    chunks = [(config.seed, str(out_dir), tuple(size), config.jpeg_quality, jobs[k:k + _CHUNK])
              for k in range(0, n, _CHUNK)]
    attr_lines = [f"{n}", " ".join(CELEBA_ATTRIBUTES) + " "]
    for lines in _map_chunks(_draw_celeba_chunk, chunks, config.num_workers):
        attr_lines += lines
    split_lines, identity_lines = [], []
    for number, i in enumerate(order, start=1):
        split, j = images[i]
        split_lines.append(f"{number:06d}.jpg {split}")
        identity_lines.append(f"{number:06d}.jpg {ids[j]}")
    files = {"list_attr_celeba.txt": attr_lines, "list_eval_partition.txt": split_lines,
             "identity_CelebA.txt": identity_lines}
    for name, lines in files.items():
        (out_dir / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return _counts([males[j] for _, j in images]), sorted(files)


_CHUNK = 250  # CelebA images a worker draws per task


def _draw_celeba_chunk(task) -> list[str]:
    """Draws and writes one chunk of CelebA images; returns their attribute lines."""
    seed, out_dir, size, quality, jobs = task
    faces, lines = {}, []
    for number, j, male in jobs:
        if j not in faces:
            rng_j = _rng(seed, 0, j)  # celebrities: mostly young adults
            faces[j] = sample_face(rng_j, male, 18 + min(52, int(rng_j.gamma(2.0, 7.0))))
        image_rng = _rng(seed, 1, number)
        pixels, scene = draw_face(faces[j], image_rng, *size, ZOOMS["celeba"])
        name = f"{number:06d}.jpg"
        _write_jpeg(Path(out_dir) / "img_align_celeba" / name, pixels, quality)
        values = _celeba_attributes(faces[j], scene, image_rng)
        lines.append(name + "".join(f" {1 if v else -1:2d}" for v in values))
    return lines


def _map_chunks(fn, tasks: list, workers: int):
    """``fn`` over ``tasks`` in order: in this process, or in ``workers`` spawned ones (each
    imports TensorFlow quietly, for its JPEG encoder)."""
    if workers <= 1 or len(tasks) <= 1:
        yield from map(fn, tasks)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    from tfgender.data import convert_worker

    with ProcessPoolExecutor(min(workers, len(tasks)),
                             mp_context=multiprocessing.get_context("spawn"),
                             initializer=convert_worker.init_quiet) as pool:
        try:
            yield from pool.map(fn, tasks)
        except BrokenProcessPool:
            raise WorkerStopped("a drawing worker stopped before its images were written "
                                "(killed, or out of memory)") from None


class WorkerStopped(RuntimeError):
    """A spawned drawing process died: ``make_sample_data`` names the partly drawn tree."""


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
            faces[key] = sample_face(rng, male, _adience_age(row["age"], rng))
        pixels, _ = draw_face(faces[key], _rng(config.seed, 1, len(seen)), *size,
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
