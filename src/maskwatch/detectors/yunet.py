"""YuNet (Apache-2.0) through OpenCV's ``cv2.FaceDetectorYN``.

The model file is supplied by the user (registry name ``yunet``: OpenCV Zoo's
``face_detection_yunet_2023mar.onnx``, downloaded with a SHA-256 check when allowed). YuNet's
score is sqrt(classification x objectness); it gives five landmarks per face.
"""

from __future__ import annotations

from typing import Any, ClassVar

import cv2
import numpy as np
from pydantic import Field

from ..boxes import clip_boxes
from ..errors import ModelError
from ..faces import Faces
from ..registry import resolve_model
from .base import DetectorConfig, configured, filter_faces


class YuNetConfig(DetectorConfig):
    name: ClassVar[str] = "yunet"
    min_score: float = Field(0.6, ge=0, le=1, description="Face confidence threshold.")
    input_size: int | None = Field(None, ge=0, description="Longer image side resized to this (None or 0: native size).")
    nms_iou: float = Field(0.3, gt=0, le=1, description="IoU above which overlapping boxes are merged.")

    def build(self) -> "YuNetDetector":
        return YuNetDetector(self)


class YuNetDetector:
    """YuNet on CPU via OpenCV DNN.

    input_size: the longer image side is resized to this many pixels before detection
    (None: the image's own size, which finds small faces in large photos at a higher cost).
    threads: sets OpenCV's global thread count (``cv2.setNumThreads``) when given.
    """

    name = "yunet"
    config_class: ClassVar[type[YuNetConfig]] = YuNetConfig

    def __init__(self, config: YuNetConfig | None = None, /, **options: Any):
        config = self.config = configured(YuNetConfig, config, options)
        path = resolve_model("yunet", config.model_path)
        if config.threads:
            cv2.setNumThreads(int(config.threads))
        self.min_score = float(config.min_score)
        self.min_face = float(config.min_face)
        self.input_size = config.input_size
        self.nms_iou = float(config.nms_iou)
        try:
            self._net = cv2.FaceDetectorYN.create(str(path), "", (320, 320), self.min_score, self.nms_iou, 5000)
        except cv2.error as exc:
            raise ModelError(f"{path}: OpenCV cannot load it as a YuNet model ({str(exc).strip().splitlines()[-1]})") from None
        self._size: tuple[int, int] | None = None

    def detect(self, image: np.ndarray) -> Faces:
        h, w = image.shape[:2]
        scale = 1.0 if not self.input_size else self.input_size / max(h, w)
        if scale != 1.0:
            nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
            image = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        size = (image.shape[1], image.shape[0])
        if size != self._size:
            self._net.setInputSize(size)
            self._size = size
        _, raw = self._net.detect(np.ascontiguousarray(image))
        if raw is None or len(raw) == 0:
            return Faces.empty(with_landmarks=True)
        # rows: x, y, w, h, 5 landmarks (x, y) from the image's left eye on, score
        boxes = np.column_stack([raw[:, 0:2], raw[:, 0:2] + raw[:, 2:4]]) / scale
        landmarks = raw[:, 4:14].reshape(-1, 5, 2) / scale
        faces = Faces(boxes=clip_boxes(boxes, w, h), scores=raw[:, 14], landmarks=landmarks)
        return filter_faces(faces, self.min_score, self.min_face)
