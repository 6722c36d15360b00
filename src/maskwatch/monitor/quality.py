"""How much a face's classification should count: size, sharpness and pose, each in 0..1."""

from __future__ import annotations

import cv2
import numpy as np

from ..faces import Faces


def face_quality(gray: np.ndarray, faces: Faces, min_face: float = 20.0, good_face: float = 72.0,
                 sharp_ref: float = 120.0) -> np.ndarray:
    """(N,) weights in 0..1: ``size * sharpness * pose``.

    size: 0 at ``min_face`` px (shorter side), 1 from ``good_face`` px up.
    sharpness: variance of the Laplacian of the upper half of the face (eyes and brows: a mask never
    covers them, so a masked face is not judged blurrier than a bare one) resized to 64x32 (so it does
    not grow with face size), divided by ``sharp_ref`` and capped at 1; floored at 0.1 so a soft
    camera still votes a little.
    pose: from 5-point landmarks when present, how far the nose sits from the eyes' midpoint relative to
    the eye distance (0 frontal, about 0.5 and more for a profile); 1 without landmarks.
    """
    n = len(faces)
    if n == 0:
        return np.zeros((0,), np.float32)
    sides = np.minimum(faces.widths, faces.heights)
    size = np.clip((sides - min_face) / max(good_face - min_face, 1e-6), 0.0, 1.0)
    h, w = gray.shape[:2]
    sharp = np.ones(n, np.float32)
    for i, (x1, y1, x2, y2) in enumerate(faces.boxes.astype(int)):
        y2 = y1 + (y2 - y1) // 2
        x1, y1, x2, y2 = max(x1, 0), max(y1, 0), min(x2, w), min(y2, h)
        if x2 - x1 < 4 or y2 - y1 < 4:
            sharp[i] = 0.1
            continue
        patch = cv2.resize(gray[y1:y2, x1:x2], (64, 32), interpolation=cv2.INTER_AREA)
        sharp[i] = cv2.Laplacian(patch, cv2.CV_32F).var() / sharp_ref
    sharp = np.clip(sharp, 0.1, 1.0)
    pose = np.ones(n, np.float32)
    if faces.landmarks is not None and faces.landmarks.shape[1] >= 3:
        eyes_mid = faces.landmarks[:, :2].mean(axis=1)
        eye_dist = np.linalg.norm(faces.landmarks[:, 1] - faces.landmarks[:, 0], axis=1)
        yaw = np.abs(faces.landmarks[:, 2, 0] - eyes_mid[:, 0]) / np.maximum(eye_dist, 1e-3)
        pose = np.clip(1.0 - 1.5 * yaw, 0.1, 1.0)
    return (size * sharp * pose).astype(np.float32)
