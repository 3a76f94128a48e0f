"""Tests for tfgender.input.resample: identity, mirroring, rotation, gather vs. TF's kernel."""

import math

import numpy as np
import pytest
import tensorflow as tf

from tfgender.input import resample

S = 32


@pytest.fixture(scope="module")
def images():
    return tf.constant(np.random.default_rng(0).integers(0, 256, (4, S, S, 3), dtype=np.uint8))


def _transforms(batch, output_size, *, side=float(S), angle=0.0, flip=1.0, center=S / 2):
    return resample.affine_transforms(
        output_size=output_size, center=tf.fill([batch, 2], float(center)),
        side=tf.fill([batch], side), angle=angle, flip=flip)


@pytest.mark.parametrize("implementation", resample.IMPLEMENTATIONS)
def test_identity_transform_is_exact(images, implementation):
    out = resample.resample(images, _transforms(4, S), S, implementation=implementation)
    np.testing.assert_array_equal(out.numpy(), images.numpy().astype(np.float32))


@pytest.mark.parametrize("implementation", resample.IMPLEMENTATIONS)
def test_flip_mirrors_and_twice_is_identity(images, implementation):
    mirror = _transforms(4, S, flip=-1.0)
    once = resample.resample(images, mirror, S, implementation=implementation)
    np.testing.assert_array_equal(once.numpy(), images.numpy()[:, :, ::-1].astype(np.float32))
    twice = resample.resample(once, mirror, S, implementation=implementation)
    np.testing.assert_array_equal(twice.numpy(), images.numpy().astype(np.float32))


@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
@pytest.mark.parametrize("implementation", resample.IMPLEMENTATIONS)
def test_positive_90_degrees_matches_np_rot90(implementation, interpolation):
    # Asymmetric: a bright bar along the top and a dot near the left edge.
    image = np.zeros((S, S, 3), np.uint8)
    image[1, 3:20] = [255, 0, 0]
    image[10, 2] = [0, 255, 0]
    image += np.arange(S, dtype=np.uint8)[:, None, None]  # rows differ from columns
    out = resample.resample(tf.constant(image[None]), _transforms(1, S, angle=math.pi / 2), S,
                           implementation=implementation, interpolation=interpolation)
    np.testing.assert_allclose(out.numpy()[0], np.rot90(image, k=1).astype(np.float32),
                               atol=1e-3)


def test_nearest_gather_matches_projective_nearest(images):
    rng = np.random.default_rng(3)
    transforms = resample.affine_transforms(
        output_size=S, center=tf.constant(rng.uniform(12, 20, (4, 2)), tf.float32),
        side=tf.fill([4], float(S)), angle=tf.constant(rng.uniform(-0.3, 0.3, 4), tf.float32),
        flip=tf.constant([1.0, -1.0, 1.0, -1.0]))
    gather = resample.resample(images, transforms, S, interpolation="nearest").numpy()
    projective = resample.resample(images, transforms, S, implementation="projective",
                                  interpolation="nearest").numpy()
    # Every output is an input pixel value (no blending) ...
    source_values = set(images.numpy().reshape(-1).tolist())
    assert set(gather.reshape(-1).tolist()) <= source_values
    # ... the same one TF's own nearest transform picks, but for rare exact ties at x.5.
    assert np.mean(np.any(gather != projective, axis=-1)) < 0.01


@pytest.mark.parametrize("rotate", [False, True])
def test_gather_and_projective_agree(images, rotate):
    rng = np.random.default_rng(1)
    angle = tf.constant(rng.uniform(-0.5, 0.5, 4), tf.float32) if rotate else 0.0
    transforms = resample.affine_transforms(
        output_size=20, center=tf.constant(rng.uniform(10, 22, (4, 2)), tf.float32),
        side=tf.constant(rng.uniform(12, 40, 4), tf.float32), angle=angle,
        flip=tf.constant([1.0, -1.0, 1.0, -1.0]))
    gather = resample.resample(images, transforms, 20)
    projective = resample.resample(images, transforms, 20, implementation="projective")
    np.testing.assert_allclose(gather.numpy(), projective.numpy(), atol=0.05)


def test_unknown_implementation(images):
    with pytest.raises(ValueError, match="implementation"):
        resample.resample(images, _transforms(4, S), S, implementation="bicubic")
