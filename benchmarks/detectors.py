"""Face detectors side by side on made group photos of real faces: recall, false detections,
time per photo, and how well each detector's crop frames the face as the training images do.

Not a pytest module (one process, every detector on the same photos):

    .venv/bin/python benchmarks/detectors.py [--faces=FAIRFACE_DIR] [--photos=N] [--fit]
        [--block=B]

Each photo holds 2-4 real FairFace crops (the images the model trains on) pasted at one of
several sizes on one of several backgrounds (``data/group_photos.py``). A pasted face is found
when a detection is centred inside it. ``crop IoU`` compares the detector's training crop
(``detect.crop_box``) with the pasted square: 1.0 is the training image exactly. ``--fit``
prints, per detector, the framing (``detect.FRAMING``: scale and shift) that makes the crops
match the pasted squares best on these photos.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import tensorflow as tf

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tfgender.data import group_photos  # noqa: E402
from tfgender.evaluation import detect  # noqa: E402

SIDES = (64, 96, 150, 224)  # pasted face sides in pixels (the training crops are 224)


def make_photos(faces_dir: str, count: int, block: int = 0):
    """``count`` photos cycling through every side and background; faces drawn from the last
    files of FairFace's folder (the first ones are what the tests paste), block 0 the last
    ``4 * count``, block 1 the ones before them (faces ``FRAMING`` was not fitted on)."""
    rng = np.random.default_rng(block)
    ordered = sorted(os.listdir(faces_dir), key=lambda n: int(n.split(".")[0]))
    names = ordered[len(ordered) - 4 * count * (block + 1):len(ordered) - 4 * count * block]
    photos = []
    for p in range(count):
        per_photo = int(rng.integers(2, 5))
        faces = [tf.io.decode_jpeg(tf.io.read_file(os.path.join(faces_dir, names[4 * p + i])),
                                   channels=3) for i in range(per_photo)]
        side = SIDES[p % len(SIDES)]
        kind = group_photos.BACKGROUNDS[(p // len(SIDES)) % len(group_photos.BACKGROUNDS)]
        photo, places = group_photos.make_group_photo(faces, side, kind, rng)
        # As a camera would: JPEG once more.
        photo = tf.io.decode_jpeg(tf.io.encode_jpeg(photo, quality=90)).numpy()
        photos.append((photo, places, side, kind))
    return photos


def measure(photos, detector: str) -> dict:
    found = total = false = 0
    seconds, overlaps, fits, by_side = [], [], [], {}
    detect.detect(photos[0][0], detector)  # load and trace once, outside the timing
    for photo, places, side, _ in photos:
        start = time.perf_counter()
        faces = detect.detect(photo, detector)
        seconds.append(time.perf_counter() - start)
        boxes = [face["box"] for face in faces]
        pairs, wrong = group_photos.match(boxes, places)
        found, total, false = found + len(pairs), total + len(places), false + wrong
        hit = by_side.setdefault(side, [0, 0])
        hit[0], hit[1] = hit[0] + len(pairs), hit[1] + len(places)
        for place, box in pairs:
            face = next(f for f in faces if f["box"] == box)
            overlaps.append(group_photos.crop_overlap(place, detect.crop_box(face)))
            x, y, w, h = box
            left, top, pasted = place
            fits.append((pasted / max(w, h), (top + pasted / 2 - (y + h / 2)) / pasted))
    return {"found": found, "total": total, "false": false,
            "ms": 1000 * statistics.median(seconds),
            "iou": statistics.mean(overlaps) if overlaps else 0.0,
            "by_side": {s: f"{a}/{b}" for s, (a, b) in sorted(by_side.items())},
            "scale": statistics.median(f[0] for f in fits) if fits else None,
            "shift": statistics.median(f[1] for f in fits) if fits else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", default=str(REPO.parent / "shared" / "data" / "fairface"
                                               / "train"))
    parser.add_argument("--photos", type=int, default=48)
    parser.add_argument("--fit", action="store_true")
    parser.add_argument("--block", type=int, default=0, help="which faces: 0 the last, 1 the "
                        "ones before (held out from the fit), ...")
    args = parser.parse_args()
    photos = make_photos(args.faces, args.photos, args.block)
    print(f"{len(photos)} photos, {sum(len(p[1]) for p in photos)} faces; sides {SIDES}, "
          f"backgrounds {group_photos.BACKGROUNDS}")
    print("| detector | found | recall | false detections | ms/photo | crop IoU | found by "
          "side |")
    print("|---|---|---|---|---|---|---|")
    for name in detect.DETECTORS:
        r = measure(photos, name)
        print(f"| {name} | {r['found']}/{r['total']} | {r['found'] / r['total']:.1%} | "
              f"{r['false']} | {r['ms']:.0f} | {r['iou']:.3f} | {r['by_side']} |")
        if args.fit and r["scale"] and name in detect.FRAMING:
            print(f"    fit: scale {r['scale']:.3f}, shift {r['shift']:.3f} "
                  f"(detect.FRAMING has {detect.FRAMING[name]})")


if __name__ == "__main__":
    main()
