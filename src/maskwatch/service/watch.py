"""The watch service: one typed config -> a source, the engine (:class:`~maskwatch.monitor.Watcher`), the
event sinks and the frame sinks, run by :func:`~maskwatch.monitor.run_watch`.

``maskwatch watch`` turns its options into a :class:`WatchConfig`; the venue's camera worker builds one
from its camera's section of the venue config (:func:`camera_watch_config`). Both call
:func:`build_watch`, add what is their own (the CLI's progress bar; the worker's health and live view)
and call :meth:`WatchRun.run`.

Event sinks, in this order: tags (extra fields on every event), snapshots (fills ``event.snapshot`` from
the frame), the store, the webhook, the alerts, the console. Frame sinks: the JSON lines, the annotated
video and window, then the caller's own.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from pydantic import Field

from ..alerts.config import AlertsConfig
from ..errors import MaskWatchError
from ..video.sources import STREAM_PREFIXES
from .config import CameraConfig, ModelsConfig, Point, ServiceConfig, SnapshotsConfig, SpoolSettings, StateSettings
from .config import _Strict


class SourceSettings(_Strict):
    spec: str = Field(description="Video file, folder of frames, webcam index (0) or rtsp:// / http:// URL.")
    stride: int = Field(1, ge=1, description="Files and folders: process every Nth frame.")
    open_timeout_s: float = Field(10.0, gt=0, description="Seconds a stream or camera may take to open.")
    fps: float = Field(25.0, gt=0, description="Frame rate of a folder of frames (for video_time).")
    lost_after_s: float = Field(2.0, gt=0, description="Streams and webcams: no frame this long is one source_lost.")
    restore_after_s: float = Field(2.0, gt=0, description="... and frames flowing this long after it one "
                                   "source_restored.")
    loop: bool = Field(False, description="Files: start again at the end.")
    realtime: bool = Field(False, description="Files: read at the file's frame rate, as a camera would send.")

    @property
    def is_file(self) -> bool:
        return not (self.spec.lower().startswith(STREAM_PREFIXES) or self.spec.isdigit())


class OutputSettings(_Strict):
    video: Path | None = Field(None, description="The annotated video (.mp4, .avi, .mkv).")
    json_lines: str | None = Field(None, description="JSON Lines of per-frame faces to this file ('-': stdout).")
    show: bool = Field(False, description="A live window (needs a display; q or Esc stops).")
    console: bool = Field(False, description="One line per event through the builder's ``echo``.")


class WatchConfig(_Strict):
    """Everything one watch run needs (``maskwatch watch`` options, or one venue camera)."""

    source: SourceSettings
    camera: str | None = Field(None, description="Name stored with every event (default: the source's name).")
    models: ModelsConfig = ModelsConfig(threads=None)
    detect_every: int = Field(3, ge=1)
    state: StateSettings = StateSettings()
    zone: list[Point] | None = None
    entry: tuple[Point, Point] | None = None
    refind_s: float = Field(3.0, ge=0)
    snapshots: SnapshotsConfig = SnapshotsConfig()
    store: str | None = Field(None, description="SQLAlchemy URL or SQLite file (None: the shared default).")
    spool: SpoolSettings = SpoolSettings()
    webhook: str | None = None
    alerts: AlertsConfig | None = None
    outputs: OutputSettings = OutputSettings()
    tags: dict[str, Any] = Field(default_factory=dict, description="Fields added to every event's extra.")
    max_frames: int | None = Field(None, ge=0)


def camera_watch_config(cam: CameraConfig, venue: ServiceConfig, **tags: Any) -> WatchConfig:
    """The watch config of one venue camera (its alerts run in the API process, not here)."""
    return WatchConfig(
        source=SourceSettings(spec=cam.source, stride=cam.stride, open_timeout_s=cam.open_timeout_s,
                              lost_after_s=cam.lost_after_s, restore_after_s=cam.restore_after_s,
                              loop=cam.loop, realtime=cam.realtime),
        camera=cam.name, models=venue.models, detect_every=cam.detect_every, state=venue.state,
        zone=cam.zone, entry=cam.entry, refind_s=cam.refind_s, snapshots=venue.snapshots, store=venue.store,
        spool=venue.spool, tags=tags)


@dataclass
class WatchRun:
    """A built run: :meth:`run` drives it. ``event_sinks`` / ``frame_sinks`` may be added to first."""

    config: WatchConfig
    source: Any
    watcher: Any
    store: Any
    snapshots: Any  # the SnapshotWriter, or None
    event_sinks: list[Any] = field(default_factory=list)
    frame_sinks: list[Any] = field(default_factory=list)

    def run(self, report: Callable[[str], None] | None = None,
            fatal: tuple[type[BaseException], ...] = ()) -> Any:
        """:func:`~maskwatch.monitor.run_watch` over the sinks; returns its RunStats. The source and every
        sink (the store too) are closed at the end however it ends. A sink that raises is reported through
        ``report`` and the others carry on, unless the exception is of a ``fatal`` type (the CLI's: an
        output that cannot be written, OutputError): that ends the run and is raised."""
        from ..monitor import run_watch

        return run_watch(self.source, self.watcher, event_sinks=self.event_sinks, frame_sinks=self.frame_sinks,
                         max_frames=self.config.max_frames, report=report, fatal=fatal)

    def stop(self) -> None:
        """Ask the run to end after the frame in hand (thread-safe; live and paced sources)."""
        stop = getattr(self.source, "stop", None) or getattr(self.source, "request_stop", None)
        if stop is not None:
            stop()


def _outputs_to_check(config: WatchConfig) -> list[tuple[Path, str]]:
    out = config.outputs
    found: list[tuple[Path, str]] = []
    if out.video is not None:
        found.append((out.video.parent, "the output video"))
    if out.json_lines and out.json_lines != "-" and not out.json_lines.startswith("/dev/"):
        found.append((Path(out.json_lines).parent, "the JSON lines"))
    if config.snapshots.mode != "none":
        found.append((_snapshot_dir(config), "snapshots"))
    return found


def _snapshot_dir(config: WatchConfig) -> Path:
    from ..monitor import default_snapshot_dir

    return Path(config.snapshots.dir) if config.snapshots.dir else default_snapshot_dir()


def build_watch(config: WatchConfig, echo: Callable[[str], None] | None = None, check_outputs: bool = True,
                stoppable: bool = False) -> WatchRun:
    """Open the source, load the models, open the store and make the sinks ``config`` asks for.

    Outputs that cannot be written fail first (``check_outputs``; :class:`~maskwatch.outputs.OutputError`),
    then a source that cannot be opened, then the models and the store; whatever was opened is closed
    again when a later step fails. ``echo``: where console event lines and warnings go (default: stderr).
    ``stoppable``: files are read through :class:`PacedFile` even without ``loop``/``realtime``, so that
    :meth:`WatchRun.stop` can end them (the venue worker)."""
    from ..outputs import check_writable_dir

    echo = echo or _echo_stderr
    if check_outputs:
        for folder, what in _outputs_to_check(config):
            check_writable_dir(folder, what)
    video = open_watch_source(config.source, stoppable=stoppable)  # bad input fails before the models load
    opened: list[Any] = [video]
    try:
        return _build(config, video, echo, opened)
    except BaseException:
        for thing in reversed(opened):
            thing.close()
        raise


def _build(config: WatchConfig, video: Any, echo: Callable[[str], None], opened: list[Any]) -> WatchRun:
    import numpy as np

    from ..detectors import Preferred
    from ..monitor import (AlertSink, AnnotatedSink, ConsoleSink, JsonLinesSink, SnapshotSink, SnapshotWriter,
                           StateConfig, StoreSink, TagSink, Watcher, WebhookSink)
    from ..pipeline import build_pipeline
    from ..store import EventStore, WebhookNotifier

    m = config.models
    pipeline = build_pipeline(m.detector, min_score=m.min_score, min_face=m.min_face, threads=m.threads,
                              classifier_model=m.classifier, detector_model=m.detector_model,
                              input_size=Preferred(640) if m.input_size is None else m.input_size,
                              precision=m.precision_option())
    assert pipeline.classifier is not None  # built with one
    store = EventStore(config.store, spool=config.spool.spool_config())
    opened.append(store)
    snap = config.snapshots
    snapper = None if snap.mode == "none" else SnapshotWriter(_snapshot_dir(config), snap.mode,
                                                              max_files=snap.keep or None,
                                                              max_age_days=snap.days or None)
    # the store after the tags and the snapshots (it keeps both), before the alerts (they read it)
    event_sinks: list[Any] = [TagSink(**config.tags)] if config.tags else []
    if snapper is not None:
        event_sinks.append(SnapshotSink(snapper))
    event_sinks.append(StoreSink(store))
    if config.webhook:
        event_sinks.append(WebhookSink(WebhookNotifier(config.webhook)))
    if config.alerts is not None:
        from ..alerts import AlertDispatcher

        event_sinks.append(AlertSink(AlertDispatcher(config.alerts, store)))
    opened[-1:] = []  # the store is closed by its sink from here on
    opened.extend(reversed(event_sinks))
    if config.outputs.console:
        event_sinks.append(ConsoleSink(echo))
    zone = None if config.zone is None else np.asarray(config.zone, np.float32)
    out = config.outputs
    frame_sinks: list[Any] = []
    if out.json_lines:
        frame_sinks.append(JsonLinesSink(*_open_json_lines(out.json_lines)))
        opened.append(frame_sinks[-1])
    outputs: list[Any] = []
    if out.video is not None:
        from ..video import VideoWriter

        outputs.append(VideoWriter(out.video, fps=(video.fps or 25.0) / (config.source.stride if not video.live else 1)))
    if out.show:
        outputs.append(Display(echo))
    if outputs:
        frame_sinks.append(AnnotatedSink(outputs, zone=zone, entry=config.entry))
    watcher = Watcher(pipeline.detector, pipeline.classifier, source=video.name, camera=config.camera or video.name,
                      detect_every=config.detect_every,
                      state_config=StateConfig(window=config.state.window, enter=config.state.enter,
                                               hold=config.state.hold),
                      min_face=max(m.min_face, 1.0), zone=zone, entry=config.entry, refind_s=config.refind_s)
    return WatchRun(config, video, watcher, store, snapper, event_sinks, frame_sinks)


def _open_json_lines(target: str) -> tuple[Any, bool]:
    """The handle for JSON lines (``-``: stdout) and whether the sink owns it; a failing write names the file."""
    if target == "-":
        return sys.stdout, False
    from ..outputs import NamedWrites

    try:
        return NamedWrites(target, open(target, "w", encoding="utf-8", buffering=1)), True
    except OSError as exc:
        raise MaskWatchError(f"{target}: cannot write ({exc.strerror or exc})") from None


def open_watch_source(settings: SourceSettings, stoppable: bool = False) -> Any:
    """The source ``settings`` describe (see :func:`~maskwatch.video.open_source`); files through
    :class:`PacedFile` when they loop, are read in real time or must be ``stoppable``."""
    from ..video import open_source

    def open_it() -> Any:
        return open_source(settings.spec, stride=settings.stride, open_timeout_s=settings.open_timeout_s,
                           fps=settings.fps, lost_after_s=settings.lost_after_s,
                           restore_after_s=settings.restore_after_s)

    if settings.is_file and (settings.loop or settings.realtime or stoppable):
        return PacedFile(open_it, settings.realtime, settings.loop)
    return open_it()


class PacedFile:
    """A file source read at its own frame rate (``realtime``), from the start again at the end when
    ``loop``; :meth:`stop` ends it after the frame in hand."""

    def __init__(self, open_file: Callable[[], Any], realtime: bool, loop: bool):
        self.open_file, self.realtime, self.loop = open_file, realtime, loop
        self.current = open_file()
        self.stopped = threading.Event()
        self.live, self.name, self.fps = False, self.current.name, self.current.fps
        self.frame_count, self.dropped, self.reconnects = self.current.frame_count, 0, 0

    def __iter__(self) -> Iterator[Any]:
        offset = 0.0
        while True:
            started = time.monotonic()
            last_time = 0.0
            for item in self.current:
                if self.stopped.is_set():
                    return
                vt = getattr(item, "video_time", None)
                if vt is not None:
                    last_time = vt
                    if self.realtime:
                        wait = started + vt - time.monotonic()
                        if wait > 0 and self.stopped.wait(wait):
                            return
                    item.video_time = vt + offset
                yield item
            if not self.loop or self.stopped.is_set():
                return
            offset += last_time + 1.0 / (self.fps or 25.0)
            self.current.close()
            self.current = self.open_file()

    def stop(self) -> None:
        """End the iteration after the frame in hand (thread-safe)."""
        self.stopped.set()

    def close(self) -> None:
        self.current.close()


class Display:
    """An output of the annotated frame sink: a window; q or Esc in it ends the run like Ctrl-C. Without a
    display it says so once (through ``warn``) and shows nothing."""

    def __init__(self, warn: Callable[[str], None] = print) -> None:
        self.ok = bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or sys.platform in ("win32", "darwin"))
        if not self.ok:
            warn("warning: --show needs a display; carrying on without the window")

    def write(self, image: Any) -> None:
        if not self.ok:
            return
        import cv2

        cv2.imshow("maskwatch", image)
        if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
            raise KeyboardInterrupt

    def close(self) -> None:
        if self.ok:
            import cv2

            cv2.destroyAllWindows()


def _echo_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)

