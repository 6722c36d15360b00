"""The frame loop: detect (every Nth frame) -> track -> classify -> per-track state -> events."""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

import cv2
import numpy as np

from ..faces import Faces
from ..pipeline import StageTimer
from ..event_types import EventType
from ..store.events_db import Event
from ..video.sources import Frame, SourceStatus
from .entry import EntryLine
from .quality import face_quality
from .sinks import CallFrameSink, EventContext, EventSink, FrameSink, SinkGuard, takes_context
from .state import UNMASKED_STATES, StateConfig, TrackState
from .tracking import FaceTracker, propagate_boxes

if TYPE_CHECKING:
    from ..protocols import FaceClassifier, FaceDetector


class Watcher:
    """Turns frames into tracked, classified faces and events.

    ``detector.detect(bgr) -> Faces`` and ``classifier.classify(bgr, faces) -> Faces with probs`` (the
    objects a :class:`~maskwatch.pipeline.MaskPipeline` holds). With ``detect_every=N`` the detector and
    classifier run on every Nth processed frame; in between boxes follow optical flow and no votes are cast.
    The watcher is the engine of a run: it turns a frame into faces and events and writes nothing;
    :func:`run_watch` hands them on to the event and frame sinks (:mod:`maskwatch.monitor.sinks`; the
    snapshots are one of them, :class:`~maskwatch.monitor.SnapshotSink`). ``sinks``: plain functions called
    with every event inside :meth:`process` (the older style, without snapshots; some tests use it). ``zone``: an optional polygon (K, 2) in
    frame pixels, e.g. the entrance; faces whose box centre lies outside it are tracked and drawn but do
    not vote, so they raise no events.

    ``entry``: an optional directional line ((x1, y1), (x2, y2)) in frame pixels (see :class:`EntryLine`
    for the direction and the hysteresis). A face crossing it raises ``entered`` or ``left`` with the
    person's decided mask state, and ``entered_unmasked`` is raised when an unmasked person crosses in
    (or, having crossed in, is first decided unmasked), not when they are first seen. Without a line
    ``entered_unmasked`` is raised at a person's first decided unmasked state.

    ``refind_s``: a face that gets a new tracker id within this many seconds of a person's track being
    lost, at about the same place (box centre within ``refind_distance`` x the face height of where they
    were last seen, size within a factor of 2), is that person again: it keeps their id, mask state and
    side of the entry line, so a drop-out raises no second event. Time while no frames come (a camera
    outage) does not count: the watcher's clock advances at most ``max_step_s`` per frame.
    """

    def __init__(self, detector: "FaceDetector", classifier: "FaceClassifier", source: str, camera: str | None = None,
                 detect_every: int = 1, state_config: StateConfig | None = None,
                 sinks: Iterable[Callable[[Event], None]] = (),
                 lost_track_s: float = 1.5, min_face: float = 20.0, zone: np.ndarray | None = None,
                 entry: Sequence[Sequence[float]] | EntryLine | None = None, refind_s: float = 3.0,
                 refind_distance: float = 1.0, max_step_s: float = 0.5):
        self.detector = detector
        self.classifier = classifier
        self.source = source
        self.camera = camera
        self.detect_every = max(1, int(detect_every))
        self.state_config = state_config or StateConfig()
        self.sinks = list(sinks)
        self.lost_track_s = lost_track_s
        self.min_face = min_face
        self.zone = None if zone is None else np.asarray(zone, np.float32).reshape(-1, 1, 2)
        self.entry = entry if entry is None or isinstance(entry, EntryLine) else EntryLine(*entry)
        self.refind_s = refind_s
        self.refind_distance = refind_distance
        self.max_step_s = max_step_s
        self.tracker = FaceTracker(lost_track_s=lost_track_s)
        self.tracks: dict[int, TrackState] = {}
        self.refound = 0  # tracker ids taken as a lost person again
        self.timer = StageTimer()
        self.frames = 0
        self.events: deque[Event] = deque(maxlen=10_000)  # the most recent events (the store keeps all)
        self._faces = Faces.empty()
        self._prev_gray: np.ndarray | None = None
        self._aliases: dict[int, int] = {}  # tracker id -> the id of the person it was re-found as
        self._clock = 0.0  # seconds of frames seen (outages excluded)
        self._last_t: float | None = None

    # -- frames ---------------------------------------------------------------------------------
    def process(self, frame: Frame) -> tuple[Faces, list[Event]]:
        t = frame.video_time if frame.video_time is not None else frame.wall_time
        if self._last_t is not None:
            self._clock += min(max(t - self._last_t, 0.0), self.max_step_s)
        self._last_t = t
        start = time.perf_counter()
        gray = cv2.cvtColor(frame.image, cv2.COLOR_BGR2GRAY) if frame.image.ndim == 3 else frame.image
        events: list[Event] = []
        if self.frames % self.detect_every == 0 or self._prev_gray is None:
            faces = self.detector.detect(frame.image)
            start = self.timer.add("detect", start)
            faces = self._refind(self.tracker.update(faces, t))
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
                events += self._observe(frame, tid, faces.boxes[i], faces.probs[i], float(weights[i]), t)
            self._forget_old_tracks()
            self.timer.add("state", start)
        else:
            faces = propagate_boxes(self._prev_gray, gray, self._faces)
            self.timer.add("flow", start)
        self._faces, self._prev_gray = faces, gray
        self.frames += 1
        for ev in events:
            self._emit(ev)
        return faces, events

    def _observe(self, frame: Frame, tid: int, box: np.ndarray, probs: np.ndarray, weight: float,
                 t: float) -> list[Event]:
        """One classified sighting of person ``tid``: their mask state, then their side of the entry line."""
        track = self.tracks.setdefault(tid, TrackState(self.state_config))
        track.last_seen, track.last_box, track.last_active = t, box, self._clock
        out: list[Event] = []
        change = track.observe(probs, weight)
        kind = None if change is None else change.event_type
        if kind is EventType.ENTERED_UNMASKED and (track.announced or (self.entry is not None and not track.inside)):
            kind = None  # with an entry line, raised when they cross in (below), not at first sight
        if change is not None and kind is not None:
            track.announced = track.announced or kind is EventType.ENTERED_UNMASKED
            out.append(self._event(kind, frame, tid, box, change.before, change.after, change.confidence))
        crossing = None if self.entry is None else self.entry.update(track, box)
        if crossing is not None:
            track.inside = crossing is EventType.ENTERED
            out.append(self._event(crossing, frame, tid, box, None, track.state, None))
            if track.inside and track.state in UNMASKED_STATES and not track.announced:
                track.announced = True
                out.append(self._event(EventType.ENTERED_UNMASKED, frame, tid, box, None, track.state, None))
        return out

    def _event(self, kind: EventType, frame: Frame, tid: int, box: np.ndarray, before: str | None,
               after: str | None, confidence: float | None) -> Event:
        return Event(type=kind, time=datetime.now(timezone.utc), source=self.source, camera=self.camera,
                     track_id=tid, frame=frame.index, video_time=frame.video_time, state_before=before,
                     state_after=after, confidence=confidence, box=[round(float(v), 1) for v in box])

    def _refind(self, faces: Faces) -> Faces:
        """Tracker ids -> person ids: a new tracker id near where a person was recently lost becomes theirs."""
        if not len(faces):
            return faces
        ids = faces.track_ids.copy()
        for i, tid in enumerate(ids):
            ids[i] = self._aliases.get(int(tid), tid)
        present = {int(t) for t in ids if t >= 0}
        for i, tid in enumerate(ids):
            if tid < 0 or int(tid) in self.tracks:
                continue
            old = self._lost_person_near(faces.boxes[i], present)
            if old is not None:
                self._aliases[int(tid)] = old
                ids[i] = old
                present.add(old)
                self.refound += 1
        return faces.with_(track_ids=ids)

    def _lost_person_near(self, box: np.ndarray, present: set[int]) -> int | None:
        cx, cy, h = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2, box[3] - box[1]
        best, best_d = None, float("inf")
        for tid, tr in self.tracks.items():
            if tid in present or tr.last_box is None or self._clock - tr.last_active > self.refind_s:
                continue
            b = tr.last_box
            bh = b[3] - b[1]
            if not 0.5 <= h / max(bh, 1e-6) <= 2.0:
                continue
            d = float(np.hypot(cx - (b[0] + b[2]) / 2, cy - (b[1] + b[3]) / 2))
            if d <= self.refind_distance * max(h, bh) and d < best_d:
                best, best_d = tid, d
        return best

    def _in_zone(self, faces: Faces) -> np.ndarray:
        if self.zone is None:
            return np.ones(len(faces), bool)
        centres = (faces.boxes[:, :2] + faces.boxes[:, 2:]) / 2
        return np.array([cv2.pointPolygonTest(self.zone, (float(x), float(y)), False) >= 0 for x, y in centres], bool)

    def source_status(self, status: SourceStatus) -> Event:
        """Record a camera drop-out or return as an event."""
        extra = {"detail": status.detail, "gap_s": None if status.gap_s is None else round(status.gap_s, 3)}
        ev = Event(type=EventType(status.kind), time=datetime.fromtimestamp(status.wall_time, timezone.utc),
                   source=self.source, camera=self.camera, extra={k: v for k, v in extra.items() if v})
        if ev.type is EventType.SOURCE_LOST:
            self._prev_gray = None  # the next frame may be from a different scene: detect at once
        self._emit(ev)
        return ev

    def _emit(self, ev: Event) -> None:
        self.events.append(ev)
        for sink in self.sinks:
            sink(ev)

    def _forget_old_tracks(self) -> None:
        horizon = max(2 * self.lost_track_s, self.refind_s)
        for tid in [tid for tid, tr in self.tracks.items() if self._clock - tr.last_active > horizon]:
            del self.tracks[tid]
        if self._aliases:
            self._aliases = {k: v for k, v in self._aliases.items() if v in self.tracks}


@dataclass
class RunStats:
    frames: int = 0
    seconds: float = 0.0
    events: int = 0
    interrupted: bool = False
    stage_ms: dict[str, float] = field(default_factory=dict)
    sink_failures: dict[str, int] = field(default_factory=dict)  # sink name -> calls that raised

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def run_watch(source: Iterable[Any], watcher: Watcher, event_sinks: Sequence[EventSink] = (),
              frame_sinks: Sequence[FrameSink] = (),
              on_frame: Callable[[Frame, Faces, list[Event]], None] | None = None,
              max_frames: int | None = None, report: Callable[[str], None] | None = None,
              fatal: tuple[type[BaseException], ...] = ()) -> RunStats:
    """Drive ``watcher`` over ``source`` until it ends, ``max_frames`` or Ctrl-C / SIGTERM (which end the
    run cleanly). A live source waiting for a camera that is down is asked to stop too (``request_stop``),
    so a signal is obeyed within 0.5 s.

    A frame only travels downward: each event the watcher raises goes to every ``event_sinks`` entry (a
    sink with ``takes_context = True`` is called ``handle(event, EventContext(frame, faces))``: the frame
    the event was raised on, None for a lost or restored source), then the frame, its faces and its
    events to every ``frame_sinks`` entry (``on_frame``: a plain function
    taken as the last frame sink). At the end, however the run ends, the source is closed, then the frame
    sinks in the order given, then the event sinks in reverse order (the first, usually the store, last:
    the alert dispatcher still writes to it while it closes). A sink that raises is reported once, in one
    line naming it, through ``report`` (default: stderr); the others carry on. An exception of a ``fatal``
    type ends the run instead and is raised once every sink is closed. KeyboardInterrupt raised by a
    frame sink (a window closed) ends the run like Ctrl-C."""
    frame_sinks = list(frame_sinks) + ([CallFrameSink(on_frame, "on_frame")] if on_frame is not None else [])
    event_sinks = list(event_sinks)
    guard = SinkGuard(report or _report_stderr, fatal)
    stats = RunStats()
    started = time.perf_counter()

    contextual = [takes_context(sink) for sink in event_sinks]
    no_frame = EventContext()

    def emit(events: list[Event], context: EventContext) -> None:
        for ev in events:
            for sink, with_context in zip(event_sinks, contextual):
                if with_context:
                    guard.call(sink, "handle", sink.handle, ev, context)
                else:
                    guard.call(sink, "handle", sink.handle, ev)

    try:
        with _StopSignals(getattr(source, "request_stop", None)) as stop:
            for item in source:
                if stop.requested:
                    raise KeyboardInterrupt
                if isinstance(item, SourceStatus):
                    emit([watcher.source_status(item)], no_frame)
                    stats.events += 1
                    continue
                faces, events = watcher.process(item)
                stats.frames += 1
                stats.events += len(events)
                if events:
                    emit(events, EventContext(item, faces))
                for fsink in frame_sinks:
                    guard.call(fsink, "handle", fsink.handle, item, faces, events)
                if max_frames is not None and stats.frames >= max_frames:
                    break
            if stop.requested:
                stats.interrupted = True
    except KeyboardInterrupt:
        stats.interrupted = True
    finally:
        close = getattr(source, "close", None)
        if close is not None:
            close()
        for sink in [*frame_sinks, *reversed(event_sinks)]:
            guard.close(sink)
    if guard.pending is not None:
        raise guard.pending
    stats.seconds = time.perf_counter() - started
    stats.stage_ms = dict(watcher.timer.ms)
    stats.sink_failures = dict(guard.failures)
    return stats


def _report_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class _StopSignals:
    """SIGINT and SIGTERM ask the run to stop after the frame in hand, so every sink sees whole frames
    (the video gets its last frame and its index, the JSON lines match it). A second signal stops at once.
    ``on_stop`` (a live source's ``request_stop``) is told too: a source waiting for a silent camera
    yields nothing, so the request would not be seen until it came back."""

    def __init__(self, on_stop: Callable[[], None] | None = None) -> None:
        self.requested = False
        self.on_stop = on_stop
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, _frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        if self.on_stop is not None:
            self.on_stop()

    def __enter__(self) -> "_StopSignals":
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
