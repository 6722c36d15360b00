"""How events read on a console (``watch``'s event lines) and in ``maskwatch events``' table."""

from __future__ import annotations

from datetime import datetime, timezone

from typer.testing import CliRunner

from maskwatch.event_types import EventType
from maskwatch.faces import Label
from maskwatch.monitor.sinks import ConsoleSink
from maskwatch.store import Event, EventStore

WHEN = datetime(2026, 12, 3, 14, 5, 9, tzinfo=timezone.utc)


def _lines(*events: Event) -> list[str]:
    out: list[str] = []
    sink = ConsoleSink(out.append)
    for ev in events:
        sink.handle(ev)
    return out


def test_console_lines_leave_out_what_an_event_does_not_know():
    lines = _lines(
        Event(EventType.MASK_REMOVED, WHEN, "door.mp4", track_id=3, frame=412, video_time=16.4800001,
              state_before=Label.MASK, state_after=Label.NO_MASK),
        Event(EventType.ENTERED_UNMASKED, WHEN, "door.mp4", track_id=0, frame=7, video_time=0.28,
              state_after=Label.INCORRECT),
        Event(EventType.SOURCE_LOST, WHEN, "rtsp://cam/1"),
    )
    assert lines == [
        "mask_removed: track 3 mask->no_mask frame 412 video_time 16.48",  # as docs/watch.md shows it
        "entered_unmasked: track 0 incorrect frame 7 video_time 0.28",
        "source_lost: at 14:05:09 UTC",
    ]
    assert not [line for line in lines if "None" in line or "Label." in line]


def test_events_table_shows_track_zero(tmp_path):
    from maskwatch.cli import app

    db = str(tmp_path / "events.db")
    store = EventStore(db, spool=None)
    store.add(Event(EventType.ENTERED_UNMASKED, WHEN, "door.mp4", track_id=0, state_after=Label.NO_MASK))
    store.add(Event(EventType.SOURCE_LOST, WHEN, "door.mp4"))
    store.close()
    result = CliRunner().invoke(app, ["events", "--db", db])
    assert result.exit_code == 0, result.output
    rows = [line.split("│") for line in result.output.splitlines() if "door.mp4" in line]
    assert [cells[4].strip() for cells in rows] == ["0", ""]  # id, time, type, track: 0 is a track, None is blank
    assert "no_mask" in rows[0][8]
