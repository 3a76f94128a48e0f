"""Tests of experiments/sweep.py and bin/sweep: search spaces, budgets, resumable sweeps."""

from __future__ import annotations

import glob
import json
import math
import os
import subprocess

import pytest
import tensorflow as tf
from tensorboard.plugins.hparams import metadata as hp_metadata

from tfgender import files
from tfgender.config import TrainConfig
from tfgender.experiments import sweep

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SWEEP = os.path.join(REPO, "bin", "sweep")
SMOKE = os.path.join(REPO, "configs", "smoke.flags")



def _tiny(data_dir, **kw) -> TrainConfig:
    base = dict(data_dir=data_dir, model="levi_hassner", image_size=40, cache_image_size=48,
                batch_size=4, epochs=1, steps_per_epoch=1, precision="float32",
                jit_compile="false", cache="memory", dropout=(0.1,),
                summary_images=0, early_stopping_metric="loss", progress=False)
    base.update(kw)
    return TrainConfig(**base)


def test_grid_is_the_product_in_flag_order_with_typed_values():
    space = sweep.parse_space(["learning_rate=1e-3,1e-4", "batch_size=32;64",
                               "freeze_base=true,false"])
    trials = sweep.make_trials(space)
    assert [tuple(t.overrides.values()) for t in trials] == [
        (1e-3, 32, True), (1e-3, 32, False), (1e-3, 64, True), (1e-3, 64, False),
        (1e-4, 32, True), (1e-4, 32, False), (1e-4, 64, True), (1e-4, 64, False)]
    assert isinstance(trials[0].overrides["batch_size"], int)
    ids = [t.trial_id for t in trials]
    assert ids[0].startswith("trial_000_") and ids[7].startswith("trial_007_")
    assert len(set(ids)) == 8 and ids == [t.trial_id for t in sweep.make_trials(space)]
    # The budget keeps the first trials.
    assert [t.trial_id for t in sweep.make_trials(space, max_trials=3)] == ids[:3]


def test_list_flags_take_semicolons_between_values_and_slashes_or_commas_within():
    space = sweep.parse_space(["head_units=512/512/512;1024,512,256", "dropout=0.5/0.5/0"])
    assert space[0].values == ((512, 512, 512), (1024, 512, 256))
    assert space[1].values == ((0.5, 0.5, 0.0),)
    config = sweep.trial_config(TrainConfig(data_dir="d"), sweep.make_trials(space)[1].overrides)
    assert config.head_units == (1024, 512, 256) and config.dropout == (0.5, 0.5, 0.0)
    assert config.learning_rate == TrainConfig(data_dir="d").learning_rate


def test_random_search_is_reproducible_in_range_and_extended_by_the_budget():
    space = sweep.parse_space(["learning_rate=loguniform:1e-5:1e-2", "batch_size=uniform:16:128",
                               "optimizer=adam,sgd"])
    five = sweep.make_trials(space, "random", max_trials=5, seed=7)
    assert [t.overrides for t in five] == \
        [t.overrides for t in sweep.make_trials(space, "random", max_trials=5, seed=7)]
    assert [t.trial_id for t in sweep.make_trials(space, "random", 3, seed=7)] == \
        [t.trial_id for t in five[:3]]
    other = sweep.make_trials(space, "random", max_trials=5, seed=8)
    assert [t.overrides for t in other] != [t.overrides for t in five]
    for t in five + other:
        assert 1e-5 <= t.overrides["learning_rate"] <= 1e-2
        assert isinstance(t.overrides["batch_size"], int)
        assert 16 <= t.overrides["batch_size"] <= 128
        assert t.overrides["optimizer"] in ("adam", "sgd")
    # Log-uniform: the draws spread over the decades, not bunched near the top.
    many = sweep.make_trials(space[:1], "random", max_trials=200, seed=0)
    logs = [math.log10(t.overrides["learning_rate"]) for t in many]
    assert sum(v < -3.5 for v in logs) > 60


def test_random_choices_stop_when_every_combination_is_drawn():
    space = sweep.parse_space(["optimizer=adam,sgd", "batch_size=16,32"])
    trials = sweep.make_trials(space, "random", max_trials=10, seed=0)
    assert len(trials) == 4 and len({t.trial_id[10:] for t in trials}) == 4


@pytest.mark.parametrize("spec, message", [
    ("units=512", "unknown training flag 'units'; did you mean head_units"),
    ("lerning_rate=1e-3", "unknown training flag 'lerning_rate'"),
    ("batch_size=a,64", "'a' is not a valid int"),
    ("optimizer=adam,rmsprop", "'rmsprop' is not one of adam, adamw, sgd"),
    ("freeze_base=maybe", "not a valid bool"),
    ("learning_rate=loguniform:0:1", "0 < LOW < HIGH"),
    ("optimizer=uniform:0:1", "needs a numeric flag"),
    ("learning_rate", "expected NAME=VALUES"),
    ("learning_rate=", "no values"),
    ("batch_size=8,8", "repeated"),
    ("batch_size=0,64", "0 is below the minimum 1"),  # the flag's own bounds
    ("head_units=512/wide", "give int values separated by commas"),
])
def test_bad_specs_are_clear_errors(spec, message):
    with pytest.raises(sweep.SweepError, match=message):
        sweep.parse_space([spec])


def test_bad_searches_and_budgets_are_clear_errors():
    with pytest.raises(sweep.SweepError, match="given twice"):
        sweep.parse_space(["batch_size=8", "batch_size=16"])
    with pytest.raises(sweep.SweepError, match="no --param"):
        sweep.parse_space([])
    ranged = sweep.parse_space(["learning_rate=uniform:0.1:0.2"])
    with pytest.raises(sweep.SweepError, match="grid search needs explicit values"):
        sweep.make_trials(ranged, "grid")
    with pytest.raises(sweep.SweepError, match="--max_trials"):
        sweep.make_trials(ranged, "random")


def test_a_weights_file_that_cannot_load_stops_the_sweep_before_its_trials(tmp_path):
    base = TrainConfig(data_dir="d", model="mobilenet_v2", image_size=96)
    space = sweep.parse_space([f"weights={tmp_path / 'a.h5'},{tmp_path / 'missing.h5'}"])
    (tmp_path / "a.h5").write_bytes(b"\x89HDF\r\n\x1a\n")
    with pytest.raises(sweep.SweepError, match="--weights=.*missing.h5: mobilenet_v2 weights "
                       "file not found"):
        sweep.run_sweep(base, str(tmp_path / "sweep"), space)
    assert not (tmp_path / "sweep").exists()  # no trial started, nothing written


def test_a_trial_whose_flags_its_model_does_not_take_stops_the_sweep_first(tmp_path):
    # bin/sweep checks each trial, not the base: --param=model=... may give the head flags a
    # model that takes them.
    base = TrainConfig(data_dir="d", model="mobilenet_v2", head_units=(16,), dropout=(0.1,))
    space = sweep.parse_space(["model=mobilenet_v2,levi_hassner"])
    with pytest.raises(sweep.SweepError, match=r"trial .*levi_hassner.*: --head_units=16: "
                       "levi_hassner does not take it"):
        sweep.run_sweep(base, str(tmp_path / "sweep"), space)
    assert not (tmp_path / "sweep").exists()


def test_bin_sweeps_parser_leaves_to_the_trials_what_a_param_settles(train_flag_values):
    from tfgender.flags.train import _check_sweep_base, define_sweep_flags

    if "param" not in train_flag_values:
        define_sweep_flags()
    # The base's three default dropout rates do not fit one head layer, but every trial
    # gives the head three layers; an unswept mismatch is still refused. (absl's parse
    # alone: this process's bin/train flags check the base as bin/train does.)
    train_flag_values(["sweep", "--data_dir=d", "--workdir=w", "--head_units=512",
                       "--param=head_units=512/256/128;256/128/64"])
    _check_sweep_base()
    train_flag_values.unparse_flags()
    train_flag_values(["sweep", "--data_dir=d", "--workdir=w", "--head_units=512",
                       "--param=learning_rate=1e-3,1e-4"])
    with pytest.raises(ValueError, match="--dropout=0.5,0.5,0.5: mobilenet_v2 has 1 hidden"):
        _check_sweep_base()


def _hparams_of(trial_dir: str) -> dict:
    """The HParams session values written at the root of a run, from its event files."""
    values = {}
    for path in glob.glob(os.path.join(trial_dir, "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                plugin = value.metadata.plugin_data
                if plugin.plugin_name == hp_metadata.PLUGIN_NAME and \
                        value.tag == hp_metadata.SESSION_START_INFO_TAG:
                    info = hp_metadata.parse_session_start_info_plugin_data(plugin.content)
                    values = {k: getattr(v, v.WhichOneof("kind"))
                              for k, v in info.hparams.items()}
                    values["_group"] = info.group_name
    return values


def _declared_hparams(trial_dir: str) -> list[str]:
    """The hyperparameter names of the experiment a run declares, in order."""
    for path in glob.glob(os.path.join(trial_dir, "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                if value.tag == hp_metadata.EXPERIMENT_TAG:
                    experiment = hp_metadata.parse_experiment_plugin_data(
                        value.metadata.plugin_data.content)
                    return [info.name for info in experiment.hparam_infos]
    return []


def test_two_trials_write_hparams_and_a_sorted_table_then_resume(sample_records, tmp_path,
                                                                  capsys):
    sweep_dir = tmp_path / "sweep"
    space = sweep.parse_space(["learning_rate=1e-2,1e-4"])
    results = sweep.run_sweep(_tiny(sample_records), str(sweep_dir), space)

    ids = [t.trial_id for t in sweep.make_trials(space)]
    assert sorted(r["trial_id"] for r in results["trials"]) == sorted(ids)
    for r in results["trials"]:
        trial_dir = sweep_dir / r["trial_id"]
        assert r["status"] == "finished" and r["steps"] == 1
        hparams = _hparams_of(str(trial_dir))
        assert hparams["learning_rate"] == pytest.approx(r["overrides"]["learning_rate"])
        assert hparams["_group"] == r["trial_id"] and hparams["batch_size"] == 4
        # The swept one first (TensorBoard checks the first columns), then the key few.
        assert _declared_hparams(str(trial_dir)) == [
            "learning_rate", "model", "image_size", "batch_size", "schedule", "optimizer",
            "precision", "epochs"]
        assert hparams["precision"] == "float32" and "dropout" not in hparams
        history = json.load(open(trial_dir / files.HISTORY_FILE))
        assert r["best_value"] == min(h["eval"]["loss"] for h in history)
    # Best (lowest validation loss) first, in the table as in the results.
    losses = [r["best_value"] for r in results["trials"]]
    assert losses == sorted(losses)
    table = (sweep_dir / sweep.TABLE).read_text()
    assert table.strip() == results["table"]
    rows = [line for line in table.splitlines() if line.startswith("| 1 ") or
            line.startswith("| 2 ")]
    assert [row.split(" | ")[1] for row in rows] == [r["trial_id"] for r in results["trials"]]
    assert "| learning_rate | best val loss |" in table.splitlines()[0]
    assert f"| {results['trials'][0]['best_value']:.4f} |" in rows[0]
    on_disk = json.load(open(sweep_dir / sweep.RESULTS))
    assert [r["trial_id"] for r in on_disk["trials"]] == [r["trial_id"] for r in results["trials"]]
    assert on_disk["space"] == [{"name": "learning_rate", "values": [1e-2, 1e-4]}]
    assert results["table"] in capsys.readouterr().out

    # Rerunning trains nothing; an interrupted trial resumes from its own checkpoints.
    stamps = {i: os.stat(sweep_dir / i / files.SUMMARY_FILE).st_mtime_ns for i in ids}
    os.remove(sweep_dir / ids[1] / files.SUMMARY_FILE)
    again = sweep.run_sweep(_tiny(sample_records), str(sweep_dir), space)
    out = capsys.readouterr().out
    assert f"{ids[0]} (1/2) already finished" in out and f"{ids[1]} (2/2) resuming" in out
    assert "Resumed from step 1" in out
    assert os.stat(sweep_dir / ids[0] / files.SUMMARY_FILE).st_mtime_ns == stamps[ids[0]]
    assert [r["best_value"] for r in again["trials"]] == losses

    # A different space or base config in the same directory is refused.
    with pytest.raises(sweep.SweepError, match="records a sweep with space"):
        sweep.run_sweep(_tiny(sample_records), str(sweep_dir),
                        sweep.parse_space(["learning_rate=1e-3"]))
    with pytest.raises(sweep.SweepError, match=r"other training flags \(batch_size differ"):
        sweep.run_sweep(_tiny(sample_records, batch_size=8), str(sweep_dir), space)


def test_bin_sweep_names_an_unknown_flag(sample_records, tmp_path):
    proc = subprocess.run([SWEEP, f"--flagfile={SMOKE}", f"--data_dir={sample_records}",
                           f"--workdir={tmp_path / 'sweep'}", "--param=units=512;256"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "error: --param units: unknown training flag 'units'; did you mean head_units?" \
        in proc.stderr
    assert not os.path.exists(tmp_path / "sweep")


@pytest.mark.slow
def test_bin_sweep_runs_a_grid_with_train_flags_and_records_a_failed_trial(sample_records,
                                                                           tmp_path):
    sweep_dir = tmp_path / "sweep"
    proc = subprocess.run([SWEEP, f"--flagfile={SMOKE}", f"--data_dir={sample_records}",
                           f"--workdir={sweep_dir}", "--param=batch_size=4,100000",
                           "--param=dropout=0.1/0.2", "--image_size=40",
                           "--cache_image_size=48", "--epochs=1", "--steps_per_epoch=1",
                           "--summary_images=0"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.load(open(sweep_dir / sweep.RESULTS))
    assert [r["status"] for r in results["trials"]] == ["finished", "failed"]
    assert [r["overrides"]["batch_size"] for r in results["trials"]] == [4, 100000]
    assert "not one full batch" in results["trials"][1]["error"]
    assert results["metric"] == "auc" and results["base_config"]["model"] == "levi_hassner"
    finished = results["trials"][0]
    summary = json.load(open(sweep_dir / finished["trial_id"] / files.SUMMARY_FILE))
    assert summary["config"]["dropout"] == [0.1, 0.2] and summary["config"]["batch_size"] == 4
    assert _hparams_of(str(sweep_dir / finished["trial_id"]))["dropout"] == "0.1,0.2"
    table = (sweep_dir / sweep.TABLE).read_text()
    assert "| batch_size | dropout | best val auc |" in table
    assert f"| 1 | {finished['trial_id']} | 4 | 0.1/0.2 |" in table and "| failed |" in table
    assert f"tensorboard --logdir {sweep_dir}" in proc.stdout
    assert "failed trials (rerun to retry)" in proc.stderr
