"""Camera routes of the venue service (``serve --config``): health, enable/disable, live view, and the
pushed event stream. ``ServerState.supervisor`` is the :class:`maskwatch.service.supervisor.Supervisor`."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response, StreamingResponse

from ..errors import ApiError
from ..state import GUARDED, ServerState, server_state
from .events import event_dict_json

BOUNDARY = "maskwatchframe"

router = APIRouter(dependencies=GUARDED)


def supervisor_of(state: ServerState = Depends(server_state)) -> Any:
    return state.supervisor


def slot_of(supervisor: Any, name: str) -> Any:
    if name not in supervisor.slots:
        raise ApiError(404, "no such camera", f"{name!r}: cameras are {', '.join(supervisor.slots)}")
    return supervisor.slots[name]


@router.get("/v1/cameras")
def cameras(supervisor: Any = Depends(supervisor_of)) -> dict[str, Any]:
    return {"cameras": supervisor.cameras()}


@router.post("/v1/cameras/{name}/enable")
def enable(name: str, supervisor: Any = Depends(supervisor_of)) -> dict[str, Any]:
    slot_of(supervisor, name)
    answer: dict[str, Any] = supervisor.enable(name)
    return answer


@router.post("/v1/cameras/{name}/disable")
def disable(name: str, supervisor: Any = Depends(supervisor_of)) -> dict[str, Any]:
    slot_of(supervisor, name)
    answer: dict[str, Any] = supervisor.disable(name)
    return answer


@router.get("/v1/cameras/{name}/frame.jpg", responses={200: {"content": {"image/jpeg": {}}}})
def frame_jpg(name: str, supervisor: Any = Depends(supervisor_of)) -> Response:
    slot = slot_of(supervisor, name)
    if slot.process is None or slot.state not in ("starting", "running", "lost"):
        raise ApiError(503, "camera not running", f"{name} is {slot.state}: no live frame")
    supervisor.want_live(name)
    jpeg, _ = supervisor.wait_frame(name, time.time() - 1.0, timeout_s=5.0)
    if jpeg is None:
        raise ApiError(503, "no frame yet", f"{name} has not sent a frame yet (state {slot.state}); try again shortly")
    return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "no-store"})


@router.get("/v1/cameras/{name}/live")
async def live(name: str, request: Request, supervisor: Any = Depends(supervisor_of)) -> StreamingResponse:
    slot_of(supervisor, name)
    loop = asyncio.get_running_loop()

    async def parts() -> Any:
        last = 0.0
        while not supervisor.closing.is_set() and not await request.is_disconnected():
            supervisor.want_live(name)
            jpeg, when = await loop.run_in_executor(None, supervisor.wait_frame, name, last, 1.0)
            if jpeg is None or when <= last:
                continue
            last = when
            yield (f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n").encode() \
                + jpeg + b"\r\n"

    return StreamingResponse(parts(), media_type=f"multipart/x-mixed-replace; boundary={BOUNDARY}",
                             headers={"Cache-Control": "no-store"})


@router.get("/v1/events/stream")
async def event_stream(request: Request, supervisor: Any = Depends(supervisor_of)) -> StreamingResponse:
    """Server-sent events: ``event: maskwatch-event`` with an item of /v1/events as data."""
    q = supervisor.subscribe()

    async def lines() -> Any:
        try:
            yield ": connected\n\n"
            quiet = 0.0
            while not supervisor.closing.is_set() and not await request.is_disconnected():
                try:
                    ev = await asyncio.wait_for(q.get(), timeout=1.0)
                except asyncio.TimeoutError:
                    quiet += 1.0
                    if quiet >= 10.0:
                        quiet = 0.0
                        yield ": keep-alive\n\n"
                    continue
                quiet = 0.0
                out = event_dict_json(dict(ev))
                yield f"event: maskwatch-event\nid: {ev.get('id')}\ndata: {json.dumps(out)}\n\n"
        finally:
            supervisor.unsubscribe(q)

    return StreamingResponse(lines(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
