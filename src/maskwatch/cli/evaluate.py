"""``maskwatch eval``: score detectors, the classifier, or any system's detections JSONL on an annotated dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Optional

import typer
from rich.console import Console
from rich.table import Table

from ._common import output_errors, writable_dir

from ..errors import MaskWatchError
from ._common import fail

eval_app = typer.Typer(help="Measure detection and classification quality on an annotated dataset.",
                       no_args_is_help=True)
err = Console(stderr=True)
out = Console()
if not out.is_terminal:  # piped: wide enough for the comparison table
    out = Console(width=170)


def register(app: typer.Typer) -> None:
    app.add_typer(eval_app, name="eval")


def _fail(exc: Exception) -> None:
    raise fail(str(exc)) from None  # the one error line and exit status 2 of every command


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


def _parse_pairs(values: list[str] | None, what: str) -> dict[str, str]:
    pairs = {}
    for value in values or []:
        if "=" not in value:
            raise MaskWatchError(f"{what} '{value}' is not NAME=PATH")
        name, path = value.split("=", 1)
        pairs[name.strip().lower()] = path.strip()
    return pairs


def _default_min_score(name: str) -> float:
    """The ``min_score`` a detector uses when not told otherwise (its operating point, from its config)."""
    from ..detectors import config_class

    return float(config_class(name).model_fields["min_score"].default)


def _model_path(registry_name: str, explicit: str | None) -> str | None:
    from ..registry import resolve_model

    try:
        return str(resolve_model(registry_name, explicit, download=False))
    except MaskWatchError:
        return explicit


def _dataset_info(dataset, images, problems) -> dict:
    from collections import Counter

    from ..evaluate.inputs import problems_dict

    return {
        "path": str(dataset.root), "format": dataset.format, "images": len(dataset),
        "evaluated_images": len(images),
        "faces_by_state": dict(sorted(Counter(label for img in images for label in img.labels).items())),
        "dataset_faces_by_state": {k: int(v) for k, v in sorted(dataset.label_counts().items())},
        "problems": dataset.report.to_dict(), "problem_lines": dataset.report.lines(),
        "left_out": problems_dict(problems),
    }


def _warn_problems(report, prefix: str = "") -> None:
    for line in report.lines():
        err.print(f"warning: {prefix}{line}", markup=False, highlight=False, soft_wrap=True)


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
    if report_dir is not None:
        writable_dir(report_dir, "the report")  # before the evaluation, not after it
    try:
        with _report_errors(report_dir):  # plots and report written as the evaluation goes
            _detect(dataset_path, detector, detector_model, predictions, split_file, min_score, operating_score,
                    threads, label_map, dataset_format, no_classifier, classifier_model, report_dir, limit, fusion)
    except (MaskWatchError, ValueError) as exc:
        _fail(exc)


def _detect(dataset_path, detector, detector_model, predictions, split_file, min_score, operating_score, threads,
            label_map, dataset_format, no_classifier, classifier_model, report_dir, limit, fusion=None) -> None:
    from ..data.dataset import DatasetReport
    from ..data.labels import parse_label_map
    from ..evaluate.detection import evaluate_detections
    from ..evaluate.inputs import (
        load_any_dataset,
        read_predictions_jsonl,
        read_split_file,
        reconcile,
        select_images,
    )
    from ..evaluate.report import run_info

    dataset = load_any_dataset(dataset_path, dataset_format, parse_label_map(label_map))
    _warn_problems(dataset.report, f"{dataset_path}: ")
    selection_problems = DatasetReport()
    stems = read_split_file(split_file) if split_file else None
    images = select_images(dataset, stems, limit, selection_problems)
    _warn_problems(selection_problems)
    if not images:
        raise MaskWatchError(f"{dataset_path}: no images to evaluate")

    runs: list[dict[str, Any]] = []
    failed: list[dict[str, str]] = []
    evaluations = []
    if predictions is not None:
        preds = read_predictions_jsonl(predictions, min_score)
        reconcile(images, preds)
        _warn_problems(preds.problems, f"{predictions}: ")
        op = operating_score if operating_score is not None else min_score
        runs.append({"name": f"predictions:{predictions.name}", "min_score": min_score, "preds": preds, "op": op,
                     "models": [{"name": "predictions", "path": str(predictions), "sha256": _sha(predictions)}]})
    else:
        classifier = None
        if not no_classifier:
            from ..classifier import MaskClassifier

            try:
                classifier = MaskClassifier(str(classifier_model) if classifier_model else None, threads=threads)
            except MaskWatchError as exc:
                raise MaskWatchError(f"{exc} (use --no-classifier to evaluate face detection only)") from None
        paths = _parse_pairs(detector_model, "--detector-model")
        from ..pipeline import FUSIONS

        fusions = [f.strip().lower() for f in (fusion or "").split(",") if f.strip()] or [None]
        for f in fusions:
            if f is not None and f not in FUSIONS:
                raise MaskWatchError(f"--fusion: unknown '{f}'; choose from: {', '.join(FUSIONS)}")
        for name in [n.strip().lower() for n in detector.split(",") if n.strip()]:
            try:
                for f in fusions:
                    run = _run_detector(name, images, classifier, paths.get(name), min_score, operating_score,
                                        threads, f)
                    if run is not None:
                        runs.append(run)
            except MaskWatchError as exc:  # one unavailable detector does not stop the comparison
                failed.append({"name": name, "error": str(exc)})
                err.print(f"error: detector {name}: {exc}", markup=False, highlight=False, soft_wrap=True)
    for run in runs:
        evaluation = evaluate_detections(images, run["preds"].faces, run["op"])
        evaluations.append(evaluation)
        run.update(evaluation.summary_row(), median_ms=round(run["preds"].median_ms, 1), metrics=evaluation.metrics)
    _print_comparison(runs)

    if report_dir is not None:
        from ..evaluate.inputs import problems_dict

        report = {"kind": "detection", "run": run_info(), "dataset": _dataset_info(dataset, images, selection_problems)}
        if split_file:
            report["dataset"]["split_file"] = str(split_file)
        report["runs"] = []
        for run, evaluation in zip(runs, evaluations):
            entry = {k: v for k, v in run.items() if k not in ("preds", "op")}
            entry["left_out"] = problems_dict(run["preds"].problems)
            entry["plots"] = _detection_plots(report_dir, run["name"], evaluation)
            entry["examples"] = {k: [vars(e) for e in v] for k, v in evaluation.examples.items()}
            report["runs"].append(entry)
        report["failed_detectors"] = failed
        _write(report_dir, report, "detection")
    if failed:
        raise typer.Exit(1)


def _run_detector(name: str, images, classifier, model_path: str | None, min_score: float,
                  operating_score: float | None, threads: int, fusion: str | None = None) -> dict[str, Any] | None:
    """One evaluated system; None when ``fusion`` does not apply (a detector with no state of its own)."""
    from ..detectors import create_detector
    from ..evaluate.inputs import run_system
    from ..pipeline import MaskPipeline

    op = operating_score if operating_score is not None else _default_min_score(name)
    options: dict[str, Any] = {"min_score": min(min_score, op), "threads": threads}
    if model_path:
        options["model_path"] = model_path
    found = create_detector(name, **options)
    if fusion is not None and fusion != "classifier" and not getattr(found, "default_fusion", None):
        return None
    pipeline = MaskPipeline(found, classifier, fusion)
    label = name if pipeline.classifier is None else f"{name}+{'fused' if pipeline.fusion == 'fused' else 'classifier'}"
    preds = run_system(images, pipeline, _progress(label))
    _warn_problems(preds.problems, f"{label}: ")
    models = [_model_entry(getattr(found, "registry_name", name), model_path)]
    if pipeline.classifier is not None:
        models.append(_model_entry("mask-classifier", str(pipeline.classifier.path)))
    return {"name": label, "min_score": min(min_score, op), "preds": preds, "op": op, "models": models}


def _sha(path: Path) -> str | None:
    from ..evaluate.report import model_info

    return model_info("", path)["sha256"]


def _model_entry(name: str, explicit: str | None) -> dict:
    from ..evaluate.report import model_info

    return model_info(name, _model_path(name, explicit))


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)


def _detection_plots(report_dir: Path, name: str, evaluation) -> dict[str, str]:
    from ..evaluate.plots import plot_confusion, plot_gallery, plot_pr_curves

    slug, plots = _slug(name), {}
    plots["precision-recall"] = plot_pr_curves(evaluation.curves, report_dir / f"pr_{slug}.png",
                                               f"{name}: precision-recall at IoU 0.5").name
    conf = evaluation.metrics["confusion_iou_0.5"]
    if conf["states_available"]:
        plots["confusion"] = plot_confusion(conf["matrix"], conf["rows_true"], conf["columns_predicted"],
                                            report_dir / f"confusion_{slug}.png",
                                            f"{name}: states of faces at IoU 0.5").name
    gallery = plot_gallery(evaluation.examples, report_dir / f"gallery_{slug}.png")
    if gallery is not None:
        plots["worst misses"] = gallery.name
    return plots


def _report_errors(report_dir: Path | None):
    import contextlib

    return output_errors(report_dir, "the report") if report_dir is not None else contextlib.nullcontext()


def _write(report_dir: Path, report: dict, kind: str) -> None:
    from ..evaluate.report import (
        classification_markdown,
        detection_markdown,
        write_report,
    )

    markdown = detection_markdown(report) if kind == "detection" else classification_markdown(report)
    json_path, _ = write_report(report_dir, report, markdown)
    err.print(f"report: {json_path.parent}/report.md, report.json", markup=False, highlight=False, soft_wrap=True)


def _print_comparison(runs: list[dict]) -> None:
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
    if report_dir is not None:
        writable_dir(report_dir, "the report")
    try:
        with _report_errors(report_dir):
            _classify(dataset_path, model, split_file, label_map, dataset_format, threads, report_dir, limit)
    except (MaskWatchError, ValueError) as exc:
        _fail(exc)


def _is_class_folders(root: Path) -> bool:
    from ..data.labels import map_label

    return root.is_dir() and any(d.is_dir() and map_label(d.name) for d in root.iterdir())


def _classify(dataset_path, model, split_file, label_map, dataset_format, threads, report_dir, limit) -> None:
    from ..classifier import MaskClassifier
    from ..data.dataset import DatasetReport
    from ..data.labels import parse_label_map
    from ..evaluate.classification import evaluate_classification
    from ..evaluate.detection import Example
    from ..evaluate.inputs import read_split_file
    from ..evaluate.report import model_info, run_info

    classifier = MaskClassifier(str(model) if model else None, threads=threads)
    stems = set(read_split_file(split_file)) if split_file else None
    problems = DatasetReport()
    samples = []  # (path, box or None, label)
    if dataset_format == "folders" or (dataset_format == "auto" and _is_class_folders(dataset_path)):
        from ..data.folders import read_class_folders

        items = read_class_folders(dataset_path, parse_label_map(label_map))
        folder_report = items.report
        _warn_problems(folder_report, f"{dataset_path}: ")
        samples += [(Path(path), None, label) for path, label in items]
        info = {"path": str(dataset_path), "format": "folders", "images": len(items),
                "problems": folder_report.to_dict(), "problem_lines": folder_report.lines()}
    else:
        from ..evaluate.inputs import load_any_dataset

        dataset = load_any_dataset(dataset_path, dataset_format, parse_label_map(label_map))
        _warn_problems(dataset.report, f"{dataset_path}: ")
        for img in dataset.images:
            samples += [(img.path, box, label) for box, label in zip(img.boxes, img.labels)]
        info = {"path": str(dataset.root), "format": dataset.format, "images": len(dataset),
                "problems": dataset.report.to_dict(), "problem_lines": dataset.report.lines()}
    if stems is not None:
        samples = [s for s in samples if s[0].stem in stems]
    by_image: dict[Path, list[tuple]] = {}
    for s in samples:
        by_image.setdefault(s[0], []).append(s)
    paths = list(by_image)[:limit] if limit else list(by_image)
    probs, labels, used = _classify_images(classifier, paths, by_image, problems)
    _warn_problems(problems)
    if not labels:
        raise MaskWatchError(f"{dataset_path}: no faces could be classified")
    metrics = evaluate_classification(labels, probs)
    info.update(evaluated_images=len({u[0] for u in used}),
                faces_by_state={k: sum(1 for x in labels if x == k) for k in sorted(set(labels))},
                left_out={kind: {"count": n, "examples": problems.examples.get(kind, [])}
                          for kind, n in problems.counts.items()})
    _print_classification(metrics)
    if report_dir is None:
        return
    from ..evaluate.plots import plot_confusion, plot_gallery, plot_reliability
    from ..faces import LABEL_INDEX, LABELS

    wrong = []
    for (path, box, label), p in zip(used, probs):
        k = int(p.argmax())
        if k != LABEL_INDEX[label]:
            wrong.append(Example(str(path), None if box is None else [float(v) for v in box],
                                 f"{label} as {LABELS[k]} {p[k]:.2f}", float(p[k])))
    wrong.sort(key=lambda e: -e.sort_key)
    conf = metrics["confusion"]
    from ..evaluate.classification import state_curves
    from ..evaluate.plots import plot_pr_curves

    plots = {
        "precision-recall": plot_pr_curves(state_curves(labels, probs), report_dir / "pr.png",
                                           "Precision-recall of p(state), each state against the others").name,
        "confusion": plot_confusion(conf["matrix"], conf["rows_true"], conf["columns_predicted"],
                                    report_dir / "confusion.png", "Classifier: true vs predicted state").name,
        "reliability": plot_reliability(metrics["calibration"]["bins"], metrics["calibration"]["ece"],
                                        report_dir / "reliability.png").name,
    }
    gallery = plot_gallery({"misclassified": wrong[:18]}, report_dir / "gallery_misclassified.png")
    if gallery is not None:
        plots["misclassified"] = gallery.name
    report = {"kind": "classification", "run": run_info(), "dataset": info,
              "model": model_info("mask-classifier", classifier.path), "metrics": metrics, "plots": plots,
              "misclassified": [vars(e) for e in wrong[:50]]}
    _write(report_dir, report, "classification")


def _classify_images(classifier, paths, by_image, problems):
    import numpy as np

    from ..classifier import crop_faces, face_box_in_crop
    from ..detectors import create_detector
    from ..errors import InputError
    from ..images import read_image

    locator = None  # folder images are face crops: frame the face in them as training did

    probs, labels, used = [], [], []
    for path in _progress("classify")(paths):
        try:
            image = read_image(path)
        except InputError as exc:
            problems.add("unreadable image (left out)", str(exc))
            continue
        entries = by_image[path]
        if entries[0][1] is None and locator is None:
            locator = create_detector("centerface", min_score=0.3)
        boxes = np.concatenate([face_box_in_crop(image, locator) if box is None else np.asarray([box], np.float32)
                                for _, box, _ in entries])
        probs.append(classifier.predict_crops(crop_faces(image, boxes, classifier.size, classifier.context)))
        labels += [label for _, _, label in entries]
        used += entries
    stacked = np.concatenate(probs) if probs else np.zeros((0, 3), np.float32)
    return stacked, labels, used


def _print_classification(metrics: dict) -> None:
    from ..evaluate.report import fmt

    two = metrics["mask_vs_no_mask"]
    table = Table(title=f"Classification: accuracy {fmt(metrics['accuracy'])}, macro F1 {fmt(metrics['macro_f1'])}, "
                        f"ECE {fmt(metrics['calibration']['ece'])}; mask vs no_mask {fmt(two['accuracy'])} "
                        f"({two['samples']} faces)")
    for header in ("state", "support", "precision", "recall", "recall 95% CI", "F1", "AP", "best recall at P≥0.8"):
        table.add_column(header, justify="right")
    for name, v in metrics["per_class"].items():
        low, high = v["recall_ci95"]
        best = v["best_recall_at_precision"]["0.8"]
        table.add_row(name, str(v["support"]), fmt(v["precision"]), fmt(v["recall"]), f"{fmt(low)}–{fmt(high)}",
                      fmt(v["f1"]), fmt(v["ap"]), f"{fmt(best['recall'])} (p ≥ {fmt(best['threshold'])})")
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
    try:
        from ..data.labels import parse_label_map
        from ..evaluate.inputs import dataset_splits, load_any_dataset

        dataset = load_any_dataset(dataset_path, dataset_format, parse_label_map(label_map))
        _warn_problems(dataset.report, f"{dataset_path}: ")
        splits = dataset_splits(dataset, seed)
        writable_dir(out_dir, "the split lists")
        faces = {img.key: len(img.boxes) for img in dataset.images}
        for name, stems in splits.items():
            with output_errors(out_dir / f"{name}.txt", "the split list"):
                (out_dir / f"{name}.txt").write_text("".join(f"{s}\n" for s in stems))
            out.print(f"{name}: {len(stems)} images, {sum(faces[s] for s in stems)} faces -> {out_dir / (name + '.txt')}",
                      markup=False, highlight=False, soft_wrap=True)
    except (MaskWatchError, ValueError, OSError) as exc:
        _fail(exc)
