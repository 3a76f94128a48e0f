"""The learning-rate schedules' shapes and the optimizers that ``--optimizer`` builds."""

from __future__ import annotations

import math

import keras
import pytest
import tensorflow as tf

from tfgender.training import optim


def _rates(schedule, steps) -> list[float]:
    return [float(schedule(s)) for s in steps]


def test_warmup_is_linear_then_cosine_falls_to_zero_at_the_last_step():
    schedule = optim.StudySchedule(1e-3, "cosine", total_steps=110, warmup_steps=10)
    warm = _rates(schedule, range(10))
    assert warm == pytest.approx([1e-3 * (s + 1) / 10 for s in range(10)])
    # After the warm-up: the full rate, half of it half-way through the rest, zero at the end.
    assert _rates(schedule, [10, 60, 110, 500]) == pytest.approx([1e-3, 5e-4, 0.0, 0.0],
                                                                 abs=1e-9)
    middle = _rates(schedule, [35])[0]
    assert middle == pytest.approx(1e-3 * 0.5 * (1 + math.cos(math.pi / 4)))


def test_step_and_exponential_decay_every_period():
    step = optim.StudySchedule(1.0, "step", decay_steps=100, decay_rate=0.1)
    assert _rates(step, [0, 99, 100, 199, 200]) == pytest.approx([1, 1, 0.1, 0.1, 0.01])
    exponential = optim.StudySchedule(1.0, "exponential", decay_steps=100, decay_rate=0.1)
    assert _rates(exponential, [0, 50, 100]) == pytest.approx([1, 0.1 ** 0.5, 0.1])
    constant = optim.StudySchedule(0.5)
    assert _rates(constant, [0, 10 ** 6]) == pytest.approx([0.5, 0.5])


def test_the_fine_tune_rate_takes_over_at_its_step():
    schedule = optim.StudySchedule(1e-3, "cosine", total_steps=100, fine_tune_step=40,
                                   fine_tune_learning_rate=1e-5)
    before, at, after = _rates(schedule, [39, 40, 99])
    assert before > 1e-4 and at == after == pytest.approx(1e-5)
    # No fine-tune rate: the curve goes on unchanged through that step.
    plain = optim.StudySchedule(1e-3, "cosine", total_steps=100, fine_tune_step=40)
    assert _rates(plain, [40]) == pytest.approx(_rates(optim.StudySchedule(
        1e-3, "cosine", total_steps=100), [40]))


def test_a_schedule_survives_keras_serialisation():
    schedule = optim.StudySchedule(2e-3, "step", total_steps=50, warmup_steps=5, decay_steps=7,
                                   decay_rate=0.5, fine_tune_step=30,
                                   fine_tune_learning_rate=1e-4)
    again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(schedule))
    steps = [0, 4, 5, 12, 29, 30, 49]
    assert _rates(again, steps) == pytest.approx(_rates(schedule, steps))
    with pytest.raises(ValueError, match="unknown schedule 'linear'"):
        optim.StudySchedule(1e-3, "linear")


def test_each_optimizer_name_builds_its_keras_optimizer():
    adam = optim.create_optimizer("adam", 1e-3)
    assert type(adam) is keras.optimizers.Adam
    adamw = optim.create_optimizer("adamw", 1e-3, decoupled_weight_decay=0.05)
    assert type(adamw) is keras.optimizers.AdamW and adamw.weight_decay == pytest.approx(0.05)
    sgd = optim.create_optimizer("sgd", 1e-2, momentum=0.8)
    assert type(sgd) is keras.optimizers.SGD and sgd.momentum == pytest.approx(0.8)
    assert sgd.weight_decay is None  # no decoupled decay unless asked
    scaled = optim.create_optimizer("adam", 1e-3, loss_scale=True)
    assert isinstance(scaled, keras.optimizers.LossScaleOptimizer)
    with pytest.raises(ValueError, match="unknown optimizer 'rmsprop'"):
        optim.create_optimizer("rmsprop", 1e-3)


def test_a_variable_length_moves_the_cosine_end_and_saves_as_a_number():
    total = tf.Variable(110, dtype=tf.int64)
    schedule = optim.StudySchedule(1e-3, "cosine", total_steps=total, warmup_steps=10)
    assert _rates(schedule, [60, 110]) == pytest.approx([5e-4, 0.0], abs=1e-9)
    total.assign(60)  # what --train_minutes does once it has timed its epochs
    assert _rates(schedule, [35, 60]) == pytest.approx([5e-4, 0.0], abs=1e-9)
    assert schedule.get_config()["total_steps"] == 60
    assert optim.StudySchedule.from_config(schedule.get_config()).total_steps == 60


def test_averaged_weights_swap_in_the_moving_average_and_back():
    weights = [tf.Variable([1.0, 2.0]), tf.Variable(3.0)]
    optimizer = optim.create_optimizer("sgd", 0.5, momentum=0.0, ema_momentum=0.9)
    optimizer.build(weights)
    for _ in range(3):  # gradient 1 everywhere: each step lowers every weight by 0.5
        optimizer.apply([tf.ones([2]), tf.constant(1.0)], weights)
    # The first step's average is the weight itself (Keras), then 0.9 old + 0.1 new.
    expected = 0.9 * (0.9 * -0.5 + 0.1 * -1.0) + 0.1 * -1.5
    with optim.averaged_weights(optimizer, weights):
        assert weights[1].numpy() == pytest.approx(3.0 + expected)
        assert weights[0].numpy() == pytest.approx([1.0 + expected, 2.0 + expected])
    assert weights[1].numpy() == pytest.approx(1.5)  # its own value again
    plain = optim.create_optimizer("adam", 1e-3)
    plain.build(weights)
    with optim.averaged_weights(plain, weights):  # no average: nothing moves
        assert weights[1].numpy() == pytest.approx(1.5)
