"""``maskwatch watch``: monitor a video file, folder of frames, webcam or stream for mask events."""

from __future__ import annotations

import os
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
    try:
        _watch(**locals())
    except MaskWatchError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def _watch(source: str, out: Path | None, show: bool, json_out: str | None, stride: int, detect_every: int,
           db: str | None, spool: Path | None, spool_max_mb: float, spool_max_events: int, webhook: str | None, alerts: Path | None, snapshots: str, snapshot_dir: Path | None, snapshot_keep: int,
           snapshot_days: float, camera_name: str | None, zone: str | None, entry: str | None, refind: float, detector: str, min_score: float | None, min_face: float,
           classifier_model: Path | None, input_size: int | None, threads: int | None, window: int, hold: int, enter: float,
           open_timeout: float, fps: float, max_frames: int | None) -> None:
    from ..detectors import Preferred
    from ..monitor import (SNAPSHOT_MODES, AlertSink, AnnotatedSink, ConsoleSink, JsonLinesSink, SnapshotWriter,
                           StateConfig, StoreSink, Watcher, WebhookSink, default_snapshot_dir, parse_entry, run_watch)
    from ..pipeline import build_pipeline
    from ..store import EventStore, SpoolConfig, WebhookNotifier
    from ..video import VideoWriter, open_source

    if snapshots not in SNAPSHOT_MODES:
        raise MaskWatchError(f"--snapshots must be one of {', '.join(SNAPSHOT_MODES)}, not {snapshots!r}")
    polygon = parse_zone(zone) if zone else None
    try:
        line = parse_entry(entry) if entry else None
    except ValueError as exc:
        raise MaskWatchError(str(exc)) from None
    alerts_cfg = None
    if alerts is not None:
        from ..alerts import load_alerts_config

        alerts_cfg = load_alerts_config(alerts)  # a bad file fails before the video opens
    from ._common import writable_dir

    # outputs that cannot be written fail here, in one line, before the models load or the video opens
    for folder, what in ((out.parent if out else None, "the output video"),
                         (Path(json_out).parent if json_out and json_out != "-" and not json_out.startswith("/dev/") else None,
                          "the JSON lines"),
                         (snapshot_dir or default_snapshot_dir() if snapshots != "none" else None, "snapshots")):
        if folder is not None:
            writable_dir(folder, what)
    video = open_source(source, stride=stride, open_timeout_s=open_timeout, fps=fps)  # bad input fails first
    try:
        pipeline = build_pipeline(detector, min_score=min_score, min_face=min_face, threads=threads,
                                  classifier_model=None if classifier_model is None else str(classifier_model),
                                  input_size=Preferred(640) if input_size is None else input_size)
        store = EventStore(db, spool=SpoolConfig(path=spool, max_bytes=max(int(spool_max_mb * 2**20), 1024),
                                                 max_events=spool_max_events))
    except BaseException:
        video.close()
        raise
    # the engine's events go to the event sinks (store first: the alerts read it), each frame to the frame sinks
    event_sinks: list = [StoreSink(store)]
    if webhook:
        event_sinks.append(WebhookSink(WebhookNotifier(webhook)))
    if alerts_cfg is not None:
        from ..alerts import AlertDispatcher

        event_sinks.append(AlertSink(AlertDispatcher(alerts_cfg, store)))
    if json_out != "-":
        event_sinks.append(ConsoleSink(lambda line: typer.echo(line, err=True)))
    writer = VideoWriter(out, fps=(video.fps or 25.0) / (stride if not video.live else 1)) if out else None
    snapper = None
    if snapshots != "none":
        snapper = SnapshotWriter(snapshot_dir or default_snapshot_dir(), snapshots,
                                 max_files=snapshot_keep or None, max_age_days=snapshot_days or None)
    frame_sinks: list = []
    if json_out:
        from ._common import written_file

        try:
            json_fh = sys.stdout if json_out == "-" else written_file(json_out, open(json_out, "w", encoding="utf-8", buffering=1))
        except OSError as exc:
            raise MaskWatchError(f"{json_out}: cannot write ({exc.strerror or exc})") from None
        frame_sinks.append(JsonLinesSink(json_fh, own=json_fh is not sys.stdout))
    outputs = [o for o in (writer, _Display() if show else None) if o is not None]
    if outputs:
        frame_sinks.append(AnnotatedSink(outputs, zone=polygon, entry=line))
    frame_sinks.append(_Progress(video))

    watcher = Watcher(pipeline.detector, pipeline.classifier, source=video.name, camera=camera_name or video.name,
                      detect_every=detect_every, state_config=StateConfig(window=window, enter=enter, hold=hold),
                      snapshots=snapper, min_face=max(min_face, 1.0), zone=polygon, entry=line, refind_s=refind)
    stats = run_watch(video, watcher, event_sinks=event_sinks, frame_sinks=frame_sinks, max_frames=max_frames,
                      report=lambda text: typer.echo(text, err=True), fatal=(typer.Exit, MaskWatchError))
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


class _Display:
    def __init__(self) -> None:
        self.ok = bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or sys.platform in ("win32", "darwin"))
        if not self.ok:
            typer.echo("warning: --show needs a display; carrying on without the window", err=True)

    def show(self, image: Any) -> bool:
        if not self.ok:
            return True
        import cv2

        cv2.imshow("maskwatch", image)
        return cv2.waitKey(1) & 0xFF not in (ord("q"), 27)

    def write(self, image: Any) -> None:
        """An output of the annotated frame sink: q or Esc in the window ends the run like Ctrl-C."""
        if not self.show(image):
            raise KeyboardInterrupt

    def close(self) -> None:
        if self.ok:
            import cv2

            cv2.destroyAllWindows()


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
