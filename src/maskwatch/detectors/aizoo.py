"""AIZOO FaceMaskDetection (MIT): a 24-layer SSD that finds faces and tells Mask from NoMask.

Run through OpenCV's Caffe importer (``cv2.dnn.readNetFromCaffe``). The network outputs box
regressions and per-class scores for fixed SSD anchors; anchors and decoding follow the upstream
inference code (``utils/anchor_generator.py``, ``utils/anchor_decode.py``): feature maps
33, 17, 9, 5, 3 on a 260 x 260 RGB input scaled to [0, 1], four anchors per cell (both sizes at
ratio 1, then the first size at ratios 0.62 and 0.42), variances 0.1 (centre) and 0.2 (size).

There is no download for these files: pass the ``.caffemodel`` path (the ``.prototxt`` must sit
beside it, same stem).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import cv2
import numpy as np
from pydantic import Field

from ..errors import ModelError
from ..faces import Faces
from .base import DetectorConfig, configured, faces_from_candidates

INPUT_SIZE = 260
FEATURE_MAPS = (33, 17, 9, 5, 3)
ANCHOR_SIZES = ((0.04, 0.056), (0.08, 0.11), (0.16, 0.22), (0.32, 0.45), (0.64, 0.72))
ANCHOR_RATIOS = (1.0, 0.62, 0.42)
VARIANCES = np.array([0.1, 0.1, 0.2, 0.2], np.float32)
OUTPUTS = ["loc_branch_concat", "cls_branch_concat"]


def aizoo_anchors() -> np.ndarray:
    """(5972, 4) anchors as x1, y1, x2, y2 in [0, 1], in the order of the network's outputs."""
    out = []
    for size, sizes in zip(FEATURE_MAPS, ANCHOR_SIZES):
        centres = (np.arange(size, dtype=np.float32) + 0.5) / size
        cx, cy = np.meshgrid(centres, centres)  # row-major: x varies fastest
        shapes = [(s, ANCHOR_RATIOS[0]) for s in sizes] + [(sizes[0], r) for r in ANCHOR_RATIOS[1:]]
        half = np.array([[s * np.sqrt(r) / 2, s / np.sqrt(r) / 2] for s, r in shapes], np.float32)  # (A, 2)
        centre = np.stack([cx, cy], axis=-1).reshape(-1, 1, 2)  # (cells, 1, 2)
        out.append(np.concatenate([centre - half, centre + half], axis=-1).reshape(-1, 4))
    return np.concatenate(out)


def decode_boxes(anchors: np.ndarray, deltas: np.ndarray) -> np.ndarray:
    """SSD decoding of (N, 4) regressions (dx, dy, dw, dh) against x1y1x2y2 anchors."""
    wh = anchors[:, 2:] - anchors[:, :2]
    centre = (anchors[:, :2] + anchors[:, 2:]) / 2
    d = deltas * VARIANCES
    new_centre = d[:, :2] * wh + centre
    new_wh = np.exp(d[:, 2:]) * wh
    return np.concatenate([new_centre - new_wh / 2, new_centre + new_wh / 2], axis=1)


class AizooConfig(DetectorConfig):
    name: ClassVar[str] = "aizoo"
    min_score: float = Field(0.5, ge=0, le=1, description="Face confidence threshold.")
    nms_iou: float = Field(0.4, gt=0, le=1, description="IoU above which overlapping boxes are merged.")

    def build(self) -> "AizooDetector":
        return AizooDetector(self)


class AizooDetector:
    """AIZOO face-mask SSD. Sets ``probs``: (mask, no_mask, 0) normalised from the two class scores;
    the face score is the larger class score, as upstream."""

    name = "aizoo"
    config_class: ClassVar[type[AizooConfig]] = AizooConfig

    def __init__(self, config: AizooConfig | None = None, /, **options: Any):
        config = self.config = configured(AizooConfig, config, options)
        model_path, threads = config.model_path, config.threads
        if model_path is None:
            raise ModelError(
                "the AIZOO detector needs its files given by path: pass face_mask_detection.caffemodel "
                "(with face_mask_detection.prototxt beside it) from github.com/AIZOOTech/FaceMaskDetection models/"
            )
        weights = Path(model_path).expanduser()
        if weights.suffix == ".prototxt":  # accept either file of the pair
            weights = weights.with_suffix(".caffemodel")
        prototxt = weights.with_suffix(".prototxt")
        for needed in (weights, prototxt):
            if not needed.is_file():
                raise ModelError(f"AIZOO model file {needed} does not exist")
        if threads:
            cv2.setNumThreads(int(threads))
        try:
            self.net = cv2.dnn.readNetFromCaffe(str(prototxt), str(weights))
        except cv2.error as exc:
            raise ModelError(f"{weights}: OpenCV cannot load it as a Caffe model ({str(exc).strip().splitlines()[-1]})") from None
        self.anchors = aizoo_anchors()
        self.min_score = float(config.min_score)
        self.min_face = float(config.min_face)
        self.nms_iou = float(config.nms_iou)

    def detect(self, image: np.ndarray) -> Faces:
        blob = cv2.dnn.blobFromImage(image, 1 / 255.0, (INPUT_SIZE, INPUT_SIZE), swapRB=True)
        self.net.setInput(blob)
        deltas, scores = self.net.forward(OUTPUTS)
        deltas, scores = deltas[0], scores[0]
        if len(deltas) != len(self.anchors):
            raise ModelError(f"AIZOO model gave {len(deltas)} boxes, expected {len(self.anchors)} anchors")
        boxes = decode_boxes(self.anchors, deltas)
        total = np.maximum(scores.sum(axis=1), 1e-12)
        probs = np.column_stack([scores[:, 0] / total, scores[:, 1] / total, np.zeros(len(scores), np.float32)])
        return faces_from_candidates(
            boxes, scores.max(axis=1), image.shape[1], image.shape[0], self.nms_iou, self.min_score, self.min_face,
            probs=probs,
        )
