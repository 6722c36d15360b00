"""`Faces`: the one data type for detected faces.

Every stage fills in more of the same object, in the spirit of `supervision.Detections`:
a detector sets ``boxes``, ``scores`` and maybe ``landmarks``; the classifier sets ``probs``;
a tracker sets ``track_ids``. Drawing, storage, evaluation and the API read it.
Arrays are column-aligned: row ``i`` of every array describes face ``i``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, Iterator

import numpy as np

class Label(StrEnum):
    """The three mask states. Members are strings (``Label.NO_MASK == "no_mask"``, ``str()``, f-strings
    and JSON give ``"no_mask"``), so records, stored rows and the API keep the plain names."""

    MASK = "mask"
    NO_MASK = "no_mask"
    INCORRECT = "incorrect"


#: The three mask states, in the order of the classifier's output columns.
LABELS: tuple[Label, ...] = tuple(Label)
LABEL_INDEX: dict[str, int] = {name: i for i, name in enumerate(LABELS)}


def _as_array(value: Any, shape_tail: tuple[int, ...], dtype: Any) -> np.ndarray:
    arr = np.asarray(value, dtype=dtype)
    if arr.size == 0:
        return arr.reshape((0, *shape_tail))
    return arr.reshape((-1, *shape_tail))


@dataclass
class Faces:
    """Faces found in one image (or one video frame).

    boxes: (N, 4) float32, ``x1, y1, x2, y2`` in pixels of the original image.
    scores: (N,) float32 face confidence.
    landmarks: (N, K, 2) float32 or None. The 5-point detectors (CenterFace, YuNet, MTCNN) give, in
        image coordinates: eye on the image's left, other eye, nose tip, mouth corner left, mouth corner right.
    probs: (N, 3) float32 class probabilities in ``LABELS`` order, or None before classification.
    track_ids: (N,) int64 or None before tracking.
    """

    boxes: np.ndarray
    scores: np.ndarray
    landmarks: np.ndarray | None = None
    probs: np.ndarray | None = None
    track_ids: np.ndarray | None = None
    data: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.boxes = _as_array(self.boxes, (4,), np.float32)
        self.scores = _as_array(self.scores, (), np.float32).reshape(-1)
        n = len(self.boxes)
        if len(self.scores) != n:
            raise ValueError(f"Faces: {n} boxes but {len(self.scores)} scores")
        if self.landmarks is not None:
            lm = np.asarray(self.landmarks, dtype=np.float32)
            self.landmarks = lm.reshape((n, -1, 2)) if lm.size or n else lm.reshape((0, 5, 2))
        if self.probs is not None:
            self.probs = _as_array(self.probs, (len(LABELS),), np.float32)
            if len(self.probs) != n:
                raise ValueError(f"Faces: {n} boxes but {len(self.probs)} probability rows")
        if self.track_ids is not None:
            self.track_ids = np.asarray(self.track_ids, dtype=np.int64).reshape(-1)
            if len(self.track_ids) != n:
                raise ValueError(f"Faces: {n} boxes but {len(self.track_ids)} track ids")

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def empty(cls, with_landmarks: bool = False) -> "Faces":
        return cls(
            boxes=np.zeros((0, 4), np.float32),
            scores=np.zeros((0,), np.float32),
            landmarks=np.zeros((0, 5, 2), np.float32) if with_landmarks else None,
        )

    @classmethod
    def from_records(cls, records: list[dict[str, Any]]) -> "Faces":
        """Inverse of :meth:`to_records` (reads the ``faces`` list of a detections JSON line)."""
        if not records:
            return cls.empty()
        boxes = np.asarray([r["box"] for r in records], np.float32)
        scores = np.asarray([r.get("score", 1.0) for r in records], np.float32)
        probs = None
        if all("probs" in r and r["probs"] for r in records):
            probs = np.asarray([[float(r["probs"].get(name, 0.0)) for name in LABELS] for r in records], np.float32)
        elif all(r.get("label") in LABEL_INDEX for r in records):
            probs = np.eye(len(LABELS), dtype=np.float32)[[LABEL_INDEX[r["label"]] for r in records]]
        landmarks = None
        if all(r.get("landmarks") for r in records):
            landmarks = np.asarray([r["landmarks"] for r in records], np.float32)
        track_ids = None
        if all(r.get("track_id") is not None for r in records):
            track_ids = np.asarray([r["track_id"] for r in records], np.int64)
        return cls(boxes=boxes, scores=scores, landmarks=landmarks, probs=probs, track_ids=track_ids)

    # -- container protocol ------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.boxes)

    def __getitem__(self, index: Any) -> "Faces":
        """Select faces by an int, a slice, an index array or a boolean mask; always returns ``Faces``."""
        if isinstance(index, (int, np.integer)):
            index = [int(index)]

        def pick(arr: np.ndarray | None) -> np.ndarray | None:
            return None if arr is None else arr[index]

        return Faces(
            boxes=self.boxes[index],
            scores=self.scores[index],
            landmarks=pick(self.landmarks),
            probs=pick(self.probs),
            track_ids=pick(self.track_ids),
            data={k: v[index] for k, v in self.data.items()},
        )

    def __iter__(self) -> Iterator["Faces"]:
        for i in range(len(self)):
            yield self[i]

    def with_(self, **changes: Any) -> "Faces":
        """A copy with some fields replaced (``faces.with_(probs=p)``)."""
        return replace(self, **changes)

    # -- derived values ------------------------------------------------------------------------
    @property
    def label_ids(self) -> np.ndarray | None:
        return None if self.probs is None else self.probs.argmax(axis=1)

    @property
    def labels(self) -> list[Label] | None:
        ids = self.label_ids
        return None if ids is None else [LABELS[i] for i in ids]

    @property
    def label_scores(self) -> np.ndarray | None:
        return None if self.probs is None else self.probs.max(axis=1)

    @property
    def widths(self) -> np.ndarray:
        return np.asarray(self.boxes[:, 2] - self.boxes[:, 0])

    @property
    def heights(self) -> np.ndarray:
        return np.asarray(self.boxes[:, 3] - self.boxes[:, 1])

    def counts(self) -> dict[str, int]:
        """Number of faces per label (all zero before classification)."""
        out: dict[str, int] = {name: 0 for name in LABELS}
        for name in self.labels or []:
            out[name] += 1
        return out

    def to_records(self, ndigits: int = 4) -> list[dict[str, Any]]:
        """One JSON-ready dict per face, in the shape the ``detect --json`` lines use."""
        records = []
        for i in range(len(self)):
            rec: dict[str, Any] = {
                "box": [round(float(v), 2) for v in self.boxes[i]],
                "score": round(float(self.scores[i]), ndigits),
            }
            if self.probs is not None:
                p = self.probs[i]
                k = int(p.argmax())
                rec["label"] = LABELS[k]
                rec["label_score"] = round(float(p[k]), ndigits)
                rec["probs"] = {name: round(float(p[j]), ndigits) for j, name in enumerate(LABELS)}
            rec["landmarks"] = (
                None
                if self.landmarks is None
                else [[round(float(x), 2), round(float(y), 2)] for x, y in self.landmarks[i]]
            )
            if self.track_ids is not None:
                rec["track_id"] = int(self.track_ids[i])
            records.append(rec)
        return records


def detection_record(faces: Faces, image: str, width: int, height: int, ms: float) -> dict[str, Any]:
    """The JSON record of one image's detection: ``image`` (a path, or an upload's name), its ``width``
    and ``height`` in pixels, ``ms`` spent on it, ``faces`` (:meth:`Faces.to_records`) and ``counts``.
    One shape for ``maskwatch detect --json`` lines, ``maskwatch batch`` output and ``POST /v1/detect``."""
    return {"image": str(image), "width": int(width), "height": int(height), "ms": round(float(ms), 2),
            "faces": faces.to_records(), "counts": faces.counts()}
