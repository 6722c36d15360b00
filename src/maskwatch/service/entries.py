"""Entry counting figures for ``/v1/stats``: occupancy now and entries per hour per camera."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any, Iterable


def entry_stats(events: Iterable[Any], first_hour: datetime, hours: int) -> dict[str, Any]:
    """``occupancy``: {camera: entered - left (never below 0)} over the window; ``entries_per_hour``:
    [{hour, camera, entered, left}] for every hour and camera with a crossing, oldest first."""
    per: Counter = Counter()
    occupancy: Counter = Counter()
    for ev in events:
        camera = ev.camera or ev.source
        hour = int((ev.time - first_hour).total_seconds() // 3600)
        if ev.type not in ("entered", "left") or not 0 <= hour < hours:
            continue
        per[(hour, camera, ev.type)] += 1
        occupancy[camera] = max(0, occupancy[camera] + (1 if ev.type == "entered" else -1))
    keys = sorted({(h, c) for h, c, _ in per})
    return {"occupancy": dict(occupancy),
            "entries_per_hour": [{"hour": (first_hour + timedelta(hours=h)).isoformat(), "camera": c,
                                  "entered": per[(h, c, "entered")], "left": per[(h, c, "left")]} for h, c in keys]}
