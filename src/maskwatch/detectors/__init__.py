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
    cls = getattr(importlib.import_module(module_name), class_name)
    return cls(**applicable_options(cls, name, options))


class Preferred:
    """An option value to use only where the detector takes that option (a command's own default,
    e.g. ``watch``'s input size); elsewhere it is left out silently."""

    def __init__(self, value: Any):
        self.value = value


def applicable_options(cls: type, name: str, options: dict[str, Any]) -> dict[str, Any]:
    """The options ``cls``'s constructor accepts. An option it does not take is dropped when it is
    None or :class:`Preferred`, and otherwise refused with a one-line error naming the detector."""
    import inspect

    params = inspect.signature(cls.__init__).parameters
    takes_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
    out: dict[str, Any] = {}
    for key, value in options.items():
        if takes_any or key in params:
            value = value.value if isinstance(value, Preferred) else value
            if value is not None or key in params:
                out[key] = value
        elif value is not None and not isinstance(value, Preferred):
            from ..errors import MaskWatchError

            raise MaskWatchError(f"detector '{name}' has no {key.replace('_', '-')} option (--{key.replace('_', '-')} "
                                 f"applies to: {', '.join(_takers(key))})")
    return out


def _takers(key: str) -> list[str]:
    import inspect

    found = []
    for det, target in DETECTORS.items():
        module_name, class_name = target.split(":")
        try:
            cls = getattr(importlib.import_module(module_name), class_name)
        except ImportError:
            continue
        if key in inspect.signature(cls.__init__).parameters:
            found.append(det)
    return found or ["no detector"]


__all__ = ["DEFAULT_DETECTOR", "DETECTORS", "FaceDetector", "Preferred", "create_detector", "filter_faces"]
