"""Shared test fixtures. Tests that need ../shared use the ``shared_dir`` fixture.

The data folder is ``$MASKWATCH_SHARED`` or ``../shared`` beside the repository. When it is
missing such tests skip with the reason, except under CI (``CI=true``), where they fail, since
CI always has it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def shared_path() -> Path:
    return Path(os.environ.get("MASKWATCH_SHARED", REPO.parent / "shared")).resolve()


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    path = shared_path()
    if not (path / "data").is_dir():
        message = f"needs the shared data folder at {path} (set MASKWATCH_SHARED)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + "; CI must have it")
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def kaggle_dir(shared_dir: Path) -> Path:
    return shared_dir / "data" / "kaggle-face-mask"


def copy_kaggle_scenes(kaggle: Path, dst: Path, count: int) -> list[str]:
    """The first ``count`` Kaggle scenes (sorted) copied into a VOC folder ``dst``; returns their stems."""
    import shutil

    (dst / "images").mkdir(parents=True)
    (dst / "annotations").mkdir()
    names = sorted(p.stem for p in (kaggle / "annotations").glob("*.xml"))[:count]
    for stem in names:
        shutil.copy(kaggle / "images" / f"{stem}.jpg", dst / "images")
        shutil.copy(kaggle / "annotations" / f"{stem}.xml", dst / "annotations")
    return names
