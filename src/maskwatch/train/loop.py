"""Training loop: class-balanced sampling, augmentation, checkpoints, resume, early stopping, export."""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ..classifier.crop import CROP_CONTEXT, CROP_SIZE
from ..errors import MaskWatchError
from ..faces import LABELS
from ..evaluate.metrics import ClassificationMetrics
from ..evaluate.plots import plot_learning_curve
from ..evaluate.results import ClassificationResult
from .config import TrainConfig
from .data import STORE_SIZE, FaceSet, center_crop
from .models import ExportedClassifier, backbone_parameters, build_model


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


#: side lengths a crop is shrunk to before being scaled back up (the face is about 2/3 of the crop side)
LOWRES_SIDES = (20, 28, 40, 56)


def augment(batch: torch.Tensor, gen: torch.Generator, lowres: float = 0.0) -> torch.Tensor:
    """Random framing (scale, shift, small rotation), flip, colour and greyscale on stored crops.

    ``lowres`` is the share of crops shrunk to one of ``LOWRES_SIDES`` and scaled back: the folder
    and synthetic faces are sharp web photos, while faces in venue scenes are often 15-40 px wide.

    ``batch`` is (N, 3, STORE_SIZE, STORE_SIZE) float 0..255; returns (N, 3, CROP_SIZE, CROP_SIZE).
    """
    n = batch.shape[0]
    dev = batch.device
    base = CROP_SIZE / STORE_SIZE  # the un-jittered crop covers this fraction of the stored one

    def rand(lo: float, hi: float) -> torch.Tensor:
        return torch.rand(n, generator=gen).to(dev) * (hi - lo) + lo

    scale = base * rand(0.85, 1.15)
    angle = rand(-0.2, 0.2)
    flip = torch.where(torch.rand(n, generator=gen).to(dev) < 0.5, -1.0, 1.0)
    tx, ty = rand(-0.08, 0.08), rand(-0.08, 0.08)
    cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
    theta = torch.stack([torch.stack([cos * flip, -sin, tx], 1), torch.stack([sin * flip, cos, ty], 1)], 1)
    grid = F.affine_grid(theta, (n, 3, CROP_SIZE, CROP_SIZE), align_corners=False)
    out = F.grid_sample(batch, grid, mode="bilinear", padding_mode="border", align_corners=False)
    if lowres > 0:
        shrink = torch.rand(n, generator=gen) < lowres
        side = torch.randint(0, len(LOWRES_SIDES), (n,), generator=gen)
        for k, s in enumerate(LOWRES_SIDES):
            sel = torch.nonzero(shrink & (side == k)).flatten().to(dev)
            if len(sel):
                small = F.interpolate(out[sel], size=(s, s), mode="area")
                out[sel] = F.interpolate(small, size=(CROP_SIZE, CROP_SIZE), mode="bilinear", align_corners=False)
    contrast = rand(0.7, 1.3)[:, None, None, None]
    brightness = rand(-30, 30)[:, None, None, None]
    mean = out.mean(dim=(1, 2, 3), keepdim=True)
    out = (out - mean) * contrast + mean + brightness
    grey = (torch.rand(n, generator=gen).to(dev) < 0.1)[:, None, None, None]
    out = torch.where(grey, out.mean(dim=1, keepdim=True).expand_as(out), out)
    return out.clamp(0, 255)


def to_tensor(crops_bgr: np.ndarray) -> torch.Tensor:
    """uint8 BGR (N, H, W, 3) -> float RGB (N, 3, H, W) 0..255."""
    return torch.from_numpy(np.ascontiguousarray(crops_bgr[..., ::-1].transpose(0, 3, 1, 2))).float()


@torch.no_grad()
def predict(model: torch.nn.Module, crops_bgr: np.ndarray, device: torch.device, batch: int = 256) -> np.ndarray:
    """Probabilities for inference-size crops."""
    model.eval()
    out = []
    for i in range(0, len(crops_bgr), batch):
        out.append(torch.softmax(model(to_tensor(crops_bgr[i: i + batch]).to(device)), 1).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, len(LABELS)), np.float32)


def class_metrics(labels: np.ndarray, probs: np.ndarray) -> ClassificationResult:
    """The evaluation core's classifier metrics (``eval classify`` computes the same) of label indices and probs."""
    metrics = ClassificationMetrics()
    metrics.update(np.asarray(labels, np.int64), probs)
    return metrics.compute()


def validation_losses(labels: np.ndarray, probs: np.ndarray) -> tuple[float, float]:
    """Mean negative log-likelihood, and its class-balanced version (mean over classes present)."""
    if not len(labels):
        return float("nan"), float("nan")
    nll = -np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-7, 1.0))
    per_class = [float(nll[labels == k].mean()) for k in range(len(LABELS)) if (labels == k).any()]
    return float(nll.mean()), float(np.mean(per_class))


def restore_checkpoint(path: Path, device: torch.device, model, optimiser, scheduler) -> dict:
    """Load ``last.pt`` into the model, optimiser and scheduler; returns the whole saved state."""
    state = torch.load(path, map_location=device, weights_only=False)
    model.load_state_dict(state["model"])
    optimiser.load_state_dict(state["optimiser"])
    scheduler.load_state_dict(state["scheduler"])
    return state


def save_checkpoint(path: Path, **state) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


@dataclass
class _Optimisation:
    """The model's optimiser and learning-rate schedule, and the backbone parameters frozen at first."""

    optimiser: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    backbone: list[torch.nn.Parameter]
    steps_per_epoch: int


@dataclass
class _Progress:
    """Where a run stands: finished epochs' history, the best score so far and epochs without a gain."""

    start_epoch: int = 0
    best_score: float = -math.inf
    bad_epochs: int = 0
    history: list[dict] = field(default_factory=list)


def build_optimisation(model: torch.nn.Module, config: TrainConfig) -> _Optimisation:
    """AdamW with a smaller learning rate on the pretrained backbone, cosine decay over all steps."""
    backbone = backbone_parameters(model)
    backbone_ids = {id(p) for p in backbone}
    head = [p for p in model.parameters() if id(p) not in backbone_ids]
    groups = [{"params": head, "lr": config.lr}]
    if backbone:
        groups.append({"params": backbone, "lr": config.lr * config.backbone_lr_scale})
    optimiser = torch.optim.AdamW(groups, weight_decay=config.weight_decay)
    steps_per_epoch = max(1, config.samples_per_epoch // config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total_steps) / total_steps)))
    return _Optimisation(optimiser, scheduler, backbone, steps_per_epoch)


def resume_progress(last_path: Path, device: torch.device, model: torch.nn.Module, opt: _Optimisation,
                    log: Callable[[str], None]) -> _Progress:
    """The model, optimiser and scheduler of ``last.pt`` restored; where the run stopped."""
    if not last_path.is_file():
        raise MaskWatchError(f"cannot resume: {last_path} does not exist")
    state = restore_checkpoint(last_path, device, model, opt.optimiser, opt.scheduler)
    log(f"resumed from epoch {state['epoch'] + 1}")
    return _Progress(state["epoch"] + 1, state["best_score"], state["bad_epochs"], state["history"])


def balanced_sample_weights(train_set: FaceSet) -> np.ndarray:
    """Class-balanced sampling: each class gets equal mass, split among its sources by their weights."""
    sample_w = train_set.weights.astype(np.float64)
    per_class_w = np.zeros(len(LABELS))
    np.add.at(per_class_w, train_set.labels, sample_w)
    sample_w = sample_w / per_class_w[train_set.labels]
    return sample_w / sample_w.sum()


def train_epoch(model: torch.nn.Module, train_set: FaceSet, sample_w: np.ndarray, opt: _Optimisation,
                config: TrainConfig, epoch: int, device: torch.device, rng: np.random.Generator,
                gen: torch.Generator, report: Callable[[str], None]) -> tuple[float, float]:
    """One epoch of class-balanced batches; returns the mean training loss and accuracy."""
    model.train()
    frozen = epoch < config.freeze_backbone_epochs
    for p in opt.backbone:
        p.requires_grad_(not frozen)
    loss_sum = correct = seen = 0.0
    for _ in range(opt.steps_per_epoch):
        idx = rng.choice(len(train_set.labels), size=config.batch_size, p=sample_w)
        x = augment(to_tensor(train_set.crops[idx]).to(device), gen, config.lowres)
        y = torch.from_numpy(train_set.labels[idx]).to(device)
        logits = model(x)
        loss = F.cross_entropy(logits, y, label_smoothing=config.label_smoothing)
        opt.optimiser.zero_grad(set_to_none=True)
        loss.backward()
        opt.optimiser.step()
        opt.scheduler.step()
        loss_sum += loss.item() * len(y)
        correct += float((logits.argmax(1) == y).sum())
        seen += len(y)
        report(f"loss {loss_sum / seen:.3f} acc {correct / seen:.3f}")
    return loss_sum / seen, correct / seen


def validate(model: torch.nn.Module, val_set: FaceSet, val_crops: np.ndarray,
             device: torch.device) -> tuple[ClassificationResult, float, float]:
    """Validation metrics (the evaluation core's), the mean and the class-balanced validation loss."""
    probs = predict(model, val_crops, device)
    val_loss, balanced_loss = validation_losses(val_set.labels, probs)
    return class_metrics(val_set.labels, probs), val_loss, balanced_loss


def save_epoch(run_dir: Path, model: torch.nn.Module, opt: _Optimisation, config: TrainConfig, epoch: int,
               progress: _Progress, val: ClassificationResult | None) -> None:
    """``best.pt`` (when ``val`` is given: the epoch improved), ``last.pt``, history and learning curve."""
    if val is not None:
        save_checkpoint(run_dir / "best.pt", model=model.state_dict(), epoch=epoch, val=val.training_dict(),
                        config=asdict(config))
    save_checkpoint(run_dir / "last.pt", model=model.state_dict(), optimiser=opt.optimiser.state_dict(),
                    scheduler=opt.scheduler.state_dict(), epoch=epoch, best_score=progress.best_score,
                    bad_epochs=progress.bad_epochs, history=progress.history)
    (run_dir / "history.json").write_text(json.dumps(progress.history, indent=1))
    plot_learning_curve(progress.history, run_dir / "learning_curve.png")


def train(faces: FaceSet, run_dir: Path, config: TrainConfig, resume: bool = False,
          log: Callable[[str], None] = print, warn: Callable[[str], None] | None = None) -> dict:
    """Train on ``faces`` (its 'train' rows), select by the 'val' class-balanced loss, write everything
    into run_dir. ``log`` gets progress information, ``warn`` (default: ``log``) real problems."""
    torch.manual_seed(config.seed)
    if config.threads:
        torch.set_num_threads(config.threads)
    device = pick_device(config.device)
    train_set = faces.subset(faces.splits == "train")
    val_set = faces.subset(faces.splits == "val")
    if not len(train_set.labels):
        raise MaskWatchError("no training faces (all sources empty?)")
    missing = [LABELS[k] for k in range(len(LABELS)) if not (train_set.labels == k).any()]
    if missing:
        (warn or log)(f"no training faces for {', '.join(missing)}; the model cannot learn that class")

    model = build_model(config.arch).to(device)
    opt = build_optimisation(model, config)
    state = resume_progress(run_dir / "last.pt", device, model, opt, log) if resume else _Progress()
    sample_w = balanced_sample_weights(train_set)
    rng = np.random.default_rng(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    val_crops = center_crop(val_set.crops)

    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[info]}")) as progress:
        for epoch in range(state.start_epoch, config.epochs):
            t0 = time.perf_counter()
            task = progress.add_task(f"epoch {epoch + 1}/{config.epochs}", total=opt.steps_per_epoch, info="")
            train_loss, train_acc = train_epoch(model, train_set, sample_w, opt, config, epoch, device, rng, gen,
                                                lambda line: progress.update(task, advance=1, info=line))
            val, val_loss, balanced_loss = validate(model, val_set, val_crops, device)
            macro_f1 = 0.0 if math.isnan(val.macro_f1) else val.macro_f1
            row = {"epoch": epoch + 1, "train_loss": train_loss, "train_acc": train_acc,
                   "val_loss": val_loss, "val_balanced_loss": balanced_loss, "val_acc": val.accuracy,
                   "val_macro_f1": macro_f1, "seconds": time.perf_counter() - t0}
            state.history.append(row)
            progress.update(task, info=f"loss {row['train_loss']:.3f} val acc {val.accuracy:.3f} "
                                       f"balanced loss {balanced_loss:.3f} macro-F1 {macro_f1:.3f}")
            # Select on the class-balanced validation loss: with only a handful of real `incorrect`
            # faces in validation, macro-F1 jumps by whole faces and picked flukes.
            score = -balanced_loss
            improved = score > state.best_score
            if improved:
                state.best_score, state.bad_epochs = score, 0
            else:
                state.bad_epochs += 1
            save_epoch(run_dir, model, opt, config, epoch, state, val if improved else None)
            if state.bad_epochs >= config.patience:
                log(f"early stop: no gain in class-balanced validation loss for {config.patience} epochs")
                break

    best = torch.load(run_dir / "best.pt", map_location=device, weights_only=False)
    model.load_state_dict(best["model"])
    return {"best_epoch": best["epoch"] + 1, "best_val_balanced_loss": -state.best_score, "val": best["val"],
            "history": state.history, "model": model}


def export_onnx(model: ExportedClassifier, path: Path, metadata: dict[str, str] | None = None) -> Path:
    """Export with a dynamic batch axis and the crop settings in the model's metadata."""
    import onnx

    model = model.cpu().eval()
    dummy = torch.zeros(1, 3, CROP_SIZE, CROP_SIZE)
    torch.onnx.export(model, dummy, str(path), input_names=["crops"], output_names=["probs"],
                      dynamic_axes={"crops": {0: "batch"}, "probs": {0: "batch"}}, opset_version=17,
                      dynamo=False)
    proto = onnx.load(str(path))
    meta = {"crop_size": str(CROP_SIZE), "crop_context": str(CROP_CONTEXT), "labels": json.dumps(list(LABELS)),
            "input": "RGB float32 NCHW, 0..255", "members": str(len(model.nets)), "flip_averaged": str(model.flip).lower()}
    meta.update(metadata or {})
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, str(path))
    return path
