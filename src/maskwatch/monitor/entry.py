"""A directional entry line: which way a tracked face crosses it, with hysteresis."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..event_types import EventType
from .state import TrackState


class EntryLine:
    """The segment from ``p1`` to ``p2`` (frame pixels, like ``zone``; fractions of the frame are not
    supported). Looking from point 1 towards point 2, the right-hand side is *in* and the left-hand
    side is *out*: in image coordinates (y grows downwards) that is the side where
    ``cross(p2 - p1, point - p1) > 0``. For ``[[0, 300], [640, 300]]`` the in side is below the line,
    so walking down the picture (towards a camera above a door) is entering; swap the points to count
    the other way.

    The point that crosses is the **centre of the face box**: MaskWatch tracks faces, not bodies, so
    a box bottom-centre would be the chin, which moves with every detection of a mask or a lowered
    head, while the centre is the steadiest point the detector gives. Draw the line where faces pass
    in the picture (at head height), not on the floor.

    Hysteresis: a face within ``band`` x its box height of the line (at least ``min_band_px``) is *on*
    the line and changes nothing, so someone standing in the doorway does not flap between in and out.
    A crossing counts once the centre is clearly on the other side; the next one needs the person to
    go back clearly. Beyond the ends of the segment a face's side is forgotten, so walking round the
    end of the line is no crossing.
    """

    def __init__(self, p1: Sequence[float], p2: Sequence[float], band: float = 0.25, min_band_px: float = 4.0):
        self.p1 = np.asarray(p1, np.float64).reshape(2)
        self.p2 = np.asarray(p2, np.float64).reshape(2)
        self.direction = self.p2 - self.p1
        self.length = float(np.hypot(*self.direction))
        if self.length == 0:
            raise ValueError("the two points of the entry line must differ")
        self.band = band
        self.min_band_px = min_band_px

    @property
    def points(self) -> np.ndarray:
        """(2, 2): point 1 and point 2."""
        return np.stack([self.p1, self.p2])

    def side(self, box: Sequence[float]) -> int | None:
        """+1 clearly in, -1 clearly out, 0 on the line (inside the band), None beyond the segment's ends."""
        x1, y1, x2, y2 = (float(v) for v in box)
        rel = np.array([(x1 + x2) / 2, (y1 + y2) / 2]) - self.p1
        along = float(rel @ self.direction) / self.length**2
        if not 0.0 <= along <= 1.0:
            return None
        distance = float(self.direction[0] * rel[1] - self.direction[1] * rel[0]) / self.length
        if abs(distance) <= max(self.band * (y2 - y1), self.min_band_px):
            return 0
        return 1 if distance > 0 else -1

    def update(self, track: TrackState, box: Sequence[float]) -> EventType | None:
        """Move ``track.side`` (+1, -1 or 0 unknown) with this observation; ``entered`` for a crossing
        out -> in, ``left`` for in -> out, None otherwise."""
        now = self.side(box)
        before = track.side
        if now is None:
            track.side = 0
            return None
        if now == 0 or now == before:
            return None
        track.side = now
        if before == 0:
            return None  # first clear side: where the person was first seen, not a crossing
        return EventType.ENTERED if now > 0 else EventType.LEFT


def parse_entry(text: str, option: str = "--entry") -> tuple[tuple[float, float], tuple[float, float]]:
    """``"x1,y1,x2,y2"`` (frame pixels) -> ((x1, y1), (x2, y2)); raises ValueError with one line naming ``option``."""
    try:
        values = [float(v) for v in text.replace(";", ",").split(",") if v.strip()]
    except ValueError:
        values = []
    if len(values) != 4 or not all(np.isfinite(values)):
        raise ValueError(f"{option} {text!r}: expected X1,Y1,X2,Y2 (two points in frame pixels)")
    if values[:2] == values[2:]:
        raise ValueError(f"{option} {text!r}: the two points of the entry line must differ")
    return (values[0], values[1]), (values[2], values[3])
