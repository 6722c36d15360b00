"""service.train: typed configs, refusals before any work, information apart from warnings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("torch")

from maskwatch.errors import MaskWatchError  # noqa: E402
from maskwatch.service import train as service  # noqa: E402
from maskwatch.train.config import TrainConfig  # noqa: E402
from tests.unit.train.test_train import tiny_sets  # noqa: E402,F401  (the fixture)


def test_sources_parse_and_bad_configs_are_refused(tmp_path):
    assert service.Source.parse("voc", "data/a:2").weight == 2.0
    assert service.Source.parse("folders", "data/a").path == Path("data/a")
    with pytest.raises(MaskWatchError, match="at least one dataset"):
        service.check_classifier_config(service.ClassifierTrainConfig(out=tmp_path / "r", sources=[]))
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    config = service.ClassifierTrainConfig(out=tmp_path / "full", sources=[service.Source.parse("voc", "v")])
    with pytest.raises(MaskWatchError, match="not empty"):
        service.check_classifier_config(config)
    detector = service.DetectorTrainConfig(out=tmp_path / "d", datasets=[service.Source.parse("voc", "v")])
    detector.settings.crop = 100
    with pytest.raises(MaskWatchError, match="--crop 100 is not a multiple of 32"):
        service.check_detector_config(detector)
    with pytest.raises(ValueError):
        service.ClassifierTrainConfig(out=tmp_path, sources=[], epochz=3)  # unknown keys are refused


def test_training_information_is_logged_and_problems_are_warned(tiny_sets, tmp_path):  # noqa: F811
    logged: list[str] = []
    warned: list[str] = []
    config = service.ClassifierTrainConfig(
        out=tmp_path / "run", sources=[service.Source.parse("voc", str(tiny_sets / "voc"))],
        settings=TrainConfig(arch="scratch", epochs=1, samples_per_epoch=32, batch_size=16, threads=2),
        cache=tiny_sets / "cache")
    result = service.train_classifier(config, log=logged.append, warn=warned.append)
    assert result.best_epoch == 1 and result.onnx.is_file()
    assert any(line.startswith("faces per split") for line in logged)
    assert not any("faces per split" in line for line in warned)
    assert any("malformed XML" in line for line in warned)  # the broken annotation is a real problem
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["best_epoch"] == 1
    assert config.settings.sources == []  # the caller's config is not changed by the run
