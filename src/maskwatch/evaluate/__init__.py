"""Evaluation: detection metrics (TP/FP at an operating point, AP, mAP), classifier metrics, plots, reports."""

from .classification import calibration, evaluate_classification
from .detection import DetectionEvaluation, evaluate_detections
from .inputs import Predictions, dataset_splits, read_predictions_jsonl
from .matching import average_precision, match_image
from .report import write_report

__all__ = [
    "DetectionEvaluation",
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
