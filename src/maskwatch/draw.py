"""Annotated images: a box per face, coloured by mask state, with label and confidence."""

from __future__ import annotations

import cv2
import numpy as np

from .faces import LABELS, Faces, Label

#: BGR colours per state; grey for faces not classified yet.
COLOURS: dict[Label | None, tuple[int, int, int]] = {
    Label.MASK: (80, 175, 76), Label.NO_MASK: (54, 67, 244), Label.INCORRECT: (0, 165, 255), None: (200, 200, 200),
}
TEXT = {Label.MASK: "mask", Label.NO_MASK: "no mask", Label.INCORRECT: "incorrect"}


def annotate(image: np.ndarray, faces: Faces, copy: bool = True) -> np.ndarray:
    """Draw ``faces`` on ``image``. Line width and font scale follow the image size so labels stay
    legible on thumbnails and on 4K frames alike."""
    out = image.copy() if copy else image
    h, w = out.shape[:2]
    unit = max(h, w) / 640.0
    thickness = max(1, round(2 * unit))
    font_scale = max(0.35, 0.5 * unit)
    labels = faces.labels
    for i in range(len(faces)):
        x1, y1, x2, y2 = (int(round(v)) for v in faces.boxes[i])
        label = labels[i] if labels else None
        colour = COLOURS[label]
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, thickness, cv2.LINE_AA)
        if label is not None:
            text = f"{TEXT[label]} {faces.probs[i].max():.0%}"
        else:
            text = f"face {faces.scores[i]:.2f}"
        if faces.track_ids is not None:
            text = f"#{faces.track_ids[i]} {text}"
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, max(1, thickness // 2))
        ty = y1 - 3 if y1 - th - base - 3 >= 0 else min(y2 + th + base + 3, h - 1)
        cv2.rectangle(out, (x1, ty - th - base), (x1 + tw + 4, ty + base // 2), colour, -1)
        cv2.putText(out, text, (x1 + 2, ty - base // 2), cv2.FONT_HERSHEY_SIMPLEX, font_scale,
                    (255, 255, 255), max(1, thickness // 2), cv2.LINE_AA)
    return out


__all__ = ["COLOURS", "LABELS", "annotate"]
