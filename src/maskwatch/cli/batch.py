"""``maskwatch batch``: recorded videos and photo archives on a Ray cluster, events into one store."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from ._common import err_console, fail, need_extra, user_errors, warn


def register(app: typer.Typer) -> None:
    app.command("batch")(batch_command)


def batch_command(
    inputs: List[str] = typer.Argument(None, help="Video files and image folders (or image files)."),
    manifest: Optional[Path] = typer.Option(None, "--manifest", help="A file listing inputs, one per line (# comments)."),
    ray_address: Optional[str] = typer.Option(None, "--ray", help="Ray cluster: auto, ray://host:10001 or host:6379 "
                                              "(default: a local one with --workers CPUs)."),
    db: Optional[str] = typer.Option(None, "--db", help="Event store and table of finished inputs: SQLAlchemy URL "
                                     "(postgresql+psycopg://...) or SQLite file (default: as watch)."),
    json_dir: Optional[Path] = typer.Option(None, "--json-dir", help="Images: JSON lines (as detect --json) go to "
                                            "files here (default: stdout)."),
    workers: int = typer.Option(2, "--workers", min=1, help="Ray actors, one CPU and one set of models each."),
    images_per_item: int = typer.Option(256, "--images-per-item", min=1, help="Images per unit of work (retry, "
                                        "resume); keep it the same across re-runs."),
    segment_s: Optional[float] = typer.Option(None, "--segment-s", min=1.0, help="Cut videos longer than this "
                                              "many seconds into segments (parallel; see docs/scale.md)."),
    overlap_s: float = typer.Option(5.0, "--overlap-s", min=0.0, help="Warm-up before each segment (events there "
                                    "belong to the segment before)."),
    retries: int = typer.Option(2, "--retries", min=0, help="Times an input is retried when its worker dies."),
    detector: Optional[str] = typer.Option(None, "--detector", help="Detector (default: watch's for videos, "
                                           "detect's for images)."),
    classifier_model: Optional[Path] = typer.Option(None, "--classifier-model", help="Mask classifier ONNX file."),
    min_score: Optional[float] = typer.Option(None, "--min-score", help="Detector score threshold."),
    min_face: float = typer.Option(20.0, "--min-face", help="Videos: ignore faces smaller than this (px)."),
    input_size: Optional[int] = typer.Option(None, "--input-size", help="Detector input, longer side (videos: 640)."),
    threads: int = typer.Option(1, "--threads", min=1, help="ONNX Runtime threads per worker."),
    detect_every: int = typer.Option(3, "--detect-every", min=1, help="Videos: detector on every Nth frame."),
    stride: int = typer.Option(1, "--stride", min=1, help="Videos: process every Nth frame."),
    window: Optional[int] = typer.Option(None, "--window", min=1, help="Videos: observations a track's state is "
                                         "decided over (default: watch's)."),
    hold: Optional[int] = typer.Option(None, "--hold", min=1, help="Videos: observations a new state must lead "
                                       "(default: watch's)."),
    enter: Optional[float] = typer.Option(None, "--enter", min=0.34, max=1.0, help="Videos: mean probability a new "
                                          "state needs (default: watch's)."),
) -> None:
    """Process many recorded videos and image folders on a Ray cluster. Videos go through the same engine
    as watch (events tagged with the file and video_time); images give detect's JSON lines. A re-run skips
    finished inputs. Exit status 1 when any input failed (listed by name)."""
    need_extra("ray", "ray")
    from ..batch import Settings, expand_inputs, read_manifest, run_batch
    from ..monitor.state import StateConfig

    with user_errors():
        given = list(inputs or []) + (read_manifest(manifest) if manifest else [])
        if not given:
            raise fail("give video files, image folders or --manifest")
        items, problems = expand_inputs(given, images_per_item, segment_s, overlap_s)
        given_state = {"window": window, "hold": hold, "enter": enter}
        state = StateConfig(**{k: v for k, v in given_state.items() if v is not None})
        settings = Settings(detector=detector, classifier_model=str(classifier_model) if classifier_model else None,
                            min_score=min_score, min_face=min_face, input_size=input_size, threads=threads,
                            detect_every=detect_every, stride=stride, state=state)
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        with Progress(TextColumn("[bold]batch"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("video frames + images"), TimeRemainingColumn(), console=err_console,
                      transient=True) as progress:
            task = progress.add_task("batch", total=sum(i.weight for i in items))
            result = run_batch(items, settings, db=db, json_dir=json_dir, workers=workers, address=ray_address,
                               retries=retries, on_progress=lambda units: progress.update(task, completed=units))
    failed = problems + result.failed
    hours = result.video_s / 3600
    err_console.print(f"batch: {len(result.done)} inputs done, {len(result.skipped)} skipped (done before), "
                      f"{len(failed)} failed | {result.frames} frames ({hours:.3f} h of video), {result.images} images, "
                      f"{result.events} events on {result.workers} workers", highlight=False)
    for line in failed:
        warn(f"failed: {line}")
    raise typer.Exit(1 if failed else 0)
