"""``maskwatch quantize-detector``: an INT8 copy of CenterFace, calibrated on your images."""

from __future__ import annotations

import random
from pathlib import Path
from typing import List, Optional

import typer

from ._common import err_console, output_errors, user_errors, writable_dir


def register(app: typer.Typer) -> None:
    app.command("quantize-detector")(quantize_detector_command)


def quantize_detector_command(
    paths: List[Path] = typer.Argument(..., help="Calibration images and/or folders (recursive): scenes like "
                                       "the ones the detector will see (training images, never test)."),
    out: Path = typer.Option(Path("centerface_int8.onnx"), "--out", "-o", help="Where the INT8 model goes."),
    split_file: Optional[Path] = typer.Option(None, "--split-file", help="Use only the image stems listed in FILE "
                                              "(e.g. splits/kaggle-face-mask/train.txt)."),
    count: int = typer.Option(64, "--count", min=1, help="Calibrate on this many images (a seeded random choice)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the choice of images."),
    input_size: int = typer.Option(640, "--input-size", min=64, help="Longer side the images are resized to, as "
                                   "the detector will run (--input-size of detect/watch)."),
    model: Optional[Path] = typer.Option(None, "--model", help="CenterFace ONNX file to quantize (default: the "
                                         "stock one)."),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Quantize CenterFace to INT8 (QDQ, per-channel weights; activations calibrated on real images).

    The result runs with `detect/eval --detector-model centerface=OUT` or `models.detector_model` in a
    venue config. The bundled INT8 model (precision: int8) was made with this command, see
    MODEL_CARD_CENTERFACE_INT8.md.
    """
    from ..detectors.int8 import quantize_centerface
    from ..errors import MaskWatchError
    from ..evaluate.inputs import read_split_file
    from ..images import find_images, read_image

    writable_dir(out.expanduser().resolve().parent, "the model")
    with user_errors():
        found = [item.path for item in find_images(paths) if item.error is None]
        if split_file is not None:
            wanted = set(read_split_file(split_file))
            found = [p for p in found if p.stem in wanted]
        if not found:
            raise MaskWatchError("no calibration images" + (f" listed in {split_file}" if split_file else ""))
        chosen = sorted(found)
        random.Random(seed).shuffle(chosen)
        chosen = chosen[:count]

        def images():
            for path in chosen:
                try:
                    yield read_image(path)
                except MaskWatchError as exc:
                    err_console.print(f"skipped: {exc}")

        def progress(n: int) -> None:
            if not quiet and (n == 1 or n % 8 == 0 or n == len(chosen)):
                err_console.print(f"calibrating {n}/{len(chosen)}")

        with output_errors(out, "the model"):
            quantize_centerface(out, images(), input_size, str(model) if model else None, progress)
    from ..registry import sha256_of

    typer.echo(f"{out}: INT8 CenterFace calibrated on {len(chosen)} image(s) at {input_size} px "
               f"(sha256 {sha256_of(out)})")
