"""Dataset readers (VOC, YOLO, COCO, class folders) on tiny synthetic datasets with planted problems."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from maskwatch.data import detect_format, load_dataset, read_class_folders, read_coco, read_voc, read_yolo
from maskwatch.errors import DatasetError

W, H = 100, 80


def _image(path: Path, size: tuple[int, int] = (W, H)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (90, 120, 150)).save(path)
    return path


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# -- VOC ------------------------------------------------------------------------------------------------


def _voc_xml(objects: list[tuple[str, tuple[float, float, float, float]]], filename: str, size=(W, H)) -> str:
    objs = "".join(
        f"<object><name>{n}</name><bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin><xmax>{b[2]}</xmax>"
        f"<ymax>{b[3]}</ymax></bndbox></object>" for n, b in objects
    )
    return (f"<annotation><filename>{filename}</filename><size><width>{size[0]}</width>"
            f"<height>{size[1]}</height></size>{objs}</annotation>")


@pytest.fixture
def voc_root(tmp_path: Path) -> Path:
    root = tmp_path / "voc"
    for stem in ("a", "b", "c", "lonely"):
        _image(root / "images" / f"{stem}.jpg")
    _write(root / "annotations/a.xml", _voc_xml([
        ("with_mask", (10, 10, 30, 30)),
        ("without_mask", (-5, 40, 20, 90)),  # outside: clipped to (0, 40, 20, 80)
        ("mask_weared_incorrect", (50, 50, 50, 70)),  # zero area: dropped
        ("hat", (60, 10, 70, 20)),  # unknown class
    ], "a.jpg"))
    _write(root / "annotations/b.xml", "<annotation><object>")  # malformed
    _write(root / "annotations/c.xml", _voc_xml([], "c.jpg"))
    _write(root / "annotations/ghost.xml", _voc_xml([("with_mask", (1, 1, 9, 9))], "ghost.jpg"))
    return root


def test_voc_reports_every_planted_problem(voc_root):
    ds = read_voc(voc_root)
    by_stem = {img.key: img for img in ds.images}
    assert set(by_stem) == {"a", "c"}
    a = by_stem["a"]
    assert a.labels == ["mask", "no_mask"]
    np.testing.assert_allclose(a.boxes, [[10, 10, 30, 30], [0, 40, 20, 80]])
    assert len(by_stem["c"].boxes) == 0
    counts = ds.report.counts
    assert counts["malformed XML"] == 1 and "b.xml" in ds.report.examples["malformed XML"][0]
    assert counts["box outside image (clipped)"] == 1
    assert counts["zero-area box (dropped)"] == 1
    assert counts["annotation without image"] == 1 and ds.report.examples["annotation without image"] == ["ghost.xml"]
    # b.jpg's XML is unreadable, lonely.jpg has none: both are images without a usable annotation
    assert counts["image without annotation"] == 2
    assert ds.report.unknown_labels == {"hat": 1}
    assert any("hat x1" in line for line in ds.report.lines())


def test_voc_label_map_rescues_unknown_class(voc_root):
    ds = read_voc(voc_root, label_map={"hat": "no_mask"})
    a = next(img for img in ds.images if img.key == "a")
    assert a.labels == ["mask", "no_mask", "no_mask"] and not ds.report.unknown_labels


# -- YOLO ------------------------------------------------------------------------------------------------


@pytest.fixture
def yolo_root(tmp_path: Path) -> Path:
    root = tmp_path / "yolo"
    _write(root / "data.yaml", "nc: 3\nnames: {0: with_mask, 1: without_mask, 2: helmet}\n")
    for stem in ("a", "empty", "bad", "nolabel"):
        _image(root / "images/train" / f"{stem}.jpg")
    _write(root / "labels/train/a.txt", "0 0.5 0.5 0.2 0.25\n1 0.05 0.5 0.2 0.5\n\n2 0.5 0.5 0.1 0.1\n")
    _write(root / "labels/train/empty.txt", "")
    _write(root / "labels/train/bad.txt", "0 0.5 0.5\nzero 0.1 0.1 0.1 0.1\n7 0.5 0.5 0.1 0.1\n0 0.5 0.5 0 0.2\n")
    _write(root / "labels/train/orphan.txt", "0 0.5 0.5 0.1 0.1\n")
    return root


def test_yolo_boxes_labels_and_problems(yolo_root):
    ds = read_yolo(yolo_root)
    assert ds.format == "yolo"
    by_stem = {img.key: img for img in ds.images}
    assert set(by_stem) == {"a", "empty", "bad"}  # nolabel.jpg has no label file
    a = by_stem["a"]
    assert (a.width, a.height) == (W, H)
    assert a.labels == ["mask", "no_mask"] and a.source_labels == ["with_mask", "without_mask"]
    # 0.5,0.5,0.2,0.25 -> centre (50, 40), size 20 x 20; second box x from -5 -> clipped to 0
    np.testing.assert_allclose(a.boxes, [[40, 30, 60, 50], [0, 20, 15, 60]], atol=1e-4)
    assert len(by_stem["empty"].boxes) == 0 and len(by_stem["bad"].boxes) == 0
    c = ds.report.counts
    assert c["malformed label line"] == 2
    assert c["class id out of range"] == 1 and "bad.txt:3" in ds.report.examples["class id out of range"][0]
    assert c["zero-area box (dropped)"] == 1
    assert c["box outside image (clipped)"] == 1
    assert c["image without annotation"] == 1 and "nolabel.jpg" in ds.report.examples["image without annotation"][0]
    assert c["annotation without image"] == 1 and "orphan.txt" in ds.report.examples["annotation without image"][0]
    assert ds.report.unknown_labels == {"helmet": 1}


def test_yolo_class_names_from_classes_txt_list_yaml_or_argument(tmp_path):
    root = tmp_path / "y"
    _image(root / "images/x.jpg")
    _write(root / "labels/x.txt", "1 0.5 0.5 0.2 0.2\n")
    with pytest.raises(DatasetError, match="class names not found"):
        read_yolo(root)
    _write(root / "classes.txt", "face\nface_mask\n")
    assert read_yolo(root).images[0].labels == ["mask"]
    assert read_yolo(root, class_names=["masked", "unmasked"]).images[0].labels == ["no_mask"]
    _write(root / "data.yaml", "names: [without_mask, incorrect]\n")
    assert read_yolo(root).images[0].labels == ["incorrect"]
    _write(root / "data.yaml", "names: [unclosed\n")
    with pytest.raises(DatasetError, match="data.yaml.*YAML"):
        read_yolo(root)


# -- COCO ------------------------------------------------------------------------------------------------


@pytest.fixture
def coco_json(tmp_path: Path) -> Path:
    root = tmp_path / "coco"
    _image(root / "images/one.jpg")
    _image(root / "images/two.jpg")
    _image(root / "images/unlisted.jpg")
    data = {
        "images": [
            {"id": 1, "file_name": "one.jpg", "width": W, "height": H},
            {"id": 2, "file_name": "two.jpg"},  # no size: read from the file
            {"id": 3, "file_name": "missing.jpg", "width": W, "height": H},
        ],
        "categories": [{"id": 5, "name": "mask"}, {"id": 6, "name": "no-mask"}, {"id": 7, "name": "person"}],
        "annotations": [
            {"id": 10, "image_id": 1, "category_id": 5, "bbox": [10, 20, 30, 40]},
            {"id": 11, "image_id": 1, "category_id": 6, "bbox": [90, 70, 20, 20]},  # clipped
            {"id": 12, "image_id": 1, "category_id": 99, "bbox": [1, 1, 5, 5]},  # unknown category
            {"id": 13, "image_id": 1, "category_id": 7, "bbox": [1, 1, 5, 5]},  # unknown class name
            {"id": 14, "image_id": 1, "category_id": 5, "bbox": [1, 1, 0, 5]},  # zero area
            {"id": 15, "image_id": 1, "category_id": 5, "bbox": "oops"},
            {"id": 16, "image_id": 42, "category_id": 5, "bbox": [1, 1, 5, 5]},
        ],
    }
    return _write(root / "annotations.json", json.dumps(data))


def test_coco_boxes_and_problems(coco_json):
    ds = read_coco(coco_json)
    by_stem = {img.key: img for img in ds.images}
    assert set(by_stem) == {"one", "two"}
    np.testing.assert_allclose(by_stem["one"].boxes, [[10, 20, 40, 60], [90, 70, 100, 80]])
    assert by_stem["one"].labels == ["mask", "no_mask"]
    assert (by_stem["two"].width, by_stem["two"].height) == (W, H) and len(by_stem["two"].boxes) == 0
    c = ds.report.counts
    assert c["unknown category id"] == 1 and "category_id 99" in ds.report.examples["unknown category id"][0]
    assert c["annotation without image"] == 1 and ds.report.examples["annotation without image"] == ["missing.jpg"]
    assert c["image without annotation"] == 1 and ds.report.examples["image without annotation"] == ["unlisted.jpg"]
    assert c["annotation for unknown image id"] == 1
    assert c["zero-area box (dropped)"] == 1 and c["box outside image (clipped)"] == 1 and c["unreadable box"] == 1
    assert c["missing width/height, read from image"] == 1
    assert ds.report.unknown_labels == {"person": 1}


def test_coco_malformed_files_raise_naming_the_file(tmp_path):
    broken = _write(tmp_path / "broken.json", '{"images": [')
    with pytest.raises(DatasetError, match=r"broken\.json: malformed JSON"):
        read_coco(broken)
    not_coco = _write(tmp_path / "other.json", '{"images": []}')
    with pytest.raises(DatasetError, match=r"other\.json: not a COCO file \('annotations'"):
        read_coco(not_coco)
    with pytest.raises(DatasetError, match="no such file"):
        read_coco(tmp_path / "absent.json")


# -- class folders ----------------------------------------------------------------------------------------


def test_class_folders_report_empty_and_unknown_folders(tmp_path):
    root = tmp_path / "faces"
    for i in range(3):
        _image(root / "with_mask" / f"m{i}.jpg", (16, 16))
    _image(root / "without_mask/sub/n0.jpg", (16, 16))
    (root / "mask_weared_incorrect").mkdir()
    _image(root / "sunglasses/s0.jpg", (16, 16))
    _write(root / "with_mask/notes.txt", "hello")
    _image(root / "stray.jpg", (16, 16))
    data = read_class_folders(root)
    assert len(data) == 4 and data.label_counts() == {"mask": 3, "no_mask": 1}
    assert all(path.is_file() for path, _ in data)
    c = data.report.counts
    assert c["empty class folder"] == 1 and data.report.examples["empty class folder"] == ["mask_weared_incorrect/"]
    assert c["unknown class folder (left out)"] == 1 and "sunglasses/ (1 images)" in data.report.examples[
        "unknown class folder (left out)"][0]
    assert data.report.unknown_labels == {"sunglasses": 1}
    assert c["not an image file (ignored)"] == 1 and c["image outside class folders (ignored)"] == 1
    mapped = read_class_folders(root, label_map={"sunglasses": "no_mask"})
    assert mapped.label_counts() == {"mask": 3, "no_mask": 2} and not mapped.report.unknown_labels
    with pytest.raises(DatasetError, match="no class sub-folders"):
        read_class_folders(root / "with_mask")


# -- format detection -------------------------------------------------------------------------------------


def test_load_dataset_detects_each_format(voc_root, yolo_root, coco_json, tmp_path):
    assert detect_format(voc_root) == "voc" and load_dataset(voc_root).format == "voc"
    assert detect_format(yolo_root) == "yolo" and load_dataset(yolo_root).format == "yolo"
    assert detect_format(coco_json) == "coco" and len(load_dataset(coco_json)) == 2
    assert load_dataset(coco_json.parent).format == "coco"  # a folder with one .json
    assert load_dataset(voc_root, format="VOC", label_map={"hat": "mask"}).report.unknown_labels == {}
    with pytest.raises(DatasetError, match="cannot tell the dataset format"):
        load_dataset(_image(tmp_path / "plain/x.jpg").parent)
    with pytest.raises(DatasetError, match="unknown dataset format 'csv'"):
        load_dataset(voc_root, format="csv")
    with pytest.raises(DatasetError, match="no such file or folder"):
        load_dataset(tmp_path / "nowhere")


# -- real shared data ---------------------------------------------------------------------------------------


def test_real_kaggle_voc_counts(kaggle_dir):
    ds = load_dataset(kaggle_dir)
    assert ds.format == "voc" and len(ds) == 691
    assert ds.label_counts() == {"mask": 2612, "no_mask": 541, "incorrect": 93}
    # the README's 11 boxes with xmax = width + 1 are clipped, never dropped
    assert ds.report.counts["box outside image (clipped)"] == 11 and not ds.report.unknown_labels


def test_real_class_folders_counts(shared_dir):
    data = read_class_folders(shared_dir / "data" / "chandrikadeb7-faces")
    assert data.label_counts() == {"mask": 2112, "no_mask": 1877}
    assert not data.report.counts and not data.report.unknown_labels
