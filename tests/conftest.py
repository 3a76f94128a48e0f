"""Shared pytest fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# --precision=auto measures candidates on bf16 machines (subprocesses, about a minute): the
# suite, which trains in many processes, takes the fallback table instead. Its own tests
# (test_precision.py) call the calibration directly.
os.environ["TFGENDER_PRECISION_CALIBRATION"] = "off"

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _no_leftover_op_determinism():
    """A test that trains in this process with ``--deterministic`` turns TensorFlow's op
    determinism on for the whole process; the next test in the same worker (XLA steps,
    which then fail to compile) must not inherit it."""
    yield
    import sys

    if "tensorflow" in sys.modules:
        # TensorFlow exports enable_op_determinism only; its inverse lives beside it.
        from tensorflow.python.framework import config as tf_config

        if tf_config.is_op_determinism_enabled():
            tf_config.disable_op_determinism()


@pytest.fixture(autouse=True)
def _float32_after():
    """Every test leaves the process in float32: a test that trains or builds a model under
    another precision sets Keras' global policy (and for ``onednn_bfloat16`` a Grappler
    rewrite) for everything that runs after it in the same worker."""
    yield
    import sys

    if "tfgender.devices" in sys.modules:
        sys.modules["tfgender.devices"].apply("float32")
    elif "keras" in sys.modules:
        sys.modules["keras"].mixed_precision.set_global_policy("float32")


@pytest.fixture()
def train_flag_values():
    """The process-wide absl FLAGS with bin/train's flags defined, unparsed after the test."""
    from absl import flags

    from tfgender import flags as tf_flags

    if "learning_rate" not in flags.FLAGS:
        tf_flags.define_train_flags()
    yield flags.FLAGS
    flags.FLAGS.unparse_flags()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The read-only reference data in ``<repo root>/../shared/data``, or skip without it."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"reference data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def sample_records(tmp_path_factory) -> str:
    """A converted dataset of 120 drawn UTKFace-style faces at 72 px (train/val/test)."""
    from tfgender.config import ConvertConfig, SampleDataConfig
    from tfgender.data import convert, sample

    root = tmp_path_factory.mktemp("sample_records")
    sample.make_sample_data(SampleDataConfig(format="utkface", out_dir=str(root / "raw"),
                                             num_images=120, image_size=72, seed=3))
    convert.convert(ConvertConfig(source="utkface", data_dir=str(root / "raw"),
                                  out_dir=str(root / "records"), num_shards=2,
                                  val_fraction=0.2, test_fraction=0.2, progress=False))
    return str(root / "records")


@pytest.fixture(scope="session")
def toy_records(tmp_path_factory) -> str:
    """A converted, linearly separable toy set: male images reddish, female bluish (96 px)."""
    import numpy as np
    import tensorflow as tf

    from tfgender.config import ConvertConfig
    from tfgender.data import convert

    root = tmp_path_factory.mktemp("toy_records")
    raw = root / "raw"
    raw.mkdir()
    rng = np.random.RandomState(0)
    for i in range(160):
        gender = i % 2  # UTKFace: 0 male, 1 female
        base = np.array([170, 90, 60] if gender == 0 else [60, 90, 170], np.float32)
        image = np.clip(base + rng.normal(0, 40, size=(48, 48, 3)), 0, 255).astype(np.uint8)
        name = f"{20 + i % 40}_{gender}_0_20170101{i:09d}.jpg.chip.jpg"
        (raw / name).write_bytes(tf.io.encode_jpeg(image, quality=95).numpy())
    convert.convert(ConvertConfig(source="utkface", data_dir=str(raw),
                                  out_dir=str(root / "records"), val_fraction=0.25,
                                  test_fraction=0.0, progress=False))
    return str(root / "records")


@pytest.fixture(scope="session")
def fairface_records(tmp_path_factory, shared_data) -> str:
    """60 real FairFace faces (their own CSV rows, in FairFace's layout), converted at 72 px,
    all in the ``test`` split."""
    import shutil

    from tfgender.config import ConvertConfig
    from tfgender.data import convert

    root = tmp_path_factory.mktemp("fairface")
    source = shared_data / "fairface"
    lines = (source / "fairface_label_train.csv").read_text().splitlines()
    (root / "raw" / "train").mkdir(parents=True)
    for line in lines[1:61]:
        name = line.split(",", 1)[0]
        shutil.copy(source / name, root / "raw" / name)
    (root / "raw" / "fairface_label_train.csv").write_text("\n".join(lines[:61]) + "\n")
    convert.convert(ConvertConfig(source="fairface", data_dir=str(root / "raw"),
                                  out_dir=str(root / "records"), image_size=72,
                                  val_fraction=0.0, test_fraction=1.0, progress=False))
    return str(root / "records")
