"""Alerts an operator can act on: rules over events, alert records in the event store, and delivery
over webhook (HMAC-signed), MQTT and e-mail, each channel retrying on a thread of its own."""

from .config import AlertsConfig, load_alerts_config
from .dispatcher import AlertDispatcher
from .records import AlertStore

__all__ = ["AlertsConfig", "AlertDispatcher", "AlertStore", "load_alerts_config"]
