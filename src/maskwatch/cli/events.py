"""``maskwatch events``: list, filter and export recorded events."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Optional

import typer

from ..errors import MaskWatchError
from ..store.since import parse_since

FORMATS = ("table", "csv", "json")
CSV_FIELDS = ["id", "type", "time", "video_time", "frame", "track_id", "source", "camera", "state_before",
              "state_after", "confidence", "snapshot"]


def register(app: typer.Typer) -> None:
    app.command("events")(events)


def events(
    db: Optional[str] = typer.Option(None, "--db", help="Event store: SQLAlchemy URL or SQLite file (default as for watch)."),
    spool: Optional[Path] = typer.Option(None, "--spool", help="The spool `watch --spool` used: its events are written "
                                         "to the store first (default: $MASKWATCH_SPOOL or spool/ in the user data directory)."),
    type_: Optional[list[str]] = typer.Option(None, "--type", "-t", help="Only these event types (repeatable)."),
    since: Optional[str] = typer.Option(None, "--since", help="Only events at/after an ISO time or within a duration (2h, 7d)."),
    track: Optional[int] = typer.Option(None, "--track", help="Only this track id."),
    source: Optional[str] = typer.Option(None, "--source", help="Only events of this source."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="At most this many events (oldest first)."),
    format_: str = typer.Option("table", "--format", "-f", help="table | csv | json"),
) -> None:
    """List recorded events, oldest first."""
    from ..event_types import EVENT_TYPES
    from ..store import EventStore, SpoolConfig

    if format_ not in FORMATS:
        raise MaskWatchError(f"--format must be one of {', '.join(FORMATS)}, not {format_!r}")
    for name in type_ or []:
        if name not in EVENT_TYPES:
            raise MaskWatchError(f"--type {name!r}: unknown event type (one of {', '.join(EVENT_TYPES)})")
    store = EventStore(db, spool=SpoolConfig(path=spool))
    found = store.query(types=type_, since=parse_since(since) if since else None, track_id=track,
                        source=source, limit=limit)
    store.close()
    rows = [ev.to_dict() for ev in found]
    if format_ == "json":
        typer.echo(json.dumps(rows, indent=2))
    elif format_ == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"{len(rows)} events")
        for name in ("id", "time", "type", "track", "source", "video_time", "before", "after", "conf"):
            table.add_column(name)
        for r in rows:
            track = "" if r["track_id"] is None else str(r["track_id"])  # track 0 is a track
            table.add_row(str(r["id"]), r["time"][:19], r["type"], track, r["source"],
                          "" if r["video_time"] is None else f"{r['video_time']:.2f}", r["state_before"] or "",
                          r["state_after"] or "", "" if r["confidence"] is None else f"{r['confidence']:.2f}")
        Console(width=160).print(table)
