"""Tests of experiments/epoch_study.py, experiments/profile.py and bin/epoch_time_study."""

from __future__ import annotations

import json
import os
import subprocess

import keras
import pytest

from tfgender.config import EpochStudyConfig
from tfgender.experiments import epoch_study, profile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STUDY = os.path.join(REPO, "bin", "epoch_time_study")
ROW_KEYS = {"device_kind", "device_name", "device", "model", "image_size", "batch_size",
            "precision", "jit_compile", "input", "steps", "seconds_per_step", "images_per_second",
            "epoch_images", "epoch_seconds", "epoch", "forward_flops_per_image", "peak_gflops",
            "training_gflops", "fraction_of_peak", "fraction_of_float32_peak",
            "speedup_vs_published"}



def _tiny(tmp_path, **kw) -> EpochStudyConfig:
    base = dict(output_dir=str(tmp_path), models=("levi_hassner",), steps=2, warmup_steps=1,
                batch_size=2, image_size=64, precision="float32", jit_compile="false",
                devices=("CPU",), matmul_size=128)
    base.update(kw)
    return EpochStudyConfig(**base)


def test_adience_epoch_is_80_percent_of_12194_images():
    assert epoch_study.adience_train_images() == 9755
    assert epoch_study.adience_train_images(100, 0.5) == 50
    assert epoch_study.adience_train_images(100, 0.57) == 57  # 0.57 * 100 is 56.99999...


def test_extrapolation_divides_the_epoch_by_the_throughput():
    assert epoch_study.extrapolate_epoch_seconds(100.0) == pytest.approx(97.55)
    assert epoch_study.extrapolate_epoch_seconds(8.0, num_images=64) == pytest.approx(8.0)
    # The study's CPU row is 26m47s per 9,755 images: about 6.07 images per second.
    assert epoch_study.extrapolate_epoch_seconds(9755 / 1607) == pytest.approx(1607)
    with pytest.raises(ValueError, match="positive"):
        epoch_study.extrapolate_epoch_seconds(0.0)


@pytest.mark.parametrize("seconds, text", [(1607, "26m47s"), (428, "7m8s"), (3723, "1h2m3s"),
                                           (41.26, "41.3s"), (59.96, "60.0s"), (60.4, "1m0s")])
def test_durations_read_like_the_study(seconds, text):
    assert epoch_study.format_duration(seconds) == text


def test_training_flops_are_three_forward_passes_against_the_peak():
    achieved, fraction = epoch_study.training_flops_fraction(1e9, 10.0, 60.0)
    assert achieved == pytest.approx(30.0) and fraction == pytest.approx(0.5)
    assert epoch_study.training_flops_fraction(None, 10.0, 60.0) == (None, None)
    assert epoch_study.training_flops_fraction(1e9, 10.0, None) == (None, None)


def test_forward_flops_of_a_dense_layer_are_counted():
    model = keras.Sequential([keras.Input((2, 2, 3)), keras.layers.Flatten(),
                              keras.layers.Dense(5, use_bias=False)])
    flops = epoch_study.forward_flops_per_image(model, 2)
    assert flops == pytest.approx(2 * 12 * 5)  # one (1, 12) x (12, 5) matmul


def test_tiny_study_writes_markdown_and_json(tmp_path, monkeypatch):
    monkeypatch.setattr(epoch_study, "ADIENCE_IMAGES", 10)  # a "full epoch" of 8 images
    report = epoch_study.run_study(_tiny(tmp_path, full_epoch=True))
    saved = json.load(open(tmp_path / epoch_study.JSON_FILE))
    assert set(saved) == {"adience", "published", "measured", "matmul_peak_gflops",
                          "environment", "config"}
    assert saved["adience"] == {"images": 10, "train_fraction": 0.8, "train_images": 8}
    (row,) = saved["measured"]
    assert ROW_KEYS <= set(row)
    assert (row["model"], row["image_size"], row["batch_size"]) == ("levi_hassner", 64, 2)
    assert row["precision"] == "float32" and row["jit_compile"] is False
    assert row["images_per_second"] == pytest.approx(2 * 2 / (2 * row["seconds_per_step"]))
    assert row["epoch_seconds"] == pytest.approx(8 / row["images_per_second"])
    assert row["forward_flops_per_image"] > 1e6 and 0 < row["fraction_of_peak"]
    assert row["fraction_of_float32_peak"] == row["fraction_of_peak"]  # float32 is its own
    assert row["speedup_vs_published"] == pytest.approx(1607 / row["epoch_seconds"])
    assert row["full_epoch"]["steps"] == 4 and row["full_epoch"]["images"] == 8
    assert set(saved["matmul_peak_gflops"]["/device:CPU:0"]) == {"float32", "bfloat16"}
    assert report["measured"][0]["epoch"] == row["epoch"]
    markdown = (tmp_path / epoch_study.MARKDOWN_FILE).read_text()
    assert "| study | 2-core laptop CPU | as published" in markdown
    assert "26m47s" in markdown and "7m8s" in markdown
    assert f"| levi_hassner | 64 | 2 | float32 | off | {row['images_per_second']:.1f} |" \
        in markdown
    assert "Extrapolation check" in markdown


def test_study_can_feed_converted_records(tmp_path, sample_records, monkeypatch):
    monkeypatch.setattr(epoch_study, "ADIENCE_IMAGES", 10)
    report = epoch_study.run_study(_tiny(tmp_path, data_dir=sample_records, full_epoch=True))
    (row,) = report["measured"]
    assert row["input"] == "tfrecords" and row["full_epoch"]["steps"] == 4
    assert "| tfgender (tfrecords) |" in (tmp_path / epoch_study.MARKDOWN_FILE).read_text()


def test_study_rejects_unknown_models_and_devices(tmp_path):
    with pytest.raises(ValueError, match="unknown models"):
        epoch_study.run_study(_tiny(tmp_path, models=("vgg",)))
    with pytest.raises(ValueError, match="no CPU/GPU device"):
        epoch_study.run_study(_tiny(tmp_path, devices=("TPU",)))
    assert not os.listdir(tmp_path)


def test_profile_writes_a_trace_per_model_and_device(tmp_path):
    (entry,) = profile.profile_training(_tiny(tmp_path, steps=2))
    assert entry["model"] == "levi_hassner" and len(entry["step_seconds"]) == 2
    steps = entry["step_time"]
    if steps is not None:  # xprof found both marked steps and split their time
        assert steps["steps"] == 2 and 0 < steps["host_compute_ms"] <= steps["step_ms"]
    traces = [f for _, _, files in os.walk(entry["logdir"]) for f in files]
    assert any(f.endswith(".xplane.pb") for f in traces)
    analysis = entry["input_pipeline"]
    if analysis is not None:  # None only without the profile plugin (xprof)
        assert 0 < analysis["input_ms"] < analysis["traced_ms"]
        assert analysis["slowest_input_op"].startswith("Iterator::")


def test_bin_epoch_time_study_reports_a_bad_model(tmp_path):
    proc = subprocess.run([STUDY, "--models=vgg", f"--output_dir={tmp_path}"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "unknown models" in proc.stderr
    help_text = subprocess.run([STUDY, "--help"], capture_output=True, text=True, timeout=300)
    assert "9,755 training" in help_text.stdout and "--full_epoch" in help_text.stdout


def test_the_study_says_what_auto_precision_chose_and_why(tmp_path):
    from tfgender.training import precision

    epoch_study.run_study(_tiny(tmp_path, precision="auto"))
    (row,) = json.load(open(tmp_path / epoch_study.JSON_FILE))["measured"]
    want = precision.explain_precision("auto", "levi_hassner", "cpu", image_size=64,
                                       batch_size=2)
    assert (row["precision"], row["precision_why"]) == want
    markdown = (tmp_path / epoch_study.MARKDOWN_FILE).read_text()
    assert "What `--precision=auto` chose:" in markdown
    assert f"levi_hassner at 64 px, batch 2: {want[0]} ({want[1]})" in markdown


def test_a_bfloat16_row_shows_its_share_of_both_peaks():
    row = {"input": "in-memory", "device": "CPU", "model": "mobilenet_v2", "image_size": 224,
           "batch_size": 64, "precision": "mixed_bfloat16_matmul", "jit_compile": False,
           "images_per_second": 40.0, "epoch": "4m4s", "speedup_vs_published": 6.6,
           "training_gflops": 80.0, "fraction_of_peak": 0.2, "fraction_of_float32_peak": 0.4}
    report = {"adience": {"images": 10, "train_fraction": 0.8, "train_images": 8},
              "published": [], "measured": [row],
              "matmul_peak_gflops": {"CPU": {"float32": 200.0, "bfloat16": 400.0}}}
    markdown = epoch_study.format_markdown(report)
    assert "| 80.0 | 20.0% (40.0%) |" in markdown
    assert "| 80.0 | 20.0% |" in epoch_study.format_markdown(
        dict(report, measured=[dict(row, precision="float32", fraction_of_float32_peak=0.2)]))
