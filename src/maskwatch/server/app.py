"""The FastAPI application, assembled from the routers in :mod:`maskwatch.server.routes`: detection on
uploads (through :class:`maskwatch.service.detect.DetectService`), the event store, statistics, alerts,
the venue's cameras and the dashboard."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any, Callable

from fastapi import FastAPI

from .. import __version__
from ..images import DEFAULT_MAX_PIXELS
from ..monitor.snapshots import default_snapshot_dir
from .errors import ApiError, install_error_handlers
from .limits import HostCheck, allowed_hosts
from .routes.events import SNAPSHOT_TYPES, event_dict_json
from .schema import install_true_schema
from .state import ServerState

STATIC_DIR = Path(__file__).resolve().parent / "static"
DEFAULT_MAX_UPLOAD_BYTES = 20 * 1024 * 1024

__all__ = ["DEFAULT_MAX_UPLOAD_BYTES", "STATIC_DIR", "SNAPSHOT_TYPES", "ApiError", "create_app", "event_dict_json"]


def create_app(
    pipeline: Callable[..., Any] | None = None,
    db: str | os.PathLike[str] | None = None,
    snapshot_dir: str | os.PathLike[str] | None = None,
    detector: str = "centerface",
    min_score: float | None = None,
    threads: int | None = None,
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    api_key: str | None = None,
    max_concurrent: int = 1,
    max_pending: int = 16,
    hosts: list[str] | None = None,
    detect_timeout_s: float = 30.0,
    stats_cameras: int = 20,
    service: Any = None,
    detect_service: Any = None,
    spool: Any = None,
) -> FastAPI:
    """Build the application. The detection service (``detect_service``; else a
    :class:`~maskwatch.service.detect.DetectService` of ``DetectConfig(detector, min_score, threads,
    max_pixels)`` running ``pipeline`` when one is given) and the event store (``db``: URL or SQLite path,
    default as for ``maskwatch events``) are opened here, once, and shared by all requests.

    ``snapshot_dir``: the only folder snapshot files are served from. ``api_key``: when set, every
    ``/v1`` endpoint except ``/v1/health`` needs it in the ``X-API-Key`` header: events and their
    snapshots show visitors' faces. The dashboard page itself holds no data and stays open. ``max_concurrent``: inferences run at
    once (each already uses ``threads`` cores); further photos wait their turn in a queue of their own
    (the event and dashboard endpoints stay responsive), and beyond ``max_pending`` photos in
    progress or waiting the answer is 503 "busy". ``hosts``: Host header values answered besides
    localhost / 127.0.0.1 (``["*"]``: any); others get 400.
    ``detect_timeout_s``: one photo not answered within this is 503 "detection timed out" (its
    slot stays taken until the work really ends, so a pathological image cannot pile up threads).
    ``stats_cameras``: /v1/stats lists the cameras with the most events, at most this many; the rest
    are summed in ``by_camera_other`` (``cameras`` says how many there are). ``spool``: the store's
    :class:`~maskwatch.store.SpoolConfig` (None: the default spool); what it holds is written at start.
    """
    from ..alerts.records import AlertStore
    from ..registry import sha256_of
    from ..service.detect import DetectConfig, DetectService
    from ..store import EventStore
    from .routes import alerts, cameras, detect, events, health, stats

    if detect_service is None:
        detect_service = DetectService(DetectConfig.of(detector=detector, min_score=min_score, threads=threads,
                                                       max_pixels=max_pixels, annotate=False), pipeline)
    store = EventStore(None if db is None else os.fspath(db), **({} if spool is None else {"spool": spool}))
    classifier_path = detect_service.classifier_path()
    state = ServerState(
        store=store,
        alerts=AlertStore(store.engine),
        detect=detect_service,
        queue=detect.DetectQueue(max_concurrent, max_pending, detect_timeout_s),
        snapshot_root=Path(snapshot_dir if snapshot_dir is not None else default_snapshot_dir()).expanduser().resolve(),
        dashboard_html=(STATIC_DIR / "dashboard.html").read_text(encoding="utf-8"),
        api_key=api_key,
        max_upload_bytes=max_upload_bytes,
        stats_cameras=stats_cameras,
        classifier_sha256=sha256_of(classifier_path) if classifier_path and Path(classifier_path).is_file() else None,
        supervisor=service,
    )

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> Any:
        state.queue.open()  # again after a shutdown (tests, ASGI hosts that restart)
        yield
        state.queue.close()
        store.close()

    app = FastAPI(title="MaskWatch", version=__version__, lifespan=lifespan,
                  description="Face-mask detection on photos and the events recorded by `maskwatch watch`.")
    app.state.maskwatch = state
    app.state.store = store
    app.state.pipeline = detect_service.pipeline
    install_error_handlers(app)
    app.add_middleware(HostCheck, hosts=allowed_hosts(None, hosts))
    install_true_schema(app)
    for module in (health, detect, events, alerts, stats):
        app.include_router(module.router)
    if service is not None:  # the venue service (serve --config): cameras, live view, pushed events
        app.include_router(cameras.router)
    return app
