"""The venue service against N separate `maskwatch watch` processes: FPS per camera, event delays, memory, CPU.

    MASKWATCH_SHARED=/work/shared PYTHONPATH=src python benchmarks/bench_venue.py --cameras 2 --seconds 30

Each camera is an MJPEG-over-HTTP stream served by this script at 25 FPS, 640x480: the tests' swap scene
(real photos over a background, with noise and shake; four mask changes per 6 s loop, so events keep
coming), looping. Both runs read the same streams the way a camera is read (the newest frame is kept,
frames the worker is too slow for are dropped):

1. `maskwatch serve --config venue.yaml` with the N cameras (one worker process each, the API process);
2. N `maskwatch watch URL --db ...` processes, one per camera, into one SQLite file (no API).

Figures, over ``--seconds`` after a ``--warmup``:

- FPS per camera: frames processed (the service's /v1/cameras ``frames``; watch's ``--json`` lines);
- frame-to-store: from the moment this script sent the frame an event was raised on (the event's frame
  index on that stream's connection) to the moment the event row is visible in the store (read every 20 ms);
- frame-to-SSE (service only): the same frame to the event's arrival on /v1/events/stream;
- the machine's 1-minute load average at the end of the window (other jobs on a shared machine show here);
- RSS of each worker and of the API process at the start and end of the window (MiB, /proc), CPU% of each
  (100% = one core) over the window; the stop time after SIGTERM.

The classifier is the bundled ONNX model. On a shared machine the figures move with the other load: one
run, read them as such.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # the tests.helpers package
sys.path.insert(0, str(REPO / "src"))

import cv2  # noqa: E402
import httpx  # noqa: E402
import numpy as np  # noqa: E402

from tests.helpers.scenes import background, find_sprites, swap_scene  # noqa: E402

CLK = os.sysconf("SC_CLK_TCK")


# -- the cameras: MJPEG streams ------------------------------------------------------------------------

class Streams:
    """``/camK.mjpg`` for K in 0..n-1, each the same looping JPEG sequence at ``fps``. Per path, the send
    time of every frame of its latest connection (index = the frame index the reader counts)."""

    def __init__(self, jpegs: list[bytes], n: int, fps: float = 25.0):
        self.jpegs, self.fps = jpegs, fps
        self.sent: dict[str, list[float]] = {}
        self.stopped = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                name = self.path.strip("/").removesuffix(".mjpg")
                times: list[float] = []
                outer.sent[name] = times
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                start = time.monotonic()
                i = 0
                try:
                    while not outer.stopped.is_set():
                        wait = start + i / outer.fps - time.monotonic()
                        if wait > 0:
                            time.sleep(wait)
                        jpeg = outer.jpegs[i % len(outer.jpegs)]
                        times.append(time.time())
                        self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n"
                                         % len(jpeg) + jpeg + b"\r\n")
                        i += 1
                except OSError:
                    pass

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.names = [f"cam{k}" for k in range(n)]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}.mjpg"

    def sent_at(self, camera: str, frame: int | None) -> float | None:
        times = self.sent.get(camera)
        if times is None or frame is None or not 0 <= frame < len(times):
            return None
        return times[frame]

    def close(self) -> None:
        self.stopped.set()
        self.server.shutdown()
        self.server.server_close()


def scene_jpegs(shared: Path) -> list[bytes]:
    from maskwatch.detectors import create_detector

    sprites = find_sprites(shared / "data" / "chandrikadeb7-faces" / "without_mask",
                           create_detector("centerface", threads=1, input_size=320), 2)
    scene = swap_scene(sprites)
    rng = np.random.default_rng(1)
    bg = background(seed=1)
    return [cv2.imencode(".jpg", scene.render(i, bg, rng), [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes()
            for i in range(scene.frames)]


# -- measuring -------------------------------------------------------------------------------------------

class StoreTail:
    """Reads the SQLite store every 20 ms: when each event row became visible."""

    def __init__(self, db: Path):
        self.db, self.seen = db, {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        last = 0
        while not self.stop.wait(0.02):
            if not self.db.exists():
                continue
            try:
                with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=1) as conn:
                    rows = conn.execute("SELECT id, camera, frame, type FROM events WHERE id > ? ORDER BY id",
                                        (last,)).fetchall()
            except sqlite3.Error:
                continue
            now = time.time()
            for row in rows:
                self.seen[row[0]] = (now, row[1], row[2], row[3])
                last = row[0]


def sse_listener(url: str, got: dict[int, float], stop: threading.Event) -> None:
    try:
        with httpx.stream("GET", url, timeout=None) as r:
            for line in r.iter_lines():
                if stop.is_set():
                    return
                if line.startswith("data: "):
                    got[json.loads(line[6:])["id"]] = time.time()
    except httpx.HTTPError:
        pass


def proc_sample(pid: int) -> tuple[float, float] | None:
    """(RSS MiB, CPU seconds user+system) of ``pid`` from /proc, or None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        cpu = (int(fields[11]) + int(fields[12])) / CLK
        rss = next(int(line.split()[1]) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                   if line.startswith("VmRSS:")) / 1024
        return rss, cpu
    except (OSError, StopIteration, IndexError, ValueError):
        return None


def usage(pids: dict[str, int], seconds: float, before: dict[str, tuple]) -> dict[str, dict]:
    out = {}
    for name, pid in pids.items():
        after = proc_sample(pid)
        if after is None or before.get(name) is None:
            out[name] = {"rss_start_mib": None, "rss_end_mib": None, "cpu_pct": None}
            continue
        out[name] = {"rss_start_mib": round(before[name][0], 1), "rss_end_mib": round(after[0], 1),
                     "cpu_pct": round(100 * (after[1] - before[name][1]) / seconds, 1)}
    return out


def delays(streams: Streams, events: dict[int, tuple], since: float, until: float,
           arrivals: dict[int, float] | None = None) -> dict[str, object]:
    store, sse = [], []
    for event_id, (seen, camera, frame, _type) in events.items():
        sent = streams.sent_at(camera, frame)
        if sent is None or not since <= sent <= until:
            continue
        store.append(seen - sent)
        if arrivals is not None and event_id in arrivals:
            sse.append(arrivals[event_id] - sent)
    return {"events": len(store), "frame_to_store_ms": _stats(store),
            **({"frame_to_sse_ms": _stats(sse)} if arrivals is not None else {})}


def _stats(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    ms = sorted(v * 1000 for v in values)
    return {"median": round(statistics.median(ms), 1), "p90": round(ms[min(len(ms) - 1, int(0.9 * len(ms)))], 1),
            "max": round(ms[-1], 1)}


def stop_process(proc: subprocess.Popen, timeout: float = 30.0) -> float:
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    return round(time.monotonic() - started, 2)


# -- the two runs ------------------------------------------------------------------------------------------

def run_service(args, streams: Streams, work: Path, env: dict) -> dict:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cams = "\n".join(f"  - {{name: {n}, source: \"{streams.url(n)}\", detect_every: {args.every}}}" for n in streams.names)
    (work / "venue.yaml").write_text(f"""cameras:
{cams}
models: {{detector: {args.detector}, input_size: {args.input_size}, threads: 1}}
store: service.db
snapshots: {{dir: snaps-service, mode: blurred}}
server: {{host: 127.0.0.1, port: {port}}}
""")
    log = open(work / "serve.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "maskwatch", "serve", "--config", str(work / "venue.yaml"),
                             "--log-level", "warning"], cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    tail = StoreTail(work / "service.db")
    arrivals: dict[int, float] = {}
    stop = threading.Event()
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                cams_now = httpx.get(f"{base}/v1/cameras", timeout=2).json()["cameras"]
                if all(c["state"] == "running" and c["frames"] > 0 for c in cams_now):
                    break
            except (httpx.HTTPError, KeyError, ValueError):
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit(f"the service did not start its cameras; see {work / 'serve.log'}")
            time.sleep(0.5)
        threading.Thread(target=sse_listener, args=(f"{base}/v1/events/stream", arrivals, stop), daemon=True).start()
        time.sleep(args.warmup)
        pids = {"api": proc.pid, **{c["name"]: c["pid"] for c in cams_now}}
        before = {name: proc_sample(pid) for name, pid in pids.items()}
        frames0 = {c["name"]: c["frames"] for c in httpx.get(f"{base}/v1/cameras").json()["cameras"]}
        since = time.time()
        time.sleep(args.seconds)
        until = time.time()
        cams_end = httpx.get(f"{base}/v1/cameras").json()["cameras"]
        frames1 = {c["name"]: c["frames"] for c in cams_end}
        health = {c["name"]: {k: c.get(k) for k in ("state", "restarts", "reconnects")} for c in cams_end}
        res = usage(pids, until - since, before)
        time.sleep(1.5)  # events of the last frames reach the store and the stream
    finally:
        stop.set()
        stopped_s = stop_process(proc)
        tail.stop.set()
        log.close()
        log_tail = (work / "serve.log").read_text(errors="replace")[-3000:]
    fps = {n: round((frames1[n] - frames0[n]) / (until - since), 2) for n in streams.names}
    if any(h["restarts"] for h in health.values()):  # a restarted worker's frame count started again
        print(f"cameras restarted during the run: {health}\nserve.log (end):\n{log_tail}", file=sys.stderr)
    return {"fps": fps, "load_avg_1m_end": round(os.getloadavg()[0], 2), **delays(streams, dict(tail.seen), since, until, arrivals), "processes": res,
            "health": health, "stop_s": stopped_s}


def run_watch(args, streams: Streams, work: Path, env: dict) -> dict:
    procs, logs = {}, []
    tail = StoreTail(work / "watch.db")
    for n in streams.names:
        log = open(work / f"watch-{n}.log", "w")
        logs.append(log)
        procs[n] = subprocess.Popen(
            [sys.executable, "-m", "maskwatch", "watch", streams.url(n), "--camera-name", n, "--db", str(work / "watch.db"),
             "--detect-every", str(args.every), "--detector", args.detector, "--input-size", str(args.input_size),
             "--threads", "1", "--snapshots", "blurred", "--snapshot-dir", str(work / "snaps-watch"),
             "--json", str(work / f"watch-{n}.jsonl")], cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 180
        while not all((work / f"watch-{n}.jsonl").exists() and (work / f"watch-{n}.jsonl").stat().st_size > 0
                      for n in streams.names):
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs.values()):
                raise SystemExit(f"a watch process did not start; see {work}/watch-*.log")
            time.sleep(0.5)
        time.sleep(args.warmup)
        before = {n: proc_sample(p.pid) for n, p in procs.items()}
        since = time.time()
        time.sleep(args.seconds)
        until = time.time()
        res = usage({n: p.pid for n, p in procs.items()}, until - since, before)
        time.sleep(1.5)
    finally:
        stopped = [stop_process(p) for p in procs.values()]
        tail.stop.set()
        for log in logs:
            log.close()
    fps = {}
    for n in streams.names:
        times = [json.loads(line)["time"] for line in (work / f"watch-{n}.jsonl").read_text().splitlines() if line]
        fps[n] = round(sum(since <= t < until for t in times) / (until - since), 2)
    return {"fps": fps, "load_avg_1m_end": round(os.getloadavg()[0], 2), **delays(streams, dict(tail.seen), since, until),
            "processes": res, "stop_s": max(stopped)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cameras", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=30.0, help="measurement window per run")
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--every", type=int, default=3, help="detect_every")
    parser.add_argument("--input-size", type=int, default=640, help="detector input (the config's default: 640)")
    parser.add_argument("--detector", default="centerface")
    parser.add_argument("--only", choices=["service", "watch"], help="run one side only")
    parser.add_argument("--out", type=Path, help="also write the figures as JSON here")
    parser.add_argument("--shared", default=os.environ.get("MASKWATCH_SHARED", str(REPO.parent / "shared")))
    args = parser.parse_args()

    jpegs = scene_jpegs(Path(args.shared))
    streams = Streams(jpegs, args.cameras)
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"), OMP_NUM_THREADS="1")
    result: dict[str, object] = {"cameras": args.cameras, "seconds": args.seconds, "detect_every": args.every,
                                 "input_size": args.input_size, "stream": "640x480 MJPEG at 25 FPS",
                                 "cpu_count": os.cpu_count()}
    try:
        with tempfile.TemporaryDirectory(prefix="bench-venue-") as tmp:
            work = Path(tmp)
            if args.only != "watch":
                result["service"] = run_service(args, streams, work, env)
                print("service:", json.dumps(result["service"]), flush=True)
            if args.only != "service":
                result["watch"] = run_watch(args, streams, work, env)
                print("watch:  ", json.dumps(result["watch"]), flush=True)
    finally:
        streams.close()
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
