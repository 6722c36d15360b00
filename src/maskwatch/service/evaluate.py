"""The evaluation service behind ``maskwatch eval``: typed configs in, typed results and reports out.

``evaluate_detection`` scores detectors (or a detections JSONL) on an annotated dataset,
``evaluate_classifier`` scores the mask classifier on face crops, ``write_splits`` writes the
project's train/val/test lists. Problems the run goes on past are told through ``EvalHooks.warn``;
errors that stop it are ``MaskWatchError`` (or ``ValueError`` for a bad label map).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ..data.dataset import AnnotatedImage, Dataset, DatasetReport
from ..errors import MaskWatchError
from ..evaluate.inputs import Predictions
from ..evaluate.results import ClassificationResult, DetectionEvaluation, Example

Progress = Callable[[str], Callable[[Iterable[Any]], Iterable[Any]]]

#: datasets the bundled classifier was trained on (MODEL_CARD.md): the last folder name(s) of their path
BUNDLED_TRAINING_SETS = ("kaggle-face-mask", "chandrikadeb7-faces", "face-mask-12k", "face-mask-12k/train")


def _plain_progress(description: str) -> Callable[[Iterable[Any]], Iterable[Any]]:
    return iter


def _quiet(line: str) -> None:
    return None


@dataclass
class EvalHooks:
    """How a run tells what happens: dataset problems (``warn``), a detector that could not run
    (``error``), notes on how to read the figures (``note``), and a progress wrapper per loop."""

    warn: Callable[[str], None] = _quiet
    error: Callable[[str], None] = _quiet
    note: Callable[[str], None] = _quiet
    progress: Progress = _plain_progress

    def problems(self, report: DatasetReport, prefix: str = "") -> None:
        for line in report.lines():
            self.warn(f"{prefix}{line}")


_DEFAULT_FUSIONS: list[Optional[str]] = [None]


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)


class DetectEvalConfig(_Config):
    """``maskwatch eval detect``: the dataset, what is evaluated (detectors or a predictions file) and how."""

    dataset: Path
    detectors: list[str] = Field(default_factory=lambda: ["centerface"])
    detector_models: dict[str, str] = Field(default_factory=dict)  # detector name -> model file
    predictions: Optional[Path] = None  # a detections JSONL scored instead of running detectors
    split_file: Optional[Path] = None
    min_score: float = 0.05
    operating_score: Optional[float] = None  # None: each detector's own default (min_score for a JSONL)
    threads: int = 2
    label_map: dict[str, str] = Field(default_factory=dict)
    dataset_format: str = "auto"
    classifier: bool = True
    classifier_model: Optional[Path] = None
    fusions: list[Optional[str]] = Field(default_factory=lambda: _DEFAULT_FUSIONS.copy())  # None: the detector's default
    limit: Optional[int] = None


class ClassifyEvalConfig(_Config):
    """``maskwatch eval classify``: the dataset of face crops (or scenes with boxes) and the classifier."""

    dataset: Path
    model: Optional[Path] = None
    split_file: Optional[Path] = None
    label_map: dict[str, str] = Field(default_factory=dict)
    dataset_format: str = "auto"
    threads: int = 2
    limit: Optional[int] = None


class SplitConfig(_Config):
    """``maskwatch eval split``."""

    dataset: Path
    seed: int = 0
    out_dir: Path = Path("splits")
    label_map: dict[str, str] = Field(default_factory=dict)
    dataset_format: str = "auto"


def parse_pairs(values: Sequence[str] | None, what: str) -> dict[str, str]:
    """``NAME=PATH`` options (``--detector-model``) as a dict keyed by the lower-case name."""
    pairs = {}
    for value in values or []:
        if "=" not in value:
            raise MaskWatchError(f"{what} '{value}' is not NAME=PATH")
        name, path = value.split("=", 1)
        pairs[name.strip().lower()] = path.strip()
    return pairs


def parse_fusions(text: str | None) -> list[Optional[str]]:
    """``--fusion`` as a list (``[None]``: the detector's default), each checked against ``pipeline.FUSIONS``."""
    from ..pipeline import FUSIONS

    fusions: list[Optional[str]] = [f.strip().lower() for f in (text or "").split(",") if f.strip()] or [None]
    for f in fusions:
        if f is not None and f not in FUSIONS:
            raise MaskWatchError(f"--fusion: unknown '{f}'; choose from: {', '.join(FUSIONS)}")
    return fusions


def default_min_score(name: str) -> float:
    """The ``min_score`` a detector uses when not told otherwise (its operating point, from its config)."""
    from ..detectors import config_class

    return float(config_class(name).model_fields["min_score"].default)


def training_data_note(dataset: Path, split_file: Path | None) -> str | None:
    """A note when the bundled classifier is scored on a dataset it was trained on, without a split
    file naming held-out images: its figures there are partly on training faces."""
    if split_file is not None:
        return None
    parts = Path(dataset).expanduser().resolve().parts
    tails = {parts[-1], "/".join(parts[-2:])} if parts else set()
    name = next((n for n in BUNDLED_TRAINING_SETS if n in tails), None)
    if name is None:
        return None
    return (f"the bundled classifier was trained on {name} (60 % of its images; MODEL_CARD.md), so these figures "
            "are partly on its training faces, not held-out ones")


def _model_info(name: str, explicit: str | Path | None) -> dict[str, Any]:
    from ..evaluate.report import model_info
    from ..registry import resolve_model

    try:
        path: str | None = str(resolve_model(name, None if explicit is None else str(explicit), download=False))
    except MaskWatchError:
        path = None if explicit is None else str(explicit)
    return model_info(name, path)


# -- datasets ----------------------------------------------------------------------------------------
@dataclass
class SelectedImages:
    dataset: Dataset
    images: list[AnnotatedImage]
    problems: DatasetReport  # split-file stems the dataset lacks

    def info(self, split_file: Path | None) -> dict[str, Any]:
        """The ``dataset`` section of a detection report."""
        from ..evaluate.inputs import problems_dict

        info = {
            "path": str(self.dataset.root), "format": self.dataset.format, "images": len(self.dataset),
            "evaluated_images": len(self.images),
            "faces_by_state": dict(sorted(Counter(label for img in self.images for label in img.labels).items())),
            "dataset_faces_by_state": {k: int(v) for k, v in sorted(self.dataset.label_counts().items())},
            "problems": self.dataset.report.to_dict(), "problem_lines": self.dataset.report.lines(),
            "left_out": problems_dict(self.problems),
        }
        if split_file:
            info["split_file"] = str(split_file)
        return info


def select_dataset(config: DetectEvalConfig, hooks: EvalHooks) -> SelectedImages:
    from ..evaluate.inputs import load_any_dataset, read_split_file, select_images

    dataset = load_any_dataset(config.dataset, config.dataset_format, config.label_map)
    hooks.problems(dataset.report, f"{config.dataset}: ")
    problems = DatasetReport()
    stems = read_split_file(config.split_file) if config.split_file else None
    images = select_images(dataset, stems, config.limit, problems)
    hooks.problems(problems)
    if not images:
        raise MaskWatchError(f"{config.dataset}: no images to evaluate")
    return SelectedImages(dataset, images, problems)


# -- detection ---------------------------------------------------------------------------------------
@dataclass
class SystemRun:
    """One evaluated system (a detector + classifier, or a predictions file) and its evaluation."""

    name: str
    min_score: float
    operating_score: float
    predictions: Predictions
    models: list[dict[str, Any]]
    evaluation: DetectionEvaluation | None = None

    def table_row(self) -> dict[str, Any]:
        """The columns of the side-by-side table (``report.COMPARISON_COLUMNS``)."""
        assert self.evaluation is not None
        return {"name": self.name, **self.evaluation.summary_row(),
                "median_ms": round(self.predictions.median_ms, 1)}


@dataclass
class FailedDetector:
    name: str
    error: str


@dataclass
class DetectEvalResult:
    selection: SelectedImages
    runs: list[SystemRun] = field(default_factory=list)
    failed: list[FailedDetector] = field(default_factory=list)


def evaluate_detection(config: DetectEvalConfig, hooks: EvalHooks | None = None) -> DetectEvalResult:
    """Run every detector (or read the predictions file) on the dataset's selected images and score each."""
    from ..evaluate.metrics import evaluate_detections

    hooks = hooks or EvalHooks()
    selection = select_dataset(config, hooks)
    result = DetectEvalResult(selection)
    if config.predictions is not None:
        result.runs.append(_predictions_run(config, selection.images, hooks))
    else:
        _detector_runs(config, selection.images, hooks, result)
    for run in result.runs:
        run.evaluation = evaluate_detections(selection.images, run.predictions.faces, run.operating_score)
    return result


def _predictions_run(config: DetectEvalConfig, images: list[AnnotatedImage], hooks: EvalHooks) -> SystemRun:
    from ..evaluate.inputs import read_predictions_jsonl, reconcile
    from ..evaluate.report import model_info

    assert config.predictions is not None
    preds = read_predictions_jsonl(config.predictions, config.min_score)
    reconcile(images, preds)
    hooks.problems(preds.problems, f"{config.predictions}: ")
    op = config.operating_score if config.operating_score is not None else config.min_score
    source = {"name": "predictions", "path": str(config.predictions),
              "sha256": model_info("", config.predictions)["sha256"]}
    return SystemRun(f"predictions:{config.predictions.name}", config.min_score, op, preds, [source])


def _detector_runs(config: DetectEvalConfig, images: list[AnnotatedImage], hooks: EvalHooks,
                   result: DetectEvalResult) -> None:
    classifier = None
    if config.classifier:
        from ..classifier import MaskClassifier

        try:
            classifier = MaskClassifier(str(config.classifier_model) if config.classifier_model else None,
                                        threads=config.threads)
        except MaskWatchError as exc:
            raise MaskWatchError(f"{exc} (use --no-classifier to evaluate face detection only)") from None
        note = training_data_note(config.dataset, config.split_file) if config.classifier_model is None else None
        if note:
            hooks.note(note)
    for name in [n.strip().lower() for n in config.detectors if n.strip()]:
        try:
            for fusion in config.fusions:
                run = _detector_run(name, images, classifier, config, fusion, hooks)
                if run is not None:
                    result.runs.append(run)
        except MaskWatchError as exc:  # one unavailable detector does not stop the comparison
            result.failed.append(FailedDetector(name, str(exc)))
            hooks.error(f"detector {name}: {exc}")


def _detector_run(name: str, images: list[AnnotatedImage], classifier: Any, config: DetectEvalConfig,
                  fusion: str | None, hooks: EvalHooks) -> SystemRun | None:
    """One evaluated system; None when ``fusion`` does not apply (a detector with no state of its own)."""
    from ..detectors import create_detector
    from ..evaluate.inputs import run_system
    from ..pipeline import MaskPipeline

    op = config.operating_score if config.operating_score is not None else default_min_score(name)
    model_path = config.detector_models.get(name)
    options: dict[str, Any] = {"min_score": min(config.min_score, op), "threads": config.threads}
    if model_path:
        options["model_path"] = model_path
    found = create_detector(name, **options)
    if fusion is not None and fusion != "classifier" and not getattr(found, "default_fusion", None):
        return None
    pipeline = MaskPipeline(found, classifier, fusion)
    label = name if pipeline.classifier is None else f"{name}+{'fused' if pipeline.fusion == 'fused' else 'classifier'}"
    preds = run_system(images, pipeline, hooks.progress(label))
    hooks.problems(preds.problems, f"{label}: ")
    models = [_model_info(getattr(found, "registry_name", name), model_path)]
    if classifier is not None and pipeline.classifier is not None:
        models.append(_model_info("mask-classifier", str(classifier.path)))
    return SystemRun(label, min(config.min_score, op), op, preds, models)


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)


def _detection_plots(report_dir: Path, run: SystemRun) -> dict[str, str]:
    from ..evaluate.plots import plot_confusion, plot_gallery, plot_pr_curves

    evaluation = run.evaluation
    assert evaluation is not None
    slug, name, plots = _slug(run.name), run.name, {}
    plots["precision-recall"] = plot_pr_curves(evaluation.curves, report_dir / f"pr_{slug}.png",
                                               f"{name}: precision-recall at IoU 0.5").name
    conf = evaluation.result.confusion
    if conf.states_available:
        plots["confusion"] = plot_confusion(conf.matrix, conf.rows_true, conf.columns_predicted,
                                            report_dir / f"confusion_{slug}.png",
                                            f"{name}: states of faces at IoU 0.5").name
    gallery = plot_gallery(evaluation.examples, report_dir / f"gallery_{slug}.png")
    if gallery is not None:
        plots["worst misses"] = gallery.name
    return plots


def write_detection_report(report_dir: Path, config: DetectEvalConfig, result: DetectEvalResult) -> Path:
    """Plots, ``report.json`` and ``report.md`` in ``report_dir``; returns the report.json path."""
    from ..evaluate.inputs import problems_dict
    from ..evaluate.report import detection_markdown, run_info, write_report

    report: dict[str, Any] = {"kind": "detection", "run": run_info(), "dataset": result.selection.info(config.split_file)}
    report["runs"] = []
    for run in result.runs:
        assert run.evaluation is not None
        report["runs"].append({
            "name": run.name, "min_score": run.min_score, "models": run.models,
            **run.evaluation.summary_row(), "median_ms": round(run.predictions.median_ms, 1),
            "metrics": run.evaluation.metrics,
            "left_out": problems_dict(run.predictions.problems),
            "plots": _detection_plots(report_dir, run),
            "examples": {k: [vars(e) for e in v] for k, v in run.evaluation.examples.items()},
        })
    report["failed_detectors"] = [vars(f) for f in result.failed]
    json_path, _ = write_report(report_dir, report, detection_markdown(report))
    return json_path


# -- classification ----------------------------------------------------------------------------------
@dataclass
class ClassifyEvalResult:
    metrics: ClassificationResult
    dataset_info: dict[str, Any]
    model: dict[str, Any]
    misclassified: list[Example]  # most confident first


def _is_class_folders(root: Path) -> bool:
    from ..data.labels import map_label

    return root.is_dir() and any(d.is_dir() and map_label(d.name) for d in root.iterdir())


Sample = tuple[Path, Optional[np.ndarray], str]  # image, face box (None: a face crop), label


def _classify_samples(config: ClassifyEvalConfig, hooks: EvalHooks) -> tuple[list[Sample], dict[str, Any]]:
    """Faces to classify with their labels, and the ``dataset`` section of the report."""
    samples: list[Sample] = []
    if config.dataset_format == "folders" or (config.dataset_format == "auto" and _is_class_folders(config.dataset)):
        from ..data.folders import read_class_folders

        items = read_class_folders(config.dataset, config.label_map)
        hooks.problems(items.report, f"{config.dataset}: ")
        samples += [(Path(path), None, label) for path, label in items]
        info = {"path": str(config.dataset), "format": "folders", "images": len(items),
                "problems": items.report.to_dict(), "problem_lines": items.report.lines()}
    else:
        from ..evaluate.inputs import load_any_dataset

        dataset = load_any_dataset(config.dataset, config.dataset_format, config.label_map)
        hooks.problems(dataset.report, f"{config.dataset}: ")
        for img in dataset.images:
            samples += [(img.path, box, label) for box, label in zip(img.boxes, img.labels)]
        info = {"path": str(dataset.root), "format": dataset.format, "images": len(dataset),
                "problems": dataset.report.to_dict(), "problem_lines": dataset.report.lines()}
    return samples, info


def evaluate_classifier(config: ClassifyEvalConfig, hooks: EvalHooks | None = None) -> ClassifyEvalResult:
    """The classifier's metrics on every face of the dataset (the first ``limit`` images)."""
    from ..classifier import MaskClassifier
    from ..evaluate.inputs import read_split_file
    from ..evaluate.metrics import ClassificationMetrics
    from ..evaluate.report import model_info
    from ..faces import LABEL_INDEX, LABELS

    hooks = hooks or EvalHooks()
    classifier: Any = MaskClassifier(str(config.model) if config.model else None, threads=config.threads)
    stems = set(read_split_file(config.split_file)) if config.split_file else None
    samples, info = _classify_samples(config, hooks)
    if stems is not None:
        samples = [s for s in samples if s[0].stem in stems]
    by_image: dict[Path, list[Sample]] = {}
    for s in samples:
        by_image.setdefault(s[0], []).append(s)
    paths = list(by_image)[:config.limit] if config.limit else list(by_image)
    problems = DatasetReport()
    probs, labels, used = _classify_images(classifier, paths, by_image, problems, hooks)
    hooks.problems(problems)
    if not labels:
        raise MaskWatchError(f"{config.dataset}: no faces could be classified")
    if config.model is None:
        note = training_data_note(config.dataset, config.split_file)
        if note:
            hooks.note(note)
    metrics = ClassificationMetrics()
    metrics.update(labels, probs)
    info.update(evaluated_images=len({u[0] for u in used}),
                faces_by_state={k: sum(1 for x in labels if x == k) for k in sorted(set(labels))},
                left_out={kind: {"count": n, "examples": problems.examples.get(kind, [])}
                          for kind, n in problems.counts.items()})
    wrong = []
    for (path, box, label), p in zip(used, probs):
        k = int(p.argmax())
        if k != LABEL_INDEX[label]:
            wrong.append(Example(str(path), None if box is None else [float(v) for v in box],
                                 f"{label} as {LABELS[k]} {p[k]:.2f}", float(p[k])))
    wrong.sort(key=lambda e: -e.sort_key)
    return ClassifyEvalResult(metrics.compute(), info, model_info("mask-classifier", classifier.path), wrong)


def _classify_images(classifier: Any, paths: list[Path], by_image: dict[Path, list[Sample]], problems: DatasetReport,
                     hooks: EvalHooks) -> tuple[np.ndarray, list[str], list[Sample]]:
    from ..classifier import crop_faces, face_box_in_crop
    from ..classifier.crop import face_locator
    from ..errors import InputError
    from ..images import read_image

    locator = None  # folder images are face crops: frame the face in them as training did
    probs, labels, used = [], [], []
    for path in hooks.progress("classify")(paths):
        try:
            image = read_image(path)
        except InputError as exc:
            problems.add("unreadable image (left out)", str(exc))
            continue
        entries = by_image[path]
        if entries[0][1] is None and locator is None:
            locator = face_locator()
        boxes = np.concatenate([face_box_in_crop(image, locator) if box is None else np.asarray([box], np.float32)
                                for _, box, _ in entries])
        probs.append(classifier.predict_crops(crop_faces(image, boxes, classifier.size, classifier.context)))
        labels += [label for _, _, label in entries]
        used += entries
    stacked = np.concatenate(probs) if probs else np.zeros((0, 3), np.float32)
    return stacked, labels, used


def write_classification_report(report_dir: Path, result: ClassifyEvalResult) -> Path:
    """Plots, ``report.json`` and ``report.md`` in ``report_dir``; returns the report.json path."""
    from ..evaluate.plots import plot_confusion, plot_gallery, plot_pr_curves, plot_reliability
    from ..evaluate.report import classification_markdown, run_info, write_report

    m = result.metrics
    plots = {
        "precision-recall": plot_pr_curves(m.curves, report_dir / "pr.png",
                                           "Precision-recall of p(state), each state against the others").name,
        "confusion": plot_confusion(m.confusion.matrix, m.confusion.rows_true, m.confusion.columns_predicted,
                                    report_dir / "confusion.png", "Classifier: true vs predicted state").name,
        "reliability": plot_reliability(m.calibration.bins, m.calibration.ece, report_dir / "reliability.png").name,
    }
    gallery = plot_gallery({"misclassified": result.misclassified[:18]}, report_dir / "gallery_misclassified.png")
    if gallery is not None:
        plots["misclassified"] = gallery.name
    report = {"kind": "classification", "run": run_info(), "dataset": result.dataset_info, "model": result.model,
              "metrics": m.to_dict(), "plots": plots, "misclassified": [vars(e) for e in result.misclassified[:50]]}
    json_path, _ = write_report(report_dir, report, classification_markdown(report))
    return json_path


# -- splits ------------------------------------------------------------------------------------------
@dataclass
class SplitList:
    name: str
    path: Path
    images: int
    faces: int


def dataset_split_lists(config: SplitConfig, hooks: EvalHooks | None = None) -> tuple[dict[str, list[str]], dict[str, int]]:
    """The project's train/val/test stems of the dataset, and the faces per image stem."""
    from ..data.splits import dataset_splits
    from ..evaluate.inputs import load_any_dataset

    hooks = hooks or EvalHooks()
    dataset = load_any_dataset(config.dataset, config.dataset_format, config.label_map)
    hooks.problems(dataset.report, f"{config.dataset}: ")
    return dataset_splits(dataset, config.seed), {img.key: len(img.boxes) for img in dataset.images}


def write_split_list(config: SplitConfig, name: str, stems: Sequence[str], faces: dict[str, int]) -> SplitList:
    path = config.out_dir / f"{name}.txt"
    path.write_text("".join(f"{s}\n" for s in stems))
    return SplitList(name, path, len(stems), sum(faces[s] for s in stems))
