"""The model protocols and the typing marker."""

from __future__ import annotations

import numpy as np

from maskwatch.faces import Faces


def test_shipped_models_satisfy_the_protocols_and_a_plain_object_does_not():
    from maskwatch.classifier import FaceClassifier, MaskClassifier
    from maskwatch.detectors import FaceDetector, create_detector

    detector = create_detector("centerface", threads=1, input_size=160)
    classifier = MaskClassifier(threads=1)
    assert isinstance(detector, FaceDetector) and isinstance(classifier, FaceClassifier)
    assert not isinstance(classifier, FaceDetector) and not isinstance(object(), FaceClassifier)


def test_pipeline_and_watcher_take_any_protocol_implementation():
    from maskwatch.monitor import Watcher
    from maskwatch.pipeline import MaskPipeline

    class Box:
        name, min_score = "box", 0.5

        def detect(self, image):
            return Faces(boxes=np.array([[2, 2, 20, 20]], np.float32), scores=np.array([0.9], np.float32))

    class AlwaysMasked:
        def classify(self, image, faces):
            return faces.with_(probs=np.tile(np.array([[1, 0, 0]], np.float32), (len(faces), 1)))

    faces = MaskPipeline(Box(), AlwaysMasked())(np.zeros((32, 32, 3), np.uint8))
    assert faces.counts() == {"mask": 1, "no_mask": 0, "incorrect": 0}
    watcher = Watcher(Box(), AlwaysMasked(), source="test")
    assert watcher.detector.name == "box"


def test_the_package_ships_a_py_typed_marker():
    from maskwatch.registry import package_file

    assert package_file("maskwatch", "py.typed") is not None
