"""Folder-per-class classification sets (``root/with_mask/*.jpg``, ``root/without_mask/*.jpg``)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from ..errors import DatasetError
from ..images import IMAGE_SUFFIXES
from .dataset import DatasetReport
from .labels import map_label


@dataclass
class ClassFolders:
    """``samples``: (image path, MaskWatch label), sorted by folder then file name."""

    samples: list[tuple[Path, str]]
    report: DatasetReport
    root: Path

    def __len__(self) -> int:
        return len(self.samples)

    def __iter__(self) -> Iterator[tuple[Path, str]]:
        return iter(self.samples)

    def label_counts(self) -> Counter:
        return Counter(label for _, label in self.samples)


def read_class_folders(root: str | Path, label_map: dict[str, str] | None = None) -> ClassFolders:
    """Read every sub-folder of ``root`` as one class (images found recursively inside it).

    Folder names go through :func:`~maskwatch.data.labels.map_label`; a folder whose name is not
    a known class is reported with its image count (never silently dropped), an empty class folder
    is reported by name, and so are non-image files and images lying directly in ``root``.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: not a folder")
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise DatasetError(f"{root}: no class sub-folders (expected e.g. with_mask/ and without_mask/)")
    report = DatasetReport()
    samples: list[tuple[Path, str]] = []
    for path in sorted(root.iterdir()):
        if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
            report.add("image outside class folders (ignored)", path.name)
    for folder in folders:
        files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
        images = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
        for other in files:
            if other.suffix.lower() not in IMAGE_SUFFIXES:
                report.add("not an image file (ignored)", str(other.relative_to(root)))
        label = map_label(folder.name, label_map)
        if label is None:
            report.unknown_labels[folder.name] += len(images)
            report.add("unknown class folder (left out)", f"{folder.name}/ ({len(images)} images)")
            continue
        if not images:
            report.add("empty class folder", f"{folder.name}/")
            continue
        samples.extend((p, label) for p in images)
    return ClassFolders(samples=samples, report=report, root=root)
