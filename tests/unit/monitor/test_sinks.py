"""run_watch with event and frame sinks: every sink sees everything, a failing one is named once and does
not stop the others, and all are closed in order however the run ends."""

from __future__ import annotations

import io
import json
import os
import signal
import time

import numpy as np
import pytest

from maskwatch.event_types import EventType
from maskwatch.faces import Faces
from maskwatch.monitor import JsonLinesSink, StoreSink, TagSink, Watcher, run_watch
from maskwatch.video.sources import Frame, SourceStatus


class _NoFaces:
    def detect(self, image):
        return Faces.empty()

    def classify(self, image, faces):
        return faces


def _items(n: int = 10, lost_at: int | None = 3) -> list:
    """``n`` black frames with a source_lost / source_restored pair after frame ``lost_at``."""
    out: list = []
    for i in range(n):
        out.append(Frame(index=i, image=np.zeros((48, 64, 3), np.uint8), video_time=i / 25, wall_time=time.time()))
        if i == lost_at:
            out += [SourceStatus(EventType.SOURCE_LOST, time.time(), "gone"),
                    SourceStatus(EventType.SOURCE_RESTORED, time.time())]
    return out


class _Source:
    def __init__(self, items):
        self.items, self.closed = items, False

    def __iter__(self):
        return iter(self.items)

    def close(self):
        self.closed = True


class _Events:
    def __init__(self, name, log, fail=False):
        self.name, self.log, self.fail, self.seen = name, log, fail, []

    def handle(self, event):
        if self.fail:
            raise RuntimeError("disk on fire")
        self.seen.append(event.type)

    def close(self):
        self.log.append(self.name)


class _Frames:
    def __init__(self, name, log, fail=False, on_frame=None):
        self.name, self.log, self.fail, self.on_frame, self.seen = name, log, fail, on_frame, []

    def handle(self, frame, faces, events):
        if self.on_frame is not None:
            self.on_frame(frame)
        if self.fail:
            raise ValueError(f"bad frame {frame.index}")
        self.seen.append(frame.index)

    def close(self):
        self.log.append(self.name)


def _watcher():
    return Watcher(_NoFaces(), _NoFaces(), source="test")


def test_a_failing_sink_is_named_once_and_the_others_see_everything():
    log, lines = [], []
    first, broken, last = _Events("first", log), _Events("broken", log, fail=True), _Events("last", log)
    frames_bad, frames_ok = _Frames("frames-bad", log, fail=True), _Frames("frames-ok", log)
    stats = run_watch(_Source(_items()), _watcher(), event_sinks=[first, broken, last],
                      frame_sinks=[frames_bad, frames_ok], report=lines.append)
    assert stats.frames == 10 and stats.events == 2 and not stats.interrupted
    expected = [EventType.SOURCE_LOST, EventType.SOURCE_RESTORED]
    assert first.seen == expected and last.seen == expected
    assert frames_ok.seen == list(range(10))  # the sink after the failing one saw every frame
    assert len(lines) == 2, lines  # one line per failing sink, not one per call
    assert "'frames-bad'" in lines[0] and "bad frame 0" in lines[0]  # frame 0 comes before the events
    assert "'broken'" in lines[1] and "disk on fire" in lines[1]
    assert stats.sink_failures == {"broken": 2, "frames-bad": 10}


def test_close_order_frame_sinks_then_event_sinks_in_reverse():
    log = []
    source = _Source(_items(4))
    run_watch(source, _watcher(), event_sinks=[_Events("store", log), _Events("alerts", log)],
              frame_sinks=[_Frames("json", log), _Frames("video", log)], report=lambda line: None)
    assert source.closed
    assert log == ["json", "video", "alerts", "store"]


def test_a_sink_failing_to_close_does_not_stop_the_other_closes():
    log, lines = [], []

    class BadClose(_Frames):
        def close(self):
            raise OSError("no space left")

    run_watch(_Source(_items(3)), _watcher(), event_sinks=[_Events("store", log)],
              frame_sinks=[BadClose("video", log), _Frames("json", log)], report=lines.append)
    assert log == ["json", "store"]
    assert len(lines) == 1 and "'video'" in lines[0] and "close" in lines[0]


def test_every_sink_is_closed_on_ctrl_c_from_a_sink():
    log = []

    def stop(frame):
        if frame.index == 2:
            raise KeyboardInterrupt  # a window closed with q

    frames = _Frames("display", log, on_frame=stop)
    stats = run_watch(_Source(_items(10)), _watcher(), event_sinks=[_Events("store", log)],
                      frame_sinks=[frames, _Frames("json", log)])
    assert stats.interrupted and stats.frames == 3
    assert frames.seen == [0, 1]
    assert log == ["display", "json", "store"]


def test_sigterm_ends_after_the_frame_in_hand_and_closes_every_sink():
    log = []
    frames = _Frames("json", log, on_frame=lambda f: f.index == 4 and os.kill(os.getpid(), signal.SIGTERM))
    stats = run_watch(_Source(_items(10)), _watcher(), event_sinks=[_Events("store", log)],
                      frame_sinks=[frames, _Frames("video", log)])
    assert stats.interrupted
    assert frames.seen == [0, 1, 2, 3, 4]  # the frame in hand went to every frame sink
    assert log == ["json", "video", "store"]


def test_a_fatal_error_ends_the_run_after_closing_every_sink():
    class OutputGone(Exception):
        pass

    log, lines = [], []

    def gone(frame):
        if frame.index == 1:
            raise OutputGone("cannot write")

    with pytest.raises(OutputGone):
        run_watch(_Source(_items(10)), _watcher(), event_sinks=[_Events("store", log)],
                  frame_sinks=[_Frames("json", log, on_frame=gone)], report=lines.append, fatal=(OutputGone,))
    assert log == ["json", "store"] and lines == []


def test_json_lines_store_and_tag_sinks(tmp_path):
    from maskwatch.store import EventStore

    buf = io.StringIO()
    store = EventStore(str(tmp_path / "e.db"))
    stats = run_watch(_Source(_items(5, lost_at=1)), _watcher(),
                      event_sinks=[TagSink(worker_pid=123), StoreSink(store)],
                      frame_sinks=[JsonLinesSink(buf, own=False)])
    assert stats.events == 2
    rows = [json.loads(line) for line in buf.getvalue().splitlines()]
    assert [r["frame"] for r in rows] == [0, 1, 2, 3, 4] and rows[0]["faces"] == []
    again = EventStore(str(tmp_path / "e.db"))  # the first store was closed by run_watch
    try:
        events = again.query()
    finally:
        again.close()
    assert sorted(str(e.type) for e in events) == ["source_lost", "source_restored"]
    assert all(e.extra.get("worker_pid") == 123 for e in events)


class _BoxEngine(Watcher):
    """A watcher that raises one ``mask_removed`` with a box on frame ``at`` (no models)."""

    def __init__(self, at: int, box=(16.0, 8.0, 40.0, 40.0)):
        super().__init__(_NoFaces(), _NoFaces(), source="test")
        self.at, self.box = at, list(box)

    def process(self, frame):
        from datetime import datetime, timezone

        from maskwatch.store.events_db import Event

        self.frames += 1
        if frame.index != self.at:
            return Faces.empty(), []
        return Faces.empty(), [Event(type=EventType.MASK_REMOVED, time=datetime.now(timezone.utc), source="test",
                                     track_id=7, frame=frame.index, box=self.box)]


def _board_items(n: int, lost_at: int | None = None) -> list:
    """Checkerboards (4 px squares of 0 and 120) whose brightness grows with the index (+20 per frame)."""
    ys, xs = np.mgrid[0:48, 0:64]
    board = np.repeat((((ys // 4 + xs // 4) % 2) * 120)[:, :, None], 3, axis=2)
    out: list = []
    for i in range(n):
        image = (board + 20 * i).astype(np.uint8)
        out.append(Frame(index=i, image=image, video_time=i / 25, wall_time=time.time()))
        if i == lost_at:
            out += [SourceStatus(EventType.SOURCE_LOST, time.time(), "gone"),
                    SourceStatus(EventType.SOURCE_RESTORED, time.time())]
    return out


class _Kept:
    """A store stand-in: keeps each event's snapshot as it is when it arrives (after the snapshot sink)."""

    name = "store"

    def __init__(self):
        self.seen: list = []

    def handle(self, event):
        self.seen.append((str(event.type), event.snapshot))

    def close(self):
        pass


def test_snapshot_sink_fills_the_snapshot_from_the_frame_the_event_was_raised_on(tmp_path):
    import cv2

    from maskwatch.monitor import SnapshotSink, SnapshotWriter

    items = _board_items(5, lost_at=1)
    kept = _Kept()
    writer = SnapshotWriter(tmp_path / "snaps", "full")
    run_watch(_Source(items), _BoxEngine(at=3), event_sinks=[SnapshotSink(writer), kept])
    by_type = dict(kept.seen)
    assert by_type["source_lost"] is None and by_type["source_restored"] is None  # no frame, no snapshot
    path = by_type["mask_removed"]
    assert path is not None and path.endswith("_mask_removed_t7.jpg") and os.path.dirname(path) == str(tmp_path / "snaps")
    picture = cv2.imread(path)
    assert picture.shape == (48, 64, 3)
    assert abs(float(picture.mean()) - float(items[5].image.mean())) < 3  # frame 3 (items[5]: after the pair)
    assert writer.saved == 1 and len(list((tmp_path / "snaps").glob("*.jpg"))) == 1


def test_blurred_snapshot_keeps_the_face_and_blurs_the_rest(tmp_path):
    import cv2

    from maskwatch.monitor import SnapshotSink, SnapshotWriter

    items = _board_items(3)
    kept = _Kept()
    run_watch(_Source(items), _BoxEngine(at=1, box=(16, 8, 40, 40)),
              event_sinks=[SnapshotSink(SnapshotWriter(tmp_path, "blurred")), kept])
    picture = cv2.imread(kept.seen[0][1]).astype(np.float32)
    frame = items[1].image.astype(np.float32)
    face, rest = (slice(12, 36), slice(20, 36)), (slice(0, 48), slice(50, 64))  # the box + 20 %: x < 45
    assert np.abs(picture[face] - frame[face]).mean() < 10  # the face is kept (JPEG aside)
    assert picture[rest].std() < frame[rest].std() / 4  # the pattern around it is blurred away


def test_without_a_snapshot_sink_the_engine_writes_nothing_and_a_failed_write_loses_no_event(tmp_path):
    from maskwatch.monitor import SnapshotSink, SnapshotWriter

    kept = _Kept()
    run_watch(_Source(_board_items(3)), _BoxEngine(at=1), event_sinks=[kept])
    assert kept.seen == [("mask_removed", None)] and list(tmp_path.iterdir()) == []

    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    writer, kept = SnapshotWriter(blocked / "snaps", "full"), _Kept()
    lines: list = []
    run_watch(_Source(_board_items(3)), _BoxEngine(at=1), event_sinks=[SnapshotSink(writer), kept],
              report=lines.append)
    assert kept.seen == [("mask_removed", None)] and writer.skipped == 1 and lines == []
