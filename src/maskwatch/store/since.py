"""``--since`` / ``?since=`` values: an ISO time or a duration back from now (the events command and
the server's event queries read them the same way)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from ..errors import MaskWatchError


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """ISO 8601 time/date (naive = UTC) or a duration back from now: ``30s``, ``15m``, ``2h``, ``7d``."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd])\s*", text)
    if match:
        unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[match.group(2)]
        try:
            return (now or datetime.now(timezone.utc)) - timedelta(**{unit: float(match.group(1))})
        except OverflowError:
            raise MaskWatchError(f"--since {text!r}: duration too long (it reaches before year 1)") from None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise MaskWatchError(f"--since {text!r}: expected an ISO time (2026-11-22T10:00) or a duration (30m, 2h, 7d)") from None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)
