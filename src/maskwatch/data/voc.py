"""Pascal VOC reader: images plus one XML file per image."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path


from ..errors import DatasetError
from ..images import IMAGE_SUFFIXES
from .dataset import AnnotatedImage, Dataset, DatasetReport, ImageBoxes, checked_box, image_size

_IMAGE_DIRS = ("images", "JPEGImages", "imgs", ".")
_XML_DIRS = ("annotations", "Annotations", "labels", ".")


def _first_dir(root: Path, names: tuple[str, ...], pattern: str) -> Path | None:
    for name in names:
        d = root / name
        if d.is_dir() and any(d.glob(pattern)):
            return d
    return None


def _text(node: ET.Element, path: str) -> str | None:
    found = node.find(path)
    return None if found is None or found.text is None else found.text.strip()


def read_voc(root: str | Path, label_map: dict[str, str] | None = None) -> Dataset:
    """Read a VOC folder (``images/`` + ``annotations/``, ``JPEGImages/`` + ``Annotations/``,
    or both in one folder). Problems are collected in ``dataset.report``; an image is kept with
    the boxes that could be read. Box coordinates are clipped to the image; boxes with zero area
    after clipping are dropped and counted.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: not a folder")
    xml_dir = _first_dir(root, _XML_DIRS, "*.xml")
    if xml_dir is None:
        raise DatasetError(f"{root}: no VOC XML files found (looked in {', '.join(_XML_DIRS)})")
    image_dir = _first_dir(root, _IMAGE_DIRS, "*.*") or xml_dir
    images_by_stem = {p.stem: p for p in sorted(image_dir.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES}
    report = DatasetReport()
    items: list[AnnotatedImage] = []
    seen: set[str] = set()
    for xml_path in sorted(xml_dir.glob("*.xml")):
        try:
            tree = ET.parse(xml_path).getroot()
        except (ET.ParseError, ValueError, LookupError) as exc:  # also an unknown encoding="..."
            report.add("malformed XML", f"{xml_path.name}: {exc}")
            continue
        except OSError as exc:  # a folder named x.xml, permission denied
            report.add("unreadable annotation", f"{xml_path.name}: {exc.strerror or exc}")
            continue
        filename = _text(tree, "filename") or xml_path.stem
        image_path = images_by_stem.get(Path(filename).stem) or images_by_stem.get(xml_path.stem)
        if image_path is None:
            report.add("annotation without image", xml_path.name)
            continue
        seen.add(image_path.stem)
        header_size = image_size(image_path)
        if header_size is None:  # 0 bytes, corrupt, not a supported format
            report.add("unreadable image", image_path.name)
            continue
        try:
            width = int(float(_text(tree, "size/width") or 0))
            height = int(float(_text(tree, "size/height") or 0))
        except (ValueError, OverflowError):  # "abc", "inf", "nan"
            width = height = 0
        if width <= 0 or height <= 0:
            width, height = header_size
            report.add("missing <size>, read from image", xml_path.name)
        found = ImageBoxes(report, label_map)
        for obj in tree.findall("object"):
            name = _text(obj, "name") or ""
            try:
                x1, y1, x2, y2 = (float(_text(obj, f"bndbox/{k}") or "nan") for k in ("xmin", "ymin", "xmax", "ymax"))
            except ValueError:
                report.add("unreadable box", xml_path.name)
                continue
            found.add(checked_box(report, xml_path.name, x1, y1, x2, y2, width, height), name)
        items.append(found.image(image_path, width, height))
    for stem, path in images_by_stem.items():
        if stem not in seen:
            report.add("image without annotation", path.name)
    return Dataset(images=items, report=report, root=root, format="voc")
