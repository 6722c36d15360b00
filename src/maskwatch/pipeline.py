"""Image -> faces -> mask state: the path every command uses."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .faces import Faces


@dataclass
class StageTimer:
    """Milliseconds spent per stage, summed over calls."""

    ms: dict[str, float] = field(default_factory=dict)

    def add(self, stage: str, started: float) -> float:
        now = time.perf_counter()
        self.ms[stage] = self.ms.get(stage, 0.0) + (now - started) * 1000
        return now


class MaskPipeline:
    """A face detector followed by the mask classifier.

    ``classifier=None`` keeps whatever the detector said (peers that judge masks themselves).
    """

    def __init__(self, detector: Any, classifier: Any | None):
        self.detector = detector
        self.classifier = classifier

    def __call__(self, image: np.ndarray, timer: StageTimer | None = None) -> Faces:
        start = time.perf_counter()
        faces = self.detector.detect(image)
        if timer:
            start = timer.add("detect", start)
        if self.classifier is not None and len(faces):
            faces = self.classifier.classify(image, faces)
        elif self.classifier is not None:
            faces = faces.with_(probs=np.zeros((0, 3), np.float32))
        if timer:
            timer.add("classify", start)
        return faces


def build_pipeline(
    detector: str = "centerface",
    min_score: float | None = None,
    min_face: float = 0,
    threads: int | None = None,
    detector_model: str | None = None,
    classifier_model: str | None = None,
    **detector_options: Any,
) -> MaskPipeline:
    """The default MaskWatch pipeline, configured by name (what the CLI and the server build)."""
    from .classifier import MaskClassifier
    from .detectors import create_detector

    options = dict(detector_options, min_face=min_face, threads=threads)
    if min_score is not None:
        options["min_score"] = min_score
    if detector_model is not None:
        options["model_path"] = detector_model
    return MaskPipeline(create_detector(detector, **options), MaskClassifier(classifier_model, threads=threads))
