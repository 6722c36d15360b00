"""The shipped models on the Kaggle held-out split: the accuracy the README claims, as a regression test.

Same numbers as `maskwatch eval detect ../shared/data/kaggle-face-mask --split-file
splits/kaggle-face-mask/test.txt` (the split lists are committed; the test recomputes the split and
checks it matches them).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from maskwatch.data.splits import dataset_splits
from maskwatch.detectors.centerface import DEFAULT_MIN_SCORE
from maskwatch.data.voc import read_voc
from maskwatch.evaluate import evaluate_detections
from maskwatch.evaluate.inputs import run_system
from maskwatch.pipeline import build_pipeline

SPLITS = Path(__file__).resolve().parents[2] / "splits" / "kaggle-face-mask"


@pytest.fixture(scope="module")
def held_out(kaggle_dir):
    dataset = read_voc(kaggle_dir)
    test = dataset_splits(dataset, seed=0)["test"]
    assert test == (SPLITS / "test.txt").read_text().split()  # the committed list is the split used
    keep = set(test)
    return [im for im in dataset.images if im.key in keep]


@pytest.fixture(scope="module")
def evaluation(held_out):
    pipeline = build_pipeline("centerface", min_score=0.05, threads=2)
    predictions = run_system(held_out, pipeline)
    return evaluate_detections(held_out, predictions.faces, operating_score=DEFAULT_MIN_SCORE)


@pytest.mark.slow
def test_split_is_a_quarter_and_never_in_training(held_out, kaggle_dir):
    assert 0.2 <= len(held_out) / 691 <= 0.3
    train = set((SPLITS / "train.txt").read_text().split()) | set((SPLITS / "val.txt").read_text().split())
    assert not train & {im.key for im in held_out}


@pytest.mark.slow
def test_issue_targets_on_held_out_kaggle(evaluation):
    row = evaluation.summary_row()
    assert row["map50_2class"] >= 0.75, row
    assert row["map50_3class"] >= 0.60, row
    assert row["mask_recall50"] >= 0.85, row
