"""Where a mask goes on a face, from CenterFace's five landmarks.

Everything is computed in an *upright face frame*: origin at the midpoint of the eyes, x along the
eye line, y down, in image pixels. Roll (the eye line's angle) is undone first and put back last,
so mask anchors rotate with the head. Yaw is read from how far the nose tip sits off the eye
midpoint: the mask's far side gets narrower, its centre follows the nose.

Anchors are the six MaskTheFace points, in the order ``a`` (top left), ``b`` (top centre, nose
bridge), ``c`` (top right), ``d`` (lower left, jaw), ``e`` (bottom centre, chin), ``f`` (lower right).
Templates and the parametric masks both carry the same six points, so one warp serves both.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..faces import Label

#: wear mode -> classifier label it is written under
WEAR_MODES: dict[str, Label] = {
    "correct": Label.MASK,
    "nose": Label.INCORRECT,  # nose uncovered: mask top edge below the nose tip
    "chin": Label.INCORRECT,  # nose and mouth uncovered, mask on the chin
    "loose": Label.INCORRECT,  # hanging from one ear, tilted down on the other side
}

# Face proportions in units of the eye-to-mouth height h (upright frame); typical adult values.
CHIN_BELOW_MOUTH = 0.72
BRIDGE_FRACTION = 0.45  # nose bridge: this far from the eye line to the nose tip


class LandmarkError(ValueError):
    """The five points do not look like a face (swapped, collapsed or implausible)."""


@dataclass(frozen=True)
class FacePose:
    """A face reduced to what mask placement needs (upright frame, see module doc)."""

    origin: np.ndarray  # eye midpoint in image pixels (2,)
    roll: float  # radians, angle of the eye line
    yaw: float  # -1..1: nose offset from the eye midpoint in half eye distances (+: towards image right)
    eye_dist: float
    nose: np.ndarray  # (2,) upright frame
    mouth: np.ndarray  # (2,) mouth-corner midpoint, upright frame
    mouth_half_width: float
    chin_y: float  # estimated chin bottom, upright frame
    yaw_raw: float = 0.0  # yaw before clipping to -1..1 (beyond 1: near profile)

    @property
    def height(self) -> float:
        """Eye-line-to-mouth distance: the unit of vertical placement."""
        return float(self.mouth[1])

    def to_image(self, points: np.ndarray) -> np.ndarray:
        """Upright-frame points (N, 2) to image pixels."""
        c, s = np.cos(self.roll), np.sin(self.roll)
        rot = np.array([[c, -s], [s, c]], np.float64)
        return np.asarray(points, np.float64) @ rot.T + self.origin

    def to_upright(self, points: np.ndarray) -> np.ndarray:
        c, s = np.cos(self.roll), np.sin(self.roll)
        rot = np.array([[c, -s], [s, c]], np.float64)
        return (np.asarray(points, np.float64) - self.origin) @ rot


def face_pose(landmarks: np.ndarray) -> FacePose:
    """Pose from 5 points (eye on image left, other eye, nose tip, mouth left, mouth right).

    Raises :class:`LandmarkError` when the points are not a plausible upright-ish face.
    """
    pts = np.asarray(landmarks, np.float64).reshape(-1, 2)
    if pts.shape != (5, 2) or not np.isfinite(pts).all():
        raise LandmarkError("need 5 finite landmarks")
    left_eye, right_eye = pts[0], pts[1]
    eye_vec = right_eye - left_eye
    eye_dist = float(np.hypot(*eye_vec))
    if eye_dist < 4:
        raise LandmarkError(f"eyes {eye_dist:.1f} px apart")
    roll = float(np.arctan2(eye_vec[1], eye_vec[0]))
    if abs(roll) > np.radians(60):
        raise LandmarkError(f"head rolled {np.degrees(roll):.0f} degrees")
    origin = (left_eye + right_eye) / 2
    probe = FacePose(origin, roll, 0.0, eye_dist, pts[2], pts[2], 0.0, 0.0)
    up = probe.to_upright(pts)
    nose, mouth_l, mouth_r = up[2], up[3], up[4]
    mouth = (mouth_l + mouth_r) / 2
    h = float(mouth[1])
    if not (0.4 * eye_dist <= h <= 2.5 * eye_dist):
        raise LandmarkError(f"mouth {h:.0f} px below the eyes for eyes {eye_dist:.0f} px apart")
    if not (0.15 * h <= nose[1] <= 0.95 * h):
        raise LandmarkError("nose tip not between eyes and mouth")
    yaw_raw = float(nose[0] / (eye_dist / 2))
    yaw = float(np.clip(yaw_raw, -1.0, 1.0))
    return FacePose(
        origin=origin, roll=roll, yaw=yaw, eye_dist=eye_dist, nose=nose, mouth=mouth,
        mouth_half_width=float(abs(mouth_r[0] - mouth_l[0]) / 2), chin_y=h + CHIN_BELOW_MOUTH * h, yaw_raw=yaw_raw,
    )


def _upright_anchors(pose: FacePose, top_y: float, bottom_y: float, centre_x: float,
                     width_scale: float) -> np.ndarray:
    """Six anchors for a mask whose top centre sits at ``top_y`` and bottom at ``bottom_y``."""
    d = pose.eye_dist
    # yaw: the side the nose turns towards is the far side and looks narrower
    near = 1.0 + 0.45 * abs(pose.yaw)
    far = max(0.25, 1.0 - 0.7 * abs(pose.yaw))
    left_k, right_k = (near, far) if pose.yaw >= 0 else (far, near)
    top_half = 1.02 * d * width_scale
    jaw_half = 0.88 * d * width_scale
    height = bottom_y - top_y
    side_top_y = top_y + 0.16 * height
    side_low_y = top_y + 0.68 * height
    # the bottom centre follows the mouth/chin, which turn further than the nose bridge
    bottom_x = centre_x + 0.25 * pose.yaw * d
    return np.array([
        [centre_x - top_half * left_k, side_top_y],
        [centre_x, top_y],
        [centre_x + top_half * right_k, side_top_y],
        [bottom_x - jaw_half * left_k, side_low_y],
        [bottom_x, bottom_y],
        [bottom_x + jaw_half * right_k, side_low_y],
    ])


def _rotate_about(points: np.ndarray, pivot: np.ndarray, angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return (points - pivot) @ np.array([[c, s], [-s, c]]) + pivot


def mask_anchors(pose: FacePose, mode: str, rng: np.random.Generator | None = None) -> np.ndarray:
    """Six anchor points (a..f, image pixels) for wearing a mask in ``mode`` (see :data:`WEAR_MODES`).

    ``rng`` adds small random variation (how high, how tight, which side hangs); None gives the
    middle of each range, which the tests use.
    """
    if mode not in WEAR_MODES:
        raise ValueError(f"unknown wear mode '{mode}'; choose from {', '.join(WEAR_MODES)}")

    def pick(lo: float, hi: float) -> float:
        return (lo + hi) / 2 if rng is None else float(rng.uniform(lo, hi))

    h = pose.height
    nose_y, mouth_y, chin_y = float(pose.nose[1]), float(pose.mouth[1]), pose.chin_y
    bridge_x = 0.6 * float(pose.nose[0])
    correct_top = BRIDGE_FRACTION * nose_y
    correct_bottom = chin_y + 0.06 * h
    full_height = correct_bottom - correct_top
    if mode == "correct":
        top = correct_top + pick(-0.06, 0.06) * h
        pts = _upright_anchors(pose, top, correct_bottom + pick(-0.03, 0.06) * h, bridge_x, pick(0.95, 1.08))
    elif mode == "nose":
        # top edge between the nose tip and the upper lip: the tip stays visible, the mouth covered
        top = nose_y + pick(0.22, 0.42) * (mouth_y - nose_y)
        pts = _upright_anchors(pose, top, top + pick(0.88, 1.0) * full_height, float(pose.nose[0]), pick(0.95, 1.05))
    elif mode == "chin":
        # top edge under the lower lip: mouth and nose visible, mask on chin and neck
        top = mouth_y + pick(0.38, 0.55) * (chin_y - mouth_y)
        pts = _upright_anchors(pose, top, top + pick(0.7, 0.85) * full_height, float(pose.mouth[0]), pick(0.85, 0.95))
    else:  # loose: hooked on one ear near the cheek, dropping on the other side
        top = nose_y + pick(0.3, 0.5) * (mouth_y - nose_y)
        pts = _upright_anchors(pose, top, top + pick(0.9, 1.0) * full_height, float(pose.nose[0]), pick(0.95, 1.05))
        side = 1 if rng is None else (1 if rng.random() < 0.5 else -1)  # +1: right side drops
        pivot = pts[0] if side > 0 else pts[2]
        pts = _rotate_about(pts, pivot, side * np.radians(pick(14.0, 26.0)))
    return pose.to_image(pts).astype(np.float32)


def anchor_ratio(anchors: np.ndarray) -> float:
    """Where the top centre sits between the top corners (0.5: frontal). Picks template views."""
    a, b, c = anchors[0], anchors[1], anchors[2]
    span = float(np.hypot(*(c - a)))
    if span <= 0:
        return 0.5
    return float(np.dot(b - a, c - a) / span**2)
