"""Every image the README and docs/ show is a file in the checkout that git does not ignore."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", ROOT / "MODEL_CARD.md", *sorted((ROOT / "docs").glob("*.md"))]


def _images() -> list[tuple[Path, Path]]:
    found = []
    for page in PAGES:
        if page.is_file():
            for target in re.findall(r"!\[[^\]]*\]\(([^)\s]+)", page.read_text(encoding="utf-8")):
                if "://" not in target:
                    found.append((page, (page.parent / target).resolve()))
    return found


def test_the_readme_shows_its_example_result():
    assert (ROOT / "docs/images/astronaut.maskwatch.jpg") in [image for _, image in _images()]


@pytest.mark.parametrize("page,image", _images(), ids=lambda v: v.name)
def test_shown_images_exist_and_are_not_ignored(page, image):
    assert image.is_file(), f"{page.name} shows {image}, which does not exist"
    if shutil.which("git") and (ROOT / ".git").exists():
        ignored = subprocess.run(["git", "check-ignore", "-q", str(image)], cwd=ROOT).returncode == 0
        assert not ignored, f"{page.name} shows {image.relative_to(ROOT)}, which .gitignore leaves out of the repository"
