"""Monitoring: tracking faces over frames, per-track mask state, events and snapshots."""

from .entry import EntryLine, parse_entry
from .quality import face_quality
from .snapshots import SNAPSHOT_MODES, SnapshotWriter, blur_except, default_snapshot_dir
from .state import TRANSITION_EVENTS, UNMASKED_STATES, StateConfig, TrackState, Transition
from .tracking import FaceTracker, propagate_boxes
from .watcher import RunStats, Watcher, run_watch

__all__ = ["SNAPSHOT_MODES", "TRANSITION_EVENTS", "UNMASKED_STATES", "EntryLine", "FaceTracker", "RunStats", "SnapshotWriter", "StateConfig",
           "TrackState", "Transition", "Watcher", "blur_except", "default_snapshot_dir", "face_quality", "parse_entry",
           "propagate_boxes", "run_watch"]
