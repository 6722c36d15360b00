"""Fit CenterFace's box offsets to an annotation convention (how DEFAULT_BOX_ADJUST was made).

    python tools/fit_box_adjust.py [--limit 200]

Runs CenterFace with no adjustment on the Kaggle *train* split, matches boxes at IoU 0.4 and prints the
median offsets of each side as fractions of the detected box's width/height.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from _kaggle import kaggle_split  # noqa: E402

from maskwatch.detectors import create_detector  # noqa: E402
from maskwatch.evaluate.matching import match_image  # noqa: E402
from maskwatch.images import read_image  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limit", type=int, default=200)
    args = ap.parse_args()
    detector = create_detector("centerface", min_score=0.3, box_adjust=None, threads=2)
    offsets = []
    for item in kaggle_split("train")[: args.limit]:
        faces = detector.detect(read_image(item.path))
        pred_match, _, _ = match_image(faces.boxes, faces.scores, item.boxes, 0.4)
        for p, g in enumerate(pred_match):
            if g < 0:
                continue
            pb, gb = faces.boxes[p], item.boxes[g]
            w, h = pb[2] - pb[0], pb[3] - pb[1]
            offsets.append((gb - pb) / np.array([w, h, w, h]))
    med = np.median(offsets, axis=0)
    print(f"{len(offsets)} matched faces; box_adjust = ({', '.join(f'{v:.3f}' for v in med)})")


if __name__ == "__main__":
    main()
