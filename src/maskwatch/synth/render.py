"""Put a mask picture onto a photo: warp by its six anchors, light it like the face, blend the edges.

The warp uses two perspective transforms, one per half (a-b-e-d and b-c-f-e), so the two sides can
differ in width when the head turns; the halves meet along b-e with a one-pixel cross-fade.
"""

from __future__ import annotations

import cv2
import numpy as np

from .templates import MaskArt

_LEFT, _RIGHT = [0, 1, 4, 3], [1, 2, 5, 4]  # anchor indices of each half's quad


def _half_weights(art: MaskArt) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel weight of the left and right half (sum 1), split along the line b-e."""
    h, w = art.rgba.shape[:2]
    b, e = art.anchors[1].astype(np.float64), art.anchors[4].astype(np.float64)
    direction = e - b
    norm = np.hypot(*direction) or 1.0
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    # signed distance to the line b-e: positive on the right of the image
    dist = ((xx - b[0]) * direction[1] - (yy - b[1]) * direction[0]) / norm
    right = np.clip(dist + 0.5, 0, 1).astype(np.float32)
    return 1 - right, right


def _scaled(art: MaskArt, target_span: float) -> MaskArt:
    """Shrink a large template close to twice the target size first (area filter, no aliasing)."""
    span = float(np.hypot(*(art.anchors[2] - art.anchors[0])))
    factor = 2 * target_span / max(span, 1.0)
    if factor >= 0.9:
        return art
    h, w = art.rgba.shape[:2]
    size = (max(2, round(w * factor)), max(2, round(h * factor)))
    rgba = cv2.resize(art.rgba, size, interpolation=cv2.INTER_AREA)
    return MaskArt(art.name, rgba, art.anchors * np.array([size[0] / w, size[1] / h], np.float32))


def warp_mask(art: MaskArt, anchors: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """Warp ``art`` so its anchors land on ``anchors`` (image pixels).

    Returns (colour BGR float32, alpha float32 0..1, (x0, y0)) over the smallest region of an image
    of ``shape`` (h, w) that holds the mask; empty arrays if the mask falls outside the image.
    """
    anchors = np.asarray(anchors, np.float32)
    art = _scaled(art, float(np.hypot(*(anchors[2] - anchors[0]))))
    h, w = art.rgba.shape[:2]
    corners = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    mats, extents = [], []
    for idx in (_LEFT, _RIGHT):
        mat = cv2.getPerspectiveTransform(art.anchors[idx].astype(np.float32), anchors[idx])
        mats.append(mat)
        extents.append(cv2.perspectiveTransform(corners[None], mat)[0])
    pts = np.vstack(extents)
    span = float(np.ptp(anchors, axis=0).max()) + 1
    centre = anchors.mean(0)
    pts = np.clip(pts, centre - 3 * span, centre + 3 * span)  # guard against a degenerate perspective
    x0 = int(max(0, np.floor(pts[:, 0].min()) - 2))
    y0 = int(max(0, np.floor(pts[:, 1].min()) - 2))
    x1 = int(min(shape[1], np.ceil(pts[:, 0].max()) + 2))
    y1 = int(min(shape[0], np.ceil(pts[:, 1].max()) + 2))
    if x1 <= x0 or y1 <= y0:
        return np.zeros((0, 0, 3), np.float32), np.zeros((0, 0), np.float32), (0, 0)
    shift = np.array([[1, 0, -x0], [0, 1, -y0], [0, 0, 1]], np.float64)
    alpha = art.rgba[..., 3].astype(np.float32) / 255
    premult = art.rgba[..., :3].astype(np.float32) * alpha[..., None]
    size = (x1 - x0, y1 - y0)
    colour = np.zeros((size[1], size[0], 3), np.float32)
    cover = np.zeros((size[1], size[0]), np.float32)
    for mat, weight in zip(mats, _half_weights(art)):
        layer = np.dstack([premult * weight[..., None], alpha * weight])
        warped = cv2.warpPerspective(layer, shift @ mat, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        colour += warped[..., :3]
        cover += warped[..., 3]
    cover = np.clip(cover, 0, 1)
    colour = colour / np.maximum(cover, 1e-4)[..., None]
    return colour, cover, (x0, y0)


def _noise_sigma(gray: np.ndarray, where: np.ndarray) -> float:
    """Sensor/JPEG noise level where ``where`` is true (robust: median absolute high-pass residual)."""
    residual = (gray - cv2.blur(gray, (3, 3)))[where]
    if residual.size < 16:
        return 0.0
    return float(1.48 * np.median(np.abs(residual - np.median(residual))))


def blend_mask(image: np.ndarray, art: MaskArt, anchors: np.ndarray, rng: np.random.Generator,
               face_width: float) -> tuple[np.ndarray, np.ndarray]:
    """The photo with the mask on it, and the mask's coverage (float32 0..1, full image size).

    Lighting: the mask is darkened/brightened by the local brightness of the face under it (a
    heavily blurred luminance map, so shadows and side light carry across), takes on the photo's
    colour cast, gets the photo's noise level and a slightly soft edge.
    """
    out = image.copy()
    coverage = np.zeros(image.shape[:2], np.float32)
    colour, alpha, (x0, y0) = warp_mask(art, anchors, image.shape[:2])
    if alpha.size == 0 or alpha.max() < 0.05:
        return out, coverage
    rh, rw = alpha.shape
    roi = image[y0:y0 + rh, x0:x0 + rw].astype(np.float32)
    gray = cv2.cvtColor(roi.astype(np.uint8), cv2.COLOR_BGR2GRAY).astype(np.float32)
    inside = alpha > 0.5
    if not inside.any():
        inside = alpha > 0
    # local lighting: white paper under this light would be ~1.6x as bright as skin
    lum = cv2.GaussianBlur(gray, (0, 0), max(1.0, face_width / 5))
    under = float(lum[inside].mean())
    level = float(np.clip(under * 1.6 / 235, 0.3, 1.1))
    ramp = np.clip(lum / max(under, 1.0), 0.6, 1.4) ** 0.7
    # roundness: the mask curves away from the camera at its rim, so its edges get less light
    rim = cv2.distanceTransform((alpha > 0.5).astype(np.uint8), cv2.DIST_L2, 3)
    round_ = 0.8 + 0.2 * np.clip(rim / max(1.0, 0.12 * face_width), 0, 1)
    colour *= (level * ramp * round_)[..., None]
    # colour cast of the photo (e.g. warm indoor light), softened
    mean_bgr = roi[inside].mean(0) + 1.0
    cast = (mean_bgr / mean_bgr.mean()) ** 0.35
    colour *= cast[None, None, :].astype(np.float32)
    grayscale = np.abs(roi[..., 0] - roi[..., 2]).max() < 2 and np.abs(roi[..., 0] - roi[..., 1]).max() < 2
    soft = float(np.clip(face_width / 160, 0.35, 1.5)) * float(rng.uniform(0.7, 1.2))
    # blur colour premultiplied by alpha, so the transparent outside does not bleed in as black
    premult = cv2.GaussianBlur(colour * alpha[..., None], (0, 0), soft * 0.8)
    alpha = cv2.GaussianBlur(alpha, (0, 0), soft * 0.8)
    colour = premult / np.maximum(alpha, 1e-3)[..., None]
    alpha = cv2.GaussianBlur(alpha, (0, 0), soft * 0.6)
    # the photo's grain, measured on the skin under the mask (edges of hair or background would
    # inflate it), kept modest: a mask surface is smoother than skin
    sigma = float(np.clip(0.6 * _noise_sigma(gray, inside), 0.8, 4.0))
    colour += rng.normal(0, sigma, colour.shape).astype(np.float32)
    if grayscale:  # grayscale photo: grayscale mask
        colour[:] = colour.mean(axis=2, keepdims=True)
    blended = roi * (1 - alpha[..., None]) + colour * alpha[..., None]
    out[y0:y0 + rh, x0:x0 + rw] = np.clip(np.round(blended), 0, 255).astype(np.uint8)
    coverage[y0:y0 + rh, x0:x0 + rw] = alpha
    return out, coverage
