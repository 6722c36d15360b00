"""Finished batch inputs, kept beside the events (same database), so a re-run skips them.

An input's events and its 'done' row are written in one transaction; the row's primary key is the
input's key (path + size + mtime), so a second commit of the same input fails and writes nothing.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import DateTime, Integer, String, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from .events_db import Event, EventStore, _Base, _row_from_event


class JobRow(_Base):
    __tablename__ = "batch_jobs"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    path: Mapped[str] = mapped_column(String(1024))
    kind: Mapped[str] = mapped_column(String(16))
    events: Mapped[int] = mapped_column(Integer, default=0)
    finished: Mapped[datetime] = mapped_column(DateTime())


class JobStore(EventStore):
    """The event store plus the table of finished inputs."""

    def __init__(self, url: str | None = None):
        super().__init__(url)
        _Base.metadata.create_all(self.engine)

    def done_keys(self) -> set[str]:
        with Session(self.engine) as session:
            return set(session.scalars(select(JobRow.key)))

    def finish(self, key: str, path: str, kind: str, events: list[Event]) -> bool:
        """Write ``events`` and mark ``key`` done, atomically. False when it was done already."""
        try:
            with Session(self.engine) as session, session.begin():
                session.add(JobRow(key=key, path=path, kind=kind, events=len(events),
                                   finished=datetime.now(timezone.utc).replace(tzinfo=None)))
                session.flush()  # the key first: a duplicate fails before any event is added
                session.add_all([_row_from_event(e) for e in events])
        except IntegrityError:
            return False
        return True
