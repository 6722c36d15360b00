"""One training run end to end: gather faces, train, test on the held-out split, export ONNX."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import MaskWatchError
from ..faces import LABELS
from .data import (FaceSet, SourceSpec, center_crop, drop_source_faces, folder_faces, synth_faces, synth_plan,
                   voc_faces)
from .loop import TrainConfig, class_metrics, export_onnx, pick_device, predict, train


def gather_faces(sources: list[SourceSpec], seed: int, warn: Callable[[str], None], cache: Path | None,
                 label_map: dict[str, str] | None = None, synth_share: float = 0.5,
                 detector_threads: int | None = None) -> FaceSet:
    for spec in sources:
        if not spec.path.exists():
            raise MaskWatchError(f"{spec.path}: no such dataset")
    detector = None
    if any(s.kind != "voc" for s in sources):  # face-image sources locate their face; VOC boxes are given
        from ..detectors import create_detector

        detector = create_detector("centerface", min_score=0.3, threads=detector_threads)
    plans = {id(s): synth_plan(s.path, seed, synth_share) for s in sources if s.kind == "synth"}
    exclude = set().union(*(used for _, used, _ in plans.values())) if plans else set()
    source_faces = [face for _, _, faces in plans.values() for face in faces]
    parts = []
    for spec in sources:
        if spec.kind == "voc":
            faces, dropped = drop_source_faces(voc_faces(spec, seed, warn, cache, label_map), source_faces)
            if dropped:
                warn(f"{spec.path}: {dropped} unmasked faces left out (sources of synthetic masks)")
            parts.append(faces)
        elif spec.kind == "synth":
            items, used, _ = plans[id(spec)]
            warn(f"{spec.path}: {len(items)} synthetic faces from {len(used)} source photos (train split only)")
            parts.append(synth_faces(spec, items, seed, warn, detector, cache))
        else:
            parts.append(folder_faces(spec, seed, warn, detector, cache, label_map, exclude))
    return FaceSet.concat(parts)


def run_training(sources: list[SourceSpec], run_dir: Path, config: TrainConfig, resume: bool = False,
                 cache: Path | None = None, label_map: dict[str, str] | None = None,
                 synth_share: float = 0.5, log: Callable[[str], None] = print) -> dict:
    run_dir.mkdir(parents=True, exist_ok=True)
    faces = gather_faces(sources, config.seed, log, cache, label_map, synth_share, config.threads)
    log(f"faces per split: {json.dumps(faces.summary())}")
    config.sources = [f"{s.kind}:{s.path}:{s.weight}" for s in sources]
    (run_dir / "config.json").write_text(json.dumps({**asdict(config), "command": " ".join(sys.argv)}, indent=1))
    with open(run_dir / "split_manifest.jsonl", "w") as fh:
        for origin, split, label, source in zip(faces.origins, faces.splits, faces.labels, faces.sources):
            fh.write(json.dumps({"face": origin, "split": str(split), "label": LABELS[int(label)], "source": str(source)}) + "\n")
    result = train(faces, run_dir, config, resume=resume, log=log)
    model = result.pop("model")
    test = faces.subset(faces.splits == "test")
    device = pick_device(config.device)
    metrics = {"best_epoch": result["best_epoch"], "val": result["val"], "faces": faces.summary()}
    if len(test.labels):
        probs = predict(model, center_crop(test.crops), device)
        metrics["test"] = class_metrics(test.labels, probs)
        for source in sorted(set(test.sources)):
            m = test.sources == source
            metrics.setdefault("test_by_source", {})[str(source)] = class_metrics(test.labels[m], probs[m])
        np.savez(run_dir / "test_predictions.npz", labels=test.labels, probs=probs, sources=test.sources)
        plot_confusion(np.asarray(metrics["test"]["confusion_matrix"]), run_dir / "confusion_test.png")
    onnx_path = export_onnx(model, run_dir / "mask_classifier.onnx",
                            {"arch": config.arch, "seed": str(config.seed), "best_epoch": str(result["best_epoch"])})
    metrics["onnx"] = str(onnx_path)
    metrics["onnx_max_abs_diff"] = check_onnx(model, onnx_path, center_crop(faces.crops[:64]))
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=1))
    return metrics


def check_onnx(model, onnx_path: Path, crops: np.ndarray) -> float:
    """Largest difference between PyTorch and ONNX Runtime probabilities on the same crops."""
    import torch

    from ..classifier import MaskClassifier

    ort_probs = MaskClassifier(str(onnx_path)).predict_crops(crops)
    torch_probs = predict(model.cpu(), crops, torch.device("cpu"))
    return float(np.abs(ort_probs - torch_probs).max())


def plot_confusion(cm: np.ndarray, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 3.6))
    ax.imshow(cm, cmap="Blues")
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center", color="black")
    ax.set_xticks(range(len(LABELS)), LABELS), ax.set_yticks(range(len(LABELS)), LABELS)
    ax.set_xlabel("predicted"), ax.set_ylabel("true")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
