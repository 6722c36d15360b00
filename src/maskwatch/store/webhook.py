"""Webhook notifications that never hold up the video loop.

Events go into a bounded queue; one background thread POSTs them as JSON with retries and
exponential back-off. When the queue is full the oldest waiting event is dropped (and counted):
a slow or dead receiver costs notifications, never frames.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any

log = logging.getLogger(__name__)


def put_dropping_oldest(q: queue.Queue, item: Any) -> int:
    """Put ``item`` without waiting; a full queue loses its oldest items first. Returns how many were dropped."""
    dropped = 0
    while True:
        try:
            q.put_nowait(item)
            return dropped
        except queue.Full:
            try:
                q.get_nowait()
                q.task_done()
                dropped += 1
            except queue.Empty:
                pass


class WebhookNotifier:
    def __init__(self, url: str, retries: int = 4, backoff_s: float = 0.5, timeout_s: float = 5.0,
                 max_queue: int = 256):
        self.url = url
        self.retries = retries
        self.backoff_s = backoff_s
        self.timeout_s = timeout_s
        self.queue: queue.Queue[dict[str, Any] | None] = queue.Queue(maxsize=max_queue)
        self.sent = 0
        self.failed = 0
        self.dropped = 0
        self.attempts = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="maskwatch-webhook", daemon=True)
        self._thread.start()

    def notify(self, payload: dict[str, Any]) -> None:
        """Queue ``payload``; returns at once."""
        self.dropped += put_dropping_oldest(self.queue, payload)

    def _run(self) -> None:
        import httpx

        with httpx.Client(timeout=self.timeout_s) as client:
            while True:
                payload = self.queue.get()
                if payload is None:
                    return
                try:
                    self._deliver(client, payload)
                finally:
                    self.queue.task_done()

    def _deliver(self, client: Any, payload: dict[str, Any]) -> None:
        import httpx

        delay = self.backoff_s
        for attempt in range(self.retries + 1):
            self.attempts += 1
            try:
                response = client.post(self.url, json=payload)
                if response.status_code < 400:
                    self.sent += 1
                    return
                problem = f"HTTP {response.status_code}"
                if 400 <= response.status_code < 500 and response.status_code not in (408, 429):
                    break  # the receiver rejects it; retrying will not help
            except httpx.HTTPError as exc:
                problem = f"{exc.__class__.__name__}: {exc}"
            if attempt < self.retries and not self._stop.wait(delay):
                delay *= 2
                continue
            if self._stop.is_set():
                break
        self.failed += 1
        log.warning("webhook %s: gave up on %s event: %s", self.url, payload.get("type"), problem)

    def close(self, timeout_s: float = 5.0) -> None:
        """Deliver what is queued or in flight within ``timeout_s`` (then retry waits are cut short), then stop."""
        deadline = time.monotonic() + timeout_s
        while self.queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.02)
        self._stop.set()
        try:
            self.queue.put(None, timeout=max(0.0, deadline - time.monotonic()) or 0.01)
        except queue.Full:
            pass
        self._thread.join(max(0.1, deadline - time.monotonic()))
