"""One camera in its own process: source -> the watch engine -> the event store, with health and live frames
sent to the API process over a queue.

Messages on the queue (tuples): ``("health", name, pid, {...})``, ``("event", name, pid, event_dict)``,
``("frame", name, pid, jpeg_bytes)``, ``("exit", name, pid, {"frames": n, "events": n})``.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import Any

#: a live view frame at most this often per camera
LIVE_INTERVAL_S = 0.1
#: after SIGTERM, the frame in hand gets this long to finish
STOP_GRACE_S = 5.0


class _Health:
    """The worker's health (sent to the API process every few seconds), kept up to date as a frame sink;
    :class:`_QueueEvents` counts the events into it."""

    name = "health"

    def __init__(self, video_reconnects: Any):
        self.video_reconnects = video_reconnects
        self.lock = threading.Lock()
        self.data: dict[str, Any] = {"state": "starting", "fps": 0.0, "last_frame_time": None, "reconnects": 0,
                                     "faces_now": 0, "frames": 0, "events": 0, "progress": time.time()}
        self.window: list[float] = []

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return dict(self.data)

    def update(self, **values: Any) -> None:
        with self.lock:
            self.data.update(values)

    def handle(self, frame: Any, faces: Any, events: list) -> None:
        window = self.window
        window.append(time.monotonic())
        while window and window[0] < window[-1] - 2.0:
            window.pop(0)
        with self.lock:
            d = self.data
            d.update(state="running", last_frame_time=frame.wall_time, faces_now=int(len(faces)),
                     frames=d["frames"] + 1, progress=time.time(), reconnects=self.video_reconnects(),
                     fps=round((len(window) - 1) / (window[-1] - window[0]), 2) if len(window) > 1 else 0.0)

    def close(self) -> None:
        pass


class _QueueEvents:
    """An event sink: counts each event into the health (a lost or restored source sets its state) and
    sends it to the API process."""

    name = "events-queue"

    def __init__(self, health: _Health, queue: Any, camera: str, pid: int):
        self.health, self.queue, self.camera, self.pid = health, queue, camera, pid

    def handle(self, ev: Any) -> None:
        from ..event_types import EventType

        with self.health.lock:
            d = self.health.data
            d["events"] += 1
            d["progress"] = time.time()
            if ev.type == EventType.SOURCE_LOST:
                d["state"] = "lost"
            elif ev.type == EventType.SOURCE_RESTORED:
                d["state"] = "running"
        self.queue.put(("event", self.camera, self.pid, ev.to_dict()))

    def close(self) -> None:
        pass


def camera_main(camera: dict, service: dict, queue: Any, live_until: Any) -> None:
    """The body of a camera process (multiprocessing spawn). ``live_until``: a shared double, the
    time.time() until which someone watches the live view (frames are encoded only then)."""
    import cv2

    from ..monitor import LiveViewSink
    from .config import CameraConfig, ServiceConfig
    from .watch import build_watch, camera_watch_config

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the supervisor decides
    cam = CameraConfig.model_validate(camera)
    cfg = ServiceConfig.model_validate(service)
    name, pid = cam.name, os.getpid()
    cv2.setNumThreads(1)
    # track ids start again in a restarted worker: the venue's dispatcher tells people apart by worker too
    run = build_watch(camera_watch_config(cam, cfg, worker_pid=pid), check_outputs=False, stoppable=True)
    video = run.source
    health = _Health(video_reconnects=lambda: int(getattr(video, "reconnects", 0)))
    done = threading.Event()

    def send_health() -> None:
        while not done.wait(cfg.supervisor.health_every_s):
            queue.put(("health", name, pid, health.snapshot()))

    run.event_sinks.append(_QueueEvents(health, queue, name, pid))
    run.frame_sinks += [health, LiveViewSink(lambda jpeg: queue.put(("frame", name, pid, jpeg)),
                                             wanted=lambda: time.time() < live_until.value, interval_s=LIVE_INTERVAL_S)]

    beat = threading.Thread(target=send_health, name="maskwatch-health", daemon=True)
    beat.start()
    # The frame loop runs on a thread of its own and SIGTERM is handled here: the stop request reaches the
    # source at once (a stream that is down, or reconnecting, yields no frame that run_watch could check a
    # flag on), and the loop ends after the frame in hand.
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    result: dict[str, Any] = {}

    def frames() -> None:
        try:
            result["stats"] = run.run()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread: the process exits non-zero
            result["error"] = exc

    loop = threading.Thread(target=frames, name="maskwatch-frames", daemon=True)
    loop.start()
    try:
        while loop.is_alive():
            if stopping.wait(0.2):
                run.stop()
                loop.join(STOP_GRACE_S)
                break
    finally:
        done.set()  # run_watch has closed the sinks (the store among them) when the loop ended
    if "error" in result:
        raise result["error"]
    if loop.is_alive():  # a frame that does not end: its events so far are committed; leave at once
        os._exit(1)
    stats = result["stats"]
    health.update(state="stopped")
    queue.put(("health", name, pid, health.snapshot()))
    queue.put(("exit", name, pid, {"frames": stats.frames, "events": stats.events, "interrupted": stats.interrupted}))
    from ..video.sources import stray_opens

    if stray_opens():  # a stream open still inside FFmpeg: a normal exit would abort ("terminate called")
        queue.close()
        queue.join_thread()  # what was put is delivered first
        os._exit(0)
