"""Static INT8 quantization of an ONNX detector with ONNX Runtime (QDQ, per-channel weights).

Activations are calibrated (MinMax) on real images, each prepared exactly as the detector prepares its
input. On a CPU with VNNI (AVX-512 or AVX-VNNI) the INT8 CenterFace runs ~1.6x faster than the float
one; its accuracy on the validation split is in MODEL_CARD_CENTERFACE_INT8.md.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from ..errors import ModelError

#: QDQ with a per-channel axis needs opset 13 or later (the stock CenterFace file is opset 9).
MIN_OPSET = 13


def quantize_model(model: bytes, out: Path, blobs: Iterable[np.ndarray], input_name: str,
                   progress: Callable[[int], None] | None = None) -> Path:
    """Write an INT8 copy of ``model`` (ONNX bytes) to ``out``; ``blobs`` are the calibration inputs
    (float32 NCHW, as the detector feeds them). ``progress(n)`` is called after each calibration input."""
    import onnx
    import onnxruntime as ort
    from onnx import version_converter
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    ort.set_default_logger_severity(3)  # else one warning per unused initializer of the float graph
    graph = onnx.load_from_string(model)
    opset = max((o.version for o in graph.opset_import if o.domain in ("", "ai.onnx")), default=0)
    if opset < MIN_OPSET:
        graph = version_converter.convert_version(graph, MIN_OPSET)

    class Reader(CalibrationDataReader):  # type: ignore[misc]  # onnxruntime ships no type hints
        def __init__(self) -> None:
            self.items = iter(blobs)
            self.seen = 0

        def get_next(self) -> dict[str, np.ndarray] | None:
            blob = next(self.items, None)
            if blob is None:
                return None
            self.seen += 1
            if progress is not None:
                progress(self.seen)
            return {input_name: blob}

    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="maskwatch-int8-") as tmp:
        source, prepared = os.path.join(tmp, "float.onnx"), os.path.join(tmp, "prepared.onnx")
        onnx.save(graph, source)
        quant_pre_process(source, prepared, skip_symbolic_shape=True)
        reader = Reader()
        quantize_static(prepared, str(out), reader, quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    if reader.seen == 0:
        out.unlink(missing_ok=True)
        raise ModelError("no calibration images: INT8 quantization needs at least one")
    return out


def quantize_centerface(out: Path, images: Iterable[np.ndarray], input_size: int | None = 640,
                        model_path: str | None = None, progress: Callable[[int], None] | None = None) -> Path:
    """INT8 CenterFace (the stock model, or ``model_path``) calibrated on ``images`` (BGR) resized to
    ``input_size`` as :class:`~maskwatch.detectors.centerface.CenterFaceDetector` does."""
    from ..registry import resolve_model
    from .centerface import INPUT_NAME, CenterFaceConfig, _dynamic_model_bytes, prepare_blob

    path = str(resolve_model("centerface", model_path))
    size = CenterFaceConfig().input_size if input_size is None else input_size
    blobs = (prepare_blob(image, size)[0] for image in images)
    return quantize_model(_dynamic_model_bytes(path), out, blobs, INPUT_NAME, progress)
