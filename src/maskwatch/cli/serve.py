"""``maskwatch serve``: the HTTP API and the operators' dashboard."""

from __future__ import annotations

import signal

from pathlib import Path
from typing import Optional

import typer

from ._common import err_console, fail, need_extra, user_errors, warn


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


def serve(
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="Venue config (YAML): run its cameras, each in "
                                          "its own process, with the API (see `maskwatch config example`)."),
    host: Optional[str] = typer.Option(None, "--host", help="Address to listen on (0.0.0.0: every interface; "
                                       "default 127.0.0.1 or the config's server.host)."),
    port: Optional[int] = typer.Option(None, "--port", min=1, max=65535, help="TCP port (default 8000 or the config's)."),
    db: Optional[str] = typer.Option(None, "--db", help="Event store: SQLAlchemy URL or SQLite file (default as for watch; $MASKWATCH_DB)."),
    spool: Optional[Path] = typer.Option(None, "--spool", help="The spool `watch --spool` used (a .jsonl file or a "
                                         "folder): its events are written to the store at start (default: the config's "
                                         "spool.path, else $MASKWATCH_SPOOL or spool/ in the user data directory)."),
    snapshot_dir: Optional[Path] = typer.Option(None, "--snapshot-dir",
                                                help="Folder the event snapshots are in (default as for watch); nothing outside it is served."),
    detector: str = typer.Option("centerface", "--detector", help="centerface, yunet, ultraface, mtcnn or aizoo."),
    min_score: Optional[float] = typer.Option(None, "--min-score", min=0.0, max=1.0, help="Face confidence threshold (default: the detector's own)."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="CPU threads per inference (default: all)."),
    max_upload_mb: float = typer.Option(20.0, "--max-upload-mb", min=0.01, help="Refuse uploads larger than this many MiB."),
    max_pixels: int = typer.Option(64_000_000, "--max-pixels", min=1, help="Refuse images larger than this many pixels."),
    max_pending: int = typer.Option(16, "--max-pending", min=1,
                                    help="Photos in progress or waiting before /v1/detect answers 503 busy."),
    detect_timeout: float = typer.Option(30.0, "--detect-timeout", min=0.1,
                                         help="One photo not answered within this many seconds: 503 'detection timed out'."),
    header_timeout: float = typer.Option(10.0, "--header-timeout", min=0.1, help="Close a connection whose request "
                                         "line and headers are not complete this many seconds after its first byte."),
    body_timeout: float = typer.Option(60.0, "--body-timeout", min=0.1,
                                       help="Close a connection whose request body is not complete this many seconds after its headers."),
    stats_cameras: int = typer.Option(20, "--stats-cameras", min=1, help="/v1/stats lists at most this many "
                                      "cameras (most events first); the rest are summed in by_camera_other."),
    api_key: Optional[str] = typer.Option(None, "--api-key", envvar="MASKWATCH_API_KEY",
                                          help="Require this key in the X-API-Key header of every /v1 endpoint but /v1/health ($MASKWATCH_API_KEY)."),
    allowed_host: Optional[list[str]] = typer.Option(None, "--allowed-host", help="Host header value to answer "
                                                     "besides localhost and --host (repeatable; '*': any, e.g. behind a proxy that checks it)."),
    log_level: str = typer.Option("info", "--log-level", help="uvicorn log level: critical, error, warning, info, debug."),
) -> None:
    """Serve the HTTP API (/v1/health, /v1/detect, /v1/events, /v1/stats) and the dashboard at /.

    The detection models are loaded once at start; API docs are at /docs once it runs. With --config the
    venue's cameras run too (/v1/cameras, live view, /v1/events/stream); the config's store, snapshot
    folder, models and server keys then apply.
    """
    need_extra("fastapi", "server")
    need_extra("uvicorn", "server")
    need_extra("python_multipart", "server")
    import uvicorn

    from ..server import create_app

    from ..store import SpoolConfig

    supervisor = None
    spool_config = SpoolConfig(path=spool)
    if config is not None:
        from ..service.config import load_config
        from ..service.supervisor import Supervisor

        venue = load_config(config)  # a ConfigError is the one error line, exit status 2
        db, snapshot_dir = venue.store, Path(venue.snapshots.dir)
        spool_config = venue.spool.spool_config()
        if spool is not None:
            spool_config.path = spool
        detector, min_score = venue.models.detector, venue.models.min_score
        api_key = venue.server.api_key or api_key
        host, port = host or venue.server.host, port or venue.server.port
        supervisor = Supervisor(venue)
    host, port = host or "127.0.0.1", port or 8000
    if host not in ("127.0.0.1", "localhost", "::1") and not api_key:
        warn(f"listening on {host} without --api-key: anyone who can reach this port can use the API")
    _check_port_free(host, port)
    with user_errors():
        app = create_app(db=db, snapshot_dir=snapshot_dir, detector=detector, min_score=min_score, threads=threads,
                         max_upload_bytes=int(max_upload_mb * 2**20), max_pixels=max_pixels, api_key=api_key,
                         max_pending=max_pending, hosts=[host, *(allowed_host or [])], service=supervisor,
                         detect_timeout_s=detect_timeout, stats_cameras=stats_cameras, spool=spool_config)
    alerts = None
    if supervisor is not None and venue.alerts is not None and venue.alerts.enabled:
        from ..service.alerts import VenueAlerts, public_base_url

        with user_errors():  # before the cameras start: every event they commit is seen
            alerts = VenueAlerts(venue.alerts, venue.store, public_base_url(host, port, venue.server.public_url))
        app.state.alert_dispatcher = alerts.dispatcher
    err_console.print(f"dashboard: http://{host}:{port}/   API docs: http://{host}:{port}/docs", highlight=False)
    from ..server.limits import UVICORN_LIMITS, slow_client_protocol

    limits = dict(UVICORN_LIMITS, http=slow_client_protocol(header_timeout, body_timeout))

    # uvicorn shuts down gracefully on SIGTERM, then raises the signal again once it has restored the
    # previous handler: a no-op handler here lets `serve` stop its cameras and exit 0 instead of dying.
    signal.signal(signal.SIGTERM, lambda *_: None)
    if supervisor is None:
        uvicorn.run(app, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=5, **limits)
        return
    supervisor.start()
    if alerts is not None:
        alerts.start(supervisor)
    from ..redact import redact

    err_console.print(f"cameras: {', '.join(supervisor.slots)} -> {redact(str(db))}", highlight=False)
    class _Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: object) -> None:
            supervisor.closing.set()  # open /live and /events/stream answers end now, not after the grace time
            super().handle_exit(sig, frame)

    server = _Server(uvicorn.Config(app, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=3,
                                    **limits))
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        supervisor.stop()  # SIGTERM to each camera: it ends its frame; its events are committed already
        if alerts is not None:
            alerts.close()  # a last read of the store, then waiting deliveries: bounded by alerts.close_timeout_s
        err_console.print("stopped: " + ", ".join(f"{c['name']} {c['state']}" for c in supervisor.cameras()),
                          highlight=False)
    if not server.started:
        raise fail(f"the server did not start on {host}:{port} (see the lines above)")


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
