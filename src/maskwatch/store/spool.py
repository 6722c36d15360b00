"""The on-disk spool: events the database could not take, kept as JSON lines until it can.

One append-only file per database URL, by default in the user data directory (``spool/`` there;
``$MASKWATCH_SPOOL`` or ``--spool`` name another folder or file: put it on another disk than the
database when that disk may fill). Every line is one event with its ``uid``; the event store writes
them back in order when the database accepts writes again (and at the next start), skipping uids it
already holds, so a crash between the commit and the truncation writes nothing twice.

Bounded by size and count (``SpoolConfig``); a write that fails half-way is cut back to the last whole
line. A file lock (``flock``) keeps two processes sharing a database from appending while the other
replays and empties the file.
"""

from __future__ import annotations

import hashlib
import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from pydantic import BaseModel, Field

#: the bounds used when nothing else is configured
DEFAULT_MAX_BYTES = 64 * 2**20
DEFAULT_MAX_EVENTS = 100_000


class SpoolConfig(BaseModel):
    """Where failed event writes are kept and how much of them (``path``: a ``.jsonl`` file or a folder;
    None: ``$MASKWATCH_SPOOL`` or ``spool/`` in the user data directory)."""

    path: Path | None = None
    max_bytes: int = Field(DEFAULT_MAX_BYTES, ge=1024)
    max_events: int = Field(DEFAULT_MAX_EVENTS, ge=1)


def spool_path(db_url: str, where: Path | None = None) -> Path:
    """The spool file for ``db_url``: ``where`` itself when it names a ``.jsonl`` file, else a file named
    after the URL's hash in ``where``, ``$MASKWATCH_SPOOL`` or the user data directory's ``spool/``."""
    from ..settings import get_settings

    settings = get_settings()
    if where is None:
        where = settings.spool_dir
    if where is not None and where.suffix == ".jsonl":
        return where.expanduser()
    if where is None:
        where = settings.data_dir / "spool"
    return where.expanduser() / f"events-{hashlib.sha256(db_url.encode()).hexdigest()[:16]}.jsonl"


class Spool:
    """Append-only JSON lines, bounded by ``max_bytes`` and ``max_events``. Nothing here raises on a
    full or unwritable disk: :meth:`append` answers False and ``last_error`` says why."""

    def __init__(self, path: Path, max_bytes: int = DEFAULT_MAX_BYTES, max_events: int = DEFAULT_MAX_EVENTS):
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.max_events = max_events
        self.last_error: str | None = None
        self.count, self.size = self._scan()

    def _scan(self) -> tuple[int, int]:
        try:
            with open(self.path, "rb") as fh:
                data = fh.read()
        except OSError:
            return 0, 0
        return data.count(b"\n"), len(data)

    @contextmanager
    def _locked(self, mode: str) -> Iterator[Any]:
        handle = open(self.path, mode)
        try:
            try:
                import fcntl

                fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            except ImportError:  # Windows: one writer per database is assumed
                pass
            yield handle
        finally:
            handle.close()

    def append(self, record: dict[str, Any]) -> bool:
        """Add one event (flushed and fsynced). False when the spool is full or cannot be written."""
        line = (json.dumps(record, separators=(",", ":")) + "\n").encode()
        if self.count >= self.max_events or self.size + len(line) > self.max_bytes:
            self.last_error = f"spool full ({self.count} events, {self.size} bytes; limits {self.max_events}, {self.max_bytes})"
            return False
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._locked("ab") as fh:
                end = fh.seek(0, os.SEEK_END)
                try:
                    fh.write(line)
                    fh.flush()
                    os.fsync(fh.fileno())
                except OSError:
                    fh.truncate(end)  # no half line left for the next one to run into
                    raise
            self.count, self.size = self.count + 1, end + len(line)
        except OSError as exc:
            self.last_error = f"{self.path}: {exc.strerror or exc}"
            return False
        return True

    def replay(self, write: Any) -> int:
        """Hand every spooled record, in order, to ``write(records)``; when it returns, empty the file.
        Returns how many records there were (0 when there is no spool). ``write`` raising keeps the file."""
        try:
            if self.path.stat().st_size == 0:
                self.count = self.size = 0
                return 0
        except OSError:
            self.count = self.size = 0
            return 0
        with self._locked("r+b") as fh:
            records = []
            for raw in fh.read().splitlines():
                try:
                    records.append(json.loads(raw))
                except ValueError:
                    continue  # a torn line from a crash mid-write: the event was never acknowledged
            if records:
                write(records)
            fh.seek(0)
            fh.truncate()
        self.count = self.size = 0  # the empty file stays: unlinking it could lose a line another process appends
        return len(records)
