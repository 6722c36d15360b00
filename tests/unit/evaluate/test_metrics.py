"""The evaluation core: ClassificationMetrics and DetectionMetrics on hand-made cases with known answers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from maskwatch.data.dataset import AnnotatedImage
from maskwatch.evaluate import ClassificationMetrics, DetectionMetrics, evaluate_classification, evaluate_detections
from maskwatch.evaluate.report import json_ready
from maskwatch.faces import LABELS, Faces


def same(a: dict, b: dict) -> bool:
    """Equal as report JSON (NaN, which never equals itself, becomes null)."""
    return json.dumps(json_ready(a), allow_nan=False) == json.dumps(json_ready(b), allow_nan=False)


def one_hot(*predicted: str, p: float = 0.8) -> np.ndarray:
    rest = (1 - p) / 2
    rows = np.full((len(predicted), 3), rest)
    for i, name in enumerate(predicted):
        rows[i, LABELS.index(name)] = p
    return rows


# -- classification ----------------------------------------------------------------------------------
def test_known_confusion_matrix_gives_precision_recall_f1_and_macro_f1():
    # true mask x4: 3 -> mask, 1 -> no_mask; true no_mask x3: 2 -> no_mask, 1 -> mask; true incorrect x2: both -> mask
    truth = ["mask"] * 4 + ["no_mask"] * 3 + ["incorrect"] * 2
    predicted = ["mask", "mask", "mask", "no_mask", "no_mask", "no_mask", "mask", "mask", "mask"]
    metrics = ClassificationMetrics()
    metrics.update(truth[:5], one_hot(*predicted[:5]))  # two batches: the same as one
    metrics.update(truth[5:], one_hot(*predicted[5:]))
    r = metrics.compute()
    assert r.confusion.matrix == [[3, 1, 0], [1, 2, 0], [2, 0, 0]]
    assert r.samples == 9 and r.accuracy == pytest.approx(5 / 9)
    mask, no_mask, incorrect = (r.per_class[n] for n in LABELS)
    assert (mask.precision, mask.recall) == pytest.approx((3 / 6, 3 / 4))
    assert mask.f1 == pytest.approx(2 * 0.5 * 0.75 / 1.25)
    assert (no_mask.precision, no_mask.recall, no_mask.f1) == pytest.approx((2 / 3, 2 / 3, 2 / 3))
    # incorrect has faces but none was predicted: precision n/a, recall 0, F1 0 (and it counts in macro F1)
    assert np.isnan(incorrect.precision) and incorrect.recall == 0 and incorrect.f1 == 0 and incorrect.support == 2
    assert r.macro_f1 == pytest.approx((0.6 + 2 / 3 + 0) / 3)
    assert r.mask_vs_no_mask.samples == 7 and r.mask_vs_no_mask.accuracy == pytest.approx(5 / 7)
    assert same(r.to_dict(), evaluate_classification(truth, one_hot(*predicted)))  # one batch, the report's dict


def test_label_indices_and_names_give_the_same_result_and_the_training_shape():
    truth = ["mask", "no_mask", "no_mask", "incorrect"]
    probs = one_hot("mask", "no_mask", "mask", "incorrect")
    by_name, by_index = ClassificationMetrics(), ClassificationMetrics()
    by_name.update(truth, probs)
    by_index.update(np.array([LABELS.index(t) for t in truth]), probs)
    a, b = by_name.compute(), by_index.compute()
    assert same(a.to_dict(), b.to_dict())
    compact = a.training_dict()
    assert compact["confusion_matrix"] == [[1, 0, 0], [1, 1, 0], [0, 0, 1]]
    assert compact["accuracy"] == 0.75 and compact["n"] == 4 and compact["labels"] == list(LABELS)
    assert compact["mask_vs_no_mask_accuracy"] == pytest.approx(2 / 3)
    assert compact["per_class"]["no_mask"] == {"precision": 1.0, "recall": 0.5, "f1": pytest.approx(2 / 3), "support": 2}


def test_mismatched_lengths_and_an_empty_set():
    metrics = ClassificationMetrics()
    with pytest.raises(ValueError, match="2 labels but 1 probability rows"):
        metrics.update(["mask", "no_mask"], [[1, 0, 0]])
    empty = metrics.compute()
    assert empty.samples == 0 and np.isnan(empty.accuracy) and np.isnan(empty.macro_f1)
    json.dumps(json_ready(empty.to_dict()), allow_nan=False)  # NaN becomes null in a report


def test_training_validation_uses_the_same_core():
    pytest.importorskip("torch")
    from maskwatch.train.loop import class_metrics

    labels = np.array([0, 0, 1, 2])
    probs = one_hot("mask", "no_mask", "no_mask", "mask")
    assert same(class_metrics(labels, probs).to_dict(),
                evaluate_classification(["mask", "mask", "no_mask", "incorrect"], probs))


# -- detection ---------------------------------------------------------------------------------------
def image(key: str, boxes, labels) -> AnnotatedImage:
    return AnnotatedImage(path=Path(f"/nowhere/{key}.jpg"), width=200, height=200,
                          boxes=np.asarray(boxes, np.float32).reshape(-1, 4), labels=list(labels))


def faces(boxes, scores, probs=None) -> Faces:
    return Faces(boxes=np.asarray(boxes, np.float32).reshape(-1, 4), scores=scores, probs=probs)


def test_face_ap_and_operating_point_on_hand_made_boxes():
    # ranked over both images: TP .9 (a), FP .8 (a), TP .7 (b), FP .6 (b); 3 gt faces
    a = image("a", [[0, 0, 40, 40], [100, 100, 140, 140]], ["mask", "no_mask"])
    b = image("b", [[0, 0, 40, 40]], ["mask"])
    metrics = DetectionMetrics(operating_score=0.5)
    metrics.update(a, faces([[0, 0, 40, 40], [60, 0, 100, 40]], [0.9, 0.8]))
    metrics.update(b, faces([[1, 1, 41, 41], [150, 150, 190, 190]], [0.7, 0.6]))
    evaluation = metrics.compute()
    r = evaluation.result
    # precision envelope 1 up to recall 1/3 (34 of the 101 points), 2/3 up to recall 2/3 (33 points), then 0
    assert r.face_ap["all"].ap50 == pytest.approx((34 * 1.0 + 33 * 2 / 3) / 101)
    op = r.operating_point[0.5]
    assert (op.tp, op.fp, op.fn) == (2, 2, 1) and op.recall == pytest.approx(2 / 3)
    assert op.recall_by_state["mask"] == 1.0 and op.recall_by_state["no_mask"] == 0.0
    assert r.images == 2 and r.gt_faces == 3 and r.predicted_faces == 4
    assert not r.class_metrics_available and np.isnan(r.map["all"].map50_3class)  # no probs
    assert evaluation.summary().recall50 == pytest.approx(2 / 3)
    assert [e.caption for e in evaluation.examples["missed"]] == ["missed no_mask 40px"]
    at_once = evaluate_detections([a, b], {"a": metrics._pairs[0][1], "b": metrics._pairs[1][1]}, 0.5)
    assert same(at_once.metrics, evaluation.metrics)


def test_class_ap_ranks_by_face_score_times_state_probability():
    gt = image("a", [[0, 0, 40, 40], [100, 0, 140, 40]], ["mask", "no_mask"])
    # the no_mask face is the surer 'mask' (0.9 * 0.9 > 1.0 * 0.6): mask AP has its FP ranked first
    pred = faces([[0, 0, 40, 40], [100, 0, 140, 40]], [1.0, 0.9], probs=[[0.6, 0.4, 0.0], [0.9, 0.1, 0.0]])
    metrics = DetectionMetrics(operating_score=0.5)
    metrics.update(gt, pred)
    r = metrics.compute().result
    assert r.class_ap["all"]["mask"].ap50 == pytest.approx(0.5)  # FP then TP: precision 1/2 at recall 1
    # no_mask: the mask face (1.0 * 0.4) outranks the no_mask face (0.9 * 0.1): FP then TP again
    assert r.class_ap["all"]["no_mask"].ap50 == pytest.approx(0.5)
    assert r.map["all"].map50_2class == pytest.approx(0.5) and r.map["all"].map50_3class == pytest.approx(0.5)
    assert r.confusion.matrix == [[1, 0, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]] and r.confusion.states_available


def test_a_face_on_a_size_boundary_counts_in_both_buckets():
    # sqrt(area) exactly 32 px: small (< 32 inclusive end) and medium, as COCO's inclusive area ranges
    gt = image("a", [[0, 0, 32, 32], [50, 50, 60, 60], [100, 100, 200, 200]], ["mask", "mask", "mask"])
    metrics = DetectionMetrics(operating_score=0.5)
    metrics.update(gt, faces(np.zeros((0, 4)), np.zeros(0)))
    r = metrics.compute().result
    counts = {b: r.face_ap[b].gt_faces for b in ("small", "medium", "large")}
    assert counts == {"small": 2, "medium": 1, "large": 1} and r.face_ap["all"].gt_faces == 3
