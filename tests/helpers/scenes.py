"""Synthetic test videos: real face photos moving over a textured background, with a painted mask that
can come off at a known frame, camera shake, noise, a second person and occlusions.

Shared by tests/integration/test_watch.py and benchmarks/bench_watch.py. Nothing here is copied from the data
share: faces are read from it at run time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from maskwatch.faces import Faces
from maskwatch.images import read_image

#: painted mask colours (BGR) the colour-keyed classifier looks for
MASK_BGR = (230, 40, 30)  # a strong blue surgical mask
INCORRECT_BGR = (40, 200, 40)  # green mask worn under the nose
FACE_HEIGHT = 130


def background(width: int = 640, height: int = 480, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.integers(60, 200, (height // 16, width // 16, 3), dtype=np.uint8)
    return cv2.GaussianBlur(cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC), (0, 0), 4)


def paint_mask(face: np.ndarray, landmarks: np.ndarray, colour: tuple[int, int, int], under_nose: bool = False) -> np.ndarray:
    """A filled mask shape from just under the eyes (or under the nose) to below the mouth."""
    out = face.copy()
    eye_l, eye_r, nose, mouth_l, mouth_r = landmarks
    eye_y = (eye_l[1] + eye_r[1]) / 2
    top = nose[1] + (mouth_l[1] - nose[1]) * 0.45 if under_nose else eye_y + (nose[1] - eye_y) * 0.45
    half_w = (eye_r[0] - eye_l[0]) * 1.05
    cx = nose[0]
    bottom = (mouth_l[1] + mouth_r[1]) / 2 + (mouth_l[1] - eye_y) * 0.55
    poly = np.array([[cx - half_w, top], [cx + half_w, top], [cx + half_w * 0.9, bottom],
                     [cx, bottom + half_w * 0.25], [cx - half_w * 0.9, bottom]], np.int32)
    cv2.fillPoly(out, [poly], colour, cv2.LINE_AA)
    return out


@dataclass
class FaceSprite:
    """One person: the same photo unmasked, masked and masked under the nose."""

    images: dict[str, np.ndarray]
    name: str = ""


#: photos (chandrikadeb7-faces/without_mask) known to work, tried first to keep test set-up short
PREFERRED = ("0_0_aidai_0084.jpg", "0_0_caiyilin_0100.jpg", "0_0_caizhuoyan_0017.jpg", "0_0_cengyongti_0037.jpg",
             "0_0_guanyue_0040.jpg", "0_0_gulinazha_0038.jpg", "0_0_gulinazha_0082.jpg", "0_0_jiayuanyuan_0179.jpg")


def painted_masks(img: np.ndarray, lm: np.ndarray) -> dict[str, np.ndarray]:
    return {"mask": paint_mask(img, lm, MASK_BGR), "incorrect": paint_mask(img, lm, INCORRECT_BGR, under_nose=True)}


def synthetic_masks(img: np.ndarray, lm: np.ndarray) -> dict[str, np.ndarray]:
    """Masks drawn by `maskwatch synth` (a surgical mask worn right, and under the nose), for runs with
    the real classifier."""
    from maskwatch.synth import MaskSynthesizer, face_pose

    synth, pose = MaskSynthesizer(), face_pose(lm)
    return {"mask": synth.put_mask(img, pose, "correct", "surgical", np.random.default_rng(1)).image,
            "incorrect": synth.put_mask(img, pose, "nose", "surgical", np.random.default_rng(2)).image}


def share_sprites(shared_dir: Path, count: int = 2) -> list:
    """``count`` face photos from the data share that CenterFace (320 px) detects, for a scene."""
    from maskwatch.detectors import create_detector

    found = find_sprites(shared_dir / "data" / "chandrikadeb7-faces" / "without_mask",
                         create_detector("centerface", threads=1, input_size=320), count)
    assert len(found) == count, f"needs {count} photos CenterFace detects"
    return found


def find_sprites(folder: Path, detector, count: int, height: int = FACE_HEIGHT,
                 masker: Callable[[np.ndarray, np.ndarray], dict[str, np.ndarray]] = painted_masks,
                 candidates: list[Path] | None = None) -> list[FaceSprite]:
    """``count`` photos where the detector finds one clear face both bare and masked: the PREFERRED ones
    when they qualify, then the rest in sorted order (or only ``candidates``). ``masker`` makes the
    masked versions."""
    sprites: list[FaceSprite] = []
    preferred = [folder / n for n in PREFERRED if (folder / n).is_file()]
    order = candidates if candidates is not None else preferred + [p for p in sorted(folder.glob("*.jpg")) if p not in preferred]
    for path in order:
        img = read_image(path)
        if min(img.shape[:2]) < 100:
            continue
        scale = height / img.shape[0]
        img = cv2.resize(img, (max(1, round(img.shape[1] * scale)), height), interpolation=cv2.INTER_AREA)
        if img.shape[1] > 1.4 * height:
            continue
        canvas = background()
        canvas[100:100 + img.shape[0], 200:200 + img.shape[1]] = img
        faces = detector.detect(canvas)
        if len(faces) != 1 or faces.scores[0] < 0.6 or faces.landmarks is None or faces.heights[0] < 0.45 * height:
            continue
        lm = faces.landmarks[0] - (200, 100)
        images = {"no_mask": img, **masker(img, lm)}
        ok = True
        for state in ("mask", "incorrect"):
            canvas[100:100 + img.shape[0], 200:200 + img.shape[1]] = images[state]
            found = detector.detect(canvas)
            ok &= len(found) == 1 and found.scores[0] >= 0.5
        if ok:
            sprites.append(FaceSprite(images, path.name))
            if len(sprites) == count:
                break
    return sprites


@dataclass
class Actor:
    sprite: FaceSprite
    path: Callable[[int], tuple[float, float]]  # frame -> top-left x, y
    state: Callable[[int], str]  # frame -> "mask" | "no_mask" | "incorrect"
    visible: Callable[[int], bool] = lambda f: True


@dataclass
class Scene:
    actors: list[Actor]
    frames: int
    fps: float = 25.0
    noise: float = 0.0
    shake: float = 0.0
    occluders: list[tuple[int, int, tuple[int, int, int, int]]] = field(default_factory=list)  # start, end, box
    seed: int = 0

    def render(self, index: int, bg: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        frame = bg.copy()
        h, w = frame.shape[:2]
        for actor in self.actors:
            if not actor.visible(index):
                continue
            img = actor.sprite.images[actor.state(index)]
            x, y = (int(round(v)) for v in actor.path(index))
            x1, y1, x2, y2 = max(x, 0), max(y, 0), min(x + img.shape[1], w), min(y + img.shape[0], h)
            if x2 > x1 and y2 > y1:
                frame[y1:y2, x1:x2] = img[y1 - y:y2 - y, x1 - x:x2 - x]
        for start, end, (ox1, oy1, ox2, oy2) in self.occluders:
            if start <= index < end:
                frame[oy1:oy2, ox1:ox2] = (90, 90, 90)
        if self.shake:
            dx, dy = rng.normal(0, self.shake, 2)
            frame = cv2.warpAffine(frame, np.float32([[1, 0, dx], [0, 1, dy]]), (w, h), borderMode=cv2.BORDER_REFLECT)
        if self.noise:  # a few pre-drawn noise fields, cycled: drawing one per frame costs more than detection
            if not hasattr(self, "_noise"):
                self._noise = [rng.normal(0, self.noise, frame.shape).astype(np.int16) for _ in range(5)]
            frame = np.clip(frame + self._noise[index % 5], 0, 255).astype(np.uint8)
        return frame

    def write(self, path: Path) -> Path:
        rng = np.random.default_rng(self.seed)
        bg = background(seed=self.seed)
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), self.fps, (bg.shape[1], bg.shape[0]))
        for i in range(self.frames):
            writer.write(self.render(i, bg, rng))
        writer.release()
        return path


#: frames where the picture changes in :func:`swap_scene`: (frame, actor, state before, state after)
SWAP_CHANGES = ((0, "B", None, "incorrect"), (50, "A", "mask", "no_mask"), (70, "B", "incorrect", "no_mask"),
                (100, "A", "no_mask", "mask"))


def swap_scene(sprites: list[FaceSprite], fps: float = 25.0) -> Scene:
    """A walks right: masked, takes it off at frame 50, puts it back on at frame 100.
    B stands on the right with the mask under the nose, pulls it down at frame 70. Shake and noise."""
    a = Actor(sprites[0], path=lambda f: (20 + 2.0 * f, 170 + 10 * np.sin(f / 9)),
              state=lambda f: "no_mask" if 50 <= f < 100 else "mask")
    b = Actor(sprites[1], path=lambda f: (470, 60 + 0.5 * f), state=lambda f: "incorrect" if f < 70 else "no_mask")
    return Scene([a, b], frames=150, fps=fps, noise=5, shake=1.5, seed=1)


def event_tolerance_frames(detect_every: int) -> int:
    """How late an event may come after the picture changed: ~4 observations to tip a 6-long window, a
    hold of 2, and a missed detection or two, each observation ``detect_every`` frames apart."""
    return 12 * detect_every if detect_every > 1 else 20


class ColourKeyClassifier:
    """Stand-in for the mask classifier: reads the painted mask colour inside the face box.

    Deterministic, so tests check the monitor (tracking, windows, events) and not a model.
    """

    def __init__(self, confident: float = 0.9, min_fraction: float = 0.08, tolerance: int = 70):
        self.confident = confident
        self.min_fraction = min_fraction
        self.tolerance = tolerance

    def _fraction(self, crop: np.ndarray, colour: tuple[int, int, int]) -> float:
        diff = np.abs(crop.astype(np.int16) - np.array(colour, np.int16)).max(axis=2)
        return float((diff < self.tolerance).mean()) if crop.size else 0.0

    def classify(self, image: np.ndarray, faces: Faces) -> Faces:
        h, w = image.shape[:2]
        rest = (1 - self.confident) / 2
        probs = np.full((len(faces), 3), rest, np.float32)
        for i, (x1, y1, x2, y2) in enumerate(faces.boxes.astype(int)):
            crop = image[max(y1, 0):min(y2, h), max(x1, 0):min(x2, w)]
            blue, green = self._fraction(crop, MASK_BGR), self._fraction(crop, INCORRECT_BGR)
            k = 0 if blue >= self.min_fraction and blue >= green else 2 if green >= self.min_fraction else 1
            probs[i, k] = self.confident
        return faces.with_(probs=probs)


def write_colour_key_onnx(path: Path, crop_size: int = 64) -> Path:
    """The colour-keyed classifier as a real ONNX file (RGB NCHW float 0..255 in, probabilities out),
    so the ``maskwatch watch`` CLI can be run end to end with ``--classifier-model`` and no trained model.

    mask   <- fraction of pixels with B - max(R, G) > 120 (the painted blue mask)
    incorrect <- fraction with G - max(R, B) > 100 (the painted green one)
    no_mask <- a constant 0.08 (whichever fraction is larger wins)
    """
    import json

    import onnx
    from onnx import TensorProto, helper

    def const(name, value):
        return helper.make_tensor(name, TensorProto.FLOAT, [], [value])

    def channel(i):
        return helper.make_node("Slice", ["x", f"s{i}", f"e{i}", "axis"], [f"c{i}"])

    nodes = [channel(0), channel(1), channel(2),
             helper.make_node("Max", ["c0", "c1"], ["rg"]), helper.make_node("Sub", ["c2", "rg"], ["blue"]),
             helper.make_node("Max", ["c0", "c2"], ["rb"]), helper.make_node("Sub", ["c1", "rb"], ["green"]),
             helper.make_node("Greater", ["blue", "t_blue"], ["isb"]), helper.make_node("Greater", ["green", "t_green"], ["isg"]),
             helper.make_node("Cast", ["isb"], ["fb"], to=TensorProto.FLOAT),
             helper.make_node("Cast", ["isg"], ["fg"], to=TensorProto.FLOAT),
             helper.make_node("ReduceMean", ["fb", "axes"], ["mb"], keepdims=0),
             helper.make_node("ReduceMean", ["fg", "axes"], ["mg"], keepdims=0),
             helper.make_node("Mul", ["mb", "zero"], ["z"]), helper.make_node("Add", ["z", "base"], ["mn"]),
             helper.make_node("Concat", ["mb", "mn", "mg"], ["stack"], axis=1),
             helper.make_node("Mul", ["stack", "gain"], ["logits"]),
             helper.make_node("Softmax", ["logits"], ["probs"], axis=1)]
    ints = lambda name, v: helper.make_tensor(name, TensorProto.INT64, [len(v)], v)  # noqa: E731
    inits = [ints(f"s{i}", [i]) for i in range(3)] + [ints(f"e{i}", [i + 1]) for i in range(3)] + [
        ints("axis", [1]), ints("axes", [2, 3]), const("t_blue", 120.0), const("t_green", 100.0),
        const("zero", 0.0), const("base", 0.08), const("gain", 40.0)]
    graph = helper.make_graph(nodes, "colour_key", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, crop_size, crop_size])],
                              [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["n", 3])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    for key, value in {"crop_size": str(crop_size), "crop_context": "0.0", "labels": json.dumps(["mask", "no_mask", "incorrect"])}.items():
        model.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path
