"""MTCNN (the seeds' detector) from facenet-pytorch (MIT), on CPU with torch.

facenet-pytorch pins old torch/numpy and needs torchvision, so it is installed without its
dependencies; :mod:`._torchvision_shim` supplies the two torchvision functions it uses.
Its P/R/O-Net weights ship inside the facenet-pytorch wheel (no download).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from ..boxes import clip_boxes
from ..errors import ModelError
from ..faces import Faces
from .base import DetectorConfig, configured, filter_faces

INSTALL_HINT = 'pip install "maskwatch[mtcnn]" && pip install --no-deps facenet-pytorch==2.6.0'


def _load_mtcnn_class() -> Any:
    try:
        import torch  # noqa: F401
    except ImportError:
        raise ModelError(f"the MTCNN detector needs torch and facenet-pytorch: {INSTALL_HINT}") from None
    from ._torchvision_shim import install

    install()
    try:
        from facenet_pytorch import MTCNN
    except ImportError as exc:
        raise ModelError(f"the MTCNN detector needs facenet-pytorch ({exc}): {INSTALL_HINT}") from None
    return MTCNN


class MTCNNConfig(DetectorConfig):
    name: ClassVar[str] = "mtcnn"
    min_score: float = Field(0.9, ge=0, le=1, description="Threshold on the final O-Net probability.")
    min_face: float = Field(20, ge=0, description="Smallest face searched for (pixels); also filters.")
    thresholds: tuple[float, float, float] = Field((0.6, 0.7, 0.7), description="P-, R- and O-Net stage thresholds.")

    def build(self) -> "MTCNNDetector":
        return MTCNNDetector(self)


class MTCNNDetector:
    """MTCNN with facenet-pytorch's defaults (pyramid factor 0.709).

    min_score: threshold on the final O-Net probability.
    min_face: smallest face searched for (MTCNN's ``min_face_size``, also used to filter); 20 px default.
    thresholds: the P-, R- and O-Net stage thresholds.
    """

    name = "mtcnn"
    config_class: ClassVar[type[MTCNNConfig]] = MTCNNConfig

    def __init__(self, config: MTCNNConfig | None = None, /, **options: Any):
        config = self.config = configured(MTCNNConfig, config, options)
        min_score, min_face, threads, thresholds = config.min_score, config.min_face, config.threads, config.thresholds
        if config.model_path is not None:
            raise ModelError("the MTCNN detector uses the weights inside facenet-pytorch; it takes no model path")
        mtcnn_class = _load_mtcnn_class()
        import torch

        if threads:
            torch.set_num_threads(int(threads))
        self.min_score = float(min_score)
        self.min_face = float(min_face)
        # the O-Net stage threshold must not cut above min_score, or low --min-score values would do nothing
        stages = [float(t) for t in thresholds]
        stages[2] = min(stages[2], self.min_score)
        self._mtcnn = mtcnn_class(
            min_face_size=max(int(round(self.min_face)), 12) if self.min_face else 20,
            thresholds=stages,
            keep_all=True,
            post_process=False,
            device="cpu",
        )

    def detect(self, image: np.ndarray) -> Faces:
        import torch

        rgb = np.ascontiguousarray(image[:, :, ::-1])
        with torch.inference_mode():
            boxes, scores, points = self._mtcnn.detect(rgb, landmarks=True)
        if boxes is None or len(boxes) == 0:
            return Faces.empty(with_landmarks=True)
        faces = Faces(
            boxes=clip_boxes(np.asarray(boxes, np.float32), image.shape[1], image.shape[0]),
            scores=np.asarray(scores, np.float32),
            landmarks=np.asarray(points, np.float32),
        )
        return filter_faces(faces, self.min_score, self.min_face)
