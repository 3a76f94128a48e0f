"""Tests of training/loop.py and bin/train: smoke runs, learnability, resume, precision, errors."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfgender import devices, models
from tfgender.config import TrainConfig
from tfgender.evaluation import predict
from tfgender.experiments import profile
from tfgender.input import augment
from tfgender.training import actions, loop, optim, precision
from tfgender.training import state as state_lib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN = os.path.join(REPO, "bin", "train")
SMOKE = os.path.join(REPO, "configs", "smoke.flags")



def _tiny(data_dir, **kw) -> TrainConfig:
    base = dict(data_dir=data_dir, model="levi_hassner", image_size=40, cache_image_size=48,
                batch_size=8, epochs=1, steps_per_epoch=2, precision="float32",
                jit_compile="false", cache="memory", summary_images=0, progress=False)
    base.update(kw)
    return TrainConfig(**base)


def _run_cli(*args, timeout=600):
    return subprocess.run([TRAIN, *args], capture_output=True, text=True, timeout=timeout)


# MobileNetV2 trains through the flagfiles in test_recipes.py (its fine-tune recipe), so only
# the other two start bin/train here: each start traces a whole training step (ResNet50: 25 s).
@pytest.mark.slow
@pytest.mark.parametrize("model", ["levi_hassner", "resnet50"])
def test_two_steps_of_each_architecture_through_bin_train(sample_records, tmp_path, model):
    workdir = tmp_path / model
    proc = _run_cli(f"--flagfile={SMOKE}", f"--data_dir={sample_records}",
                    f"--workdir={workdir}", f"--model={model}", "--epochs=1", "--dropout=0.1",
                    *(["--head_units=16"] if model != "levi_hassner" else []))
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.load(open(workdir / "summary.json"))
    assert summary["steps"] == 2 and summary["model"] == model
    assert set(summary["final"]["eval"]) == {"loss", "accuracy", "auc"}
    # The file takes [0, 255] pixels: its normalisation is inside.
    assert models.takes_pixels(keras.models.load_model(workdir / "best_model.keras",
                                                       compile=False))
    assert tf.train.latest_checkpoint(str(workdir / "checkpoints"))
    assert "view with: tensorboard --logdir" in proc.stdout
    console = proc.stdout + proc.stderr  # quiet: TensorFlow's own INFO and start-up lines
    for noise in ("Sharding callback duration", "cuInit", "oneDNN custom operations"):
        assert noise not in console, console[-3000:]


def test_loss_falls_and_accuracy_climbs_on_a_separable_problem(toy_records, tmp_path):
    config = _tiny(toy_records, epochs=4, steps_per_epoch=0, batch_size=16, learning_rate=1e-3,
                   max_rotation=0.0, brightness=(), image_size=40, cache_image_size=40)
    summary = loop.train_and_evaluate(config, str(tmp_path / "run"))
    history = json.load(open(tmp_path / "run" / "history.json"))
    assert history[-1]["train"]["loss"] < history[0]["train"]["loss"]
    assert summary["final"]["eval"]["accuracy"] >= 0.9, history


@pytest.mark.parametrize("policy", devices.POLICIES)
def test_each_precision_policy_trains(sample_records, tmp_path, policy):
    summary = loop.train_and_evaluate(_tiny(sample_records, precision=policy),
                                       str(tmp_path / policy))
    assert summary["precision"] == policy
    assert keras.mixed_precision.global_policy().name == devices.keras_policy(policy)
    rewrite = tf.config.optimizer.get_experimental_options().get(
        "auto_mixed_precision_onednn_bfloat16", False)
    assert rewrite == (policy == "onednn_bfloat16")
    assert summary["steps"] == 2
    assert np.isfinite(summary["final"]["train"]["loss"])
    if policy == "mixed_bfloat16_matmul":  # the saved model computes as the run did
        saved = keras.models.load_model(tmp_path / policy / "best_model.keras", compile=False)
        convs = {layer.dtype_policy.name for layer in models.walk_layers(saved)
                 if isinstance(layer, keras.layers.Conv2D)}
        assert convs == {"mixed_bfloat16"}, convs
        loaded = predict.load_model(workdir=str(tmp_path / policy), checkpoint="latest")
        assert {layer.dtype_policy.name for layer in loaded.model.layers
                if isinstance(layer, keras.layers.Conv2D)} == {"mixed_bfloat16"}


def test_auto_precision_picks_the_onednn_rewrite_for_resnet50_on_bf16_cpus(monkeypatch):
    monkeypatch.setattr(devices, "cpu_has_bf16", lambda: True)
    assert precision.resolve_precision("auto", "resnet50", "cpu") == "onednn_bfloat16"
    assert precision.resolve_precision("auto", "mobilenet_v2", "cpu") == "float32"
    assert precision.resolve_precision("auto", "resnet50", "gpu") == "mixed_float16"
    monkeypatch.setattr(devices, "cpu_has_bf16", lambda: False)
    assert precision.resolve_precision("auto", "resnet50", "cpu") == "float32"
    with pytest.raises(ValueError, match="precision"):
        devices.apply("bfloat16")


def test_auto_precision_and_jit_follow_the_measured_cpu_defaults(sample_records):
    setup = loop.resolve_setup(_tiny(sample_records, precision="auto", jit_compile="auto",
                                      model="mobilenet_v2", image_size=64))
    assert setup.policy == "float32" and setup.jit_compile is False


def test_two_phase_fine_tuning_from_another_run(sample_records, tmp_path):
    # Levi & Hassner with batch normalisation: a frozen base must also keep its statistics
    # (test_recipes.py fine-tunes MobileNetV2's keras.applications base).
    common = dict(model="levi_hassner", conv_norm="batch", image_size=40, cache_image_size=48,
                  dropout=(0.0, 0.0))
    first = _tiny(sample_records, **common)
    loop.train_and_evaluate(first, str(tmp_path / "pretrain"))
    second = _tiny(sample_records, epochs=2, freeze_base_epochs=1,
                   fine_tune_learning_rate=1e-5, init_checkpoint=str(tmp_path / "pretrain"),
                   **common)
    summary = loop.train_and_evaluate(second, str(tmp_path / "finetune"))
    history = json.load(open(tmp_path / "finetune" / "history.json"))
    assert summary["steps"] == 4
    assert history[1]["learning_rate"] == pytest.approx(1e-5)
    assert history[0]["learning_rate"] == pytest.approx(first.learning_rate)

    def base(checkpoint):  # the convolutions and their batch norms, statistics included
        loaded = predict.load_model(workdir=str(tmp_path / checkpoint.split("/")[0]),
                                    checkpoint=str(tmp_path / checkpoint))
        return [w.numpy() for layer in models.base_layers(loaded.model) for w in layer.weights]

    pretrained = base("pretrain/checkpoints/ckpt-2")
    assert len(pretrained) == 3 + 3 * 4  # 3 kernels; gamma, beta, moving mean and variance
    frozen, unfrozen = base("finetune/checkpoints/ckpt-2"), base("finetune/checkpoints/ckpt-4")
    assert all(np.array_equal(a, b) for a, b in zip(frozen, pretrained, strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(unfrozen, pretrained, strict=True))

    # --base_batch_norm=frozen: once the base trains, its kernels move but its batch norms
    # (scale, offset and statistics) stay the pretrained run's, as in inference.
    frozen_norm = dataclasses.replace(second, base_batch_norm="frozen")
    loop.train_and_evaluate(frozen_norm, str(tmp_path / "finetune_bn"))
    trained = base("finetune_bn/checkpoints/ckpt-4")
    kernels = [0, 5, 10]  # each convolution's kernel, then its batch norm's four
    for i, (a, b) in enumerate(zip(trained, pretrained, strict=True)):
        assert np.array_equal(a, b) != (i in kernels), i


@pytest.mark.parametrize("change, message", [
    (dict(model="vgg"), "unknown model 'vgg'"),
    (dict(image_size=20), "too small for levi_hassner: the minimum is"),
    (dict(eval_split="nonexistent"), "nonexistent"),
    (dict(batch_size=100000), "exceeds"),
    (dict(contrast=(0.5,)), r"--contrast=0.5: give two numbers low,high with 0 <= low <= high"),
    (dict(saturation=(1.5, 0.5)), "--saturation=1.5,0.5: give two numbers"),
    (dict(crop_scale=(0.8, 1.2)), r"--crop_scale=0.8,1.2: .*0 < low <= high, high <= 1"),
    (dict(erasing_scale=(0.0, 0.3)), r"--erasing_scale=0.0,0.3: .*0 < low <= high, high <= 1"),
    (dict(random_erasing=0.5, erasing_scale=()), "--random_erasing needs --erasing_scale"),
    (dict(dropout=(0.2,) * 4), r"--dropout=0.2,0.2,0.2,0.2: levi_hassner has 2 hidden layers"),
    (dict(model="mobilenet_v2", head_units=(512,), dropout=(0.2, 0.2)),
     r"mobilenet_v2 has 1 hidden layers \(--head_units=512\)"),
    (dict(model="mobilenet_v2", dropout=(1.5,)), r"--dropout=1.5: rates are fractions"),
    (dict(model="mobilenet_v2", activation="relux"), "--activation=relux: not one of relu, "),
    # A flag the model does not take is refused, not recorded as if it had done something.
    (dict(activation="gelu"), r"--activation=gelu: levi_hassner does not take it \(only "
                              r"resnet50 and mobilenet_v2 do\)"),
    (dict(head_units=(16,)), "--head_units=16: levi_hassner does not take it"),
    (dict(model="resnet50", width_multiplier=0.5), "--width_multiplier=0.5: resnet50 does not"),
    (dict(model="mobilenet_v2", conv_norm="batch"), r"--conv_norm=batch: mobilenet_v2 does not "
                                                    r"take it \(only levi_hassner does\)"),
    (dict(model="resnet50", kernel_init="he"), "--kernel_init=he: resnet50 does not take it"),
    (dict(model="mobilenet_v2", head_units=(0,), dropout=(0.1,)),
     "--head_units=0: widths are at least 1"),
    (dict(train_folds=(-1,)), "--train_folds=-1: folds are 0 or more"),
])
def test_bad_configuration_fails_at_start(sample_records, change, message):
    with pytest.raises(loop.TrainingError, match=message):
        loop.resolve_setup(dataclasses.replace(_tiny(sample_records), **change))


@pytest.mark.parametrize("change, message", [
    (dict(weights="imagenet"), "--weights=imagenet: levi_hassner has no ImageNet weights"),
    (dict(model="mobilenet_v2", weights="imagenet", image_size=96),
     r"--weights=imagenet: mobilenet_v2's ImageNet weights .* put "
     r"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5 or "
     r"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_96_no_top.h5 in .*keras_home/models"),
    (dict(model="mobilenet_v2", weights="no/such.h5"), "weights file not found: no/such.h5"),
])
def test_weights_that_cannot_load_fail_at_start(sample_records, tmp_path, monkeypatch, change,
                                                message):
    # Before the data is read or the precision calibrated: a missing file costs a second.
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    with pytest.raises(loop.TrainingError, match=message):
        loop.resolve_setup(dataclasses.replace(_tiny(sample_records), **change))


def test_zero_dropout_past_the_last_hidden_layer_is_no_error(sample_records):
    loop.resolve_setup(dataclasses.replace(_tiny(sample_records), dropout=(0.0, 0.0, 0.0)))


def test_an_empty_erasing_scale_with_erasing_off_is_no_error(sample_records):
    config = dataclasses.replace(_tiny(sample_records), erasing_scale=())
    setup = loop.resolve_setup(config)
    assert augment.make_augmentation(config, setup).erasing_probability == 0


def test_flagfile_with_unknown_flag_is_refused(sample_records, tmp_path):
    bad = tmp_path / "bad.flags"
    bad.write_text(f"--flagfile={SMOKE}\n--no_such_flag=3\n")
    proc = _run_cli(f"--flagfile={bad}", f"--data_dir={sample_records}",
                    f"--workdir={tmp_path / 'w'}")
    assert proc.returncode != 0
    assert "no_such_flag" in proc.stderr


def test_a_workdir_that_is_a_file_or_another_models_run_is_a_clear_error(sample_records,
                                                                         tmp_path):
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(loop.TrainingError, match="is a file, not a directory"):
        loop.train_and_evaluate(_tiny(sample_records), str(tmp_path / "file"))
    # A folder that cannot be made (under a file; read-only is the same OSError, but the suite
    # may run as root, whom permissions do not stop).
    with pytest.raises(loop.TrainingError, match=r"--workdir=.*file/run: cannot write there: "
                       "Not a directory"):
        loop.train_and_evaluate(_tiny(sample_records), str(tmp_path / "file" / "run"))
    workdir = str(tmp_path / "run")
    loop.train_and_evaluate(_tiny(sample_records), workdir)
    other = _tiny(sample_records, model="mobilenet_v2", head_units=(8,), dropout=(0.0,))
    facts = open(os.path.join(workdir, "run_config.json")).read()
    with pytest.raises(loop.TrainingError, match="holds a run that does not fit "
                       "--model=mobilenet_v2 --image_size=40"):
        loop.train_and_evaluate(other, workdir)
    # The refused start leaves the facts of the run the folder holds as they were.
    assert open(os.path.join(workdir, "run_config.json")).read() == facts


def test_a_full_disk_while_saving_a_checkpoint_is_one_error_and_leaves_no_partial(
        sample_records, tmp_path, monkeypatch):
    import errno

    def full_disk(manager, checkpoint_number=None, **kw):
        os.makedirs(os.path.join(manager.directory, f"ckpt-{checkpoint_number}_temp"))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(tf.train.CheckpointManager, "save", full_disk)
    workdir = tmp_path / "run"
    with pytest.raises(loop.TrainingError, match="no space left on the device while saving "
                       "the checkpoint of step 2 to .*rerun the same command to resume"):
        loop.train_and_evaluate(_tiny(sample_records), str(workdir))
    assert not [p for p in os.listdir(workdir / "checkpoints") if "_temp" in p]


def test_the_profile_window_marks_each_step_for_xprof(sample_records, tmp_path):
    import glob as glob_lib

    workdir = tmp_path / "run"
    loop.train_and_evaluate(_tiny(sample_records, steps_per_epoch=4, profile_steps=(1, 3)),
                             str(workdir))
    planes = glob_lib.glob(str(workdir / "profile" / "plugins" / "profile" / "*" / "*.xplane.pb"))
    assert len(planes) == 1
    # xprof's Overview page finds both marked steps (a step run inside a TensorFlow while
    # loop would have none: "No step marker observed") and their time.
    steps = profile.step_time_breakdown(str(workdir / "profile"))
    assert steps is not None, "xprof (installed with the toolkit) did not read the trace"
    assert steps["steps"] == 2, steps
    assert steps["step_ms"] > 0 and steps["host_compute_ms"] > 0, steps
    summary = json.load(open(workdir / "summary.json"))
    assert summary["steps"] == 4  # the profiled steps are training steps like the others


def test_init_checkpoint_of_another_network_is_refused_in_one_line(tmp_path):
    from tfgender import models

    tf.train.Checkpoint(model=models.build_model("levi_hassner", 40)).save(str(tmp_path / "ckpt"))
    other = models.build_model("levi_hassner", 40, conv_norm="batch")
    with pytest.raises(loop.TrainingError, match=r"--init_checkpoint=.*ckpt-1 holds another "
                       "network than this run builds: give the --model, --conv_norm"):
        state_lib.restore_init_checkpoint(other, str(tmp_path))
    same = models.build_model("levi_hassner", 40)
    state_lib.restore_init_checkpoint(same, str(tmp_path))


def test_a_resume_that_adds_or_drops_budget_or_average_names_the_flag(sample_records, tmp_path):
    config = _tiny(sample_records, epochs=1)
    loop.train_and_evaluate(config, str(tmp_path / "plain"))
    for change, flag in ((dict(train_minutes=5.0), "--train_minutes"),
                         (dict(ema_momentum=0.9), "--ema_momentum")):
        with pytest.raises(loop.TrainingError, match=f"trained without {flag}, which this "
                           f"one adds \\({flag}=.*\\): resume it with its own flags"):
            loop.train_and_evaluate(dataclasses.replace(config, epochs=2, **change),
                                     str(tmp_path / "plain"))
    # A run with a weight average (below: what it evaluates and keeps) resumes only with it.
    averaged = dataclasses.replace(config, steps_per_epoch=4, ema_momentum=0.5,
                                   early_stopping_metric="loss")
    assert loop.train_and_evaluate(averaged, str(tmp_path / "ema"))["steps"] == 4
    with pytest.raises(loop.TrainingError, match="trained with --ema_momentum, which this one "
                       "drops"):
        loop.train_and_evaluate(dataclasses.replace(averaged, epochs=2, ema_momentum=0.0),
                                 str(tmp_path / "ema"))
    with pytest.raises(loop.TrainingError, match="--ema_momentum=0.5, not 0.99"):
        loop.train_and_evaluate(dataclasses.replace(averaged, epochs=2, ema_momentum=0.99),
                                 str(tmp_path / "ema"))
    _check_the_average_is_what_is_evaluated_and_kept(tmp_path / "ema")
    # A latest checkpoint that cannot be read is named, not a traceback (nor blamed on the data).
    index = tf.train.latest_checkpoint(str(tmp_path / "plain" / "checkpoints")) + ".index"
    with open(index, "r+b") as f:
        f.truncate(10)
    with pytest.raises(loop.TrainingError, match=r"--workdir=.*plain: .*ckpt-\d+ is not a "
                       "readable checkpoint"):
        loop.train_and_evaluate(dataclasses.replace(config, epochs=2), str(tmp_path / "plain"))


def _check_the_average_is_what_is_evaluated_and_kept(run):
    raw = models.build_model("levi_hassner", 40)
    optimizer = optim.create_optimizer("adam", optim.StudySchedule(1e-3), ema_momentum=0.5)
    optimizer.build(raw.trainable_variables)
    tf.train.Checkpoint(model=raw, optimizer=optimizer).restore(tf.train.latest_checkpoint(
        str(run / "checkpoints"))).expect_partial()
    best = [w.numpy() for w in keras.models.load_model(run / "best_model.keras").trainable_weights]
    own = [w.numpy() for w in raw.trainable_weights]
    # The checkpoint keeps the raw weights (an exact resume) and the optimizer's averages;
    # the best model is the average.
    assert not all(np.allclose(a, b) for a, b in zip(own, best, strict=True))
    with optim.averaged_weights(optimizer, raw.trainable_variables):
        for average, kept in zip(raw.trainable_weights, best, strict=True):
            np.testing.assert_allclose(average.numpy(), kept, rtol=1e-6, atol=1e-7)
    # --init_checkpoint from such a run (a fine-tune) starts from the average too.
    start = models.build_model("levi_hassner", 40)
    state_lib.restore_init_checkpoint(start, str(run))
    for initial, kept in zip(start.trainable_weights, best, strict=True):
        np.testing.assert_allclose(initial.numpy(), kept, rtol=1e-6, atol=1e-7)
    with pytest.raises(loop.TrainingError, match="is not a readable checkpoint"):
        state_lib.restore_init_checkpoint(start, str(run / "nothing"))


def test_the_minutes_budget_plans_whole_epochs_from_the_last_ones_time():
    config = _tiny("unused", epochs=20, train_minutes=5.0)
    strategy = tf.distribute.get_strategy()
    two = [{"seconds": 50.0, "eval_seconds": 10.0}] * 2  # 2 minutes spent, 1 an epoch
    assert actions.plan_steps(config, 7, two, strategy) == 5 * 7  # 3 more fit
    assert actions.plan_steps(dataclasses.replace(config, epochs=4), 7, two, strategy) == 4 * 7
    assert actions.plan_steps(dataclasses.replace(config, train_minutes=1.0), 7, two,
                             strategy) == 2 * 7  # over budget already: stop at what ran
    # A resumed epoch timed only its rest: 25 s for 2 of 7 steps is 87.5 s an epoch, 97.5
    # with evaluation; 95 s spent, so 2 more fit in the 205 s left (as 25 s would say 5).
    resumed = [two[0], {"seconds": 25.0, "eval_seconds": 10.0, "timed_steps": 2}]
    assert actions.plan_steps(config, 7, resumed, strategy) == 4 * 7


def test_a_budgeted_run_ends_its_schedule_at_the_plan_and_resumes_to_it(sample_records, tmp_path,
                                                                       monkeypatch):
    config = _tiny(sample_records, epochs=5, train_minutes=1.0, schedule="cosine")
    planned = []
    # Called with the history so far: its length is the epochs run when the plan was made.
    monkeypatch.setattr(actions, "plan_steps", lambda *args: planned.append(len(args[2])) or 6)
    summary = loop.train_and_evaluate(config, str(tmp_path / "run"))
    history = json.load(open(tmp_path / "run" / "history.json"))
    assert planned == [2]  # decided once, after epoch 2
    assert summary["steps"] == summary["planned_steps"] == 6 and len(history) == 3
    unplanned = optim.StudySchedule(1e-3, "cosine", total_steps=5 * 2)
    assert history[0]["learning_rate"] == pytest.approx(float(unplanned(1)))
    # The last epoch's last step is on the planned curve (it ends at step 6, not 10).
    assert history[2]["learning_rate"] == pytest.approx(float(
        optim.StudySchedule(1e-3, "cosine", total_steps=6)(5)))
    again = loop.train_and_evaluate(config, str(tmp_path / "run"))  # the plan is checkpointed
    assert again["steps"] == 6 and again["resumed_from_step"] == 6 and planned == [2]


def test_several_steps_per_call_train_exactly_as_one_per_call(sample_records, tmp_path):
    # Epochs of 4 steps in calls of 3 (3 + 1), against one step per call: the same weights.
    common = dict(epochs=2, steps_per_epoch=4, deterministic=True)
    one = loop.train_and_evaluate(_tiny(sample_records, **common), str(tmp_path / "one"))
    three = loop.train_and_evaluate(_tiny(sample_records, steps_per_execution=3, **common),
                                     str(tmp_path / "three"))
    assert three["steps"] == one["steps"] == 8
    assert three["weights_sha256"] == one["weights_sha256"]


def test_early_stopping_ends_the_run_and_a_rerun_stays_stopped(sample_records, tmp_path):
    # A learning rate of 0: the eval loss never improves after epoch 1, so with a patience of
    # 2 the run stops after epoch 3 of 6.
    config = _tiny(sample_records, epochs=6, learning_rate=0.0, early_stopping_patience=2,
                   early_stopping_metric="loss")
    summary = loop.train_and_evaluate(config, str(tmp_path / "run"))
    assert summary["epochs_run"] == 3 and summary["steps"] == 6
    assert summary["best"]["value"] == summary["final"]["eval"]["loss"]
    again = loop.train_and_evaluate(config, str(tmp_path / "run"))
    assert again["steps"] == 6 and again["epochs_run"] == 3
    longer = loop.train_and_evaluate(dataclasses.replace(config, early_stopping_patience=3),
                                      str(tmp_path / "run"))
    assert longer["steps"] == 8 and longer["epochs_run"] == 4
