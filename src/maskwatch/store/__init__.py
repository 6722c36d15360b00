"""Where events go: a SQL event store (with an on-disk spool for failed writes) and a webhook notifier."""

from .events_db import EVENT_TYPES, Event, EventStore, as_db_url, default_db_url
from .spool import SpoolConfig, spool_path
from .webhook import WebhookNotifier

__all__ = ["EVENT_TYPES", "Event", "EventStore", "SpoolConfig", "WebhookNotifier", "as_db_url", "default_db_url", "spool_path"]
