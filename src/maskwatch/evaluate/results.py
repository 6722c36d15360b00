"""Typed results of the evaluation core (``maskwatch.evaluate.metrics``).

Every result has ``to_dict()``: the JSON shape written to ``report.json`` (NaN where a number does
not apply; ``report.json_ready`` turns NaN into null). Code reads the attributes, never the dict keys.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ..faces import LABELS
from .matching import APResult


@dataclass(frozen=True)
class Confusion:
    """Counts with rows the true states and columns the predicted ones (detection adds a 'missed' column)."""

    rows_true: list[str]
    columns_predicted: list[str]
    matrix: list[list[int]]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class CalibrationBin:
    low: float
    high: float
    count: int
    accuracy: float
    confidence: float


@dataclass(frozen=True)
class Calibration:
    """Expected calibration error of the top-class confidence, with the reliability bins."""

    ece: float
    bins: list[CalibrationBin]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ThresholdPoint:
    """Precision and recall when a face counts as the state at p(state) >= threshold."""

    threshold: float
    precision: float
    recall: float


@dataclass(frozen=True)
class BestRecall:
    """The highest recall any threshold reaches while precision stays at or above a floor."""

    recall: float
    precision: float
    threshold: float


@dataclass(frozen=True)
class ClassScores:
    """One state of the classifier: argmax precision / recall / F1 and its one-vs-rest ranking."""

    precision: float
    recall: float
    f1: float
    support: int
    recall_ci95: tuple[float, float]
    ap: float
    at_threshold: list[ThresholdPoint]
    best_recall_at_precision: dict[str, BestRecall]


@dataclass(frozen=True)
class TwoStates:
    """Accuracy on mask and no_mask faces when only those two states compete."""

    accuracy: float
    samples: int


@dataclass(frozen=True)
class ClassificationResult:
    """What ``ClassificationMetrics.compute()`` returns (used by ``eval classify`` and by training)."""

    samples: int
    accuracy: float
    macro_f1: float
    mask_vs_no_mask: TwoStates
    per_class: dict[str, ClassScores]
    confusion: Confusion
    calibration: Calibration
    curves: dict[str, APResult] = field(default_factory=dict, compare=False, repr=False)  # for the PR plot

    def to_dict(self) -> dict[str, Any]:
        """The ``metrics`` of an ``eval classify`` report."""
        return {
            "samples": self.samples, "accuracy": self.accuracy, "macro_f1": self.macro_f1,
            "mask_vs_no_mask": asdict(self.mask_vs_no_mask),
            "per_class": {name: asdict(scores) for name, scores in self.per_class.items()},
            "confusion": self.confusion.to_dict(),
            "calibration": self.calibration.to_dict(),
        }

    def training_dict(self) -> dict[str, Any]:
        """The compact shape of a training run's ``metrics.json`` (``val``, ``test``, ``test_by_source``)."""
        return {
            "accuracy": self.accuracy,
            "mask_vs_no_mask_accuracy": self.mask_vs_no_mask.accuracy,
            "per_class": {name: {"precision": s.precision, "recall": s.recall, "f1": s.f1, "support": s.support}
                          for name, s in self.per_class.items()},
            "confusion_matrix": self.confusion.matrix,
            "labels": list(LABELS),
            "n": self.samples,
        }


# -- detection ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class OperatingPoint:
    """Predictions at or above the operating score matched to ground truth at one IoU."""

    tp: int
    fp: int
    fn: int
    precision: float
    recall: float
    f1: float
    recall_by_state: dict[str, float]
    gt_by_state: dict[str, int]


@dataclass(frozen=True)
class FaceAP:
    """Class-agnostic face detection in one size bucket."""

    ap50: float
    ap50_95: float
    gt_faces: int
    recall50: float


@dataclass(frozen=True)
class APPair:
    ap50: float
    ap50_95: float


@dataclass(frozen=True)
class MeanAP:
    """2-class (mask, no_mask; incorrect ignored) and 3-class mean AP."""

    map50_2class: float
    map50_95_2class: float
    map50_3class: float
    map50_95_3class: float

    def to_dict(self) -> dict[str, Any]:
        return {"3class": {"map50": self.map50_3class, "map50_95": self.map50_95_3class},
                "2class": {"map50": self.map50_2class, "map50_95": self.map50_95_2class}}


@dataclass(frozen=True)
class DetectionConfusion(Confusion):
    states_available: bool = False


@dataclass(frozen=True)
class Example:
    """One face worth looking at (a miss, a false alarm or a misclassification)."""

    path: str
    box: list[float] | None
    caption: str
    sort_key: float


@dataclass(frozen=True)
class DetectionResult:
    """What ``DetectionMetrics.compute()`` returns. Keys of the dicts: IoU (operating point), size bucket
    ('all', 'small', 'medium', 'large'), class name (``class_ap`` also has 'mask_2class', 'no_mask_2class')."""

    images: int
    gt_faces: int
    predicted_faces: int
    operating_score: float
    min_prediction_score: float
    class_metrics_available: bool
    operating_point: dict[float, OperatingPoint]
    face_ap: dict[str, FaceAP]
    class_ap: dict[str, dict[str, APPair]]
    map: dict[str, MeanAP]
    confusion: DetectionConfusion

    def to_dict(self) -> dict[str, Any]:
        """The ``metrics`` of one run in an ``eval detect`` report."""
        return {
            "images": self.images, "gt_faces": self.gt_faces, "predicted_faces": self.predicted_faces,
            "operating_score": self.operating_score, "min_prediction_score": self.min_prediction_score,
            "class_metrics_available": self.class_metrics_available,
            "operating_point": {f"iou_{iou}": asdict(op) for iou, op in self.operating_point.items()},
            "face_ap": {bucket: asdict(v) for bucket, v in self.face_ap.items()},
            "class_ap": {bucket: {name: asdict(v) for name, v in per.items()} for bucket, per in self.class_ap.items()},
            "map": self.map["all"].to_dict(),
            "map_by_size": {bucket: v.to_dict() for bucket, v in self.map.items() if bucket != "all"},
            "confusion_iou_0.5": self.confusion.to_dict(),
        }


@dataclass(frozen=True)
class SummaryRow:
    """The numbers of the side-by-side table of ``eval detect``."""

    face_ap50: float
    mask_recall50: float
    map50_2class: float
    map50_3class: float
    precision30: float
    recall30: float
    precision50: float
    recall50: float


@dataclass
class DetectionEvaluation:
    """The result and what feeds the plots: PR curves at IoU 0.5 and example faces."""

    result: DetectionResult
    curves: dict[str, APResult] = field(default_factory=dict)
    examples: dict[str, list[Example]] = field(default_factory=dict)

    @property
    def metrics(self) -> dict[str, Any]:
        """The JSON shape of ``result`` (``DetectionResult.to_dict``)."""
        return self.result.to_dict()

    def summary(self) -> SummaryRow:
        r = self.result
        op30, op50 = r.operating_point[0.3], r.operating_point[0.5]
        return SummaryRow(
            face_ap50=r.face_ap["all"].ap50,
            mask_recall50=op50.recall_by_state.get("mask", float("nan")),
            map50_2class=r.map["all"].map50_2class, map50_3class=r.map["all"].map50_3class,
            precision30=op30.precision, recall30=op30.recall, precision50=op50.precision, recall50=op50.recall)

    def summary_row(self) -> dict[str, float]:
        """``summary()`` as a dict (the columns of the report's table)."""
        return asdict(self.summary())
