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
from ..images import find_images, read_image

#: how much longer than its own timeout an open may take before it is left behind (FFmpeg's interrupt
#: callback fires a few ms after the timeout; exiting while OpenCV is inside the open aborts the process)
OPEN_GRACE_S = 5.0

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
    """A live source dropped out (``lost``) or came back (``restored``); ``gap_s`` is the outage length."""

    kind: str  # "source_lost" | "source_restored"
    wall_time: float
    detail: str = ""
    gap_s: float | None = None


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
    exponential back-off and reports ``source_lost`` / ``source_restored``.

    ``opener(spec, timeout_s)`` returns a capture-like object (``isOpened``, ``read``, ``release``);
    tests pass their own.
    """

    live = True

    def __init__(self, spec: str | int, open_timeout_s: float = 10.0, backoff_s: float = 0.5,
                 max_backoff_s: float = 30.0, opener: Callable[[str | int, float], Any] = _open_capture,
                 name: str | None = None):
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
        self._openers: list[threading.Thread] = []  # opens that outlived their timeout, joined at close
        self._capture = self._open_first()
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
        worker.join(self.open_timeout_s)
        if not result and isinstance(self.spec, str):
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
        while not self._stop.is_set():
            ok, image = capture.read() if capture is not None else (False, None)
            if ok and image is not None:
                with self._lock:
                    if self._latest is not None:
                        self.dropped += 1
                    self._latest = Frame(index, image, None, time.time())
                    self._lock.notify_all()
                index += 1
                continue
            # lost: release, report, reconnect with back-off
            lost_at = time.time()
            if capture is not None:
                capture.release()
            self._report(SourceStatus("source_lost", lost_at, "read failed"))
            delay = self.backoff_s
            capture = None
            while not self._stop.is_set():
                if self._stop.wait(delay):
                    break
                self.reconnects += 1
                capture = self._open_with_timeout()
                if capture is not None:
                    self._report(SourceStatus("source_restored", time.time(), gap_s=time.time() - lost_at))
                    break
                delay = min(delay * 2, self.max_backoff_s)
        if capture is not None:
            capture.release()

    def _report(self, status: SourceStatus) -> None:
        with self._lock:
            self._statuses.append(status)
            self._lock.notify_all()

    def __iter__(self) -> Iterator[SourceItem]:
        try:
            while not self._stop.is_set():
                with self._lock:
                    self._lock.wait_for(lambda: self._latest is not None or self._statuses or self._stop.is_set(),
                                        timeout=0.5)
                    statuses, self._statuses = self._statuses, []
                    frame, self._latest = self._latest, None
                yield from statuses
                if frame is not None:
                    yield frame
        finally:
            self.close()

    def request_stop(self) -> None:
        """End the iteration within half a second (safe from a signal handler: no lock taken)."""
        self._stop.set()

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            self._lock.notify_all()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=self.open_timeout_s + OPEN_GRACE_S)  # it may be inside a reconnect
        for worker in self._openers:
            worker.join(timeout=self.open_timeout_s + OPEN_GRACE_S)


def open_source(spec: str, stride: int = 1, open_timeout_s: float = 10.0, fps: float = 25.0):
    """A source for SOURCE as the CLI takes it: a camera index ("0"), a stream URL, a folder or a video file."""
    if spec.isdigit():
        return LiveSource(int(spec), open_timeout_s=open_timeout_s, name=f"camera:{spec}")
    if spec.lower().startswith(STREAM_PREFIXES):
        return LiveSource(spec, open_timeout_s=open_timeout_s)
    path = Path(spec)
    if path.is_dir():
        return FolderSource(path, fps=fps, stride=stride)
    return VideoFileSource(path, stride=stride)
