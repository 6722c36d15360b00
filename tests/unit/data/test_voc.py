"""Pascal VOC written and read back: write_voc / VocAnnotation.to_xml against read_voc_file / read_voc."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from PIL import Image

from maskwatch.data import VocAnnotation, VocFolder, VocObject, read_voc, read_voc_file, write_voc
from maskwatch.errors import DatasetError, InputError

ODD = 'a&b <c> "d" \'e\' ]]> маска'  # markup characters, a CDATA end, Cyrillic


def _annotation(filename: str = "scene.jpg") -> VocAnnotation:
    return VocAnnotation(filename=filename, width=120, height=90, objects=(
        VocObject("with_mask", (10.0, 12.0, 40.0, 44.0)),
        VocObject("without_mask", (50.25, 20.5, 80.125, 60.0)),
        VocObject(ODD, (1.0, 2.0, 3.0, 4.0)),
    ))


def test_write_then_read_gives_the_same_annotation(tmp_path):
    written = write_voc(tmp_path / "deep" / "annotations" / "scene.xml", _annotation())
    assert written.is_file()  # parent folders made
    assert read_voc_file(written) == _annotation()
    text = written.read_text(encoding="utf-8")
    # escaped, not raw markup: the file parses and the odd name comes back as it was
    assert "a&amp;b &lt;c&gt;" in text and "маска" in text
    assert [o.findtext("name") for o in ET.parse(written).getroot().iter("object")][-1] == ODD
    # whole numbers as VOC tools write them, fractions to 3 decimals
    assert "<xmin>10</xmin>" in text and "<xmax>80.125</xmax>" in text
    assert VocAnnotation.from_xml(text) == _annotation()


def test_names_xml_cannot_hold_are_refused_naming_them(tmp_path):
    bad = VocAnnotation("x.jpg", 10, 10, (VocObject("mask\x00", (1, 1, 5, 5)),))
    with pytest.raises(ValueError, match=r"class name 'mask\\x00': XML cannot hold"):
        write_voc(tmp_path / "x.xml", bad)
    assert not (tmp_path / "x.xml").exists()
    with pytest.raises(ValueError, match="file name"):
        VocAnnotation("a\x1b.jpg", 10, 10).to_xml()


def test_write_and_read_errors_name_the_file(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(InputError, match="file/x.xml: cannot write annotation"):
        write_voc(tmp_path / "file" / "x.xml", _annotation())
    (tmp_path / "broken.xml").write_text("<annotation><object>")
    with pytest.raises(DatasetError, match="broken.xml: malformed XML"):
        read_voc_file(tmp_path / "broken.xml")
    with pytest.raises(DatasetError, match="missing.xml: cannot read"):
        read_voc_file(tmp_path / "missing.xml")


def test_missing_fields_read_as_unknown():
    got = VocAnnotation.from_xml("<annotation><size><width>abc</width></size>"
                                 "<object><name>with_mask</name><bndbox><xmin>1</xmin><ymin>x</ymin></bndbox></object>"
                                 "</annotation>")
    assert got.filename is None and (got.width, got.height) == (0, 0)
    assert got.objects[0].name == "with_mask" and got.objects[0].box[0] == 1
    assert all(math.isnan(v) for v in got.objects[0].box[1:])


def test_folder_written_with_write_voc_reads_back_as_a_dataset(tmp_path):
    root = tmp_path / "voc"
    rng = np.random.default_rng(0)
    boxes = {}
    for k in range(3):
        name = f"img{k}.jpg"
        (root / "images").mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (120, 90), (90, 120, 150)).save(root / "images" / name)
        x1, y1 = rng.uniform(0, 50, 2).round(1)
        boxes[f"img{k}"] = [x1, y1, x1 + 30.5, y1 + 25]
        write_voc(root / "annotations" / f"img{k}.xml", VocAnnotation(name, 120, 90, (
            VocObject("with_mask", tuple(boxes[f"img{k}"])), VocObject("mask_weared_incorrect", (60, 50, 90, 80)))))
    assert VocFolder.find(root) == VocFolder(root / "annotations", root / "images")
    ds = read_voc(root)
    assert len(ds) == 3 and not ds.report.counts and not ds.report.unknown_labels
    for img in ds.images:
        assert img.labels == ["mask", "incorrect"] and img.source_labels == ["with_mask", "mask_weared_incorrect"]
        np.testing.assert_allclose(img.boxes, [boxes[img.key], [60, 50, 90, 80]], atol=1e-3)
    # a dataset image written back (under its names as read) reads the same again
    again = read_voc_file(write_voc(tmp_path / "copy.xml", VocAnnotation.from_image(ds.images[0])))
    assert again.filename == "img0.jpg" and (again.width, again.height) == (120, 90)
    assert [o.name for o in again.objects] == ["with_mask", "mask_weared_incorrect"]
    np.testing.assert_allclose([o.box for o in again.objects], ds.images[0].boxes, atol=1e-3)


def test_find_reports_no_voc_folder(tmp_path):
    assert VocFolder.find(tmp_path / "nowhere") is None
    (tmp_path / "plain").mkdir()
    assert VocFolder.find(tmp_path / "plain") is None
    write_voc(tmp_path / "flat" / "a.xml", _annotation("a.jpg"))
    assert VocFolder.find(tmp_path / "flat") == VocFolder(tmp_path / "flat", tmp_path / "flat")

