"""``maskwatch synth``: make masked faces (worn correctly and incorrectly) from unmasked ones."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..errors import MaskWatchError
from ._common import fail, writable_dir

# the service's defaults (SynthConfig; a test keeps them equal), written here so that loading the CLI
# does not load the service layer and OpenCV
DEFAULT_MODES = "correct,nose,chin,loose"
DEFAULT_STYLES = "templates,surgical,cloth,n95,kn95"


def synth(
    src: Path = typer.Argument(..., help="Folder of unmasked face images, or a VOC folder (each without_mask box is used)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (mask/ + incorrect/, or images/ + annotations/)."),
    modes: str = typer.Option(DEFAULT_MODES, help="Wear modes, optionally weighted: correct=2,nose,chin,loose."),
    styles: str = typer.Option(DEFAULT_STYLES, help="Mask styles, optionally weighted: surgical=2,n95."),
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

    from ..service.synth import SynthConfig, run_synth

    writable_dir(out, "the synthesised images")  # before the detector loads
    if preview is not None:
        writable_dir(preview.parent, "the preview")
    try:
        config = SynthConfig.from_options(src=src, out=out, modes=modes, styles=styles, templates=templates,
                                          per_face=per_face, seed=seed, min_face=min_face, limit=limit,
                                          preview=preview, threads=threads)
        with Progress(TextColumn("synth"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      console=Console(stderr=True), transient=True) as bar:
            task = bar.add_task("synth", total=None)
            report = run_synth(config, progress=lambda n: bar.advance(task, n),
                               on_total=lambda n: bar.update(task, total=n))
    except MaskWatchError as exc:  # bad input, options or templates: exit 2, as every command
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
