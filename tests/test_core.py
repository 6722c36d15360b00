"""Unit tests of the Faces type, box maths, label mapping and splits."""

from __future__ import annotations

import numpy as np
import pytest

from maskwatch.boxes import clip_boxes, expand_to_square, iou_matrix, nms
from maskwatch.data.labels import map_label, parse_label_map
from maskwatch.data.splits import assign_splits
from maskwatch.evaluate.matching import average_precision, match_image
from maskwatch.faces import LABELS, Faces


def test_iou_matrix_known_values():
    a = np.array([[0, 0, 10, 10], [0, 0, 0, 0]])
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]])
    iou = iou_matrix(a, b)
    assert iou.shape == (2, 3)
    assert iou[0, 0] == pytest.approx(1.0)
    assert iou[0, 1] == pytest.approx(50 / 150)
    assert iou[0, 2] == 0.0
    assert (iou[1] == 0).all()  # a zero-area box overlaps nothing and does not divide by zero


def test_nms_keeps_best_of_overlapping_and_separate_boxes():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]])
    keep = nms(boxes, np.array([0.5, 0.9, 0.4]), 0.3)
    assert keep.tolist() == [1, 2]


def test_expand_to_square_and_clip():
    sq = expand_to_square(np.array([[10, 20, 30, 60]]), context=0.5)
    assert sq[0].tolist() == pytest.approx([-10, 10, 50, 70])  # side 40 * 1.5 = 60 around (20, 40)
    clipped = clip_boxes(sq, 40, 40)
    assert clipped[0].tolist() == pytest.approx([0, 10, 40, 40])


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


@pytest.mark.parametrize("name,label", [("with_mask", "mask"), ("Without Mask", "no_mask"),
                                        ("mask_weared_incorrect", "incorrect"), ("bicycle", None)])
def test_label_mapping(name, label):
    assert map_label(name) == label


def test_label_map_extra_and_errors():
    extra = parse_label_map("face=no_mask, masked_face=mask")
    assert map_label("face", extra) == "no_mask"
    with pytest.raises(ValueError):
        parse_label_map("face=nose")


def test_splits_are_reproducible_grouped_and_sized():
    keys = [f"img{i}" for i in range(2000)]
    groups = [i // 2 for i in range(2000)]  # pairs of near-duplicates
    a = assign_splits(keys, {"train": 0.6, "val": 0.15, "test": 0.25}, seed=3, groups=groups)
    assert a == assign_splits(keys, {"train": 0.6, "val": 0.15, "test": 0.25}, seed=3, groups=groups)
    assert all(a[i] == a[i + 1] for i in range(0, 2000, 2))
    assert 0.2 < a.count("test") / 2000 < 0.3
    assert a != assign_splits(keys, {"train": 0.6, "val": 0.15, "test": 0.25}, seed=4, groups=groups)


def test_matching_and_ap_exact_cases():
    gt = np.array([[0, 0, 10, 10], [20, 20, 30, 30]])
    pred = np.array([[0, 0, 10, 10], [0, 0, 9, 10], [100, 100, 110, 110]])
    pm, ignored, gm = match_image(pred, np.array([0.9, 0.8, 0.7]), gt, 0.5)
    assert pm.tolist() == [0, -1, -1] and gm.tolist() == [0, -1]
    # one TP at the top, then two FPs, one of two gts found: AP = recall 0.5 at precision 1
    res = average_precision(np.array([0.9, 0.8, 0.7]), pm >= 0, n_gt=2)
    assert res.ap == pytest.approx(51 / 101)
    # a prediction on an ignored gt is neither TP nor FP
    pm, ignored, gm = match_image(pred[:1], np.array([0.9]), gt[:1], 0.5, gt_ignore=np.array([True]))
    assert ignored.tolist() == [True] and pm.tolist() == [-1]


def test_labels_order_is_fixed():
    assert LABELS == ("mask", "no_mask", "incorrect")


def test_onnx_sessions_do_not_spin_and_keep_their_thread_count(monkeypatch):
    from maskwatch.classifier import MaskClassifier

    monkeypatch.delenv("MASKWATCH_ORT_SPINNING", raising=False)
    options = MaskClassifier(threads=2).session.get_session_options()
    # spinning idle workers of one session starve the other on 2 cores (README, Speed)
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert options.intra_op_num_threads == 2
    monkeypatch.setenv("MASKWATCH_ORT_SPINNING", "1")
    from maskwatch.settings import reload_settings

    assert reload_settings().ort_spinning  # the environment is read once, in maskwatch.settings
    options = MaskClassifier(threads=2).session.get_session_options()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "1"
