"""The names of the events MaskWatch raises, as one enum (no dependencies: the video sources, the monitor,
the store, the alerts, the CLI and the server all use it)."""

from __future__ import annotations

from enum import StrEnum


class EventType(StrEnum):
    """Every event type the monitor raises. Members are strings (``EventType.ENTERED == "entered"``), so
    stored rows, JSON and the API keep the plain names."""

    ENTERED_UNMASKED = "entered_unmasked"
    MASK_REMOVED = "mask_removed"
    MASK_INCORRECT = "mask_incorrect"
    MASK_RESTORED = "mask_restored"
    SOURCE_LOST = "source_lost"
    SOURCE_RESTORED = "source_restored"
    ENTERED = "entered"
    LEFT = "left"


#: the names of every event type, in :class:`EventType` order
EVENT_TYPES: tuple[str, ...] = tuple(t.value for t in EventType)
