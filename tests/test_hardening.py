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
from test_server import fake_client  # noqa: E402,F401  (the server fixture: fake pipeline, temporary database)

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
