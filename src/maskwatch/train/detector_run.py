"""One detector training run end to end: scenes per split, teacher, training, ONNX export and its check."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import DatasetError, MaskWatchError
from .detector_data import DetectorSamples, Scene, Teacher, load_scenes
from .detector_loop import DetectorTrainConfig, check_export, export_detector, train_detector
from .detector_net import CenterFaceNet

#: The project's split seed: the same train / val / test scenes as every evaluation (see data.splits).
SPLIT_SEED = 0


def _synth_sources(root: Path) -> dict[str, str]:
    """Output image name -> stem of the real photo it was made from (``manifest.jsonl`` of `maskwatch synth`)."""
    manifest = root / "manifest.jsonl"
    if not manifest.is_file():
        raise DatasetError(f"{root}: no manifest.jsonl (not an output of `maskwatch synth`)")
    out: dict[str, str] = {}
    for number, line in enumerate(manifest.read_text(encoding="utf-8").splitlines(), 1):
        try:
            row = json.loads(line)
            out[Path(row["output"]).stem] = Path(row["source"]).stem
        except (ValueError, KeyError, TypeError):
            raise DatasetError(f"{manifest}:{number}: not a manifest row") from None
    return out


def gather_scenes(datasets: list[tuple[Path, float]], synth: list[tuple[Path, float]], warn: Callable[[str], None],
                  label_map: dict[str, str] | None = None) -> tuple[list[Scene], np.ndarray, list[Scene], dict]:
    """Train scenes with sampling weights, val scenes, and a summary.

    Real datasets are split by image with the project's seed; only their train part trains and
    their val part validates (the test part is never read). Synthetic scenes train, unless the
    photo they were made from is a val or test image of a given dataset (then they are dropped).
    """
    from ..data import load_dataset
    from ..data.splits import dataset_splits

    train: list[Scene] = []
    weights: list[float] = []
    val: list[Scene] = []
    held_out: set[str] = set()
    summary: dict = {"datasets": {}, "synth": {}}
    for path, weight in datasets:
        if not path.exists():
            raise DatasetError(f"{path}: no such dataset")
        splits = dataset_splits(load_dataset(path, label_map=label_map), seed=SPLIT_SEED)
        train_keys, val_keys = set(splits["train"]), set(splits["val"])
        held_out |= val_keys | set(splits["test"])
        part = load_scenes(path, train_keys.__contains__, warn, f"train:{path.name}", label_map)
        val_part = load_scenes(path, val_keys.__contains__, lambda _line: None, f"val:{path.name}", label_map)
        train += part.scenes
        weights += [weight] * len(part.scenes)
        val += val_part.scenes
        summary["datasets"][str(path)] = {"train_scenes": len(part.scenes), "val_scenes": len(val_part.scenes),
                                          "train_faces": part.label_counts(), "val_faces": val_part.label_counts(),
                                          "problems": part.problems}
    for path, weight in synth:
        origins = _synth_sources(path)
        dropped: list[str] = []

        def keep(key: str) -> bool:
            if origins.get(key) in held_out:
                dropped.append(key)
                return False
            return True

        part = load_scenes(path, keep, warn, f"synth:{path.name}", label_map)
        if dropped:
            warn(f"{path}: {len(dropped)} synthetic scenes left out: made from val / test photos (e.g. {dropped[0]})")
        train += part.scenes
        weights += [weight] * len(part.scenes)
        summary["synth"][str(path)] = {"train_scenes": len(part.scenes), "dropped_held_out": len(dropped),
                                       "train_faces": part.label_counts()}
    if not train:
        raise MaskWatchError("no training scenes")
    if not val:
        raise MaskWatchError("no validation scenes: give a real dataset with --voc / --yolo / --coco")
    return train, np.asarray(weights, np.float64), val, summary


def run_detector_training(datasets: list[tuple[Path, float]], synth: list[tuple[Path, float]], run_dir: Path,
                          config: DetectorTrainConfig, teacher_model: str | None = None, resume: bool = False,
                          label_map: dict[str, str] | None = None, log: Callable[[str], None] = print,
                          init_from: Path | None = None, warn: Callable[[str], None] | None = None) -> dict:
    """Gather scenes, fine-tune, export ``centerface_mask.onnx``; ``log`` gets progress information,
    ``warn`` (default: ``log``) dataset problems."""
    from ..registry import resolve_model

    run_dir.mkdir(parents=True, exist_ok=True)
    stock = str(resolve_model("centerface", teacher_model))
    train, weights, val, summary = gather_scenes(datasets, synth, warn or log, label_map)
    log(f"scenes: {len(train)} train, {len(val)} val; faces {json.dumps(summary)}")
    config.sources = [f"{p}:{w}" for p, w in datasets] + [f"synth:{p}:{w}" for p, w in synth]
    (run_dir / "config.json").write_text(json.dumps({**asdict(config), "command": " ".join(sys.argv),
                                                     "data": summary}, indent=1))
    net = CenterFaceNet(stock, frozen=config.frozen)
    if init_from is not None and not resume:
        import torch

        if not Path(init_from).is_file():
            raise MaskWatchError(f"{init_from}: no such checkpoint")
        try:
            earlier = torch.load(init_from, map_location="cpu", weights_only=False)["model"]
        except (KeyError, RuntimeError, OSError, EOFError, ValueError) as exc:
            raise MaskWatchError(f"{init_from}: not a checkpoint of `maskwatch train-detector` ({exc})") from None
        own = net.state_dict()
        matching = {k: v for k, v in earlier.items() if k in own and own[k].shape == v.shape}
        net.load_state_dict(matching, strict=False)
        log(f"weights from {init_from}: {len(matching)} of {len(own)} tensors (the rest start fresh)")
    teacher = Teacher(stock) if config.distill else None
    samples = DetectorSamples(train, weights, teacher, config.crop, config.seed, config.samples_per_epoch)
    result = train_detector(net, samples, val, run_dir, config, resume=resume, log=log)
    onnx_path = export_detector(net, run_dir / "centerface_mask.onnx",
                                {"best_epoch": str(result["best_epoch"]), "seed": str(config.seed)})
    metrics = {"best_epoch": result["best_epoch"], "val": result["val"], "data": summary, "onnx": str(onnx_path),
               "onnx_max_abs_diff": check_export(net, onnx_path, val[0].image)}
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=1))
    return metrics
