"""Where events go: a SQL event store and a webhook notifier."""

from ..event_types import EVENT_TYPES, EventType
from .events_db import Event, EventStore, as_db_url, default_db_url
from .webhook import WebhookNotifier

__all__ = ["EVENT_TYPES", "Event", "EventStore", "EventType", "WebhookNotifier", "as_db_url", "default_db_url"]
