"""Whose mask state counts: the detector's own, the crop classifier's, or their mean."""

from __future__ import annotations

import numpy as np
import pytest

from maskwatch.errors import MaskWatchError
from maskwatch.faces import Faces
from maskwatch.pipeline import MaskPipeline


class StateDetector:
    name = "fake-mask-detector"
    min_score = 0.3
    default_fusion = "fused"

    def detect(self, image):
        return Faces(boxes=[[0, 0, 10, 10]], scores=[0.9], probs=[[0.8, 0.2, 0.0]])


class PlainDetector(StateDetector):
    default_fusion = None

    def detect(self, image):
        return Faces(boxes=[[0, 0, 10, 10]], scores=[0.9])


class FixedClassifier:
    calls = 0

    def classify(self, image, faces):
        self.calls += 1
        return faces.with_(probs=np.tile([[0.0, 0.2, 0.8]], (len(faces), 1)).astype(np.float32))


IMAGE = np.zeros((20, 20, 3), np.uint8)


@pytest.mark.parametrize("fusion, expected, runs_classifier", [
    ("detector", [0.8, 0.2, 0.0], False),
    ("classifier", [0.0, 0.2, 0.8], True),
    ("fused", [0.4, 0.2, 0.4], True),
    (None, [0.4, 0.2, 0.4], True),  # the detector's default_fusion
])
def test_fusion_modes(fusion, expected, runs_classifier):
    classifier = FixedClassifier()
    faces = MaskPipeline(StateDetector(), classifier, fusion)(IMAGE)
    np.testing.assert_allclose(faces.probs[0], expected, atol=1e-6)
    assert (classifier.calls == 1) is runs_classifier


def test_no_classifier_keeps_the_detectors_state():
    faces = MaskPipeline(StateDetector(), None)(IMAGE)
    np.testing.assert_allclose(faces.probs[0], [0.8, 0.2, 0.0])


def test_a_detector_without_state_falls_back_to_the_classifier():
    assert MaskPipeline(PlainDetector(), FixedClassifier()).fusion == "classifier"
    faces = MaskPipeline(PlainDetector(), FixedClassifier(), "fused")(IMAGE)
    np.testing.assert_allclose(faces.probs[0], [0.0, 0.2, 0.8])


def test_unknown_fusion_is_an_error():
    with pytest.raises(MaskWatchError, match="unknown fusion 'average'"):
        MaskPipeline(StateDetector(), None, "average")


def test_fusion_detector_needs_a_detector_with_a_state():
    from maskwatch.pipeline import build_pipeline

    with pytest.raises(MaskWatchError, match="no mask state of its own"):
        build_pipeline("centerface", fusion="detector")


def test_centerface_mask_without_a_model_says_how_to_get_one():
    from maskwatch.detectors import create_detector
    from maskwatch.errors import ModelError

    with pytest.raises(ModelError, match="no bundled model yet: train one with `maskwatch train-detector"):
        create_detector("centerface-mask")
