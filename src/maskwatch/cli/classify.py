"""``maskwatch classify``: mask state of images that are already face crops."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import List, Optional

import typer

from ._common import ImageBatch, err_console, jsonl_output


def register(app: typer.Typer) -> None:
    app.command("classify")(classify_command)


def classify_command(
    paths: List[Path] = typer.Argument(..., help="Face-crop images and/or folders (recursive)."),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write one JSON line per image ('-' for stdout)."),
    model: Optional[Path] = typer.Option(None, "--model", help="Classifier ONNX file (default: the shipped one)."),
    locate: bool = typer.Option(True, "--locate/--whole-image",
                                help="Find the face inside each crop first (as in training), or use the whole image."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Classify face crops as mask / no_mask / incorrect.

    With --locate (default) the largest face CenterFace finds in the crop is framed the way the
    classifier was trained; when none is found the whole image is used.
    """
    from ..errors import MaskWatchError
    from ..images import find_images
    from ..service.classify import ClassifyConfig, ClassifyService

    found = find_images(paths)
    service = ClassifyService(ClassifyConfig(model=model, locate=locate, threads=threads))
    counts: Counter = Counter()
    batch = ImageBatch(found, "classify", quiet)
    with jsonl_output(json_path) as out:
        for item in batch:
            try:
                record = service.classify_file(item.path).record()
            except MaskWatchError as exc:
                batch.fail(str(exc))
                continue
            counts[record["label"]] += 1
            if out is not None:
                out.write(json.dumps(record) + "\n")
            if not quiet and len(found) <= 20 and str(json_path) != "-":
                err_console.print(f"{item.path}: {record['label']} ({record['label_score']:.0%})", highlight=False)
    done = sum(counts.values())
    err_console.print(f"images: {done} classified, {batch.failures} failed | mask {counts['mask']}, "
                      f"no_mask {counts['no_mask']}, incorrect {counts['incorrect']}", highlight=False)
    raise typer.Exit(1 if batch.failures else 0)
