"""Evaluation: detection metrics (TP/FP at an operating point, AP, mAP), classifier metrics, plots, reports.

The metric objects (``ClassificationMetrics``, ``DetectionMetrics``) are the one evaluation core: ``eval``
and training both feed them and read their typed results.
"""

from .classification import calibration
from .inputs import Predictions, dataset_splits, read_predictions_jsonl
from .matching import average_precision, match_image
from .metrics import ClassificationMetrics, DetectionMetrics, evaluate_classification, evaluate_detections
from .report import write_report
from .results import ClassificationResult, DetectionEvaluation, DetectionResult

__all__ = [
    "ClassificationMetrics",
    "ClassificationResult",
    "DetectionEvaluation",
    "DetectionMetrics",
    "DetectionResult",
    "Predictions",
    "average_precision",
    "calibration",
    "dataset_splits",
    "evaluate_classification",
    "evaluate_detections",
    "match_image",
    "read_predictions_jsonl",
    "write_report",
]
