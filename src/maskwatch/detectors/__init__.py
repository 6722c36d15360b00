"""Face detectors behind one interface (:class:`FaceDetector`), chosen by name."""

from __future__ import annotations

import importlib
from typing import Any

from .base import FaceDetector, filter_faces

#: name -> "module:Class"; modules are imported only when their detector is asked for.
DETECTORS: dict[str, str] = {
    "centerface-mask": "maskwatch.detectors.centerface_mask:CenterFaceMaskDetector",
    "centerface": "maskwatch.detectors.centerface:CenterFaceDetector",
    "yunet": "maskwatch.detectors.yunet:YuNetDetector",
    "ultraface": "maskwatch.detectors.ultraface:UltraFaceDetector",
    "mtcnn": "maskwatch.detectors.mtcnn:MTCNNDetector",
    "aizoo": "maskwatch.detectors.aizoo:AizooDetector",
}

#: What every command uses unless told otherwise: MaskWatch's own mask-aware detector.
DEFAULT_DETECTOR = "centerface"


def create_detector(name: str, **options: Any) -> FaceDetector:
    """Build a detector by name; options (min_score, min_face, threads, model_path, ...) go to it."""
    target = DETECTORS.get(name.lower())
    if target is None:
        from ..errors import MaskWatchError

        raise MaskWatchError(f"unknown detector '{name}'; choose from: {', '.join(DETECTORS)}")
    module_name, class_name = target.split(":")
    module = importlib.import_module(module_name)
    return getattr(module, class_name)(**options)


__all__ = ["DEFAULT_DETECTOR", "DETECTORS", "FaceDetector", "create_detector", "filter_faces"]
