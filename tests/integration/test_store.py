"""Event store, snapshots (privacy modes, retention, full disk), webhook retries, events CLI formats."""

from __future__ import annotations

import csv
import io
import json
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from typer.testing import CliRunner

from maskwatch.cli import app
from maskwatch.cli.events import parse_since
from maskwatch.monitor import SnapshotWriter, StateConfig, TrackState, blur_except
from maskwatch.store import Event, EventStore, WebhookNotifier

T0 = datetime(2026, 11, 22, 10, 0, tzinfo=timezone.utc)


def make_events() -> list[Event]:
    return [
        Event("entered_unmasked", T0, "door.mp4", camera="door", track_id=1, frame=10, video_time=0.4,
              state_after="no_mask", confidence=0.9),
        Event("mask_removed", T0 + timedelta(minutes=5), "door.mp4", camera="door", track_id=2, frame=300,
              video_time=12.0, state_before="mask", state_after="no_mask", confidence=0.8, box=[1, 2, 3, 4]),
        Event("source_lost", T0 + timedelta(hours=1), "rtsp://cam", extra={"gap_s": 3.5}),
    ]


@pytest.fixture
def db(tmp_path):
    url = f"sqlite:///{tmp_path / 'events.db'}"
    store = EventStore(url)
    for ev in make_events():
        assert store.add(ev)
    store.close()
    return url


def test_store_round_trip_and_filters(db, tmp_path):
    store = EventStore(db)
    got = store.query()
    assert [e.type for e in got] == ["entered_unmasked", "mask_removed", "source_lost"]
    assert got[1].time == T0 + timedelta(minutes=5) and got[1].box == [1, 2, 3, 4]
    assert got[2].extra == {"gap_s": 3.5}
    assert [e.id for e in store.query(types=["mask_removed"])] == [2]
    assert [e.id for e in store.query(since=T0 + timedelta(minutes=1))] == [2, 3]
    assert [e.id for e in store.query(track_id=1)] == [1]
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    # a plain file path means SQLite
    assert EventStore(str(tmp_path / "events.db")).query()[0].track_id == 1


def test_store_round_trip_on_postgresql(postgres_url):
    store = EventStore(postgres_url)
    assert store.engine.dialect.name == "postgresql"
    for ev in make_events():
        assert store.add(ev)
    store.close()
    store = EventStore(postgres_url)  # a second connection sees what the first committed
    got = store.query()
    assert [e.type for e in got] == ["entered_unmasked", "mask_removed", "source_lost"]
    assert got[1].time == T0 + timedelta(minutes=5) and got[1].box == [1, 2, 3, 4] and got[2].extra == {"gap_s": 3.5}
    assert [e.id for e in store.query(since=T0 + timedelta(minutes=1))] == [got[1].id, got[2].id]
    assert [e.track_id for e in store.query(camera="door", newest_first=True, limit=1)] == [2]
    store.close()


def test_failed_write_is_kept_and_written_later(tmp_path):
    store = EventStore(f"sqlite:///{tmp_path / 'e.db'}", spool=None, retry_interval_s=0)  # memory only (spool: test_hardening)
    original = store.engine
    from sqlalchemy import create_engine

    store.engine = create_engine(f"sqlite:///{tmp_path / 'missing-dir' / 'x.db'}")  # cannot be opened
    assert not store.add(make_events()[0])
    assert store.failed_writes == 1 and len(store.pending) == 1
    store.engine = original
    assert store.add(make_events()[1])
    assert [e.type for e in store.query()] == ["entered_unmasked", "mask_removed"]


def test_state_hysteresis_and_quality_weighting():
    track = TrackState(StateConfig(window=6, min_weight=1.5, enter=0.6, hold=2))
    mask, bare = np.array([0.9, 0.05, 0.05]), np.array([0.05, 0.9, 0.05])
    changes = [track.observe(mask, 1.0) for _ in range(4)]
    assert [c.after for c in changes if c] == ["mask"]  # decided once, no event type for a masked entrance
    assert changes[-1] is None and [c for c in changes if c][0].event_type is None
    # many confident 'no mask' votes from a tiny/blurred face (weight 0.05) do not flip the state
    assert all(track.observe(bare, 0.05) is None for _ in range(3))
    assert track.state == "mask"
    flips = [track.observe(bare, 1.0) for _ in range(6)]
    change = next(c for c in flips if c)
    assert (change.before, change.after, change.event_type) == ("mask", "no_mask", "mask_removed")


def test_unmasked_but_split_between_no_mask_and_incorrect_still_leaves_the_mask_state():
    track = TrackState(StateConfig(window=6, min_weight=1.5, enter=0.6, hold=2))
    for _ in range(4):
        track.observe(np.array([0.9, 0.05, 0.05]), 1.0)
    split = np.array([0.1, 0.48, 0.42])  # no class reaches `enter`, but 0.9 says "not masked"
    change = next(c for c in (track.observe(split, 1.0) for _ in range(6)) if c)
    assert (change.before, change.after, change.event_type) == ("mask", "no_mask", "mask_removed")
    assert change.confidence >= 0.6  # the summed violation probability, not either class alone
    # between the two violations the switch still needs the class itself to pass `enter`
    assert all(track.observe(np.array([0.1, 0.42, 0.48]), 1.0) is None for _ in range(6))
    assert track.state == "no_mask"


def test_snapshots_modes_retention_and_full_disk(tmp_path):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
    box = np.array([40, 30, 80, 70])
    blurred = blur_except(image, box)
    assert np.array_equal(blurred[30:70, 40:80], image[30:70, 40:80])
    assert np.abs(blurred[:20].astype(int) - image[:20]).mean() > 30  # the rest is unrecognisable
    assert SnapshotWriter(tmp_path / "none", "none").save(image, box, "x") is None
    writer = SnapshotWriter(tmp_path / "snaps", "full", max_files=3)
    paths = []
    for i in range(5):
        paths.append(writer.save(image, box, f"s{i}"))
        time.sleep(0.01)
    left = sorted(p.name for p in (tmp_path / "snaps").glob("*.jpg"))
    assert left == ["s2.jpg", "s3.jpg", "s4.jpg"] and writer.deleted == 2
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the snapshot folder should be: every write fails like a full disk")
    failing = SnapshotWriter(blocked, "blurred")
    assert failing.save(image, box, "y") is None and failing.skipped == 1


class Receiver(BaseHTTPRequestHandler):
    fail_first = 2
    delay_s = 0.0
    bodies: list = []
    attempts = 0

    def do_POST(self):
        type(self).attempts += 1
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        time.sleep(self.delay_s)
        if type(self).attempts <= self.fail_first:
            self.send_response(503)
        else:
            type(self).bodies.append(body)
            self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    Receiver.attempts, Receiver.bodies, Receiver.fail_first, Receiver.delay_s = 0, [], 2, 0.0
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


def test_webhook_retries_without_blocking(receiver):
    Receiver.delay_s = 0.2  # a slow receiver that fails twice
    notifier = WebhookNotifier(receiver, retries=4, backoff_s=0.05)
    started = time.perf_counter()
    notifier.notify(make_events()[1].to_dict())
    assert time.perf_counter() - started < 0.01  # the video loop is not held up
    notifier.close(timeout_s=5)
    assert Receiver.attempts == 3 and notifier.sent == 1 and notifier.failed == 0
    assert Receiver.bodies[0]["type"] == "mask_removed" and Receiver.bodies[0]["track_id"] == 2


def test_webhook_queue_is_bounded(receiver):
    Receiver.fail_first, Receiver.delay_s = 0, 0.3
    notifier = WebhookNotifier(receiver, max_queue=2)
    started = time.perf_counter()
    for i in range(20):
        notifier.notify({"type": "mask_removed", "n": i})
    assert time.perf_counter() - started < 0.05
    assert notifier.dropped >= 16  # at most one in flight + two queued survive
    notifier.close(timeout_s=3)
    assert Receiver.bodies[-1]["n"] == 19  # the newest is never the one dropped


def test_events_cli_formats(db):
    runner = CliRunner()
    out = runner.invoke(app, ["events", "--db", db, "--format", "json"])
    assert out.exit_code == 0, out.output
    rows = json.loads(out.stdout)
    assert [r["type"] for r in rows] == ["entered_unmasked", "mask_removed", "source_lost"]
    assert {"type", "time", "track_id", "source"} <= set(rows[0])
    assert rows[1]["time"] == "2026-11-22T10:05:00+00:00" and rows[1]["video_time"] == 12.0
    out = runner.invoke(app, ["events", "--db", db, "--format", "csv", "--type", "mask_removed"])
    table = list(csv.DictReader(io.StringIO(out.stdout)))
    assert len(table) == 1 and table[0]["track_id"] == "2" and table[0]["state_before"] == "mask"
    out = runner.invoke(app, ["events", "--db", db, "--track", "1"])
    assert out.exit_code == 0 and "entered_unmasked" in out.stdout and "mask_removed" not in out.stdout
    out = runner.invoke(app, ["events", "--db", db, "-f", "json", "--since", "2026-11-22T10:30"])
    assert [r["type"] for r in json.loads(out.stdout)] == ["source_lost"]
    out = runner.invoke(app, ["events", "--db", db, "--type", "nonsense"])
    assert out.exit_code == 2 and out.stderr.startswith("error: --type 'nonsense': unknown event type")
    out = runner.invoke(app, ["events", "--db", db, "--since", "yesterday"])
    assert out.exit_code == 2 and "--since 'yesterday'" in out.stderr


def test_parse_since_durations():
    now = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)
    assert parse_since("2h", now) == now - timedelta(hours=2)
    assert parse_since("30m", now) == now - timedelta(minutes=30)
    assert parse_since("2026-11-22").tzinfo is not None
