"""Getting what an evaluation needs: the dataset's images, the split, and predictions (from a
detections JSONL or from running a detector + classifier), with every mismatch counted."""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from ..data.dataset import AnnotatedImage, Dataset, DatasetReport
from ..errors import InputError, MaskWatchError
from ..faces import Faces

from ..data.splits import SPLIT_FRACTIONS, dataset_splits  # noqa: F401  (re-exported)


def load_any_dataset(path: str | Path, fmt: str = "auto", label_map: dict[str, str] | None = None) -> Dataset:
    """VOC / YOLO / COCO through ``maskwatch.data.load_dataset``; VOC alone where that reader is absent."""
    try:
        from ..data import load_dataset  # type: ignore[attr-defined]
    except ImportError:
        if fmt not in ("auto", "voc"):
            raise MaskWatchError(f"{path}: format '{fmt}' needs maskwatch.data.load_dataset, "
                                 "which this build lacks; only VOC can be read") from None
        from ..data.voc import read_voc

        return read_voc(path, label_map)
    return load_dataset(path, format=fmt, label_map=label_map)


@dataclass
class Predictions:
    """Faces per image key, the ms each took where known, and what could not be used."""

    faces: dict[str, Faces] = field(default_factory=dict)
    ms: dict[str, float] = field(default_factory=dict)
    problems: DatasetReport = field(default_factory=DatasetReport)

    @property
    def median_ms(self) -> float:
        return float(statistics.median(self.ms.values())) if self.ms else float("nan")


def read_predictions_jsonl(path: str | Path, min_score: float = 0.0) -> Predictions:
    """Read the JSON Lines of ``maskwatch detect --json`` (one image per line, key = file stem),
    keeping faces with ``score >= min_score``.

    Malformed lines, lines reporting an error, and repeated images (first kept) are counted in
    ``problems``; they never become empty predictions.
    """
    path = Path(path)
    out = Predictions()
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(path, f"cannot read predictions ({exc})") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path.name}:{number}"
        try:
            record = json.loads(line)
            image = record["image"]
            if record.get("error"):
                out.problems.add("predictions line reporting an error (image left out)", f"{where} {image}")
                continue
            faces = Faces.from_records(record.get("faces") or [])
            faces = faces[faces.scores >= min_score]
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            out.problems.add("malformed predictions line (skipped)", f"{where}: {type(exc).__name__} {exc}")
            continue
        key = Path(str(image)).stem
        if key in out.faces:
            out.problems.add("image repeated in predictions (first line kept)", f"{where} {image}")
            continue
        out.faces[key] = faces
        if isinstance(record.get("ms"), (int, float)):
            out.ms[key] = float(record["ms"])
    return out


def read_split_file(path: str | Path) -> list[str]:
    """Image stems, one per line (blank lines and ``#`` comments skipped; a path or file name is reduced to its stem)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(path, f"cannot read split file ({exc})") from None
    return [Path(s).stem for s in (line.split("#", 1)[0].strip() for line in text.splitlines()) if s]


def select_images(dataset: Dataset, split_stems: Sequence[str] | None, limit: int | None,
                  problems: DatasetReport) -> list[AnnotatedImage]:
    """The dataset's images named in the split (all when None), the first ``limit`` of them."""
    images = list(dataset.images)
    if split_stems is not None:
        wanted = set(split_stems)
        have = {img.key for img in images}
        for stem in sorted(wanted - have):
            problems.add("split-file stem not in dataset", stem)
        images = [img for img in images if img.key in wanted]
    return images[:limit] if limit else images


def reconcile(images: Sequence[AnnotatedImage], predictions: Predictions) -> None:
    """Count (and drop) predictions naming images the dataset (or split) lacks; count images without predictions."""
    keys = {img.key for img in images}
    for key in sorted(set(predictions.faces) - keys):
        predictions.problems.add("predicted image not in dataset (ignored)", key)
        del predictions.faces[key]
        predictions.ms.pop(key, None)
    for img in images:
        if img.key not in predictions.faces:
            predictions.problems.add("dataset image without predictions (left out)", img.path.name)


def run_system(images: Sequence[AnnotatedImage], predict: Callable[[np.ndarray], Faces],
               progress: Callable[[Iterable[Any]], Iterable[Any]] = iter) -> Predictions:
    """Run ``predict`` (a pipeline or a detector's ``detect``) on every image; ms excludes decoding.

    Unreadable images are counted and left out, the rest go on.
    """
    from ..images import read_image

    out = Predictions()
    for img in progress(images):
        try:
            bgr = read_image(img.path)
        except InputError as exc:
            out.problems.add("unreadable image (left out)", f"{exc}")
            continue
        start = time.perf_counter()
        out.faces[img.key] = predict(bgr)
        out.ms[img.key] = (time.perf_counter() - start) * 1000
    return out


def problems_dict(report: DatasetReport) -> dict[str, dict]:
    return {kind: {"count": n, "examples": report.examples.get(kind, [])} for kind, n in sorted(report.counts.items())}
