"""The Kaggle held-out split used by benchmarks and tools (same rule as `maskwatch train`)."""

from __future__ import annotations

import os
from pathlib import Path

from maskwatch.data.splits import assign_splits, group_near_duplicates
from maskwatch.data.voc import read_voc
from maskwatch.train.data import SPLITS

REPO = Path(__file__).resolve().parent.parent


def kaggle_root() -> Path:
    shared = Path(os.environ.get("MASKWATCH_SHARED", REPO.parent / "shared"))
    return shared / "data" / "kaggle-face-mask"


def kaggle_split(split: str, seed: int = 0):
    """Annotated images of one split of ../shared/data/kaggle-face-mask."""
    ds = read_voc(kaggle_root())
    names = assign_splits([im.key for im in ds.images], SPLITS, seed, group_near_duplicates([im.path for im in ds.images]))
    return [im for im, s in zip(ds.images, names) if s == split]
