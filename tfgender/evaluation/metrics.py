"""The one definition of the binary metrics: the training loop's evaluation and bin/evaluate.

Accuracy predicts male where the logit is above 0 (the probability above 0.5); the loss is the
sigmoid cross-entropy computed stably from the logits; the AUC is exact (the Mann-Whitney rank
formula, ties averaged), not Keras' 200-threshold approximation.
"""

from __future__ import annotations

import numpy as np

# Averaged views (10-crop) give probabilities, not logits: they are clipped to this before
# their logit is taken, as keras.losses.binary_crossentropy clips probabilities.
EPSILON = 1e-7


def logit(probabilities) -> np.ndarray:
    """``log(p / (1 - p))`` of probabilities clipped to ``[EPSILON, 1 - EPSILON]``."""
    p = np.clip(np.asarray(probabilities, np.float64), EPSILON, 1.0 - EPSILON)
    return np.log(p) - np.log1p(-p)


def exact_auc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    """ROC AUC by the rank formula (ties averaged); None when only one class is present."""
    n_pos = int(labels.sum())
    n_neg = labels.size - n_pos
    if not (n_pos and n_neg):
        return None
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    ranks = (np.cumsum(counts) - (counts - 1) / 2.0)[inverse]  # 1-based, ties averaged
    return float((ranks[labels == 1].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def binary_metrics(labels, logits=None, *, probabilities=None) -> dict:
    """Accuracy, log loss, exact ROC AUC and the confusion matrix of binary predictions.

    Args:
        labels: 1 = male (positive), 0 = female.
        logits: the model's logits, same length; or
        probabilities: predicted probabilities of male (e.g. averaged over views), used
            through their clipped logit.

    Returns:
        ``{accuracy, loss, auc, num_examples, confusion_matrix: {tn, fp, fn, tp}}``; ``auc`` is
        None when only one class is present.

    Raises:
        ValueError: not exactly one of logits/probabilities, empty or mismatched inputs, or
            labels other than 0/1.
    """
    if (logits is None) == (probabilities is None):
        raise ValueError("give logits or probabilities")
    z = np.asarray(logits, np.float64).ravel() if logits is not None else \
        logit(probabilities).ravel()
    y = np.asarray(labels).astype(np.int64).ravel()
    if y.shape != z.shape or not y.size:
        raise ValueError(f"need equal, non-empty labels and scores: {y.shape} {z.shape}")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("labels must be 0 or 1")
    predicted = (z > 0).astype(np.int64)
    # Sigmoid cross-entropy from logits, stable for large |z| (tf.nn's formula).
    loss = float(np.mean(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))))
    confusion = {"tn": int(np.sum((y == 0) & (predicted == 0))),
                 "fp": int(np.sum((y == 0) & (predicted == 1))),
                 "fn": int(np.sum((y == 1) & (predicted == 0))),
                 "tp": int(np.sum((y == 1) & (predicted == 1)))}
    return {"accuracy": float(np.mean(predicted == y)), "loss": loss, "auc": exact_auc(y, z),
            "num_examples": int(y.size), "confusion_matrix": confusion}


def best_logit_offset(labels, logits) -> dict:
    """The decision threshold on the logit that classifies ``labels`` best: choose it on a
    validation split, then subtract it from the logit (``bin/export --logit_offset``).

    Candidates are 0 and the midpoints between consecutive distinct logits; among those of
    the highest accuracy, the one nearest 0 (the smallest move) is taken.

    Returns:
        ``{offset, accuracy, accuracy_at_zero}``.
    """
    z = np.asarray(logits, np.float64).ravel()
    y = np.asarray(labels).astype(np.int64).ravel()
    if y.shape != z.shape or not y.size:
        raise ValueError(f"need equal, non-empty labels and logits: {y.shape} {z.shape}")
    values = np.unique(z)
    candidates = np.concatenate([[0.0], (values[:-1] + values[1:]) / 2.0,
                                 [values[0] - 1.0, values[-1] + 1.0]])
    # Correct at threshold t: positives above t plus negatives at or below it.
    positives = np.sort(z[y == 1])
    negatives = np.sort(z[y == 0])
    correct = (positives.size - np.searchsorted(positives, candidates, side="right")
               + np.searchsorted(negatives, candidates, side="right"))
    best = correct.max()
    ties = candidates[correct == best]
    offset = float(ties[np.argmin(np.abs(ties))])
    return {"offset": offset, "accuracy": float(best / y.size),
            "accuracy_at_zero": float(correct[0] / y.size)}


def run_eval(eval_step, dataset) -> dict:
    """One pass over ``dataset``; returns {loss, accuracy, auc} by ``metrics.binary_metrics``.

    The AUC is NaN when the pass holds one class only.
    """
    logits, labels = [], []
    for images, batch_labels in dataset:
        batch_logits, batch_labels = eval_step(images, batch_labels)
        logits.append(batch_logits.numpy().ravel())
        labels.append(batch_labels.numpy().ravel())
    result = binary_metrics(np.concatenate(labels), np.concatenate(logits))
    return {"loss": result["loss"], "accuracy": result["accuracy"],
            "auc": float("nan") if result["auc"] is None else result["auc"]}


__all__ = ["EPSILON", "best_logit_offset", "binary_metrics", "exact_auc", "logit", "run_eval"]
