"""maskwatch watch: events on synthetic videos made here, tracking through occlusion, sources, kill -9.

Faces are real photos from the data share detected by the real CenterFace; the mask classifier is the
colour-keyed stand-in of tests/helpers/scenes.py (the trained ONNX is not needed), so these tests check the
monitor, not a model. Event timing tolerance: an event must come after the frame where the picture
changed and at most ``event_tolerance_frames(N)`` frames later: 20 frames (0.8 s at 25 FPS) with the
detector on every frame, 12*N frames with it on every Nth (36 frames = 1.44 s for N=3).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from maskwatch.cli import app
from maskwatch.errors import InputError
from maskwatch.monitor import Watcher, run_watch
from maskwatch.store import EventStore
from maskwatch.video import LiveSource, SourceStatus, VideoFileSource, VideoWriter, open_source
from tests.helpers.scenes import Actor, ColourKeyClassifier, Scene, event_tolerance_frames, find_sprites, swap_scene

REPO = Path(__file__).resolve().parents[2]
FPS = 25.0


@pytest.fixture(scope="module")
def detector():
    from maskwatch.detectors import create_detector

    return create_detector("centerface", threads=2, input_size=320)


@pytest.fixture(scope="module")
def sprites(shared_dir, detector):
    found = find_sprites(shared_dir / "data" / "chandrikadeb7-faces" / "without_mask", detector, 2)
    assert len(found) == 2, "needs two photos CenterFace detects"
    return found


def watch_file(path: Path, detector, detect_every: int = 1):
    watcher = Watcher(detector, ColourKeyClassifier(), source=str(path), detect_every=detect_every)
    ids_per_frame: dict[int, list[int]] = {}

    def on_frame(frame, faces, events):
        ids_per_frame[frame.index] = sorted(int(t) for t in faces.track_ids if t >= 0)

    stats = run_watch(VideoFileSource(path), watcher, on_frame=on_frame)
    return watcher.events, ids_per_frame, stats


def check_at(events, etype, changed_at: int, detect_every: int, count: int = 1):
    hits = [e for e in events if e.type == etype]
    assert len(hits) == count, f"{etype}: {[(e.frame, e.track_id) for e in hits]}"
    for e in hits:
        assert changed_at <= e.frame <= changed_at + event_tolerance_frames(detect_every), \
            f"{etype} at frame {e.frame}, change at {changed_at}"
        assert e.video_time == pytest.approx(e.frame / FPS)
    return hits


@pytest.mark.slow
@pytest.mark.parametrize("detect_every", [1, 3])
def test_events_at_the_right_frames(tmp_path, detector, sprites, detect_every):
    video = swap_scene(sprites).write(tmp_path / "swap.avi")
    events, ids, _ = watch_file(video, detector, detect_every)
    assert sorted(e.type for e in events) == sorted(
        ["entered_unmasked", "mask_removed", "mask_restored", "mask_removed"]), [(e.type, e.frame) for e in events]
    entered = check_at(events, "entered_unmasked", 0, detect_every)[0]
    assert entered.state_after == "incorrect" and entered.state_before is None
    removed = sorted((e for e in events if e.type == "mask_removed"), key=lambda e: e.frame)
    assert [(e.state_before, e.state_after) for e in removed] == [("mask", "no_mask"), ("incorrect", "no_mask")]
    for e, at in zip(removed, (50, 70)):
        assert at <= e.frame <= at + event_tolerance_frames(detect_every), (e.frame, at)
    restored = check_at(events, "mask_restored", 100, detect_every)[0]
    assert restored.track_id == removed[0].track_id  # same person, same id across the swap
    assert entered.track_id == removed[1].track_id != restored.track_id
    assert all(0.6 <= e.confidence <= 1 for e in events)


def test_no_false_events_on_steady_footage(tmp_path, detector, sprites):
    """Two masked people, shake and noise, and 1- and 2-frame classification glitches: no events at all."""
    glitch = {40, 70, 71}
    a = Actor(sprites[0], path=lambda f: (60 + f, 150), state=lambda f: "no_mask" if f in glitch else "mask")
    b = Actor(sprites[1], path=lambda f: (420, 120), state=lambda f: "mask")
    video = Scene([a, b], frames=90, noise=6, shake=2.0, seed=2).write(tmp_path / "steady.avi")
    events, ids, _ = watch_file(video, detector, 1)
    assert list(events) == []
    assert len({t for v in ids.values() for t in v}) == 2  # two people, two ids, no switches


def test_ids_kept_through_short_occlusion(tmp_path, detector, sprites):
    a = Actor(sprites[0], path=lambda f: (100 + 2 * f, 160), state=lambda f: "no_mask")
    video = Scene([a], frames=80, noise=4, occluders=[(30, 42, (0, 0, 640, 480))], seed=3).write(tmp_path / "occl.avi")
    events, ids, _ = watch_file(video, detector, 2)
    before = {t for f, v in ids.items() if 5 <= f < 30 for t in v}
    after = {t for f, v in ids.items() if f >= 46 for t in v}
    assert len(before) == 1 and after == before, (before, after)
    assert all(ids[f] == [] for f in range(31, 42))
    assert [e.type for e in events] == ["entered_unmasked"]  # not raised again after the occlusion


def test_ctrl_c_finalises_output_video(tmp_path, detector, sprites):
    video = swap_scene(sprites).write(tmp_path / "in.avi")
    out = tmp_path / "out.mp4"
    writer = VideoWriter(out, fps=FPS)
    watcher = Watcher(detector, ColourKeyClassifier(), source="in", detect_every=4)

    def on_frame(frame, faces, events):
        writer.write(frame.image)
        if frame.index == 11:
            raise KeyboardInterrupt

    stats = run_watch(VideoFileSource(video), watcher, on_frame=on_frame)
    writer.close()
    assert stats.interrupted and stats.frames == 12
    check = VideoFileSource(out)
    assert sum(1 for _ in check) == 12


def test_stride_and_folder_sources(tmp_path):
    import cv2

    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(6):
        cv2.imwrite(str(frames / f"{i:03d}.png"), np.full((48, 64, 3), i * 40, np.uint8))
    (frames / "002.png").write_bytes(b"broken")
    got = [f.index for f in open_source(str(frames), fps=10)]
    assert got == [0, 1, 3, 4, 5]  # the broken frame is skipped, not fatal
    writer = VideoWriter(tmp_path / "v.avi", fps=10)
    for i in range(10):
        writer.write(np.full((48, 64, 3), i * 20, np.uint8))
    writer.close()
    items = list(open_source(str(tmp_path / "v.avi"), stride=3))
    assert [f.index for f in items] == [0, 3, 6, 9]
    assert items[1].video_time == pytest.approx(0.3)


def test_bad_sources_give_one_clear_error(tmp_path):
    fake = tmp_path / "notes.mp4"
    fake.write_text("not a video")
    empty = tmp_path / "empty.avi"
    empty.write_bytes(b"")
    for path, words in ((fake, "cannot decode video"), (empty, "empty file"), (tmp_path / "missing.mp4", "no such")):
        with pytest.raises(InputError, match=words):
            open_source(str(path))
    runner = CliRunner()
    result = runner.invoke(app, ["watch", str(fake), "--db", str(tmp_path / "e.db")])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [f"error: {fake}: cannot decode video (not a video, or a codec "
                                                  "OpenCV/FFmpeg cannot read)"]


def test_stream_that_never_opens(tmp_path):
    """A server that accepts the connection and never answers: clear error after --open-timeout."""
    import socket

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    url = f"http://127.0.0.1:{server.getsockname()[1]}/live.mjpg"
    try:
        started = time.monotonic()
        result = CliRunner().invoke(app, ["watch", url, "--open-timeout", "1.5", "--db", str(tmp_path / "e.db")])
        took = time.monotonic() - started
    finally:
        server.close()
    assert result.exit_code == 2
    assert result.stderr.strip() == (f"error: {url}: stream did not open within 1.5 s "
                                     "(check the address, credentials, network or camera index)")
    assert took < 6


class FlakyCamera:
    """A capture that delivers ``frames`` frames quickly, then fails."""

    def __init__(self, frames: int):
        self.left = frames

    def isOpened(self):
        return True

    def read(self):
        time.sleep(0.002)
        if self.left <= 0:
            return False, None
        self.left -= 1
        return True, np.zeros((8, 8, 3), np.uint8)

    def release(self):
        pass


def test_live_source_drops_frames_and_reconnects():
    opens = []

    def opener(spec, timeout):
        opens.append(time.monotonic())
        if len(opens) == 2:  # the first reconnect attempt fails
            return None
        return FlakyCamera(200 if len(opens) == 1 else 10**6)

    source = LiveSource("fake://cam", backoff_s=0.05, opener=opener, lost_after_s=0.1, restore_after_s=0.2)
    seen: list = []
    for item in source:
        seen.append(item)
        time.sleep(0.02)  # a slow consumer: the reader must drop frames, not queue them
        if isinstance(item, SourceStatus) and item.kind == "source_restored":
            break
    statuses = [i for i in seen if isinstance(i, SourceStatus)]
    assert [i.kind for i in statuses] == ["source_lost", "source_restored"]
    lost, restored = statuses
    assert restored.gap_s == pytest.approx(restored.wall_time - (lost.wall_time - 0.1))
    assert 0.14 <= restored.gap_s <= 0.5  # failed, 0.05 s, a failed reopen, 0.1 s, reopened: frames again
    assert len(opens) == 3 and opens[2] - opens[1] >= 0.09  # back-off doubled: 0.05, then 0.1
    assert source.dropped > 100  # ~200 frames in 0.4 s, consumer takes one per 20 ms
    frames_before = [i for i in seen if not isinstance(i, SourceStatus)]
    assert all(frames_before[k].index < frames_before[k + 1].index for k in range(len(frames_before) - 1))


def test_outage_monitor_one_pair_per_outage_with_true_timing():
    """Frames for 2 s, nothing for 5 s, then a camera that flaps (0.3 s of frames, 1.5 s of nothing, four
    times), then steady: one source_lost when the gap is noticed, one source_restored dated the start of
    the steady flow, and gap_s the real outage (last frame before it -> first frame of the steady flow)."""
    from maskwatch.video.sources import OutageMonitor

    monitor = OutageMonitor(lost_after_s=2.0, restore_after_s=2.0, started=100.0)
    out: list[SourceStatus] = []
    times = [100 + k / 25 for k in range(50)]  # last frame at 101.96
    t = 107.0
    for _ in range(4):
        times += [t + k / 25 for k in range(8)]
        t += 0.3 + 1.5
    steady = t
    times += [steady + k / 25 for k in range(100)]
    clock = 100.0
    for frame_t in times:
        while clock + 0.25 < frame_t:  # the consumer looks every 0.25 s between frames
            clock += 0.25
            out += monitor.check(clock)
        out += monitor.frame(frame_t)
        clock = frame_t
    assert [s.kind for s in out] == ["source_lost", "source_restored"]
    lost, restored = out
    assert lost.wall_time == pytest.approx(times[49] + 2.0) and "no frames for 2 s" in lost.detail
    assert restored.wall_time == pytest.approx(steady) and restored.gap_s == pytest.approx(steady - times[49])
    # a pause shorter than lost_after_s is no outage; a stream that opens and sends nothing is lost
    quiet = OutageMonitor(lost_after_s=2.0, started=0.0)
    assert quiet.frame(0.1) + quiet.check(1.9) + quiet.frame(2.0) == []
    silent = OutageMonitor(lost_after_s=2.0, started=0.0)
    (never,) = silent.check(2.5)
    assert never.wall_time == 2.0 and never.detail == "no frame for 2 s since the stream opened"


class ScheduledCamera:
    """Delivers frames only while ``alive(seconds since the test started)``; otherwise a read fails."""

    def __init__(self, t0: float, alive):
        self.t0, self.alive = t0, alive

    def isOpened(self):
        return True

    def read(self):
        time.sleep(0.01)
        if not self.alive(time.monotonic() - self.t0):
            return False, None
        return True, np.zeros((8, 8, 3), np.uint8)

    def release(self):
        pass


def test_flapping_live_source_raises_one_lost_and_one_restored():
    """Live: 0.4 s of frames, 1 s down, 1.2 s of flapping (0.1 s up, 0.3 s down), then steady. The watcher
    records exactly one source_lost and one source_restored whose gap_s is the real outage."""
    watcher = Watcher(_NoFaces(), _NoFaces(), source="flappy", camera="flappy")  # before the clock starts
    t0 = time.monotonic()

    def alive(t):
        if t < 0.4:
            return True
        if t < 1.4:
            return False
        if t < 2.6:
            return (t - 1.4) % 0.4 < 0.1
        return True

    source = LiveSource("fake://flappy", backoff_s=0.02, max_backoff_s=0.05, lost_after_s=0.5, restore_after_s=0.5,
                        opener=lambda spec, timeout: ScheduledCamera(t0, alive))
    frame_times = []

    def on_frame(frame, faces, events):
        frame_times.append(frame.wall_time)
        if time.monotonic() - t0 > 3.6:
            raise KeyboardInterrupt

    wall0 = time.time() - (time.monotonic() - t0)
    run_watch(source, watcher, on_frame=on_frame)
    kinds = [str(e.type) for e in watcher.events]
    assert kinds == ["source_lost", "source_restored"], kinds
    lost, restored = watcher.events
    last_before = lost.time.timestamp() - 0.5  # dated when noticed: the last frame + lost_after_s
    assert max(t for t in frame_times if t - wall0 < 1.0) == pytest.approx(last_before, abs=0.03)
    assert last_before - wall0 == pytest.approx(0.4, abs=0.05)
    steady = min(t for t in frame_times if t - wall0 >= 2.6)  # the steady flow's first frame the watcher saw
    assert restored.time.timestamp() == pytest.approx(steady, abs=0.03)
    assert restored.extra["gap_s"] == pytest.approx(restored.time.timestamp() - last_before, abs=0.002)
    assert 2.15 <= restored.extra["gap_s"] <= 2.4
    assert source.reconnects >= 3


class _NoFaces:
    def detect(self, image):
        from maskwatch.faces import Faces

        return Faces.empty()

    def classify(self, image, faces):
        return faces


def test_sigterm_stops_a_live_source_whose_camera_is_down(tmp_path):
    """A camera that is down yields nothing; SIGTERM must still end the run within about a second."""
    script = tmp_path / "down.py"
    script.write_text(textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(REPO)!r})
        import numpy as np
        from maskwatch.monitor import Watcher, run_watch
        from maskwatch.video import LiveSource
        from tests.integration.test_watch import ScheduledCamera, _NoFaces

        t0 = time.monotonic()
        source = LiveSource("fake://down", backoff_s=0.05, max_backoff_s=0.1, lost_after_s=0.3,
                            opener=lambda spec, timeout: ScheduledCamera(t0, lambda t: t < 0.2))
        watcher = Watcher(_NoFaces(), _NoFaces(), source="down", sinks=[lambda ev: print(ev.type, flush=True)])
        stats = run_watch(source, watcher)
        print("stopped", stats.interrupted, flush=True)
    """))
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout.readline().strip() == "source_lost"
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        out, _ = proc.communicate(timeout=10)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0 and out.strip() == "stopped True" and took < 2.0, (out, took)


KILL_SCRIPT = textwrap.dedent("""
    import sys
    sys.path.insert(0, {tests!r})
    from maskwatch.detectors import create_detector
    from maskwatch.monitor import Watcher, run_watch
    from maskwatch.store import EventStore
    from maskwatch.video import VideoFileSource
    from tests.helpers.scenes import ColourKeyClassifier

    store = EventStore({db!r})
    detector = create_detector("centerface", threads=1, input_size=320)

    def sink(ev):
        store.add(ev)
        print("EVENT", ev.id, flush=True)

    for rep in range(1000):  # a fresh watcher per pass: every pass raises entered_unmasked again
        watcher = Watcher(detector, ColourKeyClassifier(), source="loop", detect_every=3, sinks=[sink])
        run_watch(VideoFileSource({video!r}), watcher)
""")


def test_kill_9_keeps_every_committed_event(tmp_path, sprites):
    a = Actor(sprites[1], path=lambda f: (250, 150), state=lambda f: "no_mask")
    video = Scene([a], frames=30, seed=4).write(tmp_path / "loop.avi")
    db = f"sqlite:///{tmp_path / 'events.db'}"
    script = tmp_path / "run.py"
    script.write_text(KILL_SCRIPT.format(tests=str(REPO), db=db, video=str(video)))
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, env=env)
    printed = []
    try:
        deadline = time.monotonic() + 30
        while len(printed) < 3 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if line.startswith("EVENT"):
                printed.append(int(line.split()[1]))
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert len(printed) == 3 and proc.returncode == -signal.SIGKILL
    stored = EventStore(db).query()
    assert {e.id for e in stored} >= set(printed)
    assert all(e.type == "entered_unmasked" and e.source == "loop" for e in stored)


def run_cli(args: list[str], **kwargs) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    return subprocess.Popen([sys.executable, "-m", "maskwatch", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)


@pytest.mark.slow
def test_watch_cli_end_to_end(tmp_path, sprites):
    """The real command with a real ONNX classifier (the colour-keyed one, as an .onnx file): events in the
    store, the events command, webhook, blurred snapshots, JSON lines and the annotated video."""
    import http.server
    import json
    import threading

    from tests.helpers.scenes import write_colour_key_onnx

    received, alerted = [], []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            (alerted if self.path == "/alerts" else received).append((body, self.headers.get("X-MaskWatch-Signature")))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *a):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    video = swap_scene(sprites).write(tmp_path / "door.avi")
    model = write_colour_key_onnx(tmp_path / "ck.onnx")
    db = str(tmp_path / "events.db")
    alerts_yaml = tmp_path / "alerts.yaml"
    alerts_yaml.write_text(f"rules: {{event_types: [mask_removed]}}\nchannels:\n  webhook: {{url: 'http://127.0.0.1:"
                           f"{server.server_address[1]}/alerts', secret: k, snapshot_base_url: 'http://mw.test'}}\n")
    try:
        proc = run_cli(["watch", str(video), "--classifier-model", str(model), "--out", str(tmp_path / "out.mp4"),
                        "--json", str(tmp_path / "frames.jsonl"), "--db", db, "--camera-name", "door",
                        "--webhook", f"http://127.0.0.1:{server.server_address[1]}/", "--alerts", str(alerts_yaml), "--snapshots", "blurred",
                        "--snapshot-dir", str(tmp_path / "snaps"), "--detect-every", "3", "--input-size", "320",
                        "--threads", "2"])
        _, err = proc.communicate(timeout=60)
    finally:
        server.shutdown()
        server.server_close()
    assert proc.returncode == 0, err
    assert "150 frames" in err and "events" in err
    stored = EventStore(db).query()
    assert sorted(e.type for e in stored) == ["entered_unmasked", "mask_removed", "mask_removed", "mask_restored"]
    assert all(e.camera == "door" and e.snapshot and Path(e.snapshot).is_file() for e in stored)
    assert sorted(r["type"] for r, _ in received) == sorted(e.type for e in stored)
    # --alerts: one alert per person for mask_removed (cooldown), signed, with a snapshot URL
    assert alerted and all(r["type"] == "mask_removed" and sig.startswith("sha256=") for r, sig in alerted)
    assert all(r["snapshot_url"].startswith("http://mw.test/v1/events/") for r, _ in alerted)
    assert len(alerted) == len({r["track_id"] for r, _ in alerted})
    lines = (tmp_path / "frames.jsonl").read_text().splitlines()
    assert len(lines) == 150 and all(f["track_id"] >= 0 for f in json.loads(lines[60])["faces"])
    assert sum(1 for _ in VideoFileSource(tmp_path / "out.mp4")) == 150
    out = CliRunner().invoke(app, ["events", "--db", db, "--format", "json", "--type", "mask_restored"])
    (row,) = json.loads(out.stdout)
    assert row["source"] == str(video) and 100 <= row["frame"] <= 100 + event_tolerance_frames(3)


@pytest.mark.slow
@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_watch_cli_ctrl_c_finalises_video(tmp_path, sprites, stop_signal):
    from tests.helpers.scenes import write_colour_key_onnx

    video = Scene([Actor(sprites[0], path=lambda f: (100 + f % 300, 150), state=lambda f: "mask")],
                  frames=1000, seed=5).write(tmp_path / "long.avi")  # long enough to be interrupted mid-way
    model = write_colour_key_onnx(tmp_path / "ck.onnx")
    frames = tmp_path / "frames.jsonl"
    proc = run_cli(["watch", str(video), "--classifier-model", str(model), "--out", str(tmp_path / "out.avi"),
                    "--json", str(frames), "--db", str(tmp_path / "e.db"), "--snapshots", "none",
                    "--input-size", "320"])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (not frames.exists() or len(frames.read_text().splitlines()) < 10):
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert err.strip().splitlines()[-1].startswith("interrupted: ")
    written = sum(1 for _ in VideoFileSource(tmp_path / "out.avi"))
    assert 10 <= written < 1000 and written == len(frames.read_text().splitlines())


def test_zone_limits_events_to_the_entrance(tmp_path, detector, sprites):
    """A walks from the left into the zone (right half); B stands outside it. Only A raises an event,
    once its box centre is inside."""
    from maskwatch.cli.watch import parse_zone

    a = Actor(sprites[0], path=lambda f: (20 + 4 * f, 180), state=lambda f: "no_mask")
    b = Actor(sprites[1], path=lambda f: (40, 20), state=lambda f: "no_mask")
    video = Scene([a, b], frames=100, noise=3, seed=6).write(tmp_path / "zone.avi")
    width = sprites[0].images["no_mask"].shape[1]
    enters_at = int(np.ceil((320 - 20 - width / 2) / 4))
    watcher = Watcher(detector, ColourKeyClassifier(), source="door", detect_every=2,
                      zone=parse_zone("320,0,640,0,640,480,320,480"))
    run_watch(VideoFileSource(video), watcher)
    (event,) = watcher.events
    assert event.type == "entered_unmasked" and event.box[0] > 200
    assert enters_at - 2 <= event.frame <= enters_at + event_tolerance_frames(2)
    result = CliRunner().invoke(app, ["watch", str(video), "--zone", "1,2,3", "--db", str(tmp_path / "e.db")])
    assert result.exit_code == 2 and "--zone '1,2,3': expected" in result.stderr


@pytest.mark.slow
def test_real_classifier_on_synthetic_masks(tmp_path, shared_dir, detector):
    """The shipped classifier (no stand-in) on faces masked by `maskwatch synth`: A takes the mask off at
    frame 50 and puts it back on at frame 100; B wears it under the nose, then pulls it down at 70.

    The people are unmasked photos of face-mask-12k that the shipped model held out (its test split),
    so neither their faces nor masked versions of them were seen in training."""
    from maskwatch.classifier import MaskClassifier
    from maskwatch.train.data import folder_split
    from tests.helpers.scenes import synthetic_masks

    root = shared_dir / "data" / "face-mask-12k" / "train"
    held_out = sorted(root / k for k, split in folder_split(root).items() if split == "test" and k.startswith("without_mask/"))
    sprites = find_sprites(root / "without_mask", detector, 2, masker=synthetic_masks, candidates=held_out, height=140)
    video = swap_scene(sprites).write(tmp_path / "swap.avi")
    watcher = Watcher(detector, MaskClassifier(threads=2), source=str(video), detect_every=3)
    run_watch(VideoFileSource(video), watcher)
    events = sorted(watcher.events, key=lambda e: e.frame)
    tol = event_tolerance_frames(3)
    # A leaving the mask is a violation either way; the shipped model calls some bare faces on this
    # synthetic background `incorrect` (see MODEL_CARD.md), so both event types are accepted here.
    a_off = [e for e in events if e.state_before == "mask" and e.type in ("mask_removed", "mask_incorrect")]
    restored = [e for e in events if e.type == "mask_restored"]
    assert len(a_off) == 1 and 50 <= a_off[0].frame <= 50 + tol, events
    assert len(restored) == 1 and 100 <= restored[0].frame <= 100 + tol, events
    assert restored[0].track_id == a_off[0].track_id
    assert not [e for e in events if e.track_id == a_off[0].track_id and e.frame < 50]  # A entered masked
    b_events = [e for e in events if e.track_id != a_off[0].track_id]
    assert b_events and b_events[0].type == "entered_unmasked" and b_events[0].frame <= tol


@pytest.mark.slow
def test_watch_entry_line_end_to_end(tmp_path, sprites):
    """`maskwatch watch --entry`: an unmasked person walks down across a line at y = 240 and back up.
    entered and entered_unmasked come at the crossing (not when the person is first seen), left on the
    way back; the line is drawn into the output video."""
    from tests.helpers.scenes import write_colour_key_onnx

    top = lambda f: 10 + 3.3 * f if f < 100 else 340 - 3.3 * (f - 100)  # noqa: E731 - face top-left y
    video = Scene([Actor(sprites[0], path=lambda f: (250, top(f)), state=lambda f: "no_mask")],
                  frames=200, noise=3, seed=7).write(tmp_path / "walk.avi")
    model = write_colour_key_onnx(tmp_path / "ck.onnx")
    db = str(tmp_path / "e.db")
    result = CliRunner().invoke(app, ["watch", str(video), "--entry", "0,240,640,240", "--classifier-model", str(model),
                                      "--db", db, "--camera-name", "door", "--snapshots", "none", "--detect-every", "2",
                                      "--input-size", "320", "--threads", "2", "--out", str(tmp_path / "out.avi")])
    assert result.exit_code == 0, result.stderr
    stored = EventStore(db).query()
    assert [e.type for e in stored] == ["entered", "entered_unmasked", "left"], [(e.type, e.frame) for e in stored]
    entered, unmasked, left = stored
    assert entered.state_after == unmasked.state_after == left.state_after == "no_mask"
    assert entered.frame == unmasked.frame and entered.track_id == left.track_id
    height = sprites[0].images["no_mask"].shape[0]
    centre = lambda f: top(f) + height / 2  # noqa: E731
    assert centre(entered.frame) > 240 and 40 <= entered.frame < 100  # after the line, not at first sight
    assert centre(left.frame) < 240 and left.frame > 100
    first = next(VideoFileSource(tmp_path / "out.avi").__iter__()).image
    assert (np.abs(first[240, 5:635].astype(int) - (0, 220, 255)).max(axis=1) < 60).mean() > 0.9  # the yellow line
    bad = CliRunner().invoke(app, ["watch", str(video), "--entry", "0,240,640", "--db", db])
    assert bad.exit_code == 2 and bad.stderr.strip() == \
        "error: --entry '0,240,640': expected X1,Y1,X2,Y2 (two points in frame pixels)"
