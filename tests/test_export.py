"""Tests of evaluation/export.py and bin/export: each format gives bin/predict's probabilities."""

from __future__ import annotations

import os
import subprocess

import keras
import numpy as np
import pytest
import tensorflow as tf
from test_evaluate import CACHE, make_run

from tfgender import models
from tfgender.config import ExportConfig
from tfgender.evaluation import export, predict, tflite

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> str:
    return make_run(tmp_path_factory.mktemp("run") / "run", seed=1)


@pytest.fixture(scope="module")
def faces(fairface_records) -> list[str]:
    raw = os.path.join(os.path.dirname(fairface_records), "raw", "train")
    return sorted(os.path.join(raw, name) for name in os.listdir(raw))[:12]


@pytest.fixture(scope="module")
def expected(run_dir, faces) -> np.ndarray:
    rows, skipped = predict.predict_images(predict.load_model(workdir=run_dir), faces)
    assert not skipped
    probabilities = np.array([r["probability_male"] for r in rows])
    assert np.std(probabilities) > 0.05  # informative: the model tells these faces apart
    return probabilities


def test_the_saved_model_takes_image_bytes_and_gives_predicts_answers(run_dir, faces, expected,
                                                                      tmp_path):
    path = export.export(ExportConfig(workdir=run_dir, output=str(tmp_path / "saved")))
    serving = tf.saved_model.load(path).signatures["serving_default"]
    images = tf.constant([open(f, "rb").read() for f in faces])
    got = serving(image_bytes=images)["probability_male"].numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_tflite_float_and_int8_give_predicts_answers(run_dir, faces, expected, fairface_records,
                                                     tmp_path):
    images = np.stack([predict.decode_square(f, CACHE) for f in faces])
    path = export.export(ExportConfig(workdir=run_dir, output=str(tmp_path / "m.tflite"),
                                      format="tflite"))
    model = tflite.TFLiteModel(path)
    assert model.image_size == CACHE
    np.testing.assert_allclose(model(images), expected, atol=1e-4)
    np.testing.assert_allclose(model(images[:1]), expected[:1], atol=1e-4)  # batch of one

    # A decision threshold baked in: the logit minus the offset, 0.5 still the decision point.
    path = export.export(ExportConfig(workdir=run_dir, output=str(tmp_path / "t.tflite"),
                                      format="tflite", logit_offset=0.7))
    shifted = 1 / (1 + np.exp(-(np.log(expected / (1 - expected)) - 0.7)))
    np.testing.assert_allclose(tflite.TFLiteModel(path)(images), shifted, atol=1e-4)

    path = export.export(ExportConfig(workdir=run_dir, output=str(tmp_path / "m8.tflite"),
                                      format="tflite_int8", data_dir=fairface_records,
                                      calibration_images=40))
    assert os.path.getsize(path) < 0.5 * os.path.getsize(tmp_path / "m.tflite")
    difference = np.abs(tflite.TFLiteModel(path)(images) - expected)
    # The stated tolerance of int8 post-training quantisation on this steep random model.
    assert difference.mean() < 0.05 and difference.max() < 0.15, difference


def test_bin_export_refuses_in_one_line(run_dir, tmp_path):
    # One program start shows the exit status and the console; the other refusals are the
    # same ExportError/ModelError that cli/export.py prints as that line.
    (tmp_path / "taken").mkdir()
    proc = subprocess.run([os.path.join(REPO, "bin", "export"), f"--workdir={run_dir}",
                           f"--output={tmp_path / 'taken'}"],
                          capture_output=True, text=True, timeout=300)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1 and "exists" in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr
    for config, words in (
            (ExportConfig(workdir=run_dir, output=str(tmp_path / "x.tflite"),
                          format="tflite_int8"), "needs --data_dir"),
            (ExportConfig(workdir=str(tmp_path / "none"), output=str(tmp_path / "y")),
             str(tmp_path / "none"))):
        with pytest.raises((export.ExportError, predict.ModelError), match=words):
            export.export(config)


def test_a_model_with_bfloat16_matmul_layers_exports_to_every_float_format(faces, tmp_path):
    run = make_run(tmp_path / "run", seed=2, precision_name="mixed_bfloat16_matmul")
    loaded = predict.load_model(workdir=run)
    assert {layer.dtype_policy.name for layer in models.walk_layers(loaded.model)
            if isinstance(layer, keras.layers.Conv2D)} == {"mixed_bfloat16"}
    rows, _ = predict.predict_images(loaded, faces)
    expected = np.array([r["probability_male"] for r in rows])
    saved = export.export(ExportConfig(workdir=run, output=str(tmp_path / "saved")))
    serving = tf.saved_model.load(saved).signatures["serving_default"]
    got = serving(image_bytes=tf.constant([open(f, "rb").read() for f in faces]))
    np.testing.assert_allclose(got["probability_male"].numpy(), expected, atol=1e-5)
    path = export.export(ExportConfig(workdir=run, output=str(tmp_path / "m.tflite"),
                                      format="tflite"))
    images = np.stack([predict.decode_square(f, CACHE) for f in faces])
    np.testing.assert_allclose(tflite.TFLiteModel(path)(images), expected, atol=2e-2)


def test_bundle_ships_the_measured_file_that_predict_and_evaluate_use_without_a_run(
        run_dir, faces, expected, fairface_records, tmp_path, monkeypatch):
    from tfgender.config import EvaluateConfig, PredictConfig
    from tfgender.evaluation import evaluate

    out = tmp_path / "bundled"
    config = ExportConfig(workdir=run_dir, output=str(out), format="bundle",
                          data_dir=fairface_records, calibration_images=40)
    path = export.export(config)
    card = tflite.read_card(str(out / (tflite.BUNDLED_NAME + ".json")))
    measured = card["measured"]
    assert set(measured) == {"tflite", "tflite_int8"} and card["split"] == "test"
    assert measured["tflite"]["metrics"]["num_examples"] == 60
    # int8 is shipped exactly when it stays within the tolerance of float (and the size).
    loss = measured["tflite"]["metrics"]["accuracy"] - measured["tflite_int8"]["metrics"][
        "accuracy"]
    assert card["format"] == ("tflite_int8" if loss <= 0.005 else "tflite")
    assert os.path.getsize(path) == measured[card["format"]]["bytes"]
    assert card["model"] == "levi_hassner" and card["steps"] == 5
    assert "race" in measured["tflite"]["metrics"]["slices"]  # FairFace's slices, for the card

    # With no --workdir and no --model_path, predict and evaluate take the shipped file.
    monkeypatch.setattr(tflite, "BUNDLED_MODEL", path)
    rows = predict.predict(PredictConfig(inputs=tuple(faces), output=str(tmp_path / "p.csv")))
    got = np.array([r["probability_male"] for r in rows])
    tolerance = 1e-4 if card["format"] == "tflite" else 0.15
    np.testing.assert_allclose(got, expected, atol=tolerance)
    result = evaluate.evaluate(EvaluateConfig(data_dir=fairface_records, worst_faces=0))
    assert result["model_source"] == path and result["model"] == "levi_hassner"
    assert result["accuracy"] == pytest.approx(measured[card["format"]]["metrics"]["accuracy"])
    with pytest.raises(predict.ModelError, match="--oversample needs a run's model"):
        evaluate.evaluate(EvaluateConfig(data_dir=fairface_records, oversample=True))
    monkeypatch.setattr(tflite, "BUNDLED_MODEL", str(tmp_path / "none.tflite"))
    with pytest.raises(predict.ModelError, match="ships no bundled model"):
        predict.load_model()


def test_a_threshold_chosen_on_one_split_is_the_best_there_and_not_on_the_reported_one(
        run_dir, fairface_records, tmp_path):
    from tfgender.evaluation import metrics

    chosen = export.choose_logit_offset(predict.load_model(workdir=run_dir), fairface_records,
                                        "test")
    assert chosen["accuracy"] >= chosen["accuracy_at_zero"]
    with pytest.raises(export.ExportError, match="the split the card reports"):
        export.export(ExportConfig(workdir=run_dir, output=str(tmp_path / "b"), format="bundle",
                                   data_dir=fairface_records, bundle_threshold_split="test"))
    # The rule itself: the best threshold, nearest 0 among ties.
    assert metrics.best_logit_offset([1, 1, 0, 0], [2, 0.5, 0.2, -1]) == {
        "offset": pytest.approx(0.35), "accuracy": 1.0, "accuracy_at_zero": 0.75}
    assert metrics.best_logit_offset([1, 1, 0, 0], [2, -0.5, -0.2, -1])["offset"] == 0.0


def test_the_bundled_model_classifies_real_faces_of_its_recipes_test_split(shared_data):
    # The file the package ships, on 400 FairFace faces of the recipe's test split (its
    # conversion's split, recomputed from the CSV), decoded as bin/predict decodes them.
    from tfgender.data import readers, splits

    path = tflite.bundled_model()
    if not path:
        pytest.skip(f"no bundled model at {tflite.BUNDLED_MODEL}")
    card = tflite.read_card()
    frame = readers.read_source("fairface", shared_data / "fairface").frame
    frame = splits.assign_folds_or_split(frame, source="fairface", num_folds=0,
                                         val_fraction=0.1, test_fraction=0.1)
    test = frame[frame["split"] == "test"].head(400)
    model = tflite.TFLiteModel(path)
    images = np.stack([predict.decode_square(str(shared_data / "fairface" / p),
                                             model.image_size) for p in test["path"]])
    accuracy = np.mean((model(images) > 0.5) == test["label"].to_numpy().astype(bool))
    print(f"bundled model on 400 FairFace test faces: {accuracy:.3f} "
          f"(its card: {card['measured'][card['format']]['metrics']['accuracy']:.3f})")
    assert accuracy >= 0.88
