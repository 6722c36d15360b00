"""Alert delay: from handing an event to ``AlertDispatcher`` to the MQTT message arriving at a subscriber
and to the signed webhook POST arriving at a receiver (both on 127.0.0.1).

    PYTHONPATH=src python benchmarks/bench_alerts.py --events 200 --gap-ms 20

A real mosquitto (Debian package) and an HTTP receiver that checks the HMAC run in this machine; the event
store is a SQLite file (WAL, synchronous=FULL), so the delay includes writing the alert row. Events are
raised one every ``--gap-ms`` (each a new person, so no cooldown applies).
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

from maskwatch.alerts import AlertDispatcher, AlertsConfig  # noqa: E402
from maskwatch.alerts.channels import SIGNATURE_HEADER, verify  # noqa: E402
from maskwatch.store import Event, EventStore  # noqa: E402

SECRET = "bench"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=200)
    ap.add_argument("--gap-ms", type=float, default=20.0)
    args = ap.parse_args()
    import paho.mqtt.client as mqtt

    root = Path(tempfile.mkdtemp(prefix="bench-alerts-"))
    mport = free_port()
    (root / "m.conf").write_text(f"listener {mport} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    broker = subprocess.Popen([shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c", str(root / "m.conf")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sent: dict[int, float] = {}
    got_mqtt: dict[int, float] = {}
    got_hook: dict[int, float] = {}

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            now = time.perf_counter()
            assert verify(body, SECRET, self.headers.get(SIGNATURE_HEADER))
            got_hook[json.loads(body)["track_id"]] = now
            self.send_response(204)
            self.end_headers()

        def log_message(self, *a):
            pass

    hook = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    time.sleep(0.5)
    ready = threading.Event()
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    sub.on_connect = lambda c, u, f, rc, p=None: (c.subscribe("maskwatch/+/events", qos=1), ready.set())
    sub.on_message = lambda c, u, m: got_mqtt.__setitem__(json.loads(m.payload)["track_id"], time.perf_counter())
    sub.connect("127.0.0.1", mport)
    sub.loop_start()
    ready.wait(5)
    time.sleep(0.3)
    store = EventStore(str(root / "events.db"))
    cfg = AlertsConfig.model_validate({"rules": {"cooldown_person_s": 0}, "channels": {
        "webhook": {"url": f"http://127.0.0.1:{hook.server_address[1]}/", "secret": SECRET},
        "mqtt": {"host": "127.0.0.1", "port": mport}}})
    disp = AlertDispatcher(cfg, store)
    caller_us = []
    try:
        for i in range(args.events + 5):
            ev = Event("mask_removed", datetime.now(timezone.utc), "bench", camera="door", track_id=i, confidence=0.9)
            store.add(ev)
            t0 = time.perf_counter()
            disp(ev)
            caller_us.append((time.perf_counter() - t0) * 1e6)
            sent[i] = t0
            time.sleep(args.gap_ms / 1000)
        deadline = time.monotonic() + 10
        while (len(got_mqtt) < len(sent) or len(got_hook) < len(sent)) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        disp.close(5)
        sub.loop_stop()
        hook.shutdown()
        broker.terminate()
        store.close()
        shutil.rmtree(root, ignore_errors=True)
    warm = [i for i in sent if i >= 5]  # the first events open the connections
    for name, got in (("MQTT", got_mqtt), ("webhook", got_hook)):
        delays = [(got[i] - sent[i]) * 1000 for i in warm if i in got]
        print(f"event -> {name:7s}: {len(delays)}/{len(warm)} received, median {statistics.median(delays):.2f} ms, "
              f"p90 {pct(delays, 0.9):.2f} ms")
    print(f"dispatcher(event) in the caller: median {statistics.median(caller_us):.0f} us, p90 {pct(caller_us, 0.9):.0f} us")


if __name__ == "__main__":
    main()
