"""The Kaggle held-out split used by benchmarks and tools (the project's split rule, seed 0)."""

from __future__ import annotations

import os
from pathlib import Path

from maskwatch.data.splits import dataset_splits
from maskwatch.data.voc import read_voc

REPO = Path(__file__).resolve().parent.parent


def kaggle_root() -> Path:
    shared = Path(os.environ.get("MASKWATCH_SHARED", REPO.parent / "shared"))
    return shared / "data" / "kaggle-face-mask"


def kaggle_split(split: str, seed: int = 0):
    """Annotated images of one split of ../shared/data/kaggle-face-mask."""
    ds = read_voc(kaggle_root())
    keep = set(dataset_splits(ds, seed)[split])
    return [im for im in ds.images if im.key in keep]
