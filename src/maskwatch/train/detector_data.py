"""Scenes for detector training: reading, augmentation for crowd photos, and CenterNet targets.

Every training crop is also run through the stock CenterFace (the *teacher*, ONNX Runtime). Its
heatmap outside the annotated faces and its landmarks become targets, so the fine-tuned model
keeps finding the faces annotators skipped and keeps its five landmarks although no dataset here
has landmark labels. Landmark targets are computed on the augmented crop itself, so a mirrored
crop gets mirrored-order landmarks by construction (no index swap to get wrong).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from ..boxes import iou_matrix
from ..errors import DatasetError
from ..faces import LABEL_INDEX
from ..images import encode_jpeg

STRIDE = 4
#: Longer image side at inference; training crops are cut from images resized around it.
BASE_SIZE = 544


@dataclass
class Scene:
    """One annotated image in memory: BGR pixels, face boxes (pixels) and label indices."""

    image: np.ndarray
    boxes: np.ndarray  # (N, 4) float32
    labels: np.ndarray  # (N,) int64, LABELS order
    name: str
    source: str


@dataclass
class SceneSet:
    scenes: list[Scene] = field(default_factory=list)
    problems: dict[str, int] = field(default_factory=dict)

    def label_counts(self) -> dict[str, int]:
        from ..faces import LABELS

        counts = np.bincount(np.concatenate([s.labels for s in self.scenes] or [np.zeros(0, np.int64)]),
                             minlength=len(LABELS))
        return {name: int(n) for name, n in zip(LABELS, counts)}


def _load_image(path: Path, max_side: int = 1280) -> np.ndarray | None:
    from ..errors import InputError
    from ..images import read_image

    try:
        image = read_image(path)
    except (InputError, OSError):
        return None
    scale = max_side / max(image.shape[:2])
    if scale < 1:
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return image


def load_scenes(path: Path, keep: Callable[[str], bool], warn: Callable[[str], None], source: str,
                label_map: dict[str, str] | None = None, max_side: int = 1280) -> SceneSet:
    """Scenes of a VOC / YOLO / COCO dataset whose image key passes ``keep`` (its split).

    Reader problems (malformed files, boxes outside images, ...) and images that do not decode are
    counted and named through ``warn``; training goes on without them.
    """
    from ..data import load_dataset

    dataset = load_dataset(path, label_map=label_map)
    for line in dataset.report.lines():
        warn(f"{path}: {line}")
    out = SceneSet(problems=dict(dataset.report.counts))
    unreadable: list[str] = []
    for item in dataset.images:
        if not keep(item.key):
            continue
        image = _load_image(item.path, max_side)
        if image is None:
            unreadable.append(item.path.name)
            continue
        scale = image.shape[1] / item.width if item.width else 1.0
        out.scenes.append(Scene(image=image, boxes=np.asarray(item.boxes, np.float32).reshape(-1, 4) * scale,
                                labels=np.asarray([LABEL_INDEX[label] for label in item.labels], np.int64),
                                name=str(item.path), source=source))
    if unreadable:
        out.problems["unreadable image"] = out.problems.get("unreadable image", 0) + len(unreadable)
        warn(f"{path}: {len(unreadable)} images cannot be decoded and are left out "
             f"(e.g. {', '.join(unreadable[:3])})")
    if not out.scenes:
        raise DatasetError(f"{path}: no usable scenes in this split")
    return out


# -- augmentation -------------------------------------------------------------------------------

def _photometric(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    out = image.astype(np.float32)
    out = out * rng.uniform(0.7, 1.3) + rng.uniform(-25, 25)  # contrast, brightness
    if rng.random() < 0.5:  # saturation
        grey = out.mean(axis=2, keepdims=True)
        out = grey + (out - grey) * rng.uniform(0.5, 1.5)
    if rng.random() < 0.05:
        out = np.repeat(out.mean(axis=2, keepdims=True), 3, axis=2)
    out = np.clip(out, 0, 255).astype(np.uint8)
    if rng.random() < 0.2:
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.5, 1.5))
    if rng.random() < 0.3:
        data = encode_jpeg(out, int(rng.integers(30, 90)))
        out = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    return out


def random_crop(scene: Scene, rng: np.random.Generator, crop: int, scale_range=(0.6, 1.6)) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A ``crop`` x ``crop`` training view: scale jitter around the inference size, mirror, a crop
    that usually contains a chosen face (any size, so small crowd faces are kept), colour, blur, JPEG.

    Returns (BGR crop, boxes in crop pixels, labels); faces whose centre falls outside are dropped.
    """
    h, w = scene.image.shape[:2]
    scale = BASE_SIZE / max(h, w) * float(np.exp(rng.uniform(*np.log(scale_range))))
    image = cv2.resize(scene.image, (max(1, round(w * scale)), max(1, round(h * scale))),
                       interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    boxes = scene.boxes * scale
    if rng.random() < 0.5:
        image = image[:, ::-1]
        boxes = np.column_stack([image.shape[1] - boxes[:, 2], boxes[:, 1], image.shape[1] - boxes[:, 0], boxes[:, 3]])
    ih, iw = image.shape[:2]
    if len(boxes) and rng.random() < 0.8:
        b = boxes[rng.integers(len(boxes))]
        cx, cy = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
        x0 = int(np.clip(cx - rng.uniform(0.1, 0.9) * crop, min(0, iw - crop), max(0, iw - crop)))
        y0 = int(np.clip(cy - rng.uniform(0.1, 0.9) * crop, min(0, ih - crop), max(0, ih - crop)))
    else:
        x0 = int(rng.integers(min(0, iw - crop), max(0, iw - crop) + 1))
        y0 = int(rng.integers(min(0, ih - crop), max(0, ih - crop) + 1))
    canvas = np.zeros((crop, crop, 3), np.uint8)  # the detector pads with zeros too
    sx0, sy0 = max(0, x0), max(0, y0)
    sx1, sy1 = min(iw, x0 + crop), min(ih, y0 + crop)
    canvas[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = image[sy0:sy1, sx0:sx1]
    boxes = boxes - np.array([x0, y0, x0, y0], np.float32)
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    inside = (centres >= 0).all(axis=1) & (centres < crop).all(axis=1)
    return _photometric(canvas, rng), boxes[inside].astype(np.float32), scene.labels[inside]


# -- targets ------------------------------------------------------------------------------------

def gaussian_radius(height: float, width: float, min_overlap: float = 0.7) -> float:
    """CenterNet's radius: the largest centre shift that keeps IoU >= ``min_overlap`` (in cells)."""
    a1, b1 = 1, height + width
    c1 = width * height * (1 - min_overlap) / (1 + min_overlap)
    r1 = (b1 + np.sqrt(b1 ** 2 - 4 * a1 * c1)) / 2
    a2, b2 = 4, 2 * (height + width)
    c2 = (1 - min_overlap) * width * height
    r2 = (b2 + np.sqrt(b2 ** 2 - 4 * a2 * c2)) / 2
    a3, b3 = 4 * min_overlap, -2 * min_overlap * (height + width)
    c3 = (min_overlap - 1) * width * height
    r3 = (b3 + np.sqrt(b3 ** 2 - 4 * a3 * c3)) / 2
    return float(max(0.0, min(r1, r2, r3)))


def _draw_gaussian(heat: np.ndarray, cx: int, cy: int, radius: int) -> None:
    sigma = (2 * radius + 1) / 6
    ys, xs = np.ogrid[-radius:radius + 1, -radius:radius + 1]
    g = np.exp(-(xs * xs + ys * ys) / (2 * sigma * sigma))
    h, w = heat.shape
    l, r = min(cx, radius), min(w - cx, radius + 1)
    t, b = min(cy, radius), min(h - cy, radius + 1)
    region = heat[cy - t:cy + b, cx - l:cx + r]
    np.maximum(region, g[radius - t:radius + b, radius - l:radius + r], out=region)


@dataclass
class Teacher:
    """The stock CenterFace in ONNX Runtime, run on training crops (one thread: it shares the cores)."""

    model_path: str
    threads: int = 1
    _session: object = None

    def __call__(self, crop_bgr: np.ndarray) -> list[np.ndarray]:
        if self._session is None:
            from ..detectors.base import onnx_session
            from ..detectors.centerface import _dynamic_model_bytes

            self._session = onnx_session(_dynamic_model_bytes(self.model_path), self.threads, name=self.model_path)
        blob = crop_bgr[:, :, ::-1].transpose(2, 0, 1)[None].astype(np.float32)
        heat, size, offset, marks = self._session.run(["537", "538", "539", "540"], {"input.1": blob})  # type: ignore[attr-defined]
        return [heat[0, 0], size[0], offset[0], marks[0]]


def build_targets(boxes: np.ndarray, labels: np.ndarray, side: int, teacher_maps: list[np.ndarray] | None) -> dict[str, np.ndarray]:
    """Dense stride-4 targets for one crop of ``side`` pixels.

    heat: max of the ground-truth Gaussians and the teacher's heatmap outside annotated faces;
    positive: cells trained as face centres (GT centres, and teacher peaks > 0.5 away from any GT);
    reg_mask / size / offset / state: at GT centres (state also on their 8 neighbours, where the peak may land);
    lm_mask / landmarks: the teacher's landmarks re-expressed in the matched GT box, at GT centres,
    and as they are at teacher-only peaks.
    """
    from ..detectors.centerface import DEFAULT_BOX_ADJUST, decode_centerface

    n = side // STRIDE
    heat = np.zeros((n, n), np.float32)
    positive = np.zeros((n, n), np.float32)
    reg_mask = np.zeros((n, n), np.float32)
    size = np.zeros((2, n, n), np.float32)
    offset = np.zeros((2, n, n), np.float32)
    state = np.full((n, n), -1, np.int64)
    lm_mask = np.zeros((n, n), np.float32)
    marks = np.zeros((10, n, n), np.float32)
    covered = np.zeros((n, n), bool)  # cells inside an annotated face (teacher not used there)

    teacher_faces = None
    if teacher_maps is not None:
        teacher_faces = decode_centerface(*teacher_maps, threshold=0.3, nms_iou=0.3)
        if len(teacher_faces):
            wh = np.column_stack([teacher_faces.widths, teacher_faces.heights])
            teacher_faces.boxes = teacher_faces.boxes + np.asarray(DEFAULT_BOX_ADJUST, np.float32) * np.tile(wh, 2)
    matches = np.full(len(boxes), -1)
    if teacher_faces is not None and len(teacher_faces) and len(boxes):
        iou = iou_matrix(boxes, teacher_faces.boxes)
        for i in np.argsort(-iou.max(axis=1)):
            j = int(iou[i].argmax())
            if iou[i, j] >= 0.4 and j not in matches:
                matches[i] = j

    order = np.argsort(-(boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])) if len(boxes) else []
    for i in order:  # large first, so a small face's centre cell wins where two meet
        x1, y1, x2, y2 = boxes[i]
        bw, bh = (x2 - x1) / STRIDE, (y2 - y1) / STRIDE
        if bw <= 0 or bh <= 0:
            continue
        c = np.array([(x1 + x2) / 2, (y1 + y2) / 2]) / STRIDE
        cx, cy = int(min(c[0], n - 1)), int(min(c[1], n - 1))
        _draw_gaussian(heat, cx, cy, max(0, int(gaussian_radius(bh, bw))))
        gx1, gy1 = max(0, int(x1 / STRIDE) - 1), max(0, int(y1 / STRIDE) - 1)
        covered[gy1:int(np.ceil(y2 / STRIDE)) + 1, gx1:int(np.ceil(x2 / STRIDE)) + 1] = True
        positive[cy, cx] = 1
        reg_mask[cy, cx] = 1
        size[:, cy, cx] = np.log([bh, bw])
        offset[:, cy, cx] = c[1] - cy - 0.5, c[0] - cx - 0.5
        state[max(0, cy - 1):cy + 2, max(0, cx - 1):cx + 2] = labels[i]
        if matches[i] >= 0 and teacher_faces is not None and teacher_faces.landmarks is not None:
            pts = teacher_faces.landmarks[matches[i]]  # (5, 2) x, y in crop pixels
            marks[0::2, cy, cx] = (pts[:, 1] - y1) / (y2 - y1)
            marks[1::2, cy, cx] = (pts[:, 0] - x1) / (x2 - x1)
            lm_mask[cy, cx] = 1
    if teacher_maps is not None:
        t_heat, _, _, t_marks = teacher_maps
        outside = np.where(covered, 0.0, t_heat).astype(np.float32)
        np.maximum(heat, outside, out=heat)
        peaks = (outside >= cv2.dilate(outside, np.ones((3, 3), np.uint8))) & (outside > 0.5)
        positive[peaks] = 1
        lm_mask[peaks] = 1
        marks[:, peaks] = t_marks[:, peaks]
    heat[positive > 0] = 1.0
    return {"heat": heat, "positive": positive, "reg_mask": reg_mask, "size": size, "offset": offset,
            "state": state, "lm_mask": lm_mask, "landmarks": marks}


class DetectorSamples:
    """Training views drawn from scenes; sample ``i`` of ``epoch`` is the same on every run (resume)."""

    def __init__(self, scenes: list[Scene], weights: np.ndarray, teacher: Teacher | None, crop: int, seed: int,
                 per_epoch: int):
        self.scenes, self.teacher, self.crop, self.seed, self.per_epoch = scenes, teacher, crop, seed, per_epoch
        self.probabilities = np.asarray(weights, np.float64) / np.sum(weights)
        self.epoch = 0

    def __len__(self) -> int:
        return self.per_epoch

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        rng = np.random.default_rng([self.seed, self.epoch, index])
        scene = self.scenes[int(rng.choice(len(self.scenes), p=self.probabilities))]
        crop, boxes, labels = random_crop(scene, rng, self.crop)
        maps = self.teacher(crop) if self.teacher is not None else None
        targets = build_targets(boxes, labels, self.crop, maps)
        targets["image"] = crop[:, :, ::-1].transpose(2, 0, 1).astype(np.float32)  # RGB planes, 0..255
        return targets
