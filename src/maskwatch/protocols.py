"""The two model interfaces MaskWatch's pipelines are built from: a face detector and a face
classifier. Anything with these methods fits (the shipped classes, peers, test doubles)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from .faces import Faces


@runtime_checkable
class FaceDetector(Protocol):
    """A face detector: BGR ``uint8`` image in, :class:`~maskwatch.faces.Faces` out.

    Detectors that also judge masks (peers such as AIZOO or the masked-face UltraFace) may set
    ``probs``; MaskWatch's own pipeline replaces them with its classifier's.
    """

    name: str
    min_score: float

    def detect(self, image: np.ndarray) -> Faces: ...


@runtime_checkable
class FaceClassifier(Protocol):
    """A mask-state classifier: the image and its faces in, the same faces with ``probs`` (one row of
    ``("mask", "no_mask", "incorrect")`` probabilities per face) out. :class:`~maskwatch.classifier.MaskClassifier`
    is the shipped one."""

    def classify(self, image: np.ndarray, faces: Faces) -> Faces: ...


__all__ = ["FaceClassifier", "FaceDetector"]
