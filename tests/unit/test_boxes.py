"""Box maths: IoU, non-maximum suppression, squaring and clipping (maskwatch.boxes)."""

from __future__ import annotations

import numpy as np
import pytest

from maskwatch.boxes import clip_boxes, expand_to_square, iou_matrix, nms


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
