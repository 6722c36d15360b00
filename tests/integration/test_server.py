"""`maskwatch serve`: the HTTP API, upload checks, events and snapshots, the dashboard, the CLI."""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
import httpx  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from maskwatch.cli import app as cli_app  # noqa: E402
from maskwatch.cli.detect import example_image_path  # noqa: E402
from maskwatch.errors import InputError  # noqa: E402
from maskwatch.images import ImageTooLargeError, decode_image_bytes, read_image  # noqa: E402
from maskwatch.server import create_app  # noqa: E402
from maskwatch.store import Event, EventStore  # noqa: E402
from tests.helpers.fake_pipelines import BlockingPipeline, FakePipeline, fake_client, png_bytes  # noqa: E402,F401  (fake_client: fixture)

SRC = Path(__file__).resolve().parents[2] / "src"
FACE_KEYS = {"box", "score", "label", "label_score", "probs", "landmarks"}


@pytest.fixture(scope="module")
def real_client(tmp_path_factory):
    app = create_app(db=str(tmp_path_factory.mktemp("db") / "events.db"), threads=1)
    return TestClient(app, base_url="http://localhost")


def assert_error(response, status: int, *words: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "detail"}
    text = f"{body['error']} {body['detail']}".lower()
    for word in words:
        assert word.lower() in text, text
    assert "traceback" not in text
    return body


# -- image decoding shared with read_image ------------------------------------------------------
def test_decode_image_bytes_matches_read_image(tmp_path):
    path = tmp_path / "a.png"
    path.write_bytes(png_bytes(9, 7, (10, 20, 30)))
    assert np.array_equal(decode_image_bytes(path.read_bytes(), "a.png"), read_image(path))
    assert decode_image_bytes(path.read_bytes())[0, 0].tolist() == [30, 20, 10]  # BGR
    for data, problem in [(b"", "empty file"), (b"just some text\n", "looks like a text file"),
                          (png_bytes()[:60], "truncated or corrupt")]:
        with pytest.raises(InputError, match=problem) as bytes_error:
            decode_image_bytes(data, "up.png")
        path.write_bytes(data)
        with pytest.raises(InputError) as file_error:
            read_image(path)
        assert bytes_error.value.problem == file_error.value.problem
    with pytest.raises(ImageTooLargeError, match="100x100 .* exceeds"):
        decode_image_bytes(png_bytes(100, 100), "big.png", max_pixels=5000)


# -- health and detection with the real pipeline ------------------------------------------------
def test_cli_and_api_write_one_record_shape(real_client, tmp_path):
    """detect --json and POST /v1/detect use one serializer: the same record for the same photo."""
    from typer.testing import CliRunner

    from maskwatch.cli import app as cli_app

    photo = example_image_path()
    result = CliRunner().invoke(cli_app, ["detect", str(photo), "--no-draw", "--threads", "1",
                                          "--json", str(tmp_path / "d.jsonl")])
    assert result.exit_code == 0, result.output
    cli = json.loads((tmp_path / "d.jsonl").read_text())
    api = real_client.post("/v1/detect", files={"image": (photo.name, photo.read_bytes(), "image/jpeg")}).json()
    assert set(api) - set(cli) == {"timings_ms"} and api["ms"] == api["timings_ms"]["total"]
    assert cli["image"] == str(photo) and api["image"] == photo.name
    drop = ("image", "ms")
    assert {k: v for k, v in cli.items() if k not in drop} == {k: v for k, v in api.items() if k not in drop + ("timings_ms",)}
    assert len(cli["faces"]) == 1 and cli["counts"]["no_mask"] == 1


def test_health_reports_models_and_version(real_client):
    body = real_client.get("/v1/health").json()
    assert body["status"] == "ok" and body["version"]
    assert body["detector"]["name"] == "centerface"
    assert body["classifier"]["path"].endswith(".onnx") and len(body["classifier"]["sha256"]) == 64
    assert body["uptime_s"] >= 0 and body["api_key_required"] is False


def test_detect_finds_the_astronaut_unmasked(real_client):
    data = example_image_path().read_bytes()
    r = real_client.post("/v1/detect", files={"image": ("astronaut.png", data, "image/png")})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["image"], body["width"], body["height"]) == ("astronaut.png", 512, 512)
    (face,) = body["faces"]
    assert set(face) >= FACE_KEYS and face["label"] == "no_mask"
    x1, y1, x2, y2 = face["box"]
    assert 150 < (x1 + x2) / 2 < 280 and 40 < (y1 + y2) / 2 < 200
    assert body["counts"] == {"mask": 0, "no_mask": 1, "incorrect": 0}
    assert body["timings_ms"]["detect"] > 0 and body["timings_ms"]["total"] >= body["timings_ms"]["detect"]
    # the raw body gives the same answer, and min_score above the face's score removes it
    raw = real_client.post("/v1/detect", content=data).json()
    assert raw["faces"] == body["faces"]
    assert real_client.post(f"/v1/detect?min_score={min(1.0, face['score'] + 0.01)}", content=data).json()["faces"] == []


def test_annotate_returns_a_jpeg_with_the_faces_in_headers(real_client):
    r = real_client.post("/v1/detect?annotate=true", content=example_image_path().read_bytes())
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    img = Image.open(io.BytesIO(r.content))
    assert img.format == "JPEG" and img.size == (512, 512)
    assert json.loads(r.headers["x-maskwatch-counts"])["no_mask"] == 1
    assert json.loads(r.headers["x-maskwatch-faces"])[0]["label"] == "no_mask"


# -- bad uploads --------------------------------------------------------------------------------
@pytest.mark.parametrize("data, words", [
    (b"", ("empty",)),
    (b"name,age\nann,3\n", ("not an image", "text")),
    (png_bytes(64, 64)[:80], ("truncated or corrupt",)),
    (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, ("not an image",)),
])
def test_bad_images_get_400_naming_the_problem(fake_client, data, words):
    client = fake_client()
    assert_error(client.post("/v1/detect", content=data), 400, *words)
    assert_error(client.post("/v1/detect", files={"image": ("bad.jpg", data, "image/jpeg")}), 400, "bad.jpg", *words)
    assert client.app.state.pipeline.calls == 0


def test_size_limits_give_413(fake_client):
    client = fake_client(max_upload_bytes=2000, max_pixels=10_000)
    big = np.random.default_rng(0).integers(0, 255, (60, 60, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(big).save(buf, "PNG")
    assert len(buf.getvalue()) > 2000
    assert_error(client.post("/v1/detect", content=buf.getvalue()), 413, "upload too large", "MiB")
    assert_error(client.post("/v1/detect", files={"image": ("x.png", buf.getvalue())}), 413, "upload too large")

    def chunks():  # no Content-Length: the running count must still stop it
        for _ in range(10):
            yield b"\0" * 500

    assert_error(client.post("/v1/detect", content=chunks()), 413, "upload too large")
    assert_error(client.post("/v1/detect", content=png_bytes(200, 100)), 413, "image too large", "200x100")
    assert client.post("/v1/detect", content=png_bytes(50, 50)).status_code == 200


def test_form_without_a_file_and_bad_options(fake_client):
    client = fake_client()
    assert_error(client.post("/v1/detect", files={"note": (None, "hello")}), 400, "no image", "'image'")
    assert_error(client.post("/v1/detect?min_score=1.5", content=png_bytes()), 422, "min_score")


def test_min_score_filters_and_any_file_field_is_accepted(fake_client):
    client = fake_client()
    body = client.post("/v1/detect?min_score=0.5", files={"photo": ("p.png", png_bytes())}).json()
    assert [f["score"] for f in body["faces"]] == [0.9]
    assert body["counts"] == {"mask": 1, "no_mask": 0, "incorrect": 0}
    assert len(client.post("/v1/detect", content=png_bytes()).json()["faces"]) == 2


def test_pipeline_failures_are_json_not_tracebacks(fake_client):
    import cv2

    assert_error(fake_client(pipeline=FakePipeline(cv2.error("boom"))).post("/v1/detect", content=png_bytes()),
                 422, "cannot process image")
    answer = fake_client(pipeline=FakePipeline(RuntimeError("surprise"))).post("/v1/detect", content=png_bytes())
    assert_error(answer, 500, "internal error")
    assert "surprise" not in answer.text and "RuntimeError" not in answer.text  # no exception text leaves


def test_busy_server_refuses_extra_photos_and_keeps_answering(fake_client):
    pipeline = BlockingPipeline()
    client = fake_client(pipeline=pipeline, max_concurrent=1, max_pending=1)
    first: list = []
    worker = threading.Thread(target=lambda: first.append(client.post("/v1/detect", content=png_bytes())))
    worker.start()
    try:
        deadline = time.monotonic() + 10
        while pipeline.calls == 0:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert_error(client.post("/v1/detect", content=png_bytes()), 503, "busy")
        assert client.get("/v1/health").status_code == 200  # not blocked by the photo in progress
        assert client.get("/v1/events").status_code == 200
    finally:
        pipeline.release.set()
        worker.join(20)
    assert first[0].status_code == 200 and first[0].json()["faces"] == []
    assert client.post("/v1/detect", content=png_bytes()).status_code == 200  # the slot is free again


def test_api_key_guards_everything_but_health_and_the_page(fake_client):
    client = fake_client(api_key="s3cret")
    assert client.get("/v1/health").json()["api_key_required"] is True
    assert client.get("/").status_code == 200  # the page holds no data; it asks for the key
    assert_error(client.post("/v1/detect", content=png_bytes()), 401, "api key", "X-API-Key")
    assert_error(client.post("/v1/detect", content=png_bytes(), headers={"X-API-Key": "nope"}), 401)
    assert client.post("/v1/detect", content=png_bytes(), headers={"X-API-Key": "s3cret"}).status_code == 200
    # events and snapshots show visitors' faces: the same key is needed
    for path in ("/v1/events", "/v1/stats", "/v1/events/1/snapshot"):
        assert_error(client.get(path), 401, "api key")
        assert_error(client.get(path, headers={"X-API-Key": "nope"}), 401)
    key = {"X-API-Key": "s3cret"}
    assert client.get("/v1/events", headers=key).status_code == 200
    assert client.get("/v1/stats", headers=key).status_code == 200
    assert_error(client.get("/v1/events/1/snapshot", headers=key), 404, "no such event")


# -- events, snapshots, stats -------------------------------------------------------------------
@pytest.fixture
def filled(tmp_path, fake_client):
    """A store with four events (two cameras, one without a name) and snapshot files."""
    snaps = tmp_path / "snaps"
    snaps.mkdir()
    (snaps / "ev1.jpg").write_bytes(b"\xff\xd8 snapshot one")
    secret = tmp_path / "secret.jpg"
    secret.write_bytes(b"not for you")
    (snaps / "link.jpg").symlink_to(secret)
    now = datetime.now(timezone.utc)
    store = EventStore(str(tmp_path / "events.db"))
    for ev in [
        Event("entered_unmasked", now - timedelta(hours=30), "door.mp4", camera="door", track_id=1, snapshot=str(snaps / "ev1.jpg")),
        Event("mask_removed", now - timedelta(hours=2), "door.mp4", camera="door", track_id=2,
              state_before="mask", state_after="no_mask", confidence=0.8, snapshot=str(snaps / ".." / "secret.jpg")),
        Event("mask_incorrect", now - timedelta(minutes=30), "rtsp://hall", track_id=2, snapshot=str(snaps / "gone.jpg")),
        Event("mask_restored", now - timedelta(minutes=1), "door.mp4", camera="door", track_id=2, snapshot=str(snaps / "link.jpg")),
        Event("source_lost", now, "rtsp://hall", snapshot="/etc/passwd"),
    ]:
        assert store.add(ev)
    store.close()
    return fake_client()


def test_events_filters_and_order(filled):
    def ids(query=""):
        r = filled.get(f"/v1/events{query}")
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["count"] == len(body["events"])
        return [e["id"] for e in body["events"]]

    assert ids() == [5, 4, 3, 2, 1]
    assert ids("?order=oldest&limit=2") == [1, 2]
    assert ids("?type=mask_removed&type=mask_restored") == [4, 2]
    assert ids("?track_id=2&camera=door") == [4, 2]
    assert ids("?camera=rtsp://hall") == [5, 3]  # no camera name: matched on the source
    assert ids("?source=door.mp4&since=3h") == [4, 2]
    hour_ago = (datetime.now(timezone.utc) - timedelta(hours=1)).isoformat()
    assert ids(f"?since={quote(hour_ago)}") == [5, 4, 3]
    assert ids("?after_id=3") == [5, 4]
    ev = filled.get("/v1/events?type=mask_removed").json()["events"][0]
    assert ev["state_before"] == "mask" and ev["confidence"] == 0.8 and ev["snapshot_url"] == "/v1/events/2/snapshot"
    assert set(ev) >= {"id", "type", "time", "track_id", "source", "camera", "state_after", "box"}
    assert_error(filled.get("/v1/events?type=bogus"), 400, "bogus", "entered_unmasked")
    assert_error(filled.get("/v1/events?since=yesterday"), 400, "yesterday")
    assert_error(filled.get("/v1/events?limit=0"), 422, "limit")


def test_snapshots_are_served_only_from_the_snapshot_folder(filled):
    r = filled.get("/v1/events/1/snapshot")
    assert r.status_code == 200 and r.content == b"\xff\xd8 snapshot one" and r.headers["content-type"] == "image/jpeg"
    for event_id in (2, 4, 5):  # ../ traversal, a symlink out of the folder, an absolute path elsewhere
        r = filled.get(f"/v1/events/{event_id}/snapshot")
        assert_error(r, 403, "outside")
        assert b"not for you" not in r.content and b"root:" not in r.content
    assert_error(filled.get("/v1/events/3/snapshot"), 404, "missing")
    assert_error(filled.get("/v1/events/99/snapshot"), 404, "no such event")


def test_stats_counts_per_type_camera_and_hour(filled):
    s = filled.get("/v1/stats").json()
    assert s["window_hours"] == 24 and s["total"] == 4  # the event 30 h ago is outside
    assert s["by_type"]["mask_removed"] == 1 and s["by_type"]["entered_unmasked"] == 0 and s["by_type"]["source_lost"] == 1
    assert s["by_camera"] == {"door": 2, "rtsp://hall": 2}
    assert len(s["by_hour"]) == 24 and sum(h["count"] for h in s["by_hour"]) == 4
    assert s["by_hour"][-1]["count"] >= 1  # the event of "now" is in the current hour
    assert filled.get("/v1/stats?hours=48").json()["total"] == 5


# -- dashboard and CLI --------------------------------------------------------------------------
def test_dashboard_is_self_contained_and_uses_the_api(fake_client):
    r = fake_client().get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    for endpoint in ("/events", "/stats", "/health", "/detect?annotate=true", "since", "X-MaskWatch-Faces"):
        assert endpoint in html
    assert "<script src" not in html and "cdn" not in html.lower()
    import re

    links = re.findall(r"<link[^>]*>", html)  # only the favicon, inline
    assert len(links) == 1 and 'rel="icon"' in links[0] and 'href="data:image/svg+xml' in links[0]
    for endpoint in ("/alerts", "\"ack\"", "\"resolve\"", "/cameras", "/events/stream"):
        assert endpoint in html


def test_serve_help_and_missing_extra(monkeypatch):
    runner = CliRunner()
    result = runner.invoke(cli_app, ["serve", "--help"])
    assert result.exit_code == 0 and "--max-upload-mb" in result.output and "--api-key" in result.output
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "fastapi" else real_find_spec(name, *a))
    result = runner.invoke(cli_app, ["serve"])
    assert result.exit_code == 2 and "maskwatch[server]" in result.output
    assert "Traceback" not in result.output


def test_serve_port_in_use_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("MASKWATCH_DB", str(tmp_path / "events.db"))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        result = CliRunner().invoke(cli_app, ["serve", "--port", str(busy.getsockname()[1])])
    assert result.exit_code == 2 and "cannot listen on 127.0.0.1" in result.output and "in use" in result.output


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_real_uvicorn_server_starts_and_answers(tmp_path):
    port = _free_port()
    env = dict(os.environ, PYTHONPATH=str(SRC), MASKWATCH_DB=str(tmp_path / "events.db"))
    proc = subprocess.Popen([sys.executable, "-m", "maskwatch", "serve", "--port", str(port), "--threads", "1",
                             "--log-level", "warning"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 45
        while True:
            assert proc.poll() is None, proc.stdout.read().decode()
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "server did not answer within 45 s"
                time.sleep(0.3)
        assert r.status_code == 200 and r.json()["status"] == "ok"
        assert r.json()["events_db"].endswith("events.db")
        r = httpx.post(f"http://127.0.0.1:{port}/v1/detect", content=b"not an image", timeout=30)
        assert r.status_code == 400 and r.json()["error"] == "not a readable image"
    finally:
        proc.terminate()
        proc.wait(timeout=15)


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed: the dashboard script cannot be run")
def test_dashboard_script_sends_the_key_and_loads_snapshots_through_fetch(tmp_path):
    """The page's own JavaScript, run by Node with a minimal fake DOM against a live server that needs a key."""
    import uvicorn

    from maskwatch.server.app import STATIC_DIR

    snaps = tmp_path / "snaps"
    snaps.mkdir()
    (snaps / "a.jpg").write_bytes(b"\xff\xd8 snapshot a")
    store = EventStore(str(tmp_path / "events.db"))
    now = datetime.now(timezone.utc)
    store.add(Event("entered_unmasked", now - timedelta(minutes=2), "door.mp4", camera="door", track_id=1,
                    snapshot=str(snaps / "a.jpg")))
    store.add(Event("mask_removed", now - timedelta(minutes=1), "door.mp4", camera="door", track_id=2,
                    snapshot=str(snaps / "deleted.jpg")))
    store.close()
    app = create_app(pipeline=FakePipeline(), db=str(tmp_path / "events.db"), snapshot_dir=snaps, api_key="k3y")
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.05)
        harness = Path(__file__).resolve().parents[1] / "helpers" / "js" / "dashboard_harness.mjs"
        out = subprocess.run(["node", str(harness), str(STATIC_DIR / "dashboard.html"), f"http://127.0.0.1:{port}", "k3y"],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        summary = json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        server.should_exit = True
        thread.join(10)
    # before the key is typed: the key field is shown and the events call says a key is needed
    assert summary["before"]["keyRowHidden"] is False
    assert "API key needed" in summary["before"]["updated"] and summary["before"]["rows"] == 0
    # with the key: both events, the stats cards, the key remembered, every data call carried it
    assert summary["rows"] == 2 and summary["cards"] > 1 and summary["stored_key"] == "k3y"
    snapshots = sorted(summary["snapshots"], key=lambda s: s["src"])
    assert snapshots[0]["src"] == "" and snapshots[0]["alt"] == "snapshot gone"
    assert snapshots[1]["src"].startswith("blob:")  # fetched with the key, shown from a blob URL
    assert summary["keyed_calls"] >= 4
