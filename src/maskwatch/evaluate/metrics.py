"""The evaluation core: metric objects fed with ``update(...)`` and read with ``compute()``.

``ClassificationMetrics`` scores the mask-state classifier on face crops, ``DetectionMetrics`` a
detector (with or without mask states) on annotated images. ``maskwatch eval``, the classifier's
training (validation and test) and the detector's training (validation) all use them, so a number
means the same everywhere. Results are typed (``maskwatch.evaluate.results``); ``to_dict()`` gives
the JSON written to reports.

    metrics = ClassificationMetrics()
    metrics.update(["mask", "no_mask"], [[0.9, 0.1, 0.0], [0.3, 0.6, 0.1]])
    result = metrics.compute()
    result.accuracy, result.per_class["mask"].recall, result.confusion.matrix
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from ..data.dataset import AnnotatedImage
from ..faces import LABEL_INDEX, LABELS, Faces
from .classification import classification_result
from .detection import detection_result
from .results import ClassificationResult, DetectionEvaluation


class ClassificationMetrics:
    """Accumulates true labels and predicted probabilities; ``compute()`` gives a ``ClassificationResult``."""

    def __init__(self, n_bins: int = 10) -> None:
        self.n_bins = n_bins
        self._truth: list[np.ndarray] = []
        self._probs: list[np.ndarray] = []

    def update(self, labels: Sequence[str] | np.ndarray, probs: np.ndarray | Sequence[Sequence[float]]) -> None:
        """Add faces: labels as MaskWatch label names or indices into ``LABELS``; probs (N, 3) in ``LABELS`` order."""
        truth = (np.asarray(labels, np.int64).reshape(-1) if isinstance(labels, np.ndarray) and labels.dtype.kind in "iu"
                 else np.array([LABEL_INDEX[label] for label in labels], np.int64))
        p = np.asarray(probs, np.float64).reshape(-1, len(LABELS))
        if len(truth) != len(p):
            raise ValueError(f"{len(truth)} labels but {len(p)} probability rows")
        self._truth.append(truth)
        self._probs.append(p)

    def __len__(self) -> int:
        return int(sum(len(t) for t in self._truth))

    def compute(self) -> ClassificationResult:
        truth = np.concatenate(self._truth) if self._truth else np.zeros(0, np.int64)
        probs = np.concatenate(self._probs) if self._probs else np.zeros((0, len(LABELS)))
        return classification_result(truth, probs, self.n_bins)


class DetectionMetrics:
    """Accumulates (ground truth, predicted faces) per image; ``compute()`` gives a ``DetectionEvaluation``
    (its ``result`` is the typed ``DetectionResult``; ``curves`` and ``examples`` feed the plots).

    ``operating_score`` is the score threshold of the TP/FP counts; AP uses every prediction given.
    """

    def __init__(self, operating_score: float, n_examples: int = 12) -> None:
        self.operating_score = operating_score
        self.n_examples = n_examples
        self._pairs: list[tuple[AnnotatedImage, Faces]] = []

    def update(self, image: AnnotatedImage, faces: Faces) -> None:
        self._pairs.append((image, faces))

    def __len__(self) -> int:
        return len(self._pairs)

    def compute(self) -> DetectionEvaluation:
        return detection_result(self._pairs, self.operating_score, self.n_examples)


def evaluate_classification(true_labels: Sequence[str], probs: np.ndarray | Sequence[Sequence[float]],
                            n_bins: int = 10) -> dict[str, Any]:
    """``ClassificationMetrics`` in one call, as the JSON-ready dict of a report's ``metrics``."""
    metrics = ClassificationMetrics(n_bins)
    metrics.update(true_labels, probs)
    return metrics.compute().to_dict()


def evaluate_detections(images: Sequence[AnnotatedImage], predictions: Mapping[str, Faces],
                        operating_score: float, n_examples: int = 12) -> DetectionEvaluation:
    """``DetectionMetrics`` over the images that have an entry in ``predictions`` (by ``image.key``).

    Images without predictions are left out (the caller counts and reports them).
    """
    metrics = DetectionMetrics(operating_score, n_examples)
    for image in images:
        if image.key in predictions:
            metrics.update(image, predictions[image.key])
    return metrics.compute()
