"""The frame loop: detect (every Nth frame) -> track -> classify -> per-track state -> events."""

from __future__ import annotations

import signal
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable, Iterable

import cv2
import numpy as np

from ..faces import Faces
from ..pipeline import StageTimer
from ..store.events_db import Event
from ..video.sources import Frame, SourceStatus
from .quality import face_quality
from .snapshots import SnapshotWriter
from .state import StateConfig, TrackState
from .tracking import FaceTracker, propagate_boxes

if TYPE_CHECKING:
    from ..protocols import FaceClassifier, FaceDetector


class Watcher:
    """Turns frames into tracked, classified faces and events.

    ``detector.detect(bgr) -> Faces`` and ``classifier.classify(bgr, faces) -> Faces with probs`` (the
    objects a :class:`~maskwatch.pipeline.MaskPipeline` holds). With ``detect_every=N`` the detector and
    classifier run on every Nth processed frame; in between boxes follow optical flow and no votes are cast.
    ``sinks`` get every event (store, webhook, JSON output...). ``zone``: an optional polygon (K, 2) in
    frame pixels, e.g. the entrance; faces whose box centre lies outside it are tracked and drawn but do
    not vote, so they raise no events.
    """

    def __init__(self, detector: "FaceDetector", classifier: "FaceClassifier", source: str, camera: str | None = None,
                 detect_every: int = 1, state_config: StateConfig | None = None,
                 snapshots: SnapshotWriter | None = None, sinks: Iterable[Callable[[Event], None]] = (),
                 lost_track_s: float = 1.5, min_face: float = 20.0, zone: np.ndarray | None = None):
        self.detector = detector
        self.classifier = classifier
        self.source = source
        self.camera = camera
        self.detect_every = max(1, int(detect_every))
        self.state_config = state_config or StateConfig()
        self.snapshots = snapshots
        self.sinks = list(sinks)
        self.lost_track_s = lost_track_s
        self.min_face = min_face
        self.zone = None if zone is None else np.asarray(zone, np.float32).reshape(-1, 1, 2)
        self.tracker = FaceTracker(lost_track_s=lost_track_s)
        self.tracks: dict[int, TrackState] = {}
        self.timer = StageTimer()
        self.frames = 0
        self.events: deque[Event] = deque(maxlen=10_000)  # the most recent events (the store keeps all)
        self._faces = Faces.empty()
        self._prev_gray: np.ndarray | None = None

    # -- frames ---------------------------------------------------------------------------------
    def process(self, frame: Frame) -> tuple[Faces, list[Event]]:
        t = frame.video_time if frame.video_time is not None else frame.wall_time
        start = time.perf_counter()
        gray = cv2.cvtColor(frame.image, cv2.COLOR_BGR2GRAY) if frame.image.ndim == 3 else frame.image
        events: list[Event] = []
        if self.frames % self.detect_every == 0 or self._prev_gray is None:
            faces = self.detector.detect(frame.image)
            start = self.timer.add("detect", start)
            faces = self.tracker.update(faces, t)
            start = self.timer.add("track", start)
            if len(faces):
                faces = self.classifier.classify(frame.image, faces)
            else:
                faces = faces.with_(probs=np.zeros((0, 3), np.float32))
            start = self.timer.add("classify", start)
            weights = face_quality(gray, faces, min_face=self.min_face)
            faces.data["quality"] = weights
            inside = self._in_zone(faces)
            for i in range(len(faces)):
                tid = int(faces.track_ids[i])
                if tid < 0 or not inside[i]:
                    continue
                track = self.tracks.setdefault(tid, TrackState(self.state_config))
                track.last_seen, track.last_box = t, faces.boxes[i]
                change = track.observe(faces.probs[i], float(weights[i]))
                if change is not None and change.event_type is not None:
                    events.append(Event(type=change.event_type, time=datetime.now(timezone.utc),
                                        source=self.source, camera=self.camera, track_id=tid,
                                        frame=frame.index, video_time=frame.video_time,
                                        state_before=change.before, state_after=change.after,
                                        confidence=change.confidence,
                                        box=[round(float(v), 1) for v in faces.boxes[i]]))
            self._forget_old_tracks(t)
            self.timer.add("state", start)
        else:
            faces = propagate_boxes(self._prev_gray, gray, self._faces)
            self.timer.add("flow", start)
        self._faces, self._prev_gray = faces, gray
        self.frames += 1
        for ev in events:
            self._emit(ev, frame.image)
        return faces, events

    def _in_zone(self, faces: Faces) -> np.ndarray:
        if self.zone is None:
            return np.ones(len(faces), bool)
        centres = (faces.boxes[:, :2] + faces.boxes[:, 2:]) / 2
        return np.array([cv2.pointPolygonTest(self.zone, (float(x), float(y)), False) >= 0 for x, y in centres], bool)

    def source_status(self, status: SourceStatus) -> Event:
        """Record a camera drop-out or return as an event."""
        ev = Event(type=status.kind, time=datetime.fromtimestamp(status.wall_time, timezone.utc),
                   source=self.source, camera=self.camera,
                   extra={k: v for k, v in {"detail": status.detail, "gap_s": status.gap_s}.items() if v})
        if status.kind == "source_lost":
            self._prev_gray = None  # the next frame may be from a different scene: detect at once
        self._emit(ev, None)
        return ev

    def _emit(self, ev: Event, image: np.ndarray | None) -> None:
        if self.snapshots is not None and image is not None:
            stamp = ev.time.strftime("%Y%m%dT%H%M%S%f")
            ev.snapshot = self.snapshots.save(image, None if ev.box is None else np.asarray(ev.box),
                                              f"{stamp}_{ev.type}_t{ev.track_id}")
        self.events.append(ev)
        for sink in self.sinks:
            sink(ev)

    def _forget_old_tracks(self, now: float) -> None:
        horizon = 2 * self.lost_track_s
        for tid in [tid for tid, tr in self.tracks.items() if now - tr.last_seen > horizon]:
            del self.tracks[tid]


@dataclass
class RunStats:
    frames: int = 0
    seconds: float = 0.0
    events: int = 0
    interrupted: bool = False
    stage_ms: dict[str, float] = field(default_factory=dict)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def run_watch(source: Iterable[Any], watcher: Watcher,
              on_frame: Callable[[Frame, Faces, list[Event]], None] | None = None,
              max_frames: int | None = None) -> RunStats:
    """Drive ``watcher`` over ``source`` until it ends, ``max_frames`` or Ctrl-C (which ends the run
    cleanly: callers close their writers and stores after this returns)."""
    stats = RunStats()
    started = time.perf_counter()
    try:
        with _StopSignals() as stop:
            for item in source:
                if stop.requested:
                    raise KeyboardInterrupt
                if isinstance(item, SourceStatus):
                    watcher.source_status(item)
                    stats.events += 1
                    continue
                faces, events = watcher.process(item)
                stats.frames += 1
                stats.events += len(events)
                if on_frame is not None:
                    on_frame(item, faces, events)
                if max_frames is not None and stats.frames >= max_frames:
                    break
    except KeyboardInterrupt:
        stats.interrupted = True
    finally:
        close = getattr(source, "close", None)
        if close is not None:
            close()
    stats.seconds = time.perf_counter() - started
    stats.stage_ms = dict(watcher.timer.ms)
    return stats


class _StopSignals:
    """SIGINT and SIGTERM ask the run to stop after the frame in hand, so every sink sees whole frames
    (the video gets its last frame and its index, the JSON lines match it). A second signal stops at once."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, _frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> "_StopSignals":
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
