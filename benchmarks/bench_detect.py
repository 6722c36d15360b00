"""Speed of `maskwatch detect` per stage on the Kaggle held-out split.

    python benchmarks/bench_detect.py [--threads 2] [--limit 0] [--detector centerface]

Prints the median and p90 milliseconds per image for decode, detect, classify, draw and end to end,
and the classifier's time per face in batches of 8.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _kaggle import kaggle_split  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--limit", type=int, default=0, help="only the first N images (0: all)")
    ap.add_argument("--detector", default=None, help="default: MaskWatch's default detector")
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()

    import cv2

    from maskwatch.classifier import crop_faces
    from maskwatch.draw import annotate
    from maskwatch.images import read_image
    from maskwatch.pipeline import build_pipeline

    cv2.setNumThreads(args.threads)
    images = kaggle_split("test")
    if args.limit:
        images = images[: args.limit]
    pipe = build_pipeline(args.detector, threads=args.threads)
    pipe(read_image(images[0].path))  # warm-up
    stages: dict[str, list[float]] = {"decode": [], "detect": [], "classify": [], "draw": [], "total": []}
    n_faces = 0
    for _ in range(args.repeat):
        for item in images:
            t0 = time.perf_counter()
            img = read_image(item.path)
            t1 = time.perf_counter()
            faces = pipe.detector.detect(img)
            t2 = time.perf_counter()
            if len(faces) and pipe.classifier is not None:
                faces = pipe.classifier.classify(img, faces)
            t3 = time.perf_counter()
            annotate(img, faces)
            t4 = time.perf_counter()
            n_faces += len(faces)
            for k, v in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0)):
                stages[k].append(v * 1000)
    print(f"{len(images)} images x {args.repeat}, {n_faces} faces, detector {args.detector}, {args.threads} threads")
    print(f"{'stage':10s} {'median ms':>10s} {'p90 ms':>8s} {'mean ms':>8s}")
    for k, v in stages.items():
        print(f"{k:10s} {statistics.median(v):10.2f} {np.percentile(v, 90):8.2f} {statistics.fmean(v):8.2f}")
    print(f"throughput: {1000 / statistics.fmean(stages['total']):.1f} images/s")

    # classifier alone: ms per face in batches of 8
    if pipe.classifier is None:
        return
    crops = crop_faces(read_image(images[0].path), np.array([[10, 10, 60, 60]] * 8, np.float32))
    clf = pipe.classifier
    for _ in range(5):
        clf.predict_crops(crops)
    times = []
    for _ in range(50):
        t = time.perf_counter()
        clf.predict_crops(crops)
        times.append((time.perf_counter() - t) * 1000)
    print(f"classifier: {statistics.median(times) / 8:.3f} ms per face in a batch of 8 (median of 50)")


if __name__ == "__main__":
    main()
