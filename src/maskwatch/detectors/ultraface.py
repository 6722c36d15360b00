"""UltraFace (Ultra-Light-Fast-Generic-Face-Detector-1MB, MIT) with ONNX Runtime.

Two kinds of file work: the plain face detectors (``version-RFB-320/640``, ``version-slim-320``:
classes background, face) and the masked-face model ``RFB-640-masked_face-v2`` (BACKGROUND, face,
masked_face), the registry default. The kind is read from the ``scores`` output's last dimension and
the input size from the model's input shape. The ONNX graphs already decode their SSD priors:
``boxes`` are x1, y1, x2, y2 in [0, 1] of the (stretched) input.

Face confidence is 1 - p(background), so faces with and without masks compete in one NMS.
The masked-face model also yields ``probs``: mask = p(masked_face) / (p(face) + p(masked_face)),
no_mask = the rest, incorrect = 0 (it has no such class), so it can be scored as a mask detector.
"""

from __future__ import annotations

from typing import Any, ClassVar

import cv2
import numpy as np
from pydantic import Field

from ..errors import ModelError
from ..faces import Faces
from ..registry import resolve_model
from .base import DetectorConfig, configured, faces_from_candidates, onnx_session


class UltraFaceConfig(DetectorConfig):
    name: ClassVar[str] = "ultraface"
    min_score: float = Field(0.5, ge=0, le=1, description="Face confidence threshold.")
    nms_iou: float = Field(0.3, gt=0, le=1, description="IoU above which overlapping boxes are merged.")

    def build(self) -> "UltraFaceDetector":
        return UltraFaceDetector(self)


class UltraFaceDetector:
    name = "ultraface"
    config_class: ClassVar[type[UltraFaceConfig]] = UltraFaceConfig

    def __init__(self, config: UltraFaceConfig | None = None, /, **options: Any):
        config = self.config = configured(UltraFaceConfig, config, options)
        path = resolve_model("ultraface", config.model_path)
        self.session = onnx_session(path, config.threads)
        inputs, outputs = self.session.get_inputs(), {o.name: o for o in self.session.get_outputs()}
        if len(inputs) != 1 or {"scores", "boxes"} - set(outputs):
            raise ModelError(f"{path}: not an UltraFace model (expects one input and outputs 'scores', 'boxes')")
        self.input_name = inputs[0].name
        shape = inputs[0].shape
        if len(shape) != 4 or not all(isinstance(d, int) for d in shape[2:]):
            raise ModelError(f"{path}: UltraFace input must have a fixed N x 3 x H x W shape, got {shape}")
        self.input_hw: tuple[int, int] = (int(shape[2]), int(shape[3]))
        self.num_classes = int(outputs["scores"].shape[-1])
        if self.num_classes not in (2, 3):
            raise ModelError(f"{path}: UltraFace model with {self.num_classes} classes; expected 2 or 3")
        self.min_score = float(config.min_score)
        self.min_face = float(config.min_face)
        self.nms_iou = float(config.nms_iou)

    @property
    def judges_masks(self) -> bool:
        """True for the masked-face model (sets ``probs``)."""
        return self.num_classes == 3

    def _blob(self, image: np.ndarray) -> np.ndarray:
        h, w = self.input_hw
        resized = cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR)
        rgb = resized[:, :, ::-1].astype(np.float32)
        return np.asarray(((rgb - 127.0) / 128.0).transpose(2, 0, 1)[None])

    def detect(self, image: np.ndarray) -> Faces:
        scores, boxes = self.session.run(["scores", "boxes"], {self.input_name: self._blob(image)})
        scores, boxes = scores[0], boxes[0]
        face_score = 1.0 - scores[:, 0]
        probs = None
        if self.judges_masks:
            total = np.maximum(scores[:, 1] + scores[:, 2], 1e-12)
            mask = scores[:, 2] / total
            probs = np.column_stack([mask, 1.0 - mask, np.zeros_like(mask)])
        return faces_from_candidates(
            boxes, face_score, image.shape[1], image.shape[0], self.nms_iou, self.min_score, self.min_face, probs=probs
        )
