"""``POST /v1/detect``: faces and mask states in one uploaded photo, through the detection service."""

from __future__ import annotations

import asyncio
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, TypeVar

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import UploadFile

from ...errors import InputError
from ...images import ImageTooLargeError
from ...service.detect import DetectService, EncodingError, ProcessingError
from ..errors import ApiError
from ..state import GUARDED, ServerState, server_state

#: room for the multipart envelope around an upload of the largest allowed size
MULTIPART_SLACK = 64 * 1024

router = APIRouter(dependencies=GUARDED)
T = TypeVar("T")


class DetectQueue:
    """Where photos wait for detection: ``max_concurrent`` worker threads (each inference already uses
    the configured threads), at most ``max_pending`` photos in progress or waiting (beyond: 503 "busy",
    before the upload is read), and ``timeout_s`` for one photo's answer (503 "detection timed out"; its
    slot stays taken until the work really ends, so a pathological image cannot pile up threads)."""

    def __init__(self, max_concurrent: int = 1, max_pending: int = 16, timeout_s: float = 30.0):
        self.max_concurrent, self.max_pending, self.timeout_s = max(1, max_concurrent), max_pending, timeout_s
        self.pending = 0
        self._lock = threading.Lock()
        self._pool = self._new_pool()

    def _new_pool(self) -> ThreadPoolExecutor:
        return ThreadPoolExecutor(self.max_concurrent, thread_name_prefix="maskwatch-detect")

    def open(self) -> None:
        """Ready for work (again, after :meth:`close`: tests and ASGI hosts restart an app)."""
        if self._pool._shutdown:
            self._pool = self._new_pool()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def acquire(self) -> None:
        with self._lock:
            if self.pending >= self.max_pending:
                raise ApiError(503, "busy", f"{self.pending} photos are being processed or waiting; try again shortly")
            self.pending += 1

    def release(self) -> None:
        with self._lock:
            self.pending -= 1

    async def run(self, name: str, work: Callable[..., T], *args: Any) -> T:
        """``work(*args)`` in a worker thread, for a photo whose slot :meth:`acquire` took; the slot is
        released when the work ends, even after a timeout."""
        try:
            future = asyncio.get_running_loop().run_in_executor(self._pool, work, *args)
        except BaseException:
            self.release()
            raise
        future.add_done_callback(lambda _f: self.release())
        try:
            return await asyncio.wait_for(asyncio.shield(future), self.timeout_s)
        except asyncio.TimeoutError:
            raise ApiError(503, "detection timed out", f"{name}: no answer within {self.timeout_s:g} s; "
                           "the server is overloaded or the image is pathological") from None


@router.post("/v1/detect", responses={200: {"content": {"image/jpeg": {}}}})
async def detect(
    request: Request,
    min_score: float | None = Query(None, ge=0.0, le=1.0, description="Drop faces scored below this "
                                    "(can only raise the server's own --min-score)."),
    annotate: bool = Query(False, description="Answer with the annotated JPEG instead of JSON."),
    state: ServerState = Depends(server_state),
) -> Response:
    """Faces and mask states in one image: a multipart upload (field ``image``) or the raw image as the body."""
    queue = state.queue
    queue.acquire()  # before the body is read: a busy server reads no upload
    try:
        data, name = await uploaded_image(request, state.max_upload_bytes)
    except BaseException:
        queue.release()
        raise
    return await queue.run(name, answer, state.detect, data, name, min_score, annotate)  # releases the slot


def answer(service: DetectService, data: bytes, name: str, min_score: float | None, annotate: bool) -> Response:
    """The detection of one upload as the API answers it: ``detect --json``'s record plus ``timings_ms``,
    or (``annotate``) the annotated JPEG with the faces, counts and timings in headers."""
    try:
        found = service.detect_bytes(data, name, min_score=min_score, annotate=annotate)
    except ImageTooLargeError as exc:
        raise ApiError(413, "image too large", str(exc)) from None
    except ProcessingError as exc:
        raise ApiError(422, "cannot process image", f"{exc.path}: {exc.reason}") from None
    except InputError as exc:
        raise ApiError(400, "not a readable image", str(exc)) from None
    except EncodingError:
        raise ApiError(500, "encoding failed", "could not encode the annotated image") from None
    timings = found.timings_ms()
    record = found.record()
    if annotate:
        return Response(found.jpeg, media_type="image/jpeg", headers={
            "X-MaskWatch-Counts": json.dumps(record["counts"], separators=(",", ":")),
            "X-MaskWatch-Faces": json.dumps(record["faces"], separators=(",", ":")),
            "X-MaskWatch-Timings": json.dumps(timings, separators=(",", ":")),
        })
    return JSONResponse(dict(record, timings_ms=timings))


async def uploaded_image(request: Request, max_bytes: int) -> tuple[bytes, str]:
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
