"""``maskwatch detect``: masks in photos and folders."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import List, Optional

import typer

from ._common import INTERRUPTED, ImageBatch, err_console, fail, jsonl_output, warn

EXAMPLE_NOTE = "the 'astronaut' photo of Eileen Collins (NASA, public domain), as in scikit-image"


def register(app: typer.Typer) -> None:
    app.command("detect")(detect_command)


def example_image_path() -> Path:
    """The example photo inside the package (``maskwatch/examples/astronaut.jpg``)."""
    from ..registry import package_file

    path = package_file("maskwatch", "examples/astronaut.jpg")
    if path is None:
        raise fail("the example photo (maskwatch/examples/astronaut.jpg) is missing from this installation; "
                   "pass your own image")
    return path


def detect_command(
    paths: List[Path] = typer.Argument(None, help="Image files and/or folders (searched recursively)."),
    example: bool = typer.Option(False, "--example", help=f"Run on the bundled example photo ({EXAMPLE_NOTE})."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Folder for annotated images (default: beside each input)."),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write one JSON line per image to this file ('-' for stdout)."),
    min_score: Optional[float] = typer.Option(None, "--min-score", min=0.0, max=1.0,
                                              help="Face confidence threshold (default: the detector's own, 0.3 for CenterFace)."),
    min_face: float = typer.Option(0, "--min-face", min=0, help="Ignore faces whose shorter side is below this many pixels."),
    detector: Optional[str] = typer.Option(None, "--detector", help="centerface (default), centerface-mask "
                                           "(MaskWatch's own, judges masks itself), yunet, ultraface, mtcnn or aizoo."),
    detector_model: Optional[Path] = typer.Option(None, "--detector-model", help="Model file for the detector."),
    classifier: str = typer.Option("default", "--classifier", help="Crop classifier: default (the shipped one), "
                                   "none (the detector's own mask state only), or an ONNX file."),
    classifier_model: Optional[Path] = typer.Option(None, "--classifier-model", help="Mask classifier ONNX file "
                                                    "(the same as --classifier FILE)."),
    fusion: Optional[str] = typer.Option(None, "--fusion", help="Whose mask state counts when the detector has its "
                                         "own: detector, classifier or fused (mean). Default: the detector's."),
    input_size: Optional[int] = typer.Option(None, "--input-size", help="Longer side resized to this (centerface, centerface-mask: default 544; yunet: default native)."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="CPU threads for inference (default: all)."),
    no_draw: bool = typer.Option(False, "--no-draw", help="Do not write annotated images."),
    max_pixels: int = typer.Option(64_000_000, "--max-pixels", help="Refuse images larger than this many pixels."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only the summary."),
) -> None:
    """Find faces and decide mask / no_mask / incorrect for each; write annotated images and JSON lines.

    Exit status: 0 when every input was processed, 1 when any failed (the rest are still processed),
    2 for usage or model errors, 130 when interrupted (after the summary of what was done).
    """
    from ..errors import MaskWatchError
    from ..images import find_images
    from ..service.detect import DetectConfig, DetectService, annotated_path

    inputs = list(paths or [])
    if example:
        inputs.append(example_image_path())
        if out is None and not no_draw:
            out = Path(".")
    if not inputs:
        raise fail("give image files or folders, or --example")
    found = find_images(inputs)
    use_classifier = classifier.lower() != "none"
    if use_classifier and classifier.lower() != "default":
        classifier_model = Path(classifier)
    service = DetectService(DetectConfig.of(  # a bad option or model: the one error line, exit status 2
        detector=detector, detector_model=detector_model, min_score=min_score, min_face=min_face,
        detector_options={"input_size": input_size}, classifier=use_classifier,
        classifier_model=classifier_model, fusion=fusion, threads=threads, max_pixels=max_pixels,
        annotate=not no_draw))

    roots = [Path(p) for p in inputs if Path(p).is_dir()]
    counts: Counter = Counter()
    images_done = unmasked_images = 0
    stage_ms: dict[str, float] = {}
    show_each = not quiet and len(found) <= 20 and str(json_path) != "-"
    interrupted = False
    batch = ImageBatch(found, "detect", quiet)
    try:
        with jsonl_output(json_path) as json_file:
            for item in batch:
                try:
                    result = service.detect_file(item.path, None if no_draw else annotated_path(item.path, out, roots))
                except MaskWatchError as exc:
                    batch.fail(str(exc))
                    continue
                images_done += 1
                for stage, ms in result.stages_ms.items():
                    stage_ms[stage] = stage_ms.get(stage, 0.0) + ms
                image_counts = result.faces.counts()
                counts.update(image_counts)
                if image_counts["no_mask"]:
                    unmasked_images += 1
                if json_file is not None:
                    json_file.write(json.dumps(result.record()) + "\n")
                if show_each:
                    parts = ", ".join(f"{n} {k}" for k, n in image_counts.items() if n) or "no faces"
                    target = f" -> {result.written}" if result.written is not None else ""
                    err_console.print(f"{item.path}: {len(result.faces)} face(s): {parts} "
                                      f"({result.total_ms:.0f} ms){target}")
    except KeyboardInterrupt:
        interrupted = True
        warn("interrupted; results so far are written")

    total_faces = sum(counts.values())
    summary = (f"images: {images_done} processed, {batch.failures} failed | faces: {total_faces} "
               f"(mask {counts['mask']}, no_mask {counts['no_mask']}, incorrect {counts['incorrect']}) | "
               f"images with someone unmasked: {unmasked_images}")
    if images_done:
        per = ", ".join(f"{k} {v / images_done:.1f}" for k, v in stage_ms.items())
        summary += f" | mean ms/image: {per}"
    err_console.print(summary, highlight=False)
    if json_path is not None and str(json_path) != "-":
        err_console.print(f"detections: {json_path}", highlight=False)
    if not no_draw and images_done:
        err_console.print(f"annotated images: {out if out is not None else 'beside each input'} (*.maskwatch.jpg)",
                          highlight=False)
    raise typer.Exit(INTERRUPTED if interrupted else 1 if batch.failures else 0)
