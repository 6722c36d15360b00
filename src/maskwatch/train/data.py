"""Training data: face crops from VOC scenes and folder-per-class sets, split reproducibly.

Crops are stored once at ``STORE_SIZE`` with extra context, so augmentation can jitter the
framing and still cut the exact inference crop (``crop_faces`` with the model's context) from
the centre.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..classifier.crop import CROP_CONTEXT, CROP_SIZE, crop_faces, face_box_in_crop
from ..errors import DatasetError, InputError
from ..faces import LABEL_INDEX, LABELS, Label
from ..images import read_image
from ..data.splits import SPLIT_FRACTIONS, assign_splits, dataset_splits, dhash

STORE_SIZE = 128
#: context of the stored crop such that its central CROP_SIZE pixels are the inference crop
STORE_CONTEXT = (1 + CROP_CONTEXT) * STORE_SIZE / CROP_SIZE - 1


@dataclass
class SourceSpec:
    """One training source given on the command line: ``KIND:PATH[:WEIGHT]``."""

    kind: str  # "voc" | "folders" | "synth"
    path: Path
    weight: float = 1.0

    @classmethod
    def parse(cls, kind: str, text: str) -> "SourceSpec":
        path, _, weight = text.rpartition(":") if text.rpartition(":")[2].replace(".", "", 1).isdigit() else (text, "", "")
        return cls(kind, Path(path), float(weight) if weight else 1.0)


@dataclass
class FaceSet:
    """Face crops with labels and where they came from."""

    crops: np.ndarray  # (N, STORE_SIZE, STORE_SIZE, 3) uint8 BGR
    labels: np.ndarray  # (N,) int64 in LABELS order
    splits: np.ndarray  # (N,) str
    weights: np.ndarray  # (N,) float32 sampling weight of the source
    origins: list[str] = field(default_factory=list)  # "path#box-index"
    sources: np.ndarray | None = None  # (N,) str source name

    def subset(self, mask: np.ndarray) -> "FaceSet":
        return FaceSet(self.crops[mask], self.labels[mask], self.splits[mask], self.weights[mask],
                       [o for o, k in zip(self.origins, mask) if k], None if self.sources is None else self.sources[mask])

    @staticmethod
    def concat(parts: list["FaceSet"]) -> "FaceSet":
        parts = [p for p in parts if len(p.labels)]
        if not parts:
            raise DatasetError("no training faces found in the given sources")
        return FaceSet(
            np.concatenate([p.crops for p in parts]), np.concatenate([p.labels for p in parts]),
            np.concatenate([p.splits for p in parts]), np.concatenate([p.weights for p in parts]),
            [o for p in parts for o in p.origins], np.concatenate([p.sources for p in parts]),
        )

    def summary(self) -> dict:
        out: dict = {}
        for split in sorted(set(self.splits)):
            m = self.splits == split
            out[split] = {LABELS[k]: int(v) for k, v in sorted(Counter(self.labels[m].tolist()).items())}
        return out


def _cache_file(cache: Path | None, spec: SourceSpec, seed: int, extra: str = "") -> Path | None:
    if cache is None:
        return None
    key = hashlib.sha256(f"{spec.kind}|{spec.path.resolve()}|{seed}|{STORE_SIZE}|{STORE_CONTEXT:.4f}|{extra}|v2".encode()).hexdigest()[:16]
    return cache / f"{spec.kind}-{spec.path.name}-{key}.npz"


def _load_cached(path: Path | None, weight: float, warn) -> FaceSet | None:
    """Cached crops of a source; the dataset problems found when they were made are told again."""
    if path is None or not path.is_file():
        return None
    z = np.load(path, allow_pickle=False)
    for line in json.loads(str(z["notes"])) if "notes" in z.files else []:
        warn(line)
    n = len(z["labels"])
    return FaceSet(z["crops"], z["labels"], z["splits"], np.full(n, weight, np.float32),
                   json.loads(str(z["origins"])), z["sources"])


def _save_cached(path: Path | None, faces: FaceSet, notes: list[str]) -> None:
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, crops=faces.crops, labels=faces.labels, splits=faces.splits,
             origins=json.dumps(faces.origins), sources=faces.sources, notes=json.dumps(notes))


def _cached_faces(path: Path | None, weight: float, warn, build) -> FaceSet:
    """The cached crops at ``path``, or ``build(warn)`` saved there with the warnings it gave."""
    cached = _load_cached(path, weight, warn)
    if cached is not None:
        return cached
    notes: list[str] = []

    def recording(line: str) -> None:
        notes.append(line)
        warn(line)

    faces = build(recording)
    _save_cached(path, faces, notes)
    return faces


def voc_faces(spec: SourceSpec, seed: int, warn, cache: Path | None = None,
              label_map: dict[str, str] | None = None) -> FaceSet:
    """Crops of every labelled box of a VOC dataset; the split is per image (near-duplicates together)."""
    return _cached_faces(_cache_file(cache, spec, seed), spec.weight, warn,
                         lambda log: _crop_voc(spec, seed, log, label_map))


def _crop_voc(spec: SourceSpec, seed: int, warn, label_map: dict[str, str] | None) -> FaceSet:
    from ..data.voc import read_voc

    ds = read_voc(spec.path, label_map)
    for line in ds.report.lines():
        warn(f"{spec.path}: {line}")
    split_of = {key: name for name, keys in dataset_splits(ds, seed).items() for key in keys}
    splits = [split_of[im.key] for im in ds.images]
    crops, labels, split_col, origins = [], [], [], []
    for im, split in zip(ds.images, splits):
        if not len(im.boxes):
            continue
        try:
            image = read_image(im.path)
        except InputError as exc:
            warn(str(exc))
            continue
        crops.append(crop_faces(image, im.boxes, STORE_SIZE, STORE_CONTEXT))
        labels += [LABEL_INDEX[lab] for lab in im.labels]
        split_col += [split] * len(im.boxes)
        origins += [f"{im.path}#{i}" for i in range(len(im.boxes))]
    n = len(labels)
    return FaceSet(np.concatenate(crops) if crops else np.zeros((0, STORE_SIZE, STORE_SIZE, 3), np.uint8),
                   np.asarray(labels, np.int64), np.asarray(split_col), np.full(n, spec.weight, np.float32),
                   origins, np.full(n, f"voc:{spec.path.name}"))


def folder_faces(spec: SourceSpec, seed: int, warn, detector=None, cache: Path | None = None,
                 label_map: dict[str, str] | None = None, exclude: set[str] | None = None) -> FaceSet:
    """Crops from a folder-per-class dataset (``ROOT/<class>/*.jpg``); each image is one face.

    The face box comes from the detector (largest face), so the framing matches inference;
    when it finds none, the whole image is taken as the face. Split by exact-duplicate groups
    (same dHash) so re-encoded copies never straddle splits. ``exclude`` holds source files that
    were used to synthesise masked faces: they never serve as unmasked examples.
    """
    cache_path = _cache_file(cache, spec, seed, hashlib.sha256(str(sorted(exclude)).encode()).hexdigest() if exclude else "[]")
    return _cached_faces(cache_path, spec.weight, warn,
                         lambda log: _crop_folders(spec, seed, log, detector, label_map, exclude))


def _crop_folders(spec: SourceSpec, seed: int, warn, detector, label_map, exclude) -> FaceSet:
    from ..data.folders import read_class_folders

    folders = read_class_folders(spec.path, label_map)
    for line in folders.report.lines():
        warn(f"{spec.path}: {line}")
    items: list[tuple[Path, int]] = []
    left_out = 0
    for path, label in folders:
        if exclude and label == Label.NO_MASK and str(Path(path).resolve()) in exclude:
            left_out += 1
            continue
        items.append((Path(path), LABEL_INDEX[label]))
    if left_out:
        warn(f"{spec.path}: {left_out} images left out as unmasked examples (sources of synthetic masks)")
    if not items:
        raise DatasetError(f"{spec.path}: no class folders with images")
    return _crop_face_images(items, spec, seed, warn, detector)


def synth_plan(root: Path, seed: int, share: float) -> tuple[list[tuple[Path, int, list | None]], set[str], list]:
    """Which synthetic faces to train on, and the real faces they were made from.

    A share of the *source photos* (chosen by seed) gives its synthetic faces to training; the faces
    they were made from are then kept out of the unmasked examples (a masked face and its unmasked
    original are the same face). The other photos stay available as real unmasked examples.
    Returns (items as (image, label index, face box), source photos used, (photo, box) of each source face).
    """
    manifest = root / "manifest.jsonl"
    if not manifest.is_file():
        raise DatasetError(f"{root}: not an output of `maskwatch synth` (no manifest.jsonl)")
    rows = []
    for n, line in enumerate(manifest.read_text().splitlines(), 1):
        try:
            row = json.loads(line)
            rows.append((row["source"], row["output"], row["label"], row.get("face_box")))
        except (ValueError, KeyError):
            raise DatasetError(f"{manifest}:{n}: malformed manifest line") from None
    sources = sorted({r[0] for r in rows})
    chosen = {s for s, pick in zip(sources, assign_splits(sources, {"use": share, "keep": 1 - share}, seed)) if pick == "use"}
    items = [(root / out, LABEL_INDEX[label], box) for src, out, label, box in rows if src in chosen and label in LABEL_INDEX]
    source_faces = [(str(Path(src).resolve()), box) for src, _, _, box in rows if src in chosen]
    return items, {str(Path(s).resolve()) for s in chosen}, source_faces


def drop_source_faces(faces: FaceSet, source_faces: list, min_iou: float = 0.5) -> tuple[FaceSet, int]:
    """Remove the unmasked faces of annotated scenes that synthetic masks were made from."""
    from ..boxes import iou_matrix
    from ..data.voc import read_voc

    by_image: dict[str, list] = {}
    for path, box in source_faces:
        if box is not None:
            by_image.setdefault(path, []).append(box)
    if not by_image:
        return faces, 0
    keep = np.ones(len(faces.labels), bool)
    boxes_of: dict[str, np.ndarray] = {}
    for i, origin in enumerate(faces.origins):
        path, _, index = origin.rpartition("#")
        resolved = str(Path(path).resolve())
        if resolved not in by_image or faces.labels[i] != LABEL_INDEX[Label.NO_MASK]:
            continue
        if resolved not in boxes_of:  # the boxes of that scene, in the order the crops were made
            root = Path(path).parent.parent
            boxes_of.update({str(im.path.resolve()): im.boxes for im in read_voc(root).images})
        box = boxes_of[resolved][int(index)]
        keep[i] = not (iou_matrix(box[None], np.asarray(by_image[resolved])) >= min_iou).any()
    return faces.subset(keep), int((~keep).sum())


def synth_faces(spec: SourceSpec, items: list[tuple[Path, int, list | None]], seed: int, warn, detector=None,
                cache: Path | None = None) -> FaceSet:
    """Crops of synthetic faces; they always go to the train split (held-out numbers stay on real faces)."""
    if not items:
        raise DatasetError(f"{spec.path}: no synthetic faces selected")
    cache_path = _cache_file(cache, spec, seed, hashlib.sha256(str(items).encode()).hexdigest())
    cached = _cached_faces(cache_path, spec.weight, warn, lambda log: _crop_face_images(items, spec, seed, log, detector))
    cached.splits[:] = "train"
    return cached


def _crop_face_images(items: list[tuple], spec: SourceSpec, seed: int, warn, detector) -> FaceSet:
    """Crop one face per image and split by exact-duplicate groups. Items are (image, label) or
    (image, label, box): without a box the face is located by ``detector``."""
    from rich.progress import track

    crops, labels, origins, hashes = [], [], [], []
    for path, label, *rest in track(items, description=f"cropping {spec.path.name}", transient=True):
        box = rest[0] if rest else None
        try:
            image = read_image(path)
        except InputError as exc:
            warn(str(exc))
            continue
        located = face_box_in_crop(image, detector) if box is None else np.asarray([box], np.float32)
        crops.append(crop_faces(image, located, STORE_SIZE, STORE_CONTEXT)[0])
        labels.append(label)
        origins.append(str(path) if box is None else f"{path}#{'_'.join(f'{v:.0f}' for v in box)}")
        hashes.append(dhash(path))
    if not crops:
        raise DatasetError(f"{spec.path}: no readable images")
    splits = _image_splits(origins, hashes, spec.path, seed)
    n = len(labels)
    return FaceSet(np.stack(crops), np.asarray(labels, np.int64), np.asarray(splits),
                   np.full(n, spec.weight, np.float32), origins, np.full(n, f"{spec.kind}:{spec.path.name}"))


def apply_relabels(faces: FaceSet, fixes: dict[str, str], warn, info=None) -> FaceSet:
    """Faces with corrected labels (``fixes`` from ``data.labels.read_relabels``); ``drop`` removes a face.

    Each key is matched against the end of a face's origin at a path boundary; keys that match
    nothing are reported, since a stale correction file would otherwise fail silently.
    """
    from ..data.labels import DROP

    if not fixes:
        return faces
    origins = ["/" + o.replace("\\", "/") for o in faces.origins]
    by_name: dict[str, list[int]] = {}
    for i, origin in enumerate(origins):
        by_name.setdefault(origin.rsplit("/", 1)[-1], []).append(i)
    labels, keep = faces.labels.copy(), np.ones(len(faces.labels), bool)
    unmatched, changed, dropped = [], 0, 0
    for key, label in fixes.items():
        hits = [i for i in by_name.get(key.rsplit("/", 1)[-1], [])
                if origins[i].endswith("/" + key.lstrip("/"))]
        if not hits:
            unmatched.append(key)
        for i in hits:
            if label == DROP:
                keep[i] = False
                dropped += 1
            elif LABEL_INDEX[label] != labels[i]:
                labels[i] = LABEL_INDEX[label]
                changed += 1
    (info or warn)(f"label corrections: {changed} faces relabelled, {dropped} left out")
    if unmatched:
        warn(f"label corrections: {len(unmatched)} entries match no face (e.g. {'; '.join(unmatched[:3])})")
    out = FaceSet(faces.crops, labels, faces.splits, faces.weights, faces.origins, faces.sources)
    return out.subset(keep)


def split_keys(paths: list[str], root: Path) -> list[str]:
    """Split keys of images in a folder dataset: their paths relative to the dataset root, so the split
    does not depend on how the root was spelled on the command line."""
    base = root.resolve()
    keys = []
    for p in paths:
        path = Path(p.split("#", 1)[0]).resolve()
        try:
            keys.append(path.relative_to(base).as_posix())
        except ValueError:
            keys.append(path.as_posix())
    return keys


def _image_splits(paths: list[str], hashes: list[int], root: Path, seed: int) -> list[str]:
    """Split per image of a folder dataset: keyed by relative path, exact-duplicate (same dHash) groups together."""
    groups = {h: i for i, h in enumerate(dict.fromkeys(hashes))}
    return assign_splits(split_keys(paths, root), SPLIT_FRACTIONS, seed, [groups[h] for h in hashes])


def folder_split(root: str | Path, seed: int = 0, label_map: dict[str, str] | None = None) -> dict[str, str]:
    """Split of every image of a folder-per-class dataset, as `maskwatch train` assigns it (relative path -> split)."""
    from ..data.folders import read_class_folders

    root = Path(root)
    paths = [str(p) for p, _ in read_class_folders(root, label_map)]
    return dict(zip(split_keys(paths, root), _image_splits(paths, [dhash(p) for p in paths], root, seed)))


def center_crop(store_crops: np.ndarray) -> np.ndarray:
    """The inference crop (CROP_SIZE at CROP_CONTEXT) from stored crops, without jitter."""
    off = (STORE_SIZE - CROP_SIZE) // 2
    return store_crops[:, off: off + CROP_SIZE, off: off + CROP_SIZE]
