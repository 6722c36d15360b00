"""Put masks on faces: find landmarks, pick wear mode and style, place, light and blend the mask."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..faces import Faces
from .geometry import WEAR_MODES, FacePose, LandmarkError, anchor_ratio, face_pose, mask_anchors
from .render import blend_mask
from .styles import PARAMETRIC_STYLES, draw_mask
from .templates import DEFAULT_EXCLUDE, TemplateSet, load_template_set, pick_view

STYLES = ("templates", *PARAMETRIC_STYLES)
#: results whose mask lies less than this much inside the image are not used
MIN_VISIBLE = 0.3
#: nose tip further than this many half eye distances off the eye midpoint: a near-profile face,
#: where five points no longer say where the jaw is
MAX_YAW = 1.15


class SkipFace(Exception):
    """A face the generator cannot use; ``reason`` is one of the summary's skip reasons."""

    def __init__(self, reason: str, detail: str = ""):
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


@dataclass
class MaskedFace:
    """One synthetic result: the edited image and what was done to it."""

    image: np.ndarray
    coverage: np.ndarray  # float32 0..1 per pixel: how much mask covers it
    anchors: np.ndarray  # (6, 2) where a..f landed
    mode: str
    style: str  # "surgical", ..., or "template:<name>"

    @property
    def label(self) -> str:
        return WEAR_MODES[self.mode]

    @property
    def visible(self) -> float:
        """Share of the mask inside the image (anchor outline area vs coverage); tight face crops
        cut off masks worn low, and a sliver of mask is no useful example."""
        outline = self.anchors[[0, 1, 2, 5, 4, 3]]
        area = 0.5 * abs(float(np.dot(outline[:, 0], np.roll(outline[:, 1], 1)) - np.dot(outline[:, 1], np.roll(outline[:, 0], 1))))
        return float(min(1.0, self.coverage.sum() / max(area, 1.0)))


@dataclass
class FaceFit:
    """A face found in a source image, with the pose the mask is placed by."""

    box: np.ndarray  # (4,) x1 y1 x2 y2
    landmarks: np.ndarray  # (5, 2)
    pose: FacePose


def parse_weights(text: str, allowed: tuple[str, ...], what: str) -> dict[str, float]:
    """``"correct=2,nose,chin"`` -> {"correct": 2.0, "nose": 1.0, "chin": 1.0}; names are checked."""
    out: dict[str, float] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        name, _, weight = part.partition("=")
        name = name.strip().lower()
        if name not in allowed:
            raise ValueError(f"unknown {what} '{name}'; choose from {', '.join(allowed)}")
        try:
            value = float(weight) if weight else 1.0
        except ValueError:
            raise ValueError(f"{what} weight '{weight}' for '{name}' is not a number") from None
        if value < 0:
            raise ValueError(f"{what} weight for '{name}' is negative")
        out[name] = value
    if not out or sum(out.values()) <= 0:
        raise ValueError(f"no {what} chosen; choose from {', '.join(allowed)}")
    return out


@dataclass
class MaskSynthesizer:
    """Chooses and applies masks. ``detector`` is only needed for :meth:`fit_face`.

    modes / styles: name -> sampling weight. ``per_face`` may be fractional: 1.5 gives every face
    one result and half of them a second (with another wear mode).
    """

    modes: dict[str, float] = field(default_factory=lambda: {m: 1.0 for m in WEAR_MODES})
    styles: dict[str, float] = field(default_factory=lambda: {s: 1.0 for s in STYLES})
    templates: TemplateSet | None = None
    per_face: float = 1.0
    min_face: float = 40
    detector: object | None = None

    @classmethod
    def with_templates(cls, folder, exclude: tuple[str, ...] = DEFAULT_EXCLUDE, **kwargs) -> "MaskSynthesizer":
        """Load templates when the ``templates`` style is wanted (problems stay in ``templates.problems``)."""
        synth = cls(**kwargs)
        if synth.styles.get("templates", 0) > 0:
            synth.templates = load_template_set(folder, exclude)
            if not len(synth.templates):
                synth.styles = {k: v for k, v in synth.styles.items() if k != "templates"}
                synth.templates.problems.append(f"{folder}: no usable templates; style 'templates' left out")
                if not synth.styles:
                    raise ValueError("no usable mask style: the only style asked for was 'templates'")
        return synth

    # -- choosing -------------------------------------------------------------------------------
    def plan(self, rng: np.random.Generator) -> list[tuple[str, str]]:
        """(mode, style) for each result made from one face; modes do not repeat within a face."""
        whole = int(np.floor(self.per_face))
        count = whole + int(rng.random() < self.per_face - whole)
        names = [m for m, w in self.modes.items() if w > 0]
        weights = np.array([self.modes[m] for m in names], np.float64)
        chosen: list[str] = []
        while len(chosen) < count:
            take = min(count - len(chosen), len(names))
            order = rng.choice(len(names), size=take, replace=False, p=weights / weights.sum())
            chosen += [names[i] for i in order]
        style_names = [s for s, w in self.styles.items() if w > 0]
        style_p = np.array([self.styles[s] for s in style_names], np.float64)
        return [(mode, style_names[int(rng.choice(len(style_names), p=style_p / style_p.sum()))]) for mode in chosen]

    # -- landmarks ------------------------------------------------------------------------------
    def fit_face(self, image: np.ndarray, near_box: np.ndarray | None = None) -> FaceFit:
        """Find the face to mask: the largest one, or the one best matching ``near_box``.

        Tries the detector at its own input size, then at 640 px for faces it missed.
        """
        if self.detector is None:
            raise RuntimeError("MaskSynthesizer.fit_face needs a detector")
        faces = self.detector.detect(image)
        if not len(faces) and getattr(self.detector, "input_size", 640) not in (None, 640):
            original = self.detector.input_size
            self.detector.input_size = 640
            try:
                faces = self.detector.detect(image)
            finally:
                self.detector.input_size = original
        if not len(faces):
            raise SkipFace("no face")
        index = self._choose(faces, near_box)
        box = faces.boxes[index]
        size_box = box if near_box is None else np.asarray(near_box, np.float32)
        size = float(min(size_box[2] - size_box[0], size_box[3] - size_box[1]))
        if size < self.min_face:
            raise SkipFace("too small", f"{size:.0f} px < --min-face {self.min_face:g}")
        if faces.landmarks is None or not len(faces.landmarks):
            raise SkipFace("landmarks missing", "detector gave no landmarks")
        try:
            pose = face_pose(faces.landmarks[index])
        except LandmarkError as exc:
            raise SkipFace("landmarks missing", str(exc)) from None
        if abs(pose.yaw_raw) > MAX_YAW:
            raise SkipFace("turned too far", f"nose {pose.yaw_raw:+.2f} half eye distances off centre")
        return FaceFit(box=box.copy(), landmarks=faces.landmarks[index].copy(), pose=pose)

    @staticmethod
    def _choose(faces: Faces, near_box: np.ndarray | None) -> int:
        if near_box is None:
            return int(np.argmax(faces.widths * faces.heights))
        from ..boxes import iou_matrix

        ious = iou_matrix(np.asarray(near_box, np.float32)[None], faces.boxes)[0]
        best = int(np.argmax(ious))
        if ious[best] < 0.3:
            raise SkipFace("no face", f"no detection overlaps the box (best IoU {ious[best]:.2f})")
        return best

    # -- drawing --------------------------------------------------------------------------------
    def put_mask_in_frame(self, image: np.ndarray, pose: FacePose, mode: str, style: str,
                          rng: np.random.Generator, min_visible: float = MIN_VISIBLE) -> MaskedFace | None:
        """Like :meth:`put_mask`, but when less than ``min_visible`` of the mask lies inside the image
        (tight face crops cut off masks worn on the chin), try the other enabled modes with the same
        label, highest-sitting first; None when none fits."""
        same_label = [m for m in ("nose", "loose", "chin", "correct")
                      if m != mode and self.modes.get(m, 0) > 0 and WEAR_MODES[m] == WEAR_MODES[mode]]
        for candidate in (mode, *same_label):
            result = self.put_mask(image, pose, candidate, style, rng)
            if result.visible >= min_visible:
                return result
        return None

    def put_mask(self, image: np.ndarray, pose: FacePose, mode: str, style: str,
                 rng: np.random.Generator) -> MaskedFace:
        """Mask the face with ``pose`` in ``image`` (BGR uint8), worn as ``mode``, in ``style``."""
        anchors = mask_anchors(pose, mode, rng)
        span = float(np.hypot(*(anchors[2] - anchors[0])))
        if style == "templates":
            if self.templates is None or not len(self.templates):
                raise ValueError("style 'templates' asked for but no templates are loaded")
            families = sorted(self.templates.families)
            family = families[int(rng.integers(len(families)))]
            art = pick_view(self.templates.families[family], anchor_ratio(anchors))
            style_name = f"template:{art.name}"
        else:
            art = draw_mask(style, rng, width=int(np.clip(2 * span, 64, 400)))
            style_name = style
        out, coverage = blend_mask(image, art, anchors, rng, face_width=2 * pose.eye_dist)
        return MaskedFace(image=out, coverage=coverage, anchors=anchors, mode=mode, style=style_name)
