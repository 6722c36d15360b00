"""``maskwatch synth``: make masked faces (worn correctly and incorrectly) from unmasked ones."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..errors import MaskWatchError
from ._common import fail


def default_template_dir() -> Path:
    """``$MASKWATCH_SHARED/masks/masktheface``; a MaskWatchError when it is unset or missing."""
    from ..settings import get_settings

    return get_settings().shared_path("masks", "masktheface", what="mask templates (--templates)")


def synth(
    src: Path = typer.Argument(..., help="Folder of unmasked face images, or a VOC folder (each without_mask box is used)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (mask/ + incorrect/, or images/ + annotations/)."),
    modes: str = typer.Option("correct,nose,chin,loose", help="Wear modes, optionally weighted: correct=2,nose,chin,loose."),
    styles: str = typer.Option("templates,surgical,cloth,n95,kn95", help="Mask styles, optionally weighted: surgical=2,n95."),
    templates: Optional[Path] = typer.Option(None, help="MaskTheFace-style template folder (masks.cfg + PNGs). "
                                             "Default: $MASKWATCH_SHARED/masks/masktheface."),
    per_face: float = typer.Option(1.0, min=0.01, max=4.0, help="Results per face; fractional: 1.5 = one, and a second for half of them."),
    seed: int = typer.Option(0, help="Random seed; the same seed and inputs give the same outputs."),
    min_face: float = typer.Option(40, help="Skip faces whose box is smaller than this (pixels, shorter side)."),
    limit: Optional[int] = typer.Option(None, min=1, help="Use at most this many source images (sorted order)."),
    preview: Optional[Path] = typer.Option(None, help="Write a contact sheet PNG of 24 results across modes and styles."),
    threads: Optional[int] = typer.Option(None, min=1, help="ONNX Runtime threads for the face detector."),
) -> None:
    """Put masks on unmasked faces, worn correctly (label mask) or incorrectly (label incorrect)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    err = Console(stderr=True)
    from ._common import writable_dir

    writable_dir(out, "the synthesised images")  # before the detector loads
    if preview is not None:
        writable_dir(preview.parent, "the preview")
    try:
        from ..detectors.centerface import CenterFaceDetector
        from ..synth import STYLES, WEAR_MODES, MaskSynthesizer, parse_weights, synthesize_folder

        try:
            mode_weights = parse_weights(modes, tuple(WEAR_MODES), "wear mode")
            style_weights = parse_weights(styles, STYLES, "style")
        except ValueError as exc:
            raise MaskWatchError(str(exc)) from None
        if templates is None and style_weights.get("templates", 0) > 0:
            templates = default_template_dir()
        synth_ = MaskSynthesizer.with_templates(
            templates, modes=mode_weights, styles=style_weights, per_face=per_face,
            min_face=min_face, detector=CenterFaceDetector(input_size=320, threads=threads),
        )
        with Progress(TextColumn("synth"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      console=err, transient=True) as bar:
            task = bar.add_task("synth", total=None)
            report = synthesize_folder(
                src, out, synth_, seed=seed, limit=limit, preview=preview,
                progress=lambda n: bar.advance(task, n), on_total=lambda n: bar.update(task, total=n),
            )
    except (ValueError, MaskWatchError) as exc:  # bad input, options or templates: exit 2, as every command
        raise fail(str(exc)) from None
    _print_summary(report, out, preview)


def _print_summary(report, out: Path, preview: Path | None) -> None:
    from rich.console import Console

    con = Console(highlight=False, soft_wrap=True)
    written = sum(report.written.values())
    rate = report.faces_used / report.seconds if report.seconds else 0.0
    con.print(f"{report.sources} source images, {report.faces_used} faces used, {written} images written "
              f"({', '.join(f'{k} {v}' for k, v in sorted(report.written.items())) or 'none'}) "
              f"in {report.seconds:.1f} s ({rate:.1f} faces/s) -> {out}", markup=False)
    if report.modes:
        con.print("modes: " + ", ".join(f"{k} {v}" for k, v in sorted(report.modes.items())), markup=False)
        con.print("styles: " + ", ".join(f"{k} {v}" for k, v in sorted(report.styles.items())), markup=False)
    for reason, n in sorted(report.skipped.items()):
        con.print(f"skipped ({reason}): {n}, e.g. {'; '.join(report.examples.get(reason, []))}", markup=False)
    for line in report.template_problems:
        con.print(f"template problem: {line}", markup=False)
    if preview:
        con.print(f"preview: {report.preview_tiles} tiles -> {preview}", markup=False)


def register(app: typer.Typer) -> None:
    app.command("synth")(synth)
