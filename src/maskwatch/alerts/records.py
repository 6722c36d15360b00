"""Alert rows and per-channel delivery rows, in the same database as the events."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import DateTime, Integer, String, Text, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

ALERT_STATES = ("open", "acknowledged", "resolved")


class _Base(DeclarativeBase):
    pass


class AlertRow(_Base):
    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    type: Mapped[str] = mapped_column(String(32))
    camera: Mapped[str | None] = mapped_column(String(256), nullable=True, index=True)
    track_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created: Mapped[datetime] = mapped_column(DateTime(), index=True)  # naive UTC
    state: Mapped[str] = mapped_column(String(16), index=True, default="open")
    acknowledged_by: Mapped[str | None] = mapped_column(String(256), nullable=True)
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime(), nullable=True)
    resolved_by: Mapped[str | None] = mapped_column(String(256), nullable=True)
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(), nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)


class DeliveryRow(_Base):
    __tablename__ = "alert_deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    alert_id: Mapped[int] = mapped_column(Integer, index=True)
    channel: Mapped[str] = mapped_column(String(16), index=True)
    state: Mapped[str] = mapped_column(String(16), default="pending")  # pending / delivered / failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(), nullable=True)


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def _iso(when: datetime | None) -> str | None:
    return None if when is None else when.replace(tzinfo=timezone.utc).isoformat()


class AlertStore:
    """Alerts and their deliveries; ``engine`` is the event store's (``EventStore.engine``)."""

    def __init__(self, engine: Engine):
        self.engine = engine
        _Base.metadata.create_all(engine)

    def create(self, event: Any, channels: list[str]) -> int:
        with Session(self.engine) as session:
            row = AlertRow(event_id=event.id, type=event.type, camera=event.camera or event.source,
                           track_id=event.track_id, created=_now(), state="open")
            session.add(row)
            session.flush()
            for name in channels:
                session.add(DeliveryRow(alert_id=row.id, channel=name, state="pending", attempts=0))
            session.commit()
            return row.id

    def delivery(self, alert_id: int, channel: str, *, attempts: int, error: str | None = None,
                 delivered: bool = False, failed: bool = False) -> None:
        with Session(self.engine) as session:
            row = session.scalars(select(DeliveryRow).where(DeliveryRow.alert_id == alert_id,
                                                            DeliveryRow.channel == channel)).first()
            if row is None:
                return
            row.attempts = attempts
            if error is not None:
                row.last_error = error[:2000]
            if delivered:
                row.state, row.delivered_at = "delivered", _now()
            elif failed:
                row.state = "failed"
            session.commit()

    def get(self, alert_id: int) -> dict[str, Any] | None:
        with Session(self.engine) as session:
            row = session.get(AlertRow, alert_id)
            return None if row is None else self._json(session, row)

    def list(self, state: str | None = None, camera: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        stmt = select(AlertRow).order_by(AlertRow.id.desc()).limit(limit)
        if state:
            stmt = stmt.where(AlertRow.state == state)
        if camera:
            stmt = stmt.where(AlertRow.camera == camera)
        with Session(self.engine) as session:
            return [self._json(session, row) for row in session.scalars(stmt)]

    def counts(self) -> dict[str, int]:
        from sqlalchemy import func

        with Session(self.engine) as session:
            found = dict(session.execute(select(AlertRow.state, func.count()).group_by(AlertRow.state)).all())
        return {state: int(found.get(state, 0)) for state in ALERT_STATES}

    def transition(self, alert_id: int, to: str, who: str, note: str | None = None) -> dict[str, Any] | None:
        """``to``: acknowledged or resolved. Resolving an open alert acknowledges it too. None: no such alert."""
        with Session(self.engine) as session:
            row = session.get(AlertRow, alert_id)
            if row is None:
                return None
            now = _now()
            if to == "acknowledged" and row.state == "open":
                row.state, row.acknowledged_by, row.acknowledged_at = "acknowledged", who, now
            elif to == "resolved" and row.state != "resolved":
                if row.acknowledged_at is None:
                    row.acknowledged_by, row.acknowledged_at = who, now
                row.state, row.resolved_by, row.resolved_at = "resolved", who, now
            if note:
                row.note = f"{row.note}\n{note}" if row.note else note
            session.commit()
            return self._json(session, row)

    def channel_summary(self) -> dict[str, dict[str, Any]]:
        """Per channel: deliveries by state, total attempts, the last error and the last delivery time."""
        out: dict[str, dict[str, Any]] = {}
        with Session(self.engine) as session:
            for row in session.scalars(select(DeliveryRow).order_by(DeliveryRow.id)):
                entry = out.setdefault(row.channel, {"pending": 0, "delivered": 0, "failed": 0, "attempts": 0,
                                                     "last_error": None, "last_delivered_at": None})
                entry[row.state] = entry.get(row.state, 0) + 1
                entry["attempts"] += row.attempts
                if row.last_error:
                    entry["last_error"] = row.last_error
                if row.delivered_at and (entry["last_delivered_at"] is None or _iso(row.delivered_at) > entry["last_delivered_at"]):
                    entry["last_delivered_at"] = _iso(row.delivered_at)
        return out

    @staticmethod
    def _json(session: Session, row: AlertRow) -> dict[str, Any]:
        deliveries = session.scalars(select(DeliveryRow).where(DeliveryRow.alert_id == row.id).order_by(DeliveryRow.id))
        return {
            "id": row.id, "event_id": row.event_id, "type": row.type, "camera": row.camera, "track_id": row.track_id,
            "created": _iso(row.created), "state": row.state,
            "acknowledged_by": row.acknowledged_by, "acknowledged_at": _iso(row.acknowledged_at),
            "resolved_by": row.resolved_by, "resolved_at": _iso(row.resolved_at), "note": row.note,
            "deliveries": {d.channel: {"state": d.state, "attempts": d.attempts, "last_error": d.last_error,
                                       "delivered_at": _iso(d.delivered_at)} for d in deliveries},
        }
