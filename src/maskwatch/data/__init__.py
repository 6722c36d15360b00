"""Annotated datasets in their common form (:class:`Dataset`), whatever format they were written in."""

from __future__ import annotations

from pathlib import Path

from ..errors import DatasetError
from .coco import read_coco
from .dataset import AnnotatedImage, Dataset, DatasetReport
from .folders import ClassFolders, read_class_folders
from .labels import map_label, parse_label_map
from .voc import VocAnnotation, VocFolder, VocObject, read_voc, read_voc_file, write_voc
from .yolo import read_yolo

FORMATS = ("voc", "yolo", "coco")


def _coco_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.json")) + sorted(folder.glob("annotations/*.json"))


def detect_format(path: Path) -> str:
    """Which detection format ``path`` holds: a ``.json`` file is COCO; a folder with ``labels/``
    (and ``images/``) or a data.yaml is YOLO; a folder with VOC ``.xml`` files is VOC."""
    if path.is_file():
        if path.suffix.lower() == ".json":
            return "coco"
        raise DatasetError(f"{path}: not a dataset (expected a COCO .json file or a VOC / YOLO folder)")
    if not path.is_dir():
        raise DatasetError(f"{path}: no such file or folder")
    if (path / "data.yaml").is_file() or (
        (path / "images").is_dir() and (path / "labels").is_dir() and any((path / "labels").rglob("*.txt"))
    ):
        return "yolo"
    if VocFolder.find(path) is not None:
        return "voc"
    jsons = _coco_files(path)
    if len(jsons) == 1:
        return "coco"
    raise DatasetError(
        f"{path}: cannot tell the dataset format (no VOC .xml files, no YOLO images/ + labels/, "
        f"{'several' if jsons else 'no'} COCO .json files); pass the format or the .json file"
    )


def load_dataset(path: str | Path, format: str = "auto", label_map: dict[str, str] | None = None) -> Dataset:
    """Read a detection dataset (VOC folder, YOLO folder or COCO .json) into a :class:`Dataset`.

    Problems that do not stop reading (malformed files, boxes outside images, unknown classes,
    images without annotations and the reverse) are counted in ``dataset.report``.
    """
    path = Path(path)
    kind = detect_format(path) if format == "auto" else format.lower()
    if kind == "voc":
        return read_voc(path, label_map)
    if kind == "yolo":
        return read_yolo(path, label_map=label_map)
    if kind == "coco":
        if path.is_dir():
            jsons = _coco_files(path)
            if len(jsons) != 1:
                raise DatasetError(f"{path}: expected one COCO .json file, found {len(jsons)}")
            path = jsons[0]
        return read_coco(path, label_map=label_map)
    raise DatasetError(f"unknown dataset format '{format}'; choose from: auto, {', '.join(FORMATS)}")


__all__ = [
    "AnnotatedImage", "ClassFolders", "Dataset", "DatasetReport", "FORMATS", "detect_format", "load_dataset",
    "map_label", "parse_label_map", "read_class_folders", "read_coco", "read_voc", "read_voc_file", "read_yolo",
    "VocAnnotation", "VocFolder", "VocObject", "write_voc",
]
