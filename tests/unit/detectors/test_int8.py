"""The INT8 CenterFace: the bundled model, `precision`, `maskwatch quantize-detector`, the venue default."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from maskwatch.boxes import iou_matrix
from maskwatch.cli import app
from maskwatch.detectors import Preferred, create_detector
from maskwatch.errors import MaskWatchError
from maskwatch.images import read_image
from maskwatch.registry import MODELS, resolve_model, sha256_of

EXAMPLE = Path(__file__).resolve().parents[3] / "src" / "maskwatch" / "examples" / "astronaut.jpg"


def test_bundled_int8_model_is_registered_with_its_checksum():
    path = resolve_model("centerface-int8", download=False)
    assert path.name == "centerface_int8.onnx" and sha256_of(path) == MODELS["centerface-int8"].sha256
    assert path.stat().st_size < 3_000_000  # a quarter of the float file


def test_int8_finds_the_same_face_as_fp32():
    image = read_image(EXAMPLE)
    fp32 = create_detector("centerface", threads=1).detect(image)
    int8 = create_detector("centerface", precision="int8", threads=1)
    assert Path(int8.model_path).name == "centerface_int8.onnx"
    found = int8.detect(image)
    assert len(fp32) == len(found) == 1
    assert iou_matrix(fp32.boxes, found.boxes)[0, 0] > 0.95
    assert abs(float(fp32.scores[0]) - float(found.scores[0])) < 0.05
    assert np.abs(fp32.landmarks - found.landmarks).max() < 4.0  # pixels, on a ~100 px face


def test_precision_with_a_model_file_or_without_a_bundled_int8_is_one_clear_error():
    with pytest.raises(MaskWatchError, match="detector 'centerface' option.*precision int8 picks the bundled"):
        create_detector("centerface", precision="int8", model_path="elsewhere.onnx")
    with pytest.raises(MaskWatchError, match="detector 'centerface' option precision"):
        create_detector("centerface", precision="int4")
    with pytest.raises(MaskWatchError, match="has no precision option"):
        create_detector("yunet", precision="int8")


def test_centerface_mask_takes_its_int8_copy_as_a_model_file():
    with pytest.raises(MaskWatchError, match="detector 'centerface-mask' option.*with model_path the file decides"):
        create_detector("centerface-mask", precision="int8", model_path="runs/det/centerface_mask_int8.onnx")


def test_venue_cameras_default_to_int8_only_where_it_applies():
    from maskwatch.service.config import ModelsConfig

    assert isinstance(ModelsConfig().precision_option(), Preferred)
    assert ModelsConfig().precision_option().value == "int8"
    assert ModelsConfig(precision="fp32").precision_option() == "fp32"
    assert ModelsConfig(detector_model="mine.onnx").precision_option() is None
    assert ModelsConfig(detector="yunet").precision_option() is None


@pytest.mark.slow
def test_quantize_detector_command_writes_a_working_model(tmp_path):
    pictures = tmp_path / "calibration"
    pictures.mkdir()
    image = read_image(EXAMPLE)
    for i, flip in enumerate((None, 1)):
        (pictures / f"img{i}.jpg").write_bytes(
            __import__("cv2").imencode(".jpg", image if flip is None else image[:, ::-1])[1].tobytes())
    (pictures / "notes.txt").write_text("not an image")
    out = tmp_path / "models" / "cf8.onnx"
    result = CliRunner().invoke(app, ["quantize-detector", str(pictures), "--count", "2", "--input-size", "256",
                                      "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    assert "INT8 CenterFace calibrated on 2 image(s) at 256 px" in result.output
    assert f"sha256 {sha256_of(out)}" in result.output
    fp32 = create_detector("centerface", threads=1, input_size=256).detect(image)
    found = create_detector("centerface", model_path=str(out), threads=1, input_size=256).detect(image)
    assert len(found) == 1 and iou_matrix(fp32.boxes, found.boxes)[0, 0] > 0.9


def test_quantize_detector_without_images_is_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    split = tmp_path / "split.txt"
    split.write_text("nothing\n")
    result = CliRunner().invoke(app, ["quantize-detector", str(tmp_path / "empty"), "--split-file", str(split),
                                      "--out", str(tmp_path / "x.onnx")])
    assert result.exit_code == 2
    assert "error: no calibration images listed in" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "x.onnx").exists()
