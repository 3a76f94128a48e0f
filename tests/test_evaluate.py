"""Tests of evaluation/evaluate.py and bin/evaluate: metrics against numpy, oversampling, errors."""

from __future__ import annotations

import dataclasses
import glob
import json
import os
import shutil
import subprocess

import numpy as np
import pytest
import tensorflow as tf

from tfgender import models
from tfgender.config import EvaluateConfig
from tfgender.data import decode
from tfgender.data import records as rec
from tfgender.evaluation import evaluate, metrics, predict
from tfgender.files import BEST_MODEL
from tfgender.input import augment
from tfgender.input import pipeline as input_pipeline

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EVALUATE = os.path.join(REPO, "bin", "evaluate")
SIZE, CACHE = 40, 48


def make_run(workdir, *, seed=0, steps=5, precision_name="float32", legacy=False) -> str:
    """A workdir as train.py leaves it: best_model.keras (with its normalisation inside, or
    ``legacy``: without, as runs saved it before), a checkpoint and summary.json."""
    os.makedirs(workdir, exist_ok=True)
    model = models.build_model("levi_hassner", SIZE, dropout=(0.0, 0.0),
                               precision_name=precision_name)
    rng = np.random.RandomState(seed)
    # He-scaled kernels instead of the paper's N(0, 0.01): outputs that vary across images.
    for weight in model.weights:
        shape = tuple(weight.shape)
        if len(shape) >= 2:
            fan_in = int(np.prod(shape[:-1]))
            weight.assign(rng.normal(0, np.sqrt(2.0 / fan_in), shape).astype(np.float32))
    # Scale the logit layer so logits spread over a few units: probabilities that do not
    # saturate at 0 or 1 make the comparisons below informative.
    probe = rng.uniform(0, 255, (16, SIZE, SIZE, 3)).astype(np.float32) - np.float32(
        augment.IMAGENET_RGB_MEAN)
    spread = float(np.std(model.predict(probe, verbose=0)))
    kernel = [w for w in model.weights if len(w.shape) >= 2][-1]
    kernel.assign(kernel * (2.0 / max(spread, 1e-6)))
    saved = model if legacy else models.with_normalization(model, "levi_hassner_mean")
    saved.save(os.path.join(workdir, BEST_MODEL))
    manager = tf.train.CheckpointManager(tf.train.Checkpoint(model=model),
                                         os.path.join(workdir, "checkpoints"), max_to_keep=1)
    manager.save(checkpoint_number=steps)
    summary = {"model": "levi_hassner", "image_size": SIZE, "precision": precision_name,
               "steps": steps, "config": {"cache_image_size": CACHE, "crop_scale": [],
                                          "head_units": [16], "dropout": [0.0, 0.0]}}
    with open(os.path.join(workdir, "summary.json"), "w") as f:
        json.dump(summary, f)
    return str(workdir)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> str:
    return make_run(tmp_path_factory.mktemp("run") / "run")


def _config(data_dir, workdir, **kw) -> EvaluateConfig:
    kw.setdefault("batch_size", 8)
    return EvaluateConfig(data_dir=data_dir, workdir=workdir, **kw)


def _direct(data_dir, workdir, split="test"):
    """Labels and male probabilities computed without tfgender.evaluation.evaluate."""
    import keras

    model = keras.models.load_model(os.path.join(workdir, BEST_MODEL), compile=False)
    manifest = rec.load_manifest(data_dir)
    files = [os.path.join(data_dir, s["file"]) for s in manifest["shards"] if s["split"] == split]
    labels, images = [], []
    for raw in tf.data.TFRecordDataset(files):
        example = rec.parse_example(raw)
        image = decode.decode_and_resize(example[rec.ENCODED], CACHE).numpy()
        offset = (CACHE - SIZE) // 2
        images.append(image[offset:offset + SIZE, offset:offset + SIZE].astype(np.float32))
        labels.append(int(example[rec.LABEL]))
    inputs = np.stack(images)
    if not models.takes_pixels(model):
        inputs = inputs - np.float32(augment.IMAGENET_RGB_MEAN)
    logits = model.predict(inputs, verbose=0)[:, 0].astype(np.float64)
    return np.array(labels), 1.0 / (1.0 + np.exp(-logits))


def _pairwise_auc(labels, scores) -> float:
    pos, neg = scores[labels == 1], scores[labels == 0]
    diff = pos[:, None] - neg[None, :]
    return float(np.mean((diff > 0) + 0.5 * (diff == 0)))


def test_binary_metrics_match_definitions():
    rng = np.random.RandomState(1)
    labels = rng.randint(0, 2, 200)
    scores = np.round(rng.uniform(size=200), 2)  # rounding makes ties, which AUC must average
    m = metrics.binary_metrics(labels, probabilities=scores)
    assert m["auc"] == pytest.approx(_pairwise_auc(labels, scores), abs=1e-12)
    predicted = scores > 0.5
    assert m["accuracy"] == pytest.approx(np.mean(predicted == labels))
    p = np.clip(scores, 1e-7, 1 - 1e-7)
    assert m["loss"] == pytest.approx(-np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p)))
    cm = m["confusion_matrix"]
    assert cm["tp"] == np.sum(predicted & (labels == 1)) and cm["tn"] == np.sum(
        ~predicted & (labels == 0))
    assert sum(cm.values()) == m["num_examples"] == 200
    assert metrics.binary_metrics([1, 1], probabilities=[0.2, 0.9])["auc"] is None  # undefined
    assert metrics.binary_metrics([0, 1, 1], [-2.0, 1.4, 2.2])["auc"] == 1.0
    logits = np.array([-40.0, -1.0, 0.5, 35.0])  # the loss from logits stays exact at the ends
    expected = tf.nn.sigmoid_cross_entropy_with_logits(
        labels=tf.constant([1.0, 0.0, 1.0, 0.0], tf.float64), logits=tf.constant(logits))
    assert metrics.binary_metrics([1, 0, 1, 0], logits)["loss"] == pytest.approx(
        float(tf.reduce_mean(expected)), rel=1e-12)


def test_evaluate_equals_a_direct_numpy_computation(sample_records, run_dir):
    result = evaluate.evaluate(_config(sample_records, run_dir))
    labels, probabilities = _direct(sample_records, run_dir)
    assert result["mode"] == "center_crop" and result["num_examples"] == len(labels)
    predicted = probabilities > 0.5
    assert result["accuracy"] == pytest.approx(np.mean(predicted == labels))
    p = np.clip(probabilities, 1e-7, 1 - 1e-7)
    loss = -np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p))
    assert result["loss"] == pytest.approx(loss, rel=1e-4)
    assert result["auc"] == pytest.approx(_pairwise_auc(labels, probabilities), abs=1e-6)
    assert 0.0 < result["auc"] < 1.0 and len(set(np.round(probabilities, 4))) > 3
    assert result["confusion_matrix"] == {
        "tn": int(np.sum(~predicted & (labels == 0))), "fp": int(np.sum(predicted & (labels == 0))),
        "fn": int(np.sum(~predicted & (labels == 1))), "tp": int(np.sum(predicted & (labels == 1)))}
    # Slices: every one covers every example; gender slices are the per-class recalls.
    for values in result["slices"].values():
        assert sum(v["count"] for v in values.values()) == len(labels)
    assert set(result["slices"]) == {"gender", "race", "age"}
    male = result["slices"]["gender"]["male"]
    assert male["accuracy"] == pytest.approx(np.mean(predicted[labels == 1]))
    assert set(result["slices"]["age"]) <= {"0-12", "13-19", "20-39", "40-59", "60+"}
    # The timing: median of the full batches after the warm-up one.
    full_batches = len(labels) // 8
    assert result["timed_steps"] == max(0, full_batches - 1)
    if result["timed_steps"]:
        assert result["seconds_per_step"] > 0
        assert result["test_time_per_step"] == result["seconds_per_step"]
    # Written out: the JSON next to TensorBoard summaries with the scalars and the image.
    written = json.load(open(result["output_json"]))
    assert written["accuracy"] == result["accuracy"]
    events = glob.glob(os.path.join(run_dir, "evaluate", "test", "events.out.tfevents.*"))
    tags = set()
    for path in events:
        for raw in tf.data.TFRecordDataset(path):
            event = tf.compat.v1.Event.FromString(raw.numpy())
            tags.update(v.tag for v in event.summary.value)
    assert {"evaluate/accuracy", "evaluate/auc", "evaluate/loss",
            "evaluate/confusion_matrix"} <= tags
    assert any(tag.startswith("evaluate/pr_curve_male") for tag in tags), tags  # PR plugin


def test_latest_checkpoint_gives_the_same_metrics_as_the_saved_model(sample_records, run_dir,
                                                                     tmp_path):
    best = evaluate.evaluate(_config(sample_records, run_dir, output_json=str(tmp_path / "a")))
    latest = evaluate.evaluate(_config(sample_records, run_dir, checkpoint="latest",
                                       output_json=str(tmp_path / "b")))
    assert latest["model_source"].endswith("ckpt-5")
    for key in ("accuracy", "loss", "auc"):
        assert latest[key] == pytest.approx(best[key], abs=1e-6)


def test_oversampling_takes_ten_views_and_differs_from_the_centre_crop(sample_records, run_dir,
                                                                       tmp_path):
    loaded = predict.load_model(workdir=run_dir)
    assert (loaded.image_size, loaded.cache_image_size) == (SIZE, CACHE)
    images, _ = next(iter(input_pipeline.create_dataset(
        sample_records, split="test", batch_size=4, image_size=CACHE, training=False,
        cache="none")))
    ten = predict.make_forward(loaded, oversample=True)(images).numpy()
    centre = predict.make_forward(loaded)(images).numpy()
    assert ten.shape == (4, 10) and centre.shape == (4, 1)
    np.testing.assert_allclose(ten[:, 4], centre[:, 0], rtol=1e-4, atol=1e-5)  # view 4: centre
    assert np.abs(ten - ten[:, :1]).max() > 1e-4  # the views are different images
    result = evaluate.evaluate(_config(sample_records, run_dir, oversample=True,
                                       summary_dir=str(tmp_path / "tb")))
    assert result["mode"] == "oversample"
    assert result["oversample"]["views"] == 10 and result["center_crop"]["views"] == 1
    assert result["loss"] == result["oversample"]["loss"] != result["center_crop"]["loss"]
    assert os.path.exists(tmp_path / "tb" / "metrics.json")


def test_mismatched_image_size_and_missing_split_are_clear_errors(sample_records, run_dir,
                                                                  tmp_path):
    with pytest.raises(predict.ModelError, match="image size mismatch.*40.*64"):
        evaluate.evaluate(_config(sample_records, run_dir, image_size=64))
    with pytest.raises(evaluate.EvaluationError, match="empty split.*split test"):
        evaluate.evaluate(_config(sample_records, run_dir, split="holdout"))
    with pytest.raises(evaluate.EvaluationError, match="empty split.*split train"):
        evaluate.evaluate(_config(sample_records, run_dir, folds=(4,)))
    with pytest.raises(evaluate.EvaluationError, match="no manifest.json"):
        evaluate.evaluate(_config(str(tmp_path), run_dir))
    legacy = make_run(tmp_path / "legacy", legacy=True)
    with pytest.raises(predict.ModelError, match="needs --model_name and --image_size"):
        evaluate.evaluate(_config(sample_records, "", model_path=os.path.join(
            legacy, BEST_MODEL)))
    bare = make_run(tmp_path / "bare")
    shutil.rmtree(os.path.join(bare, "checkpoints"))
    with pytest.raises(predict.ModelError, match="no checkpoint in"):
        predict.load_model(workdir=bare, checkpoint="latest")
    with pytest.raises(predict.ModelError, match="no checkpoint at"):
        predict.load_model(workdir=bare, checkpoint=str(tmp_path / "ckpt-1"))


def test_a_model_file_with_its_name_and_size(sample_records, run_dir, tmp_path):
    config = _config(sample_records, "", model_path=os.path.join(run_dir, BEST_MODEL),
                     model_name="levi_hassner", image_size=SIZE, cache_image_size=CACHE,
                     output_json=str(tmp_path / "m.json"))
    result = evaluate.evaluate(config)
    best = evaluate.evaluate(dataclasses.replace(config, model_path="", workdir=run_dir))
    assert result["accuracy"] == best["accuracy"] and os.path.exists(tmp_path / "m.json")
    with pytest.raises(predict.ModelError, match="image size mismatch"):
        evaluate.evaluate(dataclasses.replace(config, image_size=48))


def test_a_model_file_with_its_normalisation_needs_no_name(sample_records, run_dir, tmp_path):
    alone = evaluate.evaluate(_config(sample_records, "",
                                      model_path=os.path.join(run_dir, BEST_MODEL),
                                      output_json=str(tmp_path / "alone.json")))
    run = evaluate.evaluate(_config(sample_records, run_dir,
                                    output_json=str(tmp_path / "run.json")))
    assert (alone["accuracy"], alone["loss"]) == (run["accuracy"], run["loss"])
    # A file saved without its normalisation gives the same logits, told the architecture.
    legacy = make_run(tmp_path / "legacy", legacy=True)
    old = evaluate.evaluate(_config(sample_records, "",
                                    model_path=os.path.join(legacy, BEST_MODEL),
                                    model_name="levi_hassner", image_size=SIZE,
                                    output_json=str(tmp_path / "old.json")))
    assert (old["accuracy"], old["loss"]) == (run["accuracy"], run["loss"])


def test_adience_age_groups_and_utkface_bands():
    group = evaluate.adience_age_group
    assert [group(a) for a in ("(25, 32)", "(0, 2)", "(60, 100)", "(8, 23)", "(38, 42)",
                               "35", "3", "None", "")] == [
        "25-32", "0-2", "60-100", "15-20", "38-43", "38-43", "0-2", "unknown", "unknown"]
    assert [evaluate.utkface_band(a) for a in (0, 12, 13, 19, 20, 59, 60, 110)] == [
        "0-12", "0-12", "13-19", "13-19", "20-39", "40-59", "60+", "60+"]
    keys = evaluate.slice_keys("utkface", [1, 0], ["m/25_0_2_2017.jpg.chip.jpg", "bad.jpg"],
                               ["25", ""], [-1, -1])
    assert keys == {"gender": ["male", "female"], "race": ["asian", "unknown"],
                    "age": ["20-39", "unknown"]}
    keys = evaluate.slice_keys("adience", [1], ["x"], ["(48, 53)"], [3])
    assert keys == {"gender": ["male"], "fold": ["3"], "age": ["48-53"]}


def test_the_confusion_matrix_is_a_labelled_figure():
    from tfgender.evaluation import figures

    a = figures.confusion_matrix_image({"tn": 10, "fp": 0, "fn": 3, "tp": 7})
    b = figures.confusion_matrix_image({"tn": 10, "fp": 0, "fn": 30, "tp": 70})  # same shares
    assert a.dtype == np.uint8 and a.ndim == 4 and a.shape[0] == 1 and a.shape[-1] == 3
    assert a.shape == b.shape and (a != b).any()  # the counts are written in the cells
    assert (a < 100).all(-1).any() and (a > 240).all(-1).mean() > 0.2  # text on a light page


@pytest.mark.slow
def test_bin_evaluate_prints_a_table_and_writes_json(sample_records, run_dir, tmp_path):
    out = tmp_path / "metrics.json"
    proc = subprocess.run([EVALUATE, f"--workdir={run_dir}", f"--data_dir={sample_records}",
                           "--split=test", f"--output_json={out}", "--batch_size=8",
                           "--oversample"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "oversample" in proc.stdout and "confusion" in proc.stdout
    assert json.load(open(out))["oversample"]["views"] == 10
    proc = subprocess.run([EVALUATE, f"--workdir={run_dir}", f"--data_dir={sample_records}",
                           "--split=nope"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "empty split" in proc.stderr


def test_fairface_slices_and_fairness_figures(fairface_records, run_dir, tmp_path):
    result = evaluate.evaluate(_config(fairface_records, run_dir,
                                       output_json=str(tmp_path / "m.json")))
    slices = result["slices"]
    assert set(slices) == {"gender", "age", "race", "race_gender"}
    for values in slices.values():
        assert sum(v["count"] for v in values.values()) == result["num_examples"] == 60
    assert set(slices["race"]) <= {"White", "Black", "Latino_Hispanic", "East Asian",
                                   "Southeast Asian", "Indian", "Middle Eastern"}
    assert "unknown" not in slices["age"] and "unknown" not in slices["race"]
    for key in slices["race_gender"]:
        race, gender = key.rsplit(" ", 1)
        assert gender in ("male", "female") and race in slices["race"]
    # The race slices' counts add up to those of race x gender.
    for race, value in slices["race"].items():
        assert value["count"] == sum(v["count"] for k, v in slices["race_gender"].items()
                                     if k.rsplit(" ", 1)[0] == race)
    fairness = result["fairness"]
    races = {k: v["accuracy"] for k, v in slices["race"].items()}
    assert fairness["race_gap"]["gap"] == pytest.approx(max(races.values()) - min(races.values()))
    eligible = [v["accuracy"] for values in slices.values() for v in values.values()
                if v["count"] >= fairness["min_count"]]
    assert fairness["worst_slice"]["accuracy"] == min(eligible)
    assert json.load(open(tmp_path / "m.json"))["fairness"] == fairness


def test_fairness_summary_picks_the_worst_slice_and_the_race_gap():
    slices = {"gender": {"female": {"accuracy": 0.9, "count": 50},
                         "male": {"accuracy": 0.8, "count": 50}},
              "race": {"Black": {"accuracy": 0.7, "count": 30},
                       "White": {"accuracy": 0.95, "count": 40},
                       "Indian": {"accuracy": 0.1, "count": 5}}}
    summary = evaluate.fairness_summary(slices, min_count=20)
    assert summary["worst_slice"] == {"slice": "race", "value": "Black", "accuracy": 0.7,
                                      "count": 30}
    # The gap counts every race group, also one below the worst slice's minimum count.
    assert summary["race_gap"]["gap"] == pytest.approx(0.85)
    assert summary["race_gap"]["worst"]["race"] == "Indian"
    assert evaluate.fairness_summary({"gender": {}})["race_gap"] is None


def test_the_training_loop_and_bin_evaluate_report_the_same_metrics(sample_records, tmp_path):
    from tfgender.config import TrainConfig
    from tfgender.training import loop

    workdir = str(tmp_path / "run")
    config = TrainConfig(data_dir=sample_records, model="levi_hassner", image_size=SIZE,
                         cache_image_size=CACHE, batch_size=8, epochs=1, steps_per_epoch=4,
                         learning_rate=3e-3, precision="float32", jit_compile="false",
                         cache="none", summary_images=0, progress=False, eval_split="val",
                         crop_scale=(0.8, 1.0))
    trained = loop.train_and_evaluate(config, workdir)["final"]["eval"]  # its val pass
    result = evaluate.evaluate(_config(sample_records, workdir, split="val",
                                       checkpoint="latest"))
    for key in ("loss", "accuracy", "auc"):
        assert result[key] == pytest.approx(trained[key], abs=1e-6), key


def test_worst_examples_are_each_slice_values_highest_losses():
    labels = [1, 0, 1, 0, 1]
    probabilities = [0.9, 0.8, 0.2, 0.1, 0.6]  # losses .11, 1.61, 1.61, .11, .51
    keys = {"gender": ["male", "female", "male", "female", "male"],
            "age": ["20-29", "3-9", "20-29", "more than 70", "3-9"]}
    worst = evaluate.worst_examples(labels, probabilities, keys, per_value=2)
    assert worst["gender"] == {"female": [1, 3], "male": [2, 4]}
    assert list(worst["age"]) == ["3-9", "20-29", "more than 70"]  # in age order
    assert worst["age"] == {"3-9": [1, 4], "20-29": [2, 0], "more than 70": [3]}


def test_evaluate_draws_the_worst_faces_of_every_slice(fairface_records, run_dir, tmp_path):
    summary_dir = tmp_path / "evaluation"
    result = evaluate.evaluate(_config(fairface_records, run_dir, worst_faces=3,
                                       summary_dir=str(summary_dir)))
    names = {"gender", "age", "race", "race_gender"}
    assert sorted(result["worst_faces"]) == sorted(
        str(summary_dir / f"worst_faces_{name}.png") for name in names)
    heights = {}
    for name in names:
        image = tf.io.decode_png(tf.io.read_file(str(summary_dir / f"worst_faces_{name}.png")))
        assert image.shape[1] > 300 and float(tf.math.reduce_std(tf.cast(image, tf.float32))) > 10
        heights[name] = image.shape[0]
    # One row per slice value: race x gender has the most values, gender two.
    assert heights["race_gender"] > heights["race"] > heights["gender"]
    assert "worst_faces" not in json.dumps(result["fairness"])
    off = evaluate.evaluate(_config(fairface_records, run_dir, worst_faces=0,
                                    summary_dir=str(tmp_path / "off")))
    assert off["worst_faces"] == [] and not list((tmp_path / "off").glob("*.png"))


def test_worst_faces_refuse_a_changed_order(fairface_records):
    dataset = input_pipeline.create_dataset(fairface_records, split="test", batch_size=8,
                                            image_size=72, training=False, cache="none",
                                            deterministic=True, with_metadata=True)
    with pytest.raises(evaluate.EvaluationError, match="order changed between two passes"):
        evaluate._gather_images(dataset, {3}, ["another"] * 60)


def test_worst_faces_that_cannot_be_written_are_one_error(fairface_records, run_dir, tmp_path):
    blocked = tmp_path / "a_file"
    blocked.write_text("not a directory")
    with pytest.raises(evaluate.EvaluationError, match=f"cannot write {blocked}/worst_faces_"):
        evaluate.evaluate(_config(fairface_records, run_dir, summary_dir=str(blocked)))
