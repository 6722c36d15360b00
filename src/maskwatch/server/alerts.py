"""Alert endpoints: list by state, acknowledge, resolve, and per-channel delivery state."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field

from ..store.events_db import INT64_MAX


class AlertAction(BaseModel):
    model_config = ConfigDict(extra="forbid")

    by: str = Field(..., min_length=1, max_length=256, description="Who acknowledges or resolves it.")
    note: str | None = Field(None, max_length=4000)


def alerts_router(store: Any, dependencies: list[Any]) -> APIRouter:
    """``store``: the app's ``EventStore`` (the alert tables live in its database). A running
    ``AlertDispatcher`` put in ``app.state.alert_dispatcher`` adds its live queue figures to ``/channels``."""
    from ..alerts.records import AlertStore
    from .app import ApiError, _db

    alerts = AlertStore(store.engine)
    router = APIRouter(prefix="/v1/alerts", dependencies=dependencies, tags=["alerts"])

    @router.get("")
    def list_alerts(state: Literal["open", "acknowledged", "resolved"] | None = None,
                    camera: str | None = None, limit: int = Query(100, ge=1, le=1000)) -> dict[str, Any]:
        """Alerts, newest first, with who acknowledged or resolved them and each channel's delivery."""
        found = _db(alerts.list, state=state, camera=camera, limit=limit)
        return {"count": len(found), "counts": _db(alerts.counts), "alerts": found}

    @router.get("/channels")
    def channels(request: Request) -> dict[str, Any]:
        """Per channel: deliveries pending / delivered / failed, attempts, the last error."""
        out = {"channels": _db(alerts.channel_summary)}
        dispatcher = getattr(request.app.state, "alert_dispatcher", None)
        if dispatcher is not None:
            out["live"] = dispatcher.state()
        return out

    def act(alert_id: int, to: str, body: AlertAction) -> dict[str, Any]:
        found = _db(alerts.transition, alert_id, to, body.by, body.note)
        if found is None:
            raise ApiError(404, "no such alert", f"alert {alert_id} does not exist")
        return found

    @router.post("/{alert_id}/ack")
    def acknowledge(body: AlertAction, alert_id: int = PathParam(..., ge=0, le=INT64_MAX)) -> dict[str, Any]:
        return act(alert_id, "acknowledged", body)

    @router.post("/{alert_id}/resolve")
    def resolve(body: AlertAction, alert_id: int = PathParam(..., ge=0, le=INT64_MAX)) -> dict[str, Any]:
        return act(alert_id, "resolved", body)

    return router
