"""``/v1/stats``: events per type, camera and hour, occupancy and entries, counted by the database."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta, timezone
from typing import Any

from fastapi import APIRouter, Depends, Query

from ..errors import db_call
from ..state import GUARDED, ServerState, server_state

router = APIRouter(dependencies=GUARDED)


@router.get("/v1/stats")
def stats(hours: int = Query(24, ge=1, le=24 * 31, description="The current clock hour and the N - 1 before it."),
          state: ServerState = Depends(server_state)) -> dict[str, Any]:
    return event_stats(state.store, hours, state.stats_cameras)


def event_stats(store: Any, hours: int, top_cameras: int = 20) -> dict[str, Any]:
    """Counts per type, per camera (its source when it has no name; the ``top_cameras`` with the most
    events, the rest summed in ``by_camera_other``) and per clock hour, oldest first, over the current
    hour and the ``hours - 1`` before it; occupancy and entries per hour (entry lines).
    Everything is counted by the database (GROUP BY); no event is loaded."""
    from ...event_types import EVENT_TYPES

    first_hour = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0) - timedelta(hours=hours - 1)
    by_type = {name: 0 for name in EVENT_TYPES}
    per_hour: Counter[int] = Counter()
    total = 0
    for type_, hour, n in db_call(store.type_hour_counts, first_hour):  # aggregated in SQL
        by_type[type_] = by_type.get(type_, 0) + n
        per_hour[_hour_index(hour, first_hour)] += n
        total += n
    by_camera, other, cameras = db_call(store.camera_counts, first_hour, top_cameras)
    return {
        "window_hours": hours,
        "since": first_hour.isoformat(),
        "total": total,
        "by_type": by_type,
        "by_camera": dict(by_camera),
        "by_camera_other": other,
        "cameras": cameras,
        "by_hour": [{"hour": (first_hour + timedelta(hours=i)).isoformat(), "count": per_hour.get(i, 0)}
                    for i in range(hours)],
        **_entry_stats(db_call(store.entry_counts, first_hour), first_hour, hours),
    }


def _hour_index(hour: datetime, first_hour: datetime) -> int:
    return int((hour.replace(tzinfo=timezone.utc) - first_hour).total_seconds() // 3600)


def _entry_stats(rows: list[tuple[str, datetime, int, int]], first_hour: datetime, hours: int) -> dict[str, Any]:
    """From ``EventStore.entry_counts`` rows: ``occupancy`` (people inside now, all cameras), ``occupancy_by_camera``
    and ``entries_per_hour`` (every hour of the window: entered, left, occupancy at its end, and per camera with
    crossings that hour). Occupancy is entered - left carried hour by hour per camera and never below 0 (someone
    who entered before the window and leaves in it does not make it negative)."""
    per: dict[int, dict[str, tuple[int, int]]] = {}
    for camera, hour, entered, left in rows:
        i = _hour_index(hour, first_hour)
        if 0 <= i < hours:
            e, lf = per.setdefault(i, {}).get(camera, (0, 0))
            per[i][camera] = (e + entered, lf + left)
    occupancy: dict[str, int] = {}
    out = []
    for i in range(hours):
        cams = {}
        for camera, (entered, left) in sorted(per.get(i, {}).items()):
            occupancy[camera] = max(0, occupancy.get(camera, 0) + entered - left)
            cams[camera] = {"entered": entered, "left": left, "occupancy": occupancy[camera]}
        out.append({"hour": (first_hour + timedelta(hours=i)).isoformat(),
                    "entered": sum(c["entered"] for c in cams.values()), "left": sum(c["left"] for c in cams.values()),
                    "occupancy": sum(occupancy.values()), "cameras": cams})
    return {"occupancy": sum(occupancy.values()), "occupancy_by_camera": occupancy, "entries_per_hour": out}
