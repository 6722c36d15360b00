"""Face detectors behind one interface (:class:`FaceDetector`), chosen by name.

Each detector declares a pydantic config next to its class (:class:`DetectorConfig` subclasses:
its defaults and the options it takes); :data:`DETECTORS` is built from them.
"""

from __future__ import annotations

from typing import Any

from ..errors import MaskWatchError
from .aizoo import AizooConfig
from .base import DetectorConfig, FaceDetector, filter_faces, make_config
from .centerface import CenterFaceConfig
from .centerface_mask import CenterFaceMaskConfig
from .mtcnn import MTCNNConfig
from .ultraface import UltraFaceConfig
from .yunet import YuNetConfig

#: name -> config class; a config's ``build()`` makes its detector (heavy imports happen there).
DETECTORS: dict[str, type[DetectorConfig]] = {
    config.name: config
    for config in (CenterFaceMaskConfig, CenterFaceConfig, YuNetConfig, UltraFaceConfig, MTCNNConfig, AizooConfig)
}

#: What every command uses unless told otherwise: MaskWatch's own mask-aware detector.
DEFAULT_DETECTOR = "centerface"


def config_class(name: str) -> type[DetectorConfig]:
    """The config class of detector ``name``; a one-line error listing the known names otherwise."""
    found = DETECTORS.get(name.lower())
    if found is None:
        raise MaskWatchError(f"unknown detector '{name}'; choose from: {', '.join(DETECTORS)}")
    return found


def detector_config(name: str, **options: Any) -> DetectorConfig:
    """Validate ``options`` for detector ``name`` (see :func:`applicable_options`)."""
    cls = config_class(name)
    return make_config(cls, applicable_options(cls, cls.name, options))


def create_detector(name: str, **options: Any) -> FaceDetector:
    """Build a detector by name; options (min_score, min_face, threads, model_path, ...) are checked
    by its config: one it does not take is a one-line error naming the option and the detector."""
    return detector_config(name, **options).build()


class Preferred:
    """An option value to use only where the detector takes that option (a command's own default,
    e.g. ``watch``'s input size); elsewhere it is left out silently."""

    def __init__(self, value: Any):
        self.value = value


def applicable_options(cls: type, name: str, options: dict[str, Any]) -> dict[str, Any]:
    """The options ``cls`` (a :class:`DetectorConfig` or a detector class) takes. An option it does not
    take is dropped when it is None or :class:`Preferred`, and otherwise refused with a one-line error
    naming the detector and the detectors that do take it."""
    config: type[DetectorConfig] = getattr(cls, "config_class", cls)
    fields = config.model_fields
    out: dict[str, Any] = {}
    for key, value in options.items():
        if key in fields:
            out[key] = value.value if isinstance(value, Preferred) else value
        elif value is not None and not isinstance(value, Preferred):
            flag = key.replace("_", "-")
            raise MaskWatchError(f"detector '{name}' has no {flag} option (--{flag} applies to: "
                                 f"{', '.join(_takers(key))})")
    return out


def _takers(key: str) -> list[str]:
    return [name for name, config in DETECTORS.items() if key in config.model_fields] or ["no detector"]


__all__ = ["DEFAULT_DETECTOR", "DETECTORS", "DetectorConfig", "FaceDetector", "Preferred", "applicable_options",
           "config_class", "create_detector", "detector_config", "filter_faces"]
