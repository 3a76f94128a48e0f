"""Figures for TensorBoard and run directories, drawn with matplotlib (headless, Agg)."""

from __future__ import annotations

import numpy as np

CLASSES = ("female", "male")


def _pyplot():
    import matplotlib  # (figures only: keeps imports light elsewhere)

    matplotlib.use("Agg")
    from matplotlib import pyplot

    return pyplot


def figure_to_image(figure) -> np.ndarray:
    """A matplotlib figure as uint8 ``(1, H, W, 3)``, ready for ``tf.summary.image``."""
    figure.canvas.draw()
    image = np.asarray(figure.canvas.buffer_rgba())[..., :3].copy()
    _pyplot().close(figure)
    return image[None]


def confusion_matrix_image(confusion: dict, title: str = "") -> np.ndarray:
    """A labelled 2x2 confusion matrix: true class by row, prediction by column, each cell's
    count and its share of the row (the per-class recall), shaded by that share.

    Returns:
        uint8 ``(1, H, W, 3)``.
    """
    grid = np.array([[confusion["tn"], confusion["fp"]], [confusion["fn"], confusion["tp"]]])
    shares = grid / np.maximum(1, grid.sum(axis=1, keepdims=True))
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(4, 3.4), dpi=80)
    axis.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    for row in range(2):
        for col in range(2):
            axis.text(col, row, f"{grid[row, col]:,}\n{shares[row, col]:.1%}", ha="center",
                      va="center", color="white" if shares[row, col] > 0.5 else "black")
    axis.set_xticks([0, 1], CLASSES)
    axis.set_yticks([0, 1], CLASSES)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    axis.set_title(title or "confusion matrix")
    figure.tight_layout()
    return figure_to_image(figure)


def face_grid_image(rows, title: str = "") -> np.ndarray:
    """Faces in labelled rows: one row per ``(label, [(image, caption), ...])``.

    Args:
        rows: the rows, top to bottom; images are uint8 ``(H, W, 3)``, captions short text.
        title: the figure's title.

    Returns:
        uint8 ``(1, H, W, 3)``.
    """
    columns = max([len(faces) for _, faces in rows] + [1])
    plt = _pyplot()
    figure, axes = plt.subplots(len(rows), columns, squeeze=False, dpi=80,
                                figsize=(1.35 * columns + 1.8, 1.6 * len(rows) + 0.5))
    for axis_row, (label, faces) in zip(axes, rows, strict=True):
        for index, axis in enumerate(axis_row):
            axis.set_xticks([])
            axis.set_yticks([])
            for spine in axis.spines.values():
                spine.set_visible(False)
            if index < len(faces):
                image, caption = faces[index]
                axis.imshow(image)
                axis.set_xlabel(caption, fontsize=7)
        axis_row[0].set_ylabel(label, fontsize=8, rotation=0, ha="right", va="center")
    figure.suptitle(title)
    figure.tight_layout()
    return figure_to_image(figure)


__all__ = ["CLASSES", "confusion_matrix_image", "face_grid_image", "figure_to_image"]
