"""What every face detector offers."""

from __future__ import annotations

import os
from typing import Any, ClassVar, Mapping, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..errors import MaskWatchError, ModelError
from ..faces import Faces
from ..protocols import FaceDetector as FaceDetector


class DetectorConfig(BaseModel):
    """The options every detector takes. Each detector declares its own subclass next to its class
    (its defaults, its extra options); the registry in :mod:`maskwatch.detectors` is built from them.
    An option a detector does not take is an error (``extra="forbid"``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())

    #: the detector's name in the registry (``--detector NAME``)
    name: ClassVar[str] = ""

    model_path: str | None = Field(None, description="Model file (default: found by the model registry).")
    min_score: float = Field(0.5, ge=0, le=1, description="Face confidence threshold.")
    min_face: float = Field(0, ge=0, description="Drop faces whose shorter side is below this (pixels).")
    threads: int | None = Field(None, ge=0, description="Inference threads (None or 0: the runtime's default).")

    @field_validator("model_path", mode="before")
    @classmethod
    def _path_as_text(cls, value: Any) -> Any:
        return os.fspath(value) if isinstance(value, os.PathLike) else value

    def build(self) -> FaceDetector:
        """The detector this config describes."""
        raise NotImplementedError(f"{type(self).__name__} builds no detector")


C = TypeVar("C", bound=DetectorConfig)


def make_config(cls: type[C], options: Mapping[str, Any]) -> C:
    """``cls(**options)`` with one line per problem, naming the option and the detector."""
    try:
        return cls(**options)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            option = ".".join(str(p) for p in error["loc"]).replace("_", "-") or "options"
            if error["type"] == "extra_forbidden":
                problems.append(f"detector '{cls.name}' has no {option} option")
            else:
                problems.append(f"detector '{cls.name}' option {option}: {error['msg']} (got {error.get('input')!r})")
        raise MaskWatchError("; ".join(problems)) from None


def configured(cls: type[C], config: C | None, options: Mapping[str, Any]) -> C:
    """What a detector's constructor does with ``Detector(config)`` or ``Detector(**options)``."""
    if config is None:
        return make_config(cls, options)
    if options:
        raise TypeError(f"pass either a {cls.__name__} or options, not both")
    if not isinstance(config, cls):
        raise TypeError(f"expected a {cls.__name__}, got {type(config).__name__}")
    return config


def filter_faces(faces: Faces, min_score: float, min_face: float) -> Faces:
    """Drop faces under the score threshold or smaller than ``min_face`` pixels (shorter side)."""
    if not len(faces):
        return faces
    keep = faces.scores >= min_score
    if min_face > 0:
        keep &= np.minimum(faces.widths, faces.heights) >= min_face
    return faces[keep]


def onnx_session(model_path: str | bytes | os.PathLike[str], threads: int | None, name: str | None = None) -> Any:
    """An ONNX Runtime CPU session with a fixed number of threads (None: ORT's default).

    ``model_path`` may be the model's bytes; ``name`` then says which file they came from in errors.
    An unreadable model raises ModelError.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
    options.log_severity_level = 3
    # ORT's worker threads spin after each run waiting for the next one. MaskWatch alternates two
    # sessions (detector, classifier) plus OpenCV work, so the idle pool's spinning steals the cores
    # the other session needs: on 2 cores, disabling it took bench_detect from 35.6 to 21.0 ms per
    # image (median) and the 8-face video loop from 15.9 to 33.7 FPS. A lone session loses ~0.1 ms.
    # MASKWATCH_ORT_SPINNING=1 restores ORT's default.
    from ..settings import get_settings

    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if get_settings().ort_spinning else "0")
    try:
        return ort.InferenceSession(str(model_path) if not isinstance(model_path, bytes) else model_path,
                                    sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT raises its own exception types for unreadable graphs
        where = name or ("the model" if isinstance(model_path, bytes) else os.fspath(model_path))
        raise ModelError(f"{where}: ONNX Runtime cannot load it ({exc})") from None


def faces_from_candidates(
    boxes: np.ndarray,
    scores: np.ndarray,
    width: int,
    height: int,
    nms_iou: float,
    min_score: float,
    min_face: float,
    probs: np.ndarray | None = None,
    normalised: bool = True,
    max_candidates: int = 5000,
) -> Faces:
    """Turn a single-shot detector's raw candidates into :class:`Faces`.

    ``boxes`` are x1, y1, x2, y2, in [0, 1] of the image when ``normalised`` (SSD-style heads
    predict relative to the resized input, so the scale back is per axis). Candidates below
    ``min_score`` are dropped first, at most ``max_candidates`` of the best go to class-agnostic
    NMS (OpenCV's, which is much faster than a Python loop when a low threshold such as 0.05
    leaves thousands of candidates), then boxes are clipped to the image and ``min_face`` applies.
    """
    import cv2

    from ..boxes import clip_boxes

    keep = np.flatnonzero(scores >= min_score)
    if keep.size > max_candidates:
        keep = keep[np.argsort(-scores[keep], kind="stable")[:max_candidates]]
    if keep.size == 0:
        return Faces.empty() if probs is None else Faces.empty().with_(probs=np.zeros((0, 3), np.float32))
    boxes = np.asarray(boxes[keep], np.float32)
    scores = np.asarray(scores[keep], np.float32)
    if normalised:
        boxes = boxes * np.array([width, height, width, height], np.float32)
    xywh = np.column_stack([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]])
    picked = np.asarray(cv2.dnn.NMSBoxes(xywh.tolist(), scores.tolist(), float(min_score), float(nms_iou)),
                        np.int64).reshape(-1)
    faces = Faces(
        boxes=clip_boxes(boxes[picked], width, height),
        scores=scores[picked],
        probs=None if probs is None else np.asarray(probs[keep][picked], np.float32),
    )
    return filter_faces(faces, min_score, min_face)
