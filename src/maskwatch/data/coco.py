"""COCO detection JSON: ``images``, ``annotations`` (``bbox`` = x, y, width, height in pixels)
and ``categories``. Images listed without annotations are kept as images without faces (COCO lists
every image explicitly); image files in the folder that the JSON does not list are reported."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import DatasetError
from ..images import IMAGE_SUFFIXES
from .dataset import AnnotatedImage, Dataset, DatasetReport, ImageBoxes, checked_box, image_size


def _load(json_path: Path) -> dict:
    try:
        data = json.loads(json_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DatasetError(f"{json_path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{json_path}: cannot read it ({exc})") from None
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{json_path}: malformed JSON ({exc})") from None
    if not isinstance(data, dict):
        raise DatasetError(f"{json_path}: not a COCO file (top level is not an object)")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise DatasetError(f"{json_path}: not a COCO file ('{key}' list missing)")
    return data


def read_coco(
    json_path: str | Path,
    images_dir: str | Path | None = None,
    label_map: dict[str, str] | None = None,
) -> Dataset:
    """Read a COCO JSON file. ``images_dir`` defaults to ``images/`` beside the JSON or one level up
    (``annotations/x.json`` + ``images/``), else the JSON's folder."""
    json_path = Path(json_path)
    data = _load(json_path)
    if images_dir is None:
        beside = [d / "images" for d in (json_path.parent, json_path.parent.parent) if (d / "images").is_dir()]
        images_dir = beside[0] if beside else json_path.parent
    images_dir = Path(images_dir)
    report = DatasetReport()
    categories: dict[int, str] = {}
    for cat in data["categories"]:
        if isinstance(cat, dict) and "id" in cat:
            categories[cat["id"]] = str(cat.get("name", cat["id"]))
        else:
            report.add("malformed category", str(cat)[:60])

    entries: dict[object, dict] = {}
    for img in data["images"]:
        if not isinstance(img, dict) or "id" not in img or not img.get("file_name"):
            report.add("malformed image entry", str(img)[:60])
            continue
        entries[img["id"]] = img
    per_image: dict[object, list[dict]] = {image_id: [] for image_id in entries}
    for ann in data["annotations"]:
        if not isinstance(ann, dict):
            report.add("malformed annotation", str(ann)[:60])
        elif ann.get("image_id") not in entries:
            report.add("annotation for unknown image id", f"annotation {ann.get('id')}: image_id {ann.get('image_id')}")
        else:
            per_image[ann["image_id"]].append(ann)

    items: list[AnnotatedImage] = []
    listed: set[Path] = set()
    for image_id, img in entries.items():
        path = images_dir / img["file_name"]
        listed.add(path.resolve())
        if not path.is_file():
            report.add("annotation without image", str(img["file_name"]))
            continue
        width, height = img.get("width"), img.get("height")
        if not (isinstance(width, (int, float)) and isinstance(height, (int, float)) and width > 0 and height > 0):
            size = image_size(path)
            if size is None:
                report.add("unreadable image", str(img["file_name"]))
                continue
            width, height = size
            report.add("missing width/height, read from image", str(img["file_name"]))
        found = ImageBoxes(report, label_map)
        for ann in per_image[image_id]:
            where = f"{json_path.name}: annotation {ann.get('id')}"
            name = categories.get(ann.get("category_id"))
            if name is None:
                report.add("unknown category id", f"{where}: category_id {ann.get('category_id')}")
                continue
            bbox = ann.get("bbox")
            try:
                x, y, w, h = (float(v) for v in bbox)
            except (TypeError, ValueError):
                report.add("unreadable box", f"{where}: {bbox!r}"[:80])
                continue
            found.add(checked_box(report, where, x, y, x + w, y + h, int(width), int(height)), name)
        items.append(found.image(path, int(width), int(height)))
    if images_dir.is_dir():
        for path in sorted(images_dir.rglob("*")):
            if path.suffix.lower() in IMAGE_SUFFIXES and path.resolve() not in listed:
                report.add("image without annotation", str(path.relative_to(images_dir)))
    return Dataset(images=items, report=report, root=json_path, format="coco")
