"""The event store: one row per event, committed the moment it happens.

SQLite by default (a file in the user's data directory, WAL journal, ``synchronous=FULL``) so that
``kill -9`` mid-stream loses nothing already raised; any SQLAlchemy URL works (e.g. PostgreSQL).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from sqlalchemy import JSON, DateTime, Float, Integer, String, and_, case, create_engine, event, func, or_, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from ..errors import MaskWatchError
from ..event_types import EventType
from ..redact import redact
from .spool import Spool, SpoolConfig, spool_path

#: the range of a 64-bit signed integer column (ids, track ids); values outside it are refused
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

@dataclass
class Event:
    """One thing worth telling someone about. ``time`` is wall-clock UTC; ``video_time`` is seconds
    from the start of a video file (None for live sources)."""

    type: str  # an EventType (a str); rows of older databases may hold other names
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
    #: a unique key given when the event is first stored: a spooled event is never written twice
    uid: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (``time`` as ISO 8601)."""
        return {
            "id": self.id,
            "type": str(self.type),
            "time": self.time.isoformat(),
            "video_time": None if self.video_time is None else round(self.video_time, 3),
            "frame": self.frame,
            "track_id": self.track_id,
            "source": self.source,
            "camera": self.camera,
            "state_before": _plain(self.state_before),
            "state_after": _plain(self.state_after),
            "confidence": None if self.confidence is None else round(self.confidence, 4),
            "snapshot": self.snapshot,
            "box": self.box,
            **({"extra": self.extra} if self.extra else {}),
        }

    def line(self) -> str:
        """One line for a console: ``mask_removed: track 3 mask->no_mask frame 412 video_time 16.48``;
        what the event does not know is left out (a new track's first state shows alone, a live
        source's event shows its UTC time instead of ``video_time``)."""
        parts = [f"{self.type}:"]
        if self.track_id is not None:
            parts.append(f"track {self.track_id}")
        if self.state_after is not None:
            parts.append(f"{self.state_before}->{self.state_after}" if self.state_before is not None
                         else str(self.state_after))
        if self.frame is not None:
            parts.append(f"frame {self.frame}")
        parts.append(f"video_time {self.video_time:.2f}" if self.video_time is not None
                     else f"at {self.time.astimezone(timezone.utc):%H:%M:%S} UTC")
        return " ".join(parts)


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
    uid: Mapped[str | None] = mapped_column(String(32), nullable=True, unique=True, index=True)

    def to_event(self) -> Event:
        when = self.time if self.time.tzinfo else self.time.replace(tzinfo=timezone.utc)
        return Event(type=self.type, time=when, source=self.source, camera=self.camera, track_id=self.track_id,
                     frame=self.frame, video_time=self.video_time, state_before=self.state_before,
                     state_after=self.state_after, confidence=self.confidence, snapshot=self.snapshot,
                     box=self.box, extra=self.extra or {}, id=self.id, uid=self.uid)


def default_db_url() -> str:
    """``$MASKWATCH_DB`` or a SQLite file in the user's data directory."""
    from ..settings import get_settings

    return get_settings().db_url


def as_db_url(value: str | os.PathLike | None) -> str:
    """Accept a SQLAlchemy URL or a plain file path (taken as SQLite); ``$MASKWATCH_DB`` may be either."""
    value = os.fspath(value) if value else default_db_url()
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
        _add_uid_column(engine)
    except (SQLAlchemyError, OSError, ImportError) as exc:
        first_line = (str(exc).splitlines() or [""])[0].replace("(sqlite3.OperationalError) ", "")
        raise MaskWatchError(f"cannot open event database {redact(url)}: {exc.__class__.__name__}: {redact(first_line)}") from None
    return engine


def _add_uid_column(engine: Engine) -> None:
    """Databases made before the spool lack ``events.uid``: add it (nullable, unique) once."""
    from sqlalchemy import inspect, text

    if "uid" in {c["name"] for c in inspect(engine).get_columns("events")}:
        return
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE events ADD COLUMN uid VARCHAR(32)"))
        conn.execute(text("CREATE UNIQUE INDEX ix_events_uid ON events (uid)"))


class EventStore:
    """Append events (one commit each) and query them.

    A failed write (disk full, database gone) does not stop the monitor. The event goes to the on-disk
    spool (:mod:`.spool`: JSON lines, bounded by ``spool.max_bytes`` / ``spool.max_events``); when the
    spool cannot take it either, it is kept in memory (at most ``max_pending``; beyond that the oldest
    are dropped and counted in ``lost``). While failing, the database is tried again with new events
    (after ``retry_interval_s``, doubling up to 30 s); the first write that works first writes back the
    spool and the memory queue, in event time order, skipping events (by ``uid``) it already holds.
    A spool left by an earlier run is written back when the store opens. ``close`` retries
    ``close_retries`` times and moves what is still in memory to the spool. The first failure and the
    recovery are reported on stderr; ``stored`` / ``spooled`` / ``lost`` count this store's events
    (what ``watch``'s summary and exit status report).
    """

    def __init__(self, url: str | None = None, max_pending: int = 10_000, close_retries: int = 3,
                 retry_wait_s: float = 0.5, spool: SpoolConfig | None = SpoolConfig(),
                 retry_interval_s: float = 1.0):
        self.url = as_db_url(url)
        self.engine = open_engine(self.url)
        self.pending: list[Event] = []
        self.failed_writes = 0
        self.lost = 0
        self.stored = 0
        self.spooled = 0
        self.replayed_earlier = 0
        self.max_pending = max_pending
        self.close_retries = close_retries
        self.retry_wait_s = retry_wait_s
        self.retry_interval_s = retry_interval_s
        self.last_error: str | None = None
        self._failing = False
        self._next_try = 0.0
        self._interval = retry_interval_s
        self._run = uuid.uuid4().hex[:12]
        self.spool = (Spool(spool_path(self.url, spool.path), spool.max_bytes, spool.max_events)
                      if spool is not None else None)
        if self.spool is not None and self.spool.count:
            self._write_back(at_start=True)

    @property
    def unsaved(self) -> int:
        """This store's events not in the database: spooled, waiting in memory, or lost."""
        return self.spooled + len(self.pending) + self.lost

    @property
    def shown_url(self) -> str:
        """The database URL without its password, for messages and summaries."""
        return redact(self.url) or ""

    def add(self, ev: Event) -> bool:
        """Store ``ev`` (after any earlier events whose write failed). True when it is committed."""
        ev.uid = ev.uid or uuid.uuid4().hex
        if self._failing and time.monotonic() < self._next_try:
            self._keep([ev])
            return False
        try:
            self._write([ev])
        except SQLAlchemyError as exc:
            self._failed(exc)
            self._keep([ev])
            return False
        return True

    def _write(self, new: list[Event]) -> int:
        """One commit: the spool, the memory queue, then ``new``. Returns how many earlier events it wrote back."""
        waiting = list(self.pending)
        done: list[int] = []

        def commit(records: list[dict[str, Any]]) -> None:
            spooled = [_event_from_record(r) for r in records]
            earlier = sorted(spooled + waiting, key=lambda e: _naive_utc(e.time))  # stable: spool order kept
            self._commit(earlier, new)
            self.replayed_earlier += sum(1 for r in records if r.get("run") != self._run)
            done.append(len(earlier))

        if self.spool is not None:
            self.spool.replay(commit)
        if not done:
            commit([])
        self.pending.clear()
        # the spool is empty now: this store's spooled events are in (written here, or by another
        # process sharing the database and its spool)
        self.stored += len(waiting) + len(new) + self.spooled
        self.spooled = 0
        if self._failing:
            self._failing = False
            self._interval = self.retry_interval_s
            _warn(f"event database {self.shown_url} is writable again: {done[0]} spooled or waiting events written back")
        return done[0]

    def _commit(self, earlier: list[Event], new: list[Event]) -> None:
        with Session(self.engine) as session:
            present: set[str] = set()
            uids = [e.uid for e in earlier if e.uid]
            for start in range(0, len(uids), 500):  # a crash after an earlier commit: those are in already
                present.update(session.scalars(select(EventRow.uid).where(EventRow.uid.in_(uids[start:start + 500]))))
            todo = [e for e in earlier if e.uid not in present] + new
            rows = [_row_from_event(e) for e in todo]
            session.add_all(rows)
            session.commit()
            for e, row in zip(todo, rows):
                e.id = row.id

    def _write_back(self, at_start: bool = False) -> None:
        try:
            count = self._write([])
        except SQLAlchemyError as exc:
            self._failed(exc)
            return
        if at_start and count:
            _warn(f"{count} spooled events from {self.spool.path if self.spool else 'memory'} written to {self.shown_url}")

    def _keep(self, events: list[Event]) -> None:
        """Events the database did not take: to the spool while it takes them, else memory (bounded)."""
        queue = self.pending + events
        self.pending = []
        for i, ev in enumerate(queue):
            if self.spool is None or not self.spool.append(_record_from_event(ev, self._run)):
                self.pending = queue[i:]
                break
            self.spooled += 1
        over = len(self.pending) - self.max_pending
        if over > 0:
            del self.pending[:over]
            self.lost += over

    def _failed(self, exc: Exception) -> None:
        self.failed_writes += 1
        self.last_error = redact(f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}")
        self._next_try = time.monotonic() + self._interval
        self._interval = min(max(self._interval * 2, 0.0), 30.0)
        if not self._failing:
            self._failing = True
            where = (f"spooling them to {self.spool.path} (at most {self.spool.max_events} events, "
                     f"{self.spool.max_bytes // 2**20} MiB), then up to {self.max_pending} in memory"
                     if self.spool is not None else f"keeping up to {self.max_pending} in memory")
            _warn(f"cannot store events in {self.shown_url} ({self.last_error}); {where}; retrying as events come")

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

    def _hour(self) -> Any:
        if self.engine.dialect.name == "sqlite":
            return func.strftime("%Y-%m-%dT%H:00:00", EventRow.time)
        return func.date_trunc("hour", EventRow.time)

    def hourly_counts(self, since: datetime) -> list[tuple[str, str, datetime, int]]:
        """(type, camera or source, clock hour as naive UTC, count) for events at/after ``since``,
        counted by the database (GROUP BY): memory and time do not grow with the number of events."""
        camera, hour = func.coalesce(EventRow.camera, EventRow.source), self._hour()
        stmt = (select(EventRow.type, camera, hour, func.count()).where(EventRow.time >= _naive_utc(since))
                .group_by(EventRow.type, camera, hour))
        with Session(self.engine) as session:
            rows = session.execute(stmt).all()
        return [(t, c, _as_hour(h), int(n)) for t, c, h, n in rows]

    def entry_counts(self, since: datetime) -> list[tuple[str, datetime, int, int]]:
        """(camera or source, clock hour as naive UTC, entered, left) per camera and hour with an entry-line
        crossing at/after ``since``, oldest hour first; summed by the database (GROUP BY)."""
        camera, hour = func.coalesce(EventRow.camera, EventRow.source), self._hour()
        entered = func.sum(case((EventRow.type == EventType.ENTERED.value, 1), else_=0))
        left = func.sum(case((EventRow.type == EventType.LEFT.value, 1), else_=0))
        stmt = (select(camera, hour, entered, left)
                .where(EventRow.time >= _naive_utc(since),
                       EventRow.type.in_([EventType.ENTERED.value, EventType.LEFT.value]))
                .group_by(camera, hour).order_by(hour, camera))
        with Session(self.engine) as session:
            rows = session.execute(stmt).all()
        return [(c, _as_hour(h), int(e or 0), int(lf or 0)) for c, h, e, lf in rows]

    def type_hour_counts(self, since: datetime) -> list[tuple[str, datetime, int]]:
        """(type, clock hour as naive UTC, count) for events at/after ``since``, counted by the database:
        at most (event types x hours) rows, however many cameras there are."""
        if self.engine.dialect.name == "sqlite":
            hour = func.strftime("%Y-%m-%dT%H:00:00", EventRow.time)
        else:
            hour = func.date_trunc("hour", EventRow.time)
        stmt = select(EventRow.type, hour, func.count()).where(EventRow.time >= _naive_utc(since)).group_by(EventRow.type, hour)
        with Session(self.engine) as session:
            rows = session.execute(stmt).all()
        return [(t, h if isinstance(h, datetime) else datetime.fromisoformat(h), int(n)) for t, h, n in rows]

    def camera_counts(self, since: datetime, top: int) -> tuple[list[tuple[str, int]], int, int]:
        """The ``top`` cameras (their source when unnamed) with the most events at/after ``since``, most
        first; the events of all the others; how many cameras there are. Counted by the database."""
        camera = func.coalesce(EventRow.camera, EventRow.source)
        per_camera = (select(camera.label("camera"), func.count().label("n")).where(EventRow.time >= _naive_utc(since))
                      .group_by(camera).subquery())
        # one pass: the window functions count the cameras and sum the events before LIMIT cuts the list
        stmt = (select(per_camera.c.camera, per_camera.c.n, func.count().over(), func.sum(per_camera.c.n).over())
                .order_by(per_camera.c.n.desc(), per_camera.c.camera).limit(top))
        with Session(self.engine) as session:
            rows = session.execute(stmt).all()
        if not rows:
            return [], 0, 0
        best = [(c, n) for c, n, _, _ in rows]
        cameras, total = rows[0][2], rows[0][3]
        listed = [(c, int(n)) for c, n in best]
        return listed, int(total) - sum(n for _, n in listed), int(cameras)

    def get(self, event_id: int) -> Event | None:
        if not INT64_MIN <= event_id <= INT64_MAX:
            return None
        with Session(self.engine) as session:
            row = session.get(EventRow, event_id)
            return None if row is None else row.to_event()

    def __iter__(self) -> Iterator[Event]:
        return iter(self.query())

    def close(self) -> None:
        """Write what is still waiting (retrying), spool what memory still holds, then release the database."""
        for attempt in range(self.close_retries + 1):
            if not (self._failing or self.pending):
                break
            try:
                self._write([])
                break
            except SQLAlchemyError as exc:
                self._failed(exc)
            if attempt < self.close_retries:
                time.sleep(self.retry_wait_s * (attempt + 1))
        if self.pending:
            self._keep([])
            self.lost += len(self.pending)  # neither the database nor the spool took them
            self.pending = []
        if self.spooled:
            _warn(f"{self.spooled} events spooled in {self.spool.path if self.spool else '?'}: they are written to "
                  f"{self.shown_url} when it is next opened ({self.last_error})")
        if self.lost:
            _warn(f"{self.lost} events lost: not stored in {self.shown_url} ({self.last_error})"
                  + (f"; spool: {self.spool.last_error}" if self.spool is not None and self.spool.last_error else ""))
        self.engine.dispose()


def _plain(value: str | None) -> str | None:
    """A state (a :class:`~maskwatch.faces.Label`) as the plain string every database driver takes."""
    return None if value is None else str(value)


def _row_from_event(ev: Event) -> EventRow:
    return EventRow(type=str(ev.type), time=_naive_utc(ev.time), video_time=ev.video_time, frame=ev.frame, track_id=ev.track_id,
                    source=redact(ev.source), camera=redact(ev.camera), state_before=_plain(ev.state_before),
                    state_after=_plain(ev.state_after), confidence=ev.confidence, snapshot=ev.snapshot, box=ev.box,
                    extra=json.loads(json.dumps(ev.extra)) if ev.extra else None, uid=ev.uid)


def _record_from_event(ev: Event, run: str) -> dict[str, Any]:
    record = {f.name: getattr(ev, f.name) for f in fields(Event) if f.name != "id"}
    record["time"] = ev.time.isoformat()
    record["run"] = run
    return json.loads(json.dumps(record, default=str))


def _event_from_record(record: dict[str, Any]) -> Event:
    names = {f.name for f in fields(Event)} - {"id"}
    values = {k: v for k, v in record.items() if k in names}
    values["time"] = datetime.fromisoformat(values["time"])
    return Event(**values)


def _as_hour(value: Any) -> datetime:
    """A GROUP BY hour as the database returns it (SQLite: ISO text; PostgreSQL: a datetime), naive UTC."""
    when = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return _naive_utc(when)


def _naive_utc(when: datetime) -> datetime:
    """Stored times are naive UTC (SQLite keeps no zone); naive inputs are taken as UTC already."""
    return when.astimezone(timezone.utc).replace(tzinfo=None) if when.tzinfo else when


def _check_int64(name: str, value: int | None) -> None:
    if value is not None and not INT64_MIN <= value <= INT64_MAX:
        raise MaskWatchError(f"{name} {value}: out of range (a 64-bit integer, at most {INT64_MAX})")


def _warn(message: str) -> None:
    import sys

    print(f"warning: {message}", file=sys.stderr, flush=True)
