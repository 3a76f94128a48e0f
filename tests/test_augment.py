"""Tests for tfgender.input.augment: geometry, randomness, dtypes, XLA, normalisation."""


import keras
import numpy as np
import pytest
import tensorflow as tf

from tfgender.input import augment, resample

S = 32


@pytest.fixture(scope="module")
def images():
    return tf.constant(np.random.default_rng(0).integers(0, 256, (4, S, S, 3), dtype=np.uint8))


def _plain(images, seed, **kwargs):
    """augment_batch with every random operation off unless kwargs turn it on."""
    options = dict(output_size=S, flip=False, max_rotation_degrees=0.0, brightness_range=None)
    options.update(kwargs)
    return augment.augment_batch(images, seed, **options)


def test_augment_without_random_operations_is_identity(images):
    out = _plain(images, tf.constant([1, 2]))
    assert out.dtype == tf.float32
    np.testing.assert_array_equal(out.numpy(), images.numpy().astype(np.float32))


def test_random_flip_gives_input_or_mirror(images):
    batch = tf.tile(images, [2, 1, 1, 1])
    out = _plain(batch, tf.constant([3, 4]), flip=True).numpy()
    src = batch.numpy().astype(np.float32)
    flipped = [np.array_equal(o, s[:, ::-1]) for o, s in zip(out, src, strict=True)]
    kept = [np.array_equal(o, s) for o, s in zip(out, src, strict=True)]
    assert all(f or k for f, k in zip(flipped, kept, strict=True))
    assert any(flipped) and any(kept)  # deterministic for this seed


def test_auto_interpolation_is_nearest_at_the_same_scale_and_bilinear_when_resizing(images):
    seed = tf.constant([7, 1])
    rotate = dict(output_size=24, max_rotation_degrees=30.0)
    np.testing.assert_array_equal(_plain(images, seed, **rotate).numpy(),
                                  _plain(images, seed, interpolation="nearest", **rotate).numpy())
    assert not np.array_equal(_plain(images, seed, **rotate).numpy(),
                              _plain(images, seed, interpolation="bilinear", **rotate).numpy())
    resize = dict(output_size=24, max_rotation_degrees=30.0, crop_scale=(0.6, 0.9))
    np.testing.assert_array_equal(_plain(images, seed, **resize).numpy(),
                                  _plain(images, seed, interpolation="bilinear", **resize).numpy())


def test_unknown_interpolation(images):
    with pytest.raises(ValueError, match="interpolation"):
        _plain(images, tf.constant([0, 0]), interpolation="bicubic")


def test_lh_crop_is_an_integer_slice_of_the_input(images):
    out = _plain(images, tf.constant([5, 6]), output_size=24).numpy()
    src = images.numpy().astype(np.float32)
    for o, s in zip(out, src, strict=True):
        matches = [(y, x) for y in range(S - 23) for x in range(S - 23)
                   if np.array_equal(o, s[y:y + 24, x:x + 24])]
        assert matches


@pytest.mark.parametrize("value", [100, 250])
def test_brightness_ratio_in_range_and_clipped(value):
    flat = tf.fill([8, S, S, 3], tf.constant(value, tf.uint8))
    out = _plain(flat, tf.constant([7, 8]), brightness_range=(0.8, 1.2)).numpy()
    assert out.min() >= 0 and out.max() <= 255
    per_image = out.reshape(8, -1)
    np.testing.assert_allclose(per_image, per_image[:, :1] * np.ones_like(per_image), rtol=1e-6)
    ratios = per_image[:, 0] / value
    assert np.all(ratios >= 0.8 - 1e-6) and np.all(ratios <= min(1.2, 255 / value) + 1e-6)
    assert np.ptp(ratios) > 0.01  # factors vary per image
    if value == 250:
        assert np.any(per_image[:, 0] == 255)


FULL = dict(output_size=24, crop_scale=(0.6, 1.0), max_rotation_degrees=20.0)


def test_same_seed_same_output_different_seed_different(images):
    a = augment.augment_batch(images, tf.constant([1, 1]), **FULL)
    b = augment.augment_batch(images, tf.constant([1, 1]), **FULL)
    c = augment.augment_batch(images, tf.constant([1, 2]), **FULL)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert not np.allclose(a.numpy(), c.numpy())


def test_make_step_seed_distinct_and_tf_function_safe():
    seed_fn = tf.function(augment.make_step_seed, jit_compile=True)
    seeds = {tuple(augment.make_step_seed(0, tf.constant(step), replica).numpy())
             for step in range(3) for replica in range(2)}
    assert len(seeds) == 6
    np.testing.assert_array_equal(seed_fn(0, tf.constant(2), 1).numpy(),
                                  augment.make_step_seed(0, 2, 1).numpy())
    assert augment.make_step_seed(1, 2).shape == (2,)
    assert not np.array_equal(augment.make_step_seed(1, 2).numpy(),
                              augment.make_step_seed(0, 2).numpy())


@pytest.mark.parametrize("kwargs", [
    FULL, dict(output_size=24), dict(output_size=24, max_rotation_degrees=0.0),
    dict(output_size=24, max_rotation_degrees=0.0, crop_scale=(0.5, 0.9)),
    dict(output_size=40),
])
@pytest.mark.parametrize("dtype", [tf.float32, tf.bfloat16, tf.float16])
def test_jit_static_shapes_unknown_batch_and_dtypes(images, kwargs, dtype):
    size = kwargs["output_size"]

    @tf.function(jit_compile=True,
                 input_signature=[tf.TensorSpec([None, S, S, 3], tf.uint8),
                                  tf.TensorSpec([2], tf.int64)])
    def step(x, seed):
        out = augment.augment_batch(x, seed, dtype=dtype, **kwargs)
        assert out.shape.as_list() == [None, size, size, 3]
        assert out.dtype == dtype
        return out

    seed = augment.make_step_seed(3, 0)
    compiled = step(images, seed)
    eager = augment.augment_batch(images, seed, dtype=dtype, **kwargs)
    assert compiled.shape == (4, size, size, 3)
    # Same random draws with and without XLA; only rounding to the output dtype may differ.
    atol = {tf.float32: 1e-2, tf.float16: 0.125, tf.bfloat16: 1.0}[dtype]
    np.testing.assert_allclose(tf.cast(compiled, tf.float32).numpy(),
                               tf.cast(eager, tf.float32).numpy(), atol=atol)
    assert 0 <= tf.reduce_min(compiled) and tf.reduce_max(compiled) <= 255


def test_augment_implementations_agree(images):
    seed = tf.constant([4, 2])
    for kwargs in (FULL, dict(output_size=24), dict(output_size=24, max_rotation_degrees=0.0)):
        gather = augment.augment_batch(images, seed, **kwargs)
        projective = augment.augment_batch(images, seed, implementation="projective", **kwargs)
        np.testing.assert_allclose(gather.numpy(), projective.numpy(), atol=0.05)


def test_oversample_crops_geometry():
    src = np.random.default_rng(2).integers(0, 256, (2, 41, 41, 3), dtype=np.uint8)
    out = augment.oversample_crops(tf.constant(src), 32).numpy()
    assert out.shape == (2, 10, 32, 32, 3) and out.dtype == np.uint8
    slices = [src[:, :32, :32], src[:, :32, 9:], src[:, 9:, :32], src[:, 9:, 9:],
              src[:, 4:36, 4:36]]
    for k, expected in enumerate(slices):
        np.testing.assert_array_equal(out[:, k], expected)
        np.testing.assert_array_equal(out[:, k + 5], expected[:, :, ::-1])


def test_center_crop_and_eval_transform(images):
    np.testing.assert_array_equal(augment.center_crop(images, 24).numpy(),
                                  images.numpy()[:, 4:28, 4:28])
    up = augment.center_crop(images[:, :16, :16], 24)
    assert up.shape == (4, 24, 24, 3) and up.dtype == tf.uint8
    same = augment.eval_transform(images, S)
    assert same.dtype == tf.float32
    np.testing.assert_array_equal(same.numpy(), images.numpy().astype(np.float32))
    whole = augment.eval_transform(images, 16, crop_fraction=1.0, dtype=tf.bfloat16)
    assert whole.shape == (4, 16, 16, 3) and whole.dtype == tf.bfloat16
    # Halving: each output pixel is the mean of a 2x2 input block.
    blocks = images.numpy().astype(np.float32).reshape(4, 16, 2, 16, 2, 3).mean(axis=(2, 4))
    np.testing.assert_allclose(tf.cast(whole, tf.float32).numpy(), blocks, atol=1.0)


def test_eval_shapes_with_unknown_batch_under_jit():
    @tf.function(jit_compile=True, input_signature=[tf.TensorSpec([None, S, S, 3], tf.uint8)])
    def evaluate(x):
        crops = augment.oversample_crops(x, 24)
        centre = augment.eval_transform(x, 24, dtype=tf.bfloat16)
        resized = augment.eval_transform(x, 40, crop_fraction=0.9)
        assert crops.shape.as_list() == [None, 10, 24, 24, 3]
        assert centre.shape.as_list() == [None, 24, 24, 3]
        assert resized.shape.as_list() == [None, 40, 40, 3]
        return crops, centre, resized

    crops, centre, _ = evaluate(tf.zeros([3, S, S, 3], tf.uint8))
    assert crops.shape[0] == 3 and centre.dtype == tf.bfloat16


@pytest.mark.parametrize("mode, reference", [
    ("resnet50_caffe", keras.applications.resnet50.preprocess_input),
    ("mobilenet_v2", keras.applications.mobilenet_v2.preprocess_input),
])
def test_normalize_matches_keras(mode, reference):
    x = np.random.default_rng(3).uniform(0, 255, (2, 8, 8, 3)).astype(np.float32)
    expected = np.asarray(reference(x.copy()))
    np.testing.assert_allclose(augment.normalize(tf.constant(x), mode).numpy(), expected,
                               rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("mode", augment.NORMALIZATIONS)
def test_normalize_keeps_dtype(mode):
    x = tf.fill([1, 4, 4, 3], tf.constant(128.0, tf.bfloat16))
    assert augment.normalize(x, mode).dtype == tf.bfloat16


def test_levi_hassner_mean_and_unknown_mode():
    out = augment.normalize(tf.constant([[[123.68, 116.78, 103.94]]]), "levi_hassner_mean")
    np.testing.assert_allclose(out.numpy(), 0.0, atol=1e-5)
    with pytest.raises(ValueError, match="normalization"):
        augment.normalize(tf.zeros([1, 1, 1, 3]), "imagenet")


def test_invalid_crop_scale(images):
    with pytest.raises(ValueError, match="crop_scale"):
        augment.augment_batch(images, tf.constant([0, 0]), output_size=24, crop_scale=(0.5, 1.5))


# The four resample methods: integer crop, nearest source map, bilinear transform, projective.
METHODS = [dict(output_size=24, max_rotation_degrees=0.0), dict(output_size=24), FULL,
           dict(output_size=24, implementation="projective")]


@pytest.mark.parametrize("kwargs", METHODS)
def test_compiled_two_programs_equal_eager(images, kwargs):
    augmentation = augment.Augmentation(**kwargs)
    seed = augment.make_step_seed(5, 3)
    eager = augmentation(images, seed).numpy()
    np.testing.assert_array_equal(augment.augment_batch(images, seed, **kwargs).numpy(), eager)
    if kwargs.get("implementation") == "projective":
        return  # ImageProjectiveTransformV3 has no XLA kernel
    # Same draws with and without XLA; XLA's float rounding differs in the last bits.
    np.testing.assert_allclose(augmentation.compiled()(images, seed).numpy(), eager, atol=1e-2)
    # An unknown batch size falls back to one XLA program, with the same draws.
    unknown = tf.function(augmentation.compiled(),
                          input_signature=[tf.TensorSpec([None, S, S, 3], tf.uint8),
                                           tf.TensorSpec([2], tf.int64)])
    np.testing.assert_allclose(unknown(images, seed).numpy(), eager, atol=1e-2)


def test_plan_holds_only_what_the_method_needs(images):
    seed = tf.constant([1, 2])
    crop = augment.Augmentation(output_size=24, max_rotation_degrees=0.0).plan(seed, 4, S)
    assert set(crop) == {"offsets", "mirror", "brightness"}
    nearest = augment.Augmentation(output_size=24, brightness_range=None).plan(seed, 4, S)
    assert set(nearest) == {"source"}
    assert nearest["source"].dtype == tf.uint16 and nearest["source"].shape == (4, 24, 24)
    assert set(augment.Augmentation(**FULL).plan(seed, 4, S)) == {"transforms", "brightness"}


def test_nearest_source_widens_past_uint16():
    # 300x300 has 90,000 pixels: the per-image index no longer fits uint16.
    big = tf.constant(np.random.default_rng(4).integers(0, 256, (2, 300, 300, 3), np.uint8))
    augmentation = augment.Augmentation(output_size=280, max_rotation_degrees=10.0)
    seed = tf.constant([3, 4])
    assert augmentation.plan(seed, 2, 300)["source"].dtype == tf.int32
    transforms = resample.affine_transforms(
        output_size=280, center=tf.constant([[150.0, 150.0], [140.0, 160.0]]),
        side=tf.fill([2], 280.0), angle=tf.constant([0.1, -0.1]), flip=tf.constant([1.0, -1.0]))
    gather = resample.resample(big, transforms, 280, interpolation="nearest").numpy()
    projective = resample.resample(big, transforms, 280, implementation="projective",
                                  interpolation="nearest").numpy()
    assert np.mean(gather == projective) > 0.99  # ties at exactly .5 may round apart


@pytest.mark.parametrize("mode", augment.NORMALIZATIONS)
def test_normalization_inside_equals_after(images, mode):
    seed = tf.constant([9, 9])
    inside = augment.Augmentation(output_size=24, normalization=mode)(images, seed)
    after = augment.normalize(augment.augment_batch(images, seed, output_size=24), mode)
    np.testing.assert_array_equal(inside.numpy(), after.numpy())


def test_invalid_options_fail_at_construction():
    for bad in (dict(implementation="bicubic"), dict(interpolation="cubic"),
                dict(normalization="imagenet"), dict(crop_scale=(0.0, 1.0))):
        with pytest.raises(ValueError):
            augment.Augmentation(output_size=24, **bad)
    with pytest.raises(ValueError, match="square"):
        augment.Augmentation(output_size=24).compiled()(tf.zeros([1, 32, 30, 3], tf.uint8),
                                                        tf.constant([0, 0]))


def test_colour_jitter_at_identity_factors_changes_nothing_else(images):
    seed = tf.constant([5, 6])
    full = dict(flip=True, max_rotation_degrees=10.0, brightness_range=(0.8, 1.2))
    base = _plain(images, seed, **full).numpy()
    same = _plain(images, seed, contrast_range=(1.0, 1.0), saturation_range=(1.0, 1.0),
                  hue_delta=1e-7, **full).numpy()
    np.testing.assert_allclose(same, base, atol=0.05)  # the other draws are the same


def test_colour_jitter_extremes(images):
    seed = tf.constant([1, 2])
    grey = _plain(images, seed, saturation_range=(0.0, 0.0)).numpy()
    np.testing.assert_allclose(grey[..., 0], grey[..., 2], atol=1e-3)  # saturation 0: grey
    flat = _plain(images, seed, contrast_range=(0.0, 0.0)).numpy()
    assert np.ptp(flat, axis=(1, 2, 3)).max() < 1e-3  # contrast 0: each image one grey
    np.testing.assert_allclose(flat[:, 0, 0, 0], tf.reduce_mean(
        tf.image.rgb_to_grayscale(tf.cast(images, tf.float32)), axis=[1, 2, 3]), rtol=1e-5)
    red = tf.constant([[[[255, 0, 0]]]] * 8, tf.uint8)  # hue 0, full saturation and value
    jitter = augment.Augmentation(output_size=1, flip=False, max_rotation_degrees=0.0,
                                  brightness_range=None, hue_delta=0.4)
    plan = jitter.plan(seed, 8, 1)
    hues = tf.image.rgb_to_hsv(jitter.render(red, plan) / 255.0).numpy()[:, 0, 0]
    drawn = plan["hue"].numpy()
    assert np.abs(drawn).max() <= 0.4 and np.ptp(drawn) > 0.1
    np.testing.assert_allclose(hues[:, 0], np.mod(drawn, 1.0), atol=1e-3)  # turned by the draw
    np.testing.assert_allclose(hues[:, 1:], 1.0, atol=1e-3)  # saturation and value kept
    changed = _plain(images, seed, contrast_range=(0.5, 1.5), saturation_range=(0.5, 1.5),
                     hue_delta=0.1).numpy()
    assert 0 <= changed.min() and changed.max() <= 255 and not np.allclose(
        changed, images.numpy())


@pytest.mark.parametrize("options, message", [
    (dict(contrast_range=(1.2, 0.8)), "contrast_range must be"),
    (dict(saturation_range=(-1.0, 1.0)), "saturation_range must be"),
    (dict(hue_delta=0.7), "hue_delta must be in"),
])
def test_colour_jitter_refuses_bad_ranges(options, message):
    with pytest.raises(ValueError, match=message):
        augment.Augmentation(output_size=S, **options)


def test_random_erasing_fills_one_mean_rectangle_per_erased_image():
    batch = tf.fill([64, S, S, 3], tf.constant(7, tf.uint8))  # a colour the fill is not
    out = _plain(batch, tf.constant([3, 1]), erasing_probability=0.5,
                 erasing_scale=(0.1, 0.3)).numpy()
    mean = np.array(augment.IMAGENET_RGB_MEAN, np.float32)
    erased = np.all(np.isclose(out, mean), axis=-1)  # (B, S, S) filled pixels
    assert np.all(erased | np.all(out == 7, axis=-1))  # every pixel kept or filled
    counts = erased.sum(axis=(1, 2))
    assert 16 <= np.count_nonzero(counts) <= 48  # about half the images
    for mask, count in zip(erased, counts, strict=True):
        if not count:
            continue
        rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
        # One solid rectangle, its area within the drawn range (pixel rounding aside).
        assert count == len(rows) * len(cols) == mask[rows[0]:rows[-1] + 1,
                                                      cols[0]:cols[-1] + 1].sum()
        assert 0.1 * S * S - 2 * S <= count <= 0.3 * S * S + 2 * S


def test_random_erasing_leaves_the_other_draws_and_compiles(images):
    seed = augment.make_step_seed(2, 7)
    full = dict(output_size=24, brightness_range=(0.8, 1.2))
    base = augment.Augmentation(**full)(images, seed).numpy()
    erasing = augment.Augmentation(**full, erasing_probability=1.0)
    out = erasing(images, seed).numpy()
    kept = np.any(out != np.array(augment.IMAGENET_RGB_MEAN, np.float32), axis=-1)
    np.testing.assert_array_equal(out[kept], base[kept])  # same flips, crops, brightness
    assert not kept.all()  # probability 1: every image has a hole
    np.testing.assert_allclose(erasing.compiled()(images, seed).numpy(), out, atol=1e-2)
    with pytest.raises(ValueError, match="erasing_probability"):
        augment.Augmentation(output_size=24, erasing_probability=1.5)
    with pytest.raises(ValueError, match="erasing_scale"):
        augment.Augmentation(output_size=24, erasing_probability=0.5, erasing_scale=(0.0, 0.3))
