"""``maskwatch events``: list, filter and export recorded events."""

from __future__ import annotations

import csv
import json
import re
import sys
from datetime import datetime, timedelta, timezone
from typing import Optional

import typer

from ..errors import MaskWatchError

FORMATS = ("table", "csv", "json")
CSV_FIELDS = ["id", "type", "time", "video_time", "frame", "track_id", "source", "camera", "state_before",
              "state_after", "confidence", "snapshot"]


def register(app: typer.Typer) -> None:
    app.command("events")(events)


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """ISO 8601 time/date (naive = UTC) or a duration back from now: ``30s``, ``15m``, ``2h``, ``7d``."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd])\s*", text)
    if match:
        unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[match.group(2)]
        try:
            return (now or datetime.now(timezone.utc)) - timedelta(**{unit: float(match.group(1))})
        except OverflowError:
            raise MaskWatchError(f"--since {text!r}: duration too long (it reaches before year 1)") from None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise MaskWatchError(f"--since {text!r}: expected an ISO time (2026-11-22T10:00) or a duration (30m, 2h, 7d)") from None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def events(
    db: Optional[str] = typer.Option(None, "--db", help="Event store: SQLAlchemy URL or SQLite file (default as for watch)."),
    type_: Optional[list[str]] = typer.Option(None, "--type", "-t", help="Only these event types (repeatable)."),
    since: Optional[str] = typer.Option(None, "--since", help="Only events at/after an ISO time or within a duration (2h, 7d)."),
    track: Optional[int] = typer.Option(None, "--track", help="Only this track id."),
    source: Optional[str] = typer.Option(None, "--source", help="Only events of this source."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="At most this many events (oldest first)."),
    format_: str = typer.Option("table", "--format", "-f", help="table | csv | json"),
) -> None:
    """List recorded events, oldest first."""
    from ..event_types import EVENT_TYPES
    from ..store import EventStore

    try:
        if format_ not in FORMATS:
            raise MaskWatchError(f"--format must be one of {', '.join(FORMATS)}, not {format_!r}")
        for name in type_ or []:
            if name not in EVENT_TYPES:
                raise MaskWatchError(f"--type {name!r}: unknown event type (one of {', '.join(EVENT_TYPES)})")
        store = EventStore(db)
        found = store.query(types=type_, since=parse_since(since) if since else None, track_id=track,
                            source=source, limit=limit)
        store.close()
    except MaskWatchError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
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
            table.add_row(str(r["id"]), r["time"][:19], r["type"], str(r["track_id"] or ""), r["source"],
                          "" if r["video_time"] is None else f"{r['video_time']:.2f}", r["state_before"] or "",
                          r["state_after"] or "", "" if r["confidence"] is None else f"{r['confidence']:.2f}")
        Console(width=160).print(table)
