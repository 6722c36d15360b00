"""Make the OpenAPI schema say what the server really does (fuzzers and clients read it)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error", "detail"],
    "properties": {"error": {"type": "string"}, "detail": {"type": "string"}},
}
_ERROR_RESPONSES = {
    "400": "Not a readable image, bad query value, or a Host name not allowed.",
    "401": "Missing or wrong API key (only with --api-key).",
    "413": "Upload or image too large.",
    "422": "Invalid parameters (or an image the pipeline cannot process).",
    "503": "Busy (--max-pending), detection timed out, or the event database is unavailable.",
}
_DETECT_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {"schema": {"type": "object", "required": ["image"],
                                           "properties": {"image": {"type": "string", "format": "binary"}}}},
        "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
        "image/png": {"schema": {"type": "string", "format": "binary"}},
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
    },
}


def install_true_schema(app: FastAPI) -> None:
    """Every /v1 operation documents the error body and statuses it can answer; /v1/detect its
    request body and its image/jpeg answer."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = FastAPI.openapi(app)
        schema.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
        ref = {"$ref": "#/components/schemas/Error"}
        for path, ops in schema.get("paths", {}).items():
            for method, op in ops.items():
                responses = op.setdefault("responses", {})
                codes = ("400", "422") if path == "/v1/health" else tuple(_ERROR_RESPONSES)
                for code in codes:
                    responses[code] = {"description": _ERROR_RESPONSES[code],
                                       "content": {"application/json": {"schema": ref}}}
                if path == "/v1/detect" and method == "post":
                    op["requestBody"] = _DETECT_BODY
                    ok = responses.setdefault("200", {"description": "Faces found"})
                    ok.setdefault("content", {})["image/jpeg"] = {"schema": {"type": "string", "format": "binary"}}
                if path.endswith("/snapshot"):
                    responses["200"] = {"description": "The snapshot image", "content": {
                        t: {"schema": {"type": "string", "format": "binary"}} for t in ("image/jpeg", "image/png", "image/webp")}}
                    responses["403"] = {"description": "Snapshot outside the snapshot folder or not an image.",
                                        "content": {"application/json": {"schema": ref}}}
                if path.startswith("/v1/events") or "{" in path:
                    responses.setdefault("404", {"description": "No such event, snapshot, alert or camera.",
                                                 "content": {"application/json": {"schema": ref}}})
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
