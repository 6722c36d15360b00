"""One alert dispatcher for the whole venue, in the API process, fed from the event store.

Why from the store, and not from each camera process: a camera worker only stores its events (one commit
each). If every worker ran its own ``AlertDispatcher``, each would keep its own cooldown memory (a person
seen by two cameras, or a camera restarted, would alert again) and a channel that is down would hold
retries in a process that the supervisor may kill. Here one ``AlertDispatcher`` (one ``RuleEngine``: the
cooldowns are venue-wide) reads what the workers *committed*:

- ``StoreFeed`` tails the ``events`` table by id, from the highest id at start-up: an event is handed
  to the dispatcher once; after a restart of the service nothing already there is sent again (events
  stored while the service was down raise no alert: they are in the store and the dashboard).
- Every event a worker reports over the supervisor's queue wakes the feed at once (low delay); a poll
  every ``poll_s`` catches what a killed worker committed but could not report.
- Ids are taken in order, but on PostgreSQL two workers' transactions may commit out of id order: an id
  skipped over is looked for again for ``gap_s`` seconds before it is given up (a rolled-back insert).
- A channel that is down never blocks a camera: the workers never wait on the feed or the dispatcher,
  and the dispatcher's channels retry on threads of their own. ``close()`` is bounded: a last read of
  the store, then ``AlertDispatcher.close(timeout_s)``.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..alerts import AlertDispatcher, AlertsConfig
from ..store import EventStore
from ..store.events_db import EventRow

log = logging.getLogger(__name__)


def public_base_url(host: str, port: int, public_url: str | None) -> str:
    """The service's address as others reach it (snapshot links in alerts): ``public_url`` when set,
    else ``http://<host>:<port>`` (the machine's name when listening on every interface)."""
    if public_url:
        return public_url.rstrip("/")
    if host in ("0.0.0.0", "::", ""):
        host = socket.getfqdn() or "localhost"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}"


class StoreFeed:
    """Hands every event committed to ``store_url`` after start-up to ``dispatcher``, once."""

    def __init__(self, store_url: str, dispatcher: Any, poll_s: float = 1.0, gap_s: float = 10.0, batch: int = 500):
        self.store = EventStore(store_url)
        self.dispatcher = dispatcher
        self.poll_s, self.gap_s, self.batch = poll_s, gap_s, batch
        with Session(self.store.engine) as session:
            self.last_id = int(session.scalar(select(func.max(EventRow.id))) or 0)
        self.fed = 0
        self._missing: dict[int, float] = {}  # id skipped over -> when first missed
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="maskwatch-alert-feed", daemon=True)

    def start(self) -> "StoreFeed":
        self._thread.start()
        return self

    def wake(self, *_: Any) -> None:
        """A worker reported an event: read the store now (fits ``Supervisor.on_event``)."""
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.poll_s)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.read()
            except Exception as exc:  # noqa: BLE001 - the database may be away for a while: try again
                log.warning("alerts: cannot read new events: %s", exc)

    def read(self) -> int:
        """Hand the newly committed events to the dispatcher; returns how many."""
        with self._lock:
            now = time.monotonic()
            with Session(self.store.engine) as session:
                rows = list(session.scalars(select(EventRow).where(EventRow.id > self.last_id)
                                            .order_by(EventRow.id).limit(self.batch)))
                late = []
                if self._missing:
                    late = list(session.scalars(select(EventRow).where(EventRow.id.in_(list(self._missing)))
                                                .order_by(EventRow.id)))
                events = [row.to_event() for row in late + rows]
            for ev in events[:len(late)]:
                self._missing.pop(ev.id, None)
            for ev in events[len(late):]:
                for gap in range(self.last_id + 1, ev.id):
                    self._missing.setdefault(gap, now)
                self.last_id = ev.id
            self._missing = {i: t for i, t in self._missing.items() if now - t < self.gap_s}
            for ev in events:
                self.dispatcher(ev)
            self.fed += len(events)
            if len(rows) == self.batch:
                self._wake.set()  # more are waiting
            return len(events)

    def close(self, timeout_s: float) -> None:
        """Stop tailing after a last read (the cameras are stopped first: their events are committed)."""
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)
        try:
            while self.read() == self.batch:
                pass
        except Exception as exc:  # noqa: BLE001
            log.warning("alerts: last read of the store failed: %s", exc)
        self.store.engine.dispose()


class VenueAlerts:
    """The venue's ``AlertDispatcher`` and the feed that drives it (what ``serve --config`` runs)."""

    def __init__(self, config: AlertsConfig, store_url: str, public_url: str, senders: list[Any] | None = None):
        self.config = config
        self._store = EventStore(store_url)  # the dispatcher's alert tables live in the event database
        self.dispatcher = AlertDispatcher(config, self._store, senders=senders, public_url=public_url)
        self.feed = StoreFeed(store_url, self.dispatcher)

    def start(self, supervisor: Any = None) -> "VenueAlerts":
        if supervisor is not None:
            supervisor.on_event.append(self.feed.wake)
        self.feed.start()
        return self

    def close(self) -> None:
        """Bounded: at most ``alerts.close_timeout_s`` (plus one read of the store), whatever the channels do."""
        budget = self.config.close_timeout_s
        started = time.monotonic()
        self.feed.close(min(2.0, budget))
        self.dispatcher.close(max(0.1, budget - (time.monotonic() - started)))
        self._store.engine.dispose()
