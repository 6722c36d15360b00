"""Batch work: inputs expanded into items, and the worker that processes one item.

A :class:`BatchWorker` builds its models once (on first use) and then handles any number of items;
the runner wraps it in a Ray actor, one per worker. It writes nothing itself: it returns the
events (videos) or the JSON records (images) and the driver commits them with the item's 'done' mark.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError, MaskWatchError
from ..images import IMAGE_SUFFIXES
from ..monitor.state import StateConfig

VIDEO_SUFFIXES = frozenset({".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".ts", ".wmv"})
#: images per item: the unit of retry and of resume for photo archives
IMAGES_PER_ITEM = 256
#: test hook: "SUBSTRING:MARKER_DIR" makes a worker exit hard the first time it starts an item whose path
#: holds SUBSTRING (a marker file in MARKER_DIR remembers the first attempt), as a killed worker would
CRASH_ENV = "MASKWATCH_BATCH_CRASH"
#: frames past a segment's end (and past the next one's start) whose boxes link the track ids of the two:
#: ByteTrack confirms a new track on its second detection, so one seen first just before a boundary has
#: its id only after it
LINK_AHEAD_FRAMES = 25


@dataclass
class Settings:
    """What ``watch`` (videos) and ``detect`` (images) are given; the same for every item of a job."""

    detector: str | None = None  # None: watch's default for videos, detect's for images
    classifier_model: str | None = None
    min_score: float | None = None
    min_face: float = 20.0
    input_size: int | None = None
    threads: int | None = 1
    detect_every: int = 3
    stride: int = 1
    state: StateConfig = field(default_factory=StateConfig)  # watch's window / hold / enter


@dataclass
class Item:
    kind: str  # "video" | "images"
    path: str  # as given (the events' source)
    key: str  # hash of path, size and mtime (of every image for an images item)
    weight: int  # frames or images, for the progress bar
    images: list[str] = field(default_factory=list)
    part: int = 0
    first: int = 0  # index of the first image in its folder
    span: tuple[int, int] | None = None  # video segment: frames [start, end) it owns (None: the whole file)
    warmup: int = 0  # frames before ``span[0]`` processed only to settle tracks and states
    tail: int = 0  # frames before ``span[1]`` the next segment warms up over (their boxes link the track ids)
    ahead: int = 0  # frames after ``span[1]`` processed only to link track ids (a new track is confirmed late)
    prev_key: str | None = None  # the segment before this one (its tail links this one's track ids)
    retry: bool = False  # images: only the images of a finished unit that failed (see JobStore.failed_images)


def file_key(*paths: str) -> str:
    h = hashlib.sha256()
    for p in paths:
        st = os.stat(p)
        h.update(f"{Path(p).resolve()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:40]


def read_manifest(path: Path) -> list[str]:
    """One input per line; blank lines and ``#`` comments are skipped."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise InputError(path, f"cannot read manifest ({exc.strerror or exc})") from None
    return [s for s in (line.split("#", 1)[0].strip() for line in lines) if s]


def expand_inputs(inputs: list[str], images_per_item: int = IMAGES_PER_ITEM, segment_s: float | None = None,
                  overlap_s: float = 5.0) -> tuple[list[Item], list[str]]:
    """Videos become one item each, image folders (and loose images) items of up to IMAGES_PER_ITEM.
    Returns the items and 'path: problem' for inputs that cannot be used. (A re-run must use the same
    ``images_per_item`` to find its finished image items.) ``segment_s``: videos longer than that are cut
    into segments of that length, each processed from ``overlap_s`` before its start (see docs/scale.md)."""
    from ..images import find_images

    items: list[Item] = []
    problems: list[str] = []
    loose: list[str] = []
    for raw in inputs:
        path = Path(raw)
        if path.is_dir():
            found = find_images([path])
            problems += [f"{f.path}: {f.error}" for f in found if f.error]
            _image_items(raw, [str(f.path) for f in found if not f.error], items, images_per_item)
        elif path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
            loose.append(raw)
        elif path.is_file():
            items += _video_items(raw, segment_s, overlap_s)
        else:
            problems.append(f"{raw}: no such file or directory")
    _image_items("images", loose, items, images_per_item)
    return items, problems


def _image_items(name: str, files: list[str], items: list[Item], size: int) -> None:
    for part, start in enumerate(range(0, len(files), max(1, size))):
        chunk = files[start:start + max(1, size)]
        items.append(Item("images", name, file_key(*chunk), len(chunk), images=chunk, part=part, first=start))


def _video_items(path: str, segment_s: float | None, overlap_s: float) -> list[Item]:
    import cv2

    cap = cv2.VideoCapture(path)
    try:
        frames = max(int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0), 1)
        fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
        fps = fps if 1 <= fps <= 1000 else 25.0
    finally:
        cap.release()
    key = file_key(path)
    length = int(round(segment_s * fps)) if segment_s else 0
    if not length or frames <= length:
        return [Item("video", path, key, frames)]
    warm = int(round(overlap_s * fps))
    items: list[Item] = []
    for k, start in enumerate(range(0, frames, length)):
        end = min(start + length, frames)
        items.append(Item("video", path, hashlib.sha256(f"{key}:{start}:{length}".encode()).hexdigest()[:40],
                          end - start, part=k, span=(start, end), warmup=min(warm, start),
                          tail=min(warm, end) if end < frames else 0, ahead=min(LINK_AHEAD_FRAMES, frames - end),
                          prev_key=items[-1].key if items else None))
    return items


class BatchWorker:
    """Processes items with models loaded once (one pipeline for videos, one for images)."""

    def __init__(self, settings: Settings, progress: Any = None):
        self.settings = settings
        self.progress = progress  # a Ray actor with ``report(key, units)``, or None
        self._video = self._images = None
        self.pid = os.getpid()
        self._reported = 0.0

    def _report(self, item: Item, units: int, force: bool = False) -> None:
        """Tell the driver how far ``item`` is (frames of its span, or images), about once a second."""
        now = time.monotonic()
        if self.progress is not None and (force or now - self._reported >= 1.0):
            self._reported = now
            self.progress.report.remote(item.key, units)

    def run(self, item: Item) -> dict[str, Any]:
        _maybe_crash(item)
        started = time.perf_counter()
        result = self._run_video(item) if item.kind == "video" else self._run_images(item)
        result.update(key=item.key, seconds=time.perf_counter() - started, pid=self.pid)
        return result

    def _run_video(self, item: Item) -> dict[str, Any]:
        from ..detectors import Preferred
        from ..monitor import CallEventSink, CallFrameSink, Watcher, run_watch
        from ..pipeline import build_pipeline
        from ..video import VideoFileSource

        s = self.settings
        if self._video is None:
            self._video = build_pipeline(s.detector or "centerface", min_score=s.min_score, min_face=s.min_face,
                                         threads=s.threads, classifier_model=s.classifier_model,
                                         input_size=s.input_size or Preferred(640))  # watch's default
        events: list = []
        watcher = Watcher(self._video.detector, self._video.classifier, source=item.path, camera=item.path,
                          detect_every=s.detect_every, state_config=s.state, min_face=max(s.min_face, 1.0))
        start, end = item.span or (0, item.weight)
        first = start - item.warmup
        first -= first % (s.stride * s.detect_every)  # the detector on the same frames as a whole-file run
        head: dict[str, list] = {}
        tail: dict[str, list] = {}
        tail_from = end - item.tail - s.stride * s.detect_every
        head_to = start + LINK_AHEAD_FRAMES if item.warmup else start

        def on_frame(frame, faces, _events) -> None:
            self._report(item, max(0, frame.index + 1 - start))
            if item.span is None or (watcher.frames - 1) % watcher.detect_every:
                return  # boxes are compared on detector frames only: the same in both segments
            rows = [[int(t), *(round(float(v), 1) for v in box),
                     watcher.tracks[int(t)].state if int(t) in watcher.tracks and frame.index < end else None]
                    for t, box in zip(faces.track_ids, faces.boxes) if t >= 0]
            if frame.index < head_to:
                head[str(frame.index)] = rows
            if item.tail and frame.index >= tail_from:
                tail[str(frame.index)] = rows

        # the events are kept for the driver (it commits them with the item's 'done' mark); each frame
        # reports progress and, for a segment, the boxes that link its track ids to its neighbours'
        event_sinks = [CallEventSink(events.append, "batch-events")]
        frame_sinks = [CallFrameSink(on_frame, "batch-progress")]
        if item.span is None:
            source = VideoFileSource(item.path, stride=s.stride)
            stats = run_watch(source, watcher, event_sinks=event_sinks, frame_sinks=frame_sinks)
            self._report(item, item.weight, force=True)
            return {"events": events, "frames": stats.frames, "video_s": stats.frames * s.stride / source.fps}
        source = SegmentSource(item.path, first, end + item.ahead, stride=s.stride)
        stats = run_watch(source, watcher, event_sinks=event_sinks, frame_sinks=frame_sinks)
        self._report(item, item.weight, force=True)
        # a segment owns the events raised on its own frames; those of the warm-up belong to the one before,
        # those after its end (processed only to link ids) to the one after.
        # Track ids are the segment's own here: the driver links them to the segment before (segments.py).
        owned = [e for e in events if e.frame is None or start <= e.frame < end]
        return {"events": owned, "frames": stats.frames, "video_s": (end - start) / source.fps,
                "head": head, "tail": tail}

    def _run_images(self, item: Item) -> dict[str, Any]:
        from ..faces import detection_record
        from ..images import read_image
        from ..pipeline import build_pipeline

        s = self.settings
        if self._images is None:
            self._images = build_pipeline(s.detector, min_score=s.min_score, min_face=0,  # detect's default
                                          threads=s.threads, classifier_model=s.classifier_model,
                                          input_size=s.input_size)
        records, failed = [], []
        for n, path in enumerate(item.images):
            self._report(item, n)
            t0 = time.perf_counter()
            try:
                image = read_image(path)
                faces = self._images(image)
            except MaskWatchError as exc:
                failed.append([path, str(exc)])
                continue
            ms = (time.perf_counter() - t0) * 1000
            records.append(detection_record(faces, path, image.shape[1], image.shape[0], ms))
        self._report(item, len(item.images), force=True)
        return {"records": records, "failed": failed}


def _maybe_crash(item: Item) -> None:
    spec = os.environ.get(CRASH_ENV)
    if not spec or ":" not in spec:
        return
    needle, marker_dir = spec.split(":", 1)
    if needle not in item.path:
        return
    marker = Path(marker_dir) / f"crashed-{item.key}"
    if not marker.exists():
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(str(os.getpid()))
        os._exit(1)


class SegmentSource:
    """Frames ``[first, end)`` of a video file, with their indices and ``video_time`` from the file's start."""

    live = False

    def __init__(self, path: str, first: int, end: int, stride: int = 1):
        import cv2

        from ..video import VideoFileSource

        probe = VideoFileSource(path)  # same checks and messages as watch
        self.fps, self.name = probe.fps, probe.name
        probe.close()
        self.capture = cv2.VideoCapture(path)
        self.first, self.end, self.stride = first, end, max(1, stride)
        if first:
            self.capture.set(cv2.CAP_PROP_POS_FRAMES, first)
            got = int(self.capture.get(cv2.CAP_PROP_POS_FRAMES))
            if got != first:  # an inexact seek: decode from the start instead
                self.capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
                for _ in range(first):
                    self.capture.grab()

    def __iter__(self):
        from ..video import Frame

        try:
            for index in range(self.first, self.end):
                ok, image = self.capture.read()
                if not ok:
                    return
                if (index - self.first) % self.stride == 0:
                    yield Frame(index, image, index / self.fps, time.time())
        finally:
            self.close()

    def close(self) -> None:
        self.capture.release()
