"""Image -> faces -> mask state: the path every command uses."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .faces import Faces

if TYPE_CHECKING:
    from .detectors import DetectorConfig
    from .protocols import FaceClassifier, FaceDetector


@dataclass
class StageTimer:
    """Milliseconds spent per stage, summed over calls."""

    ms: dict[str, float] = field(default_factory=dict)

    def add(self, stage: str, started: float) -> float:
        now = time.perf_counter()
        self.ms[stage] = self.ms.get(stage, 0.0) + (now - started) * 1000
        return now


#: Where a face's mask state comes from when the detector judges masks itself (``centerface-mask``,
#: AIZOO, the masked-face UltraFace): its own probabilities, the crop classifier's, or their mean.
FUSIONS = ("detector", "classifier", "fused")


class MaskPipeline:
    """A face detector followed by the mask classifier.

    ``classifier=None`` keeps whatever the detector said (``--classifier none``). With both, ``fusion``
    says whose state counts: ``classifier`` (the detector's probs are replaced), ``detector`` (the
    classifier is not run) or ``fused`` (the mean of both; a detector without a state falls back to
    the classifier's). None: the detector's ``default_fusion``, else ``classifier``.
    """

    def __init__(self, detector: "FaceDetector", classifier: "FaceClassifier | None", fusion: str | None = None):
        fusion = fusion or getattr(detector, "default_fusion", None) or "classifier"
        if fusion not in FUSIONS:
            from .errors import MaskWatchError

            raise MaskWatchError(f"unknown fusion '{fusion}'; choose from: {', '.join(FUSIONS)}")
        self.detector = detector
        self.classifier = None if fusion == "detector" else classifier
        self.fusion = fusion

    def __call__(self, image: np.ndarray, timer: StageTimer | None = None) -> Faces:
        start = time.perf_counter()
        faces = self.detector.detect(image)
        if timer:
            start = timer.add("detect", start)
        if self.classifier is not None and len(faces):
            own = faces.probs
            faces = self.classifier.classify(image, faces)
            if self.fusion == "fused" and own is not None and faces.probs is not None:
                faces = faces.with_(probs=(own + faces.probs) / 2)
        elif self.classifier is not None:
            faces = faces.with_(probs=np.zeros((0, 3), np.float32))
        if timer:
            timer.add("classify", start)
        return faces


def build_pipeline(
    detector: "str | DetectorConfig | None" = None,
    min_score: float | None = None,
    min_face: float | None = 0,
    threads: int | None = None,
    detector_model: str | None = None,
    classifier_model: str | None = None,
    classifier: bool = True,
    fusion: str | None = None,
    **detector_options: Any,
) -> MaskPipeline:
    """The default MaskWatch pipeline, configured by name (what the CLI and the server build).

    ``detector``: a name (None: :data:`~maskwatch.detectors.DEFAULT_DETECTOR`) configured by the
    detector options here, where None means "not set" (the detector's default), or a ready
    :class:`~maskwatch.detectors.DetectorConfig` (then only ``threads`` of those options is read, for the
    classifier, defaulting to the config's). ``classifier=False`` runs no crop classifier (the
    detector's own state, if it has one, is the answer).
    """
    from .classifier import MaskClassifier
    from .detectors import DEFAULT_DETECTOR, DetectorConfig, detector_config

    if isinstance(detector, DetectorConfig):
        config = detector
        threads = config.threads if threads is None else threads
    else:
        given = dict(detector_options, min_face=min_face, threads=threads, min_score=min_score,
                     model_path=detector_model)
        config = detector_config(detector or DEFAULT_DETECTOR, **{k: v for k, v in given.items() if v is not None})
    found = config.build()
    if fusion == "detector" and not getattr(found, "default_fusion", None):
        from .errors import MaskWatchError

        raise MaskWatchError(f"detector '{found.name}' says no mask state of its own: --fusion detector needs "
                             "centerface-mask (or run a classifier)")
    use_classifier = classifier and fusion != "detector"
    return MaskPipeline(found, MaskClassifier(classifier_model, threads=threads) if use_classifier else None, fusion)
