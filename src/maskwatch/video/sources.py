"""Frame sources: video files, folders of frames, webcams and network streams.

Every source is iterated the same way: it yields :class:`Frame` objects and, for live sources,
:class:`SourceStatus` markers when the camera drops out and comes back.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Union

import cv2
import numpy as np

from ..errors import InputError
from ..event_types import EventType
from ..images import find_images, read_image

#: how much longer than its own timeout an open may take before it is left behind (FFmpeg's interrupt
#: callback fires a few ms after the timeout; exiting while OpenCV is inside the open aborts the process)
OPEN_GRACE_S = 5.0

#: opens that were still inside FFmpeg when their source closed after a stop was asked for (SIGTERM must be
#: quick): a normal interpreter exit while one runs aborts the process ("terminate called"), see stray_opens
_STRAY_OPENS: list[threading.Thread] = []


def stray_opens() -> bool:
    """Whether an abandoned stream open is still running: the process must then leave with ``os._exit``
    (after flushing its output) rather than a normal exit, which would abort it inside FFmpeg."""
    return any(t.is_alive() for t in _STRAY_OPENS)


STREAM_PREFIXES = ("rtsp://", "rtsps://", "http://", "https://", "rtmp://", "udp://", "tcp://")


@dataclass
class Frame:
    """One decoded frame. ``index`` counts frames of the source (stride-skipped ones included);
    ``video_time`` is seconds from the start for files and folders, None for live sources."""

    index: int
    image: np.ndarray
    video_time: float | None
    wall_time: float


@dataclass
class SourceStatus:
    """A live source dropped out (``source_lost``) or came back (``source_restored``).

    ``wall_time``: for ``source_lost`` when the gap was noticed (the last frame + the source's
    ``lost_after_s``), for ``source_restored`` when the steady flow of frames began again; ``gap_s``
    (restored only) is the real outage: from the last frame before it to that first frame after it."""

    kind: EventType  # SOURCE_LOST or SOURCE_RESTORED
    wall_time: float
    detail: str = ""
    gap_s: float | None = None


class OutageMonitor:
    """Decides, from the times frames arrive, when a live source is lost and when it is back: one
    ``source_lost`` and one ``source_restored`` per outage however much the camera flaps.

    Lost: no frame for ``lost_after_s`` (whether reads fail, block, or the stream opened and sends
    nothing); reported at once, dated the last frame + ``lost_after_s``. Restored: after a loss, frames
    have flowed for ``restore_after_s`` with no pause longer than ``lost_after_s / 2`` (a pause starts
    the count again, so a camera that sends a few frames and dies again stays lost). A pause shorter
    than ``lost_after_s`` is no outage and raises nothing. Times are ``time.time()`` seconds.
    """

    def __init__(self, lost_after_s: float = 2.0, restore_after_s: float = 2.0, started: float | None = None):
        self.lost_after_s = lost_after_s
        self.restore_after_s = restore_after_s
        self.last_frame = time.time() if started is None else started  # or when the source opened
        self.seen_frame = False
        self.lost = False
        self.reason = ""
        self._lost_from = 0.0
        self._flow_start: float | None = None

    def frame(self, t: float) -> list[SourceStatus]:
        """A frame arrived at ``t``; the statuses it completes (a late-noticed loss, a restore)."""
        out = self.check(t)
        if self.lost:
            if self._flow_start is None or t - self.last_frame > self.lost_after_s / 2:
                self._flow_start = t
            if t - self._flow_start >= self.restore_after_s:
                out.append(SourceStatus(EventType.SOURCE_RESTORED, self._flow_start, gap_s=self._flow_start - self._lost_from))
                self.lost, self._flow_start = False, None
        if not self.lost:
            self.reason = ""
        self.last_frame, self.seen_frame = t, True
        return out

    def check(self, now: float) -> list[SourceStatus]:
        """The loss, if ``now`` is ``lost_after_s`` past the last frame and it was not reported yet."""
        if self.lost or now - self.last_frame <= self.lost_after_s:
            return []
        self.lost, self._lost_from, self._flow_start = True, self.last_frame, None
        what = f"no frames for {self.lost_after_s:g} s" if self.seen_frame else \
            f"no frame for {self.lost_after_s:g} s since the stream opened"
        return [SourceStatus(EventType.SOURCE_LOST, self.last_frame + self.lost_after_s,
                             f"{what} ({self.reason})" if self.reason else what)]


SourceItem = Union[Frame, SourceStatus]


class VideoFileSource:
    """A video file read with OpenCV (FFmpeg backend); every frame, or every ``stride``-th."""

    live = False

    def __init__(self, path: str | Path, stride: int = 1):
        self.path = Path(path)
        self.name = str(path)
        self.stride = max(1, int(stride))
        if not self.path.is_file():
            raise InputError(path, "no such video file")
        if self.path.stat().st_size == 0:
            raise InputError(path, "empty file (0 bytes)")
        self.capture = cv2.VideoCapture(str(self.path))
        ok, first = (self.capture.read() if self.capture.isOpened() else (False, None))
        if not ok or first is None:
            self.capture.release()
            raise InputError(path, "cannot decode video (not a video, or a codec OpenCV/FFmpeg cannot read)")
        self._first = first
        fps = self.capture.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and 1 <= fps <= 1000 else 25.0
        count = int(self.capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.frame_count = count if count > 0 else None

    def __iter__(self) -> Iterator[SourceItem]:
        index, image = 0, self._first
        try:
            while image is not None:
                yield Frame(index, image, index / self.fps, time.time())
                for _ in range(self.stride - 1):
                    if not self.capture.grab():
                        return
                    index += 1
                ok, image = self.capture.read()
                index += 1
                if not ok:
                    return
        finally:
            self.close()

    def close(self) -> None:
        self.capture.release()


class FolderSource:
    """A folder of still frames in sorted name order, played at ``fps``."""

    live = False

    def __init__(self, folder: str | Path, fps: float = 25.0, stride: int = 1):
        self.name = str(folder)
        self.fps = fps
        self.stride = max(1, int(stride))
        self.files = [f.path for f in find_images([Path(folder)]) if f.error is None]
        if not self.files:
            raise InputError(folder, "folder holds no readable images")
        self.frame_count = len(self.files)

    def __iter__(self) -> Iterator[SourceItem]:
        for index in range(0, len(self.files), self.stride):
            try:
                image = read_image(self.files[index])
            except InputError:
                continue  # one unreadable frame does not end the run
            yield Frame(index, image, index / self.fps, time.time())

    def close(self) -> None:
        pass


def _open_capture(spec: str | int, open_timeout_s: float) -> Any:
    capture = cv2.VideoCapture()
    params: list[int] = []
    if isinstance(spec, str):
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(open_timeout_s * 1000),
                  cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(max(open_timeout_s, 5) * 1000)]
        capture.open(spec, cv2.CAP_FFMPEG, params)
    else:
        capture.open(spec)
    return capture


class LiveSource:
    """A webcam or network stream read on a background thread that keeps only the newest frame.

    The consumer always gets the latest frame (frames it was too slow for are dropped and counted),
    so processing never falls behind real time. When reading fails the reader reconnects with
    exponential back-off (reset once frames flow steadily again); an :class:`OutageMonitor`
    (``lost_after_s``, ``restore_after_s``) turns the arrival times of frames into one
    ``source_lost`` / ``source_restored`` pair per outage.

    ``opener(spec, timeout_s)`` returns a capture-like object (``isOpened``, ``read``, ``release``);
    tests pass their own.
    """

    live = True

    def __init__(self, spec: str | int, open_timeout_s: float = 10.0, backoff_s: float = 0.5,
                 max_backoff_s: float = 30.0, opener: Callable[[str | int, float], Any] = _open_capture,
                 name: str | None = None, lost_after_s: float = 2.0, restore_after_s: float = 2.0):
        self.spec = spec
        from ..redact import redact

        self.name = name or redact(str(spec))  # the name is printed, stored and served: no password in it
        self.open_timeout_s = open_timeout_s
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.opener = opener
        self.fps = None
        self.frame_count = None
        self.dropped = 0
        self.reconnects = 0
        self._lock = threading.Condition()
        self._latest: Frame | None = None
        self._statuses: list[SourceStatus] = []
        self._stop = threading.Event()
        self._stop_requested = False
        self._openers: list[threading.Thread] = []  # opens that outlived their timeout, joined at close
        self._capture = self._open_first()
        self.outage = OutageMonitor(lost_after_s, restore_after_s)
        self._thread = threading.Thread(target=self._read_loop, name="maskwatch-reader", daemon=True)
        self._thread.start()

    def _open_with_timeout(self) -> Any | None:
        """Open on a helper thread so a backend that ignores its timeout cannot hang us. A server that
        accepts the connection and never answers is cut off by FFmpeg's own timeout just after
        ``open_timeout_s``: the open is awaited that long plus ``OPEN_GRACE_S`` so that it has returned
        before the process may exit (leaving OpenCV mid-call at exit aborts: "terminate called")."""
        result: list[Any] = []
        worker = threading.Thread(target=lambda: result.append(self.opener(self.spec, self.open_timeout_s)),
                                  name="maskwatch-open", daemon=True)
        worker.start()
        deadline = time.monotonic() + self.open_timeout_s
        while worker.is_alive() and time.monotonic() < deadline:  # stop() is honoured while a stream opens
            if self._stop.wait(min(0.1, max(0.0, deadline - time.monotonic()))):
                break
        if not result and isinstance(self.spec, str) and not self._stop.is_set():
            worker.join(OPEN_GRACE_S)
        if not result:
            if worker.is_alive():
                self._openers.append(worker)
            return None
        capture = result[0]
        if capture is None or not capture.isOpened():
            if capture is not None:
                capture.release()
            return None
        return capture

    def _open_first(self) -> Any:
        capture = self._open_with_timeout()
        if capture is None:
            for worker in self._openers:
                worker.join(timeout=OPEN_GRACE_S)
            raise InputError(self.name, f"stream did not open within {self.open_timeout_s:g} s "
                                        "(check the address, credentials, network or camera index)")
        return capture

    def _read_loop(self) -> None:
        index = 0
        capture = self._capture
        delay = self.backoff_s
        while not self._stop.is_set():
            ok, image = capture.read() if capture is not None else (False, None)
            if ok and image is not None:
                now = time.time()
                with self._lock:
                    if self._latest is not None:
                        self.dropped += 1
                    self._latest = Frame(index, image, None, now)
                    self._statuses += self.outage.frame(now)
                    if not self.outage.lost:
                        delay = self.backoff_s
                    self._lock.notify_all()
                index += 1
                continue
            # read failed: release and reconnect with back-off; the outage monitor decides what to report
            if capture is not None:
                capture.release()
            capture = None
            with self._lock:
                self.outage.reason = "read failed"
            while not self._stop.is_set():
                if self._stop.wait(delay):
                    break
                self.reconnects += 1
                capture = self._open_with_timeout()
                delay = min(delay * 2, self.max_backoff_s)
                if capture is not None:
                    with self._lock:
                        self.outage.reason = "reopened, no frames"
                    break
                with self._lock:
                    self.outage.reason = "cannot reconnect"
        if capture is not None:
            capture.release()

    def __iter__(self) -> Iterator[SourceItem]:
        try:
            while not self._stop.is_set():
                with self._lock:
                    wait = self.outage.last_frame + self.outage.lost_after_s - time.time()
                    self._lock.wait_for(lambda: self._latest is not None or self._statuses or self._stop.is_set(),
                                        timeout=min(max(wait, 0.05), 0.5))
                    self._statuses += self.outage.check(time.time())
                    statuses, self._statuses = self._statuses, []
                    frame, self._latest = self._latest, None
                yield from statuses
                if frame is not None:
                    yield frame
        finally:
            self.close()

    def request_stop(self) -> None:
        """End the iteration within half a second (safe from a signal handler: no lock taken)."""
        self._stop_requested = True
        self._stop.set()

    def stop(self) -> None:
        """Ask the iteration to end after the frame in hand, and the reader to stop (re)connecting.
        Thread-safe: the venue service calls it when its camera process gets SIGTERM."""
        self.request_stop()
        with self._lock:
            self._lock.notify_all()

    def close(self) -> None:
        asked = self._stop_requested  # a stop asked for (SIGTERM) must be quick; a plain close may wait
        self._stop.set()
        with self._lock:
            self._lock.notify_all()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=self.open_timeout_s + OPEN_GRACE_S)  # it may be inside a reconnect
        for worker in self._openers:  # an open still inside FFmpeg: leaving it at exit aborts the process
            worker.join(timeout=0.5 if asked else self.open_timeout_s + OPEN_GRACE_S)
            if worker.is_alive():
                _STRAY_OPENS.append(worker)


def open_source(spec: str, stride: int = 1, open_timeout_s: float = 10.0, fps: float = 25.0,
                lost_after_s: float = 2.0, restore_after_s: float = 2.0):
    """A source for SOURCE as the CLI takes it: a camera index ("0"), a stream URL, a folder or a video file.
    ``lost_after_s`` / ``restore_after_s``: the outage debounce of live sources (:class:`OutageMonitor`)."""
    outage = {"lost_after_s": lost_after_s, "restore_after_s": restore_after_s}
    if spec.isdigit():
        return LiveSource(int(spec), open_timeout_s=open_timeout_s, name=f"camera:{spec}", **outage)
    if spec.lower().startswith(STREAM_PREFIXES):
        return LiveSource(spec, open_timeout_s=open_timeout_s, **outage)
    path = Path(spec)
    if path.is_dir():
        return FolderSource(path, fps=fps, stride=stride)
    return VideoFileSource(path, stride=stride)
