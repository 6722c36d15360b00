"""``/``: the operators' dashboard page (it holds no data; open without the key) and ``/v1/health``."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from ... import __version__
from ..errors import ApiError
from ..state import ServerState, check_api_key, server_state

router = APIRouter()


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def dashboard(state: ServerState = Depends(server_state)) -> HTMLResponse:
    return HTMLResponse(state.dashboard_html)


@router.get("/v1/health")
def health(request: Request, state: ServerState = Depends(server_state)) -> dict[str, Any]:
    public = {
        "status": "ok",
        "version": __version__,
        "detector": state.detect.detector_info(),
        "uptime_s": round(time.monotonic() - state.started, 1),
        "api_key_required": bool(state.api_key),
        "max_upload_bytes": state.max_upload_bytes,
    }
    try:
        check_api_key(request, state.api_key)
    except ApiError:
        return public  # no model or database paths to anyone without the key
    return {**public,
            "classifier": {"path": state.detect.classifier_path(), "sha256": state.classifier_sha256},
            "events_db": safe_url(state.store.url)}


def safe_url(url: str) -> str:
    """A database URL without its password."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL already failed to open; never leak it
        return "<unparsable>"
