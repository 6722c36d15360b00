"""Monitoring: tracking faces over frames, per-track mask state, events and snapshots; the engine
(:class:`Watcher`), the event and frame sinks, and :func:`run_watch` that drives them."""

from .entry import EntryLine, parse_entry
from .quality import face_quality
from .sinks import (AlertSink, AnnotatedSink, CallEventSink, CallFrameSink, ConsoleSink, ContextEventSink, EventContext,
                    EventSink, FrameSink, JsonLinesSink, LiveViewSink, StoreSink, TagSink, WebhookSink,
                    draw_zone_and_line)
from .snapshots import SNAPSHOT_MODES, SnapshotSink, SnapshotWriter, blur_except, default_snapshot_dir
from .state import TRANSITION_EVENTS, UNMASKED_STATES, StateConfig, TrackState, Transition
from .tracking import FaceTracker, propagate_boxes
from .watcher import RunStats, Watcher, run_watch

__all__ = ["AlertSink", "AnnotatedSink", "CallEventSink", "CallFrameSink", "ConsoleSink", "ContextEventSink",
           "EventContext", "EventSink", "FrameSink", "SnapshotSink",
           "JsonLinesSink", "LiveViewSink", "StoreSink", "TagSink", "WebhookSink", "draw_zone_and_line",
           "SNAPSHOT_MODES", "TRANSITION_EVENTS", "UNMASKED_STATES", "EntryLine", "FaceTracker", "RunStats", "SnapshotWriter", "StateConfig",
           "TrackState", "Transition", "Watcher", "blur_except", "default_snapshot_dir", "face_quality", "parse_entry",
           "propagate_boxes", "run_watch"]
