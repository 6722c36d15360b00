"""What every face detector offers."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from ..faces import Faces


@runtime_checkable
class FaceDetector(Protocol):
    """A face detector: BGR ``uint8`` image in, :class:`~maskwatch.faces.Faces` out.

    Detectors that also judge masks (peers such as AIZOO or the masked-face UltraFace) may set
    ``probs``; MaskWatch's own pipeline replaces them with its classifier's.
    """

    name: str
    min_score: float

    def detect(self, image: np.ndarray) -> Faces: ...


def filter_faces(faces: Faces, min_score: float, min_face: float) -> Faces:
    """Drop faces under the score threshold or smaller than ``min_face`` pixels (shorter side)."""
    if not len(faces):
        return faces
    keep = faces.scores >= min_score
    if min_face > 0:
        keep &= np.minimum(faces.widths, faces.heights) >= min_face
    return faces[keep]


def onnx_session(model_path, threads: int | None):
    """An ONNX Runtime CPU session with a fixed number of threads (None: ORT's default)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(str(model_path) if not isinstance(model_path, bytes) else model_path,
                                sess_options=options, providers=["CPUExecutionProvider"])
