"""Which events become alerts: type, camera, confidence, quiet hours and cooldowns."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any, Callable

from .config import AlertRules


class RuleEngine:
    """``check(event)`` -> None when the event raises an alert, else the reason it does not.

    Cooldowns run on the monotonic clock (``clock``) so a wall-clock jump cannot open or close them;
    quiet hours use local wall-clock time (``now``)."""

    def __init__(self, rules: AlertRules, clock: Callable[[], float] = time.monotonic,
                 now: Callable[[], datetime] = datetime.now):
        self.rules = rules
        self.clock = clock
        self.now = now
        self._person: dict[tuple[str, int | None, int], float] = {}
        self._camera: dict[str, float] = {}

    def check(self, event: Any) -> str | None:
        r = self.rules
        camera = event.camera or event.source
        if event.type not in r.event_types:
            return "event type"
        if r.cameras is not None and camera not in r.cameras:
            return "camera"
        if event.confidence is not None and event.confidence < r.min_confidence:
            return "confidence"
        local = self.now().time()
        if any(q.contains(local) for q in r.quiet_hours):
            return "quiet hours"
        t = self.clock()
        # a restarted camera worker numbers its tracks from 0 again: its people are not the earlier ones
        worker = (event.extra or {}).get("worker_pid")
        person = (camera, worker, event.track_id) if event.track_id is not None else None
        if person is not None and t - self._person.get(person, -1e18) < r.cooldown_person_s:
            return "person cooldown"
        if r.cooldown_camera_s and t - self._camera.get(camera, -1e18) < r.cooldown_camera_s:
            return "camera cooldown"
        if person is not None:
            self._person[person] = t
        self._camera[camera] = t
        if len(self._person) > 10000:  # forget people long gone
            cutoff = t - r.cooldown_person_s
            self._person = {k: v for k, v in self._person.items() if v >= cutoff}
        return None
