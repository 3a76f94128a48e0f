"""The training step: a non-finite step changes nothing, under every precision policy."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from tfgender import devices
from tfgender.config import TrainConfig
from tfgender.training import loop
from tfgender.training import state as state_lib
from tfgender.training import steps as train_steps


def _values(variables) -> dict:
    return {v.path: np.array(v.numpy()) for v in variables}


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16", "mixed_float16"])
def test_a_non_finite_step_leaves_every_variable_bit_identical(sample_records, monkeypatch,
                                                               policy):
    # Levi & Hassner with batch normalisation (the FairFace recipe's network) for its moving
    # statistics; dropout and weight decay so that every kind of variable a step may move is
    # there. (A small network: the rule is the step's, not the architecture's.)
    config = TrainConfig(data_dir=sample_records, model="levi_hassner", conv_norm="batch",
                         image_size=36, cache_image_size=40,
                         dropout=(0.3, 0.3), batch_size=8, epochs=1, steps_per_epoch=2,
                         precision=policy, jit_compile="false", cache="none", progress=False,
                         weight_decay=1e-4)
    setup = loop.resolve_setup(config)
    devices.apply(setup.policy)
    strategy = tf.distribute.get_strategy()
    model, optimizer, _, state = state_lib.build(config, setup, strategy)
    images = tf.random.uniform((8, 40, 40, 3), maxval=256, dtype=tf.int32, seed=1)
    batch = (tf.cast(images, tf.uint8), tf.constant([0, 1] * 4, tf.int32))
    iterator = iter(tf.data.Dataset.from_tensors(batch).repeat())
    # One trace: the loss is multiplied by 1, then by NaN.
    poison = tf.Variable(1.0)
    original = train_steps._per_example_loss
    monkeypatch.setattr(train_steps, "_per_example_loss",
                        lambda *args, **kw: original(*args, **kw) * poison)
    step, metrics = train_steps.make_train_step(model, optimizer, strategy, config, setup, state)
    for _ in range(40):  # float16's first steps overflow until the loss scale has come down
        step(iterator, tf.constant(1, tf.int64))
        if int(optimizer.iterations):
            break
    assert int(optimizer.iterations) == 1  # one real update: the slots hold something

    scale = getattr(optimizer, "dynamic_scale", None)  # mixed_float16's LossScaleOptimizer
    loss_scale = [] if scale is None else [scale, optimizer.step_counter]
    kept = [v for v in optimizer.variables if all(v is not s for s in loss_scale)]
    before_model, before_optimizer = _values(model.variables), _values(kept)
    before_scale = None if scale is None else float(scale.numpy())

    skipped, steps = int(state["non_finite_total"]), int(state["step"])
    for metric in metrics.values():
        metric.reset_state()
    poison.assign(float("nan"))
    step(iterator, tf.constant(2, tf.int64))

    assert int(state["non_finite_total"]) == skipped + 2 and int(state["step"]) == steps + 2
    after_model, after_optimizer = _values(model.variables), _values(kept)
    for path, value in before_model.items():  # weights, batch-norm statistics, seed states
        np.testing.assert_array_equal(after_model[path], value, err_msg=path)
    for path, value in before_optimizer.items():  # slots and iterations
        np.testing.assert_array_equal(after_optimizer[path], value, err_msg=path)
    assert int(metrics["loss"].count) == 0  # the step's metrics saw nothing
    if scale is not None:  # the loss scale's one job: it halves on each skipped step
        assert float(scale.numpy()) == before_scale / 4


def test_an_epoch_without_a_finite_step_is_never_kept_and_says_nan(sample_records, tmp_path,
                                                                   monkeypatch, capsys):
    original = train_steps._per_example_loss
    monkeypatch.setattr(train_steps, "_per_example_loss",
                        lambda *args, **kw: original(*args, **kw) * float("nan"))
    config = TrainConfig(data_dir=sample_records, model="levi_hassner", image_size=40,
                         cache_image_size=48, batch_size=8, epochs=1, steps_per_epoch=3,
                         precision="float32", jit_compile="false", cache="none",
                         summary_images=0, progress=False, max_non_finite_steps=0)
    workdir = tmp_path / "run"
    summary = loop.train_and_evaluate(config, str(workdir))
    assert summary["non_finite_steps"] == 3
    assert np.isnan(summary["final"]["train"]["loss"])
    assert "train loss nan acc nan" in capsys.readouterr().out
    assert not (workdir / "best_model.keras").exists()  # never the best
    assert tf.train.latest_checkpoint(str(workdir / "checkpoints")) is None  # nor "last good"

    stopping = TrainConfig(**{**config.__dict__, "max_non_finite_steps": 2, "epochs": 2})
    with pytest.raises(Exception, match="non-finite for 2 consecutive steps.*skipped.*lower "
                       "--learning_rate or check the data") as caught:
        loop.train_and_evaluate(stopping, str(tmp_path / "stop"))
    assert "--precision=float32" not in str(caught.value)  # it is float32 already
