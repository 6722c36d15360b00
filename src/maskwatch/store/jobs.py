"""Finished batch inputs, kept beside the events (same database), so a re-run skips them.

An input's events and its 'done' row are written in one transaction; the row's primary key is the
input's key (path + size + mtime), so a second commit of the same input fails and writes nothing.
Two more tables (added beside ``batch_jobs``, which is left as it was): ``batch_failed_images``, the
images of a finished image unit that failed (a re-run retries those only), and ``batch_segments``,
the boxes a video segment ends on (the next segment links its track ids to them).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import JSON, DateTime, Integer, String, delete, select
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


class _Taken(Exception):
    pass


class FailedImageRow(_Base):
    __tablename__ = "batch_failed_images"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)  # the unit's key in batch_jobs
    image: Mapped[str] = mapped_column(String(1024), primary_key=True)


class SegmentRow(_Base):
    __tablename__ = "batch_segments"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)  # the segment's key in batch_jobs
    tail: Mapped[dict[str, Any]] = mapped_column(JSON)


class JobStore(EventStore):
    """The event store plus the table of finished inputs."""

    def __init__(self, url: str | None = None):
        super().__init__(url)
        _Base.metadata.create_all(self.engine)

    def done_keys(self) -> set[str]:
        with Session(self.engine) as session:
            return set(session.scalars(select(JobRow.key)))

    def finish(self, key: str, path: str, kind: str, events: list[Event], tail: dict[str, Any] | None = None,
               failed_images: list[str] = ()) -> bool:
        """Write ``events`` and mark ``key`` done, atomically, with a segment's ``tail`` and the images of
        an image unit that failed. False when it was done already."""
        try:
            with Session(self.engine) as session, session.begin():
                session.add(JobRow(key=key, path=path, kind=kind, events=len(events),
                                   finished=datetime.now(timezone.utc).replace(tzinfo=None)))
                session.flush()  # the key first: a duplicate fails before any event is added
                if tail is not None:
                    session.add(SegmentRow(key=key, tail=tail))
                session.add_all([FailedImageRow(key=key, image=p) for p in dict.fromkeys(failed_images)])
                session.add_all([_row_from_event(e) for e in events])
        except IntegrityError:
            return False
        return True

    def failed_images(self) -> dict[str, list[str]]:
        """unit key -> the images of that finished unit that failed (and were not redone since), by name."""
        found: dict[str, list[str]] = {}
        with Session(self.engine) as session:
            for key, image in session.execute(select(FailedImageRow.key, FailedImageRow.image)
                                              .order_by(FailedImageRow.key, FailedImageRow.image)):
                found.setdefault(key, []).append(image)
        return found

    def retry_images(self, key: str, images: list[str], still_failed: list[str]) -> bool:
        """Record a retry of unit ``key``'s failed ``images``: those in ``still_failed`` stay to retry.
        False (nothing changed) when another run recorded this retry first."""
        try:
            with Session(self.engine) as session, session.begin():
                gone = session.execute(delete(FailedImageRow).where(FailedImageRow.key == key,
                                                                    FailedImageRow.image.in_(images)))
                if gone.rowcount != len(set(images)):
                    raise _Taken  # rolls the delete back
                session.add_all([FailedImageRow(key=key, image=p) for p in dict.fromkeys(still_failed)])
        except _Taken:
            return False
        return True

    def segment_tail(self, key: str) -> dict[str, Any] | None:
        """The stored tail of video segment ``key``; None when it is not done, {} when done without one."""
        with Session(self.engine) as session:
            row = session.get(SegmentRow, key)
            if row is not None:
                return row.tail
            return {} if session.get(JobRow, key) is not None else None
