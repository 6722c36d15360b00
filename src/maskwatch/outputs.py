"""Outputs that cannot be written: checked before any work, and named in one line when a write fails.

The services raise :class:`OutputError`; the CLI prints it as one line and exits 1 (a bad input is 2).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Callable

from .errors import MaskWatchError


class OutputError(MaskWatchError):
    """An output (file or folder) cannot be written: read-only, no permission, full disk."""


def check_writable_dir(path: str | os.PathLike[str], what: str = "output") -> Path:
    """The folder ``path`` (made if missing) if it can take a new file, else :class:`OutputError` naming it
    (read-only filesystem, no permission, a file in the way, no space or no inodes left)."""
    folder = Path(path).expanduser()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".maskwatch-write-test-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputError(f"{folder}: cannot write {what} ({exc.strerror or exc})") from None
    return folder


class NamedWrites:
    """A text file handle whose failing write, flush or close (a full disk, /dev/full) raises what
    ``error(message, first)`` returns (default: :class:`OutputError`) with one line naming ``path``, not
    the bare "No space left on device". ``first`` is False for the failures after the first (the close
    after a failed write fails again): the caller said it already."""

    def __init__(self, path: Any, handle: Any, error: Callable[[str, bool], BaseException] | None = None):
        self.path, self.handle = path, handle
        self.error = error or (lambda message, first: OutputError(message))
        self.failed = False

    def _failed(self, exc: OSError) -> BaseException:
        first, self.failed = not self.failed, True
        return self.error(f"{self.path}: cannot write ({exc.strerror or exc})", first)

    def write(self, text: str) -> int:
        try:
            return int(self.handle.write(text))
        except OSError as exc:
            raise self._failed(exc) from None

    def flush(self) -> None:
        try:
            self.handle.flush()
        except OSError as exc:
            raise self._failed(exc) from None

    def close(self) -> None:
        try:
            self.handle.close()
        except OSError as exc:
            if not self.failed:
                raise self._failed(exc) from None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.handle, name)
