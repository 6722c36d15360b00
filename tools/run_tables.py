"""Markdown tables of a training run's held-out metrics (what MODEL_CARD.md shows).

    python tools/run_tables.py runs/NAME [--threshold-sweep]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

LABELS = ("mask", "no_mask", "incorrect")


def table(name: str, m: dict) -> str:
    rows = [f"**{name}**: {m['n']} faces, accuracy {m['accuracy']:.4f}, mask vs no_mask accuracy "
            f"{m['mask_vs_no_mask_accuracy']:.4f}", "", "| state | precision | recall | F1 | support |", "|---|---|---|---|---|"]
    for label, v in m["per_class"].items():
        if v["support"] or v["precision"] == v["precision"]:
            rows.append(f"| {label} | {v['precision']:.3f} | {v['recall']:.3f} | {v['f1']:.3f} | {v['support']} |")
    rows += ["", "| true \\ predicted | " + " | ".join(LABELS) + " |", "|---|---|---|---|"]
    rows += [f"| {LABELS[i]} | " + " | ".join(str(x) for x in r) + " |" for i, r in enumerate(m["confusion_matrix"])]
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path)
    ap.add_argument("--threshold-sweep", action="store_true", help="precision/recall of incorrect vs p(incorrect)")
    args = ap.parse_args()
    metrics = json.loads((args.run / "metrics.json").read_text())
    print(f"best epoch {metrics['best_epoch']}; ONNX vs PyTorch max |diff| {metrics['onnx_max_abs_diff']:.1e}\n")
    print(table("all held-out faces", metrics["test"]) + "\n")
    for source, m in metrics.get("test_by_source", {}).items():
        print(table(source, m) + "\n")
    if args.threshold_sweep:
        z = np.load(args.run / "test_predictions.npz")
        real = z["sources"] == "voc:kaggle-face-mask"
        y, score = z["labels"][real] == 2, z["probs"][real][:, 2]
        print("| p(incorrect) >= | precision | recall | flagged |\n|---|---|---|---|")
        for t in (0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2):
            flagged = score >= t
            tp = int((flagged & y).sum())
            print(f"| {t} | {tp / max(flagged.sum(), 1):.3f} | {tp / max(y.sum(), 1):.3f} | {int(flagged.sum())} |")


if __name__ == "__main__":
    main()
