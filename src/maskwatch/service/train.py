"""The training service behind ``maskwatch train`` / ``train-classifier``, ``train-detector`` and
``export-classifier``: typed configs in, typed results out.

Progress information goes to ``log``, real problems (unreadable images, broken annotations, a class
without faces) to ``warn``. Errors that stop a run are ``MaskWatchError``. torch is imported only
when a run starts.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field

from ..errors import MaskWatchError
from ..train.config import DetectorTrainConfig as DetectorSettings
from ..train.config import TrainConfig

Log = Callable[[str], None]


def _print(line: str) -> None:
    print(line)


class Source(BaseModel):
    """One training source: ``PATH[:WEIGHT]`` of a kind."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["voc", "folders", "synth", "yolo", "coco"]
    path: Path
    weight: float = 1.0

    @classmethod
    def parse(cls, kind: str, text: str) -> "Source":
        """``PATH[:WEIGHT]`` as given on the command line (the weight: a number after the last colon)."""
        from ..train.data import SourceSpec  # the one parser of PATH[:WEIGHT] (no torch needed)

        spec = SourceSpec.parse(kind, text)
        return cls.model_validate({"kind": kind, "path": spec.path, "weight": spec.weight})


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ClassifierTrainConfig(_Config):
    """``maskwatch train``: sources, run folder and the training settings (``train.config.TrainConfig``)."""

    out: Path
    sources: list[Source]
    settings: TrainConfig = Field(default_factory=TrainConfig)
    resume: bool = False
    overwrite: bool = False
    synth_share: float = 0.5
    label_map: dict[str, str] = Field(default_factory=dict)
    relabel: list[Path] = Field(default_factory=list)
    cache: Optional[Path] = None  # face crop cache (None: the user cache)

    def crop_cache(self) -> Path:
        from ..registry import cache_dir

        return self.cache or cache_dir().parent / "crops"


class DetectorTrainConfig(_Config):
    """``maskwatch train-detector``: scene datasets, synthetic scenes, run folder and the training
    settings (``train.config.DetectorTrainConfig``)."""

    out: Path
    datasets: list[Source]  # voc / yolo / coco scenes (their val split stops training)
    synth: list[Source] = Field(default_factory=list)
    settings: DetectorSettings = Field(default_factory=DetectorSettings)
    resume: bool = False
    overwrite: bool = False
    teacher_model: Optional[str] = None
    init_from: Optional[Path] = None
    label_map: dict[str, str] = Field(default_factory=dict)


def check_run_dir(out: Path, resume: bool, overwrite: bool) -> None:
    """Refuse a non-empty run directory unless resuming or overwriting."""
    if out.exists() and any(out.iterdir()) and not (resume or overwrite):
        raise MaskWatchError(f"run directory {out} exists and is not empty; use --resume to continue it or --overwrite")


def check_classifier_config(config: ClassifierTrainConfig) -> None:
    """What can be refused before any work: no sources, a non-empty run folder."""
    if not config.sources:
        raise MaskWatchError("give at least one dataset with --voc, --folders or --synth")
    check_run_dir(config.out, config.resume, config.overwrite)


def check_detector_config(config: DetectorTrainConfig) -> None:
    if not config.datasets:
        raise MaskWatchError("give at least one scene dataset with --voc, --yolo or --coco (its val split stops training)")
    if config.settings.crop % 32:
        raise MaskWatchError(f"--crop {config.settings.crop} is not a multiple of 32")
    check_run_dir(config.out, config.resume, config.overwrite)


@dataclass(frozen=True)
class ClassifierTrainResult:
    run: Path
    best_epoch: int
    onnx: Path
    onnx_max_abs_diff: float
    test: Optional[dict[str, Any]]  # metrics.json's "test" (ClassificationResult.training_dict); None: no test faces
    metrics: dict[str, Any]  # all of metrics.json


def train_classifier(config: ClassifierTrainConfig, log: Log = _print, warn: Log | None = None) -> ClassifierTrainResult:
    """Gather the faces, train, test on the held-out faces and export ``OUT/mask_classifier.onnx``."""
    from ..data.labels import read_relabels
    from ..train.data import SourceSpec
    from ..train.run import run_training

    check_classifier_config(config)
    fixes: dict[str, str] = {}
    for file in config.relabel:
        fixes.update(read_relabels(file))
    settings = dataclasses.replace(config.settings)  # run_training records the sources in it
    sources = [SourceSpec(s.kind, s.path, s.weight) for s in config.sources]
    metrics = run_training(sources, config.out, settings, resume=config.resume, cache=config.crop_cache(),
                           label_map=config.label_map, synth_share=config.synth_share, log=log, relabels=fixes,
                           warn=warn or log)
    return ClassifierTrainResult(config.out, metrics["best_epoch"], Path(metrics["onnx"]),
                                 metrics["onnx_max_abs_diff"], metrics.get("test"), metrics)


@dataclass(frozen=True)
class DetectorTrainResult:
    run: Path
    best_epoch: int
    val: dict[str, Any]  # map50_3class, map50_2class, face_ap50, face_ap50_small, mask_recall50, class_ap50
    onnx: Path
    onnx_max_abs_diff: float


def train_detector(config: DetectorTrainConfig, log: Log = _print, warn: Log | None = None) -> DetectorTrainResult:
    """Fine-tune CenterFace with a mask-state head on the scenes and export ``OUT/centerface_mask.onnx``."""
    from ..train.detector_run import run_detector_training

    check_detector_config(config)
    settings = dataclasses.replace(config.settings)
    metrics = run_detector_training([(s.path, s.weight) for s in config.datasets],
                                    [(s.path, s.weight) for s in config.synth], config.out, settings,
                                    config.teacher_model, resume=config.resume, label_map=config.label_map, log=log,
                                    init_from=config.init_from, warn=warn or log)
    return DetectorTrainResult(config.out, metrics["best_epoch"], metrics["val"], Path(metrics["onnx"]),
                               metrics["onnx_max_abs_diff"])


def export_classifier(runs: list[Path], out: Path, flip: bool = False) -> dict[str, Any]:
    """One ONNX classifier from finished runs (``train.run.export_runs``)."""
    from ..train.run import export_runs

    return export_runs(runs, out, flip)
