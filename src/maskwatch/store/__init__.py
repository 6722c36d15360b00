"""Where events go: a SQL event store and a webhook notifier."""

from .events_db import EVENT_TYPES, Event, EventStore, as_db_url, default_db_url
from .webhook import WebhookNotifier

__all__ = ["EVENT_TYPES", "Event", "EventStore", "WebhookNotifier", "as_db_url", "default_db_url"]
