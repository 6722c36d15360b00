"""The driver: skip finished inputs, feed the rest to one Ray actor per worker, commit each result
with its 'done' mark (one transaction), retry items whose worker died (bounded), list failures."""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

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
    return item.path if item.kind == "video" else f"{item.path} (images {item.first + 1}-{item.first + item.weight})"


def run_batch(items: list[Item], settings: Settings, db: str | None = None, json_dir: Path | None = None,
              workers: int = 2, address: str | None = None, retries: int = 2,
              on_done: Callable[[Item], None] | None = None) -> BatchResult:
    """Process ``items`` on Ray (a local cluster of ``workers`` CPUs when ``address`` is None, unless
    Ray is initialised already). Returns what was done, skipped and failed."""
    from ..store.jobs import JobStore

    result = BatchResult()
    store = JobStore(db)
    try:
        finished = store.done_keys()
        todo = []
        for item in items:
            (result.skipped.append(item_name(item)) if item.key in finished else todo.append(item))
        if todo:
            _run_on_ray(todo, settings, store, json_dir, workers, address, retries, result, on_done)
    finally:
        store.close()
    return result


def _run_on_ray(todo: list[Item], settings: Settings, store: Any, json_dir: Path | None, workers: int,
                address: str | None, retries: int, result: BatchResult,
                on_done: Callable[[Item], None] | None) -> None:
    import ray

    started_here = not ray.is_initialized()
    if started_here:
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
    try:
        actor_cls = ray.remote(num_cpus=1, max_restarts=-1, max_task_retries=retries)(BatchWorker)
        actors = [actor_cls.remote(settings) for _ in range(max(1, min(workers, len(todo))))]
        result.workers = len(actors)
        queue = list(reversed(todo))
        running: dict[Any, tuple[Item, Any]] = {}

        def submit(actor: Any) -> None:
            if queue:
                item = queue.pop()
                running[actor.run.remote(item)] = (item, actor)

        for actor in actors:
            submit(actor)
        while running:
            ready, _ = ray.wait(list(running), num_returns=1)
            item, actor = running.pop(ready[0])
            try:
                out = ray.get(ready[0])
            except Exception as exc:  # the item's own error, or its worker died more than `retries` times
                result.failed.append(f"{item_name(item)}: {_reason(exc)}")
            else:
                _commit(item, out, store, json_dir, result)
            if on_done is not None:
                on_done(item)
            submit(actor)
    finally:
        if started_here:
            ray.shutdown()


def _commit(item: Item, out: dict[str, Any], store: Any, json_dir: Path | None, result: BatchResult) -> None:
    if item.kind == "images":
        lines = "".join(json.dumps(r) + "\n" for r in out["records"])
        if json_dir is None:
            sys.stdout.write(lines)
            sys.stdout.flush()
        else:  # the whole file or none of it; a retry rewrites the same name
            target = Path(json_dir) / f"{_slug(item.path)}.{item.part:04d}.jsonl"
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_suffix(".tmp")
            tmp.write_text(lines, encoding="utf-8")
            os.replace(tmp, target)
        result.failed += out["failed"]
        result.images += len(out["records"])
        events: list = []
    else:
        events = out["events"]
        result.frames += out["frames"]
        result.video_s += out["video_s"]
    if store.finish(item.key, item.path, item.kind, events):
        result.events += len(events)
    result.done.append(item_name(item))


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
