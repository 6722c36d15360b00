"""Greedy detection-to-ground-truth matching and COCO-style average precision."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..boxes import iou_matrix


def match_image(pred_boxes: np.ndarray, pred_scores: np.ndarray, gt_boxes: np.ndarray,
                iou_threshold: float, gt_ignore: np.ndarray | None = None,
                gt_crowd: np.ndarray | None = None, ious: np.ndarray | None = None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Match predictions to ground truth greedily by descending score (the COCO rule).

    Each prediction takes the unmatched, non-ignored gt with the highest IoU >= ``iou_threshold``;
    failing that, the ignored gt with the highest IoU. A prediction matched to an ignored gt is
    neither TP nor FP. ``gt_crowd`` marks ignored gts that may absorb any number of predictions
    (COCO's ``iscrowd``; default: every ignored gt); other ignored gts (e.g. outside a size range)
    are used up by one match, as in pycocotools.

    Returns (pred_match, pred_ignored, gt_match): index of the matched gt per prediction (-1 none),
    whether a prediction matched an ignored gt, and the matched prediction per gt (-1 none).
    ``ious`` may pass the (N, M) IoU matrix when matching the same boxes at several thresholds.
    """
    n, m = len(pred_boxes), len(gt_boxes)
    pred_match = -np.ones(n, np.int64)
    pred_ignored = np.zeros(n, bool)
    gt_match = -np.ones(m, np.int64)
    if n == 0 or m == 0:
        return pred_match, pred_ignored, gt_match
    ignore = np.zeros(m, bool) if gt_ignore is None else np.asarray(gt_ignore, bool)
    crowd = ignore.copy() if gt_crowd is None else (np.asarray(gt_crowd, bool) & ignore)
    ious = iou_matrix(pred_boxes, gt_boxes) if ious is None else ious
    for p in np.argsort(-np.asarray(pred_scores), kind="stable"):
        best = -1
        for group in (~ignore, ignore):  # non-ignored gts first, ignored only as a fallback
            candidates = np.flatnonzero(group & ((gt_match < 0) | crowd) & (ious[p] >= iou_threshold))
            if candidates.size:
                best = int(candidates[np.argmax(ious[p, candidates])])
                break
        if best < 0:
            continue
        pred_match[p] = best
        pred_ignored[p] = bool(ignore[best])
        if not crowd[best]:
            gt_match[best] = p
    pred_match[pred_ignored] = -1
    gt_match[ignore] = -1
    return pred_match, pred_ignored, gt_match


@dataclass
class APResult:
    ap: float
    precision: np.ndarray  # precision at each ranked prediction
    recall: np.ndarray
    scores: np.ndarray
    n_gt: int


def average_precision(scores: np.ndarray, is_tp: np.ndarray, n_gt: int) -> APResult:
    """101-point interpolated AP (COCO) from per-prediction scores and TP flags over a dataset.

    Predictions matched to ignored ground truth must be left out by the caller. NaN when ``n_gt`` is 0.
    """
    scores = np.asarray(scores, np.float64)
    order = np.argsort(-scores, kind="mergesort")
    tp = np.asarray(is_tp, bool)[order]
    ctp = np.cumsum(tp)
    cfp = np.cumsum(~tp)
    recall = ctp / max(n_gt, 1)
    precision = ctp / np.maximum(ctp + cfp, 1)
    if n_gt == 0:
        return APResult(float("nan"), precision, recall, scores[order], 0)
    envelope = np.maximum.accumulate(precision[::-1])[::-1] if len(precision) else precision
    points = np.linspace(0, 1, 101)
    idx = np.searchsorted(recall, points, side="left")
    sampled = np.array([envelope[i] if i < len(envelope) else 0.0 for i in idx])
    return APResult(float(sampled.mean()), precision, recall, scores[order], n_gt)
