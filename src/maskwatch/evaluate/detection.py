"""Detection metrics: faces found (class-agnostic) and mask states found (per class), on a dataset.

Definitions (see docs/evaluate.md):

* **Operating point**: predictions with ``score >= operating_score`` are matched to ground truth at
  IoU 0.3 and 0.5 (greedy by score). TP = matched predictions, FP = unmatched predictions,
  FN = unmatched ground-truth faces; every ground-truth face counts whatever its state.
* **Face AP@0.5**: class-agnostic AP of all predictions (down to the ``--min-score`` they were made at).
* **Class AP**: every predicted face is a candidate for each class ``c`` with score
  ``face_score * probs[c]``; ground truth of class ``c`` are the positives, predictions matching
  faces of other classes are false positives (the COCO per-category rule). This ranks a face
  both by how sure the detector is that it is a face and how sure the classifier is of ``c``.
* **2-class mAP** (mask, no_mask): ``incorrect`` faces are ignored regions; predictions matching them
  count neither TP nor FP. **3-class mAP**: mean over mask, no_mask, incorrect.
* AP is COCO's 101-point interpolated AP (no per-image detection cap); mAP@0.5:0.95 averages
  IoU thresholds 0.50, 0.55, ..., 0.95. Classes without ground truth are left out of the mean (n/a).
* **Size buckets** by sqrt(box area): small < 32 px, medium 32-96, large > 96 (COCO's area ranges);
  gts outside the bucket are ignored, unmatched predictions outside it too.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..data.dataset import AnnotatedImage
from ..faces import LABEL_INDEX, LABELS, Faces
from ..boxes import iou_matrix
from .matching import APResult, average_precision, match_image
from .results import (
    APPair,
    DetectionConfusion,
    DetectionEvaluation,
    DetectionResult,
    Example,
    FaceAP,
    MeanAP,
    OperatingPoint,
)

Pairs = Sequence[tuple[AnnotatedImage, Faces]]

COCO_IOUS = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))
OPERATING_IOUS = (0.3, 0.5)
SIZE_BUCKETS: dict[str, tuple[float, float]] = {"all": (0, np.inf), "small": (0, 32), "medium": (32, 96),
                                                 "large": (96, np.inf)}
TWO_CLASSES = ("mask", "no_mask")


def _sizes(boxes: np.ndarray) -> np.ndarray:
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    return np.sqrt(np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None))


def _in_bucket(boxes: np.ndarray, bucket: tuple[float, float]) -> np.ndarray:
    """Inside a size range, ends included, compared on areas as pycocotools does."""
    area = _sizes(boxes) ** 2
    return (area >= bucket[0] ** 2) & (area <= bucket[1] ** 2)


def _aps(pairs: Pairs, ious: Sequence[float], class_id: int | None,
         ignore_labels: tuple[str, ...] = (), bucket: tuple[float, float] = (0, np.inf)) -> list[APResult]:
    """AP at each IoU threshold for one class (None: any face), ignored labels and size bucket."""
    scores_per_iou: list[list[np.ndarray]] = [[] for _ in ious]
    tp_per_iou: list[list[np.ndarray]] = [[] for _ in ious]
    n_gt = 0
    for gt, faces in pairs:
        labels = np.array(gt.labels, dtype=object)
        crowd = np.isin(labels, ignore_labels) if ignore_labels else np.zeros(len(labels), bool)
        outside = ~_in_bucket(gt.boxes, bucket)
        if class_id is None:
            scores = faces.scores.astype(np.float64)
            positive = np.ones(len(labels), bool)
        else:
            scores = faces.scores.astype(np.float64) * faces.probs[:, class_id]
            positive = labels == LABELS[class_id]
        ignore = crowd | outside
        n_gt += int((positive & ~ignore).sum())
        # gts of other classes are left out (COCO evaluates each category on its own), so a
        # prediction on them stays unmatched: a false positive for this class
        idx = np.flatnonzero(positive | crowd)
        iou_table = iou_matrix(faces.boxes, gt.boxes[idx])
        pred_inside = _in_bucket(faces.boxes, bucket)
        for k, iou in enumerate(ious):
            pm, pig, _ = match_image(faces.boxes, scores, gt.boxes[idx], iou, ignore[idx], crowd[idx], iou_table)
            keep = ~pig & ((pm >= 0) | pred_inside)
            scores_per_iou[k].append(scores[keep])
            tp_per_iou[k].append(pm[keep] >= 0)
    return [average_precision(np.concatenate(s) if s else np.zeros(0), np.concatenate(t) if t else np.zeros(0, bool),
                              n_gt) for s, t in zip(scores_per_iou, tp_per_iou)]


def _nanmean(values: Sequence[float]) -> float:
    vals = [v for v in values if not np.isnan(v)]
    return float(np.mean(vals)) if vals else float("nan")


def _ratio(a: float, b: float) -> float:
    return float(a / b) if b else float("nan")


def _operating_point(pairs: Pairs, iou: float) -> OperatingPoint:
    tp = fp = fn = 0
    found = {name: 0 for name in LABELS}
    total = {name: 0 for name in LABELS}
    for gt, faces in pairs:
        pm, _, gm = match_image(faces.boxes, faces.scores, gt.boxes, iou)
        tp += int((pm >= 0).sum())
        fp += int((pm < 0).sum())
        fn += int((gm < 0).sum())
        for label, matched in zip(gt.labels, gm):
            total[label] += 1
            found[label] += int(matched >= 0)
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    f1 = _ratio(2 * precision * recall, precision + recall) if tp else 0.0
    return OperatingPoint(tp=tp, fp=fp, fn=fn, precision=precision, recall=recall, f1=f1,
                          recall_by_state={k: _ratio(found[k], total[k]) for k in LABELS}, gt_by_state=total)


def _box(b: np.ndarray) -> list[float]:
    return [round(float(v), 1) for v in b]


def _confusion_and_examples(pairs: Pairs, has_probs: bool,
                            n_examples: int) -> tuple[DetectionConfusion, dict[str, list[Example]]]:
    """Confusion of states on faces matched at IoU 0.5 (columns: predicted states + 'missed')."""
    columns = [*LABELS, "missed"]
    matrix = np.zeros((len(LABELS), len(columns)), np.int64)
    missed: list[Example] = []
    false_alarms: list[Example] = []
    wrong: list[Example] = []
    for gt, faces in pairs:
        pm, _, gm = match_image(faces.boxes, faces.scores, gt.boxes, 0.5)
        path = str(gt.path)
        for g, p in enumerate(gm):
            row = LABEL_INDEX[gt.labels[g]]
            if p < 0:
                matrix[row, -1] += 1
                size = float(_sizes(gt.boxes[g:g + 1])[0])
                missed.append(Example(path, _box(gt.boxes[g]), f"missed {gt.labels[g]} {size:.0f}px", size))
            elif has_probs:
                k = int(faces.probs[p].argmax())
                matrix[row, k] += 1
                if k != row:
                    conf = float(faces.probs[p, k])
                    wrong.append(Example(path, _box(gt.boxes[g]),
                                         f"{gt.labels[g]} as {LABELS[k]} {conf:.2f}", conf))
        for p in np.flatnonzero(pm < 0):
            s = float(faces.scores[p])
            label = f" {LABELS[int(faces.probs[p].argmax())]}" if has_probs else ""
            false_alarms.append(Example(path, _box(faces.boxes[p]), f"false alarm{label} {s:.2f}", s))
    examples = {
        "missed": sorted(missed, key=lambda e: -e.sort_key)[:n_examples],
        "false_alarms": sorted(false_alarms, key=lambda e: -e.sort_key)[:n_examples],
        "misclassified": sorted(wrong, key=lambda e: -e.sort_key)[:n_examples],
    }
    if not has_probs:
        matrix[:, :len(LABELS)] = 0
    confusion = DetectionConfusion(rows_true=list(LABELS), columns_predicted=columns, matrix=matrix.tolist(),
                                   states_available=has_probs)
    return confusion, examples


def detection_result(pairs: Pairs, operating_score: float, n_examples: int = 12) -> DetectionEvaluation:
    """All detection metrics of (ground truth, predictions) pairs, one per image (the computation
    behind ``metrics.DetectionMetrics``). Class metrics are NaN when any prediction lacks ``probs``
    (a detector-only run)."""
    # images without faces carry no probs (e.g. an empty JSONL line): they do not make a run detector-only
    has_probs = bool(any(len(f) for _, f in pairs) and all(f.probs is not None for _, f in pairs if len(f)))
    if has_probs:
        pairs = [(gt, f if f.probs is not None else f.with_(probs=np.zeros((0, len(LABELS)), np.float32)))
                 for gt, f in pairs]
    operating = [(gt, f[f.scores >= operating_score]) for gt, f in pairs]

    curves: dict[str, APResult] = {}
    face_ap: dict[str, FaceAP] = {}
    for bucket_name, bucket in SIZE_BUCKETS.items():
        per_iou = _aps(pairs, COCO_IOUS, None, bucket=bucket)
        if bucket_name == "all":
            curves["face"] = per_iou[0]
        face_ap[bucket_name] = FaceAP(ap50=per_iou[0].ap, ap50_95=_nanmean([r.ap for r in per_iou]),
                                      gt_faces=per_iou[0].n_gt, recall50=_operating_recall(operating, bucket))

    nan = APPair(float("nan"), float("nan"))
    class_ap: dict[str, dict[str, APPair]] = {}
    maps: dict[str, MeanAP] = {}
    for bucket_name, bucket in SIZE_BUCKETS.items():
        three: dict[str, APPair] = {}
        two: dict[str, APPair] = {}
        for c, name in enumerate(LABELS):
            if has_probs:
                r3 = _aps(pairs, COCO_IOUS, c, bucket=bucket)
                three[name] = APPair(r3[0].ap, _nanmean([r.ap for r in r3]))
                if bucket_name == "all":
                    curves[name] = r3[0]
                if name in TWO_CLASSES:
                    r2 = _aps(pairs, COCO_IOUS, c, ("incorrect",), bucket)
                    two[name] = APPair(r2[0].ap, _nanmean([r.ap for r in r2]))
            else:
                three[name] = nan
                if name in TWO_CLASSES:
                    two[name] = nan
        class_ap[bucket_name] = {**three, **{f"{name}_2class": v for name, v in two.items()}}
        maps[bucket_name] = MeanAP(
            map50_2class=_nanmean([v.ap50 for v in two.values()]),
            map50_95_2class=_nanmean([v.ap50_95 for v in two.values()]),
            map50_3class=_nanmean([v.ap50 for v in three.values()]),
            map50_95_3class=_nanmean([v.ap50_95 for v in three.values()]))
    confusion, examples = _confusion_and_examples(operating, has_probs, n_examples)
    result = DetectionResult(
        images=len(pairs),
        gt_faces=int(sum(len(gt.boxes) for gt, _ in pairs)),
        predicted_faces=int(sum(len(f) for _, f in pairs)),
        operating_score=float(operating_score),
        min_prediction_score=float(min((f.scores.min() for _, f in pairs if len(f)), default=float("nan"))),
        class_metrics_available=has_probs,
        operating_point={iou: _operating_point(operating, iou) for iou in OPERATING_IOUS},
        face_ap=face_ap, class_ap=class_ap, map=maps, confusion=confusion)
    return DetectionEvaluation(result=result, curves=curves, examples=examples)


def _operating_recall(operating: Pairs, bucket: tuple[float, float]) -> float:
    """Recall at IoU 0.5 of the gts inside ``bucket`` (any prediction may match them)."""
    found = total = 0
    for gt, faces in operating:
        _, _, gm = match_image(faces.boxes, faces.scores, gt.boxes, 0.5)
        inside = _in_bucket(gt.boxes, bucket)
        total += int(inside.sum())
        found += int((gm[inside] >= 0).sum())
    return _ratio(found, total)
