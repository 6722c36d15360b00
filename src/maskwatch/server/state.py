"""What the routes share, built once by :func:`~maskwatch.server.app.create_app` and kept in
``app.state.maskwatch``; routes read it through the FastAPI dependencies here."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import Depends, Request

from .errors import ApiError

if TYPE_CHECKING:
    from ..alerts.records import AlertStore
    from ..service.detect import DetectService
    from ..store import EventStore
    from .routes.detect import DetectQueue


@dataclass
class ServerState:
    """``store``: the event store; ``detect``: the detection service every ``/v1/detect`` runs;
    ``queue``: its worker threads and waiting line; ``snapshot_root``: the only folder snapshots are
    served from; ``supervisor``: the venue service's cameras (``serve --config``), else None."""

    store: "EventStore"
    alerts: "AlertStore"
    detect: "DetectService"
    queue: "DetectQueue"
    snapshot_root: Path
    dashboard_html: str
    api_key: str | None = None
    max_upload_bytes: int = 20 * 1024 * 1024
    stats_cameras: int = 20
    classifier_sha256: str | None = None
    supervisor: Any = None
    started: float = field(default_factory=time.monotonic)


def server_state(request: Request) -> ServerState:
    """The :class:`ServerState` of the app answering ``request``."""
    state: ServerState = request.app.state.maskwatch
    return state


def check_api_key(request: Request, api_key: str | None) -> None:
    """401 unless ``api_key`` is unset or the request's ``X-API-Key`` header holds it."""
    if not api_key:
        return
    given = request.headers.get("x-api-key", "")
    if not secrets.compare_digest(given.encode(), api_key.encode()):
        raise ApiError(401, "missing or wrong API key", "send the key in the X-API-Key header")


def require_key(request: Request) -> None:
    """The dependency of every ``/v1`` route but ``/v1/health``: the API key, when the server has one."""
    check_api_key(request, server_state(request).api_key)


#: ``APIRouter(dependencies=GUARDED)``: routes that need the API key
GUARDED = [Depends(require_key)]
