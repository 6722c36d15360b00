"""Requests/s and latency of POST /v1/detect through a real uvicorn server, against the in-process pipeline.

    PYTHONPATH=src python benchmarks/bench_server.py --requests 40 --threads 2 --concurrency 1 2

The photo is scikit-image's astronaut (512x512 PNG, one face). In-process time is decode + detect +
classify on the same bytes, without HTTP. The server runs in a subprocess (``maskwatch serve``) with
``--threads``; each client thread sends its requests one after another; warm-up requests are not counted.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

import httpx  # noqa: E402

from maskwatch.cli.detect import example_image_path  # noqa: E402
from maskwatch.images import decode_image_bytes  # noqa: E402
from maskwatch.pipeline import build_pipeline  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def in_process_ms(data: bytes, threads: int, runs: int) -> np.ndarray:
    pipeline = build_pipeline(threads=threads)
    pipeline(decode_image_bytes(data))  # warm-up
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        pipeline(decode_image_bytes(data))
        times.append((time.perf_counter() - t0) * 1000)
    return np.array(times)


def start_server(port: int, threads: int, db: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    proc = subprocess.Popen([sys.executable, "-m", "maskwatch", "serve", "--port", str(port), "--threads", str(threads),
                             "--db", str(db), "--log-level", "warning"], env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with status {proc.returncode}")
        try:
            httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=2)
            return proc
        except httpx.TransportError:
            time.sleep(0.3)
    proc.terminate()
    raise SystemExit("server did not start within 60 s")


def load(url: str, data: bytes, requests: int, concurrency: int) -> tuple[float, np.ndarray]:
    """Requests/s and per-request latencies (ms) with ``concurrency`` clients in parallel."""
    per_client = [requests // concurrency + (i < requests % concurrency) for i in range(concurrency)]

    def client(n: int) -> list[float]:
        out = []
        with httpx.Client(timeout=60) as http:
            for _ in range(n):
                t0 = time.perf_counter()
                r = http.post(url, content=data, headers={"Content-Type": "image/png"})
                r.raise_for_status()
                out.append((time.perf_counter() - t0) * 1000)
        return out

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        latencies = [ms for part in pool.map(client, per_client) for ms in part]
    return requests / (time.perf_counter() - started), np.array(latencies)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=40, help="Counted requests per row.")
    parser.add_argument("--threads", type=int, default=2, help="Inference threads (server and in-process).")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    data = example_image_path().read_bytes()
    print(f"photo: astronaut.png ({len(data) / 1024:.0f} KiB, 512x512, 1 face); threads {args.threads}; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print("| path | clients | requests | req/s | p50 ms | p90 ms |")
    print("|---|---|---|---|---|---|")
    local = in_process_ms(data, args.threads, args.requests)
    print(f"| in-process decode+pipeline | 1 | {len(local)} | {1000 / local.mean():.1f} | "
          f"{np.percentile(local, 50):.0f} | {np.percentile(local, 90):.0f} |")
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        proc = start_server(port, args.threads, Path(tmp) / "events.db")
        try:
            for path in ("/v1/detect", "/v1/detect?annotate=true"):
                url = f"http://127.0.0.1:{port}{path}"
                load(url, data, 3, 1)  # warm-up
                for concurrency in args.concurrency:
                    rps, lat = load(url, data, args.requests, concurrency)
                    print(f"| HTTP POST {path} | {concurrency} | {len(lat)} | {rps:.1f} | "
                          f"{np.percentile(lat, 50):.0f} | {np.percentile(lat, 90):.0f} |")
        finally:
            proc.terminate()
            proc.wait(timeout=15)


if __name__ == "__main__":
    main()
