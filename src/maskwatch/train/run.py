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
from ..classifier.crop import CROP_SIZE
from .data import (FaceSet, SourceSpec, apply_relabels, center_crop, drop_source_faces, folder_faces, synth_faces,
                   synth_plan, voc_faces)
from .loop import TrainConfig, class_metrics, export_onnx, pick_device, predict, train
from .models import ExportedClassifier, build_model


def gather_faces(sources: list[SourceSpec], seed: int, warn: Callable[[str], None], cache: Path | None,
                 label_map: dict[str, str] | None = None, synth_share: float = 0.5,
                 detector_threads: int | None = None, relabels: dict[str, str] | None = None,
                 info: Callable[[str], None] | None = None) -> FaceSet:
    """Face crops of every source with their split; ``warn`` gets dataset problems, ``info`` (default:
    ``warn``) what was done on purpose (faces left out as sources of synthetic masks, label corrections)."""
    info = info or warn
    for spec in sources:
        if not spec.path.exists():
            raise MaskWatchError(f"{spec.path}: no such dataset")
    detector = None
    if any(s.kind != "voc" for s in sources):  # face-image sources locate their face; VOC boxes are given
        from ..classifier.crop import face_locator

        detector = face_locator(threads=detector_threads)
    plans = {id(s): synth_plan(s.path, seed, synth_share) for s in sources if s.kind == "synth"}
    exclude = set().union(*(used for _, used, _ in plans.values())) if plans else set()
    source_faces = [face for _, _, faces in plans.values() for face in faces]
    parts = []
    for spec in sources:
        if spec.kind == "voc":
            faces, dropped = drop_source_faces(voc_faces(spec, seed, warn, cache, label_map), source_faces)
            if dropped:
                info(f"{spec.path}: {dropped} unmasked faces left out (sources of synthetic masks)")
            parts.append(faces)
        elif spec.kind == "synth":
            items, used, _ = plans[id(spec)]
            info(f"{spec.path}: {len(items)} synthetic faces from {len(used)} source photos (train split only)")
            parts.append(synth_faces(spec, items, seed, warn, detector, cache))
        else:
            parts.append(folder_faces(spec, seed, warn, detector, cache, label_map, exclude))
    return apply_relabels(FaceSet.concat(parts), relabels or {}, warn, info)


def run_training(sources: list[SourceSpec], run_dir: Path, config: TrainConfig, resume: bool = False,
                 cache: Path | None = None, label_map: dict[str, str] | None = None,
                 synth_share: float = 0.5, log: Callable[[str], None] = print,
                 relabels: dict[str, str] | None = None, warn: Callable[[str], None] | None = None) -> dict:
    """Gather the faces, train, test on the held-out split, export ONNX; ``metrics.json`` in ``run_dir``.

    ``log`` gets progress information, ``warn`` (default: ``log``) real problems."""
    warn = warn or log
    run_dir.mkdir(parents=True, exist_ok=True)
    split_seed = config.seed if config.split_seed is None else config.split_seed
    faces = gather_faces(sources, split_seed, warn, cache, label_map, synth_share, config.threads, relabels, log)
    log(f"faces per split: {json.dumps(faces.summary())}")
    config.sources = [f"{s.kind}:{s.path}:{s.weight}" for s in sources]
    (run_dir / "config.json").write_text(json.dumps({**asdict(config), "command": " ".join(sys.argv)}, indent=1))
    with open(run_dir / "split_manifest.jsonl", "w") as fh:
        for origin, split, label, source in zip(faces.origins, faces.splits, faces.labels, faces.sources):
            fh.write(json.dumps({"face": origin, "split": str(split), "label": LABELS[int(label)], "source": str(source)}) + "\n")
    result = train(faces, run_dir, config, resume=resume, log=log, warn=warn)
    model = result.pop("model")
    test = faces.subset(faces.splits == "test")
    device = pick_device(config.device)
    metrics = {"best_epoch": result["best_epoch"], "val": result["val"], "faces": faces.summary()}
    if len(test.labels):
        probs = predict(model, center_crop(test.crops), device)
        tested = class_metrics(test.labels, probs)
        metrics["test"] = tested.training_dict()
        for source in sorted(set(test.sources)):
            m = test.sources == source
            metrics.setdefault("test_by_source", {})[str(source)] = class_metrics(test.labels[m], probs[m]).training_dict()
        np.savez(run_dir / "test_predictions.npz", labels=test.labels, probs=probs, sources=test.sources)
        from ..evaluate.plots import plot_confusion  # the one confusion plot (eval classify draws it too)

        plot_confusion(tested.confusion.matrix, LABELS, LABELS, run_dir / "confusion_test.png",
                       title="Confusion matrix (test)")
    exported = ExportedClassifier([model])
    onnx_path = export_onnx(exported, run_dir / "mask_classifier.onnx",
                            {"arch": config.arch, "seed": str(config.seed), "split_seed": str(split_seed),
                             "best_epoch": str(result["best_epoch"])})
    metrics["onnx"] = str(onnx_path)
    metrics["onnx_max_abs_diff"] = check_onnx(exported, onnx_path, center_crop(faces.crops[:64]))
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=1))
    return metrics


def check_onnx(exported, onnx_path: Path, crops: np.ndarray) -> float:
    """Largest difference between PyTorch (an ``ExportedClassifier``) and ONNX Runtime probabilities on the same crops."""
    import torch

    from ..classifier import MaskClassifier
    from .loop import to_tensor

    ort_probs = MaskClassifier(str(onnx_path)).predict_crops(crops)
    with torch.no_grad():
        torch_probs = exported.cpu().eval()(to_tensor(crops)).numpy()
    return float(np.abs(ort_probs - torch_probs).max())


def export_runs(run_dirs: list[Path], path: Path, flip: bool = False) -> dict:
    """One ONNX classifier from the best checkpoints of finished runs (averaged, optionally over mirrored crops).

    The runs must share their held-out split (same ``split_seed``, sources and label corrections),
    or one run's test faces are another's training faces; this is checked from their manifests.
    """
    import torch

    members, manifests, seeds = [], set(), []
    for run in run_dirs:
        best = Path(run) / "best.pt"
        if not best.is_file():
            raise MaskWatchError(f"{run}: no best.pt (not a finished training run)")
        state = torch.load(best, map_location="cpu", weights_only=False)
        net = build_model(state["config"]["arch"])
        net.load_state_dict(state["model"])
        members.append(net.eval())
        seeds.append(str(state["config"]["seed"]))
        manifest = Path(run) / "split_manifest.jsonl"
        manifests.add(manifest.read_bytes() if manifest.is_file() else b"")
    if len(manifests) > 1:
        raise MaskWatchError("the runs differ in their split_manifest.jsonl (held-out faces or labels); "
                             "train them with the same --split-seed and data")
    exported = ExportedClassifier(members, flip)
    out = export_onnx(exported, Path(path), {"seeds": ",".join(seeds), "runs": ",".join(Path(r).name for r in run_dirs)})
    crops = np.random.default_rng(0).integers(0, 256, (16, CROP_SIZE, CROP_SIZE, 3), dtype=np.uint8)
    return {"onnx": str(out), "members": len(members), "flip": flip,
            "onnx_max_abs_diff": check_onnx(exported, out, crops)}
