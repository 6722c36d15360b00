"""``/v1/events``: the recorded events, filtered and paged; ``/v1/events/{id}/snapshot``: an event's image."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, Depends, Path as PathParam, Query
from fastapi.responses import FileResponse

from ...errors import MaskWatchError
from ...store.events_db import INT64_MAX
from ..errors import ApiError, db_call
from ..state import GUARDED, ServerState, server_state

SNAPSHOT_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".webp": "image/webp"}

router = APIRouter(dependencies=GUARDED)


@router.get("/v1/events")
def events(
    types: list[str] | None = Query(None, alias="type", description="Event types (repeatable)."),
    since: str | None = Query(None, description="ISO time (naive = UTC) or a duration back from now: 30m, 2h, 7d."),
    track_id: int | None = Query(None, ge=-INT64_MAX - 1, le=INT64_MAX),
    source: str | None = None,
    camera: str | None = Query(None, description="Camera name (events without one match on their source)."),
    after_id: int | None = Query(None, ge=-INT64_MAX - 1, le=INT64_MAX, description="Only events stored after this id (for polling)."),
    limit: int = Query(100, ge=1, le=1000),
    order: Literal["newest", "oldest"] = "newest",
    state: ServerState = Depends(server_state),
) -> dict[str, Any]:
    from ...event_types import EVENT_TYPES
    from ...store.since import parse_since

    for name in types or []:
        if name not in EVENT_TYPES:
            raise ApiError(400, "unknown event type", f"{name!r}: expected one of {', '.join(EVENT_TYPES)}")
    try:
        when = parse_since(since) if since else None
    except MaskWatchError as exc:
        raise ApiError(400, "bad since", str(exc).replace("--since", "since")) from None
    found = db_call(state.store.query, types=types, since=when, track_id=track_id, source=source, camera=camera,
                    after_id=after_id, limit=limit, newest_first=order == "newest")
    return {"count": len(found), "events": [event_dict_json(ev.to_dict()) for ev in found]}


@router.get("/v1/events/{event_id}/snapshot")
def snapshot(event_id: int = PathParam(..., ge=0, le=INT64_MAX), state: ServerState = Depends(server_state)) -> FileResponse:
    ev = db_call(state.store.get, event_id)
    if ev is None:
        raise ApiError(404, "no such event", f"event {event_id} does not exist")
    if not ev.snapshot:
        raise ApiError(404, "no snapshot", f"event {event_id} has no snapshot")
    try:
        path = Path(ev.snapshot).expanduser().resolve()
    except (ValueError, OSError, RuntimeError):  # NUL byte, loop, unreadable
        raise ApiError(404, "snapshot file missing", f"event {event_id}: the stored snapshot path is not usable") from None
    root = state.snapshot_root
    if not path.is_relative_to(root):
        raise ApiError(403, "snapshot outside the snapshot folder",
                       f"event {event_id}: refusing to serve a file outside {root}")
    if path.suffix.lower() not in SNAPSHOT_TYPES:
        raise ApiError(403, "not an image snapshot", f"event {event_id}: only {', '.join(SNAPSHOT_TYPES)} files are served")
    if not path.is_file():
        raise ApiError(404, "snapshot file missing", f"event {event_id}: the snapshot was deleted (retention) or moved")
    return FileResponse(path, media_type=SNAPSHOT_TYPES[path.suffix.lower()])


def event_dict_json(out: dict[str, Any]) -> dict[str, Any]:
    """An event as ``/v1/events`` lists it, from ``Event.to_dict()``."""
    out["snapshot_url"] = f"/v1/events/{out['id']}/snapshot" if out.get("snapshot") else None
    return out
