"""Tests for the model registry, the three architectures and the shared head."""

from __future__ import annotations

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfgender import models
from tfgender.input import augment
from tfgender.models import MODELS, build_model, levi_hassner
from tfgender.models.head import BASE_LAYER, LOGITS_LAYER
from tfgender.models.levi_hassner import LocalResponseNormalization
from tfgender.models.mobilenet_v2 import imagenet_weights_file
from tfgender.models.resnet50 import IMAGENET_WEIGHTS_FILE as RESNET50_FILE

# Two small sizes per model; ResNet-50 only at tiny ones to keep the suite fast.
SIZES = {"levi_hassner": (64, 96), "resnet50": (32, 48), "mobilenet_v2": (64, 96)}
# Keep MobileNetV2 small where the test is not about its width.
SMALL = {"mobilenet_v2": {"alpha": 0.35}}
# Keras' own weight saving/loading calls np.array on variables, which NumPy 2 flags; not ours.
keras_numpy2_warning = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)


@pytest.fixture
def policy(request):
    """Sets the global dtype policy for one test and always restores float32."""
    keras.mixed_precision.set_global_policy(request.param)
    yield request.param
    keras.mixed_precision.set_global_policy("float32")


def _images(size: int, batch: int = 2) -> np.ndarray:
    return np.random.default_rng(0).uniform(-1, 1, (batch, size, size, 3)).astype("float32")


def test_every_architecture_has_a_normaliser_and_sizes_that_fit():
    for name, spec in MODELS.items():
        assert spec.normalization in augment.NORMALIZERS, name
        assert 0 < spec.min_image_size <= spec.default_image_size, name


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("size_index", [0, 1])
def test_builds_with_float32_logits(name, size_index):
    size = SIZES[name][size_index]
    model = build_model(name, size, **SMALL.get(name, {}))
    assert model.input_shape == (None, size, size, 3)
    logits = model(_images(size), training=False)
    assert tuple(logits.shape) == (2, 1)
    assert logits.dtype == tf.float32
    assert np.all(np.isfinite(logits.numpy()))


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"], indirect=True)
@pytest.mark.parametrize("name", sorted(MODELS))
def test_logits_stay_float32_under_mixed_precision(name, policy):
    size = SIZES[name][0]
    model = build_model(name, size, **SMALL.get(name, {}))
    compute = policy.split("_")[1]
    # The policy really applies inside the network...
    inner = model.get_layer(BASE_LAYER) if name != "levi_hassner" else model
    assert any(layer.compute_dtype == compute for layer in inner.layers)
    # ...while the logits do not.
    assert model.get_layer(LOGITS_LAYER).compute_dtype == "float32"
    logits = model(_images(size), training=True)
    assert tuple(logits.shape) == (2, 1)
    assert logits.dtype == tf.float32
    assert np.all(np.isfinite(logits.numpy()))


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"], indirect=True)
def test_levi_hassner_trains_under_xla(policy):
    model = build_model("levi_hassner", 64)
    images = tf.constant(_images(64, batch=4))

    @tf.function(jit_compile=True)
    def step(x):
        with tf.GradientTape() as tape:
            logits = model(x, training=True)
            loss = tf.reduce_mean(logits**2)
        return logits, tape.gradient(loss, model.trainable_variables)

    logits, grads = step(images)
    assert logits.dtype == tf.float32 and tuple(logits.shape) == (4, 1)
    assert len(grads) == len(model.trainable_variables)
    assert all(g is not None and np.all(np.isfinite(g.numpy())) for g in grads)


def test_levi_hassner_parameter_count_at_227():
    model = build_model("levi_hassner", 227)
    # conv 1,513,984 + fc6 18,816*512+512 + fc7 512*512+512 + logit 513.
    assert model.count_params() == 11_411_457
    # Caffe ceil-mode pooling: 227 -> 56 -> 28 -> 14 -> 7, as in the original model.
    assert model.get_layer("pool3").output.shape[1:] == (7, 7, 384)
    assert levi_hassner.feature_map_size(224) == 6


def test_levi_hassner_follows_the_paper():
    model = build_model("levi_hassner", 227)
    convs = [model.get_layer(f"conv{i}") for i in (1, 2, 3)]
    assert [c.filters for c in convs] == [96, 256, 384]
    assert [c.kernel_size for c in convs] == [(7, 7), (5, 5), (3, 3)]
    assert [c.strides for c in convs] == [(4, 4), (1, 1), (1, 1)]
    assert model.get_layer("conv2").output.shape[1:3] == (28, 28)  # pad 2 keeps the size
    assert [model.get_layer(f"fc_dense_{i}").units for i in (0, 1)] == [512, 512]
    assert [model.get_layer(f"fc_dropout_{i}").rate for i in (0, 1)] == [0.5, 0.5]
    norms = [layer for layer in model.layers if isinstance(layer, LocalResponseNormalization)]
    assert [n.name for n in norms] == ["norm1", "norm2"]
    std = float(np.std(model.get_layer("fc_dense_0").kernel.numpy()))
    assert std == pytest.approx(0.01, rel=0.05)


def test_levi_hassner_he_init_scales_to_fan_in():
    model = build_model("levi_hassner", 80, kernel_init="he")
    for name in ("conv1", "conv3", "fc_dense_0"):
        kernel = model.get_layer(name).kernel.numpy()
        fan_in = int(np.prod(kernel.shape[:-1]))
        # Keras widens its truncated normal so that the drawn values' std is sqrt(2 / fan_in).
        assert float(np.std(kernel)) == pytest.approx(np.sqrt(2 / fan_in), rel=0.1)
    with pytest.raises(ValueError, match="unknown kernel_init 'xavier'; known: paper, he"):
        build_model("levi_hassner", 80, kernel_init="xavier")


def _caffe_lrn(x, size, alpha, beta, k):
    half = size // 2
    squares = np.pad(x**2, [(0, 0)] * 3 + [(half, half)])
    window = sum(squares[..., i : i + x.shape[-1]] for i in range(size))
    return x / (k + alpha / size * window) ** beta


def test_lrn_matches_caffe_formula_and_round_trips():
    # Large values so the normalisation visibly changes the input.
    x = np.random.default_rng(1).uniform(0, 300, (2, 3, 3, 11)).astype("float32")
    layer = LocalResponseNormalization(5, 1e-4, 0.75, name="lrn")
    expected = _caffe_lrn(x.astype("float64"), 5, 1e-4, 0.75, 1.0)
    assert not np.allclose(expected, x, rtol=1e-2)
    np.testing.assert_allclose(layer(x).numpy(), expected, rtol=1e-5)
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert isinstance(clone, LocalResponseNormalization)
    assert (clone.size, clone.alpha, clone.beta, clone.k) == (5, 1e-4, 0.75, 1.0)
    with pytest.raises(ValueError, match="odd"):
        LocalResponseNormalization(4)


@keras_numpy2_warning
def test_levi_hassner_saves_and_loads(tmp_path):
    model = build_model("levi_hassner", 64)
    path = str(tmp_path / "lh.keras")
    model.save(path)
    restored = keras.models.load_model(path)
    images = _images(64)
    np.testing.assert_allclose(restored(images), model(images), rtol=1e-5, atol=1e-6)
    weights = str(tmp_path / "lh.weights.h5")
    model.save_weights(weights)
    reloaded = build_model("levi_hassner", 64, weights=weights)
    np.testing.assert_allclose(reloaded(images), model(images), rtol=1e-5, atol=1e-6)


def test_unknown_model_lists_known_names():
    with pytest.raises(ValueError, match="levi_hassner, mobilenet_v2, resnet50"):
        build_model("alexnet", 224)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_too_small_image_size_says_the_minimum(name):
    minimum = MODELS[name].min_image_size
    with pytest.raises(ValueError, match=f"the minimum is {minimum} "):
        build_model(name, minimum - 1)


def test_minimum_sizes_are_the_real_limits():
    assert MODELS["levi_hassner"].min_image_size == 35
    assert levi_hassner.feature_map_size(35) == 1
    assert levi_hassner.feature_map_size(34) == 0
    model = build_model("levi_hassner", 35)
    assert model.get_layer("pool3").output.shape[1:3] == (1, 1)
    assert tuple(model(_images(35)).shape) == (2, 1)
    # keras.applications itself refuses anything below 32; the minimum builds.
    with pytest.raises(ValueError, match="at least 32"):
        keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(31, 31, 3))
    assert tuple(build_model("mobilenet_v2", 32, alpha=0.35)(_images(32)).shape) == (2, 1)


@pytest.mark.parametrize(
    ("name", "file_name"),
    [("resnet50", RESNET50_FILE), ("mobilenet_v2", imagenet_weights_file(224, 1.0))],
)
def test_imagenet_weights_missing_from_cache(name, file_name, tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(models.WeightsError) as error:
        build_model(name, 224, weights="imagenet")
    # The registry's check, made before anything is built, says the same in one line.
    with pytest.raises(models.WeightsError) as checked:
        models.resolve_weights(name, "imagenet", 224)
    for message in (str(error.value), str(checked.value)):
        assert file_name in message and "\n" not in message
        assert os.path.join(str(tmp_path), "models") in message


@keras_numpy2_warning
def test_a_size_without_its_own_file_takes_the_224_one(tmp_path, monkeypatch):
    # Keras publishes weights per size (96, 128, ...); the shared folder has the 224 file only,
    # whose convolutions load into any size.
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / imagenet_weights_file(224, 0.35)).write_bytes(b"\x89HDF\r\n\x1a\n")
    assert models.resolve_weights("mobilenet_v2", "imagenet", 96, alpha=0.35).endswith(
        "_0.35_224_no_top.h5")
    (tmp_path / "models" / imagenet_weights_file(96, 0.35)).write_bytes(b"\x89HDF\r\n\x1a\n")
    assert models.resolve_weights("mobilenet_v2", "imagenet", 96, alpha=0.35).endswith(
        "_0.35_96_no_top.h5")  # the size's own, trained at that size, when it is there


def test_imagenet_file_names_match_keras():
    assert RESNET50_FILE == "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"
    assert imagenet_weights_file(128, 0.35) == (
        "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_128_no_top.h5"
    )
    # Sizes without published weights fall back to the 224 file, as in Keras.
    assert imagenet_weights_file(100, 1.0).endswith("_1.0_224_no_top.h5")
    with pytest.raises(ValueError, match="alpha"):
        imagenet_weights_file(224, 0.6)


@keras_numpy2_warning
def test_imagenet_weights_load_from_the_cache(tmp_path, monkeypatch):
    # A stand-in for the downloaded file: a legacy .h5 of a MobileNetV2 base.
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    (tmp_path / "models").mkdir()
    source = keras.applications.MobileNetV2(
        include_top=False, weights=None, input_shape=(96, 96, 3), alpha=0.35, pooling="avg"
    )
    source.save(str(tmp_path / "models" / imagenet_weights_file(96, 0.35)))
    model = build_model("mobilenet_v2", 96, alpha=0.35, weights="imagenet")
    for got, want in zip(model.get_layer(BASE_LAYER).weights, source.weights, strict=True):
        np.testing.assert_array_equal(got.numpy(), want.numpy())


@keras_numpy2_warning
def test_base_weights_load_from_a_path(tmp_path):
    source = build_model("mobilenet_v2", 64, alpha=0.35).get_layer(BASE_LAYER)
    path = str(tmp_path / "base.weights.h5")
    source.save_weights(path)
    model = build_model("mobilenet_v2", 64, alpha=0.35, weights=path)
    for got, want in zip(model.get_layer(BASE_LAYER).weights, source.weights, strict=True):
        np.testing.assert_array_equal(got.numpy(), want.numpy())
    with pytest.raises(models.WeightsError, match="missing.weights.h5"):
        build_model("mobilenet_v2", 64, weights=str(tmp_path / "missing.weights.h5"))


@keras_numpy2_warning
def test_a_weights_file_that_is_not_one_is_one_line_naming_it(tmp_path):
    text = tmp_path / "notes.h5"
    text.write_text("not weights\n")
    with pytest.raises(models.WeightsError, match="notes.h5 is not an HDF5"):
        models.resolve_weights("mobilenet_v2", str(text), 64)
    # A real HDF5 file of another model passes the cheap check and fails at loading, named.
    other = str(tmp_path / "levi.weights.h5")
    build_model("levi_hassner", 64).save_weights(other)
    assert models.resolve_weights("mobilenet_v2", other, 64) == other
    with pytest.raises(models.WeightsError, match="levi.weights.h5 does not fit") as error:
        build_model("mobilenet_v2", 64, alpha=0.35, weights=other)
    assert "\n" not in str(error.value)
    with pytest.raises(models.WeightsError, match="levi_hassner has no ImageNet weights"):
        models.resolve_weights("levi_hassner", "imagenet", 64)
    with pytest.raises(models.WeightsError, match="alpha"):
        models.resolve_weights("mobilenet_v2", "imagenet", 64, alpha=0.6)
    assert models.resolve_weights("mobilenet_v2", "", 64) is None


@keras_numpy2_warning
def test_the_shared_imagenet_file_loads_into_the_base(shared_data, tmp_path, monkeypatch):
    # The real ImageNet weights (../shared/data/imagenet), found in the Keras cache as a user
    # who copied them there has them: every base weight equals the file's.
    import h5py

    source = shared_data / "imagenet" / imagenet_weights_file(224, 1.0)
    if not source.is_file():
        pytest.skip(f"ImageNet weights not found at {source}")
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / source.name).symlink_to(source)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    model = build_model("mobilenet_v2", 96, weights="imagenet", head_units=(8,), dropout=())
    compared = 0
    with h5py.File(source, "r") as f:
        for layer in model.get_layer(BASE_LAYER).layers:
            for weight in layer.weights:
                stored = f[layer.name][layer.name][weight.name][()]
                np.testing.assert_array_equal(weight.numpy(), stored, err_msg=weight.path)
                compared += 1
    # Every weight of the base (kernels, batch-norm scales and statistics) came from the file.
    assert compared == len(model.get_layer(BASE_LAYER).weights) == 260


def test_levi_hassner_rejects_pretrained_options():
    with pytest.raises(models.WeightsError, match="ImageNet"):
        build_model("levi_hassner", 64, weights="imagenet")
    with pytest.raises(ValueError, match="freeze_base"):
        build_model("levi_hassner", 64, freeze_base=True)


@pytest.mark.parametrize("name", ["resnet50", "mobilenet_v2"])
def test_freeze_base_leaves_only_the_head_trainable(name):
    size = SIZES[name][0]
    model = build_model(name, size, freeze_base=True, **SMALL.get(name, {}))
    base = model.get_layer(BASE_LAYER)
    assert not base.trainable and base.trainable_weights == []
    head_weights = [
        id(w) for layer in model.layers if layer is not base for w in layer.trainable_weights
    ]
    assert head_weights and sorted(map(id, model.trainable_weights)) == sorted(head_weights)
    # Three hidden Dense layers and the logit, kernel and bias each.
    assert len(head_weights) == 8
    base.trainable = True  # The training loop unfreezes it this way.
    assert len(model.trainable_weights) > len(head_weights)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_weight_decay_adds_regularisation_losses(name):
    size = SIZES[name][0]
    assert build_model(name, size, **SMALL.get(name, {})).losses == []
    model = build_model(name, size, weight_decay=1e-4, **SMALL.get(name, {}))
    assert model.losses and all(float(loss) > 0 for loss in model.losses)


def test_head_options():
    model = build_model(
        "mobilenet_v2", 64, alpha=0.35, head_units=(32, 16), dropout=(0.25,), activation="tanh"
    )
    assert [model.get_layer(f"head_dense_{i}").units for i in (0, 1)] == [32, 16]
    assert model.get_layer("head_dense_1").activation is keras.activations.tanh
    dropouts = [layer for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
    assert [d.rate for d in dropouts] == [0.25]
    with pytest.raises(ValueError, match="dropout"):
        build_model("mobilenet_v2", 64, alpha=0.35, head_units=(8,), dropout=(0.5, 0.5))


def test_set_batch_norm_momentum_reaches_the_nested_base():
    model = models.build_model("mobilenet_v2", 32, head_units=(8,), dropout=(0.0,))
    changed = models.set_batch_norm_momentum(model, 0.9)
    base_bns = [layer for layer in model.get_layer("base").layers
                if isinstance(layer, keras.layers.BatchNormalization)]
    assert changed == len(base_bns) > 0
    assert {layer.momentum for layer in base_bns} == {0.9}
    with pytest.raises(ValueError, match="momentum"):
        models.set_batch_norm_momentum(model, 1.0)


def test_base_layers_are_what_fine_tuning_freezes():
    model = models.build_model("levi_hassner", 64, dropout=(0.0, 0.0))
    base = models.base_layers(model)
    assert [layer.name for layer in base] == ["conv1", "conv2", "conv3"]
    for layer in base:
        layer.trainable = False
    # Only the head trains: fc6, fc7 and the logit layer, kernel and bias each.
    assert len(model.trainable_variables) == 6
    assert all(not v.path.startswith("conv") for v in model.trainable_variables)
    mobilenet = models.build_model("mobilenet_v2", 96, head_units=(8,), dropout=(0.0,))
    assert [layer.name for layer in models.base_layers(mobilenet)] == ["base"]


def test_levi_hassner_batch_norm_replaces_lrn():
    model = build_model("levi_hassner", 80, conv_norm="batch")
    names = [layer.name for layer in model.layers]
    assert not any(isinstance(layer, LocalResponseNormalization) for layer in model.layers)
    assert [n for n in names if n.endswith("_bn")] == ["conv1_bn", "conv2_bn", "conv3_bn"]
    for i in (1, 2, 3):  # the normalisation's offset replaces the bias, before the ReLU
        conv = model.get_layer(f"conv{i}")
        assert conv.bias is None and conv.activation.__name__ == "linear"
        assert names.index(f"conv{i}_bn") < names.index(f"conv{i}_relu") < names.index(f"pool{i}")
    paper = build_model("levi_hassner", 80)
    assert paper.output.shape == model.output.shape == (None, 1)
    with pytest.raises(ValueError, match="unknown conv_norm 'layer'; known: lrn, batch"):
        build_model("levi_hassner", 80, conv_norm="layer")


def test_levi_hassner_width_multiplier_scales_only_the_convolutions():
    assert levi_hassner.conv_filters(1.0) == (96, 256, 384)
    assert levi_hassner.conv_filters(1.5) == (144, 384, 576)
    assert levi_hassner.conv_filters(0.3) == (32, 80, 112)  # nearest multiple of 8
    wide = build_model("levi_hassner", 64, conv_norm="batch", alpha=1.5)
    paper = build_model("levi_hassner", 64, conv_norm="batch")
    assert [wide.get_layer(f"conv{i}").filters for i in (1, 2, 3)] == [144, 384, 576]
    assert [paper.get_layer(f"conv{i}").filters for i in (1, 2, 3)] == [96, 256, 384]
    assert wide.get_layer("fc_dense_1").units == paper.get_layer("fc_dense_1").units == 512
    with pytest.raises(ValueError, match="width multiplier must be positive"):
        build_model("levi_hassner", 64, alpha=0.0)


def test_every_activation_the_flag_offers_is_a_keras_activation():
    # --activation is a declared choice (checked before TensorFlow loads); each one must build.
    from tfgender.choices import ACTIVATIONS

    for name in ACTIVATIONS:
        assert callable(keras.activations.get(name)), name


def test_one_model_contract_reads_a_run_as_the_config_has_it():
    import dataclasses

    from tfgender.config import MODEL_FLAGS, TrainConfig

    fields = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    assert set(models.MODEL_OPTIONS) <= set(fields)
    assert set(models.COMPUTE_OPTIONS) | set(MODEL_FLAGS) <= set(models.MODEL_OPTIONS)
    config = TrainConfig(data_dir="d", head_units=(64,), dropout=(0.1,), width_multiplier=0.5)
    live = models.model_kwargs(config)
    assert live["head_units"] == (64,) and live["alpha"] == 0.5
    # A run recorded before a field existed reads the field's default.
    recorded = {"head_units": [64], "dropout": [0.1], "width_multiplier": 0.5}
    assert models.model_kwargs(recorded) == live
    assert models.model_kwargs({}) == models.model_kwargs(TrainConfig(data_dir="d"))
    changed = models.changed_options(config)
    assert changed == {"alpha": 0.5, "head_units": [64], "dropout": [0.1]}
    assert models.config_fields(changed) == {"width_multiplier": 0.5, "head_units": (64,),
                                             "dropout": (0.1,)}


def test_a_build_without_options_takes_the_configs_defaults():
    keras.utils.set_random_seed(0)
    plain = build_model("mobilenet_v2", 32)
    keras.utils.set_random_seed(0)
    from tfgender.config import TrainConfig

    explicit = build_model("mobilenet_v2", 32,
                           **models.model_kwargs(TrainConfig(data_dir="d")))
    assert [w.shape for w in plain.weights] == [w.shape for w in explicit.weights]
    assert all(np.array_equal(a, b)
               for a, b in zip(plain.get_weights(), explicit.get_weights(), strict=True))


@pytest.mark.parametrize("name", sorted(MODELS))
def test_a_saved_model_holds_its_normalisation(name, tmp_path):
    """best_model.keras takes [0, 255] pixels: Keras loads it (tfgender.models registers its
    Normalize layer) and gets the logits the model gives its normalised inputs."""
    size = max(MODELS[name].min_image_size, 32)
    model = build_model(name, size, head_units=(8,), dropout=(0.0,))
    pixels = np.random.default_rng(0).uniform(0, 255, (2, size, size, 3)).astype("float32")
    want = model(augment.normalize(tf.constant(pixels), MODELS[name].normalization)).numpy()
    whole = models.with_normalization(model, MODELS[name].normalization)
    path = str(tmp_path / "m.keras")
    whole.save(path)
    loaded = keras.models.load_model(path, compile=False)
    assert models.takes_pixels(loaded) and not models.takes_pixels(model)
    assert loaded.name == name and loaded.input_shape[1] == size
    np.testing.assert_array_equal(loaded(pixels).numpy(), want)  # the same ops: the same bits
