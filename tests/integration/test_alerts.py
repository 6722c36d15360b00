"""Alerts: rules, records, and delivery to real servers on 127.0.0.1 (mosquitto, aiosmtpd, an HTTP
receiver checking the HMAC), each also while the receiver is down and then back."""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from maskwatch.alerts import AlertDispatcher, AlertsConfig, load_alerts_config
from maskwatch.alerts.channels import SIGNATURE_HEADER, verify
from maskwatch.alerts.rules import RuleEngine
from maskwatch.errors import MaskWatchError
from maskwatch.store import Event, EventStore

from tests.helpers.servers import free_port, start_mosquitto

SECRET = "s3cret"


def _event(type_="mask_removed", track=1, camera="door", confidence=0.9, snapshot=None):
    return Event(type=type_, time=datetime.now(timezone.utc), source="rtsp://x", camera=camera, track_id=track,
                 state_before="masked", state_after="unmasked", confidence=confidence, snapshot=snapshot)


def _wait(pred, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return False


def _cfg(**channels):
    return AlertsConfig.model_validate({"rules": {"cooldown_person_s": 0}, "channels": channels,
                                        "retry": {"backoff_s": 0.1, "max_backoff_s": 0.3}})


@pytest.fixture()
def store(tmp_path):
    s = EventStore(str(tmp_path / "events.db"))
    yield s
    s.close()


# --- config and rules -------------------------------------------------------------------------------------------

def test_config_forbids_unknown_keys_and_reads_venue_yaml(tmp_path):
    with pytest.raises(Exception):
        AlertsConfig.model_validate({"rules": {"cooldown": 3}})
    with pytest.raises(Exception):
        AlertsConfig.model_validate({"rules": {"event_types": ["nope"]}})
    path = tmp_path / "venue.yaml"
    path.write_text("cameras: []\nalerts:\n  rules:\n    min_confidence: 0.5\n    quiet_hours: [{start: '22:00', end: '06:00'}]\n"
                    "  channels:\n    smtp: {host: localhost, from: a@b.c, to: [d@e.f]}\n")
    cfg = load_alerts_config(path)
    assert cfg.rules.min_confidence == 0.5 and cfg.channels.smtp.from_ == "a@b.c"
    path.write_text("alerts: {bogus: 1}\n")
    with pytest.raises(MaskWatchError):
        load_alerts_config(path)


def test_rules_cooldowns_quiet_hours_confidence():
    clock = [0.0]
    now = [datetime(2026, 1, 1, 12, 0)]
    cfg = AlertsConfig.model_validate({"rules": {"cooldown_person_s": 60, "cooldown_camera_s": 5, "min_confidence": 0.5,
                                                 "cameras": ["door"], "quiet_hours": [{"start": "22:00", "end": "06:00"}]}})
    rules = RuleEngine(cfg.rules, clock=lambda: clock[0], now=lambda: now[0])
    assert rules.check(_event(track=1)) is None
    clock[0] = 10
    assert rules.check(_event(track=1)) == "person cooldown"  # the same person flickering
    assert rules.check(_event(track=2)) is None  # another person, camera cooldown over
    clock[0] = 11
    assert rules.check(_event(track=3)) == "camera cooldown"
    clock[0] = 100
    assert rules.check(_event(track=1)) is None  # cooldown over
    assert rules.check(_event(track=9, confidence=0.2)) == "confidence"
    assert rules.check(_event(track=9, camera="yard")) == "camera"
    assert rules.check(_event("mask_restored", track=9)) == "event type"
    now[0] = datetime(2026, 1, 1, 23, 30)
    clock[0] = 1000
    assert rules.check(_event(track=9)) == "quiet hours"
    now[0] = datetime(2026, 1, 2, 6, 0)
    assert rules.check(_event(track=9)) is None


# --- webhook ------------------------------------------------------------------------------------------------------

class _Receiver:
    def __init__(self, port=None):
        self.got: list[dict] = []
        self.bad = 0
        self.port = port or free_port()
        self.server = None

    def start(self):
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if verify(body, SECRET, self.headers.get(SIGNATURE_HEADER)):
                    outer.got.append(json.loads(body))
                    self.send_response(204)
                else:
                    outer.bad += 1
                    self.send_response(401)
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def test_webhook_signed_with_snapshot_url_and_retried_until_receiver_is_back(store, tmp_path):
    recv = _Receiver()
    cfg = _cfg(webhook={"url": f"http://127.0.0.1:{recv.port}/hook", "secret": SECRET,
                        "snapshot_base_url": "https://mw.example.org/"})
    disp = AlertDispatcher(cfg, store)
    snap = tmp_path / "s.jpg"
    snap.write_bytes(b"\xff\xd8fake")
    ev = _event(snapshot=str(snap))
    store.add(ev)
    t0 = time.monotonic()
    disp(ev)  # receiver is down
    assert time.monotonic() - t0 < 0.05  # never blocks the caller
    assert _wait(lambda: disp.workers["webhook"].attempts >= 2)
    alert = disp.alerts.list()[0]
    assert alert["deliveries"]["webhook"]["state"] == "pending" and alert["deliveries"]["webhook"]["last_error"]
    assert store.get(ev.id) is not None  # the event is stored whatever the channel does
    recv.start()
    try:
        assert _wait(lambda: recv.got)
        body = recv.got[0]
        assert body["snapshot_url"] == f"https://mw.example.org/v1/events/{ev.id}/snapshot"
        assert "snapshot" not in body and body["alert_id"] == alert["id"] and body["type"] == "mask_removed"
        assert recv.bad == 0
        assert _wait(lambda: disp.alerts.get(alert["id"])["deliveries"]["webhook"]["state"] == "delivered")
    finally:
        disp.close(2)
        recv.stop()


def test_webhook_wrong_secret_is_rejected_and_not_retried(store):
    recv = _Receiver().start()
    try:
        cfg = _cfg(webhook={"url": f"http://127.0.0.1:{recv.port}/", "secret": "wrong"})
        disp = AlertDispatcher(cfg, store)
        ev = _event()
        store.add(ev)
        disp(ev)
        assert _wait(lambda: disp.workers["webhook"].failed == 1)
        assert recv.bad == 1 and not recv.got
        assert disp.alerts.channel_summary()["webhook"]["failed"] == 1
        disp.close(1)
    finally:
        recv.stop()


# --- MQTT ---------------------------------------------------------------------------------------------------------

def _subscribe(port, topic):
    import paho.mqtt.client as mqtt

    got: list = []
    ready = threading.Event()
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    c.on_connect = lambda cl, u, f, rc, p=None: (cl.subscribe(topic, qos=1), ready.set())
    c.on_message = lambda cl, u, m: got.append((m.topic, json.loads(m.payload), m.retain))
    c.connect("127.0.0.1", port)
    c.loop_start()
    assert ready.wait(5)
    time.sleep(0.2)
    return c, got


def test_mqtt_events_and_retained_counts(store, mqtt_broker):
    sub, got = _subscribe(mqtt_broker.port, "maskwatch/#")
    disp = AlertDispatcher(_cfg(mqtt={"host": "127.0.0.1", "port": mqtt_broker.port}), store)
    try:
        for ev in (_event(), _event("mask_restored")):
            store.add(ev)
            disp(ev)
        assert _wait(lambda: len([g for g in got if g[0].endswith("/counts")]) >= 2 and any(g[0].endswith("/events") for g in got))
        events = [g for g in got if g[0] == "maskwatch/door/events"]
        assert len(events) == 1 and events[0][1]["type"] == "mask_removed"  # mask_restored raises no alert
        # a late subscriber gets the retained counts
        late, got2 = _subscribe(mqtt_broker.port, "maskwatch/door/counts")
        assert _wait(lambda: got2)
        assert got2[0][1]["counts"] == {"mask_removed": 1, "mask_restored": 1} and got2[0][2] is True
        late.loop_stop()
    finally:
        disp.close(2)
        sub.loop_stop()


def test_mqtt_broker_down_then_back(store, mqtt_broker):
    port = mqtt_broker.port
    disp = AlertDispatcher(_cfg(mqtt={"host": "127.0.0.1", "port": port}), store)
    mqtt_broker.stop()
    ev = _event()
    store.add(ev)
    disp(ev)
    assert _wait(lambda: disp.workers["mqtt"].attempts >= 2)
    assert disp.workers["mqtt"].delivered == 0
    broker = start_mosquitto(port)
    try:
        sub, got = _subscribe(port, "maskwatch/door/events")
        assert _wait(lambda: got, 20)
        assert got[0][1]["track_id"] == 1
        assert _wait(lambda: disp.alerts.list()[0]["deliveries"]["mqtt"]["state"] == "delivered")
        sub.loop_stop()
    finally:
        disp.close(2)
        broker.stop()


# --- SMTP ---------------------------------------------------------------------------------------------------------

class _Smtp:
    def __init__(self, port=None):
        self.port = port or free_port()
        self.messages: list = []
        self.controller = None

    def start(self):
        from aiosmtpd.controller import Controller

        outer = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                import email
                from email import policy

                outer.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))
                return "250 OK"

        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()
        return self

    def stop(self):
        self.controller.stop()


def test_smtp_with_snapshot_attached_down_then_back(store, tmp_path):
    smtp = _Smtp()
    snap = tmp_path / "snap.jpg"
    snap.write_bytes(b"\xff\xd8\xff\xe0blurred-jpeg")
    cfg = _cfg(smtp={"host": "127.0.0.1", "port": smtp.port, "from": "mw@venue.test", "to": ["ops@venue.test"]})
    disp = AlertDispatcher(cfg, store)
    ev = _event("entered_unmasked", snapshot=str(snap))
    store.add(ev)
    disp(ev)
    assert _wait(lambda: disp.workers["smtp"].attempts >= 2)
    smtp.start()
    try:
        assert _wait(lambda: smtp.messages)
        msg = smtp.messages[0]
        assert "entered unmasked" in msg["Subject"] and msg["To"] == "ops@venue.test"
        parts = list(msg.iter_attachments())
        assert len(parts) == 1 and parts[0].get_filename() == "snap.jpg"
        assert parts[0].get_content() == snap.read_bytes()
        assert _wait(lambda: disp.alerts.list()[0]["deliveries"]["smtp"]["state"] == "delivered")
    finally:
        disp.close(2)
        smtp.stop()


def test_close_is_bounded_with_a_dead_channel(store):
    cfg = _cfg(webhook={"url": f"http://127.0.0.1:{free_port()}/"})
    disp = AlertDispatcher(cfg, store)
    ev = _event()
    store.add(ev)
    disp(ev)
    time.sleep(0.3)
    t0 = time.monotonic()
    disp.close(1.0)
    assert time.monotonic() - t0 < 2.5
    assert store.get(ev.id) is not None
    assert disp.alerts.list()[0]["deliveries"]["webhook"]["state"] == "failed"
