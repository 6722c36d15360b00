"""YOLO detection folders: ``images/`` and ``labels/`` side by side, one ``.txt`` per image.

Each label line is ``class cx cy w h`` with coordinates normalised to [0, 1]. Class names come
from the ``class_names`` argument, else ``data.yaml`` (``names`` as a list or an id->name map),
else ``classes.txt`` (one name per line, in the root or in ``labels/``). Split sub-folders
(``images/train`` with ``labels/train``) are mirrored.

An image with no label file is reported ("image without annotation") and left out, since a
missing file more often means a lost annotation than an image without faces; an empty label
file is an image without faces and is kept.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from ..errors import DatasetError
from ..images import IMAGE_SUFFIXES
from .dataset import AnnotatedImage, Dataset, DatasetReport, ImageBoxes, checked_box, image_size


def _names_from_yaml(path: Path) -> list[str]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise DatasetError(f"{path}: cannot read it as YAML ({str(exc).splitlines()[0]})") from None
    names = data.get("names") if isinstance(data, dict) else None
    if isinstance(names, dict):
        try:
            ids = sorted(int(k) for k in names)
        except ValueError:
            raise DatasetError(f"{path}: 'names' keys must be class ids (0, 1, ...)") from None
        if ids != list(range(len(ids))):
            raise DatasetError(f"{path}: 'names' ids must run 0..{len(ids) - 1}, got {ids}")
        return [str(names[k] if k in names else names[str(k)]) for k in ids]
    if isinstance(names, list) and names:
        return [str(n) for n in names]
    raise DatasetError(f"{path}: no 'names' list of class names")


def find_class_names(root: Path) -> list[str]:
    for candidate in (root / "data.yaml", root / "dataset.yaml"):
        if candidate.is_file():
            return _names_from_yaml(candidate)
    for candidate in (root / "classes.txt", root / "labels" / "classes.txt", root / "obj.names"):
        if candidate.is_file():
            names = [line.strip() for line in candidate.read_text(encoding="utf-8", errors="replace").splitlines()]
            names = [n for n in names if n]
            if names:
                return names
            raise DatasetError(f"{candidate}: no class names in it")
    raise DatasetError(f"{root}: YOLO class names not found (give data.yaml with 'names', or classes.txt)")


def _read_label_file(
    label_path: Path, where: str, class_names: Sequence[str], width: int, height: int,
    label_map: dict[str, str] | None, report: DatasetReport,
) -> ImageBoxes:
    found = ImageBoxes(report, label_map)
    try:
        text = label_path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        report.add("unreadable label file", f"{where}: {exc}")
        return found
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        at = f"{where}:{number}"
        try:
            if len(fields) != 5:
                raise ValueError
            class_id, cx, cy, w, h = int(fields[0]), *(float(v) for v in fields[1:])
        except ValueError:
            report.add("malformed label line", f"{at}: {line.strip()[:60]!r}")
            continue
        if not 0 <= class_id < len(class_names):
            report.add("class id out of range", f"{at}: {class_id} (classes 0..{len(class_names) - 1})")
            continue
        x1, y1 = (cx - w / 2) * width, (cy - h / 2) * height
        found.add(checked_box(report, at, x1, y1, x1 + w * width, y1 + h * height, width, height), class_names[class_id])
    return found


def read_yolo(
    root: str | Path,
    class_names: Sequence[str] | None = None,
    label_map: dict[str, str] | None = None,
) -> Dataset:
    """Read a YOLO folder; problems go to ``dataset.report`` (see the module docstring)."""
    root = Path(root)
    images_dir, labels_dir = root / "images", root / "labels"
    if not images_dir.is_dir() or not labels_dir.is_dir():
        raise DatasetError(f"{root}: a YOLO folder needs images/ and labels/ sub-folders")
    names = list(class_names) if class_names else find_class_names(root)
    report = DatasetReport()
    items: list[AnnotatedImage] = []
    images = sorted(p for p in images_dir.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    used_labels: set[Path] = set()
    for image_path in images:
        relative = image_path.relative_to(images_dir)
        label_path = (labels_dir / relative).with_suffix(".txt")
        if not label_path.is_file():
            report.add("image without annotation", str(relative))
            continue
        used_labels.add(label_path)
        size = image_size(image_path)
        if size is None:
            report.add("unreadable image", str(relative))
            continue
        where = str(label_path.relative_to(root))
        found = _read_label_file(label_path, where, names, *size, label_map, report)
        items.append(found.image(image_path, *size))
    for label_path in sorted(labels_dir.rglob("*.txt")):
        if label_path not in used_labels and label_path.name != "classes.txt":
            report.add("annotation without image", str(label_path.relative_to(root)))
    return Dataset(images=items, report=report, root=root, format="yolo")
