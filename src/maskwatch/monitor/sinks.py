"""Where a watch run's output goes: event sinks get each event, frame sinks each processed frame.

A frame only travels downward: source -> engine (:class:`~maskwatch.monitor.Watcher`: faces and events) ->
the sinks. :func:`~maskwatch.monitor.run_watch` hands every event to each event sink and every frame to each
frame sink, in the order given, and closes them all at the end (Ctrl-C and SIGTERM too); a sink that raises
is reported once, in one line naming it, and the others carry on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable, Protocol, Sequence, TextIO, runtime_checkable

import numpy as np

from ..faces import Faces
from ..store.events_db import Event
from ..video.sources import Frame


@runtime_checkable
class EventSink(Protocol):
    """Gets every event of a run (store, webhook, alerts, console...)."""

    def handle(self, event: Event) -> None: ...

    def close(self) -> None: ...


@runtime_checkable
class FrameSink(Protocol):
    """Gets every processed frame with its faces and the events it raised (video, JSON lines, live view...)."""

    def handle(self, frame: Frame, faces: Faces, events: list[Event]) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class EventContext:
    """What an event was raised on, for the event sinks that need more than the event (snapshots): the
    frame and its faces; both None for a lost or restored source."""

    frame: Frame | None = None
    faces: Faces | None = None


@runtime_checkable
class ContextEventSink(Protocol):
    """An event sink that also gets the :class:`EventContext` (``takes_context = True``)."""

    takes_context: bool

    def handle(self, event: Event, context: EventContext) -> None: ...

    def close(self) -> None: ...


def takes_context(sink: Any) -> bool:
    """Whether :func:`~maskwatch.monitor.run_watch` calls ``sink.handle(event, context)``."""
    return getattr(sink, "takes_context", False) is True


def sink_name(sink: Any) -> str:
    """How a sink is named in messages: its ``name`` attribute, else its class (or function) name."""
    name = getattr(sink, "name", None)
    if isinstance(name, str) and name:
        return name
    return getattr(sink, "__qualname__", None) or type(sink).__name__


# -- adapters for plain callables (the older ``sinks=[callable]`` / ``on_frame=`` style) ---------------
class CallEventSink:
    """A function ``f(event)`` as an event sink."""

    def __init__(self, fn: Callable[[Event], None], name: str | None = None):
        self.fn, self.name = fn, name or sink_name(fn)

    def handle(self, event: Event) -> None:
        self.fn(event)

    def close(self) -> None:
        pass


class CallFrameSink:
    """A function ``f(frame, faces, events)`` as a frame sink."""

    def __init__(self, fn: Callable[[Frame, Faces, list[Event]], None], name: str | None = None):
        self.fn, self.name = fn, name or sink_name(fn)

    def handle(self, frame: Frame, faces: Faces, events: list[Event]) -> None:
        self.fn(frame, faces, events)

    def close(self) -> None:
        pass


# -- event sinks -------------------------------------------------------------------------------------
class TagSink:
    """Adds fixed ``extra`` fields to every event (e.g. the worker's pid); put it before the sinks that keep them."""

    name = "tag"

    def __init__(self, **extra: Any):
        self.extra = extra

    def handle(self, event: Event) -> None:
        event.extra = {**event.extra, **self.extra}

    def close(self) -> None:
        pass


class StoreSink:
    """Writes every event to an :class:`~maskwatch.store.EventStore` (which spools while the database is down)."""

    name = "store"

    def __init__(self, store: Any):
        self.store = store

    def handle(self, event: Event) -> None:
        self.store.add(event)

    def close(self) -> None:
        self.store.close()


class WebhookSink:
    """POSTs every event as JSON through a :class:`~maskwatch.store.WebhookNotifier` (with retries)."""

    name = "webhook"

    def __init__(self, notifier: Any):
        self.notifier = notifier

    def handle(self, event: Event) -> None:
        self.notifier.notify(event.to_dict())

    def close(self) -> None:
        self.notifier.close()


class AlertSink:
    """Hands every event to an :class:`~maskwatch.alerts.AlertDispatcher` (rules, channels); after the store sink."""

    name = "alerts"

    def __init__(self, dispatcher: Any):
        self.dispatcher = dispatcher

    def handle(self, event: Event) -> None:
        self.dispatcher(event)

    def close(self) -> None:
        self.dispatcher.close()


class ConsoleSink:
    """One line per event: ``type: track N before->after frame F video_time T`` through ``echo``."""

    name = "console"

    def __init__(self, echo: Callable[[str], None]):
        self.echo = echo

    def handle(self, ev: Event) -> None:
        self.echo(ev.line())

    def close(self) -> None:
        pass


# -- frame sinks -------------------------------------------------------------------------------------
class JsonLinesSink:
    """One JSON object per frame: ``{"frame", "video_time", "time", "faces", "events"}``. Closes ``fh`` when ``own``."""

    name = "json-lines"

    def __init__(self, fh: TextIO, own: bool = True):
        self.fh, self.own = fh, own

    def handle(self, frame: Frame, faces: Faces, events: list[Event]) -> None:
        self.fh.write(json.dumps({"frame": frame.index, "video_time": frame.video_time,
                                  "time": round(frame.wall_time, 3), "faces": faces.to_records(),
                                  "events": [e.type for e in events]}) + "\n")

    def close(self) -> None:
        if self.own:
            self.fh.close()


class AnnotatedSink:
    """Draws the faces (and the zone and entry line) on each frame once and hands the image to each of
    ``outputs``: objects with ``write(image)`` (a :class:`~maskwatch.video.VideoWriter`) and ``close()``.
    An output may end the run by raising KeyboardInterrupt (a window closed with q)."""

    name = "annotated-video"

    def __init__(self, outputs: Sequence[Any], zone: np.ndarray | None = None,
                 entry: Sequence[Sequence[float]] | None = None):
        self.outputs, self.zone, self.entry = list(outputs), zone, entry

    def handle(self, frame: Frame, faces: Faces, events: list[Event]) -> None:
        from ..draw import annotate

        image = annotate(frame.image, faces)
        if self.zone is not None or self.entry is not None:
            draw_zone_and_line(image, self.zone, self.entry)
        for out in self.outputs:
            out.write(image)

    def close(self) -> None:
        for out in self.outputs:
            out.close()


class LiveViewSink:
    """Annotated JPEG frames for a live view: at most one per ``interval_s``, and only while ``wanted()``
    (someone is watching); each goes to ``publish(jpeg_bytes)``."""

    name = "live-view"

    def __init__(self, publish: Callable[[bytes], None], wanted: Callable[[], bool], interval_s: float = 0.1,
                 quality: int = 80):
        self.publish, self.wanted, self.interval_s, self.quality = publish, wanted, interval_s, quality
        self.last = 0.0

    def handle(self, frame: Frame, faces: Faces, events: list[Event]) -> None:
        import time

        now = time.time()
        if now - self.last < self.interval_s or not self.wanted():
            return
        from ..draw import annotate
        from ..images import encode_jpeg

        try:
            jpeg = encode_jpeg(annotate(frame.image, faces), self.quality)
        except ValueError:  # a frame OpenCV cannot encode: no live picture this time
            return
        self.publish(jpeg)
        self.last = now

    def close(self) -> None:
        pass


def draw_zone_and_line(image: np.ndarray, polygon: np.ndarray | None, line: Sequence[Sequence[float]] | None) -> None:
    """The zone (cyan outline) and the entry line (yellow, with an arrow pointing to its "in" side)."""
    import cv2

    if polygon is not None:
        cv2.polylines(image, [np.asarray(polygon).astype(np.int32)], True, (255, 200, 0), 2, cv2.LINE_AA)
    if line is not None:
        (x1, y1), (x2, y2) = line
        cv2.line(image, (int(x1), int(y1)), (int(x2), int(y2)), (0, 220, 255), 2, cv2.LINE_AA)
        mx, my, dx, dy = (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1
        norm = max(float(np.hypot(dx, dy)), 1e-6)
        tip = (int(mx - dy / norm * 30), int(my + dx / norm * 30))  # the right-hand normal: the "in" side
        cv2.arrowedLine(image, (int(mx), int(my)), tip, (0, 220, 255), 2, cv2.LINE_AA, tipLength=0.4)


class SinkGuard:
    """Calls sinks so that one that raises is reported once (one line naming it) and the others carry on.
    ``fatal``: exception types that are not caught but end the run (e.g. the CLI's "cannot write this
    output" exit); :meth:`close` holds one back in ``pending`` so that every sink is still closed.
    ``failures``: sink name -> how many of its calls raised."""

    def __init__(self, report: Callable[[str], None], fatal: tuple[type[BaseException], ...] = ()):
        self.report, self.fatal = report, tuple(fatal)
        self.failures: dict[str, int] = {}
        self.pending: BaseException | None = None
        self._reported: set[int] = set()

    def call(self, sink: Any, what: str, fn: Callable[..., Any], *args: Any) -> None:
        try:
            fn(*args)
        except Exception as exc:  # noqa: BLE001 - one sink must not stop the others
            if isinstance(exc, self.fatal):
                raise
            name = sink_name(sink)
            if id(sink) not in self._reported:
                self._reported.add(id(sink))
                self.report(f"warning: sink {name!r} failed in {what}: {type(exc).__name__}: {exc}")
            self.failures[name] = self.failures.get(name, 0) + 1

    def close(self, sink: Any) -> None:
        try:
            self.call(sink, "close", sink.close)
        except self.fatal as exc:
            if self.pending is None:
                self.pending = exc
