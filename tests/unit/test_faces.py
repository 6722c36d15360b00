"""The Faces type: columns, indexing, records and the fixed label order (maskwatch.faces)."""

from __future__ import annotations

import numpy as np
import pytest

from maskwatch.faces import LABELS, Faces


def test_faces_indexing_records_roundtrip():
    faces = Faces(boxes=[[0, 0, 10, 10], [5, 5, 20, 25]], scores=[0.9, 0.4],
                  landmarks=np.zeros((2, 5, 2)), probs=[[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]])
    assert faces.labels == ["mask", "incorrect"]
    assert faces.counts() == {"mask": 1, "no_mask": 0, "incorrect": 1}
    sub = faces[faces.scores > 0.5]
    assert len(sub) == 1 and sub.labels == ["mask"]
    records = faces.to_records()
    assert set(records[0]) >= {"box", "score", "label", "label_score", "probs", "landmarks"}
    assert records[1]["probs"] == {"mask": 0.1, "no_mask": 0.3, "incorrect": 0.6}
    back = Faces.from_records(records)
    assert np.allclose(back.boxes, faces.boxes) and np.allclose(back.probs, faces.probs, atol=1e-4)
    assert back.landmarks.shape == (2, 5, 2)


def test_faces_rejects_misaligned_columns():
    with pytest.raises(ValueError):
        Faces(boxes=[[0, 0, 1, 1]], scores=[0.1, 0.2])
    with pytest.raises(ValueError):
        Faces(boxes=[[0, 0, 1, 1]], scores=[0.1], probs=np.ones((2, 3)) / 3)


def test_empty_faces_have_right_shapes():
    empty = Faces.empty(with_landmarks=True)
    assert len(empty) == 0 and empty.boxes.shape == (0, 4) and empty.landmarks.shape == (0, 5, 2)
    assert empty.to_records() == []


def test_labels_order_is_fixed():
    assert LABELS == ("mask", "no_mask", "incorrect")
