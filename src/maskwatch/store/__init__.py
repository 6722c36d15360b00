"""Where events go: a SQL event store (with an on-disk spool for failed writes) and a webhook notifier."""

from ..event_types import EVENT_TYPES, EventType
from .events_db import Event, EventStore, as_db_url, default_db_url
from .spool import SpoolConfig, spool_path
from .webhook import WebhookNotifier

__all__ = ["EVENT_TYPES", "Event", "EventStore", "EventType", "SpoolConfig", "WebhookNotifier", "as_db_url",
           "default_db_url", "spool_path"]
