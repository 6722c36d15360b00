"""Prediction to ground-truth matching and average precision on exact cases (maskwatch.evaluate.matching)."""

from __future__ import annotations

import numpy as np
import pytest

from maskwatch.evaluate.matching import average_precision, match_image


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
