"""Pascal VOC: images plus one XML file per image, read (:func:`read_voc`, :func:`read_voc_file`) and
written (:func:`write_voc`, :meth:`VocAnnotation.to_xml`).

Only what MaskWatch uses is kept: the image's file name and size, and each object's class name and
box (``xmin ymin xmax ymax`` in pixels). Other elements (``pose``, ``truncated``, ``difficult``,
``source``) are not read and not written.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from ..errors import DatasetError
from ..images import IMAGE_SUFFIXES
from .dataset import AnnotatedImage, Dataset, DatasetReport, ImageBoxes, checked_box, image_size

#: folders searched, in order, for the images and for the XML files of a VOC folder
IMAGE_DIRS = ("images", "JPEGImages", "imgs", ".")
XML_DIRS = ("annotations", "Annotations", "labels", ".")
_BOX_KEYS = ("xmin", "ymin", "xmax", "ymax")
#: characters XML 1.0 cannot hold, even escaped
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


@dataclass(frozen=True)
class VocObject:
    """One annotated object: its class name as written in the file and its box in pixels
    (``nan`` for a coordinate that is missing or not a number)."""

    name: str
    box: tuple[float, float, float, float]


@dataclass(frozen=True)
class VocAnnotation:
    """The annotation of one image. ``filename`` is None when the file names none; ``width`` and
    ``height`` are 0 when its ``<size>`` is missing or unreadable."""

    filename: str | None
    width: int
    height: int
    objects: tuple[VocObject, ...] = field(default_factory=tuple)
    depth: int = 3

    @classmethod
    def from_image(cls, image: AnnotatedImage) -> "VocAnnotation":
        """The annotation of a dataset image, under its names as written in its file
        (``source_labels``) when it has them, else its MaskWatch labels."""
        names = image.source_labels if len(image.source_labels) == len(image.labels) else image.labels
        objects = tuple(VocObject(str(name), _box(box)) for name, box in zip(names, image.boxes))
        return cls(filename=image.path.name, width=int(image.width), height=int(image.height), objects=objects)

    @classmethod
    def from_xml(cls, text: str | bytes) -> "VocAnnotation":
        """Parse VOC XML; ``xml.etree.ElementTree.ParseError`` when it is not well-formed."""
        return _annotation(ET.fromstring(text))

    def to_xml(self) -> str:
        """The annotation as VOC XML (a string; names are escaped, e.g. ``&`` as ``&amp;``). ValueError
        naming the value when a name holds a character XML cannot carry (a control character)."""
        root = ET.Element("annotation")
        if self.filename is not None:
            ET.SubElement(root, "filename").text = _xml_text(self.filename, "file name")
        size = ET.SubElement(root, "size")
        for key, value in (("width", self.width), ("height", self.height), ("depth", self.depth)):
            ET.SubElement(size, key).text = str(int(value))
        for obj in self.objects:
            node = ET.SubElement(root, "object")
            ET.SubElement(node, "name").text = _xml_text(obj.name, "class name")
            box = ET.SubElement(node, "bndbox")
            for key, coordinate in zip(_BOX_KEYS, obj.box):
                ET.SubElement(box, key).text = _number(coordinate)
        ET.indent(root)
        return "<?xml version='1.0' encoding='utf-8'?>\n" + ET.tostring(root, encoding="unicode") + "\n"


def write_voc(path: str | Path, annotation: VocAnnotation) -> Path:
    """Write ``annotation`` as a VOC XML file (UTF-8; parent folders made). ValueError for a name XML
    cannot carry, :class:`~maskwatch.errors.InputError` naming the file when it cannot be written."""
    from ..errors import InputError

    target = Path(path)
    text = annotation.to_xml()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InputError(target, f"cannot write annotation ({exc.strerror or exc})") from None
    return target


def read_voc_file(path: str | Path) -> VocAnnotation:
    """Read one VOC XML file; :class:`DatasetError` naming the file when it is malformed or unreadable."""
    path = Path(path)
    try:
        return _parse(path)
    except (ET.ParseError, ValueError, LookupError) as exc:  # also an unknown encoding="..."
        raise DatasetError(f"{path}: malformed XML ({exc})") from None
    except OSError as exc:  # a folder named x.xml, permission denied
        raise DatasetError(f"{path}: cannot read ({exc.strerror or exc})") from None


@dataclass(frozen=True)
class VocFolder:
    """Where a VOC folder keeps its XML files and its images (the same folder for a flat one)."""

    xml_dir: Path
    image_dir: Path

    @classmethod
    def find(cls, root: str | Path) -> "VocFolder | None":
        """The VOC layout of ``root`` (``images/`` + ``annotations/``, ``JPEGImages/`` + ``Annotations/``,
        or both in one folder), or None when it holds no XML file in any of :data:`XML_DIRS`."""
        root = Path(root)
        if not root.is_dir():
            return None
        xml_dir = _first_dir(root, XML_DIRS, "*.xml")
        if xml_dir is None:
            return None
        return cls(xml_dir=xml_dir, image_dir=_first_dir(root, IMAGE_DIRS, "*.*") or xml_dir)

    def xml_files(self) -> list[Path]:
        return sorted(self.xml_dir.glob("*.xml"))

    def images_by_stem(self) -> dict[str, Path]:
        """The folder's images (by suffix) by file stem."""
        return {p.stem: p for p in sorted(self.image_dir.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES}


def image_for(annotation: VocAnnotation, xml_path: Path, images_by_stem: dict[str, Path]) -> Path | None:
    """The image an annotation belongs to: the one its ``filename`` names, else the one named like its XML file."""
    named = images_by_stem.get(Path(annotation.filename).stem) if annotation.filename else None
    return named or images_by_stem.get(xml_path.stem)


def read_voc(root: str | Path, label_map: dict[str, str] | None = None) -> Dataset:
    """Read a VOC folder (``images/`` + ``annotations/``, ``JPEGImages/`` + ``Annotations/``,
    or both in one folder). Problems are collected in ``dataset.report``; an image is kept with
    the boxes that could be read. Box coordinates are clipped to the image; boxes with zero area
    after clipping are dropped and counted.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: not a folder")
    folder = VocFolder.find(root)
    if folder is None:
        raise DatasetError(f"{root}: no VOC XML files found (looked in {', '.join(XML_DIRS)})")
    images_by_stem = folder.images_by_stem()
    report = DatasetReport()
    items: list[AnnotatedImage] = []
    seen: set[str] = set()
    for xml_path in folder.xml_files():
        try:
            annotation = _parse(xml_path)
        except (ET.ParseError, ValueError, LookupError) as exc:  # also an unknown encoding="..."
            report.add("malformed XML", f"{xml_path.name}: {exc}")
            continue
        except OSError as exc:  # a folder named x.xml, permission denied
            report.add("unreadable annotation", f"{xml_path.name}: {exc.strerror or exc}")
            continue
        image_path = image_for(annotation, xml_path, images_by_stem)
        if image_path is None:
            report.add("annotation without image", xml_path.name)
            continue
        seen.add(image_path.stem)
        header_size = image_size(image_path)
        if header_size is None:  # 0 bytes, corrupt, not a supported format
            report.add("unreadable image", image_path.name)
            continue
        width, height = annotation.width, annotation.height
        if width <= 0 or height <= 0:
            width, height = header_size
            report.add("missing <size>, read from image", xml_path.name)
        found = ImageBoxes(report, label_map)
        for obj in annotation.objects:
            found.add(checked_box(report, xml_path.name, *obj.box, width, height), obj.name)
        items.append(found.image(image_path, width, height))
    for stem, path in images_by_stem.items():
        if stem not in seen:
            report.add("image without annotation", path.name)
    return Dataset(images=items, report=report, root=root, format="voc")


# -- internals ---------------------------------------------------------------------------------------------

def _first_dir(root: Path, names: tuple[str, ...], pattern: str) -> Path | None:
    for name in names:
        d = root / name
        if d.is_dir() and any(d.glob(pattern)):
            return d
    return None


def _text(node: ET.Element, path: str) -> str | None:
    found = node.find(path)
    return None if found is None or found.text is None else found.text.strip()


def _parse(path: Path) -> VocAnnotation:
    return _annotation(ET.parse(path).getroot())


def _size(text: str | None) -> int:
    try:
        return max(0, int(float(text or 0)))
    except (ValueError, OverflowError):  # "abc", "inf", "nan"
        return 0


def _coordinate(text: str | None) -> float:
    try:
        return float(text or "nan")
    except ValueError:
        return math.nan


def _annotation(root: ET.Element) -> VocAnnotation:
    objects = []
    for obj in root.findall("object"):
        box = _box([_coordinate(_text(obj, f"bndbox/{k}")) for k in _BOX_KEYS])
        objects.append(VocObject(name=_text(obj, "name") or "", box=box))
    depth = _size(_text(root, "size/depth"))
    return VocAnnotation(filename=_text(root, "filename") or None, width=_size(_text(root, "size/width")),
                         height=_size(_text(root, "size/height")), objects=tuple(objects), depth=depth or 3)


def _box(values: Iterable[float]) -> tuple[float, float, float, float]:
    x1, y1, x2, y2 = (float(v) for v in values)
    return x1, y1, x2, y2


def _xml_text(value: str, what: str) -> str:
    bad = _NOT_XML.search(value)
    if bad:
        raise ValueError(f"{what} {value!r}: XML cannot hold the character {bad.group()!r}")
    return value


def _number(value: float) -> str:
    """A coordinate as VOC files write it: ``12`` for whole numbers, else up to 3 decimals."""
    if not math.isfinite(value):
        return str(value)
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text

