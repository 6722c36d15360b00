"""Classification metrics of the mask-state classifier from true labels and predicted probabilities
(the computation behind ``metrics.ClassificationMetrics``)."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..faces import LABEL_INDEX, LABELS
from .matching import APResult, average_precision
from .results import (
    BestRecall,
    Calibration,
    CalibrationBin,
    ClassificationResult,
    ClassScores,
    Confusion,
    ThresholdPoint,
    TwoStates,
)

#: thresholds on p(state) reported as operating points
THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
#: the precision floors at which the best reachable recall is reported
PRECISION_FLOORS = (0.8, 0.9)


def _ratio(a: float, b: float) -> float:
    return float(a / b) if b else float("nan")


def calibration(confidence: np.ndarray, correct: np.ndarray, n_bins: int = 10) -> Calibration:
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
        bins.append(CalibrationBin(low=float(edges[b]), high=float(edges[b + 1]), count=n, accuracy=acc,
                                   confidence=conf))
    return Calibration(ece=float(ece) if len(confidence) else float("nan"), bins=bins)


def wilson_interval(successes: int, trials: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion: how far a recall on 20 faces can be trusted."""
    if trials == 0:
        return float("nan"), float("nan")
    p = successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * np.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def one_vs_rest(scores: np.ndarray, positive: np.ndarray) -> APResult:
    """Precision-recall of one state against the others, ranking faces by p(state)."""
    return average_precision(scores, positive, int(np.sum(positive)))


def operating_points(curve: APResult, thresholds: Sequence[float] = THRESHOLDS,
                     floors: Sequence[float] = PRECISION_FLOORS) -> tuple[list[ThresholdPoint], dict[str, BestRecall]]:
    """Precision and recall when a face counts as the state at p(state) >= t, and the highest recall
    any threshold reaches while precision stays at or above each floor (with that threshold)."""
    at = []
    for t in thresholds:
        kept = int(np.searchsorted(-curve.scores, -t, side="right"))  # scores are sorted high to low
        precision = float(curve.precision[kept - 1]) if kept else float("nan")
        recall = float(curve.recall[kept - 1]) if kept else 0.0
        at.append(ThresholdPoint(threshold=float(t), precision=precision, recall=recall))
    best = {}
    for floor in floors:
        ok = np.flatnonzero(curve.precision >= floor - 1e-12)
        # only the last face of a run of equal scores is a threshold that can be set
        ok = [i for i in ok if i + 1 == len(curve.scores) or curve.scores[i + 1] < curve.scores[i]]
        if ok and curve.n_gt:
            i = max(ok, key=lambda k: (curve.recall[k], curve.precision[k]))
            best[str(floor)] = BestRecall(recall=float(curve.recall[i]), precision=float(curve.precision[i]),
                                          threshold=float(curve.scores[i]))
        else:
            best[str(floor)] = BestRecall(recall=0.0, precision=float("nan"), threshold=float("nan"))
    return at, best


def classification_result(truth: np.ndarray, probs: np.ndarray, n_bins: int = 10) -> ClassificationResult:
    """Accuracy, per-class precision / recall / F1, confusion matrix (rows true, columns predicted)
    and calibration from label indices (``LABELS`` order) and (N, 3) probabilities.

    Per class also: AP of p(state) against the other states, precision and recall at fixed thresholds,
    and the best recall reachable at precision >= 0.8 / 0.9. F1 is 0 for a state with faces of which
    none was predicted right, NaN for a state without faces; macro F1 averages the states with faces.
    ``mask_vs_no_mask`` is the accuracy on mask and no_mask faces when only those two states compete.
    """
    probs = np.asarray(probs, np.float64).reshape(-1, len(LABELS))
    truth = np.asarray(truth, np.int64).reshape(-1)
    if len(truth) != len(probs):
        raise ValueError(f"{len(truth)} labels but {len(probs)} probability rows")
    pred = probs.argmax(axis=1) if len(probs) else np.zeros(0, np.int64)
    k = len(LABELS)
    matrix = np.zeros((k, k), np.int64)
    np.add.at(matrix, (truth, pred), 1)
    per_class = {}
    curves = {name: one_vs_rest(probs[:, c], truth == c) for c, name in enumerate(LABELS)}
    for c, name in enumerate(LABELS):
        tp = int(matrix[c, c])
        precision = _ratio(tp, matrix[:, c].sum())
        recall = _ratio(tp, matrix[c].sum())
        f1 = _ratio(2 * precision * recall, precision + recall) if tp else (0.0 if matrix[c].sum() else float("nan"))
        curve = curves[name]
        at, best = operating_points(curve)
        per_class[name] = ClassScores(precision=precision, recall=recall, f1=f1, support=int(matrix[c].sum()),
                                      recall_ci95=wilson_interval(tp, int(matrix[c].sum())), ap=curve.ap,
                                      at_threshold=at, best_recall_at_precision=best)
    present = [name for name in LABELS if per_class[name].support]
    correct = pred == truth
    two = truth < LABEL_INDEX["incorrect"]  # mask vs no_mask: the two-state task of the seed projects
    two_correct = int((probs[two, :2].argmax(axis=1) == truth[two]).sum()) if two.any() else 0
    return ClassificationResult(
        samples=int(len(truth)),
        accuracy=_ratio(int(correct.sum()), len(truth)),
        macro_f1=float(np.mean([per_class[n].f1 for n in present])) if present else float("nan"),
        mask_vs_no_mask=TwoStates(accuracy=_ratio(two_correct, int(two.sum())), samples=int(two.sum())),
        per_class=per_class,
        confusion=Confusion(rows_true=list(LABELS), columns_predicted=list(LABELS), matrix=matrix.tolist()),
        calibration=calibration(probs.max(axis=1) if len(probs) else np.zeros(0), correct, n_bins),
        curves=curves,
    )
