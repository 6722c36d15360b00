"""The mask classifier at inference time: ONNX Runtime on CPU."""

from __future__ import annotations

import json

import numpy as np

from ..detectors.base import onnx_session
from ..errors import ModelError
from ..faces import LABELS, Faces
from ..registry import resolve_model
from .crop import CROP_CONTEXT, CROP_SIZE, crop_faces


class MaskClassifier:
    """Three-state classifier (``mask``, ``no_mask``, ``incorrect``) for face crops.

    The ONNX file takes RGB crops as float32 NCHW in 0..255 and returns probabilities; its
    metadata (written by ``maskwatch train``) says the crop size and context it was trained with.
    """

    def __init__(self, model_path: str | None = None, threads: int | None = None):
        path = resolve_model("mask-classifier", model_path)
        self.session = onnx_session(path, threads)
        meta = self.session.get_modelmeta().custom_metadata_map
        self.path = path
        self.size = int(meta.get("crop_size", CROP_SIZE))
        self.context = float(meta.get("crop_context", CROP_CONTEXT))
        labels = json.loads(meta.get("labels", json.dumps(list(LABELS))))
        if list(labels) != list(LABELS):
            raise ModelError(f"classifier {path} has labels {labels}, expected {[str(name) for name in LABELS]}")
        self.input_name = self.session.get_inputs()[0].name

    def predict_crops(self, crops_bgr: np.ndarray) -> np.ndarray:
        """(N, S, S, 3) BGR uint8 crops -> (N, 3) probabilities."""
        if len(crops_bgr) == 0:
            return np.zeros((0, len(LABELS)), np.float32)
        blob = np.ascontiguousarray(crops_bgr[..., ::-1].transpose(0, 3, 1, 2), dtype=np.float32)
        return self.session.run(None, {self.input_name: blob})[0]

    def classify(self, image: np.ndarray, faces: Faces) -> Faces:
        """Classify all faces of one image in one batch; returns ``faces`` with ``probs`` set."""
        crops = crop_faces(image, faces.boxes, self.size, self.context)
        return faces.with_(probs=self.predict_crops(crops))
