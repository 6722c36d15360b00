"""Copies of the shared datasets for tests that change or train on them."""

from __future__ import annotations

import shutil
from pathlib import Path


def copy_kaggle_scenes(kaggle: Path, dst: Path, count: int) -> list[str]:
    """The first ``count`` Kaggle scenes (sorted) copied into a VOC folder ``dst``; returns their stems."""
    (dst / "images").mkdir(parents=True)
    (dst / "annotations").mkdir()
    names = sorted(p.stem for p in (kaggle / "annotations").glob("*.xml"))[:count]
    for stem in names:
        shutil.copy(kaggle / "images" / f"{stem}.jpg", dst / "images")
        shutil.copy(kaggle / "annotations" / f"{stem}.xml", dst / "annotations")
    return names
