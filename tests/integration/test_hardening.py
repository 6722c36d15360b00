"""Issue 13: hostile or unlucky inputs end as 4xx answers or one-line errors, never tracebacks or leaks."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from typer.testing import CliRunner  # noqa: E402

from maskwatch.cli import app as cli_app  # noqa: E402
from maskwatch.errors import MaskWatchError  # noqa: E402
from maskwatch.redact import redact  # noqa: E402
from maskwatch.store import Event, EventStore  # noqa: E402
from tests.helpers.fake_pipelines import fake_client  # noqa: E402,F401  (the server fixture: fake pipeline, temporary database)

HUGE = "477304052507696219291648"


@pytest.fixture
def client(fake_client):
    return fake_client


@pytest.mark.parametrize("url", [f"/v1/events?track_id={HUGE}", f"/v1/events?after_id={HUGE}",
                                 "/v1/events/9223372036854775808/snapshot", "/v1/events?since=1000000d",
                                 "/v1/events?track_id=-9223372036854775809"])
def test_over_large_numbers_and_dates_are_4xx(client, url):
    answer = client().get(url)
    assert 400 <= answer.status_code < 500, answer.text
    assert set(answer.json()) == {"error", "detail"}


def test_nul_byte_in_a_stored_snapshot_path_is_404(client, tmp_path):
    store = EventStore(str(tmp_path / "events.db"))
    store.add(Event("entered_unmasked", datetime.now(timezone.utc), "door", snapshot=str(tmp_path / "snaps" / "a\x00b.jpg")))
    event_id = store.query()[0].id
    store.close()
    answer = client().get(f"/v1/events/{event_id}/snapshot")
    assert answer.status_code == 404, answer.text


def test_only_configured_host_names_are_answered(client):
    c = client(hosts=["cams.example.org"])
    assert c.get("/v1/events", headers={"Host": "evil.example"}).status_code == 400
    assert c.get("/v1/events", headers={"Host": "cams.example.org:8443"}).status_code == 200
    assert c.get("/v1/events", headers={"Host": "127.0.0.1:8000"}).status_code == 200
    assert client(hosts=["*"]).get("/v1/events", headers={"Host": "anything"}).status_code == 200


def test_health_shows_paths_only_with_the_key(client, tmp_path):
    c = client(api_key="k3y")
    public = c.get("/v1/health").json()
    assert "events_db" not in public and "classifier" not in public and public["status"] == "ok"
    assert "events_db" in c.get("/v1/health", headers={"X-API-Key": "k3y"}).json()


@pytest.mark.parametrize("args", [["--since", "1000000d"], ["--track", "99999999999999999999"]])
def test_events_cli_out_of_range_is_one_line_error(tmp_path, args):
    out = CliRunner().invoke(cli_app, ["events", "--db", str(tmp_path / "e.db"), *args])
    assert out.exit_code == 2, out.output
    assert out.exception is None or isinstance(out.exception, SystemExit)
    assert "Traceback" not in out.output and "error:" in out.output


def test_redact_masks_url_passwords_and_secret_parameters():
    assert redact("rtsp://admin:hunter2@cam.local:554/live") == "rtsp://admin:***@cam.local:554/live"
    assert redact("postgresql+psycopg://u:p%40ss@db/x") == "postgresql+psycopg://u:***@db/x"
    assert redact("http://cam/snap?user=a&password=secret&x=1") == "http://cam/snap?user=a&password=***&x=1"
    assert redact("door.mp4") == "door.mp4" and redact(None) is None


def test_credentials_are_not_stored_nor_in_database_errors(tmp_path):
    store = EventStore(str(tmp_path / "e.db"))
    store.add(Event("source_lost", datetime.now(timezone.utc), "rtsp://u:topsecret@cam/1", camera="rtsp://u:topsecret@cam/1"))
    ev = store.query()[0]
    assert "topsecret" not in ev.source and "topsecret" not in ev.camera
    store.close()
    with pytest.raises(MaskWatchError) as info:
        EventStore("postgresql+psycopg://maskwatch:topsecret@127.0.0.1:1/none?connect_timeout=1")
    assert "topsecret" not in str(info.value)


def test_live_source_name_has_no_password():
    from maskwatch.video.sources import LiveSource

    from maskwatch.errors import InputError

    with pytest.raises(InputError) as info:  # the error names the stream without its password
        LiveSource("rtsp://u:topsecret@127.0.0.1:1/x", open_timeout_s=0.2, opener=lambda spec, timeout: None)
    assert "topsecret" not in str(info.value) and "u:***@127.0.0.1" in str(info.value)


# -- datasets and images ----------------------------------------------------------------------------

EPS = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n{ 1 } loop\n%%EOF\n"


def _hostile_voc(root):
    from PIL import Image

    (root / "images").mkdir(parents=True)
    (root / "annotations").mkdir()
    for stem in ("good", "inf", "bogus", "empty"):
        Image.new("RGB", (64, 48), (90, 120, 150)).save(root / "images" / f"{stem}.jpg")
    (root / "images" / "empty.jpg").write_bytes(b"")
    box = "<object><name>with_mask</name><bndbox><xmin>4</xmin><ymin>4</ymin><xmax>30</xmax><ymax>30</ymax></bndbox></object>"
    for stem, size in (("good", (64, 48)), ("inf", ("inf", "inf")), ("empty", (64, 48))):
        (root / "annotations" / f"{stem}.xml").write_text(
            f"<annotation><filename>{stem}.jpg</filename><size><width>{size[0]}</width><height>{size[1]}</height>"
            f"</size>{box}</annotation>")
    (root / "annotations" / "bogus.xml").write_bytes(b'<?xml version="1.0" encoding="x-bogus"?><annotation/>')
    (root / "annotations" / "x.xml").mkdir()
    return root


def test_hostile_voc_folder_is_reported_not_fatal(tmp_path):
    from maskwatch.data import read_voc

    ds = read_voc(_hostile_voc(tmp_path / "voc"))
    assert sorted(img.key for img in ds.images) == ["good", "inf"]  # inf: size read from the image
    counts = ds.report.counts
    assert counts["malformed XML"] == 1 and counts["unreadable annotation"] == 1 and counts["unreadable image"] == 1


def test_eval_split_goes_on_past_hostile_files(tmp_path):
    data = _hostile_voc(tmp_path / "voc")
    out = CliRunner().invoke(cli_app, ["eval", "split", str(data), "--out", str(tmp_path / "splits")])
    assert out.exit_code == 0, out.output
    stems = [s for n in ("train", "val", "test") for s in (tmp_path / "splits" / f"{n}.txt").read_text().split()]
    assert sorted(stems) == ["good", "inf"]


def test_dhash_of_an_unreadable_or_huge_image_does_not_raise(tmp_path, monkeypatch):
    from PIL import Image

    from maskwatch import images
    from maskwatch.data.splits import dhash

    (tmp_path / "empty.jpg").write_bytes(b"")
    Image.new("RGB", (200, 200)).save(tmp_path / "big.png")
    monkeypatch.setattr(images, "DEFAULT_MAX_PIXELS", 100)
    monkeypatch.setattr(images.open_image, "__defaults__", (None, 100))
    assert dhash(tmp_path / "empty.jpg") != dhash(tmp_path / "big.png")


def test_eps_is_refused_without_running_ghostscript(client, tmp_path, monkeypatch):
    import subprocess

    from maskwatch.errors import InputError
    from maskwatch.images import decode_image_bytes, read_image

    def no_subprocess(*a, **k):
        raise AssertionError("a subprocess was started for an image")

    monkeypatch.setattr(subprocess, "Popen", no_subprocess)
    answer = client().post("/v1/detect", content=EPS)
    assert answer.status_code == 400 and answer.json()["error"] == "not a readable image"
    with pytest.raises(InputError):
        decode_image_bytes(EPS)
    (tmp_path / "x.jpg").write_bytes(EPS)
    with pytest.raises(InputError):
        read_image(tmp_path / "x.jpg")


# -- detectors get only the options they take -------------------------------------------------------


def test_detector_options_are_filtered_or_refused_by_name():
    from maskwatch.detectors import Preferred, applicable_options
    from maskwatch.detectors.centerface import CenterFaceDetector
    from maskwatch.detectors.ultraface import UltraFaceDetector

    opts = {"input_size": Preferred(640), "threads": None, "min_face": 20.0}
    assert "input_size" not in applicable_options(UltraFaceDetector, "ultraface", opts)  # watch's default: dropped
    assert applicable_options(CenterFaceDetector, "centerface", opts)["input_size"] == 640
    with pytest.raises(MaskWatchError, match="ultraface.*input-size.*centerface"):
        applicable_options(UltraFaceDetector, "ultraface", {"input_size": 320})


def test_synth_box_outside_the_image_is_skipped_not_a_crash(tmp_path):
    import numpy as np
    from PIL import Image

    from maskwatch.detectors.centerface import CenterFaceDetector
    from maskwatch.synth import MaskSynthesizer, synthesize_folder

    src = tmp_path / "voc"
    (src / "images").mkdir(parents=True)
    (src / "annotations").mkdir()
    Image.new("RGB", (480, 400), (150, 150, 150)).save(src / "images" / "scene.jpg")
    # the XML claims a larger image than the file: the box lies beyond the real pixels
    (src / "annotations" / "scene.xml").write_text(
        "<annotation><filename>scene.jpg</filename><size><width>2000</width><height>2000</height></size>"
        "<object><name>without_mask</name><bndbox><xmin>900</xmin><ymin>900</ymin><xmax>1100</xmax><ymax>1100</ymax>"
        "</bndbox></object></annotation>")
    synth = MaskSynthesizer(min_face=20, detector=CenterFaceDetector(input_size=320, threads=1))
    report = synthesize_folder(src, tmp_path / "out", synth, seed=1)
    assert report.skipped["box outside image"] == 1
    faces = CenterFaceDetector(threads=1).detect(np.zeros((0, 0, 3), np.uint8))  # was ZeroDivisionError
    assert len(faces) == 0


# -- bounded work per request -----------------------------------------------------------------------


def test_stats_are_counted_by_the_database_not_by_loading_events(fake_client, tmp_path, monkeypatch):
    from datetime import timedelta

    store = EventStore(str(tmp_path / "events.db"))
    now = datetime.now(timezone.utc)
    for i in range(6):
        store.add(Event("mask_removed" if i % 2 else "entered_unmasked", now - timedelta(hours=i), "door.mp4",
                        camera=None if i == 5 else "door"))
    store.close()
    monkeypatch.setattr(EventStore, "query", lambda *a, **k: pytest.fail("stats loaded the events"))
    s = fake_client().get("/v1/stats?hours=24").json()
    assert s["total"] == 6 and s["by_camera"] == {"door": 5, "door.mp4": 1}
    assert s["by_type"]["mask_removed"] == 3 and [h["count"] for h in s["by_hour"]][-6:] == [1] * 6


def test_busy_server_refuses_an_upload_before_reading_its_body(fake_client):
    import threading

    from tests.helpers.fake_pipelines import BlockingPipeline, png_bytes

    pipeline = BlockingPipeline()
    client = fake_client(pipeline=pipeline, max_concurrent=1, max_pending=1)
    worker = threading.Thread(target=lambda: client.post("/v1/detect", content=png_bytes()))
    worker.start()
    try:
        while pipeline.calls == 0:
            pass
        # a form without an image was a 400 after reading it; now the busy check comes first
        form = b'--x\r\nContent-Disposition: form-data; name="note"\r\n\r\nhi\r\n--x--\r\n'
        answer = client.post("/v1/detect", content=form, headers={"Content-Type": "multipart/form-data; boundary=x"})
        assert answer.status_code == 503 and answer.json()["error"] == "busy"
    finally:
        pipeline.release.set()
        worker.join(20)


def test_one_detection_has_a_time_limit(fake_client):
    from tests.helpers.fake_pipelines import BlockingPipeline, png_bytes

    pipeline = BlockingPipeline()
    client = fake_client(pipeline=pipeline, detect_timeout_s=0.3, max_pending=1)
    try:
        answer = client.post("/v1/detect", content=png_bytes())
        assert answer.status_code == 503 and answer.json()["error"] == "detection timed out"
        assert client.post("/v1/detect", content=png_bytes()).json()["error"] == "busy"  # still running: slot held
    finally:
        pipeline.release.set()


# -- no lost events -----------------------------------------------------------------------------------


class _FailingCommits:
    """Session.commit fails (as on a full disk) while ``failing`` is true."""

    def __init__(self, monkeypatch):
        from sqlalchemy.exc import OperationalError
        from sqlalchemy.orm import Session

        self.failing = True
        real = Session.commit

        def commit(session):
            if self.failing:
                raise OperationalError("INSERT", {}, Exception("database or disk is full"))
            return real(session)

        monkeypatch.setattr(Session, "commit", commit)


def _ev(i):
    return Event("mask_removed", datetime.now(timezone.utc), "door", track_id=i)


def test_failed_writes_are_kept_reported_and_written_later(tmp_path, monkeypatch, capsys):
    store = EventStore(str(tmp_path / "e.db"), retry_wait_s=0, retry_interval_s=0, spool=None)
    faults = _FailingCommits(monkeypatch)
    assert not store.add(_ev(1)) and not store.add(_ev(2))
    assert store.unsaved == 2 and "cannot store events" in capsys.readouterr().err  # said at once, loudly
    faults.failing = False
    assert store.add(_ev(3)) and store.unsaved == 0
    assert [e.track_id for e in store.query()] == [1, 2, 3]
    store.close()


def test_pending_events_are_bounded_and_counted_when_the_disk_stays_full(tmp_path, monkeypatch, capsys):
    store = EventStore(str(tmp_path / "e.db"), max_pending=3, close_retries=2, retry_wait_s=0, spool=None)
    _FailingCommits(monkeypatch)
    for i in range(5):
        store.add(_ev(i))
    assert len(store.pending) == 3 and store.lost == 2
    store.close()
    assert store.unsaved == 5 and store.lost == 5 and "5 events lost" in capsys.readouterr().err


def test_watch_exit_status_says_events_were_not_stored(tmp_path, monkeypatch):
    from PIL import Image

    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(2):
        Image.new("RGB", (64, 48)).save(frames / f"{i}.png")
    monkeypatch.setattr(EventStore, "unsaved", property(lambda self: 4))  # spooled, none lost: exit 4
    out = CliRunner().invoke(cli_app, ["watch", str(frames), "--db", str(tmp_path / "e.db"), "--snapshots", "none"])
    assert out.exit_code == 4, out.output
    assert "4 events not stored" in out.output and "spooled" in out.output


def test_openapi_declares_the_detect_body_errors_and_jpeg_and_405_has_allow(fake_client):
    client = fake_client()
    op = client.get("/openapi.json").json()["paths"]["/v1/detect"]["post"]
    assert "multipart/form-data" in op["requestBody"]["content"] and "image/jpeg" in op["requestBody"]["content"]
    assert "image/jpeg" in op["responses"]["200"]["content"]
    assert {"400", "413", "422", "503"} <= set(op["responses"])
    assert op["responses"]["422"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    answer = client.get("/v1/detect")
    assert answer.status_code == 405 and answer.headers["allow"] == "POST"


@pytest.mark.slow
@pytest.mark.parametrize("target", ["/dev/full", "{tmp}/a_file/out.jsonl"])
def test_unwritable_outputs_are_one_line_errors(tmp_path, target):
    import os
    import subprocess
    import sys

    from maskwatch.cli.detect import example_image_path

    (tmp_path / "a_file").write_text("not a folder")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    out = subprocess.run([sys.executable, "-m", "maskwatch", "detect", str(example_image_path()), "--threads", "1",
                          "--json", target.format(tmp=tmp_path)], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode != 0 and "Traceback" not in out.stderr, out.stderr
    assert out.stderr.strip().splitlines()[-1].startswith("error:"), out.stderr


def test_large_jpeg_upload_is_decoded_reduced_and_boxes_come_back_in_original_pixels(fake_client):
    import io

    from PIL import Image

    from tests.helpers.fake_pipelines import FakePipeline

    shapes = []

    class Recording(FakePipeline):
        def __call__(self, image, timer=None):
            shapes.append(image.shape)
            return super().__call__(image, timer)

    buf = io.BytesIO()
    Image.new("RGB", (5000, 4000), (120, 90, 60)).save(buf, "JPEG", quality=70)
    body = fake_client(pipeline=Recording()).post("/v1/detect", content=buf.getvalue()).json()
    assert shapes == [(2000, 2500, 3)]  # JPEG draft at 1/2: a quarter of the memory
    assert (body["width"], body["height"]) == (5000, 4000)
    assert body["faces"][0]["box"] == [2.0, 2.0, 20.0, 20.0]
