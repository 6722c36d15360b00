"""The alert endpoints, through the FastAPI TestClient."""

from __future__ import annotations

from datetime import datetime, timezone

from fastapi.testclient import TestClient

from maskwatch.alerts import AlertStore
from maskwatch.server import create_app
from maskwatch.store import Event, EventStore

from tests.helpers.fake_pipelines import FakePipeline


def _client(tmp_path, **kw):
    db = str(tmp_path / "events.db")
    store = EventStore(db)
    alerts = AlertStore(store.engine)
    ids = []
    for track, camera in ((1, "door"), (2, "door"), (3, "yard")):
        ev = Event(type="mask_removed", time=datetime.now(timezone.utc), source="x", camera=camera, track_id=track)
        store.add(ev)
        ids.append(alerts.create(ev, ["webhook", "mqtt"]))
    alerts.delivery(ids[0], "webhook", attempts=3, error="ConnectError: refused", delivered=True)
    alerts.delivery(ids[1], "mqtt", attempts=2, error="no CONNACK")
    client = TestClient(create_app(pipeline=FakePipeline(), db=db, snapshot_dir=tmp_path / "s", **kw),
                        raise_server_exceptions=False, base_url="http://localhost")
    return client, ids


def test_list_ack_resolve_and_filter_by_state(tmp_path):
    client, ids = _client(tmp_path)
    body = client.get("/v1/alerts").json()
    assert body["count"] == 3 and body["counts"] == {"open": 3, "acknowledged": 0, "resolved": 0}
    assert [a["id"] for a in body["alerts"]] == ids[::-1]
    assert client.get("/v1/alerts", params={"camera": "yard"}).json()["count"] == 1
    r = client.post(f"/v1/alerts/{ids[0]}/ack", json={"by": "ana", "note": "asked to mask up"})
    assert r.status_code == 200
    a = r.json()
    assert a["state"] == "acknowledged" and a["acknowledged_by"] == "ana" and a["acknowledged_at"]
    assert a["note"] == "asked to mask up"
    r = client.post(f"/v1/alerts/{ids[1]}/resolve", json={"by": "bo"})
    assert r.json()["state"] == "resolved" and r.json()["resolved_by"] == "bo" and r.json()["acknowledged_by"] == "bo"
    client.post(f"/v1/alerts/{ids[0]}/resolve", json={"by": "bo", "note": "done"})
    assert [a["id"] for a in client.get("/v1/alerts", params={"state": "open"}).json()["alerts"]] == [ids[2]]
    resolved = client.get("/v1/alerts", params={"state": "resolved"}).json()["alerts"]
    assert {a["id"] for a in resolved} == {ids[0], ids[1]}
    first = next(a for a in resolved if a["id"] == ids[0])
    assert first["acknowledged_by"] == "ana" and first["note"] == "asked to mask up\ndone"
    assert client.get("/v1/alerts", params={"state": "bogus"}).status_code == 422
    assert client.post("/v1/alerts/999/ack", json={"by": "x"}).status_code == 404
    assert client.post(f"/v1/alerts/{ids[2]}/ack", json={}).status_code == 422
    assert client.post(f"/v1/alerts/{ids[2]}/ack", json={"by": "x", "extra": 1}).status_code == 422


def test_channels_show_delivery_state(tmp_path):
    client, ids = _client(tmp_path)
    ch = client.get("/v1/alerts/channels").json()["channels"]
    assert ch["webhook"]["delivered"] == 1 and ch["webhook"]["pending"] == 2 and ch["webhook"]["attempts"] == 3
    assert ch["webhook"]["last_delivered_at"] and ch["webhook"]["last_error"] == "ConnectError: refused"
    assert ch["mqtt"]["pending"] == 3 and ch["mqtt"]["last_error"] == "no CONNACK"
    alert = client.get("/v1/alerts").json()["alerts"][-1]
    assert alert["deliveries"]["webhook"]["state"] == "delivered" and alert["deliveries"]["webhook"]["attempts"] == 3


def test_alerts_need_the_api_key(tmp_path):
    client, ids = _client(tmp_path, api_key="k")
    assert client.get("/v1/alerts").status_code == 401
    assert client.post(f"/v1/alerts/{ids[0]}/ack", json={"by": "x"}).status_code == 401
    assert client.get("/v1/alerts/channels", headers={"X-API-Key": "k"}).status_code == 200


def test_alert_ids_past_int64_are_a_4xx_not_a_500(tmp_path):
    """Found by the schemathesis run: /v1/alerts/9223372036854775808/resolve reached SQLite (OverflowError, 500)."""
    from fastapi.testclient import TestClient

    from maskwatch.server.app import create_app

    client = TestClient(create_app(db=tmp_path / "e.db", snapshot_dir=tmp_path), base_url="http://localhost")
    for action in ("ack", "resolve"):
        r = client.post(f"/v1/alerts/9223372036854775808/{action}", json={"by": "0"})
        assert r.status_code == 422, r.text
        assert client.post(f"/v1/alerts/9223372036854775807/{action}", json={"by": "0"}).status_code == 404
