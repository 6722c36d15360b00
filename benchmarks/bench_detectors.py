"""Median detection time per image for each face detector backend.

    PYTHONPATH=src python benchmarks/bench_detectors.py --images 50 --threads 2

Images: the first N (sorted) of ../shared/data/kaggle-face-mask/images, decoded once up front, so
only ``detector.detect`` is timed (two warm-up calls per backend are not counted). Peer model
files come from ../shared/peers ($MASKWATCH_SHARED). A backend that cannot be built (missing
package or file) is listed with the reason instead of a number.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from maskwatch.detectors import create_detector  # noqa: E402
from maskwatch.errors import MaskWatchError  # noqa: E402
from maskwatch.images import read_image  # noqa: E402


def backends(peers: Path) -> dict[str, tuple[str, dict]]:
    return {
        "centerface": ("centerface", {}),
        "centerface-int8": ("centerface", {"precision": "int8"}),
        "yunet": ("yunet", {"model_path": peers / "yunet/yunet_s_640_640.onnx"}),
        "ultraface (masked RFB-640)": ("ultraface", {"model_path": peers / "ultraface/RFB-640-masked_face-v2.onnx"}),
        "ultraface (RFB-320)": ("ultraface", {"model_path": peers / "ultraface/version-RFB-320.onnx"}),
        "aizoo": ("aizoo", {"model_path": peers / "aizoo/face_mask_detection.caffemodel"}),
        "mtcnn": ("mtcnn", {}),
    }


def main() -> None:
    default_shared = Path(os.environ.get("MASKWATCH_SHARED", Path(__file__).resolve().parents[2] / "shared"))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=default_shared)
    parser.add_argument("--images", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", default="", help="comma-separated backend names to run (default: all)")
    args = parser.parse_args()

    paths = sorted((args.shared / "data/kaggle-face-mask/images").glob("*.jpg"))[: args.images]
    if not paths:
        sys.exit(f"error: no images under {args.shared / 'data/kaggle-face-mask/images'}")
    images = [read_image(p) for p in paths]
    print(f"{len(images)} Kaggle images, {args.threads} threads, median ms per image (detect only)")
    print(f"{'backend':28s} {'median ms':>9s} {'p90 ms':>7s} {'faces':>6s}")
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    for label, (name, options) in backends(args.shared / "peers").items():
        if only and name not in only and label not in only:
            continue
        try:
            detector = create_detector(name, threads=args.threads, **{k: str(v) for k, v in options.items()})
        except MaskWatchError as exc:
            print(f"{label:28s} not run: {exc}")
            continue
        for image in images[:2]:
            detector.detect(image)
        times, faces = [], 0
        for image in images:
            start = time.perf_counter()
            faces += len(detector.detect(image))
            times.append((time.perf_counter() - start) * 1000)
        p90 = statistics.quantiles(times, n=10)[-1]
        print(f"{label:28s} {statistics.median(times):9.1f} {p90:7.1f} {faces:6d}")


if __name__ == "__main__":
    main()
