"""``maskwatch eval``: score detectors, the classifier, or any system's detections JSONL on an annotated dataset.

The options become a config of ``maskwatch.service.evaluate``, which does the work; this module prints.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Optional

import typer
from rich.console import Console
from rich.table import Table

from ..errors import MaskWatchError
from ._common import fail, output_errors, writable_dir

if TYPE_CHECKING:
    from ..evaluate.results import ClassificationResult
    from ..service.evaluate import EvalHooks

eval_app = typer.Typer(help="Measure detection and classification quality on an annotated dataset.",
                       no_args_is_help=True)
err = Console(stderr=True)
out = Console()
if not out.is_terminal:  # piped: wide enough for the comparison table
    out = Console(width=170)


def register(app: typer.Typer) -> None:
    app.add_typer(eval_app, name="eval")


def _default_min_score(name: str) -> float:
    from ..service.evaluate import default_min_score

    return default_min_score(name)


def _progress(description: str) -> Callable:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    def wrap(items):
        items = list(items)
        with Progress(TextColumn(description), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      console=err, transient=True, disable=len(items) < 5) as bar:
            yield from bar.track(items)
    return wrap


def _line(prefix: str) -> Callable[[str], None]:
    return lambda text: err.print(f"{prefix}{text}", markup=False, highlight=False, soft_wrap=True)


def _hooks() -> "EvalHooks":
    from ..service.evaluate import EvalHooks

    return EvalHooks(warn=_line("warning: "), error=_line("error: "), note=_line("note: "), progress=_progress)


@contextlib.contextmanager
def _errors(report_dir: Path | None) -> Iterator[None]:
    """Check the report folder first; then every error is one line and exit status 2 (1: a failed write)."""
    if report_dir is not None:
        writable_dir(report_dir, "the report")  # before the evaluation, not after it
    try:
        with output_errors(report_dir, "the report") if report_dir is not None else contextlib.nullcontext():
            yield
    except (MaskWatchError, ValueError) as exc:
        raise fail(str(exc)) from None


def _reported(json_path: Path) -> None:
    err.print(f"report: {json_path.parent}/report.md, report.json", markup=False, highlight=False, soft_wrap=True)


def _label_map(text: str | None) -> dict[str, str]:
    from ..data.labels import parse_label_map

    return parse_label_map(text)


@eval_app.command("detect")
def detect_command(
    dataset_path: Path = typer.Argument(..., metavar="DATASET", help="VOC folder, YOLO folder or COCO JSON."),
    detector: str = typer.Option("centerface", "--detector", "-d",
                                 help="Detector(s) to run, comma-separated: centerface, mtcnn, yunet, ultraface, aizoo."),
    detector_model: Optional[list[str]] = typer.Option(None, "--detector-model",
                                                       help="NAME=PATH: model file for a detector (repeatable)."),
    predictions: Optional[Path] = typer.Option(None, "--predictions",
                                               help="Score this detections JSONL (maskwatch detect --json) instead of running detectors."),
    split_file: Optional[Path] = typer.Option(None, "--split-file", help="Keep only the image stems listed in FILE."),
    min_score: float = typer.Option(0.05, "--min-score", help="Lowest face score kept for AP."),
    operating_score: Optional[float] = typer.Option(None, "--operating-score",
                                                    help="Score threshold of the TP/FP table (default: each detector's own default)."),
    threads: int = typer.Option(2, "--threads", help="CPU threads per model."),
    label_map: Optional[str] = typer.Option(None, "--label-map", help="Extra class names: a=mask,b=no_mask,..."),
    dataset_format: str = typer.Option("auto", "--format", help="auto, voc, yolo or coco."),
    no_classifier: bool = typer.Option(False, "--no-classifier", help="No crop classifier: the detector's own mask "
                                       "state (centerface-mask, aizoo, ultraface), else class APs are n/a."),
    classifier_model: Optional[Path] = typer.Option(None, "--classifier-model", help="Mask classifier ONNX file."),
    fusion: Optional[str] = typer.Option(None, "--fusion", help="Comma list of detector, classifier, fused: one run "
                                         "each for detectors with a state of their own (default: the detector's default)."),
    report_dir: Optional[Path] = typer.Option(None, "--report", help="Write report.json, report.md and plots here."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Evaluate only the first N images."),
) -> None:
    """Face detection and mask-state detection metrics (TP/FP at IoU .3/.5, AP, mAP) on an annotated dataset."""
    from ..service import evaluate as service

    with _errors(report_dir):  # plots and report written as the evaluation goes
        config = service.DetectEvalConfig(
            dataset=dataset_path, detectors=detector.split(","),
            detector_models=service.parse_pairs(detector_model, "--detector-model"), predictions=predictions,
            split_file=split_file, min_score=min_score, operating_score=operating_score, threads=threads,
            label_map=_label_map(label_map), dataset_format=dataset_format, classifier=not no_classifier,
            classifier_model=classifier_model, fusions=service.parse_fusions(fusion), limit=limit)
        result = service.evaluate_detection(config, _hooks())
        _print_comparison([run.table_row() for run in result.runs])
        if report_dir is not None:
            _reported(service.write_detection_report(report_dir, config, result))
    if result.failed:
        raise typer.Exit(1)


def _print_comparison(runs: list[dict[str, Any]]) -> None:
    from ..evaluate.report import COMPARISON_COLUMNS, comparison_rows, fmt

    table = Table(title="Detection (operating point and AP)")
    for _, header in COMPARISON_COLUMNS:
        table.add_column(header, justify="left" if header == "system" else "right")
    for row in comparison_rows(runs):
        table.add_row(*[fmt(v) for v in row])
    out.print(table)



@eval_app.command("classify")
def classify_command(
    dataset_path: Path = typer.Argument(..., metavar="DATASET",
                                        help="Folder per class (with_mask/, without_mask/, ...) or a VOC/YOLO/COCO dataset."),
    model: Optional[Path] = typer.Option(None, "--model", help="Classifier ONNX file (default: the shipped model)."),
    split_file: Optional[Path] = typer.Option(None, "--split-file", help="Keep only the image stems listed in FILE."),
    label_map: Optional[str] = typer.Option(None, "--label-map", help="Extra class names: a=mask,b=no_mask,..."),
    dataset_format: str = typer.Option("auto", "--format", help="auto, folders, voc, yolo or coco."),
    threads: int = typer.Option(2, "--threads", help="CPU threads."),
    report_dir: Optional[Path] = typer.Option(None, "--report", help="Write report.json, report.md and plots here."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Evaluate only the first N images."),
) -> None:
    """Classifier accuracy, per-class precision/recall/F1, confusion matrix and calibration on face crops."""
    from ..service import evaluate as service

    with _errors(report_dir):
        config = service.ClassifyEvalConfig(dataset=dataset_path, model=model, split_file=split_file,
                                            label_map=_label_map(label_map), dataset_format=dataset_format,
                                            threads=threads, limit=limit)
        result = service.evaluate_classifier(config, _hooks())
        _print_classification(result.metrics)
        if report_dir is not None:
            _reported(service.write_classification_report(report_dir, result))


def _print_classification(metrics: "ClassificationResult") -> None:
    from ..evaluate.report import fmt

    two = metrics.mask_vs_no_mask
    table = Table(title=f"Classification: accuracy {fmt(metrics.accuracy)}, macro F1 {fmt(metrics.macro_f1)}, "
                        f"ECE {fmt(metrics.calibration.ece)}; mask vs no_mask {fmt(two.accuracy)} "
                        f"({two.samples} faces)")
    for header in ("state", "support", "precision", "recall", "recall 95% CI", "F1", "AP", "best recall at P≥0.8"):
        table.add_column(header, justify="right")
    for name, v in metrics.per_class.items():
        low, high = v.recall_ci95
        best = v.best_recall_at_precision["0.8"]
        table.add_row(name, str(v.support), fmt(v.precision), fmt(v.recall), f"{fmt(low)}–{fmt(high)}",
                      fmt(v.f1), fmt(v.ap), f"{fmt(best.recall)} (p ≥ {fmt(best.threshold)})")
    out.print(table)



@eval_app.command("split")
def split_command(
    dataset_path: Path = typer.Argument(..., metavar="DATASET", help="VOC folder, YOLO folder or COCO JSON."),
    seed: int = typer.Option(0, "--seed", help="Split seed (0 is the project's held-out split)."),
    out_dir: Path = typer.Option(Path("splits"), "--out", help="Folder for train.txt, val.txt, test.txt."),
    label_map: Optional[str] = typer.Option(None, "--label-map", help="Extra class names: a=mask,b=no_mask,..."),
    dataset_format: str = typer.Option("auto", "--format", help="auto, voc, yolo or coco."),
) -> None:
    """Write train/val/test lists of image stems (60/15/25 %, near-duplicate photos kept together)."""
    from ..service import evaluate as service

    try:
        config = service.SplitConfig(dataset=dataset_path, seed=seed, out_dir=out_dir,
                                     label_map=_label_map(label_map), dataset_format=dataset_format)
        splits, faces = service.dataset_split_lists(config, _hooks())
        writable_dir(out_dir, "the split lists")
        for name, stems in splits.items():
            with output_errors(out_dir / f"{name}.txt", "the split list"):
                written = service.write_split_list(config, name, stems, faces)
            out.print(f"{name}: {written.images} images, {written.faces} faces -> {written.path}",
                      markup=False, highlight=False, soft_wrap=True)
    except (MaskWatchError, ValueError, OSError) as exc:
        raise fail(str(exc)) from None
