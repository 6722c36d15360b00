"""The SQL behind /v1/stats, one query at a time, on a SQLite store filled like the soak's.

    PYTHONPATH=src python benchmarks/bench_stats_queries.py --events 100000 --hours 168 --repeat 5

Prints the mean milliseconds per call of ``type_hour_counts`` (per type and clock hour),
``camera_counts`` (the busiest cameras, the rest summed) and the older ``hourly_counts`` (per type,
camera and hour: its rows grow with the number of cameras).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_server_soak import fill  # noqa: E402

from maskwatch.store import EventStore  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--hours", type=int, default=168)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp())
    fill(folder / "events.db", args.events)
    store = EventStore(str(folder / "events.db"), spool=None)
    since = datetime.now(timezone.utc) - timedelta(hours=args.hours)
    calls = {"type_hour_counts": lambda: store.type_hour_counts(since),
             "camera_counts (top 20)": lambda: store.camera_counts(since, 20),
             "hourly_counts (old)": lambda: store.hourly_counts(since)}
    print(f"{args.events} events, {args.hours} h window, {args.repeat} calls each")
    for name, call in calls.items():
        started = time.perf_counter()
        for _ in range(args.repeat):
            call()
        print(f"{name}: {(time.perf_counter() - started) / args.repeat * 1000:.0f} ms")
    store.close()


if __name__ == "__main__":
    main()
