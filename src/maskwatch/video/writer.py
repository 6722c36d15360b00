"""Annotated output video."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..errors import InputError

_FOURCC = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "MJPG"}


class VideoWriter:
    """Opens lazily on the first frame (size known then); ``close()`` finalises the file, and is
    what the monitor calls on Ctrl-C too."""

    def __init__(self, path: str | Path, fps: float = 25.0):
        self.path = Path(path)
        self.fps = fps
        self.frames = 0
        self._writer: cv2.VideoWriter | None = None
        if self.path.suffix.lower() not in _FOURCC:
            raise InputError(path, f"unsupported output video type (use one of {', '.join(sorted(_FOURCC))})")

    def write(self, image: np.ndarray) -> None:
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            h, w = image.shape[:2]
            fourcc = cv2.VideoWriter_fourcc(*_FOURCC[self.path.suffix.lower()])
            self._writer = cv2.VideoWriter(str(self.path), fourcc, self.fps, (w, h))
            if not self._writer.isOpened():
                raise InputError(self.path, "cannot open the output video for writing")
        self._writer.write(image)
        self.frames += 1

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
