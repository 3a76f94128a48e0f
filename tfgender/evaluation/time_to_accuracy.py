"""Time to accuracy (as DAWNBench measures it): validation accuracy against training minutes.

Every epoch of a run adds a point; ``write_report`` keeps a Markdown table and a PNG plot of
them in the run directory, so recipes compare by accuracy per minute of training.
"""

from __future__ import annotations

import os

from tfgender.files import write_bytes_atomic

TABLE_FILE = "time_to_accuracy.md"
PLOT_FILE = "time_to_accuracy.png"


def points(history: list[dict]) -> list[dict]:
    """One point per epoch: cumulative minutes of training (and with evaluation) and metrics.

    Args:
        history: ``history.json`` entries (``seconds`` of training and ``eval_seconds`` of
            evaluation per epoch, ``eval`` metrics), in epoch order, across resumes.

    Returns:
        ``[{"epoch", "train_minutes", "wall_minutes", "accuracy", "auc", "loss"}]``.
    """
    out, train, wall = [], 0.0, 0.0
    for entry in history:
        train += entry.get("seconds", 0.0)
        wall += entry.get("seconds", 0.0) + entry.get("eval_seconds", 0.0)
        metrics = entry.get("eval") or {}
        out.append({"epoch": entry["epoch"], "train_minutes": train / 60.0,
                    "wall_minutes": wall / 60.0, "accuracy": metrics.get("accuracy"),
                    "auc": metrics.get("auc"), "loss": metrics.get("loss")})
    return out


def format_table(rows: list[dict], title: str = "") -> str:
    """The Markdown table of ``points``."""
    lines = [f"# Time to accuracy{': ' + title if title else ''}", "",
             "Minutes of training (and with each epoch's evaluation) against validation "
             "accuracy.", "",
             "| epoch | training minutes | with evaluation | val accuracy | val AUC | val loss |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['epoch']} | {r['train_minutes']:.2f} | {r['wall_minutes']:.2f} | "
                     f"{_fmt(r['accuracy'])} | {_fmt(r['auc'])} | {_fmt(r['loss'])} |")
    return "\n".join(lines) + "\n"


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def write_report(out_dir: str, history: list[dict], title: str = "") -> dict:
    """Writes ``time_to_accuracy.md`` and ``time_to_accuracy.png`` into ``out_dir``.

    Returns:
        ``{"table": path, "plot": path or None}`` (no plot without matplotlib).
    """
    rows = points(history)
    table = os.path.join(out_dir, TABLE_FILE)
    write_bytes_atomic(table, format_table(rows, title).encode())
    plot = os.path.join(out_dir, PLOT_FILE)
    try:
        plot_points(rows, plot, title)
    except ImportError:  # matplotlib is a dependency; a broken install must not stop training
        plot = None
    return {"table": table, "plot": plot}


def plot_points(rows: list[dict], path: str, title: str = "") -> None:
    """Plots validation accuracy against training minutes into a PNG at ``path``."""
    import matplotlib  # (only for the report; keeps imports light elsewhere)
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 4), dpi=100)
    axis.plot([r["train_minutes"] for r in rows],
              [r["accuracy"] for r in rows], marker="o", label="training time")
    axis.plot([r["wall_minutes"] for r in rows],
              [r["accuracy"] for r in rows], marker=".", linestyle="--",
              label="with evaluation")
    axis.set_xlabel("minutes")
    axis.set_ylabel("validation accuracy")
    axis.set_title(title or "time to accuracy")
    axis.grid(True, alpha=0.3)
    axis.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(path + ".tmp.png")
    plt.close(figure)
    os.replace(path + ".tmp.png", path)
