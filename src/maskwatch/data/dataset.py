"""Common in-memory form of annotated datasets, whatever file format they came from."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .labels import map_label


@dataclass
class AnnotatedImage:
    """Ground truth of one image: face boxes (x1, y1, x2, y2 pixels) with MaskWatch labels."""

    path: Path
    width: int
    height: int
    boxes: np.ndarray  # (N, 4) float32
    labels: list[str]  # MaskWatch labels (see data.labels); same length as boxes
    source_labels: list[str] = field(default_factory=list)  # names as written in the file

    @property
    def key(self) -> str:
        return self.path.stem


@dataclass
class DatasetReport:
    """Problems found while reading a dataset: counted by kind, with example files."""

    counts: Counter = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)
    unknown_labels: Counter = field(default_factory=Counter)

    def add(self, kind: str, detail: str) -> None:
        self.counts[kind] += 1
        self.examples.setdefault(kind, [])
        if len(self.examples[kind]) < 5:
            self.examples[kind].append(detail)

    def lines(self) -> list[str]:
        out = [f"{kind}: {n} (e.g. {'; '.join(self.examples.get(kind, []))})" for kind, n in sorted(self.counts.items())]
        if self.unknown_labels:
            names = ", ".join(f"{k} x{v}" for k, v in self.unknown_labels.most_common())
            out.append(f"unknown class names (boxes left out; map them with --label-map): {names}")
        return out

    def to_dict(self) -> dict:
        return {
            "counts": dict(self.counts),
            "examples": self.examples,
            "unknown_labels": dict(self.unknown_labels),
        }


@dataclass
class Dataset:
    images: list[AnnotatedImage]
    report: DatasetReport
    root: Path
    format: str

    def label_counts(self) -> Counter:
        return Counter(label for img in self.images for label in img.labels)

    def __len__(self) -> int:
        return len(self.images)


def checked_box(
    report: DatasetReport, where: str, x1: float, y1: float, x2: float, y2: float, width: int, height: int
) -> list[float] | None:
    """A box clipped to the image, or None (counted) when it is not finite or has no area left.

    ``where`` names the file (and line) for the report's examples. Every reader goes through
    here, so "box outside image" and "zero-area box" mean the same thing in every format.
    """
    if not np.isfinite([x1, y1, x2, y2]).all():
        report.add("unreadable box", where)
        return None
    cx1, cy1 = min(max(x1, 0.0), width), min(max(y1, 0.0), height)
    cx2, cy2 = min(max(x2, 0.0), width), min(max(y2, 0.0), height)
    if (cx1, cy1, cx2, cy2) != (x1, y1, x2, y2):
        report.add("box outside image (clipped)", where)
    if cx2 - cx1 <= 0 or cy2 - cy1 <= 0:
        report.add("zero-area box (dropped)", where)
        return None
    return [cx1, cy1, cx2, cy2]


def image_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from the image header, or None when the file cannot be opened as an image."""
    from PIL import Image

    from ..images import open_image

    try:
        with open_image(path, max_pixels=None) as im:
            return im.size
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None


@dataclass
class ImageBoxes:
    """Collects one image's boxes while a reader walks its annotation, mapping class names on the way."""

    report: DatasetReport
    label_map: dict[str, str] | None = None
    boxes: list[list[float]] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)

    def add(self, box: list[float] | None, name: str) -> None:
        """Keep ``box`` (already checked; None is skipped) when ``name`` maps to a MaskWatch label,
        else count the name as unknown."""
        if box is None:
            return
        label = map_label(name, self.label_map)
        if label is None:
            self.report.unknown_labels[name] += 1
            return
        self.boxes.append(box)
        self.labels.append(label)
        self.names.append(name)

    def image(self, path: Path, width: int, height: int) -> AnnotatedImage:
        return AnnotatedImage(path=path, width=width, height=height,
                              boxes=np.asarray(self.boxes, np.float32).reshape(-1, 4),
                              labels=self.labels, source_labels=self.names)
