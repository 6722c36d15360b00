"""``maskwatch serve``: the HTTP API and the operators' dashboard."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ._common import err_console, fail, need_extra, user_errors, warn


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (0.0.0.0: every interface)."),
    port: int = typer.Option(8000, "--port", min=1, max=65535, help="TCP port."),
    db: Optional[str] = typer.Option(None, "--db", help="Event store: SQLAlchemy URL or SQLite file (default as for watch; $MASKWATCH_DB)."),
    snapshot_dir: Optional[Path] = typer.Option(None, "--snapshot-dir",
                                                help="Folder the event snapshots are in (default as for watch); nothing outside it is served."),
    detector: str = typer.Option("centerface", "--detector", help="centerface, yunet, ultraface, mtcnn or aizoo."),
    min_score: Optional[float] = typer.Option(None, "--min-score", min=0.0, max=1.0, help="Face confidence threshold (default: the detector's own)."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="CPU threads per inference (default: all)."),
    max_upload_mb: float = typer.Option(20.0, "--max-upload-mb", min=0.01, help="Refuse uploads larger than this many MiB."),
    max_pixels: int = typer.Option(64_000_000, "--max-pixels", min=1, help="Refuse images larger than this many pixels."),
    max_pending: int = typer.Option(16, "--max-pending", min=1,
                                    help="Photos in progress or waiting before /v1/detect answers 503 busy."),
    api_key: Optional[str] = typer.Option(None, "--api-key", envvar="MASKWATCH_API_KEY",
                                          help="Require this key in the X-API-Key header of every /v1 endpoint but /v1/health ($MASKWATCH_API_KEY)."),
    allowed_host: Optional[list[str]] = typer.Option(None, "--allowed-host", help="Host header value to answer "
                                                     "besides localhost and --host (repeatable; '*': any, e.g. behind a proxy that checks it)."),
    log_level: str = typer.Option("info", "--log-level", help="uvicorn log level: critical, error, warning, info, debug."),
) -> None:
    """Serve the HTTP API (/v1/health, /v1/detect, /v1/events, /v1/stats) and the dashboard at /.

    The detection models are loaded once at start; API docs are at /docs once it runs.
    """
    need_extra("fastapi", "server")
    need_extra("uvicorn", "server")
    need_extra("python_multipart", "server")
    import cv2
    import uvicorn

    from ..server import create_app

    if threads:
        cv2.setNumThreads(threads)
    if host not in ("127.0.0.1", "localhost", "::1") and not api_key:
        warn(f"listening on {host} without --api-key: anyone who can reach this port can use the API")
    _check_port_free(host, port)
    with user_errors():
        app = create_app(db=db, snapshot_dir=snapshot_dir, detector=detector, min_score=min_score, threads=threads,
                         max_upload_bytes=int(max_upload_mb * 2**20), max_pixels=max_pixels, api_key=api_key,
                         max_pending=max_pending, hosts=[host, *(allowed_host or [])])
    err_console.print(f"dashboard: http://{host}:{port}/   API docs: http://{host}:{port}/docs", highlight=False)
    from ..server.limits import UVICORN_LIMITS

    uvicorn.run(app, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=5, **UVICORN_LIMITS)


def _check_port_free(host: str, port: int) -> None:
    """Fail in one line, before the models load, when the address cannot be bound."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise fail(f"--host {host}: cannot resolve ({exc.strerror or exc})") from None
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise fail(f"cannot listen on {host}:{port} ({exc.strerror or exc})") from None
