"""Issue 13, the server: slow clients are cut off by the header/body clocks, the one-detection time limit
and the per-camera list of /v1/stats are options of `serve`."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest

pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")

from typer.testing import CliRunner  # noqa: E402

from maskwatch.cli import app as cli_app  # noqa: E402
from maskwatch.server.limits import slow_client_protocol  # noqa: E402
from maskwatch.store import Event, EventStore  # noqa: E402
from tests.helpers.fake_pipelines import fake_client  # noqa: E402,F401

HEAD_S, BODY_S = 1.5, 2.5


async def _echo_app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body") or message["type"] == "http.disconnect":
            break
    answer = b"got %d bytes" % len(body)
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % len(answer))]})
    await send({"type": "http.response.body", "body": answer})


@pytest.fixture(scope="module")
def guarded_server():
    config = uvicorn.Config(_echo_app, host="127.0.0.1", port=0, log_level="warning", lifespan="off",
                            http=slow_client_protocol(HEAD_S, BODY_S), timeout_keep_alive=5)
    server = uvicorn.Server(config)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(server.serve(),), daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield port
    server.should_exit = True
    thread.join(10)


def _closed_after(port: int, first: bytes, then: bytes = b"", every_s: float = 0.5, limit_s: float = 15.0) -> float:
    """Send ``first``, then ``then`` one byte every ``every_s``; seconds until the server closes."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.settimeout(every_s)
        sock.sendall(first)
        rest = iter(then)
        while time.monotonic() - started < limit_s:
            try:
                if sock.recv(4096) == b"":
                    return time.monotonic() - started
            except socket.timeout:
                byte = next(rest, None)
                try:
                    if byte is not None:
                        sock.sendall(bytes([byte]))
                except OSError:
                    return time.monotonic() - started
            except OSError:
                return time.monotonic() - started
    return float("inf")


def test_headers_trickled_one_byte_at_a_time_are_cut_off(guarded_server):
    head = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 100
    took = _closed_after(guarded_server, b"G", head[1:])
    assert HEAD_S - 0.2 <= took < HEAD_S + 2.0


def test_a_connection_that_sends_nothing_is_cut_off(guarded_server):
    assert HEAD_S - 0.2 <= _closed_after(guarded_server, b"") < HEAD_S + 2.0


def test_an_unfinished_body_is_cut_off_at_the_body_timeout(guarded_server):
    took = _closed_after(guarded_server, b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\n" + b"x" * 10,
                         b"y" * 100)
    assert BODY_S - 0.2 <= took < BODY_S + 2.0


def test_normal_requests_still_work_also_on_a_kept_alive_connection(guarded_server):
    import httpx

    with httpx.Client(base_url=f"http://127.0.0.1:{guarded_server}") as client:
        assert client.get("/").text == "got 0 bytes"
        time.sleep(HEAD_S + 0.5)  # idle between requests: the keep-alive timeout applies, not the header clock
        assert client.post("/", content=b"z" * 300_000).text == "got 300000 bytes"


def test_stats_list_the_busiest_cameras_and_sum_the_rest(fake_client, tmp_path):
    store = EventStore(str(tmp_path / "events.db"), spool=None)
    now = datetime.now(timezone.utc)
    for camera, n in (("door", 4), ("hall", 3), ("yard", 2), ("gate", 1)):
        for i in range(n):
            store.add(Event("mask_removed", now - timedelta(minutes=i), f"{camera}.mp4", camera=camera))
    store.close()
    s = fake_client(stats_cameras=2).get("/v1/stats?hours=2").json()
    assert s["by_camera"] == {"door": 4, "hall": 3} and s["by_camera_other"] == 3 and s["cameras"] == 4
    assert s["total"] == 10 and s["by_type"]["mask_removed"] == 10
    assert fake_client().get("/v1/stats").json()["by_camera_other"] == 0  # default: 20 listed


def test_serve_passes_its_timeouts_and_camera_cap(monkeypatch, tmp_path):
    import signal

    import maskwatch.server as server_pkg

    monkeypatch.setattr(signal, "signal", lambda *a: None)  # serve's SIGTERM handler is not for pytest

    seen = {}
    monkeypatch.setattr(server_pkg, "create_app", lambda **kw: seen.update(kw) or object())
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(uvicorn=kw))
    out = CliRunner().invoke(cli_app, ["serve", "--port", str(_free_port()), "--db", str(tmp_path / "e.db"),
                                       "--detect-timeout", "4.5", "--header-timeout", "3", "--body-timeout", "7",
                                       "--stats-cameras", "5"])
    assert out.exit_code == 0, out.output
    assert seen["detect_timeout_s"] == 4.5 and seen["stats_cameras"] == 5
    assert seen["uvicorn"]["http"].timeouts == (3.0, 7.0)
    out = CliRunner().invoke(cli_app, ["serve", "--detect-timeout", "0"])
    assert out.exit_code == 2 and "--detect-timeout" in out.output


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
