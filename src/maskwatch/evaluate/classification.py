"""Classification metrics of the mask-state classifier from true labels and predicted probabilities."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..faces import LABEL_INDEX, LABELS


def _ratio(a: float, b: float) -> float:
    return float(a / b) if b else float("nan")


def calibration(confidence: np.ndarray, correct: np.ndarray, n_bins: int = 10) -> dict:
    """Expected calibration error (ECE) of the top-class confidence, with the reliability bins.

    ECE = sum over equal-width confidence bins of (share of samples) * |accuracy - mean confidence|.
    """
    confidence = np.asarray(confidence, np.float64)
    correct = np.asarray(correct, bool)
    edges = np.linspace(0, 1, n_bins + 1)
    which = np.clip(np.searchsorted(edges, confidence, side="right") - 1, 0, n_bins - 1)
    bins, ece = [], 0.0
    for b in range(n_bins):
        inside = which == b
        n = int(inside.sum())
        acc = float(correct[inside].mean()) if n else float("nan")
        conf = float(confidence[inside].mean()) if n else float("nan")
        if n:
            ece += n / len(confidence) * abs(acc - conf)
        bins.append({"low": float(edges[b]), "high": float(edges[b + 1]), "count": n,
                     "accuracy": acc, "confidence": conf})
    return {"ece": float(ece) if len(confidence) else float("nan"), "bins": bins}


def evaluate_classification(true_labels: Sequence[str], probs: np.ndarray, n_bins: int = 10) -> dict:
    """Accuracy, per-class precision / recall / F1, confusion matrix (rows true, columns predicted)
    and calibration. ``probs`` is (N, 3) in ``LABELS`` order; labels are MaskWatch label names."""
    probs = np.asarray(probs, np.float64).reshape(-1, len(LABELS))
    if len(true_labels) != len(probs):
        raise ValueError(f"{len(true_labels)} labels but {len(probs)} probability rows")
    truth = np.array([LABEL_INDEX[label] for label in true_labels], np.int64)
    pred = probs.argmax(axis=1) if len(probs) else np.zeros(0, np.int64)
    k = len(LABELS)
    matrix = np.zeros((k, k), np.int64)
    np.add.at(matrix, (truth, pred), 1)
    per_class = {}
    for c, name in enumerate(LABELS):
        tp = int(matrix[c, c])
        precision = _ratio(tp, matrix[:, c].sum())
        recall = _ratio(tp, matrix[c].sum())
        f1 = _ratio(2 * precision * recall, precision + recall) if tp else (0.0 if matrix[c].sum() else float("nan"))
        per_class[name] = {"precision": precision, "recall": recall, "f1": f1, "support": int(matrix[c].sum())}
    present = [name for name in LABELS if per_class[name]["support"]]
    correct = pred == truth
    return {
        "samples": int(len(truth)),
        "accuracy": _ratio(int(correct.sum()), len(truth)),
        "macro_f1": float(np.mean([per_class[n]["f1"] for n in present])) if present else float("nan"),
        "per_class": per_class,
        "confusion": {"rows_true": list(LABELS), "columns_predicted": list(LABELS), "matrix": matrix.tolist()},
        "calibration": calibration(probs.max(axis=1) if len(probs) else np.zeros(0), correct, n_bins),
    }
