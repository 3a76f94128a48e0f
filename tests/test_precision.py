"""--precision=auto by measuring: the faster candidate is kept, cached, and reused untimed."""

from __future__ import annotations

import json

import pytest

from tfgender import precision


def test_a_calibration_picks_the_faster_candidate_and_caches_it(tmp_path):
    path = str(tmp_path / "precision.json")
    timed = []

    def timer(option):
        timed.append(option)
        return {"float32": 0.30, "onednn_bfloat16": 0.12, "mixed_bfloat16": 0.20}[option]

    choice, entry = precision.choose_by_measuring("resnet50", 224, 64, device="cpu",
                                                  has_bf16=True, timer=timer, path=path)
    assert choice == "onednn_bfloat16" and sorted(timed) == sorted(
        ["float32", "onednn_bfloat16", "mixed_bfloat16"])
    assert entry["seconds_per_step"]["float32"] == 0.30
    table = json.load(open(path))
    (key, saved), = table.items()
    assert saved["choice"] == "onednn_bfloat16"
    assert "resnet50 | 224 px | batch 64" in key and precision.cpu_model() in key

    def no_timer(option):
        raise AssertionError("a cached choice must not be timed")

    again, _ = precision.choose_by_measuring("resnet50", 224, 64, device="cpu", has_bf16=True,
                                             timer=no_timer, path=path)
    assert again == "onednn_bfloat16"
    other, _ = precision.choose_by_measuring(  # another size is another calibration
        "resnet50", 112, 64, device="cpu", has_bf16=True,
        timer=lambda o: {"float32": 0.1}.get(o, 0.2), path=path)
    assert other == "float32" and len(json.load(open(path))) == 2


def test_candidates_that_cannot_win_are_not_timed(tmp_path):
    def no_timer(option):
        raise AssertionError("nothing to time on a CPU without bf16 units")

    choice, entry = precision.choose_by_measuring("mobilenet_v2", 224, 64, device="cpu",
                                                  has_bf16=False, timer=no_timer,
                                                  path=str(tmp_path / "p.json"))
    assert choice == "float32" and entry["seconds_per_step"] == {}
    assert precision.candidates("gpu", False) == ("mixed_float16", "float32")


def test_a_candidate_that_fails_is_left_out(tmp_path):
    def timer(option):
        if option == "mixed_bfloat16":
            raise RuntimeError("exit 1: no kernel")
        return {"float32": 0.2, "onednn_bfloat16": 0.3}[option]

    choice, entry = precision.choose_by_measuring("levi_hassner", 80, 64, device="cpu",
                                                  has_bf16=True, timer=timer,
                                                  path=str(tmp_path / "p.json"))
    assert choice == "float32" and set(entry["seconds_per_step"]) == {"float32",
                                                                      "onednn_bfloat16"}


def test_the_cache_path_is_overridable(monkeypatch, tmp_path):
    monkeypatch.setenv("TFGENDER_PRECISION_CACHE", str(tmp_path / "x.json"))
    assert precision.calibration_path() == str(tmp_path / "x.json")
    monkeypatch.delenv("TFGENDER_PRECISION_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert precision.calibration_path() == str(tmp_path / "tfgender" / "precision.json")


@pytest.mark.parametrize("tf_config, measures", [
    ("", True), ('{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"index": 0}}', False)])
def test_several_workers_take_the_table(monkeypatch, tf_config, measures):
    monkeypatch.setenv("TFGENDER_PRECISION_CALIBRATION", "on")
    monkeypatch.setenv("TF_CONFIG", tf_config)
    assert precision._may_measure() is measures  # noqa: SLF001


@pytest.mark.slow
def test_the_subprocess_timer_times_a_real_step():
    seconds = precision.time_step_in_subprocess("levi_hassner", 40, 8, "float32", steps=2)
    assert 0 < seconds < 60
    with pytest.raises(RuntimeError, match="exit"):
        precision.time_step_in_subprocess("no_such_model", 40, 8, "float32", steps=1)


def test_explain_precision_gives_the_choice_and_its_reason(monkeypatch):
    assert precision.explain_precision("float32", "resnet50") == ("float32", "as requested")
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: True)
    choice, why = precision.explain_precision("auto", "resnet50", "cpu")
    assert choice == precision.resolve_precision("auto", "resnet50", "cpu") == "onednn_bfloat16"
    assert "bf16" in why
    with pytest.raises(ValueError, match="unknown precision 'fp8'"):
        precision.explain_precision("fp8", "resnet50")
