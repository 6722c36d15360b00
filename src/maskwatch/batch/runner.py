"""The driver: skip finished inputs, feed the rest to one Ray actor per worker, commit each result
with its 'done' mark (one transaction), retry items whose worker died (bounded), list failures.

Video segments are committed in order per file (a segment waits for the one before it, which may
have been stored by an earlier run): its track ids are linked to that one's (segments.py)."""

from __future__ import annotations

import glob
import hashlib
import json
import os
import re
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from .segments import link_segment
from .work import BatchWorker, Item, Settings


@dataclass
class BatchResult:
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # "path: why"
    events: int = 0
    frames: int = 0
    video_s: float = 0.0
    images: int = 0
    workers: int = 0


def item_name(item: Item) -> str:
    if item.span is not None:
        return f"{item.path} (frames {item.span[0]}-{item.span[1] - 1})"
    if item.kind == "video":
        return item.path
    if item.retry:
        return f"{item.path} ({len(item.images)} images that failed before, unit {item.part + 1})"
    return f"{item.path} (images {item.first + 1}-{item.first + item.weight})"


def run_batch(items: list[Item], settings: Settings, db: str | None = None, json_dir: Path | None = None,
              workers: int = 2, address: str | None = None, retries: int = 2,
              on_progress: Callable[[int], None] | None = None) -> BatchResult:
    """Process ``items`` on Ray (a local cluster of ``workers`` CPUs when ``address`` is None, unless
    Ray is initialised already). Returns what was done, skipped and failed. ``on_progress(units)``: the
    frames and images done so far (skipped inputs included; the total is the items' weights)."""
    from ..store.jobs import JobStore

    result = BatchResult()
    store = JobStore(db)
    try:
        finished, failed_images = store.done_keys(), store.failed_images()
        todo, skipped = [], 0
        for item in items:
            if item.key not in finished:
                todo.append(item)
                continue
            again = failed_images.get(item.key, []) if item.kind == "images" else []
            if again:  # a finished unit some of whose images failed: those images only
                todo.append(replace(item, images=again, weight=len(again), retry=True))
                skipped += item.weight - len(again)
            else:
                result.skipped.append(item_name(item))
                skipped += item.weight
        if on_progress is not None:
            on_progress(skipped)
        if todo:
            _run_on_ray(todo, settings, store, json_dir, workers, address, retries, result,
                        None if on_progress is None else lambda n: on_progress(skipped + n))
    finally:
        store.close()
    return result


class _Progress:
    """Where each running item is (units done), reported by the workers, read by the driver."""

    def __init__(self) -> None:
        self.units: dict[str, int] = {}

    def report(self, key: str, units: int) -> None:
        self.units[key] = max(self.units.get(key, 0), units)  # a retried item does not move the bar back

    def take(self) -> dict[str, int]:
        return dict(self.units)


def _run_on_ray(todo: list[Item], settings: Settings, store: Any, json_dir: Path | None, workers: int,
                address: str | None, retries: int, result: BatchResult,
                on_progress: Callable[[int], None] | None) -> None:
    import ray

    started_here = not ray.is_initialized()
    if started_here:
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
    try:
        progress = ray.remote(num_cpus=0)(_Progress).remote() if on_progress is not None else None
        actor_cls = ray.remote(num_cpus=1, max_restarts=-1, max_task_retries=retries)(BatchWorker)
        actors = [actor_cls.remote(settings, progress) for _ in range(max(1, min(workers, len(todo))))]
        result.workers = len(actors)
        queue = list(reversed(todo))
        running: dict[Any, tuple[Item, Any]] = {}
        waiting: dict[str, tuple[Item, dict[str, Any]]] = {}  # segments held until the one before is stored
        done_units = 0

        def submit(actor: Any) -> None:
            if queue:
                item = queue.pop()
                running[actor.run.remote(item)] = (item, actor)

        for actor in actors:
            submit(actor)
        units: dict[str, int] = {}  # the workers' last reported progress per running item

        def partial() -> int:
            return sum(min(units.get(i.key, 0), i.weight) for i, _ in running.values())

        while running:
            ready, _ = ray.wait(list(running), num_returns=1, timeout=None if progress is None else 0.5)
            if not ready:
                units = ray.get(progress.take.remote())
                on_progress(done_units + partial())
                continue
            item, actor = running.pop(ready[0])
            try:
                out = ray.get(ready[0])
            except Exception as exc:  # the item's own error, or its worker died more than `retries` times
                result.failed.append(f"{item_name(item)}: {_reason(exc)}")
            else:
                _commit_in_order(item, out, store, json_dir, result, waiting)
            done_units += item.weight
            if on_progress is not None:
                on_progress(done_units + partial())  # with the others' partial progress: the bar never moves back
            submit(actor)
        for item, _ in waiting.values():  # the segment before failed: re-run to do both
            result.failed.append(f"{item_name(item)}: not stored, the segment before it failed")
    finally:
        if started_here:
            ray.shutdown()


def _commit_in_order(item: Item, out: dict[str, Any], store: Any, json_dir: Path | None, result: BatchResult,
                     waiting: dict[str, tuple[Item, dict[str, Any]]]) -> None:
    """Commit ``item``, or hold it while the segment before it is not stored; then what waited on it."""
    while True:
        if item.span is not None and item.prev_key is not None:
            prev_tail = store.segment_tail(item.prev_key)
            if prev_tail is None:
                waiting[item.prev_key] = (item, out)
                return
            _commit(item, out, store, json_dir, result, prev_tail or None)
        else:
            _commit(item, out, store, json_dir, result, None)
        if item.key not in waiting:
            return
        item, out = waiting.pop(item.key)


def _commit(item: Item, out: dict[str, Any], store: Any, json_dir: Path | None, result: BatchResult,
            prev_tail: dict | None) -> None:
    tail = None
    if item.kind == "images":
        lines = "".join(json.dumps(r) + "\n" for r in out["records"])
        if json_dir is not None:  # the whole file or none of it; a retry of the same images rewrites the same name
            _write_json(Path(json_dir), item, lines)
        else:
            sys.stdout.write(lines)
            sys.stdout.flush()
        result.failed += [why for _, why in out["failed"]]
        result.images += len(out["records"])
        failed = [path for path, _ in out["failed"]]
        if item.retry:
            store.retry_images(item.key, item.images, failed)
            result.done.append(item_name(item))
            return
        events: list = []
    else:
        failed = []
        events = out["events"]
        if item.span is not None:
            events, tail = link_segment(item.part, item.span[0], events, out["head"], out["tail"], prev_tail)
        result.frames += out["frames"]
        result.video_s += out["video_s"]
    if store.finish(item.key, item.path, item.kind, events, tail=tail, failed_images=failed):
        result.events += len(events)
    result.done.append(item_name(item))


def _write_json(json_dir: Path, item: Item, lines: str) -> None:
    stem = f"{_slug(item.path)}.{item.part:04d}"
    if item.retry:  # a file of its own: the lines of the images that were good the first time stay as they are
        digest = hashlib.sha256("\0".join(item.images).encode()).hexdigest()[:12]
        target = json_dir / f"{stem}.retry-{digest}.jsonl"
    else:  # the whole unit (again, if a file changed): earlier retries' lines are in it now
        target = json_dir / f"{stem}.jsonl"
        for old in json_dir.glob(f"{glob.escape(stem)}.retry-*.jsonl"):
            old.unlink()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    tmp.write_text(lines, encoding="utf-8")
    os.replace(tmp, target)


def _slug(path: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(Path(path).resolve()).strip("/"))[-120:] or "images"


def _reason(exc: BaseException) -> str:
    cause = getattr(exc, "cause", None)
    if cause is not None and not isinstance(cause, BaseException):
        cause = None
    text = str(cause or exc).strip().splitlines()
    if "ActorDied" in type(exc).__name__ or "ActorError" in type(exc).__name__:
        return "worker died (retries exhausted)"
    return (text[-1] if text else type(exc).__name__)[:300]
