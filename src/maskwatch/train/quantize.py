"""Static INT8 quantization of an exported centerface-mask detector, calibrated on training images."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np


def quantize_detector(model: Path, out: Path, calibration_images: Sequence[np.ndarray], input_size: int = 544) -> Path:
    """Write an INT8 (QDQ, per-channel weights) copy of the exported ``model``; activations calibrated
    (MinMax) on ``calibration_images`` (BGR), prepared exactly as the detector prepares its input."""
    from ..detectors.centerface import prepare_blob
    from ..detectors.int8 import quantize_model

    blobs = (prepare_blob(image, input_size)[0] for image in calibration_images)
    return quantize_model(Path(model).read_bytes(), out, blobs, "input")
