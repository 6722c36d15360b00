"""Typed detector configs: each detector declares its options; the registry is built from them."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from maskwatch.detectors import DETECTORS, Preferred, config_class, create_detector, detector_config
from maskwatch.errors import MaskWatchError


def test_registry_is_built_from_the_configs():
    assert list(DETECTORS) == ["centerface-mask", "centerface", "yunet", "ultraface", "mtcnn", "aizoo"]
    for name, cls in DETECTORS.items():
        assert cls.name == name and cls.model_config["extra"] == "forbid"
        assert {"model_path", "min_score", "min_face", "threads"} <= set(cls.model_fields)
    assert "input_size" in DETECTORS["centerface"].model_fields and "input_size" not in DETECTORS["ultraface"].model_fields
    assert config_class("CenterFace") is DETECTORS["centerface"]


def test_defaults_are_the_detectors_operating_points():
    assert detector_config("centerface").min_score == 0.3 and detector_config("centerface").input_size == 544
    assert detector_config("centerface-mask").box_adjust is None
    assert detector_config("yunet").min_score == 0.6 and detector_config("yunet").input_size is None
    assert (detector_config("mtcnn").min_score, detector_config("mtcnn").min_face) == (0.9, 20)
    assert detector_config("aizoo").nms_iou == 0.4


def test_evaluate_reads_default_thresholds_from_the_configs():
    from maskwatch.cli.evaluate import _default_min_score

    assert [_default_min_score(n) for n in ("centerface", "yunet", "ultraface", "mtcnn")] == [0.3, 0.6, 0.5, 0.9]
    with pytest.raises(MaskWatchError, match="unknown detector 'nope'"):
        _default_min_score("nope")


def test_bad_options_name_the_option_and_the_detector():
    with pytest.raises(MaskWatchError, match=r"detector 'ultraface' has no input-size option \(--input-size applies "
                                             r"to: centerface-mask, centerface, yunet\)"):
        create_detector("ultraface", input_size=320)
    with pytest.raises(MaskWatchError, match="detector 'yunet' option min-score: Input should be less than or equal to 1"):
        detector_config("yunet", min_score=2)
    with pytest.raises(MaskWatchError, match="detector 'centerface' option input-size: .*integer"):
        detector_config("centerface", input_size="big")
    with pytest.raises(MaskWatchError, match="unknown detector 'nope'; choose from: centerface-mask"):
        create_detector("nope")


def test_options_a_user_did_not_set_are_not_errors():
    config = detector_config("ultraface", input_size=Preferred(640), box_adjust=None, threads=2)
    assert config.threads == 2 and "input_size" not in config.model_fields_set
    assert detector_config("centerface", input_size=Preferred(640)).input_size == 640
    assert detector_config("centerface", input_size=None).input_size is None  # applicable None: native size


def test_detector_classes_validate_through_their_config():
    from maskwatch.detectors.centerface import CenterFaceConfig, CenterFaceDetector

    detector = CenterFaceDetector(input_size=320, threads=1)
    assert detector.config == CenterFaceConfig(input_size=320, threads=1) and detector.input_size == 320
    assert CenterFaceDetector(CenterFaceConfig(min_score=0.5)).min_score == 0.5
    with pytest.raises(MaskWatchError, match="detector 'centerface' has no thresholds option"):
        CenterFaceDetector(thresholds=(0.1, 0.2, 0.3))


def test_build_pipeline_takes_a_config():
    from maskwatch.pipeline import build_pipeline

    pipeline = build_pipeline(detector_config("centerface", input_size=320, threads=1), classifier=False)
    assert pipeline.detector.input_size == 320 and pipeline.classifier is None
    unset = build_pipeline("centerface", input_size=None, classifier=False, threads=1)  # None: not set
    assert unset.detector.input_size == 544


def test_detect_refuses_an_inapplicable_option_in_one_line(tmp_path):
    import cv2
    import numpy as np

    from maskwatch.cli import app

    cv2.imwrite(str(tmp_path / "a.jpg"), np.zeros((32, 32, 3), np.uint8))
    result = CliRunner().invoke(app, ["detect", str(tmp_path / "a.jpg"), "--detector", "ultraface", "--input-size", "320"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "detector 'ultraface' has no input-size option" in result.output
