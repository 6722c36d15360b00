"""Mask state of images that are already face crops: what ``maskwatch classify`` runs.

    >>> service = ClassifyService(ClassifyConfig(locate=True, threads=2))
    >>> service.classify_file("crops/a.jpg").record()
    {'image': 'crops/a.jpg', 'label': 'mask', 'label_score': 0.98, 'probs': {...}}
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..faces import Faces
from ..images import DEFAULT_MAX_PIXELS
from ..protocols import FaceClassifier, FaceDetector


class ClassifyConfig(BaseModel):
    """The classifier and how the face is framed in each crop."""

    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())

    model: str | None = Field(None, description="Classifier ONNX file (None: the shipped one).")
    locate: bool = Field(True, description="Find the face inside each crop first (CenterFace, as in training); "
                         "False: classify the whole image.")
    threads: int | None = Field(None, ge=0, description="CPU threads for inference (None or 0: all).")
    max_pixels: int = Field(DEFAULT_MAX_PIXELS, ge=1, description="Refuse images larger than this many pixels.")

    @field_validator("model", mode="before")
    @classmethod
    def _path_as_text(cls, value: Any) -> Any:
        return os.fspath(value) if isinstance(value, os.PathLike) else value


@dataclass
class Classification:
    """One crop's result: ``faces`` holds the one face classified (its box: the located face, or the
    whole image) with its ``probs``."""

    image: str
    faces: Faces

    @property
    def label(self) -> str:
        labels = self.faces.labels
        assert labels is not None
        return labels[0]

    def record(self) -> dict[str, Any]:
        """``{"image", "label", "label_score", "probs"}``: a ``classify --json`` line."""
        face = self.faces.to_records()[0]
        return {"image": self.image, "label": face["label"], "label_score": face["label_score"],
                "probs": face["probs"]}


class ClassifyService:
    """The classifier (and the face locator, with ``locate``) of ``config``, loaded once."""

    def __init__(self, config: ClassifyConfig | None = None, classifier: FaceClassifier | None = None,
                 locator: FaceDetector | None = None):
        self.config = config if config is not None else ClassifyConfig()
        if classifier is None:
            from ..classifier import MaskClassifier

            classifier = MaskClassifier(self.config.model, threads=self.config.threads)
        if locator is None and self.config.locate:
            from ..classifier import face_locator

            locator = face_locator(self.config.threads)
        self.classifier = classifier
        self.locator = locator if self.config.locate else None

    def classify_image(self, image: np.ndarray, name: str = "image") -> Classification:
        """Classify a decoded BGR ``uint8`` crop."""
        from ..classifier import face_box_in_crop

        face = Faces(boxes=face_box_in_crop(image, self.locator), scores=np.ones(1, np.float32))
        return Classification(str(name), self.classifier.classify(image, face))

    def classify_file(self, path: str | os.PathLike[str]) -> Classification:
        """Read the crop at ``path`` (InputError naming it when it cannot be used) and classify it."""
        from ..images import read_image

        return self.classify_image(read_image(path, max_pixels=self.config.max_pixels), str(path))
