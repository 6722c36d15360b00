"""Faces per second of `maskwatch synth` (detection + placement + rendering + JPEG writing).

Run: PYTHONPATH=src MASKWATCH_SHARED=/work/shared python benchmarks/bench_synth.py [SRC] [--limit N] [--threads T]
Default SRC: $MASKWATCH_SHARED/data/chandrikadeb7-faces/without_mask, first 150 images, all modes and styles.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from maskwatch.service.synth import default_template_dir
from maskwatch.detectors.centerface import CenterFaceDetector
from maskwatch.synth import MaskSynthesizer, face_pose, synthesize_folder


def main() -> None:
    shared = Path(os.environ.get("MASKWATCH_SHARED", "../shared"))
    parser = argparse.ArgumentParser()
    parser.add_argument("src", nargs="?", default=shared / "data" / "chandrikadeb7-faces" / "without_mask")
    parser.add_argument("--limit", type=int, default=150)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    synth = MaskSynthesizer.with_templates(default_template_dir(), per_face=1.0,
                                           detector=CenterFaceDetector(input_size=320, threads=args.threads))
    with tempfile.TemporaryDirectory() as out:
        report = synthesize_folder(args.src, out, synth, seed=0, limit=args.limit)
    print(f"end to end: {report.faces_used} faces in {report.seconds:.1f} s = {report.faces_used / report.seconds:.1f} faces/s "
          f"(threads={args.threads}, skipped {dict(report.skipped)})")
    # rendering alone (no detection, no file writing): one fixed face, all styles and modes
    import numpy as np

    image = np.full((180, 160, 3), 150, np.uint8)
    pose = face_pose(np.array([[60, 70], [100, 70], [80, 95], [66, 115], [94, 115]], np.float32))
    rng = np.random.default_rng(0)
    combos = [(m, s) for m in synth.modes for s in synth.styles]
    start = time.perf_counter()
    for i in range(200):
        mode, style = combos[i % len(combos)]
        synth.put_mask(image, pose, mode, style, rng)
    print(f"mask rendering only: {200 / (time.perf_counter() - start):.1f} masks/s (80 px face)")


if __name__ == "__main__":
    main()
