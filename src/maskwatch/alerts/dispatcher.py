"""``AlertDispatcher``: an event sink that never blocks the camera loop."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter, defaultdict
from typing import Any

from ..store.webhook import put_dropping_oldest
from .channels import DeliveryError, MqttSender, SmtpSender, WebhookSender
from .config import AlertsConfig, RetryPolicy
from .records import AlertStore
from .rules import RuleEngine

log = logging.getLogger(__name__)


class _ChannelWorker:
    """One channel, one thread, one bounded queue; failed deliveries retry with doubling back-off."""

    def __init__(self, sender: Any, alerts: AlertStore | None, retry: RetryPolicy):
        self.sender, self.alerts, self.retry = sender, alerts, retry
        self.queue: queue.Queue[dict[str, Any] | None] = queue.Queue(maxsize=retry.max_queue)
        self.delivered = self.failed = self.dropped = self.attempts = 0
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"maskwatch-alerts-{sender.name}", daemon=True)
        self._thread.start()

    def put(self, message: dict[str, Any]) -> None:
        self.dropped += put_dropping_oldest(self.queue, message)

    def _run(self) -> None:
        while True:
            message = self.queue.get()
            try:
                if message is None:
                    return
                self._deliver(message)
            except Exception:  # noqa: BLE001 - a bug in one delivery must not kill the channel
                log.exception("alerts %s: delivery crashed", self.sender.name)
            finally:
                self.queue.task_done()

    def _record(self, message: dict[str, Any], attempts: int, **kw: Any) -> None:
        if self.alerts is None or message.get("alert_id") is None:
            return
        try:
            self.alerts.delivery(message["alert_id"], self.sender.name, attempts=attempts, **kw)
        except Exception as exc:  # noqa: BLE001 - the database may be down too
            log.warning("alerts %s: cannot record delivery state: %s", self.sender.name, exc)

    def _deliver(self, message: dict[str, Any]) -> None:
        delay = self.retry.backoff_s
        attempts = 0
        while True:
            attempts += 1
            self.attempts += 1
            try:
                self.sender.send(message)
            except DeliveryError as exc:
                self.last_error = str(exc)
                give_up = exc.permanent or (self.retry.max_attempts and attempts >= self.retry.max_attempts)
                if give_up or self._stop.is_set():
                    self._record(message, attempts, error=str(exc), failed=True)  # stored before it is counted
                    self.failed += 1
                    log.warning("alerts %s: gave up after %d attempts: %s", self.sender.name, attempts, exc)
                    return
                self._record(message, attempts, error=str(exc))
                if self._stop.wait(delay):
                    self._record(message, attempts, failed=True)
                    self.failed += 1
                    return
                delay = min(delay * 2, self.retry.max_backoff_s)
                continue
            if message["kind"] == "alert":
                self._record(message, attempts, delivered=True)
            self.delivered += 1
            message["delivered_monotonic"] = time.monotonic()
            return

    def stop(self, deadline: float) -> None:
        while self.queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)
        self._stop.set()
        try:
            self.queue.put(None, timeout=0.1)
        except queue.Full:
            pass
        self._thread.join(max(0.1, deadline - time.monotonic()))
        try:
            self.sender.close()
        except Exception:  # noqa: BLE001
            pass

    def state(self) -> dict[str, Any]:
        return {"queued": self.queue.qsize(), "delivered": self.delivered, "failed": self.failed,
                "dropped": self.dropped, "attempts": self.attempts, "last_error": self.last_error}


class AlertDispatcher:
    """``dispatcher(event)`` returns at once. A thread of its own applies the rules, records the alert
    row (with a pending delivery per channel) and hands the message to every channel's worker.

    ``store``: the ``EventStore`` the events are written to (its engine holds the alert tables);
    the dispatcher does not write the event itself: call it after ``store.add(event)``.
    MQTT also gets a retained per-camera count of every event type seen (alert or not).

    ``public_url``: the address others reach the API at (the venue service passes its own); alert payloads
    carry ``<public_url>/v1/events/<id>/snapshot``. The webhook's ``snapshot_base_url``, when set, wins.
    """

    def __init__(self, config: AlertsConfig, store: Any, senders: list[Any] | None = None,
                 public_url: str | None = None):
        self.config = config
        self.public_url = public_url
        self.alerts = AlertStore(store.engine) if store is not None else None
        self.rules = RuleEngine(config.rules)
        if senders is None:
            senders = []
            ch = config.channels
            if ch.webhook:
                senders.append(WebhookSender(ch.webhook))
            if ch.mqtt:
                senders.append(MqttSender(ch.mqtt))
            if ch.smtp:
                senders.append(SmtpSender(ch.smtp))
        self.workers = {s.name: _ChannelWorker(s, self.alerts, config.retry) for s in senders}
        self.counts: dict[str, Counter] = defaultdict(Counter)
        self.raised = 0
        self.suppressed: Counter = Counter()
        self._intake: queue.Queue[Any] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="maskwatch-alerts", daemon=True)
        self._thread.start()

    def __call__(self, event: Any) -> None:
        if self.config.enabled:
            self._intake.put(event)

    def _run(self) -> None:
        while True:
            event = self._intake.get()
            try:
                if event is None:
                    return
                self._handle(event)
            except Exception:  # noqa: BLE001
                log.exception("alerts: cannot handle %s event", getattr(event, "type", "?"))
            finally:
                self._intake.task_done()

    def _handle(self, event: Any) -> None:
        camera = event.camera or event.source
        self.counts[camera][event.type] += 1
        if "mqtt" in self.workers:
            self.workers["mqtt"].put({"kind": "counts", "camera": camera, "alert_id": None,
                                      "payload": {"camera": camera, "counts": dict(self.counts[camera]),
                                                  "time": event.time.isoformat()}})
        reason = self.rules.check(event)
        if reason is not None:
            self.suppressed[reason] += 1
            return
        alert_id = None
        if self.alerts is not None:
            try:
                alert_id = self.alerts.create(event, list(self.workers))
            except Exception as exc:  # noqa: BLE001 - deliver anyway; the event itself is in the store
                log.warning("alerts: cannot record alert: %s", exc)
        self.raised += 1
        payload = event.to_dict()
        payload.pop("snapshot", None)
        payload["alert_id"] = alert_id
        payload["snapshot_url"] = self._snapshot_url(event)
        for worker in self.workers.values():
            worker.put({"kind": "alert", "camera": camera, "alert_id": alert_id, "payload": dict(payload),
                        "snapshot_path": event.snapshot})

    def _snapshot_url(self, event: Any) -> str | None:
        hook = self.config.channels.webhook
        base = (hook.snapshot_base_url if hook else None) or self.public_url
        if not (base and event.snapshot and event.id is not None):
            return None
        return f"{base.rstrip('/')}/v1/events/{event.id}/snapshot"

    def state(self) -> dict[str, Any]:
        return {"raised": self.raised, "suppressed": dict(self.suppressed),
                "channels": {name: w.state() for name, w in self.workers.items()}}

    def close(self, timeout_s: float | None = None) -> None:
        """Deliver what is queued within ``timeout_s`` (default: the config's ``close_timeout_s``; retry
        waits are then cut short), then stop."""
        deadline = time.monotonic() + (self.config.close_timeout_s if timeout_s is None else timeout_s)
        while self._intake.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)
        self._intake.put(None)
        self._thread.join(max(0.1, deadline - time.monotonic()))
        for worker in self.workers.values():
            worker.stop(deadline)
