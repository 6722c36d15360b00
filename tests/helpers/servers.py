"""Real servers for tests, started on 127.0.0.1 by the tests themselves (Debian packages; `.ci/run`
installs them). Each ``start_*`` returns a handle with ``url`` and ``stop()``; the fixtures in
``conftest.py`` wrap them. A missing binary is a skip with the reason outside CI and a failure in CI."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import cv2
import numpy as np


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as s:
            s.settimeout(0.2)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout_s:.0f} s")


@dataclass
class Server:
    url: str
    port: int
    stop_fn: Callable[[], None]
    info: dict = field(default_factory=dict)

    def stop(self) -> None:
        self.stop_fn()


def postgres_bin() -> Path | None:
    """The newest Debian PostgreSQL server binaries (``/usr/lib/postgresql/<N>/bin``), or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    pg_ctl = shutil.which("pg_ctl")
    return Path(pg_ctl).parent if pg_ctl else None


def start_postgres() -> Server:
    """A throw-away PostgreSQL cluster (trust auth, TCP on 127.0.0.1, an ephemeral port). PostgreSQL refuses
    to run as root, so under root it runs as the ``postgres`` user Debian's package creates."""
    bindir = postgres_bin()
    if bindir is None:
        raise FileNotFoundError("PostgreSQL server binaries (Debian package postgresql)")
    as_user: list[str] = []
    if os.geteuid() == 0:
        as_user = ["runuser", "-u", "postgres", "--"]
    root = Path(tempfile.mkdtemp(prefix="maskwatch-pg-"))
    data = root / "data"
    if as_user:
        shutil.chown(root, "postgres", "postgres")
    subprocess.run([*as_user, str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
                    "--no-sync", "-E", "UTF8"], check=True, capture_output=True)
    port = free_port()
    opts = f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=off -c full_page_writes=off"
    subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(root / "log"),
                    "-w", "-t", "30", "start"], check=True, capture_output=True)

    def stop() -> None:
        subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)

    url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    return Server(url=url, port=port, stop_fn=stop, info={"root": root, "bindir": bindir})


def start_mosquitto(port: int | None = None) -> Server:
    """A mosquitto MQTT broker on 127.0.0.1 (anonymous, no persistence); ``port`` to restart one on the same port."""
    binary = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
    if binary is None:
        raise FileNotFoundError("mosquitto (Debian package mosquitto)")
    root = Path(tempfile.mkdtemp(prefix="maskwatch-mqtt-"))
    port = port or free_port()
    conf = root / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    proc = subprocess.Popen([binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port)
    except TimeoutError:
        proc.kill()
        raise

    def stop() -> None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(root, ignore_errors=True)

    return Server(url=f"mqtt://127.0.0.1:{port}", port=port, stop_fn=stop, info={"process": proc})


class SilentServer:
    """Accepts TCP connections on ``port`` (0: a free one) and never sends a byte: a stream that hangs while
    opening. With ``frames``, the first connection instead gets
    an MJPEG stream of that many frames and is then closed (a camera that goes quiet)."""

    def __init__(self, frames: int = 0, port: int = 0):
        self.sock = socket.create_server(("127.0.0.1", port))  # SO_REUSEADDR on POSIX: a just-freed port works
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
