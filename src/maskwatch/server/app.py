"""The FastAPI application: detection on uploads, the event store, statistics and the dashboard."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Literal

from fastapi import Depends, FastAPI, Path as PathParam, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..detectors.base import filter_faces
from ..errors import InputError, MaskWatchError
from ..faces import detection_record
from ..images import DEFAULT_MAX_PIXELS, ImageTooLargeError, decode_upload, encode_jpeg
from ..monitor.snapshots import default_snapshot_dir
from ..pipeline import StageTimer
from ..store.events_db import INT64_MAX
from .limits import HostCheck, allowed_hosts
from .schema import install_true_schema

STATIC_DIR = Path(__file__).resolve().parent / "static"
DEFAULT_MAX_UPLOAD_BYTES = 20 * 1024 * 1024
SNAPSHOT_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".webp": "image/webp"}
#: room for the multipart envelope around an upload of the largest allowed size
MULTIPART_SLACK = 64 * 1024


class ApiError(Exception):
    """An answer other than 2xx, sent as ``{"error": ..., "detail": ...}``."""

    def __init__(self, status: int, error: str, detail: str = ""):
        super().__init__(f"{error}: {detail}")
        self.status, self.error, self.detail = status, error, detail


def create_app(
    pipeline: Callable[..., Any] | None = None,
    db: str | None = None,
    snapshot_dir: str | os.PathLike | None = None,
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
    spool: Any = None,
) -> FastAPI:
    """Build the application. The pipeline (``build_pipeline(detector, min_score, threads)`` unless
    one is given) and the event store (``db``: URL or SQLite path, default as for ``maskwatch
    events``) are opened here, once, and shared by all requests.

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
    from ..registry import sha256_of
    from ..store import EventStore

    if pipeline is None:
        from ..pipeline import build_pipeline

        pipeline = build_pipeline(detector, min_score=min_score, threads=threads)
    store = EventStore(db) if spool is None else EventStore(db, spool=spool)
    snapshot_root = Path(snapshot_dir if snapshot_dir is not None else default_snapshot_dir()).expanduser().resolve()
    pools = [ThreadPoolExecutor(max(1, max_concurrent), thread_name_prefix="maskwatch-detect")]
    pending = _PendingPhotos()
    started = time.monotonic()
    classifier_path = getattr(getattr(pipeline, "classifier", None), "path", None)
    classifier_sha = sha256_of(classifier_path) if classifier_path and Path(classifier_path).is_file() else None
    detector_obj = getattr(pipeline, "detector", None)
    dashboard_html = (STATIC_DIR / "dashboard.html").read_text(encoding="utf-8")

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> Any:
        if pools[0]._shutdown:  # started again after a shutdown (tests, ASGI hosts that restart)
            pools[0] = ThreadPoolExecutor(max(1, max_concurrent), thread_name_prefix="maskwatch-detect")
        yield
        pools[0].shutdown(wait=False, cancel_futures=True)
        store.close()

    app = FastAPI(title="MaskWatch", version=__version__, lifespan=lifespan,
                  description="Face-mask detection on photos and the events recorded by `maskwatch watch`.")
    app.state.store = store
    app.state.pipeline = pipeline
    _install_error_handlers(app)
    app.add_middleware(HostCheck, hosts=allowed_hosts(None, hosts))
    install_true_schema(app)

    def require_key(request: Request) -> None:
        _check_api_key(request, api_key)

    guarded = [Depends(require_key)]

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def dashboard() -> HTMLResponse:
        return HTMLResponse(dashboard_html)

    @app.get("/v1/health")
    def health(request: Request) -> dict[str, Any]:
        public = {
            "status": "ok",
            "version": __version__,
            "detector": {"name": getattr(detector_obj, "name", type(detector_obj).__name__),
                         "min_score": getattr(detector_obj, "min_score", None)},
            "uptime_s": round(time.monotonic() - started, 1),
            "api_key_required": bool(api_key),
            "max_upload_bytes": max_upload_bytes,
        }
        try:
            _check_api_key(request, api_key)
        except ApiError:
            return public  # no model or database paths to anyone without the key
        return {**public,
                "classifier": {"path": None if classifier_path is None else str(classifier_path), "sha256": classifier_sha},
                "events_db": _safe_url(store.url)}

    def run_detection(data: bytes, name: str, min_score_: float | None, annotate: bool) -> Response:
        import cv2

        from ..draw import annotate as draw_faces

        timer = StageTimer()
        t0 = time.perf_counter()
        try:
            image, (sx, sy), (width, height) = decode_upload(data, name, max_pixels)  # large JPEGs at 1/2..1/8
        except ImageTooLargeError as exc:
            raise ApiError(413, "image too large", str(exc)) from None
        except InputError as exc:
            raise ApiError(400, "not a readable image", str(exc)) from None
        timer.add("decode", t0)
        try:
            faces = pipeline(image, timer)
            if min_score_ is not None:
                faces = filter_faces(faces, min_score_, 0)
            if annotate:
                t1 = time.perf_counter()
                # a large JPEG is annotated at its reduced decode size
                try:
                    jpeg = encode_jpeg(draw_faces(image, faces), 90)
                except ValueError:
                    raise ApiError(500, "encoding failed", "could not encode the annotated image") from None
                timer.add("draw", t1)
        except (MemoryError, cv2.error) as exc:
            last_line = (str(exc).strip().splitlines() or [""])[-1]
            raise ApiError(422, "cannot process image", f"{name}: {type(exc).__name__}: {last_line}") from None
        if (sx, sy) != (1.0, 1.0):  # boxes in the original photo's pixels
            import numpy as np

            faces.boxes = faces.boxes * np.array([sx, sy, sx, sy], np.float32)
            if faces.landmarks is not None:
                faces.landmarks = faces.landmarks * np.array([sx, sy], np.float32)
        timings = {k: round(v, 2) for k, v in timer.ms.items()}
        timings["total"] = round((time.perf_counter() - t0) * 1000, 2)
        record = detection_record(faces, name, width, height, timings["total"])
        records = record["faces"]
        if annotate:
            return Response(jpeg, media_type="image/jpeg", headers={
                "X-MaskWatch-Counts": json.dumps(faces.counts(), separators=(",", ":")),
                "X-MaskWatch-Faces": json.dumps(records, separators=(",", ":")),
                "X-MaskWatch-Timings": json.dumps(timings, separators=(",", ":")),
            })
        return JSONResponse(dict(record, timings_ms=timings))  # detect --json's record, plus per-stage times

    @app.post("/v1/detect", responses={200: {"content": {"image/jpeg": {}}}}, dependencies=guarded)
    async def detect(
        request: Request,
        min_score: float | None = Query(None, ge=0.0, le=1.0, description="Drop faces scored below this "
                                        "(can only raise the server's own --min-score)."),
        annotate: bool = Query(False, description="Answer with the annotated JPEG instead of JSON."),
    ) -> Response:
        """Faces and mask states in one image: a multipart upload (field ``image``) or the raw image as the body."""
        pending.acquire(max_pending)  # before the body is read: a busy server reads no upload
        released = False
        try:
            data, name = await _uploaded_image(request, max_upload_bytes)
            future = asyncio.get_running_loop().run_in_executor(pools[0], run_detection, data, name, min_score, annotate)
            future.add_done_callback(lambda _f: pending.release())  # the slot is held until the work really ends
            released = True
            try:
                return await asyncio.wait_for(asyncio.shield(future), detect_timeout_s)
            except asyncio.TimeoutError:
                raise ApiError(503, "detection timed out", f"{name}: no answer within {detect_timeout_s:g} s; "
                               "the server is overloaded or the image is pathological") from None
        finally:
            if not released:
                pending.release()

    @app.get("/v1/events", dependencies=guarded)
    def events(
        types: list[str] | None = Query(None, alias="type", description="Event types (repeatable)."),
        since: str | None = Query(None, description="ISO time (naive = UTC) or a duration back from now: 30m, 2h, 7d."),
        track_id: int | None = Query(None, ge=-INT64_MAX - 1, le=INT64_MAX),
        source: str | None = None,
        camera: str | None = Query(None, description="Camera name (events without one match on their source)."),
        after_id: int | None = Query(None, ge=-INT64_MAX - 1, le=INT64_MAX, description="Only events stored after this id (for polling)."),
        limit: int = Query(100, ge=1, le=1000),
        order: Literal["newest", "oldest"] = "newest",
    ) -> dict[str, Any]:
        from ..event_types import EVENT_TYPES
        from ..store.since import parse_since

        for name in types or []:
            if name not in EVENT_TYPES:
                raise ApiError(400, "unknown event type", f"{name!r}: expected one of {', '.join(EVENT_TYPES)}")
        try:
            when = parse_since(since) if since else None
        except MaskWatchError as exc:
            raise ApiError(400, "bad since", str(exc).replace("--since", "since")) from None
        found = _db(store.query, types=types, since=when, track_id=track_id, source=source, camera=camera,
                       after_id=after_id, limit=limit, newest_first=order == "newest")
        return {"count": len(found), "events": [_event_json(ev) for ev in found]}

    @app.get("/v1/events/{event_id}/snapshot", dependencies=guarded)
    def snapshot(event_id: int = PathParam(..., ge=0, le=INT64_MAX)) -> FileResponse:
        ev = _db(store.get, event_id)
        if ev is None:
            raise ApiError(404, "no such event", f"event {event_id} does not exist")
        if not ev.snapshot:
            raise ApiError(404, "no snapshot", f"event {event_id} has no snapshot")
        try:
            path = Path(ev.snapshot).expanduser().resolve()
        except (ValueError, OSError, RuntimeError):  # NUL byte, loop, unreadable
            raise ApiError(404, "snapshot file missing", f"event {event_id}: the stored snapshot path is not usable") from None
        if not path.is_relative_to(snapshot_root):
            raise ApiError(403, "snapshot outside the snapshot folder",
                           f"event {event_id}: refusing to serve a file outside {snapshot_root}")
        if path.suffix.lower() not in SNAPSHOT_TYPES:
            raise ApiError(403, "not an image snapshot", f"event {event_id}: only {', '.join(SNAPSHOT_TYPES)} files are served")
        if not path.is_file():
            raise ApiError(404, "snapshot file missing", f"event {event_id}: the snapshot was deleted (retention) or moved")
        return FileResponse(path, media_type=SNAPSHOT_TYPES[path.suffix.lower()])

    from .alerts import alerts_router

    app.include_router(alerts_router(store, guarded))

    @app.get("/v1/stats", dependencies=guarded)
    def stats(hours: int = Query(24, ge=1, le=24 * 31, description="The current clock hour and the N - 1 before it.")) -> dict[str, Any]:
        return _stats(store, hours, stats_cameras)

    if service is not None:  # the venue service (serve --config): cameras, live view, pushed events
        from .cameras import camera_router

        app.include_router(camera_router(service, guarded, ApiError))
    return app


def _install_error_handlers(app: FastAPI) -> None:
    """Every error leaves as ``{"error": ..., "detail": ...}`` JSON, never as a traceback."""

    def body(status: int, error: str, detail: str) -> JSONResponse:
        return JSONResponse({"error": error, "detail": detail}, status_code=status)

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return body(exc.status, exc.error, exc.detail)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        from http import HTTPStatus

        try:
            phrase = HTTPStatus(exc.status_code).phrase.lower()
        except ValueError:
            phrase = "error"
        answer = body(exc.status_code, phrase, str(exc.detail))
        answer.headers.update(getattr(exc, "headers", None) or {})  # e.g. Allow on 405
        return answer

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [f"{'.'.join(str(p) for p in e.get('loc', ()) if p not in ('query', 'path', 'body'))}: {e.get('msg')}"
                    for e in exc.errors()]
        return body(422, "invalid request", "; ".join(problems))

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        import logging

        logging.getLogger("maskwatch.server").error("unexpected error", exc_info=exc)
        return body(500, "internal error", "the server logged the details")


def _check_api_key(request: Request, api_key: str | None) -> None:
    if not api_key:
        return
    given = request.headers.get("x-api-key", "")
    if not secrets.compare_digest(given.encode(), api_key.encode()):
        raise ApiError(401, "missing or wrong API key", "send the key in the X-API-Key header")


async def _uploaded_image(request: Request, max_bytes: int) -> tuple[bytes, str]:
    """The image bytes and a name for messages, from a multipart form (field ``image``) or the raw body.

    The body is read with a running byte count, so an upload over the limit is refused without
    being held in memory whole, whether or not it declared its length."""
    is_form = request.headers.get("content-type", "").startswith("multipart/form-data")
    limit = max_bytes + (MULTIPART_SLACK if is_form else 0)
    too_large = ApiError(413, "upload too large", f"the limit is {max_bytes / 2**20:g} MiB (--max-upload-mb)")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks, total = [], 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise too_large
        chunks.append(chunk)
    body = b"".join(chunks)
    if not is_form:
        return body, "upload"

    async def replay() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    form = await Request(request.scope, replay).form(max_files=4, max_fields=16)
    upload = form.get("image")
    if not isinstance(upload, UploadFile):
        upload = next((v for v in form.values() if isinstance(v, UploadFile)), None)
    if upload is None:
        raise ApiError(400, "no image in the form", "send the photo as the file field 'image' (or as the raw body)")
    data = await upload.read()
    if len(data) > max_bytes:
        raise too_large
    return data, upload.filename or "upload"


def _db(call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """A store call; a database that fails answers 503."""
    from sqlalchemy.exc import SQLAlchemyError

    try:
        return call(*args, **kwargs)
    except MaskWatchError as exc:
        raise ApiError(400, "bad query", str(exc)) from None
    except SQLAlchemyError as exc:
        from ..redact import redact

        raise ApiError(503, "event database unavailable", redact(f"{type(exc).__name__}: {str(exc).splitlines()[0]}")) from None


def _event_json(ev: Any) -> dict[str, Any]:
    return event_dict_json(ev.to_dict())


def event_dict_json(out: dict[str, Any]) -> dict[str, Any]:
    """An event as ``/v1/events`` lists it, from ``Event.to_dict()``."""
    out["snapshot_url"] = f"/v1/events/{out['id']}/snapshot" if out.get("snapshot") else None
    return out


def _stats(store: Any, hours: int, top_cameras: int = 20) -> dict[str, Any]:
    """Counts per type, per camera (its source when it has no name; the ``top_cameras`` with the most
    events, the rest summed in ``by_camera_other``) and per clock hour, oldest first, over the current
    hour and the ``hours - 1`` before it; occupancy and entries per hour (entry lines).
    Everything is counted by the database (GROUP BY); no event is loaded."""
    from ..event_types import EVENT_TYPES

    first_hour = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0) - timedelta(hours=hours - 1)
    by_type = {name: 0 for name in EVENT_TYPES}
    per_hour: Counter = Counter()
    total = 0
    for type_, hour, n in _db(store.type_hour_counts, first_hour):  # aggregated in SQL
        by_type[type_] = by_type.get(type_, 0) + n
        per_hour[_hour_index(hour, first_hour)] += n
        total += n
    by_camera, other, cameras = _db(store.camera_counts, first_hour, top_cameras)
    return {
        "window_hours": hours,
        "since": first_hour.isoformat(),
        "total": total,
        "by_type": by_type,
        "by_camera": dict(by_camera),
        "by_camera_other": other,
        "cameras": cameras,
        "by_hour": [{"hour": (first_hour + timedelta(hours=i)).isoformat(), "count": per_hour.get(i, 0)}
                    for i in range(hours)],
        **_entry_stats(_db(store.entry_counts, first_hour), first_hour, hours),
    }


def _hour_index(hour: datetime, first_hour: datetime) -> int:
    return int((hour.replace(tzinfo=timezone.utc) - first_hour).total_seconds() // 3600)


def _entry_stats(rows: list[tuple[str, datetime, int, int]], first_hour: datetime, hours: int) -> dict[str, Any]:
    """From ``EventStore.entry_counts`` rows: ``occupancy`` (people inside now, all cameras), ``occupancy_by_camera``
    and ``entries_per_hour`` (every hour of the window: entered, left, occupancy at its end, and per camera with
    crossings that hour). Occupancy is entered - left carried hour by hour per camera and never below 0 (someone
    who entered before the window and leaves in it does not make it negative)."""
    per: dict[int, dict[str, tuple[int, int]]] = {}
    for camera, hour, entered, left in rows:
        i = _hour_index(hour, first_hour)
        if 0 <= i < hours:
            e, lf = per.setdefault(i, {}).get(camera, (0, 0))
            per[i][camera] = (e + entered, lf + left)
    occupancy: dict[str, int] = {}
    out = []
    for i in range(hours):
        cams = {}
        for camera, (entered, left) in sorted(per.get(i, {}).items()):
            occupancy[camera] = max(0, occupancy.get(camera, 0) + entered - left)
            cams[camera] = {"entered": entered, "left": left, "occupancy": occupancy[camera]}
        out.append({"hour": (first_hour + timedelta(hours=i)).isoformat(),
                    "entered": sum(c["entered"] for c in cams.values()), "left": sum(c["left"] for c in cams.values()),
                    "occupancy": sum(occupancy.values()), "cameras": cams})
    return {"occupancy": sum(occupancy.values()), "occupancy_by_camera": occupancy, "entries_per_hour": out}


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL already failed to open; never leak it
        return "<unparsable>"


class _PendingPhotos:
    """Photos in progress or waiting; over the limit the request is refused at once (503)."""

    def __init__(self) -> None:
        self.value = 0
        self.lock = threading.Lock()

    def acquire(self, limit: int) -> None:
        with self.lock:
            if self.value >= limit:
                raise ApiError(503, "busy", f"{self.value} photos are being processed or waiting; try again shortly")
            self.value += 1

    def release(self) -> None:
        with self.lock:
            self.value -= 1
