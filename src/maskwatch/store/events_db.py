"""The event store: one row per event, committed the moment it happens.

SQLite by default (a file in the user's data directory, WAL journal, ``synchronous=FULL``) so that
``kill -9`` mid-stream loses nothing already raised; any SQLAlchemy URL works (e.g. PostgreSQL).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from sqlalchemy import JSON, DateTime, Float, Integer, String, and_, create_engine, event, func, or_, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from ..errors import MaskWatchError
from ..redact import redact

#: the range of a 64-bit signed integer column (ids, track ids); values outside it are refused
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

#: every event type the monitor raises
EVENT_TYPES = (
    "entered_unmasked",
    "mask_removed",
    "mask_incorrect",
    "mask_restored",
    "source_lost",
    "source_restored",
    "entered",
    "left",
)


@dataclass
class Event:
    """One thing worth telling someone about. ``time`` is wall-clock UTC; ``video_time`` is seconds
    from the start of a video file (None for live sources)."""

    type: str
    time: datetime
    source: str
    camera: str | None = None
    track_id: int | None = None
    frame: int | None = None
    video_time: float | None = None
    state_before: str | None = None
    state_after: str | None = None
    confidence: float | None = None
    snapshot: str | None = None
    box: list[float] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (``time`` as ISO 8601)."""
        return {
            "id": self.id,
            "type": self.type,
            "time": self.time.isoformat(),
            "video_time": None if self.video_time is None else round(self.video_time, 3),
            "frame": self.frame,
            "track_id": self.track_id,
            "source": self.source,
            "camera": self.camera,
            "state_before": self.state_before,
            "state_after": self.state_after,
            "confidence": None if self.confidence is None else round(self.confidence, 4),
            "snapshot": self.snapshot,
            "box": self.box,
            **({"extra": self.extra} if self.extra else {}),
        }


class _Base(DeclarativeBase):
    pass


class EventRow(_Base):
    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    type: Mapped[str] = mapped_column(String(32), index=True)
    time: Mapped[datetime] = mapped_column(DateTime(), index=True)  # naive UTC
    video_time: Mapped[float | None] = mapped_column(Float, nullable=True)
    frame: Mapped[int | None] = mapped_column(Integer, nullable=True)
    track_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    source: Mapped[str] = mapped_column(String(1024))
    camera: Mapped[str | None] = mapped_column(String(256), nullable=True)
    state_before: Mapped[str | None] = mapped_column(String(16), nullable=True)
    state_after: Mapped[str | None] = mapped_column(String(16), nullable=True)
    confidence: Mapped[float | None] = mapped_column(Float, nullable=True)
    snapshot: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    box: Mapped[list | None] = mapped_column(JSON, nullable=True)
    extra: Mapped[dict | None] = mapped_column(JSON, nullable=True)

    def to_event(self) -> Event:
        when = self.time if self.time.tzinfo else self.time.replace(tzinfo=timezone.utc)
        return Event(type=self.type, time=when, source=self.source, camera=self.camera, track_id=self.track_id,
                     frame=self.frame, video_time=self.video_time, state_before=self.state_before,
                     state_after=self.state_after, confidence=self.confidence, snapshot=self.snapshot,
                     box=self.box, extra=self.extra or {}, id=self.id)


def default_db_url() -> str:
    """``$MASKWATCH_DB`` or a SQLite file in the user's data directory."""
    from ..settings import get_settings

    return get_settings().db_url


def as_db_url(value: str | None) -> str:
    """Accept a SQLAlchemy URL or a plain file path (taken as SQLite); ``$MASKWATCH_DB`` may be either."""
    value = value or default_db_url()
    return value if "://" in value else f"sqlite:///{Path(value).expanduser().resolve()}"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def open_engine(url: str | None) -> Engine:
    url = as_db_url(url)
    try:
        if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url)
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _sqlite_pragmas)
        _Base.metadata.create_all(engine)
    except (SQLAlchemyError, OSError, ImportError) as exc:
        raise MaskWatchError(f"cannot open event database {redact(url)}: {exc.__class__.__name__}: {redact(str(exc))}") from None
    return engine


class EventStore:
    """Append events (one commit each) and query them.

    A failed write (disk full, database gone) does not stop the monitor: the event is kept in memory
    (at most ``max_pending``; beyond that the oldest are dropped and counted in ``lost``) and written
    with the next successful commit; ``close`` retries the rest ``close_retries`` times. Each failure
    streak is reported on stderr at once; ``failed_writes`` counts the failures and ``unsaved``
    says how many events are not in the database (what ``watch``'s exit status 3 reports).
    """

    def __init__(self, url: str | None = None, max_pending: int = 10_000, close_retries: int = 3,
                 retry_wait_s: float = 0.5):
        self.url = as_db_url(url)
        self.engine = open_engine(self.url)
        self.pending: list[Event] = []
        self.failed_writes = 0
        self.lost = 0
        self.max_pending = max_pending
        self.close_retries = close_retries
        self.retry_wait_s = retry_wait_s
        self.last_error: str | None = None
        self._failing = False

    @property
    def unsaved(self) -> int:
        """Events raised but not in the database: waiting in memory plus dropped over the bound."""
        return len(self.pending) + self.lost

    @property
    def shown_url(self) -> str:
        """The database URL without its password, for messages and summaries."""
        return redact(self.url) or ""

    def add(self, ev: Event) -> bool:
        """Store ``ev`` (and any earlier events whose write failed). True when all are committed."""
        self.pending.append(ev)
        try:
            with Session(self.engine) as session:
                rows = [_row_from_event(e) for e in self.pending]
                session.add_all(rows)
                session.commit()
                for e, row in zip(self.pending, rows):
                    e.id = row.id
        except SQLAlchemyError as exc:
            self._failed(exc)
            return False
        if self._failing:
            self._failing = False
            _warn(f"event database {self.shown_url} is writable again: {len(self.pending)} waiting events stored")
        self.pending.clear()
        return True

    def _failed(self, exc: Exception) -> None:
        self.failed_writes += 1
        self.last_error = redact(f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}")
        over = len(self.pending) - self.max_pending
        if over > 0:
            del self.pending[:over]
            self.lost += over
        if not self._failing:
            self._failing = True
            _warn(f"cannot store events in {self.shown_url} ({self.last_error}); keeping up to "
                  f"{self.max_pending} in memory and retrying with every new event")

    def query(self, types: list[str] | None = None, since: datetime | None = None,
              track_id: int | None = None, source: str | None = None, limit: int | None = None,
              camera: str | None = None, after_id: int | None = None, newest_first: bool = False) -> list[Event]:
        """Events matching every filter given, oldest first (``newest_first``: the latest ``limit``).

        ``camera`` matches the camera name; events recorded without one match on their source.
        ``after_id`` keeps only events stored after that one (for polling).
        """
        for name, value in (("track_id", track_id), ("after_id", after_id)):
            _check_int64(name, value)
        order = EventRow.id.desc() if newest_first else EventRow.id
        stmt = select(EventRow).order_by(order)
        if types:
            stmt = stmt.where(EventRow.type.in_(types))
        if since is not None:
            stmt = stmt.where(EventRow.time >= _naive_utc(since))
        if track_id is not None:
            stmt = stmt.where(EventRow.track_id == track_id)
        if source is not None:
            stmt = stmt.where(EventRow.source == source)
        if camera is not None:
            stmt = stmt.where(or_(EventRow.camera == camera, and_(EventRow.camera.is_(None), EventRow.source == camera)))
        if after_id is not None:
            stmt = stmt.where(EventRow.id > after_id)
        if limit:
            stmt = stmt.limit(limit)
        with Session(self.engine) as session:
            return [row.to_event() for row in session.scalars(stmt)]

    def hourly_counts(self, since: datetime) -> list[tuple[str, str, datetime, int]]:
        """(type, camera or source, clock hour as naive UTC, count) for events at/after ``since``,
        counted by the database (GROUP BY): memory and time do not grow with the number of events."""
        camera = func.coalesce(EventRow.camera, EventRow.source)
        if self.engine.dialect.name == "sqlite":
            hour = func.strftime("%Y-%m-%dT%H:00:00", EventRow.time)
        else:
            hour = func.date_trunc("hour", EventRow.time)
        stmt = (select(EventRow.type, camera, hour, func.count()).where(EventRow.time >= _naive_utc(since))
                .group_by(EventRow.type, camera, hour))
        with Session(self.engine) as session:
            rows = session.execute(stmt).all()
        return [(t, c, h if isinstance(h, datetime) else datetime.fromisoformat(h), int(n)) for t, c, h, n in rows]

    def get(self, event_id: int) -> Event | None:
        if not INT64_MIN <= event_id <= INT64_MAX:
            return None
        with Session(self.engine) as session:
            row = session.get(EventRow, event_id)
            return None if row is None else row.to_event()

    def __iter__(self) -> Iterator[Event]:
        return iter(self.query())

    def close(self) -> None:
        """Write what is still waiting (retrying), then release the database."""
        import time

        for attempt in range(self.close_retries + 1):
            if not self.pending or self.add(self.pending.pop()):
                break
            if attempt < self.close_retries:
                time.sleep(self.retry_wait_s * (attempt + 1))
        if self.unsaved:
            _warn(f"{self.unsaved} events not stored in {self.shown_url} ({self.last_error})")
        self.engine.dispose()


def _row_from_event(ev: Event) -> EventRow:
    return EventRow(type=ev.type, time=_naive_utc(ev.time), video_time=ev.video_time, frame=ev.frame, track_id=ev.track_id,
                    source=redact(ev.source), camera=redact(ev.camera), state_before=ev.state_before, state_after=ev.state_after,
                    confidence=ev.confidence, snapshot=ev.snapshot, box=ev.box,
                    extra=json.loads(json.dumps(ev.extra)) if ev.extra else None)


def _naive_utc(when: datetime) -> datetime:
    """Stored times are naive UTC (SQLite keeps no zone); naive inputs are taken as UTC already."""
    return when.astimezone(timezone.utc).replace(tzinfo=None) if when.tzinfo else when


def _check_int64(name: str, value: int | None) -> None:
    if value is not None and not INT64_MIN <= value <= INT64_MAX:
        raise MaskWatchError(f"{name} {value}: out of range (a 64-bit integer, at most {INT64_MAX})")


def _warn(message: str) -> None:
    import sys

    print(f"warning: {message}", file=sys.stderr, flush=True)
