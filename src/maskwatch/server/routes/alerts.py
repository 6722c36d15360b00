"""Alert endpoints: list by state, acknowledge, resolve, and per-channel delivery state."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field

from ...store.events_db import INT64_MAX
from ..errors import ApiError, db_call
from ..state import GUARDED, ServerState, server_state


class AlertAction(BaseModel):
    model_config = ConfigDict(extra="forbid")

    by: str = Field(..., min_length=1, max_length=256, description="Who acknowledges or resolves it.")
    note: str | None = Field(None, max_length=4000)


#: the alert tables live in the event store's database (``ServerState.alerts``); a running ``AlertDispatcher``
#: put in ``app.state.alert_dispatcher`` adds its live queue figures to ``/channels``
router = APIRouter(prefix="/v1/alerts", dependencies=GUARDED, tags=["alerts"])


@router.get("")
def list_alerts(state: Literal["open", "acknowledged", "resolved"] | None = None,
                camera: str | None = None, limit: int = Query(100, ge=1, le=1000),
                server: ServerState = Depends(server_state)) -> dict[str, Any]:
    """Alerts, newest first, with who acknowledged or resolved them and each channel's delivery."""
    found = db_call(server.alerts.list, state=state, camera=camera, limit=limit)
    return {"count": len(found), "counts": db_call(server.alerts.counts), "alerts": found}


@router.get("/channels")
def channels(request: Request, server: ServerState = Depends(server_state)) -> dict[str, Any]:
    """Per channel: deliveries pending / delivered / failed, attempts, the last error."""
    out = {"channels": db_call(server.alerts.channel_summary)}
    dispatcher = getattr(request.app.state, "alert_dispatcher", None)
    if dispatcher is not None:
        out["live"] = dispatcher.state()
    return out


def _act(server: ServerState, alert_id: int, to: str, body: AlertAction) -> dict[str, Any]:
    found = db_call(server.alerts.transition, alert_id, to, body.by, body.note)
    if found is None:
        raise ApiError(404, "no such alert", f"alert {alert_id} does not exist")
    return found


@router.post("/{alert_id}/ack")
def acknowledge(body: AlertAction, alert_id: int = PathParam(..., ge=0, le=INT64_MAX),
                server: ServerState = Depends(server_state)) -> dict[str, Any]:
    return _act(server, alert_id, "acknowledged", body)


@router.post("/{alert_id}/resolve")
def resolve(body: AlertAction, alert_id: int = PathParam(..., ge=0, le=INT64_MAX),
            server: ServerState = Depends(server_state)) -> dict[str, Any]:
    return _act(server, alert_id, "resolved", body)
