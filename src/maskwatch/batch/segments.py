"""Track ids across segment boundaries.

Segment k is processed from a warm-up before its first owned frame; segment k-1 processed those same
frames as the end of its own span (and goes on a second past it), with the detector on the same frames
(see docs/scale.md). Each segment reports the tracked boxes on those shared detector frames: its *head*
(the warm-up and its first second) and its *tail* (the frames the next segment warms up over and the
second after, with each track's state on the segment's own frames). :func:`link_segment`
matches the head of segment k with the stored tail of segment k-1 (same frame, IoU >= 0.5): a matched
track takes the id of the earlier track, so a person keeps one id over the whole file. Tracks that do
not match keep an id of their own segment (``part * ID_STRIDE + local id``). The tail is stored
with the segment's 'done' mark, so segment k can be linked in a later run than segment k-1.

A matched track's first own decision (``state_before`` None, the segment never decided it before)
is compared with the state the earlier segment had for that person: the same state is dropped (the
person was reported already), another state becomes the matching change (e.g. ``mask`` before and
``no_mask`` now: ``mask_removed``, not a second ``entered_unmasked``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..boxes import iou_matrix
from ..monitor.state import TRANSITION_EVENTS
from ..store.events_db import Event

#: track ids of segment k that match nothing in segment k-1: k * ID_STRIDE + the segment's own id
ID_STRIDE = 1_000_000
#: boxes of the same person on the same frame in two runs of the same detector: nearly identical
MIN_IOU = 0.5

# shared frames: {frame index (str in JSON): [[track id, x1, y1, x2, y2, state or None], ...]}
Boxes = dict[str, list[list[Any]]]


def link_segment(part: int, start: int, events: list[Event], head: Boxes, tail: Boxes, prev_tail: Boxes | None
                 ) -> tuple[list[Event], Boxes]:
    """Give segment ``part``'s events (its first own frame: ``start``) the ids of the tracks they continue
    (``prev_tail``: the stored tail of segment ``part - 1``, None for the first segment or an unlinked
    one). Returns the events to store and this segment's tail with the ids and states the next segment
    must link to. Rows of frames from ``start`` on (past the earlier segment's end) carry no state."""
    links = _match(head, prev_tail, start) if prev_tail else {}

    def canon(tid: int) -> int:
        return links[tid][0] if tid in links else part * ID_STRIDE + tid

    kept: list[Event] = []
    decided: set[int] = set()
    for ev in sorted(events, key=lambda e: (e.frame if e.frame is not None else -1)):
        tid = ev.track_id
        if tid is not None and tid in links and tid not in decided and ev.state_before is None:
            before = links[tid][1]
            if before is not None:
                kind = TRANSITION_EVENTS.get((before, ev.state_after or ""))
                if kind is None:  # the earlier segment had this person in this state already
                    decided.add(tid)
                    continue
                ev.type, ev.state_before = kind, before
        if tid is not None:
            decided.add(tid)
            ev.track_id = canon(tid)
        kept.append(ev)
    out_tail: Boxes = {}
    for frame, rows in tail.items():
        out_tail[frame] = [[canon(int(r[0])), *r[1:5], r[5] if r[5] is not None or int(r[0]) not in links
                            else links[int(r[0])][1]] for r in rows]
    return kept, out_tail


def _match(head: Boxes, prev_tail: Boxes, start: int) -> dict[int, tuple[int, str | None]]:
    """local track id of this segment -> (id in the earlier segment, that track's last state there)."""
    last_state: dict[int, tuple[int, str | None]] = {}  # earlier id -> (frame, state) at its last own frame
    for frame, rows in prev_tail.items():
        for r in rows:
            if int(frame) < start and (int(r[0]) not in last_state or int(frame) > last_state[int(r[0])][0]):
                last_state[int(r[0])] = (int(frame), r[5])
    best: dict[int, tuple[int, int]] = {}  # local id -> (frame, earlier id), the latest frame wins
    for frame in sorted(set(head) & set(prev_tail), key=int):
        mine, theirs = head[frame], prev_tail[frame]
        if not mine or not theirs:
            continue
        iou = iou_matrix(np.array([r[1:5] for r in mine], np.float32), np.array([r[1:5] for r in theirs], np.float32))
        for i, j in _greedy(iou):
            best[int(mine[i][0])] = (int(frame), int(theirs[j][0]))
    return {tid: (other, last_state.get(other, (0, None))[1]) for tid, (_, other) in best.items()}


def _greedy(iou: np.ndarray) -> list[tuple[int, int]]:
    pairs, used_i, used_j = [], set(), set()
    for flat in np.argsort(-iou, axis=None):
        i, j = np.unravel_index(flat, iou.shape)
        if iou[i, j] < MIN_IOU:
            break
        if i not in used_i and j not in used_j:
            pairs.append((int(i), int(j)))
            used_i.add(i)
            used_j.add(j)
    return pairs
