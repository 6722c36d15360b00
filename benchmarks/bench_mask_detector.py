"""Accuracy against speed of the mask-state paths, measured in one run on one split of Kaggle.

    python benchmarks/bench_mask_detector.py [--split val] [--threads 2] [--limit 0] [--int8]

Systems: today's two-stage path (stock CenterFace + crop classifier), the AIZOO peer when its
weights are in ../shared/peers, and MaskWatch's centerface-mask detector alone, fused with the
classifier, at smaller input sizes and (``--int8``) statically quantized (calibrated on 64 *train*
images). Per system: 3-class / 2-class mAP@0.5, incorrect AP, with_mask recall, small-face AP, and
the median / p90 milliseconds per image end to end (decode + detect + classify, ``threads`` threads).
Choices are made on ``--split val``; ``--split test`` is the final table, read once.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _kaggle import REPO, kaggle_split  # noqa: E402


def measure(name: str, pipeline, images, threads: int) -> dict:
    from maskwatch.evaluate.detection import evaluate_detections
    from maskwatch.images import read_image

    pipeline(read_image(images[0].path))  # warm-up
    predictions, times = {}, []
    for item in images:
        t0 = time.perf_counter()
        predictions[item.key] = pipeline(read_image(item.path))
        times.append((time.perf_counter() - t0) * 1000)
    m = evaluate_detections(images, predictions, operating_score=pipeline.detector.min_score).metrics
    return {"system": name, "map3": m["map"]["3class"]["map50"], "map2": m["map"]["2class"]["map50"],
            "incorrect_ap": m["class_ap"]["all"]["incorrect"]["ap50"],
            "mask_recall": m["operating_point"]["iou_0.5"]["recall_by_state"].get("mask", float("nan")),
            "small_ap": m["face_ap"]["small"]["ap50"], "face_ap": m["face_ap"]["all"]["ap50"],
            "ms": statistics.median(times), "p90": float(np.percentile(times, 90))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--split", default="val", choices=["train", "val", "test"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--int8", action="store_true", help="also quantize centerface-mask to INT8 and measure it")
    ap.add_argument("--sizes", default="544,448,384", help="input sizes for centerface-mask")
    ap.add_argument("--model", default=None, help="centerface-mask ONNX (default: the shipped one)")
    args = ap.parse_args()

    import cv2

    from maskwatch.classifier import MaskClassifier
    from maskwatch.detectors import create_detector
    from maskwatch.images import read_image
    from maskwatch.pipeline import MaskPipeline
    from maskwatch.registry import resolve_model

    cv2.setNumThreads(args.threads)
    images = kaggle_split(args.split)[: args.limit or None]
    classifier = MaskClassifier(threads=args.threads)
    model = str(resolve_model("centerface-mask", args.model))
    systems = [("centerface (stock) + classifier  [today]",
                MaskPipeline(create_detector("centerface", threads=args.threads), classifier))]
    aizoo = REPO.parent / "shared" / "peers"
    try:
        systems.append(("aizoo (peer, own state)", MaskPipeline(create_detector("aizoo", threads=args.threads), None)))
    except Exception as exc:  # the peer's weights are optional
        print(f"aizoo left out: {exc} ({aizoo})")
    sizes = [int(s) for s in args.sizes.split(",")]
    variants = [(model, "")]
    if args.int8:
        from maskwatch.train.quantize import quantize_detector

        calibration = [read_image(i.path) for i in kaggle_split("train")[:64]]
        int8 = Path(tempfile.mkdtemp()) / "centerface_mask.int8.onnx"
        variants.append((str(quantize_detector(Path(model), int8, calibration)), " INT8"))
    for path, tag in variants:
        for size in sizes:
            det = create_detector("centerface-mask", model_path=path, input_size=size, threads=args.threads)
            systems.append((f"centerface-mask{tag} @{size}", MaskPipeline(det, None, "detector")))
            systems.append((f"centerface-mask{tag} @{size} + classifier (fused)", MaskPipeline(det, classifier, "fused")))
            if size == sizes[0] and not tag:
                systems.append((f"centerface-mask @{size} + classifier (classifier state)",
                                MaskPipeline(det, classifier, "classifier")))
    rows = [measure(name, pipe, images, args.threads) for name, pipe in systems]
    print(f"Kaggle {args.split} split, {len(images)} images, {args.threads} threads, IoU 0.5")
    print("| system | 3-class mAP | 2-class mAP | incorrect AP | mask recall | face AP <32 px | face AP | median ms | p90 ms |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['system']} | {r['map3']:.3f} | {r['map2']:.3f} | {r['incorrect_ap']:.3f} | {r['mask_recall']:.3f} "
              f"| {r['small_ap']:.3f} | {r['face_ap']:.3f} | {r['ms']:.1f} | {r['p90']:.1f} |")


if __name__ == "__main__":
    main()
