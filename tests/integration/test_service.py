"""The venue service end to end: `maskwatch serve --config` with three cameras (two video files and an
MJPEG-over-HTTP stream served here and then cut off), health, live view, pushed events, a SIGKILLed
camera coming back, and SIGTERM losing no event."""

from __future__ import annotations

import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import httpx
import pytest

from maskwatch.store import EventStore
from tests.helpers.servers import SilentServer
from tests.helpers.scenes import Actor, Scene, swap_scene, write_colour_key_onnx
from tests.integration.test_watch import detector, sprites  # noqa: F401  (module fixtures)

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MjpegServer:
    """Serves a video file as multipart/x-mixed-replace JPEGs at 10 FPS, looping, until cut()."""

    def __init__(self, video: Path):
        cap = cv2.VideoCapture(str(video))
        self.jpegs = []
        while True:
            ok, image = cap.read()
            if not ok:
                break
            self.jpegs.append(cv2.imencode(".jpg", image)[1].tobytes())
        cap.release()
        self.stopped = threading.Event()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                i = 0
                try:
                    while not outer.stopped.is_set():
                        jpeg = outer.jpegs[i % len(outer.jpegs)]
                        self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n"
                                         % len(jpeg) + jpeg + b"\r\n")
                        i += 1
                        time.sleep(0.1)
                except OSError:
                    pass

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/video.mjpg"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def cut(self) -> None:
        self.stopped.set()
        self.server.shutdown()
        self.server.server_close()


def wait_for(what, check, timeout_s: float = 30.0, every_s: float = 0.2):
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last is True or (last and not isinstance(last, list)):
            return last
        time.sleep(max(every_s, 1.0))
    raise AssertionError(f"timed out waiting for {what}: {last!r}")


@pytest.mark.slow
def test_venue_service(tmp_path, sprites):  # noqa: F811
    swap_scene(sprites).write(tmp_path / "door.avi")  # 150 frames, 4 mask events
    hall = Scene([Actor(sprites[1], path=lambda f: (100 + f, 150), state=lambda f: "mask")],
                 frames=60, seed=3).write(tmp_path / "hall.avi")
    street = MjpegServer(hall)
    write_colour_key_onnx(tmp_path / "ck.onnx")
    port = free_port()
    (tmp_path / "venue.yaml").write_text(f"""
cameras:
  - {{name: door, source: door.avi, detect_every: 3}}
  - {{name: hall, source: hall.avi, detect_every: 3, loop: true, realtime: true}}
  - {{name: street, source: "{street.url}", detect_every: 3, open_timeout_s: 3}}
models: {{detector: centerface, input_size: 320, classifier: ck.onnx, threads: 1}}
store: events.db
snapshots: {{dir: snaps, mode: blurred}}
server: {{host: 127.0.0.1, port: {port}}}
supervisor: {{backoff_s: 0.5, hang_s: 20}}
""")
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"), OMP_NUM_THREADS="1")
    log = open(tmp_path / "serve.log", "w")  # a file, not a pipe: nobody drains a pipe while the test runs
    proc = subprocess.Popen([sys.executable, "-m", "maskwatch", "serve", "--config", str(tmp_path / "venue.yaml"),
                             "--log-level", "warning"], cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    pushed: list[dict] = []
    try:
        wait_for("the API", lambda: _get(f"{base}/v1/health"), 120)

        listen_events(base, pushed)

        def cams():
            return {c["name"]: c for c in httpx.get(f"{base}/v1/cameras").json()["cameras"]}

        wait_for("three cameras running", lambda: all(c["state"] in ("running", "stopped") for c in cams().values())
                 or [(c["name"], c["state"]) for c in cams().values()], 180)
        first = cams()
        assert set(first) == {"door", "hall", "street"}
        assert set(first["hall"]) >= {"name", "state", "enabled", "fps", "last_frame_time", "reconnects",
                                      "restarts", "faces_now"}

        # live view: one still, and the first part of the MJPEG stream
        still = wait_for("frame.jpg", lambda: (r := httpx.get(f"{base}/v1/cameras/hall/frame.jpg", timeout=10))
                         .status_code == 200 and r, 20)
        assert still.headers["content-type"] == "image/jpeg" and still.content[:2] == b"\xff\xd8"
        with httpx.stream("GET", f"{base}/v1/cameras/hall/live", timeout=10) as r:
            assert r.headers["content-type"].startswith("multipart/x-mixed-replace")
            got = b""
            for chunk in r.iter_bytes():
                got += chunk
                if got.count(b"--maskwatchframe") >= 2:
                    break
        assert b"Content-Type: image/jpeg" in got and b"\xff\xd8" in got
        assert httpx.get(f"{base}/v1/cameras/nope/frame.jpg").status_code == 404

        # the door file ends: that camera stops (not restarted) with its four events
        wait_for("door finished", lambda: cams()["door"]["state"] == "stopped", 40)
        # cut the stream: one source_lost, the camera is lost
        wait_for("street frames", lambda: cams()["street"]["last_frame_time"], 30)
        street.cut()
        wait_for("street lost", lambda: cams()["street"]["state"] == "lost", 30)

        # SIGKILL the hall worker: it comes back
        pid = cams()["hall"]["pid"]
        os.kill(pid, signal.SIGKILL)
        wait_for("hall restarted", lambda: (c := cams()["hall"])["restarts"] >= 1 and c["state"] == "running"
                 and c["pid"] != pid, 40)

        # disable / enable through the API
        assert httpx.post(f"{base}/v1/cameras/street/disable", timeout=20).json()["state"] == "disabled"
        assert cams()["street"]["enabled"] is False
        assert httpx.post(f"{base}/v1/cameras/street/enable", timeout=20).json()["enabled"] is True

        stats = httpx.get(f"{base}/v1/stats").json()
        assert "occupancy" in stats and "entries_per_hour" in stats
        wait_for("pushed events", lambda: len(pushed) >= 5, 10)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        err = (tmp_path / "serve.log").read_text()
        print(err[-5000:])
        if not street.stopped.is_set():
            street.cut()
    assert proc.returncode == 0, err[-3000:]
    stored = EventStore(str(tmp_path / "events.db")).query()
    door_events = sorted(e.type for e in stored if e.camera == "door")
    assert door_events == ["entered_unmasked", "mask_removed", "mask_removed", "mask_restored"], door_events
    assert any(e.camera == "street" and e.type == "source_lost" for e in stored)
    ids = {e.id for e in stored}
    assert {p["id"] for p in pushed} <= ids, "every pushed event is in the store"
    assert all(Path(e.snapshot).is_relative_to(tmp_path / "snaps") for e in stored if e.snapshot)


class ServiceProcess:
    """`maskwatch serve --config CONFIG` started in ``tmp_path``, its output in a log file (a pipe nobody
    drains would block it); ``stop()`` sends SIGTERM and returns (exit status, seconds it took, log)."""

    def __init__(self, tmp_path: Path, config: Path, port: int, log_name: str):
        env = dict(os.environ, PYTHONPATH=str(REPO / "src"), OMP_NUM_THREADS="1")
        self.log_path = tmp_path / log_name
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen([sys.executable, "-m", "maskwatch", "serve", "--config", str(config),
                                      "--log-level", "warning"], cwd=tmp_path, env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        self.base = f"http://127.0.0.1:{port}"
        wait_for("the API", lambda: _get(f"{self.base}/v1/health") or self.proc.poll() is not None, 60)
        assert self.proc.poll() is None, self.log_path.read_text()[-3000:]

    def stop(self) -> tuple[int, float, str]:
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        took = time.monotonic() - started
        self.log.close()
        text = self.log_path.read_text()
        print(text[-4000:])
        return self.proc.returncode, took, text


def listen_events(base: str, pushed: list[dict]) -> None:
    """Collect what /v1/events/stream pushes (server-sent events) into ``pushed``, on a thread."""

    def listen() -> None:
        try:
            with httpx.stream("GET", f"{base}/v1/events/stream", timeout=None) as r:
                for line in r.iter_lines():
                    if line.startswith("data: "):
                        pushed.append(json.loads(line[6:]))
        except httpx.HTTPError:  # the service stops
            pass

    threading.Thread(target=listen, daemon=True).start()


def _get(url: str):
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.mark.slow
def test_stream_camera_whose_source_is_down_stops_at_once_on_sigterm(tmp_path, sprites):  # noqa: F811
    """The stream is cut, then its address accepts connections and never answers (each reopen would hang for
    open_timeout_s = 20 s): SIGTERM still ends the camera process cleanly (exit 0, no SIGKILL) within ~2 s."""
    from maskwatch.service.config import parse_config
    from maskwatch.service.supervisor import Supervisor

    video = Scene([Actor(sprites[1], path=lambda f: (100 + f, 150), state=lambda f: "mask")],
                  frames=40, seed=3).write(tmp_path / "street.avi")
    street = MjpegServer(video)
    port = int(street.url.split(":")[2].split("/")[0])
    write_colour_key_onnx(tmp_path / "ck.onnx")
    config = parse_config(f"""
cameras:
  - {{name: street, source: "{street.url}", detect_every: 3, open_timeout_s: 20}}
models: {{detector: centerface, input_size: 320, classifier: ck.onnx, threads: 1}}
store: events.db
snapshots: {{dir: snaps, mode: none}}
supervisor: {{hang_s: 60}}
""", tmp_path)
    sup = Supervisor(config)
    sup.start()
    hole = None
    try:
        wait_for("street running", lambda: sup.cameras()[0]["state"] == "running" and sup.cameras()[0]["fps"] > 0, 60)
        street.cut()
        hole = SilentServer(port=port)
        wait_for("street lost", lambda: sup.cameras()[0]["state"] == "lost", 30)
        wait_for("a reconnect that hangs", lambda: hole.accepted >= 1, 30)
        proc = sup.slots["street"].process
        started = time.monotonic()
        sup.stop(timeout_s=15)
        took = time.monotonic() - started
    finally:
        if not street.stopped.is_set():
            street.cut()
        if hole is not None:
            hole.close()
    assert proc.exitcode == 0, f"the camera process ended with {proc.exitcode} (negative: killed)"
    assert took < 3.0, f"stopping took {took:.1f} s"
    stored = EventStore(str(tmp_path / "events.db")).query(camera="street")
    assert [e.type for e in stored] == ["source_lost"]
