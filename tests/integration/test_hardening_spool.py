"""Issue 13: events written while the database's disk is really full go to the on-disk spool and reach
the database exactly once when it takes writes again (later in the run or at the next start).

The full disk is a 2 MiB tmpfs the test mounts (we run as root); where mounting is not permitted it
is a real file-size limit (RLIMIT_FSIZE) instead, so the test never skips.
"""

from __future__ import annotations

import contextlib
import os
import re
import resource
import signal
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from maskwatch.store import Event, EventStore, SpoolConfig
from maskwatch.store.spool import Spool

REPO = Path(__file__).resolve().parents[2]
#: free space left on the full disk: SQLite can still open the database (its 32 KiB -shm), not write to it
LEAVE_BYTES = 40_000
#: the fallback: a file-size limit just above SQLite's 32 KiB -shm (the WAL passes it after a commit or two)
FSIZE_LIMIT = 36_864


class SmallDisk:
    """A folder on a small filesystem that :meth:`fill` makes full and :meth:`free` frees."""

    def __init__(self, root: Path):
        self.dir = root / "disk"
        self.dir.mkdir()
        self.mounted = False
        if os.environ.get("MASKWATCH_TEST_NO_MOUNT") != "1":
            done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2M", "tmpfs", str(self.dir)],
                                  capture_output=True)
            self.mounted = done.returncode == 0
        self._filler = self.dir / "filler"
        self._limit: tuple[int, int] | None = None

    def fill(self) -> None:
        if self.mounted:
            fd = os.open(self._filler, os.O_WRONLY | os.O_CREAT)
            size = 0
            with contextlib.suppress(OSError):
                while True:
                    size += os.write(fd, b"\1" * 65536)
            os.ftruncate(fd, max(size - LEAVE_BYTES, 0))
            os.close(fd)
        else:  # no mount: no file of this process may grow past FSIZE_LIMIT (the database soon needs more)
            self._limit = resource.getrlimit(resource.RLIMIT_FSIZE)
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (FSIZE_LIMIT, self._limit[1]))

    def child_limit(self):  # for subprocess preexec_fn in the fallback
        if self.mounted:
            return None
        limit = FSIZE_LIMIT

        def apply() -> None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))

        return apply

    def free(self) -> None:
        if self._filler.exists():
            self._filler.unlink()
        if self._limit is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, self._limit)
            signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
            self._limit = None

    def close(self) -> None:
        self.free()
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.dir)], capture_output=True)


@pytest.fixture
def disk(tmp_path):
    d = SmallDisk(tmp_path)
    yield d
    d.close()


def _ev(i: int) -> Event:
    return Event("mask_removed", datetime(2026, 1, 1, tzinfo=timezone.utc) + timedelta(seconds=i), "door", track_id=i)


def _spool(tmp_path: Path, **limits) -> SpoolConfig:
    return SpoolConfig(path=tmp_path / "spool" / "events.jsonl", **limits)  # off the full disk


def test_full_disk_events_are_spooled_then_written_back_once_in_order(tmp_path, disk, capsys):
    db = str(disk.dir / "events.db")
    EventStore(db, spool=None).close()
    disk.fill()
    try:
        store = EventStore(db, spool=_spool(tmp_path), retry_interval_s=0)
        for i in range(5):
            store.add(_ev(i))
        assert store.lost == 0 and store.spooled + store.stored == 5 and store.spooled >= 3
        assert store.stored == 0 or not disk.mounted  # the file-size fallback may take a commit or two
        assert len((tmp_path / "spool" / "events.jsonl").read_text().splitlines()) == store.spooled
        err = capsys.readouterr().err
        assert err.count("cannot store events") == 1 and "spooling them to" in err  # one loud line, at once
    finally:
        disk.free()
    assert store.add(_ev(5))
    assert "writable again: " in capsys.readouterr().err
    assert (store.spooled, store.lost, store.stored) == (0, 0, 6)
    rows = store.query()
    assert [e.track_id for e in rows] == list(range(6)) and len({e.uid for e in rows}) == 6
    store.close()
    assert (tmp_path / "spool" / "events.jsonl").read_text() == ""


def test_spool_left_by_a_run_is_written_at_the_next_start_and_never_twice(tmp_path, disk, capsys):
    db = str(disk.dir / "events.db")
    EventStore(db, spool=None).close()
    disk.fill()
    try:
        store = EventStore(db, spool=_spool(tmp_path), retry_interval_s=0, close_retries=1, retry_wait_s=0)
        for i in range(3):
            store.add(_ev(i))
        store.close()
        assert store.lost == 0 and store.spooled + store.stored == 3 and store.spooled >= 1
        assert f"{store.spooled} events spooled" in capsys.readouterr().err
    finally:
        disk.free()
    spooled = (tmp_path / "spool" / "events.jsonl").read_text()
    store = EventStore(db, spool=_spool(tmp_path))  # next start
    assert [e.track_id for e in store.query()] == [0, 1, 2]
    assert "spooled events from" in capsys.readouterr().err
    store.close()
    # a crash after the commit but before the spool was emptied: the same lines again are skipped
    (tmp_path / "spool" / "events.jsonl").write_text(spooled)
    store = EventStore(db, spool=_spool(tmp_path))
    assert [e.track_id for e in store.query()] == [0, 1, 2]
    store.close()


def test_spool_is_bounded_then_memory_then_lost_and_counted(tmp_path, disk, capsys):
    db = str(disk.dir / "events.db")
    EventStore(db, spool=None).close()
    disk.fill()
    try:
        store = EventStore(db, spool=_spool(tmp_path, max_events=2), max_pending=2, retry_interval_s=0,
                           close_retries=0)
        for i in range(6):
            store.add(_ev(i))
        first = store.stored  # 0 on the tmpfs; the file-size fallback may take a commit or two
        assert (store.spooled, len(store.pending), store.lost) == (2, 2, 2 - first)
        store.close()
        assert (store.spooled, store.lost) == (2, 4 - first) and store.unsaved == 6 - first
        assert f"{4 - first} events lost" in capsys.readouterr().err
    finally:
        disk.free()
    store = EventStore(db, spool=_spool(tmp_path))
    assert [e.track_id for e in store.query()] == list(range(first + 2))  # those stored, then the two the spool held
    store.close()


def test_torn_last_line_and_byte_limit(tmp_path):
    spool = Spool(tmp_path / "s.jsonl", max_bytes=2048, max_events=100)
    assert spool.append({"uid": "a", "n": 1})
    with open(tmp_path / "s.jsonl", "ab") as fh:
        fh.write(b'{"uid": "b", "n"')  # a crash mid-write
    seen = []
    assert Spool(tmp_path / "s.jsonl").replay(seen.extend) == 1 and seen == [{"uid": "a", "n": 1}]
    results = [spool.append({"uid": str(i), "pad": "x" * 200}) for i in range(20)]
    assert results[0] and not results[-1]
    assert spool.size <= 2048 and "spool full" in spool.last_error


def test_database_made_before_the_spool_gets_its_uid_column(tmp_path):
    import sqlite3

    db = tmp_path / "old.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, type VARCHAR(32), time DATETIME, video_time FLOAT, "
                "frame INTEGER, track_id INTEGER, source VARCHAR(1024), camera VARCHAR(256), state_before VARCHAR(16), "
                "state_after VARCHAR(16), confidence FLOAT, snapshot VARCHAR(1024), box JSON, extra JSON)")
    con.execute("INSERT INTO events (type, time, source) VALUES ('left', '2026-01-01 00:00:00', 'door')")
    con.commit()
    con.close()
    store = EventStore(str(db), spool=None)
    assert store.add(_ev(1))
    assert [(e.type, e.uid is None) for e in store.query()] == [("left", True), ("mask_removed", False)]
    store.close()


@pytest.mark.slow
def test_watch_on_a_full_disk_spools_reports_and_nothing_is_lost(tmp_path, disk, sprites_for_watch):
    """The real command: its database on a full filesystem. The summary counts stored/spooled/lost, the exit
    status is 4 (spooled, none lost) or 3 (lost); once the disk has room every event is stored exactly once."""
    from tests.helpers.scenes import swap_scene, write_colour_key_onnx

    video = swap_scene(sprites_for_watch).write(tmp_path / "door.avi")
    model = write_colour_key_onnx(tmp_path / "ck.onnx")
    db, other_db = str(disk.dir / "events.db"), str(disk.dir / "other.db")
    EventStore(db, spool=None).close()
    EventStore(other_db, spool=None).close()
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))

    def watch(*extra: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "maskwatch", "watch", str(video), "--classifier-model", str(model),
                               "--snapshots", "none", "--detect-every", "3", "--input-size", "320",
                               "--threads", "2", *extra],
                              capture_output=True, text=True, timeout=180, env=env, preexec_fn=disk.child_limit())

    disk.fill()
    try:
        run = watch("--db", db, "--spool", str(tmp_path / "spool"))
        lost_run = watch("--db", other_db, "--spool", str(tmp_path / "small-spool"), "--spool-max-events", "1")
    finally:
        disk.free()
    assert "Traceback" not in run.stderr + lost_run.stderr
    summary = re.search(r"150 frames, .* 4 events \((\d+) stored, (\d+) spooled in .*, 0 lost\)", run.stderr)
    assert summary and run.returncode == 4, run.stderr  # 4: spooled, none lost
    stored_now, spooled = map(int, summary.groups())
    assert stored_now + spooled == 4 and (stored_now == 0 or not disk.mounted)
    assert run.stderr.count("cannot store events") == 1 and "spooling them to" in run.stderr
    summary = re.search(r"4 events \((\d+) stored, 1 spooled in .*, (\d+) lost\)", lost_run.stderr)
    assert summary and lost_run.returncode == 3, lost_run.stderr  # 3: some lost
    assert sum(map(int, summary.groups())) == 3 and f"error: {summary.group(2)} events lost" in lost_run.stderr

    store = EventStore(db, spool=SpoolConfig(path=tmp_path / "spool"))  # the next start writes the spool back
    stored = store.query()
    assert sorted(e.type for e in stored) == ["entered_unmasked", "mask_removed", "mask_removed", "mask_restored"]
    assert len({e.uid for e in stored}) == 4
    store.close()
    assert len(EventStore(db, spool=SpoolConfig(path=tmp_path / "spool")).query()) == 4  # again: nothing twice


@pytest.fixture(scope="module")
def sprites_for_watch(shared_dir):
    from tests.helpers.scenes import share_sprites

    return share_sprites(shared_dir)


def test_spool_write_back_and_camera_counts_on_postgresql(postgres_url, tmp_path, monkeypatch):
    from sqlalchemy.exc import OperationalError
    from sqlalchemy.orm import Session

    store = EventStore(postgres_url, spool=_spool(tmp_path), retry_interval_s=0)
    real = Session.commit
    monkeypatch.setattr(Session, "commit", lambda s: (_ for _ in ()).throw(OperationalError("INSERT", {}, Exception("gone"))))
    store.add(_ev(0))
    assert store.spooled == 1
    monkeypatch.setattr(Session, "commit", real)
    for i, camera in enumerate(["a", "a", "b", "c"], start=1):
        ev = _ev(i)
        ev.camera = camera
        store.add(ev)
    assert [e.track_id for e in store.query()] == [0, 1, 2, 3, 4] and store.unsaved == 0
    assert store.camera_counts(datetime(2025, 1, 1, tzinfo=timezone.utc), 2) == ([("a", 2), ("b", 1)], 2, 4)
    store.close()


def _left_spool(path: Path, n: int) -> None:
    """A spool as a `watch --spool PATH` run leaves it when its database could not take ``n`` events."""
    from maskwatch.store.events_db import _record_from_event

    spool = Spool(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        ev = _ev(i)
        ev.uid = f"left-{i}"
        assert spool.append(_record_from_event(ev, "earlier-run"))


def test_events_and_serve_write_back_the_spool_watch_was_given(tmp_path):
    """`events --spool` / `serve --spool` (create_app's spool) replay a spool other than the default one."""
    import json

    from fastapi.testclient import TestClient
    from typer.testing import CliRunner

    from maskwatch.cli import app
    from maskwatch.server import create_app
    from tests.integration.test_server import FakePipeline

    db = str(tmp_path / "events.db")
    spool = tmp_path / "elsewhere" / "watch-spool.jsonl"
    _left_spool(spool, 3)
    runner = CliRunner()
    plain = runner.invoke(app, ["events", "--db", db, "-f", "json"])
    assert plain.exit_code == 0 and json.loads(plain.stdout) == []  # the default spool holds none of them
    given = runner.invoke(app, ["events", "--db", db, "--spool", str(spool), "-f", "json"])
    assert given.exit_code == 0, given.output
    assert [e["track_id"] for e in json.loads(given.stdout)] == [0, 1, 2] and spool.read_text() == ""

    db2 = str(tmp_path / "served.db")
    _left_spool(spool, 2)
    client = TestClient(create_app(pipeline=FakePipeline(), db=db2, snapshot_dir=tmp_path,
                                   spool=SpoolConfig(path=spool)), base_url="http://localhost")
    assert sorted(e["track_id"] for e in client.get("/v1/events").json()["events"]) == [0, 1]  # newest first
    assert spool.read_text() == ""
