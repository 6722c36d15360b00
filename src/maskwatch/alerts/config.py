"""The ``alerts:`` section of a venue config (or a file of its own for ``maskwatch watch --alerts``)."""

from __future__ import annotations

import re
from datetime import time as dtime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..errors import MaskWatchError
from ..event_types import EVENT_TYPES, EventType

_HHMM = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class QuietHours(_Strict):
    """No alerts from ``start`` to ``end`` (local time of the machine, ``HH:MM``; may wrap past midnight).
    Events are still stored; only alerting is held back."""

    start: str
    end: str

    @field_validator("start", "end")
    @classmethod
    def _hhmm(cls, value: str) -> str:
        if not _HHMM.match(value):
            raise ValueError(f"{value!r}: expected HH:MM")
        return value

    def contains(self, when: dtime) -> bool:
        start, end = (dtime(*map(int, t.split(":"))) for t in (self.start, self.end))
        if start <= end:
            return start <= when < end
        return when >= start or when < end


class AlertRules(_Strict):
    event_types: list[str] = Field(default_factory=lambda: [EventType.ENTERED_UNMASKED, EventType.MASK_REMOVED,
                                                            EventType.MASK_INCORRECT])
    #: camera names; None = every camera
    cameras: list[str] | None = None
    #: one alert per person (camera + track) within this many seconds
    cooldown_person_s: float = Field(300.0, ge=0)
    #: at most one alert per camera within this many seconds (0 = no limit)
    cooldown_camera_s: float = Field(0.0, ge=0)
    quiet_hours: list[QuietHours] = Field(default_factory=list)
    #: events with a lower confidence raise no alert (events without a confidence always pass)
    min_confidence: float = Field(0.0, ge=0, le=1)

    @field_validator("event_types")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        for name in value:
            if name not in EVENT_TYPES:
                raise ValueError(f"{name!r}: expected one of {', '.join(EVENT_TYPES)}")
        return [EventType(name) for name in value]


class WebhookChannel(_Strict):
    url: str
    #: HMAC-SHA256 of the body with this secret goes in ``X-MaskWatch-Signature: sha256=<hex>``
    secret: str | None = None
    #: e.g. ``https://maskwatch.example.org``: payloads carry ``<base>/v1/events/<id>/snapshot``, never a path
    snapshot_base_url: str | None = None
    timeout_s: float = Field(5.0, gt=0)


class MqttChannel(_Strict):
    host: str
    port: int = Field(1883, ge=1, le=65535)
    topic_prefix: str = "maskwatch"
    username: str | None = None
    password: str | None = None
    qos: int = Field(1, ge=0, le=2)
    client_id: str | None = None


class SmtpChannel(_Strict):
    host: str
    port: int = Field(25, ge=1, le=65535)
    from_: str = Field(alias="from")
    to: list[str] = Field(min_length=1)
    starttls: bool = False
    username: str | None = None
    password: str | None = None
    timeout_s: float = Field(10.0, gt=0)
    subject_prefix: str = "[MaskWatch]"


class AlertChannels(_Strict):
    webhook: WebhookChannel | None = None
    mqtt: MqttChannel | None = None
    smtp: SmtpChannel | None = None


class RetryPolicy(_Strict):
    #: first wait after a failed delivery; doubles each time up to ``max_backoff_s``
    backoff_s: float = Field(0.5, gt=0)
    max_backoff_s: float = Field(30.0, gt=0)
    #: give up after this many attempts (0 = keep trying until close())
    max_attempts: int = Field(0, ge=0)
    #: waiting deliveries per channel; beyond it the oldest is dropped (and counted)
    max_queue: int = Field(1000, ge=1)


class AlertsConfig(_Strict):
    enabled: bool = True
    rules: AlertRules = Field(default_factory=AlertRules)
    channels: AlertChannels = Field(default_factory=AlertChannels)
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    #: on shutdown, deliveries still waiting get at most this long (a channel that is down cannot hold it up)
    close_timeout_s: float = Field(5.0, gt=0)


def load_alerts_config(path: str | Path) -> AlertsConfig:
    """Read a YAML file holding either the ``alerts:`` mapping itself or a venue config with an ``alerts:`` key."""
    import yaml
    from pydantic import ValidationError

    try:
        data: Any = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise MaskWatchError(f"cannot read alerts config {path}: {exc}") from None
    if isinstance(data, dict) and "alerts" in data:
        data = data["alerts"]
    try:
        return AlertsConfig.model_validate(data)
    except ValidationError as exc:
        raise MaskWatchError(f"alerts config {path}: {exc}") from None
