"""Common in-memory form of annotated datasets, whatever file format they came from."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


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
