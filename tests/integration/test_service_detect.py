"""The detect and classify services (maskwatch.service.detect / .classify) that the CLI and the server call."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
from PIL import Image

from maskwatch.errors import InputError, MaskWatchError
from maskwatch.faces import Faces
from maskwatch.images import ImageTooLargeError, read_image
from maskwatch.service.classify import ClassifyConfig, ClassifyService
from maskwatch.service.detect import (DetectConfig, DetectService, EncodingError, ProcessingError,
                                      annotated_path)


class FakePipeline:
    """Faces at fixed fractions of the image (so a reduced decode can be checked), or raises ``error``."""

    detector = type("FakeDetector", (), {"name": "fake", "min_score": 0.1})()

    def __init__(self, error: BaseException | None = None):
        self.error = error
        self.seen: list[tuple[int, int]] = []

    def __call__(self, image, timer=None):
        if self.error is not None:
            raise self.error
        h, w = image.shape[:2]
        self.seen.append((w, h))
        if timer is not None:
            timer.add("detect", time.perf_counter())
        return Faces(boxes=[[0.1 * w, 0.1 * h, 0.3 * w, 0.4 * h], [0.5 * w, 0.5 * h, 0.6 * w, 0.6 * h]],
                     scores=[0.9, 0.4], landmarks=np.full((2, 5, 2), [0.2 * w, 0.2 * h], np.float32),
                     probs=[[0.8, 0.1, 0.1], [0.1, 0.7, 0.2]])


def jpeg_bytes(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (height, width, 3), dtype=np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


# -- the config ---------------------------------------------------------------------------------
def test_config_refuses_what_the_detector_does_not_take_in_one_line():
    with pytest.raises(MaskWatchError, match="unknown fusion 'median'; choose from: detector, classifier, fused"):
        DetectConfig.of(fusion="median")
    with pytest.raises(MaskWatchError, match="min-score"):
        DetectConfig.of(min_score=1.5)
    with pytest.raises(MaskWatchError, match="colour"):
        DetectConfig.of(colour="red")
    config = DetectConfig(detector="ultraface", detector_options={"input_size": 640})
    with pytest.raises(MaskWatchError, match="detector 'ultraface' has no input-size option"):
        config.detector_config()
    # None means "the detector's default": it is left out, and each detector's own defaults apply
    yunet = DetectConfig(detector="yunet", detector_options={"input_size": None}, min_score=None).detector_config()
    assert yunet.name == "yunet" and yunet.min_score == type(yunet)().min_score
    centerface = DetectConfig(min_score=0.42, min_face=12, threads=2).detector_config()
    assert (centerface.name, centerface.min_score, centerface.min_face, centerface.threads) == ("centerface", 0.42, 12, 2)


# -- uploads ------------------------------------------------------------------------------------
def test_bytes_give_the_record_timings_and_jpeg():
    service = DetectService(DetectConfig(annotate=False), FakePipeline())
    found = service.detect_bytes(jpeg_bytes(200, 100), "up.jpg")
    record = found.record()
    assert set(record) == {"image", "width", "height", "ms", "faces", "counts"}
    assert (record["image"], record["width"], record["height"]) == ("up.jpg", 200, 100)
    assert record["counts"] == {"mask": 1, "no_mask": 1, "incorrect": 0}
    assert record["faces"][0]["box"] == [20.0, 10.0, 60.0, 40.0]
    assert found.jpeg is None and found.annotated is None and "draw" not in found.stages_ms
    timings = found.timings_ms()
    assert set(timings) == {"decode", "detect", "total"} and timings["total"] >= timings["decode"]

    drawn = service.detect_bytes(jpeg_bytes(200, 100), "up.jpg", annotate=True)
    assert "draw" in drawn.stages_ms
    assert Image.open(io.BytesIO(drawn.jpeg)).size == (200, 100)


def test_a_large_jpeg_is_decoded_small_and_answered_in_the_original_pixels():
    pipeline = FakePipeline()
    service = DetectService(DetectConfig(), pipeline)
    found = service.detect_bytes(jpeg_bytes(8400, 600), "wide.jpg", annotate=True)
    (seen,) = pipeline.seen
    assert seen[0] < 8400  # JPEG draft: the pipeline saw a reduced image
    assert (found.width, found.height) == (8400, 600)
    assert found.faces.boxes[0].tolist() == pytest.approx([840, 60, 2520, 240], rel=0.01)
    assert found.faces.landmarks[0, 0].tolist() == pytest.approx([1680, 120], rel=0.01)
    assert Image.open(io.BytesIO(found.jpeg)).size == seen  # annotated at the reduced size


def test_min_score_per_call_only_drops_faces():
    service = DetectService(DetectConfig(), FakePipeline())
    assert len(service.detect_bytes(jpeg_bytes(64, 64), min_score=0.5).faces) == 1
    assert len(service.detect_bytes(jpeg_bytes(64, 64), min_score=0.95).faces) == 0
    assert len(service.detect_bytes(jpeg_bytes(64, 64)).faces) == 2


def test_bad_uploads_and_pipeline_failures_are_typed_errors():
    service = DetectService(DetectConfig(max_pixels=5000), FakePipeline())
    with pytest.raises(ImageTooLargeError, match="100x100"):
        service.detect_bytes(jpeg_bytes(100, 100), "big.jpg")
    with pytest.raises(InputError, match="bad.jpg: not an image file"):
        service.detect_bytes(b"name,age\nann,3\n", "bad.jpg")
    for error, kind in [(MemoryError("no room"), "MemoryError: no room"),
                        (cv2.error("OpenCV(4) resize.cpp: error: (-215) ssize.empty()"), "error: (-215)")]:
        failing = DetectService(DetectConfig(), FakePipeline(error))
        with pytest.raises(ProcessingError) as caught:
            failing.detect_bytes(jpeg_bytes(32, 32), "p.jpg")
        assert caught.value.path == "p.jpg" and kind in caught.value.reason
        assert str(caught.value).startswith("p.jpg: cannot process image (")


def test_an_image_that_cannot_be_encoded_is_an_encoding_error(monkeypatch):
    import maskwatch.images as images

    def refuse(image, quality=90):
        raise ValueError("could not encode the image as JPEG")

    monkeypatch.setattr(images, "encode_jpeg", refuse)
    with pytest.raises(EncodingError, match="p.jpg"):
        DetectService(DetectConfig(), FakePipeline()).detect_bytes(jpeg_bytes(32, 32), "p.jpg", annotate=True)


# -- files --------------------------------------------------------------------------------------
def test_files_are_read_detected_and_drawn_where_asked(tmp_path):
    photo = tmp_path / "shots" / "a.png"
    photo.parent.mkdir()
    Image.new("RGB", (120, 80), (10, 200, 10)).save(photo)
    service = DetectService(DetectConfig(), FakePipeline())
    target = tmp_path / "out" / "a.maskwatch.jpg"
    found = service.detect_file(photo, target)
    assert found.written == target and Image.open(target).size == (120, 80)
    assert found.record()["image"] == str(photo) and (found.width, found.height) == (120, 80)
    assert list(found.stages_ms) == ["decode", "detect", "draw"]
    assert not np.array_equal(read_image(target), read_image(photo))  # the boxes are drawn

    plain = DetectService(DetectConfig(annotate=False), FakePipeline()).detect_file(photo, tmp_path / "no.jpg")
    assert plain.written is None and not (tmp_path / "no.jpg").exists()
    with pytest.raises(InputError, match="missing.png: no such file"):
        service.detect_file(tmp_path / "missing.png")
    with pytest.raises(InputError, match="too large"):
        DetectService(DetectConfig(max_pixels=100), FakePipeline()).detect_file(photo)


def test_annotated_path_mirrors_sub_folders(tmp_path):
    root = tmp_path / "shots"
    (root / "door").mkdir(parents=True)
    image = root / "door" / "a.jpg"
    assert annotated_path(image) == root / "door" / "a.maskwatch.jpg"
    assert annotated_path(image, tmp_path / "out", [root]) == tmp_path / "out" / "door" / "a.maskwatch.jpg"
    assert annotated_path(image, tmp_path / "out") == tmp_path / "out" / "a.maskwatch.jpg"
    assert annotated_path(image, tmp_path / "out", [tmp_path / "elsewhere"]) == tmp_path / "out" / "a.maskwatch.jpg"


def test_the_real_pipeline_gives_one_record_for_a_file_and_its_bytes():
    """detect (a file) and POST /v1/detect (its bytes) share the service: the same faces for the same photo."""
    from maskwatch.cli.detect import example_image_path

    photo = example_image_path()
    service = DetectService(DetectConfig(threads=1, annotate=False))
    assert service.detector_info()["name"] == "centerface" and service.classifier_path().endswith(".onnx")
    from_file = service.detect_file(photo).record()
    from_bytes = service.detect_bytes(photo.read_bytes(), photo.name).record()
    assert from_file["counts"] == {"mask": 0, "no_mask": 1, "incorrect": 0}
    assert {k: v for k, v in from_file.items() if k not in ("image", "ms")} == \
        {k: v for k, v in from_bytes.items() if k not in ("image", "ms")}


# -- classify -----------------------------------------------------------------------------------
class FakeClassifier:
    def __init__(self):
        self.boxes = []

    def classify(self, image, faces):
        self.boxes.append(faces.boxes.tolist())
        return faces.with_(probs=np.tile([[0.2, 0.7, 0.1]], (len(faces), 1)))


class FakeLocator:
    name, min_score = "fake", 0.3

    def detect(self, image):
        return Faces(boxes=[[1, 1, 5, 5], [2, 2, 20, 30]], scores=[0.9, 0.8])


def test_classify_frames_the_largest_face_or_the_whole_crop(tmp_path):
    crop = tmp_path / "c.png"
    Image.new("RGB", (40, 50)).save(crop)
    classifier = FakeClassifier()
    located = ClassifyService(ClassifyConfig(locate=True), classifier, FakeLocator()).classify_file(crop)
    whole = ClassifyService(ClassifyConfig(locate=False), classifier, FakeLocator()).classify_file(crop)
    assert classifier.boxes == [[[2, 2, 20, 30]], [[0, 0, 40, 50]]]
    assert located.label == "no_mask"
    assert whole.record() == {"image": str(crop), "label": "no_mask", "label_score": 0.7,
                              "probs": {"mask": 0.2, "no_mask": 0.7, "incorrect": 0.1}}
    with pytest.raises(InputError, match="empty file"):
        (tmp_path / "e.jpg").write_bytes(b"")
        ClassifyService(ClassifyConfig(locate=False), classifier).classify_file(tmp_path / "e.jpg")


def test_classify_with_the_shipped_model_finds_the_astronaut_unmasked():
    from maskwatch.cli.detect import example_image_path

    image = read_image(example_image_path())[40:230, 130:300]  # her face, with some context
    service = ClassifyService(ClassifyConfig(threads=1))
    assert service.locator is not None and service.locator.name == "centerface"
    found = service.classify_image(image, "face")
    assert found.label == "no_mask" and found.record()["label_score"] > 0.5
    json.dumps(found.record())  # JSON-ready


# -- layering -----------------------------------------------------------------------------------
def test_the_server_and_the_services_import_nothing_from_the_cli():
    code = ("import sys, maskwatch.server.app, maskwatch.service.detect, maskwatch.service.classify; "
            "print([m for m in sys.modules if m.startswith('maskwatch.cli')])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
