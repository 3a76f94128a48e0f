"""Tests of experiments/legacy.py: the study's ImageDataGenerator loader on a tiny UTKFace tree."""

from __future__ import annotations

import fakes
import numpy as np
import pytest

from tfgender.data import readers
from tfgender.experiments import legacy


@pytest.fixture(scope="module")
def utk(tmp_path_factory):
    root = tmp_path_factory.mktemp("utk")
    fakes.write_utkface_tree(str(root), 10, size=40)
    return str(root), readers.read_source("utkface", str(root)).frame


@pytest.mark.parametrize("class_mode", ["binary", "raw"])
def test_plain_batches_follow_the_frame(utk, class_mode):
    root, frame = utk
    iterator = legacy.create_idg_iterator(frame, root, batch_size=4, image_size=24,
                                          augment=False, shuffle=False, class_mode=class_mode)
    images, labels = [], []
    for _ in range(3):  # 4 + 4 + 2
        x, y = next(iterator)
        images.append(x)
        labels.append(y)
    assert [len(x) for x in images] == [4, 4, 2]
    assert images[0].shape == (4, 24, 24, 3) and images[0].dtype == np.float32
    x = np.concatenate(images)
    assert x.min() >= 0.0 and x.max() <= 1.0 and x.max() > 0.2
    np.testing.assert_array_equal(np.concatenate(labels).astype(int), frame["label"].to_numpy())
    assert set(frame["label"]) == {0, 1}


def test_augmented_batches_are_scaled_and_labelled(utk):
    root, frame = utk
    iterator = legacy.create_idg_iterator(frame, root, batch_size=5, image_size=32, seed=1)
    x, y = next(iterator)
    assert x.shape == (5, 32, 32, 3) and x.min() >= 0.0 and x.max() <= 1.0
    label_of = dict(zip(frame["path"], frame["label"], strict=True))
    picked = [iterator.filenames[i] for i in iterator.index_array[:5]]
    assert [label_of[p.split("/")[-1]] for p in picked] == y.astype(int).tolist()
    plain = legacy.create_idg_iterator(frame, root, batch_size=5, image_size=32, seed=1,
                                       augment=False)
    assert not np.allclose(next(plain)[0], x)  # same order, so the difference is augmentation
    with pytest.raises(ValueError, match="class_mode"):
        legacy.create_idg_iterator(frame, root, class_mode="categorical")
