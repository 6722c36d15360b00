"""MaskWatch's own detector: CenterFace fine-tuned on face-mask scenes, with a mask-state head.

Trained by ``maskwatch train-detector`` (see MODEL_CARD_DETECTOR.md). One pass gives boxes,
scores, the five landmarks and mask / no_mask / incorrect probabilities read at each face centre,
so the crop classifier is optional. Its boxes follow the datasets' brow-to-chin convention
(it was trained on them), so no box adjustment applies.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, ClassVar

from pydantic import Field

from ..errors import ModelError
from .base import configured
from .centerface import CenterFaceConfig, CenterFaceDetector

#: Operating point and input size, chosen on the Kaggle val split (see MODEL_CARD_DETECTOR.md).
DEFAULT_INPUT_SIZE = 544
DEFAULT_MIN_SCORE = 0.3
#: How the pipeline combines this detector's state with the crop classifier's by default
#: ("detector", "classifier" or "fused"), chosen on the val split.
DEFAULT_FUSION = "fused"
OUTPUTS = ["heatmap", "size", "offset", "landmarks", "state"]


@lru_cache(maxsize=4)
def _checked_model_bytes(path: str) -> bytes:
    import onnx

    try:
        model = onnx.load(path)
    except Exception as exc:  # protobuf raises its own types for unreadable files
        raise ModelError(f"{path}: not a readable ONNX model ({type(exc).__name__}: {exc})") from None
    names = [o.name for o in model.graph.output]
    if names != OUTPUTS:
        raise ModelError(f"{path}: not a MaskWatch centerface-mask model (outputs {names}, expected {OUTPUTS}); "
                         "the stock CenterFace is --detector centerface")
    serialized: bytes = model.SerializeToString()
    return serialized


class CenterFaceMaskConfig(CenterFaceConfig):
    name: ClassVar[str] = "centerface-mask"
    min_score: float = Field(DEFAULT_MIN_SCORE, ge=0, le=1, description="Face confidence threshold.")
    input_size: int | None = Field(DEFAULT_INPUT_SIZE, ge=0, description="Longer image side resized to this "
                                   "(None or 0: native size).")
    box_adjust: tuple[float, float, float, float] | None = Field(
        None, description="None: trained on the datasets' boxes, so no adjustment.")

    def build(self) -> "CenterFaceMaskDetector":
        return CenterFaceMaskDetector(self)


class CenterFaceMaskDetector(CenterFaceDetector):
    """The fine-tuned CenterFace with a state head: sets ``probs`` on the faces it finds."""

    name = "centerface-mask"
    config_class: ClassVar[type[CenterFaceMaskConfig]] = CenterFaceMaskConfig
    registry_name = "centerface-mask"
    input_name = "input"
    output_names = OUTPUTS
    default_fusion = DEFAULT_FUSION

    def __init__(self, config: CenterFaceMaskConfig | None = None, /, **options: Any):
        config = configured(CenterFaceMaskConfig, config, options)
        if config.model_path is None:
            # No trained model ships yet (see MODEL_CARD_DETECTOR.md): say how to get one.
            raise ModelError("the centerface-mask detector has no bundled model yet: train one with "
                             "`maskwatch train-detector --out runs/det ...` and pass "
                             "--detector-model runs/det/centerface_mask.onnx (the default detector is centerface)")
        super().__init__(config)

    def _model_bytes(self, path: str) -> bytes:
        return _checked_model_bytes(path)
