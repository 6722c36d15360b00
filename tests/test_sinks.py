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
