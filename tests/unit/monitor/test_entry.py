"""Entry lines (entered / left, entered_unmasked at the line, hysteresis), identity kept across a drop-out,
and occupancy counted by the database.

The watcher runs on scripted detections (boxes given per frame) and a scripted classifier, so these tests
check the monitor's logic and timing exactly; the real detector is used by the ``watch --entry`` test in
test_watch.py.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from maskwatch.event_types import EVENT_TYPES, EventType
from maskwatch.faces import Faces
from maskwatch.monitor import EntryLine, Watcher, parse_entry
from maskwatch.monitor.state import StateConfig, TrackState
from maskwatch.store import Event, EventStore
from maskwatch.video import Frame

FPS = 25.0
FACE_W, FACE_H = 60, 80  # hysteresis band: a quarter of the face height = 20 px
PROBS = {"mask": [0.9, 0.05, 0.05], "no_mask": [0.05, 0.9, 0.05], "incorrect": [0.05, 0.05, 0.9],
         "unsure": [0.5, 0.25, 0.25]}  # neither masked nor a violation clearly enough (enter = 0.6)
TEXTURE = np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8)  # sharp: full quality weight


class Scripted:
    """Detector and classifier in one: ``people(frame) -> [(centre_x, centre_y, state), ...]``."""

    def __init__(self, people):
        self.people = people
        self.frame = 0

    def detect(self, image):
        found = self.people(self.frame)
        boxes = [[x - FACE_W / 2, y - FACE_H / 2, x + FACE_W / 2, y + FACE_H / 2] for x, y, _ in found]
        self._states = [s for _, _, s in found]
        return Faces(boxes=np.asarray(boxes, np.float32).reshape(-1, 4), scores=np.full(len(found), 0.95, np.float32))

    def classify(self, image, faces):
        return faces.with_(probs=np.asarray([PROBS[s] for s in self._states], np.float32).reshape(-1, 3))


def run(people, frames: int, live_gap: tuple[int, float] | None = None, **options):
    """Process ``frames`` frames at 25 FPS; ``live_gap=(frame, seconds)``: live wall times that jump by
    ``seconds`` before that frame (a camera outage), no video time."""
    script = Scripted(people)
    options.setdefault("state_config", StateConfig(window=4, min_weight=1.0, enter=0.6, hold=2))
    watcher = Watcher(script, script, source="door", camera="door", detect_every=1, **options)
    ids: dict[int, list[int]] = {}
    for i in range(frames):
        script.frame = i
        if live_gap is None:
            frame = Frame(i, TEXTURE, i / FPS, 1000.0 + i / FPS)
        else:
            jump = live_gap[1] if i >= live_gap[0] else 0.0
            frame = Frame(i, TEXTURE, None, 1000.0 + i / FPS + jump)
        faces, _ = watcher.process(frame)
        ids[i] = [int(t) for t in faces.track_ids]
    return list(watcher.events), ids, watcher


def summary(events):
    return [(str(e.type), e.frame, e.state_after) for e in events]


LINE = ((0.0, 300.0), (640.0, 300.0))  # in = below the line (right of the direction 1 -> 2)


def walk(ys, state="no_mask", x=320.0):
    return lambda f: [(x, ys(f), state)] if ys(f) is not None else []


def test_entry_line_direction_and_side():
    line = EntryLine(*LINE)
    assert line.side([300, 330, 360, 410]) == 1 and line.side([300, 190, 360, 270]) == -1
    assert line.side([300, 270, 360, 350]) == 0  # centre 310: within the band of 20 px
    assert line.side([700, 330, 760, 410]) is None  # beyond the segment's end
    assert EntryLine((640, 300), (0, 300)).side([300, 330, 360, 410]) == -1  # swapped points: below is out
    assert parse_entry("0,300,640,300") == ((0.0, 300.0), (640.0, 300.0))
    for bad, words in (("1,2,3", "expected X1,Y1,X2,Y2"), ("a,b,c,d", "expected"), ("5,5,5,5", "must differ")):
        with pytest.raises(ValueError, match=words):
            parse_entry(bad)


def test_crossing_in_then_out_raises_entered_and_left():
    """Down across the line (in), then back up (out): entered at the line with the decided state, then
    entered_unmasked at the same frame (not at first sight, frame ~2), then left."""
    ys = lambda f: 150 + 5 * f if f < 60 else 450 - 5 * (f - 60)  # noqa: E731 - down to 450, then back up
    events, ids, _ = run(walk(ys), 120, entry=LINE)
    crossed_in = next(f for f in range(120) if ys(f) > 320)  # clear of the band
    crossed_out = next(f for f in range(60, 120) if ys(f) < 280)
    assert summary(events) == [("entered", crossed_in, "no_mask"), ("entered_unmasked", crossed_in, "no_mask"),
                               ("left", crossed_out, "no_mask")]
    assert len({e.track_id for e in events}) == 1 and events[0].box[1] + FACE_H / 2 > 320


def test_swapped_points_count_the_other_way():
    ys = lambda f: 150 + 5 * f  # noqa: E731
    events, _, _ = run(walk(ys), 60, entry=(LINE[1], LINE[0]))
    assert [str(e.type) for e in events] == ["left"]  # walking down is out; no entered_unmasked


def test_masked_person_enters_without_violation_and_undecided_is_decided_later():
    down = lambda f: 150 + 5 * f  # noqa: E731
    events, _, _ = run(walk(down, "mask"), 60, entry=LINE)
    assert summary(events) == [("entered", next(f for f in range(60) if down(f) > 320), "mask")]
    # unsure while crossing (state not decided yet): entered without a state, entered_unmasked once decided
    people = lambda f: [(320.0, down(f), "unsure" if f < 40 else "no_mask")]  # noqa: E731
    events, _, _ = run(people, 60, entry=LINE)
    (entered, unmasked) = events
    assert (entered.type, entered.state_after) == (EventType.ENTERED, None)
    assert unmasked.type == EventType.ENTERED_UNMASKED and unmasked.state_after == "no_mask"
    assert entered.frame < 40 < unmasked.frame <= 43 and unmasked.track_id == entered.track_id


def test_standing_on_the_line_does_not_flap():
    """Approach, stand on the line with the centre wandering +-18 px (band 20), cross, wobble back into the
    band, then leave: one entered, one left."""
    wobble = lambda f: 300 + 18 * np.sin(f / 2)  # noqa: E731

    def ys(f):
        if f < 20:
            return 200 + 4 * f  # 200 -> 276: clearly out
        if f < 120:
            return wobble(f)  # on the line for 4 s
        if f < 130:
            return 330 + 2 * (f - 120)  # in
        if f < 200:
            return 300 + 15 * np.sin(f / 3)  # back on the line, partly: never clearly out
        return 230.0  # out

    events, _, _ = run(walk(ys), 220, entry=LINE)
    assert [str(e.type) for e in events] == ["entered", "entered_unmasked", "left"]
    assert events[0].frame == 120 and events[2].frame == 200


def test_walking_round_the_end_of_the_line_is_no_crossing():
    """Out, beyond the end (x > 640 is off the segment), back in range on the in side: no entered."""
    def people(f):
        if f < 20:
            return [(600.0, 250.0, "no_mask")]
        if f < 40:
            return [(700.0, 250.0 + 5 * (f - 20), "no_mask")]
        return [(600.0, 360.0, "no_mask")]

    events, _, _ = run(people, 60, entry=(LINE[0], (650.0, 300.0)))
    assert [str(e.type) for e in events] == []


def test_without_a_line_entered_unmasked_comes_at_first_sight():
    events, _, _ = run(walk(lambda f: 150 + 5 * f), 60)
    assert [str(e.type) for e in events] == ["entered_unmasked"] and events[0].frame <= 3  # still far above the line


# -- identity across a drop-out -------------------------------------------------------------------

def dropout(start: int, end: int, state="no_mask", where=(320.0, 200.0), after=None):
    after = after or where
    return lambda f: [] if start <= f < end else [(*(where if f < start else after), state)]


def test_refound_after_a_one_second_dropout_keeps_id_and_raises_nothing_new():
    """Lost for 1 s (frames 50-75; the tracker forgets after 0.5 s here): the same id again, one event."""
    events, ids, watcher = run(dropout(50, 75), 120, lost_track_s=0.5)
    assert [str(e.type) for e in events] == ["entered_unmasked"]
    assert {t for f in range(76, 120) for t in ids[f]} == set(ids[10]) and watcher.refound == 1
    # the same scene without re-finding: the tracker gives a new id and the person is announced twice
    events, ids, _ = run(dropout(50, 75), 120, lost_track_s=0.5, refind_s=0.0)
    assert [str(e.type) for e in events] == ["entered_unmasked", "entered_unmasked"]
    assert ids[100] != ids[10]


def test_refind_needs_the_same_place_and_a_short_gap():
    far = dropout(50, 75, after=(560.0, 380.0))  # found again across the frame: another person
    events, ids, _ = run(far, 120, lost_track_s=0.5)
    assert [str(e.type) for e in events] == ["entered_unmasked", "entered_unmasked"] and ids[100] != ids[10]
    long_gap = dropout(50, 150)  # 4 s away: beyond refind_s = 3
    events, ids, _ = run(long_gap, 200, lost_track_s=0.5)
    assert len(events) == 2 and ids[180] != ids[10]


def test_refound_across_a_camera_outage_and_no_second_entered():
    """Live frames: the person crossed in, then the camera is down for 20 s (wall time jumps) and the person
    is found again where they were: outage time does not count, so the same person, no second entered."""
    ys = lambda f: 200 + 6 * f if f < 30 else 380  # noqa: E731 - crosses in around frame 21, then stands
    people = lambda f: [] if 60 <= f < 70 else [(320.0, ys(f), "no_mask")]  # noqa: E731
    events, ids, _ = run(people, 120, live_gap=(70, 20.0), entry=LINE, lost_track_s=0.5)
    assert [str(e.type) for e in events] == ["entered", "entered_unmasked"]
    assert ids[110] == ids[40]


# -- occupancy ----------------------------------------------------------------------------------

def fill_crossings(store: EventStore) -> datetime:
    """door: 3 in, 1 out two hours ago; 1 in, 4 out this hour (clamped at 0). hall: 2 in this hour."""
    now = datetime.now(timezone.utc).replace(minute=30, second=0, microsecond=0)
    earlier = now - timedelta(hours=2)
    plan = [("door", earlier, "entered")] * 3 + [("door", earlier, "left")] + [("door", now, "entered")] + \
        [("door", now, "left")] * 4 + [("hall", now, "entered")] * 2 + [("door", now, "entered_unmasked")]
    for camera, when, kind in plan:
        store.add(Event(type=EventType(kind), time=when, source=f"src-{camera}", camera=camera))
    store.add(Event(type=EventType.ENTERED, time=now - timedelta(days=3), source="x", camera="door"))  # too old
    return now


def check_entry_counts(store: EventStore) -> None:
    now = fill_crossings(store)
    hour = now.replace(minute=0, tzinfo=None)
    rows = store.entry_counts(now - timedelta(hours=5))
    assert rows == [("door", hour - timedelta(hours=2), 3, 1), ("door", hour, 1, 4), ("hall", hour, 2, 0)]


def test_entry_counts_in_sql(tmp_path):
    check_entry_counts(EventStore(str(tmp_path / "e.db")))


def test_entry_counts_on_postgresql(postgres_url):
    check_entry_counts(EventStore(postgres_url))


def test_stats_occupancy_per_hour_without_loading_events(tmp_path, monkeypatch):
    from fastapi.testclient import TestClient

    from maskwatch.server import create_app

    db = str(tmp_path / "e.db")
    fill_crossings(EventStore(db))
    monkeypatch.setattr(EventStore, "query", lambda *a, **k: pytest.fail("stats loaded the events"))
    client = TestClient(create_app(pipeline=lambda image, timer=None: Faces.empty(), db=db,
                                   snapshot_dir=tmp_path / "s"), base_url="http://localhost")
    s = client.get("/v1/stats?hours=4").json()
    assert s["occupancy"] == 2 and s["occupancy_by_camera"] == {"door": 0, "hall": 2}
    hours = s["entries_per_hour"]
    assert len(hours) == 4 and [h["entered"] for h in hours] == [0, 3, 0, 3]
    assert [h["occupancy"] for h in hours] == [0, 2, 2, 2]  # door 2 after hour 1, then 2 - 3 -> 0; hall 2
    assert hours[3]["cameras"] == {"door": {"entered": 1, "left": 4, "occupancy": 0},
                                   "hall": {"entered": 2, "left": 0, "occupancy": 2}}
    assert s["by_type"]["entered"] == 6 and s["by_type"]["left"] == 5


def test_event_types_are_one_enum_with_the_stored_names():
    assert EVENT_TYPES == ("entered_unmasked", "mask_removed", "mask_incorrect", "mask_restored", "source_lost",
                           "source_restored", "entered", "left")
    ev = Event(type=EventType.ENTERED, time=datetime.now(timezone.utc), source="s")
    assert ev.to_dict()["type"] == "entered" and type(ev.to_dict()["type"]) is str
    track = TrackState(StateConfig())
    assert track.side == 0 and not track.inside
