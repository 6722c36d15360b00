"""Masks drawn by code: surgical (pleats), cloth (fabric patterns), N95 (cup) and KN95 (folded).

Each is drawn flat, facing the camera, on a canvas whose six anchors a..f match the template
convention (see :mod:`.geometry`); the warp onto the face bends it to the pose. Shading drawn here
is the mask's own relief (pleat shadows, cup curvature, the KN95 fold); lighting from the photo is
applied later by :mod:`.render`.
"""

from __future__ import annotations

import cv2
import numpy as np

from .templates import MaskArt

PARAMETRIC_STYLES = ("surgical", "cloth", "n95", "kn95")

# BGR colours
_SURGICAL = [(235, 200, 150), (210, 180, 110), (200, 220, 170), (245, 245, 245), (50, 50, 50), (200, 180, 240),
             (230, 215, 180)]
_CLOTH = [(40, 40, 40), (120, 70, 30), (60, 60, 160), (50, 110, 60), (170, 170, 170), (90, 40, 110), (30, 120, 200),
          (200, 200, 220), (80, 90, 110), (160, 100, 190)]
_N95 = [(235, 238, 240), (225, 230, 232), (215, 220, 225), (240, 240, 236)]
_KN95 = [(240, 240, 240), (45, 45, 45), (225, 225, 230), (235, 215, 235), (240, 220, 190), (205, 200, 195)]


def _bezier(p0, p1, p2, n: int = 24) -> np.ndarray:
    t = np.linspace(0, 1, n)[:, None]
    p0, p1, p2 = (np.asarray(p, np.float64) for p in (p0, p1, p2))
    return (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t**2 * p2


def _jitter_colour(rng: np.random.Generator, palette: list[tuple[int, int, int]], amount: float = 12) -> np.ndarray:
    base = np.array(palette[int(rng.integers(len(palette)))], np.float64)
    return np.clip(base + rng.normal(0, amount, 3), 0, 255)


class _Canvas:
    """A BGR float canvas plus alpha, with the anchor layout every parametric mask shares."""

    def __init__(self, width: int, rng: np.random.Generator):
        self.w = int(width)
        self.h = int(round(width * 0.72))
        self.rng = rng
        self.bgr = np.zeros((self.h, self.w, 3), np.float32)
        self.alpha = np.zeros((self.h, self.w), np.float32)
        w, h = self.w, self.h
        self.anchors = np.array([
            [0.10 * w, 0.20 * h], [0.50 * w, 0.06 * h], [0.90 * w, 0.20 * h],
            [0.12 * w, 0.70 * h], [0.50 * w, 0.95 * h], [0.88 * w, 0.70 * h],
        ], np.float32)

    def fill(self, outline: np.ndarray, colour: np.ndarray) -> np.ndarray:
        """Fill the outline (alpha 1) with a colour; returns the region as a float mask."""
        region = np.zeros((self.h, self.w), np.uint8)
        cv2.fillPoly(region, [np.round(outline * 16).astype(np.int32)], 255, cv2.LINE_AA, shift=4)
        region_f = region.astype(np.float32) / 255
        self.alpha = np.maximum(self.alpha, region_f)
        self.bgr[:] = self.bgr * (1 - region_f[..., None]) + colour.astype(np.float32) * region_f[..., None]
        return region_f

    def line(self, pts: np.ndarray, colour, thickness: float, shade: float | None = None) -> None:
        """Draw a polyline in a colour, or (``shade``) multiply what is there by a factor."""
        layer = np.zeros((self.h, self.w), np.uint8)
        cv2.polylines(layer, [np.round(pts * 16).astype(np.int32)], False, 255,
                      max(1, int(round(thickness))), cv2.LINE_AA, shift=4)
        k = layer.astype(np.float32)[..., None] / 255
        if shade is not None:
            self.bgr[:] = self.bgr * (1 - k + k * shade)
        else:
            self.bgr[:] = self.bgr * (1 - k) + np.asarray(colour, np.float32) * k
            self.alpha = np.maximum(self.alpha, k[..., 0])

    def relief(self, factor: np.ndarray) -> None:
        self.bgr *= factor[..., None].astype(np.float32)

    def grain(self, sigma: float) -> None:
        noise = self.rng.normal(0, sigma, (self.h, self.w, 1)).astype(np.float32)
        self.bgr += noise

    def art(self, name: str) -> MaskArt:
        rgba = np.dstack([np.clip(self.bgr, 0, 255), np.clip(self.alpha * 255, 0, 255)]).astype(np.uint8)
        return MaskArt(name=name, rgba=rgba, anchors=self.anchors.copy())


def _rows(top: np.ndarray, bottom: np.ndarray, v: float) -> np.ndarray:
    return (1 - v) * top + v * bottom


def _surgical(cv: _Canvas) -> MaskArt:
    rng, (a, b, c, d, e, f) = cv.rng, cv.anchors
    lift = rng.uniform(0.0, 0.06) * cv.h
    top = _bezier(a, (b[0], b[1] - lift), c)
    bottom = _bezier(d + (0, 0.12 * cv.h), (e[0], e[1] + 0.08 * cv.h), f + (0, 0.12 * cv.h))
    outline = np.vstack([top, bottom[::-1]])
    colour = _jitter_colour(rng, _SURGICAL)
    cv.fill(outline, colour)
    yy = np.linspace(0, 1, cv.h)[:, None]
    cv.relief(np.broadcast_to(0.93 + 0.1 * np.sin(np.pi * yy), (cv.h, cv.w)))
    n_pleats = int(rng.integers(2, 4))
    thick = max(1.0, cv.w / 160)
    for i in range(n_pleats):
        v = 0.3 + 0.45 * i / max(1, n_pleats - 1)
        row = _rows(top, bottom, v)[2:-2]
        cv.line(row + (0, thick), None, 2.5 * thick, shade=0.66)  # shadow under the fold
        cv.line(row - (0, 0.8 * thick), None, 1.5 * thick, shade=1.12)  # lit edge of the fold
    # side binding strips and the nose wire
    cv.line(np.vstack([top[0], bottom[0]]), colour * 0.9, 3 * thick)
    cv.line(np.vstack([top[-1], bottom[-1]]), colour * 0.9, 3 * thick)
    cv.line(top[6:-6] + (0, 1.5 * thick), None, 2 * thick, shade=0.9)
    cv.line(top, colour * 0.92, 1.5 * thick)
    # ear loops leaving the corners
    loop = (245, 245, 245) if rng.random() < 0.7 else tuple(colour)
    cv.line(_bezier(top[0], (top[0][0] - 0.09 * cv.w, (top[0][1] + bottom[0][1]) / 2), bottom[0]), loop, thick)
    cv.line(_bezier(top[-1], (top[-1][0] + 0.09 * cv.w, (top[-1][1] + bottom[-1][1]) / 2), bottom[-1]), loop, thick)
    cv.grain(2.0)
    return cv.art("surgical")


def _fabric(cv: _Canvas, colour: np.ndarray) -> np.ndarray:
    """A tileable-looking fabric texture (BGR float) for the whole canvas."""
    rng = cv.rng
    h, w = cv.h, cv.w
    tex = np.broadcast_to(colour.astype(np.float32), (h, w, 3)).copy()
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    kind = rng.choice(["plain", "stripes", "dots", "plaid", "print"])
    other = _jitter_colour(rng, _CLOTH, 30)
    period = rng.uniform(0.05, 0.12) * w
    if kind == "stripes":
        angle = rng.uniform(0, np.pi)
        band = (np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * 2 * np.pi / period) > 0.3)
        tex[band] = other
    elif kind == "dots":
        cx, cy = (xx % period) - period / 2, (yy % period) - period / 2
        tex[(cx**2 + cy**2) < (0.22 * period) ** 2] = other
    elif kind == "plaid":
        k = (np.abs(np.sin(xx * np.pi / period)) < 0.25) | (np.abs(np.sin(yy * np.pi / period)) < 0.25)
        tex[k] = 0.6 * tex[k] + 0.4 * other
    elif kind == "print":
        for _ in range(int(rng.integers(10, 30))):
            centre = (int(rng.uniform(0, w)), int(rng.uniform(0, h)))
            axes = (int(rng.uniform(0.02, 0.06) * w), int(rng.uniform(0.02, 0.05) * w))
            cv2.ellipse(tex, centre, axes, float(rng.uniform(0, 180)), 0, 360, tuple(float(x) for x in other), -1, cv2.LINE_AA)
    weave = 1 + 0.05 * np.sin(xx * 2.1) * np.sin(yy * 2.1)
    return tex * weave[..., None]


def _cloth(cv: _Canvas) -> MaskArt:
    rng, (a, b, c, d, e, f) = cv.rng, cv.anchors
    top = np.vstack([_bezier(a, (a[0] + 0.15 * cv.w, b[1]), b, 14), _bezier(b, (c[0] - 0.15 * cv.w, b[1]), c, 14)[1:]])
    bottom = np.vstack([_bezier(d, (d[0] + 0.05 * cv.w, e[1]), e, 14), _bezier(e, (f[0] - 0.05 * cv.w, e[1]), f, 14)[1:]])
    outline = np.vstack([top, bottom[::-1]])
    region = cv.fill(outline, np.zeros(3))
    tex = _fabric(cv, _jitter_colour(rng, _CLOTH, 20))
    cv.bgr[:] = tex * region[..., None]
    xx = np.linspace(-1, 1, cv.w)[None, :]
    cv.relief(np.broadcast_to(1.05 - 0.18 * xx**2, (cv.h, cv.w)))
    thick = max(1.0, cv.w / 150)
    cv.line(np.vstack([b, _bezier(b, (b[0] + 0.02 * cv.w, (b[1] + e[1]) / 2), e, 12)]), None, 2 * thick, shade=0.7)
    cv.line(outline[:len(top)], None, 2 * thick, shade=0.8)  # hem
    cv.line(outline[len(top):], None, 2 * thick, shade=0.8)
    cv.grain(3.0)
    return cv.art("cloth")


def _n95(cv: _Canvas) -> MaskArt:
    rng, (a, b, c, d, e, f) = cv.rng, cv.anchors
    centre = ((a + c + d + f) / 4 + (b + e) / 2) / 2
    top = _bezier(a + (0, 0.02 * cv.h), (b[0], b[1] - 0.06 * cv.h), c + (0, 0.02 * cv.h))
    bottom = np.vstack([_bezier(c, (c[0] + 0.05 * cv.w, f[1]), f, 10), _bezier(f, (e[0] + 0.25 * cv.w, e[1] + 0.03 * cv.h), e, 12)[1:],
                        _bezier(e, (e[0] - 0.25 * cv.w, e[1] + 0.03 * cv.h), d, 12)[1:], _bezier(d, (a[0] - 0.05 * cv.w, d[1]), a, 10)[1:]])
    outline = np.vstack([top, bottom])
    colour = _jitter_colour(rng, _N95, 6)
    cv.fill(outline, colour)
    yy, xx = np.mgrid[0:cv.h, 0:cv.w].astype(np.float32)
    r2 = ((xx - centre[0]) / (0.45 * cv.w)) ** 2 + ((yy - centre[1]) / (0.5 * cv.h)) ** 2
    cv.relief(np.clip(1.06 - 0.22 * r2, 0.6, 1.1))  # dome
    thick = max(1.0, cv.w / 160)
    cv.line(np.vstack([top, bottom]), None, 3 * thick, shade=0.85)  # rim
    clip = top[8:-8] + (0, 2.5 * thick)
    cv.line(clip, (200, 200, 205) if rng.random() < 0.6 else (60, 60, 60), 2.5 * thick)  # nose clip
    if rng.random() < 0.35:  # exhalation valve
        valve_c = (int(centre[0]), int(centre[1] + 0.12 * cv.h))
        radius = int(0.09 * cv.w)
        cv2.circle(cv.bgr, valve_c, radius, tuple(float(x) * 0.85 for x in colour), -1, cv2.LINE_AA)
        cv2.circle(cv.bgr, valve_c, int(radius * 0.75), tuple(float(x) * 0.7 for x in colour), max(1, int(thick)), cv2.LINE_AA)
    cv.grain(2.5)
    return cv.art("n95")


def _kn95(cv: _Canvas) -> MaskArt:
    rng, (a, b, c, d, e, f) = cv.rng, cv.anchors
    top = np.vstack([_bezier(a, ((a[0] + b[0]) / 2, b[1] + 0.04 * cv.h), b, 12), _bezier(b, ((b[0] + c[0]) / 2, b[1] + 0.04 * cv.h), c, 12)[1:]])
    bottom = np.vstack([_bezier(d, ((d[0] + e[0]) / 2, e[1] - 0.02 * cv.h), e, 12), _bezier(e, ((e[0] + f[0]) / 2, e[1] - 0.02 * cv.h), f, 12)[1:]])
    outline = np.vstack([top, bottom[::-1]])
    colour = _jitter_colour(rng, _KN95, 8)
    cv.fill(outline, colour)
    # two planes meeting at the vertical crease, lit differently
    xx = np.arange(cv.w, dtype=np.float32)[None, :]
    light = rng.uniform(0.05, 0.15) * (1 if rng.random() < 0.5 else -1)
    cv.relief(np.broadcast_to(np.where(xx < b[0], 1 + light, 1 - light), (cv.h, cv.w)))
    thick = max(1.0, cv.w / 160)
    cv.line(np.vstack([b, e]), None, 1.5 * thick, shade=0.75)
    # welded border: a dotted line inside the edge
    inner = (outline - outline.mean(0)) * 0.93 + outline.mean(0)
    for p in inner[::2]:
        cv2.circle(cv.bgr, (int(p[0]), int(p[1])), max(1, int(thick * 0.8)), tuple(float(x) * 0.8 for x in colour), -1)
    cv.line(top[5:-5] + (0, 3 * thick), None, 2 * thick, shade=0.88)  # nose strip
    cv.grain(2.0)
    return cv.art("kn95")


_DRAW = {"surgical": _surgical, "cloth": _cloth, "n95": _n95, "kn95": _kn95}


def draw_mask(style: str, rng: np.random.Generator, width: int = 256) -> MaskArt:
    """Draw one parametric mask of ``style`` (see :data:`PARAMETRIC_STYLES`) about ``width`` px wide."""
    if style not in _DRAW:
        raise ValueError(f"unknown mask style '{style}'; choose from {', '.join(PARAMETRIC_STYLES)}")
    return _DRAW[style](_Canvas(max(48, int(width)), rng))
