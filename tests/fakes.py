"""Small on-disk datasets and broken files for tests, made with numpy and TensorFlow only."""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf


def jpeg_bytes(size: int | tuple[int, int], seed: int = 0, quality: int = 90) -> bytes:
    """A JPEG of smooth random content: (height, width) or a square side."""
    h, w = (size, size) if isinstance(size, int) else size
    rng = np.random.RandomState(seed)
    coarse = rng.randint(0, 256, size=(4, 4, 3)).astype(np.float32)
    image = tf.image.resize(coarse[None], [h, w])[0]
    return tf.io.encode_jpeg(tf.cast(image, tf.uint8), quality=quality).numpy()


def write_utkface_tree(root: str, num_images: int, size: int = 32) -> list[str]:
    """Writes ``num_images`` UTKFace-named JPEGs (alternating gender) under ``root``.

    Returns:
        The written paths relative to ``root``, sorted.
    """
    os.makedirs(root, exist_ok=True)
    names = []
    for i in range(num_images):
        name = f"{20 + i % 50}_{i % 2}_{i % 5}_2017010{i % 10}{i:09d}.jpg.chip.jpg"
        with open(os.path.join(root, name), "wb") as f:
            f.write(jpeg_bytes(size, seed=i))
        names.append(name)
    return sorted(names)


def bomb_jpeg(width: int = 60000, height: int = 60000) -> bytes:
    """A small real JPEG whose frame header is patched to claim an enormous size."""
    data = bytearray(jpeg_bytes(16))
    pos = 2
    while True:
        marker, length = data[pos + 1], int.from_bytes(data[pos + 2:pos + 4], "big")
        if marker in (0xC0, 0xC2):
            data[pos + 5:pos + 9] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
            return bytes(data)
        pos += 2 + length


def stop_this_process(*_args) -> None:
    """A pool task that kills the worker process running it, as the OOM killer or a kill -9
    would (importable by name, so a spawned worker can unpickle it)."""
    os._exit(1)
