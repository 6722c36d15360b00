"""Greedy detection-to-ground-truth matching and VOC/COCO-style average precision."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..boxes import iou_matrix


def match_image(pred_boxes: np.ndarray, pred_scores: np.ndarray, gt_boxes: np.ndarray,
                iou_threshold: float, gt_ignore: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Match predictions to ground truth greedily by descending score (COCO rule).

    Returns (pred_match, pred_ignored, gt_match): index of the matched gt per prediction (-1 none),
    whether a prediction matched an ignored gt (neither TP nor FP), and the matched prediction per gt.
    """
    n, m = len(pred_boxes), len(gt_boxes)
    pred_match = -np.ones(n, np.int64)
    pred_ignored = np.zeros(n, bool)
    gt_match = -np.ones(m, np.int64)
    if n == 0 or m == 0:
        return pred_match, pred_ignored, gt_match
    ignore = np.zeros(m, bool) if gt_ignore is None else np.asarray(gt_ignore, bool)
    ious = iou_matrix(pred_boxes, gt_boxes)
    for p in np.argsort(-np.asarray(pred_scores), kind="stable"):
        best, best_iou = -1, iou_threshold
        # prefer unmatched, non-ignored gts; fall back to ignored ones
        for g in np.argsort(-ious[p], kind="stable"):
            if ious[p, g] < best_iou:
                break
            if gt_match[g] >= 0:
                continue
            if ignore[g] and best >= 0:
                break
            best = g
            if not ignore[g]:
                break
        if best >= 0:
            if ignore[best]:
                pred_ignored[p] = True
            else:
                gt_match[best] = p
                pred_match[p] = best
    return pred_match, pred_ignored, gt_match


@dataclass
class APResult:
    ap: float
    precision: np.ndarray  # precision at each ranked prediction
    recall: np.ndarray
    scores: np.ndarray
    n_gt: int


def average_precision(scores: np.ndarray, is_tp: np.ndarray, n_gt: int) -> APResult:
    """101-point interpolated AP (COCO) from per-prediction scores and TP flags over a dataset."""
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
