"""Issue 13: servers that accept and never answer, and outputs that cannot be written: one clear line,
the documented exit status, never a traceback or an abort ("terminate called", exit 134)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent


def cli(args: list[str], **kwargs) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"), OMP_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, "-m", "maskwatch", *args], env=env, text=True, **kwargs)


class SilentServer:
    """Accepts TCP connections and never sends a byte. With ``frames``, the first connection instead gets
    an MJPEG stream of that many frames and is then closed (a camera that goes quiet)."""

    def __init__(self, frames: int = 0):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/video.mjpg"
        self.frames = frames
        self.accepted = 0
        self.held: list[socket.socket] = []
        self.jpeg = cv2.imencode(".jpg", np.full((120, 160, 3), 128, np.uint8))[1].tobytes()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            if self.accepted == 1 and self.frames:
                threading.Thread(target=self._stream, args=(conn,), daemon=True).start()
            else:
                self.held.append(conn)

    def _stream(self, conn: socket.socket) -> None:
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=frame\r\n\r\n")
            for _ in range(self.frames):
                conn.sendall(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(self.jpeg)
                             + self.jpeg + b"\r\n")
                time.sleep(0.05)

    def close(self) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()


def test_watch_on_a_server_that_never_answers_is_one_line_not_an_abort(tmp_path):
    server = SilentServer()
    try:
        proc = cli(["watch", server.url, "--open-timeout", "2", "--db", str(tmp_path / "e.db"), "--snapshots", "none"],
                   stderr=subprocess.PIPE)
        _, err = proc.communicate(timeout=60)
    finally:
        server.close()
    assert proc.returncode == 2, err
    assert "terminate called" not in err and "Traceback" not in err
    assert err.strip().splitlines()[-1] == f"error: {server.url}: stream did not open within 2 s (check the address, " \
                                           "credentials, network or camera index)"


def test_watch_reconnects_to_a_camera_gone_silent_and_stops_cleanly(tmp_path):
    """The stream plays, then the server accepts reconnects and says nothing: source_lost, reconnect attempts
    each cut at --open-timeout, and SIGTERM still ends with the summary and exit 0."""
    from maskwatch.store import EventStore

    server = SilentServer(frames=30)
    log = tmp_path / "stderr.txt"
    db = str(tmp_path / "e.db")
    try:
        with open(log, "w") as err_fh:
            proc = cli(["watch", server.url, "--open-timeout", "2", "--db", db, "--snapshots", "none"], stderr=err_fh)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not ("source_lost" in log.read_text() and server.accepted >= 3):
                assert proc.poll() is None, log.read_text()
                time.sleep(0.2)
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
    finally:
        server.close()
        if proc.poll() is None:
            proc.kill()
    err = log.read_text()
    assert server.accepted >= 3, err  # the first stream, then reconnects to the silent server
    assert proc.returncode == 0, err
    assert "terminate called" not in err and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("interrupted: ")
    assert "source_lost" in [e.type for e in EventStore(db, spool=None).query()]
