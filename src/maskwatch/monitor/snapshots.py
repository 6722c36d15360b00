"""Event snapshots: none, the frame blurred except the face concerned, or the full frame; with retention."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:
    from ..store.events_db import Event
    from .sinks import EventContext
from ..errors import InputError
from ..images import write_jpeg

SNAPSHOT_MODES = ("none", "blurred", "full")


def default_snapshot_dir() -> Path:
    """Where ``watch``, ``serve`` and the venue service keep snapshots unless told otherwise."""
    from ..settings import get_settings

    return get_settings().snapshot_dir


def blur_except(image: np.ndarray, box: np.ndarray, margin: float = 0.2) -> np.ndarray:
    """The frame heavily blurred (faces and bystanders unrecognisable) except ``box`` (+``margin``)."""
    h, w = image.shape[:2]
    small = cv2.resize(image, (max(1, w // 16), max(1, h // 16)), interpolation=cv2.INTER_AREA)
    out = cv2.GaussianBlur(cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR), (0, 0), 3)
    x1, y1, x2, y2 = box
    mx, my = (x2 - x1) * margin, (y2 - y1) * margin
    x1, y1 = int(max(0, x1 - mx)), int(max(0, y1 - my))
    x2, y2 = int(min(w, x2 + mx)), int(min(h, y2 + my))
    out[y1:y2, x1:x2] = image[y1:y2, x1:x2]
    return out


class SnapshotWriter:
    """Writes JPEG snapshots into ``directory``; keeps at most ``max_files`` and none older than
    ``max_age_days``. A failed write (full disk, no permission) skips the snapshot and counts it in
    ``skipped``; the event is stored regardless."""

    def __init__(self, directory: str | Path, mode: str = "blurred", max_files: int | None = 1000,
                 max_age_days: float | None = 30.0, quality: int = 85):
        if mode not in SNAPSHOT_MODES:
            raise ValueError(f"snapshot mode must be one of {SNAPSHOT_MODES}, not {mode!r}")
        self.directory = Path(directory)
        self.mode = mode
        self.max_files = max_files
        self.max_age_days = max_age_days
        self.quality = quality
        self.saved = 0
        self.skipped = 0
        self.deleted = 0

    def save(self, image: np.ndarray, box: np.ndarray | None, name: str) -> str | None:
        if self.mode == "none":
            return None
        picture = blur_except(image, box) if self.mode == "blurred" and box is not None else image
        if self.mode == "blurred" and box is None:
            picture = blur_except(image, np.zeros(4))
        path = self.directory / f"{name}.jpg"
        try:
            write_jpeg(path, picture, self.quality)
        except InputError:  # not encodable, or not written (full disk, no permission)
            self.skipped += 1
            try:
                path.unlink(missing_ok=True)
            except OSError:
                pass
            return None
        self.saved += 1
        self.enforce_retention()
        return str(path)

    def enforce_retention(self) -> None:
        try:
            files = sorted(self.directory.glob("*.jpg"), key=lambda p: p.stat().st_mtime)
        except OSError:
            return
        doomed: list[Path] = []
        if self.max_age_days is not None:
            cutoff = time.time() - self.max_age_days * 86400
            doomed = [p for p in files if p.stat().st_mtime < cutoff]
            files = [p for p in files if p not in doomed]
        if self.max_files is not None and len(files) > self.max_files:
            doomed += files[: len(files) - self.max_files]
        for path in doomed:
            try:
                path.unlink()
                self.deleted += 1
            except OSError:
                pass


class SnapshotSink:
    """An event sink that fills ``event.snapshot`` from the frame the event was raised on (the engine hands
    it along, see :class:`~maskwatch.monitor.EventContext`); events without a frame (a lost or restored
    source) get none. Put it before the store sink: the store keeps the path. A failed write leaves
    ``event.snapshot`` None (counted in ``writer.skipped``); the event goes on regardless."""

    name = "snapshots"
    takes_context = True

    def __init__(self, writer: SnapshotWriter):
        self.writer = writer

    def handle(self, event: "Event", context: "EventContext") -> None:
        if context.frame is None:
            return
        stamp = event.time.strftime("%Y%m%dT%H%M%S%f")
        event.snapshot = self.writer.save(context.frame.image, None if event.box is None else np.asarray(event.box),
                                          f"{stamp}_{event.type}_t{event.track_id}")

    def close(self) -> None:
        pass
