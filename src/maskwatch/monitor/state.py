"""Per-track mask state over a window of observations, with hysteresis, and the events it raises."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from ..faces import LABELS, Label
from ..event_types import EventType

#: (state before, state after) -> event type; None before means a new track's first confident state
TRANSITION_EVENTS: dict[tuple[str | None, str], EventType] = {
    (None, Label.NO_MASK): EventType.ENTERED_UNMASKED,
    (None, Label.INCORRECT): EventType.ENTERED_UNMASKED,
    (Label.MASK, Label.NO_MASK): EventType.MASK_REMOVED,
    (Label.INCORRECT, Label.NO_MASK): EventType.MASK_REMOVED,
    (Label.MASK, Label.INCORRECT): EventType.MASK_INCORRECT,
    (Label.NO_MASK, Label.INCORRECT): EventType.MASK_INCORRECT,
    (Label.NO_MASK, Label.MASK): EventType.MASK_RESTORED,
    (Label.INCORRECT, Label.MASK): EventType.MASK_RESTORED,
}

#: decided states that count as a violation (what ``entered_unmasked`` reports)
UNMASKED_STATES = (Label.NO_MASK, Label.INCORRECT)


_MASK, _NO_MASK, _INCORRECT = (LABELS.index(name) for name in (Label.MASK, Label.NO_MASK, Label.INCORRECT))


@dataclass
class StateConfig:
    """window: classified observations kept per track. min_weight: summed face quality needed before a
    first decision. enter: quality-weighted mean probability a new state needs. hold: consecutive
    observations it must stay on top before the switch (the hysteresis)."""

    window: int = 6
    min_weight: float = 1.5
    enter: float = 0.6
    hold: int = 2


@dataclass
class Transition:
    before: str | None
    after: str
    confidence: float

    @property
    def event_type(self) -> EventType | None:
        return TRANSITION_EVENTS.get((self.before, self.after))


@dataclass
class TrackState:
    """One person: the mask state decided over their observations, where and when they were last seen
    (``last_active``: on the watcher's clock that stops while no frames come), and, with an entry line,
    their side of it (``side``: +1 in, -1 out, 0 not known), whether they came in across it (``inside``)
    and whether ``entered_unmasked`` was raised for them (``announced``)."""

    config: StateConfig
    state: str | None = None
    last_seen: float = 0.0
    last_box: np.ndarray | None = None
    last_active: float = 0.0
    side: int = 0
    inside: bool = False
    announced: bool = False
    _probs: deque = field(default_factory=deque)
    _weights: deque = field(default_factory=deque)
    _candidate: int | None = None
    _streak: int = 0

    def observe(self, probs: np.ndarray, weight: float) -> Transition | None:
        """Add one classification; return the state change it completes, if any."""
        self._probs.append(np.asarray(probs, np.float64))
        self._weights.append(float(weight))
        while len(self._probs) > self.config.window:
            self._probs.popleft()
            self._weights.popleft()
        total = sum(self._weights)
        if total < self.config.min_weight or total <= 0:
            return None
        mean = np.average(np.stack(self._probs), axis=0, weights=np.asarray(self._weights))
        top, level = int(mean.argmax()), float(mean.max())
        violation = 1.0 - float(mean[_MASK])
        if level < self.config.enter and violation >= self.config.enter and self.state in (None, Label.MASK):
            # clearly not masked, though split between no_mask and incorrect: leaving the mask (or
            # entering without one) is decided on their sum, and the likelier of the two is the state
            top, level = (_NO_MASK if mean[_NO_MASK] >= mean[_INCORRECT] else _INCORRECT), violation
        if LABELS[top] == self.state or level < self.config.enter:
            self._candidate, self._streak = None, 0
            return None
        self._streak = self._streak + 1 if self._candidate == top else 1
        self._candidate = top
        if self._streak < self.config.hold:
            return None
        before, self.state = self.state, LABELS[top]
        self._candidate, self._streak = None, 0
        return Transition(before, self.state, level)
