"""Detector training: losses, the epoch loop (checkpoints, resume, early stopping on val), validation, export."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ..detectors.centerface import prepare_blob
from ..errors import MaskWatchError
from ..evaluate.plots import plot_detector_curves
from .config import DetectorTrainConfig
from ..faces import Faces
from .detector_data import DetectorSamples, Scene
from .detector_net import EXPORT_OUTPUTS, CenterFaceNet, ExportedDetector
from .loop import save_checkpoint, pick_device, restore_checkpoint


def focal_loss(pred: torch.Tensor, target: torch.Tensor, positive: torch.Tensor) -> torch.Tensor:
    """CenterNet's penalty-reduced focal loss on a (N, h, w) heatmap, normalised by the positives."""
    pred = pred.clamp(1e-4, 1 - 1e-4)
    pos = positive * (1 - pred) ** 2 * torch.log(pred)
    neg = (1 - positive) * (1 - target) ** 4 * pred ** 2 * torch.log(1 - pred)
    return -(pos.sum() + neg.sum()) / positive.sum().clamp(min=1)


def _masked_l1(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.unsqueeze(1)
    return (F.l1_loss(pred, target, reduction="none") * m).sum() / (m.sum() * pred.shape[1]).clamp(min=1)


def detector_losses(out: dict[str, torch.Tensor], batch: dict[str, torch.Tensor],
                    class_weights: torch.Tensor) -> dict[str, torch.Tensor]:
    state_loss = F.cross_entropy(out["state"], batch["state"], weight=class_weights, ignore_index=-1) \
        if (batch["state"] >= 0).any() else out["state"].sum() * 0
    return {
        "heat": focal_loss(out["heatmap"][:, 0], batch["heat"], batch["positive"]),
        "size": _masked_l1(out["size"], batch["size"], batch["reg_mask"]),
        "offset": _masked_l1(out["offset"], batch["offset"], batch["reg_mask"]),
        "landmarks": _masked_l1(out["landmarks"], batch["landmarks"], batch["lm_mask"]),
        "state": state_loss,
    }


@torch.no_grad()
def predict_scene(net: CenterFaceNet, image: np.ndarray, size: int, device: torch.device,
                  threshold: float = 0.05) -> Faces:
    """What the exported detector would say of one image (same resize, decode and state read-out)."""
    from ..boxes import clip_boxes
    from ..detectors.centerface import decode_centerface

    blob, scale = prepare_blob(image, size)
    out = net(torch.from_numpy(blob).to(device))
    maps = [out[k][0].float().cpu().numpy() for k in ("heatmap", "size", "offset", "landmarks")]
    state = torch.softmax(out["state"][0].float(), 0).cpu().numpy()
    faces = decode_centerface(maps[0][0], maps[1], maps[2], maps[3], threshold, 0.3, state)
    if len(faces):
        faces.boxes = clip_boxes(faces.boxes / scale, image.shape[1], image.shape[0])
        if faces.landmarks is not None:
            faces.landmarks = faces.landmarks / scale
    return faces


def validate(net: CenterFaceNet, scenes: list[Scene], size: int, device: torch.device) -> dict:
    """Detection metrics (evaluate's definitions) of ``net`` on scenes: the early-stopping signal."""
    from ..data.dataset import AnnotatedImage
    from ..evaluate.metrics import DetectionMetrics
    from ..faces import LABELS

    net.eval()
    metrics = DetectionMetrics(operating_score=0.3)
    for k, scene in enumerate(scenes):
        h, w = scene.image.shape[:2]
        truth = AnnotatedImage(path=Path(f"{k}:{scene.name}"), width=w, height=h, boxes=scene.boxes,
                               labels=[LABELS[i] for i in scene.labels])
        metrics.update(truth, predict_scene(net, scene.image, size, device))
    r = metrics.compute().result
    return {"map50_3class": r.map["all"].map50_3class, "map50_2class": r.map["all"].map50_2class,
            "face_ap50": r.face_ap["all"].ap50, "face_ap50_small": r.face_ap["small"].ap50,
            "mask_recall50": r.operating_point[0.5].recall_by_state.get("mask", float("nan")),
            "class_ap50": {c: r.class_ap["all"][c].ap50 for c in LABELS}}


def _collate(items: list[dict[str, np.ndarray]]) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(np.stack([it[k] for it in items])) for k in items[0]}


def train_detector(net: CenterFaceNet, samples: DetectorSamples, val_scenes: list[Scene], run_dir: Path,
                   config: DetectorTrainConfig, resume: bool = False,
                   log: Callable[[str], None] = print) -> dict:
    """Train ``net`` in place; best (by val 3-class mAP@0.5) and last checkpoints go to ``run_dir``."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    device = pick_device(config.device)
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    net.to(device)
    head = list(net.state_head.parameters()) + list(net.state_reduce.parameters())
    body = [p for n, p in net.named_parameters() if p.requires_grad and not n.startswith(("state_head.", "state_reduce."))]
    optimiser = torch.optim.AdamW([{"params": body, "lr": config.lr}, {"params": head, "lr": config.state_lr}],
                                  weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=config.epochs, eta_min=config.lr * 0.05)
    class_weights = torch.tensor(config.class_weights, dtype=torch.float32, device=device)
    history: list[dict] = []
    start, best_score, best_epoch = 0, -1.0, -1
    last_path, best_path = run_dir / "last.pt", run_dir / "best.pt"
    if resume and last_path.is_file():
        state = restore_checkpoint(last_path, device, net, optimiser, scheduler)
        start, best_score, best_epoch, history = state["epoch"] + 1, state["best_score"], state["best_epoch"], state["history"]
        log(f"resumed after epoch {start} (best val 3-class mAP {best_score:.4f} at epoch {best_epoch + 1})")
    elif resume:
        log(f"{last_path} not found: starting from the stock weights")
    loader_kwargs = dict(batch_size=config.batch_size, collate_fn=_collate, num_workers=config.workers,
                         shuffle=False, drop_last=True)
    if config.workers:
        loader_kwargs["persistent_workers"] = False
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[info]}")) as progress:
        for epoch in range(start, config.epochs):
            if epoch - best_epoch > config.patience and best_epoch >= 0:
                log(f"early stop: no val gain for {config.patience} epochs (best epoch {best_epoch + 1})")
                break
            samples.epoch = epoch
            loader = torch.utils.data.DataLoader(samples, **loader_kwargs)
            task = progress.add_task(f"epoch {epoch + 1}/{config.epochs}", total=len(loader), info="")
            net.train()
            sums: dict[str, float] = {}
            steps, t0 = 0, time.time()
            for batch in loader:
                batch = {k: v.to(device) for k, v in batch.items()}
                out = net(batch["image"])
                parts = detector_losses(out, batch, class_weights)
                loss = sum(config.loss_weights[k] * v for k, v in parts.items())
                if not torch.isfinite(loss):
                    raise MaskWatchError(f"training diverged at epoch {epoch + 1} (loss {float(loss)}); lower --lr")
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_([p for p in net.parameters() if p.requires_grad], 10.0)
                optimiser.step()
                steps += 1
                for k, v in parts.items():
                    sums[k] = sums.get(k, 0.0) + float(v.detach())
                sums["total"] = sums.get("total", 0.0) + float(loss.detach())
                progress.update(task, advance=1, info=f"loss {sums['total'] / steps:.3f}")
            scheduler.step()
            progress.update(task, info="validating")
            val = validate(net, val_scenes, config.val_size, device)
            row = {"epoch": epoch + 1, "seconds": round(time.time() - t0, 1),
                   **{f"train_{k}": round(v / max(steps, 1), 4) for k, v in sums.items()},
                   **{f"val_{k}": v for k, v in val.items()}}
            history.append(row)
            score = val["map50_3class"] if np.isfinite(val["map50_3class"]) else val["face_ap50"]
            if score > best_score:
                best_score, best_epoch = score, epoch
                save_checkpoint(best_path, model=net.state_dict(), epoch=epoch, val=val, config=asdict(config))
            save_checkpoint(last_path, model=net.state_dict(), optimiser=optimiser.state_dict(),
                        scheduler=scheduler.state_dict(), epoch=epoch, best_score=best_score,
                        best_epoch=best_epoch, history=history, config=asdict(config))
            with open(run_dir / "history.jsonl", "a") as fh:
                fh.write(json.dumps(row) + "\n")
            plot_detector_curves(history, run_dir / "curves.png")
            progress.update(task, info=f"loss {row['train_total']:.3f} val mAP3 {val['map50_3class']:.3f} "
                                       f"face AP {val['face_ap50']:.3f}")
            log(f"epoch {epoch + 1}: train loss {row['train_total']:.3f}, val 3-class mAP {val['map50_3class']:.4f}, "
                f"2-class {val['map50_2class']:.4f}, face AP {val['face_ap50']:.4f}, small {val['face_ap50_small']:.4f}")
    if not best_path.is_file():
        raise MaskWatchError(f"{run_dir}: no epoch finished, nothing to export")
    state = torch.load(best_path, map_location="cpu", weights_only=False)
    net.cpu().load_state_dict(state["model"])
    return {"best_epoch": state["epoch"] + 1, "val": state["val"], "history": history}


def export_detector(net: CenterFaceNet, path: Path, metadata: dict[str, str]) -> Path:
    """ONNX with dynamic batch / height / width; outputs ``EXPORT_OUTPUTS``; metadata in the file."""
    import onnx

    path.parent.mkdir(parents=True, exist_ok=True)
    model = ExportedDetector(net.cpu().eval())
    dummy = torch.zeros(1, 3, 320, 320)
    axes = {"input": {0: "B", 2: "H", 3: "W"}, **{k: {0: "B", 2: "h", 3: "w"} for k in EXPORT_OUTPUTS}}
    torch.onnx.export(model, (dummy,), str(path), input_names=["input"], output_names=list(EXPORT_OUTPUTS),
                      dynamic_axes=axes, opset_version=17, dynamo=False)
    proto = onnx.load(str(path))
    for k, v in {"maskwatch_model": "centerface-mask", **metadata}.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = k, str(v)
    onnx.save(proto, str(path))
    return path


def check_export(net: CenterFaceNet, path: Path, image: np.ndarray) -> float:
    """Largest difference between PyTorch and ONNX Runtime over the five maps of one image."""
    import onnxruntime as ort

    blob, _ = prepare_blob(image, 320)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    ort_out = session.run(list(EXPORT_OUTPUTS), {"input": blob})
    with torch.no_grad():
        torch_out = ExportedDetector(net.cpu().eval())(torch.from_numpy(blob))
    return float(max(np.abs(a - b.numpy()).max() for a, b in zip(ort_out, torch_out)))
