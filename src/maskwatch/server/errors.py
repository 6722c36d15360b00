"""The server's one error shape: every answer other than 2xx is ``{"error": ..., "detail": ...}`` JSON."""

from __future__ import annotations

from typing import Any, Callable, TypeVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import MaskWatchError


class ApiError(Exception):
    """An answer other than 2xx, sent as ``{"error": ..., "detail": ...}``."""

    def __init__(self, status: int, error: str, detail: str = ""):
        super().__init__(f"{error}: {detail}")
        self.status, self.error, self.detail = status, error, detail


def install_error_handlers(app: FastAPI) -> None:
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


T = TypeVar("T")


def db_call(call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """A store call; a bad query answers 400, a database that fails 503."""
    from sqlalchemy.exc import SQLAlchemyError

    try:
        return call(*args, **kwargs)
    except MaskWatchError as exc:
        raise ApiError(400, "bad query", str(exc)) from None
    except SQLAlchemyError as exc:
        from ..redact import redact

        detail = redact(f"{type(exc).__name__}: {str(exc).splitlines()[0]}") or ""
        raise ApiError(503, "event database unavailable", detail) from None
