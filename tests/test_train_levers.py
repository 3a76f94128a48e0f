"""The recipe levers of the training step (label smoothing, mixup) and time to accuracy."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from tfgender.evaluation import time_to_accuracy
from tfgender.training import steps as train_steps


def test_label_smoothing_moves_targets_towards_one_half():
    labels = tf.constant([0, 1])
    logits = tf.constant([[0.3], [-1.2]])
    smoothed = train_steps._per_example_loss(labels, logits, label_smoothing=0.2).numpy()
    # As keras.losses.BinaryCrossentropy(label_smoothing=0.2): targets 0.1 and 0.9.
    expected = tf.keras.losses.BinaryCrossentropy(
        from_logits=True, label_smoothing=0.2, reduction="none")(
        tf.constant([[0.0], [1.0]]), logits).numpy()
    np.testing.assert_allclose(smoothed, expected, rtol=1e-5)
    plain = train_steps._per_example_loss(labels, logits).numpy()
    assert not np.allclose(plain, smoothed)


def test_mixup_blends_each_example_with_the_reversed_batch():
    rng = np.random.RandomState(0)
    images = tf.constant(rng.uniform(0, 1, (6, 4, 4, 3)).astype(np.float32))
    labels = tf.constant([1, 0, 1, 1, 0, 0])
    seed = tf.constant([3, 4], tf.int32)
    # Not under XLA: stateless_gamma has no XLA kernel, so resolve_setup refuses the pair.
    mix = tf.function(train_steps.mix_batch)
    mixed, targets = mix(images, labels, 0.4, seed)
    mixed, targets = mixed.numpy(), targets.numpy()
    reverse = images.numpy()[::-1]
    flat = lambda a: a.reshape(len(a), -1)  # noqa: E731
    # Recover each example's weight from its pixels: x = lam * a + (1 - lam) * b.
    a, b, m = flat(images.numpy()), flat(reverse), flat(mixed)
    lam = np.sum((m - b) * (a - b), axis=1) / np.sum((a - b) ** 2, axis=1)
    np.testing.assert_allclose(m, lam[:, None] * a + (1 - lam[:, None]) * b, atol=1e-5)
    assert np.all(lam >= 0.5 - 1e-6) and np.all(lam <= 1 + 1e-6)  # own label the larger part
    y = labels.numpy().astype(np.float32)
    np.testing.assert_allclose(targets, lam * y + (1 - lam) * y[::-1], atol=1e-5)
    # Stateless: the same seed mixes the same way; another seed does not.
    again, _ = mix(images, labels, 0.4, seed)
    other, _ = mix(images, labels, 0.4, tf.constant([5, 6], tf.int32))
    np.testing.assert_array_equal(again.numpy(), mixed)
    assert not np.allclose(other.numpy(), mixed)


def test_time_to_accuracy_accumulates_minutes_across_epochs(tmp_path):
    history = [{"epoch": 1, "seconds": 60.0, "eval_seconds": 6.0,
                "eval": {"accuracy": 0.6, "auc": 0.65, "loss": 0.7}},
               {"epoch": 2, "seconds": 120.0, "eval_seconds": 6.0,
                "eval": {"accuracy": 0.7, "auc": 0.75, "loss": 0.6}},
               {"epoch": 3, "seconds": 90.0,  # a resumed run's history has no eval time
                "eval": {"accuracy": 0.72, "auc": 0.8, "loss": 0.55}}]
    rows = time_to_accuracy.points(history)
    assert [r["train_minutes"] for r in rows] == pytest.approx([1.0, 3.0, 4.5])
    assert [r["wall_minutes"] for r in rows] == pytest.approx([1.1, 3.2, 4.7])
    written = time_to_accuracy.write_report(str(tmp_path), history, title="run")
    table = open(written["table"]).read()
    assert "| 2 | 3.00 | 3.20 | 0.7000 | 0.7500 | 0.6000 |" in table
    with open(written["plot"], "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_mixup_with_an_xla_model_step_is_refused_at_start(sample_records):
    from tfgender.config import TrainConfig
    from tfgender.training import loop

    config = TrainConfig(data_dir=sample_records, model="levi_hassner", image_size=40,
                         batch_size=8, mixup_alpha=0.2, jit_compile="true")
    with pytest.raises(loop.TrainingError, match="--mixup_alpha needs the model step outside"):
        loop.resolve_setup(config)
