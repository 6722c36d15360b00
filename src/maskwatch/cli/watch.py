"""``maskwatch watch``: monitor a video file, folder of frames, webcam or stream for mask events."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, Optional

import typer

from ..errors import MaskWatchError


def register(app: typer.Typer) -> None:
    app.command("watch")(watch)


def watch(
    source: str = typer.Argument(..., help="Video file, folder of frames, webcam index (0) or rtsp:// / http:// URL."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Write the annotated video here (.mp4, .avi, .mkv)."),
    show: bool = typer.Option(False, "--show", help="Show a live window (needs a display; q or Esc stops)."),
    json_out: Optional[str] = typer.Option(None, "--json", help="JSON Lines of per-frame faces to this file ('-': stdout)."),
    stride: int = typer.Option(1, "--stride", min=1, help="Files and folders: process every Nth frame."),
    detect_every: int = typer.Option(3, "--detect-every", min=1,
                                     help="Run detector+classifier on every Nth processed frame; track in between."),
    db: Optional[str] = typer.Option(None, "--db", help="Event store: SQLAlchemy URL or SQLite file "
                                     "(default: $MASKWATCH_DB or events.db in the user data directory)."),
    spool: Optional[Path] = typer.Option(None, "--spool", help="Where events go while the database cannot take them: a "
                                         ".jsonl file or a folder (default: $MASKWATCH_SPOOL or spool/ in the user data "
                                         "directory; best on another disk than the database)."),
    spool_max_mb: float = typer.Option(64.0, "--spool-max-mb", min=0.01, help="Spool at most this many MiB."),
    spool_max_events: int = typer.Option(100_000, "--spool-max-events", min=1, help="Spool at most this many events."),
    webhook: Optional[str] = typer.Option(None, "--webhook", help="POST each event as JSON to this URL (with retries)."),
    alerts: Optional[Path] = typer.Option(None, "--alerts", help="Alert rules and channels (YAML, docs/alerts.md): "
                                          "webhook with HMAC signature, MQTT, e-mail."),
    snapshots: str = typer.Option("blurred", "--snapshots", help="none | blurred (all but the face concerned) | full."),
    snapshot_dir: Optional[Path] = typer.Option(None, "--snapshot-dir", help="Where snapshots go (default: user data dir)."),
    snapshot_keep: int = typer.Option(1000, "--snapshot-keep", min=0, help="Keep at most this many snapshots (0: no limit)."),
    snapshot_days: float = typer.Option(30.0, "--snapshot-days", min=0, help="Delete snapshots older than this (0: never)."),
    camera_name: Optional[str] = typer.Option(None, "--camera-name", help="Name stored with every event (default: SOURCE)."),
    zone: Optional[str] = typer.Option(None, "--zone", help="Only faces whose box centre is inside this polygon "
                                       "raise events: x1,y1,x2,y2,x3,y3,... in frame pixels (e.g. the entrance)."),
    entry: Optional[str] = typer.Option(None, "--entry", help="Directional entry line X1,Y1,X2,Y2 in frame pixels: a face "
                                        "crossing it from the left to the right of the direction point 1 -> point 2 raises "
                                        "'entered' (the other way 'left'); entered_unmasked is then raised at the line."),
    refind: float = typer.Option(3.0, "--refind", min=0, help="Seconds within which a person lost and found again at "
                                 "the same place keeps their id and state (no second event)."),
    detector: str = typer.Option("centerface", "--detector", help="Face detector name."),
    min_score: Optional[float] = typer.Option(None, "--min-score", help="Detector score threshold."),
    input_size: Optional[int] = typer.Option(None, "--input-size", min=64,
                                             help="Detector input: longer side in px (default 640; 320 is ~4x faster, misses "
                                                  "small faces). CenterFace and YuNet only."),
    min_face: float = typer.Option(20.0, "--min-face", help="Ignore faces smaller than this (px, shorter side)."),
    precision: Optional[str] = typer.Option(None, "--precision", help="CenterFace model: fp32 (default) or int8 "
                                            "(the bundled INT8 copy, ~1.6x faster on CPUs with VNNI; venue cameras "
                                            "use it by default)."),
    classifier_model: Optional[Path] = typer.Option(None, "--classifier-model", help="Mask classifier ONNX file."),
    threads: Optional[int] = typer.Option(None, "--threads", help="ONNX Runtime threads (default: all cores)."),
    window: int = typer.Option(6, "--window", min=1, help="Classified observations per track the state is decided over."),
    hold: int = typer.Option(2, "--hold", min=1, help="Observations a new state must lead before it is taken."),
    enter: float = typer.Option(0.6, "--enter", min=0.34, max=1.0, help="Weighted mean probability a new state needs."),
    open_timeout: float = typer.Option(10.0, "--open-timeout", help="Seconds a stream or camera may take to open."),
    fps: float = typer.Option(25.0, "--fps", help="Frame rate of a folder of frames (for video_time)."),
    max_frames: Optional[int] = typer.Option(None, "--max-frames", help="Stop after this many processed frames."),
) -> None:
    """Watch SOURCE: track faces, decide each person's mask state, record events (entered_unmasked,
    mask_removed, mask_incorrect, mask_restored, source_lost, source_restored; entered and left with --entry)."""
    from ..outputs import OutputError

    try:
        _check_snapshot_mode(snapshots)
        config = _validated({
            "source": {"spec": source, "stride": stride, "open_timeout_s": open_timeout, "fps": fps},
            "camera": camera_name,
            "models": {"detector": detector, "classifier": None if classifier_model is None else str(classifier_model),
                       "input_size": input_size, "min_score": min_score, "min_face": min_face,
                       "precision": precision or ("fp32" if detector == "centerface" else None),
                       "threads": threads or None},  # 0 and unset alike: the runtime's default
            "detect_every": detect_every, "state": {"window": window, "hold": hold, "enter": enter},
            "zone": parse_zone(zone).tolist() if zone else None,
            "entry": _entry_line(entry) if entry else None, "refind_s": refind,
            "snapshots": {"dir": None if snapshot_dir is None else str(snapshot_dir), "mode": snapshots,
                          "keep": snapshot_keep, "days": snapshot_days},
            "store": db,
            "spool": {"path": None if spool is None else str(spool), "max_mb": spool_max_mb,
                      "max_events": spool_max_events},
            "webhook": webhook,
            "alerts": None if alerts is None else _alerts_config(alerts),  # a bad file fails before the video opens
            "outputs": {"video": out, "json_lines": json_out, "show": show, "console": json_out != "-"},
            "max_frames": max_frames})
        _run(config)
    except OutputError as exc:
        from ._common import fail

        raise fail(str(exc), 1) from None
    except MaskWatchError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def _check_snapshot_mode(mode: str) -> None:
    from ..monitor import SNAPSHOT_MODES

    if mode not in SNAPSHOT_MODES:
        raise MaskWatchError(f"--snapshots must be one of {', '.join(SNAPSHOT_MODES)}, not {mode!r}")


def _entry_line(text: str) -> Any:
    from ..monitor import parse_entry

    try:
        return parse_entry(text)
    except ValueError as exc:
        raise MaskWatchError(str(exc)) from None


def _alerts_config(path: Path) -> Any:
    from ..alerts import load_alerts_config

    return load_alerts_config(path)


def _validated(options: dict[str, Any]) -> Any:
    """The options as a :class:`~maskwatch.service.watch.WatchConfig`; one that cannot be used is one line."""
    from pydantic import ValidationError

    from ..service.watch import WatchConfig

    try:
        return WatchConfig.model_validate(options)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        where = _OPTION_OF.get(where, where)
        raise MaskWatchError(f"{where}: {first['msg']} (got {first.get('input')!r})") from None


#: WatchConfig keys -> the option they come from (for messages)
_OPTION_OF = {"source.spec": "SOURCE", "source.open_timeout_s": "--open-timeout", "source.fps": "--fps",
              "models.min_score": "--min-score", "models.min_face": "--min-face", "models.input_size": "--input-size",
              "models.threads": "--threads", "models.detector": "--detector",
              "models.precision": "--precision", "refind_s": "--refind",
              "max_frames": "--max-frames", "outputs.video": "--out", "outputs.json_lines": "--json"}


def _run(config: Any) -> None:
    from ..service.watch import build_watch

    def echo(text: str) -> None:
        typer.echo(text, err=True)

    run = build_watch(config, echo=echo)
    video, store, snapper = run.source, run.store, run.snapshots
    run.frame_sinks.append(_Progress(video))
    stats = run.run(report=echo, fatal=(typer.Exit, MaskWatchError))
    stages = ", ".join(f"{k} {v / max(stats.frames, 1):.1f}" for k, v in stats.stage_ms.items())
    skipped = f", snapshots skipped {snapper.skipped}" if snapper is not None and snapper.skipped else ""
    dropped = f", frames dropped {video.dropped}" if video.live else ""
    kept = (f" ({store.stored} stored, {store.spooled} spooled in {store.spool.path if store.spool else '-'}, "
            f"{store.lost} lost)" if store.unsaved else "")
    typer.echo(f"{'interrupted: ' if stats.interrupted else ''}{stats.frames} frames, {stats.fps:.1f} FPS, "
               f"{stats.events} events{kept} -> {store.shown_url}{skipped}{dropped}; ms/frame: {stages}", err=True)
    if store.lost:
        typer.echo(f"error: {store.lost} events lost: not stored in {store.shown_url} ({store.last_error})", err=True)
        raise typer.Exit(3)
    if store.unsaved:
        typer.echo(f"error: {store.unsaved} events not stored in {store.shown_url} yet ({store.last_error}); "
                   f"spooled: they are written when the database is next opened", err=True)
        raise typer.Exit(4)


def parse_zone(text: str) -> Any:
    """``"x1,y1,x2,y2,x3,y3,..."`` -> (K, 2) float array; at least 3 points."""
    import numpy as np

    try:
        values = [float(v) for v in text.replace(";", ",").split(",") if v.strip()]
    except ValueError:
        values = []
    if len(values) < 6 or len(values) % 2:
        raise MaskWatchError(f"--zone {text!r}: expected x1,y1,x2,y2,x3,y3,... (at least 3 points, in pixels)")
    return np.array(values, np.float32).reshape(-1, 2)


class _Progress:
    """A frame sink: a rich progress bar with FPS for files; a stats line every 5 s (FPS, latency, drops) for
    live sources."""

    name = "progress"

    def __init__(self, video: Any) -> None:
        self.video = video
        self.count = 0
        self.started = self.last_report = time.perf_counter()
        self.bar = None
        if not video.live and sys.stderr.isatty():
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(TextColumn("[bold]watch"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                                TextColumn("{task.fields[fps]:.1f} FPS"), TimeRemainingColumn(), transient=True)
            self.task = self.bar.add_task("watch", total=video.frame_count, fps=0.0)
            self.bar.start()

    def handle(self, frame: Any, faces: Any, events: list) -> None:
        self.count += 1
        now = time.perf_counter()
        fps = self.count / max(now - self.started, 1e-6)
        if self.bar is not None:
            self.bar.update(self.task, completed=frame.index + 1, fps=fps)
        elif self.video.live and now - self.last_report >= 5:
            latency = (time.time() - frame.wall_time) * 1000
            typer.echo(f"{fps:.1f} FPS, latency {latency:.0f} ms, dropped {self.video.dropped}, "
                       f"reconnects {self.video.reconnects}", err=True)
            self.last_report = now

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
