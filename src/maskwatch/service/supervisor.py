"""The supervisor: starts one process per enabled camera, restarts a crashed or hung one with back-off,
collects health, events and live frames from them, and stops them all cleanly."""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import queue as queue_mod
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

from .config import CameraConfig, ServiceConfig

STATES = ("starting", "running", "lost", "restarting", "disabled", "stopped")


@dataclass
class CameraSlot:
    config: CameraConfig
    enabled: bool
    state: str = "stopped"
    process: Any = None
    live_until: Any = None
    health: dict[str, Any] = field(default_factory=dict)
    last_message: float = 0.0
    restarts: int = 0
    crashes_in_row: int = 0
    restart_at: float | None = None
    finished: bool = False  # a file that reached its end: not restarted
    frame: bytes | None = None
    frame_time: float = 0.0

    def public(self) -> dict[str, Any]:
        h = self.health
        last = h.get("last_frame_time")
        return {"name": self.config.name, "state": self.state, "enabled": self.enabled,
                "fps": h.get("fps", 0.0) if self.state == "running" else 0.0,
                "last_frame_time": None if last is None else datetime.fromtimestamp(last, timezone.utc).isoformat(),
                "reconnects": int(h.get("reconnects", 0)), "restarts": self.restarts,
                "faces_now": int(h.get("faces_now", 0)) if self.state == "running" else 0,
                "frames": int(h.get("frames", 0)),
                "pid": None if self.process is None else self.process.pid}


class Supervisor:
    def __init__(self, config: ServiceConfig):
        self.config = config
        self.ctx = mp.get_context("spawn")
        self.queue = self.ctx.Queue()
        self.slots = {c.name: CameraSlot(c, c.enabled, state="stopped" if c.enabled else "disabled")
                      for c in config.cameras}
        self.lock = threading.RLock()
        self._stop = threading.Event()
        #: set when the API begins to shut down: streamed answers (live view, pushed events) end
        self.closing = threading.Event()
        self._threads: list[threading.Thread] = []
        self._subscribers: list[tuple[asyncio.AbstractEventLoop, asyncio.Queue]] = []
        self.frame_cond = threading.Condition(self.lock)
        self.on_event: list[Callable[[str, dict], None]] = []

    # -- life cycle -----------------------------------------------------------------------------
    def start(self) -> None:
        with self.lock:
            for slot in self.slots.values():
                if slot.enabled:
                    self._spawn(slot)
        for target, name in ((self._read_queue, "maskwatch-supervisor-queue"), (self._watch, "maskwatch-supervisor")):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self, timeout_s: float = 15.0) -> None:
        """SIGTERM every camera (each finishes its frame, its events are committed already), wait, then kill."""
        self._stop.set()
        with self.lock:
            procs = [s.process for s in self.slots.values() if s.process is not None]
            for s in self.slots.values():
                s.restart_at = None
        for p in procs:
            if p.is_alive():
                p.terminate()
        deadline = time.monotonic() + timeout_s
        for p in procs:
            p.join(max(0.1, deadline - time.monotonic()))
            if p.is_alive():
                p.kill()
                p.join(2)
        self._drain()
        with self.lock:
            for s in self.slots.values():
                s.state = "disabled" if not s.enabled else "stopped"
                s.process = None
        for t in self._threads:
            t.join(2)

    def _spawn(self, slot: CameraSlot) -> None:
        from .workers import camera_main

        slot.live_until = self.ctx.Value("d", 0.0, lock=False)
        slot.process = self.ctx.Process(
            target=camera_main, name=f"maskwatch-camera-{slot.config.name}", daemon=True,
            args=(slot.config.model_dump(mode="json"), self.config.model_dump(mode="json"), self.queue, slot.live_until))
        slot.process.start()
        slot.state = "starting"
        slot.health = {}
        slot.last_message = time.monotonic()
        slot.restart_at = None
        slot.finished = False

    # -- control --------------------------------------------------------------------------------
    def enable(self, name: str) -> dict[str, Any]:
        with self.lock:
            slot = self.slots[name]
            slot.enabled = True
            if slot.process is None or not slot.process.is_alive():
                slot.crashes_in_row = 0
                self._spawn(slot)
            return slot.public()

    def disable(self, name: str) -> dict[str, Any]:
        with self.lock:
            slot = self.slots[name]
            slot.enabled = False
            slot.restart_at = None
            proc = slot.process
        if proc is not None and proc.is_alive():
            proc.terminate()
            proc.join(10)
            if proc.is_alive():
                proc.kill()
                proc.join(2)
        with self.lock:
            slot.process = None
            slot.state = "disabled"
            return slot.public()

    def cameras(self) -> list[dict[str, Any]]:
        with self.lock:
            return [s.public() for s in self.slots.values()]

    def want_live(self, name: str, seconds: float = 3.0) -> None:
        with self.lock:
            slot = self.slots[name]
            if slot.live_until is not None:
                slot.live_until.value = time.time() + seconds

    def wait_frame(self, name: str, newer_than: float, timeout_s: float) -> tuple[bytes | None, float]:
        """The latest annotated JPEG of ``name`` newer than ``newer_than`` (or the latest one after the timeout)."""
        deadline = time.monotonic() + timeout_s
        with self.frame_cond:
            slot = self.slots[name]
            while slot.frame_time <= newer_than and not self._stop.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.frame_cond.wait(min(left, 0.5))
            return slot.frame, slot.frame_time

    # -- event push (server-sent events) ----------------------------------------------------------
    def subscribe(self) -> asyncio.Queue:
        q: asyncio.Queue = asyncio.Queue(maxsize=1000)
        with self.lock:
            self._subscribers.append((asyncio.get_running_loop(), q))
        return q

    def unsubscribe(self, q: asyncio.Queue) -> None:
        with self.lock:
            self._subscribers = [(loop, s) for loop, s in self._subscribers if s is not q]

    def _publish(self, event: dict) -> None:
        with self.lock:
            subs = list(self._subscribers)
        for loop, q in subs:
            try:
                loop.call_soon_threadsafe(_put_nowait, q, event)
            except RuntimeError:  # that loop is closed
                self.unsubscribe(q)

    # -- threads --------------------------------------------------------------------------------
    def _handle(self, message: tuple) -> None:
        kind, name, pid, body = message
        with self.lock:
            slot = self.slots.get(name)
            if slot is None:
                return
            current = slot.process is not None and slot.process.pid == pid
            if kind == "event":
                pass  # events count whichever process raised them
            elif not current:
                return
            slot.last_message = time.monotonic()
            if kind == "health":
                slot.health = body
                if body.get("state") in ("running", "lost", "starting"):
                    slot.state = body["state"]
                if body.get("state") == "running":
                    slot.crashes_in_row = 0
            elif kind == "frame":
                slot.frame, slot.frame_time = body, time.time()
                self.frame_cond.notify_all()
            elif kind == "exit":
                slot.finished = True
        if kind == "event":
            self._publish(body)
            for callback in self.on_event:
                callback(name, body)

    def _read_queue(self) -> None:
        while not self._stop.is_set():
            try:
                message = self.queue.get(timeout=0.2)
            except queue_mod.Empty:
                continue
            except (EOFError, OSError):
                return
            self._handle(message)

    def _drain(self) -> None:
        while True:
            try:
                self._handle(self.queue.get(timeout=0.05))
            except (queue_mod.Empty, EOFError, OSError):
                return

    def _watch(self) -> None:
        sup = self.config.supervisor
        while not self._stop.wait(0.2):
            now = time.monotonic()
            with self.lock:
                for slot in self.slots.values():
                    if not slot.enabled or self._stop.is_set():
                        continue
                    proc = slot.process
                    if proc is not None and proc.is_alive():
                        if is_hung(slot, now, sup):
                            proc.kill()
                        continue
                    if proc is not None:  # it ended
                        proc.join(0)
                        clean = proc.exitcode == 0 and slot.finished
                        slot.process = None
                        if clean:
                            slot.state = "stopped"
                            continue
                        slot.crashes_in_row += 1
                        delay = min(sup.backoff_s * 2 ** (slot.crashes_in_row - 1), sup.backoff_max_s)
                        slot.restart_at = now + delay
                        slot.state = "restarting"
                    if slot.restart_at is not None and now >= slot.restart_at:
                        slot.restarts += 1
                        self._spawn(slot)


def is_hung(slot: Any, now: float, sup: Any) -> bool:
    """Whether a live camera process is to be killed: silent for ``hang_s`` (``start_s`` while it is still
    starting: loading models on a busy machine takes longer), or running with a frame loop that stalled."""
    stalled = (slot.health.get("state") == "running"
               and time.time() - slot.health.get("progress", time.time()) > sup.hang_s)
    silent_limit = sup.start_s if slot.state == "starting" else sup.hang_s
    return now - slot.last_message > silent_limit or stalled


def _put_nowait(q: asyncio.Queue, item: Any) -> None:
    try:
        q.put_nowait(item)
    except asyncio.QueueFull:
        pass
