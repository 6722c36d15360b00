"""The label enum: members are the plain strings everywhere they leave MaskWatch (JSON, files, databases)."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import numpy as np

from maskwatch import LABELS, Faces, Label
from maskwatch.data import map_label, parse_label_map
from maskwatch.faces import detection_record


def test_labels_are_the_enum_in_classifier_order():
    assert LABELS == (Label.MASK, Label.NO_MASK, Label.INCORRECT)
    assert list(LABELS) == ["mask", "no_mask", "incorrect"]  # equal to the plain strings, in order
    assert LABELS.index("incorrect") == 2 and "no_mask" in LABELS and Label("no_mask") is Label.NO_MASK
    assert f"{Label.NO_MASK}" == str(Label.NO_MASK) == "no_mask" and type(str(Label.MASK)) is str


def test_json_records_keep_the_plain_names():
    faces = Faces(boxes=[[0, 0, 10, 10], [20, 0, 30, 10]], scores=[0.9, 0.8],
                  probs=[[0.1, 0.8, 0.1], [0.7, 0.2, 0.1]])
    assert faces.labels == [Label.NO_MASK, Label.MASK]
    text = json.dumps(detection_record(faces, "a.jpg", 40, 10, 1.0))
    assert "Label" not in text
    back = json.loads(text)
    assert [f["label"] for f in back["faces"]] == ["no_mask", "mask"]
    assert back["counts"] == {"mask": 1, "no_mask": 1, "incorrect": 0}
    assert list(back["faces"][0]["probs"]) == ["mask", "no_mask", "incorrect"]
    # the same text as plain strings give
    plain = {"label": "no_mask", "counts": {"mask": 1}}
    assert json.dumps({"label": Label.NO_MASK, "counts": {Label.MASK: 1}}) == json.dumps(plain)
    assert np.array_equal(Faces.from_records(back["faces"]).probs, faces.probs)


def test_dataset_names_map_to_the_enum():
    assert map_label("without_mask") is Label.NO_MASK and map_label("Mask Worn Incorrectly") is Label.INCORRECT
    assert map_label("hat") is None and map_label("hat", {"hat": "mask"}) is Label.MASK
    assert parse_label_map("face=no_mask") == {"face": Label.NO_MASK}


def test_states_are_stored_and_sent_as_plain_strings(tmp_path):
    from maskwatch.event_types import EventType
    from maskwatch.store import Event, EventStore

    store = EventStore(str(tmp_path / "e.db"), spool=None)
    ev = Event(EventType.MASK_REMOVED, datetime.now(timezone.utc), "cam", track_id=1,
               state_before=Label.MASK, state_after=Label.NO_MASK)
    assert json.dumps(ev.to_dict()).count('"mask"') == 1 and "Label" not in json.dumps(ev.to_dict())
    store.add(ev)
    (got,) = store.query()
    store.close()
    assert (got.state_before, got.state_after) == ("mask", "no_mask") and type(got.state_after) is str
