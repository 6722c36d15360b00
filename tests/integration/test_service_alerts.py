"""The venue service with alerts, on SQLite and on a real PostgreSQL: `maskwatch serve --config` with a
door camera (a video file) and a looping one, a webhook channel to an HMAC-checking receiver started here.
The alert arrives signed with a snapshot_url the service serves, /v1/alerts lists it, a second event of
the same person within the cooldown sends nothing, SIGTERM leaves every event in the store, and a restart
sends nothing twice."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from maskwatch.store import EventStore
from tests.helpers.scenes import Actor, Scene, swap_scene, write_colour_key_onnx
from tests.integration.test_alerts import SECRET, _Receiver
from tests.integration.test_service import ServiceProcess as _Service, free_port, listen_events, wait_for
from tests.integration.test_watch import detector, sprites  # noqa: F401  (module fixtures)

RULE_TYPES = ("entered_unmasked", "mask_removed")


def _config(tmp_path: Path, store: str, port: int, hook_port: int, door_enabled: bool = True) -> Path:
    path = tmp_path / "venue.yaml"
    path.write_text(f"""
cameras:
  - {{name: door, source: door.avi, detect_every: 3, enabled: {str(door_enabled).lower()}}}
  - {{name: hall, source: hall.avi, detect_every: 3, loop: true, realtime: true}}
models: {{detector: centerface, input_size: 320, classifier: ck.onnx, threads: 1}}
store: "{store}"
snapshots: {{dir: snaps, mode: blurred}}
server: {{host: 127.0.0.1, port: {port}}}
supervisor: {{backoff_s: 0.5}}
alerts:
  rules:
    event_types: [{", ".join(RULE_TYPES)}]
    cooldown_person_s: 300
  channels:
    webhook: {{url: "http://127.0.0.1:{hook_port}/hook", secret: {SECRET}}}
  retry: {{backoff_s: 0.2, max_backoff_s: 1}}
  close_timeout_s: 3
""")
    return path


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_venue_alerts_signed_once_per_person_and_every_event_stored(tmp_path, sprites, backend, request):  # noqa: F811
    store = str(tmp_path / "events.db") if backend == "sqlite" else request.getfixturevalue("postgres_url")
    swap_scene(sprites).write(tmp_path / "door.avi")  # 150 frames: 4 mask events, one person with two to alert on
    Scene([Actor(sprites[1], path=lambda f: (100 + f, 150), state=lambda f: "mask")],
          frames=60, seed=3).write(tmp_path / "hall.avi")
    write_colour_key_onnx(tmp_path / "ck.onnx")
    receiver = _Receiver().start()
    port = free_port()
    config = _config(tmp_path, store, port, receiver.port)
    service = _Service(tmp_path, config, port, "serve.log")
    base = service.base
    pushed: list[dict] = []
    try:
        listen_events(base, pushed)

        def door_state():
            return {c["name"]: c for c in httpx.get(f"{base}/v1/cameras").json()["cameras"]}["door"]["state"]

        wait_for("door finished", lambda: door_state() == "stopped", 90)
        stored = EventStore(store).query(camera="door")
        alertable = [e for e in stored if e.type in RULE_TYPES]
        first_per_track: dict[int, int] = {}
        for ev in alertable:
            first_per_track.setdefault(ev.track_id, ev.id)
        assert len(alertable) > len(first_per_track), \
            f"the scene must give one person two events to alert on: {[(e.type, e.track_id) for e in alertable]}"
        wait_for("the webhooks", lambda: len(receiver.got) >= len(first_per_track), 20)
        time.sleep(1.5)  # nothing more may come: the rest is within the person cooldown
        got = {body["id"]: body for body in receiver.got}
        assert receiver.bad == 0, "every body carries a valid HMAC-SHA256 signature"
        assert sorted(got) == sorted(first_per_track.values()), (sorted(got), first_per_track)
        assert len(receiver.got) == len(got), "no alert delivered twice"
        for body in got.values():
            assert body["camera"] == "door" and body["type"] in RULE_TYPES and "snapshot" not in body
            assert body["snapshot_url"] == f"{base}/v1/events/{body['id']}/snapshot"
            snap = httpx.get(body["snapshot_url"])
            assert snap.status_code == 200 and snap.content[:2] == b"\xff\xd8", "the service serves the snapshot"

        listed = httpx.get(f"{base}/v1/alerts", params={"camera": "door"}).json()
        assert listed["count"] == len(got) and listed["counts"]["open"] == len(got)
        assert {a["event_id"] for a in listed["alerts"]} == set(got)
        assert all(a["deliveries"]["webhook"]["state"] == "delivered" for a in listed["alerts"])
        channels = httpx.get(f"{base}/v1/alerts/channels").json()
        assert channels["channels"]["webhook"]["delivered"] == len(got)
        assert channels["live"]["channels"]["webhook"]["delivered"] == len(got)
        assert channels["live"]["suppressed"].get("person cooldown", 0) == len(alertable) - len(first_per_track)
        wait_for("events pushed", lambda: len(pushed) >= len(stored), 10)
    finally:
        rc, took, log = service.stop()
    assert rc == 0, log[-3000:]
    assert took < 15, f"SIGTERM took {took:.1f} s"
    everything = EventStore(store).query()
    ids = {e.id for e in everything}
    assert {p["id"] for p in pushed} <= ids, "every event pushed over SSE is in the store after SIGTERM"
    assert sorted(e.type for e in everything if e.camera == "door") == \
        ["entered_unmasked", "mask_removed", "mask_removed", "mask_restored"]
    if backend == "postgres":
        assert EventStore(store).engine.dialect.name == "postgresql"
        receiver.stop()
        return

    # a restart sends nothing twice: the feed starts after the highest id already stored
    config = _config(tmp_path, store, port, receiver.port, door_enabled=False)
    service = _Service(tmp_path, config, port, "serve2.log")
    try:
        time.sleep(3)
        assert len(receiver.got) == len(got), "events stored before the restart are not alerted again"
    finally:
        rc, _, log = service.stop()
        receiver.stop()
    assert rc == 0, log[-3000:]


def test_cooldown_tells_a_restarted_workers_people_apart():
    """The venue's one dispatcher outlives camera workers; a restarted worker numbers its tracks from 0
    again, so track 0 of the new worker is someone else (its events carry the worker's pid)."""
    from datetime import datetime, timezone

    from maskwatch.alerts import AlertsConfig
    from maskwatch.alerts.rules import RuleEngine
    from maskwatch.store import Event

    def ev(pid):
        return Event("mask_removed", datetime.now(timezone.utc), "door", camera="door", track_id=0,
                     extra={"worker_pid": pid})

    rules = RuleEngine(AlertsConfig.model_validate({"rules": {"cooldown_person_s": 300}}).rules)
    assert rules.check(ev(100)) is None
    assert rules.check(ev(100)) == "person cooldown"  # the same person, the same worker
    assert rules.check(ev(200)) is None  # track 0 of the worker started after a crash

