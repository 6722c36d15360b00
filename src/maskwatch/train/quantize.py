"""Static INT8 quantization of an exported detector with ONNX Runtime, calibrated on training images."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np


def quantize_detector(model: Path, out: Path, calibration_images: Sequence[np.ndarray], input_size: int = 544) -> Path:
    """Write an INT8 (QDQ, per-channel weights) copy of ``model``; activations calibrated (MinMax) on
    ``calibration_images`` (BGR), prepared exactly as the detector prepares its input."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from .detector_loop import _blob

    blobs = [_blob(image, input_size)[0] for image in calibration_images]

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.items = iter(blobs)

        def get_next(self):
            blob = next(self.items, None)
            return None if blob is None else {"input": blob}

    out.parent.mkdir(parents=True, exist_ok=True)
    prepared = out.with_suffix(".pre.onnx")
    quant_pre_process(str(model), str(prepared), skip_symbolic_shape=True)
    try:
        quantize_static(str(prepared), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    finally:
        prepared.unlink(missing_ok=True)
    return out
