"""Every plot of MaskWatch as PNG files (matplotlib, Agg backend: no display needed): precision-recall
curves, confusion matrices, reliability diagrams, example galleries and training curves."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from .results import CalibrationBin, Example
from .matching import APResult

COLOURS = {"face": "#444444", "mask": "#2ca02c", "no_mask": "#d62728", "incorrect": "#ff7f0e"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    _pyplot().close(fig)
    return path


def plot_pr_curves(curves: Mapping[str, APResult], path: Path, title: str = "Precision-recall at IoU 0.5") -> Path:
    """One precision-recall curve per class (and the class-agnostic face curve), AP in the legend."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    for name, curve in curves.items():
        if curve.n_gt == 0:
            continue
        recall = np.concatenate([[0.0], curve.recall])
        precision = np.concatenate([[1.0], curve.precision])
        ax.plot(recall, precision, label=f"{name} (AP {curve.ap:.3f}, {curve.n_gt} gt)",
                color=COLOURS.get(name), linewidth=1.8, linestyle="--" if name == "face" else "-")
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1.01), ylim=(0, 1.01), title=title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    return _save(fig, path)


def plot_confusion(matrix: Sequence[Sequence[int]], rows: Sequence[str], columns: Sequence[str], path: Path,
                   title: str = "Confusion matrix") -> Path:
    """Counts with the row share in brackets; rows are true states, columns predicted ones."""
    plt = _pyplot()
    m = np.asarray(matrix, np.float64)
    share = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(1.3 * len(columns) + 1.5, 1.1 * len(rows) + 1.2))
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            ax.text(j, i, f"{int(m[i, j])}\n({share[i, j]:.0%})", ha="center", va="center", fontsize=9,
                    color="white" if share[i, j] > 0.6 else "black")
    ax.set_xticks(range(len(columns)), columns)
    ax.set_yticks(range(len(rows)), rows)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    return _save(fig, path)


def plot_reliability(bins: Sequence[CalibrationBin], ece: float, path: Path) -> Path:
    """Reliability diagram: accuracy per confidence bin against the diagonal, sample counts on top."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.8, 4.5))
    lows = np.array([b.low for b in bins])
    width = np.array([b.high - b.low for b in bins])
    acc = np.array([b.accuracy if b.count else 0.0 for b in bins], np.float64)
    ax.bar(lows, acc, width=width, align="edge", edgecolor="black", color="#4c72b0", alpha=0.8, label="accuracy")
    ax.plot([0, 1], [0, 1], "k--", linewidth=1, label="perfect calibration")
    for b, a in zip(bins, acc):
        if b.count:
            ax.text((b.low + b.high) / 2, min(a + 0.02, 0.97), str(b.count), ha="center", fontsize=7)
    ax.set(xlabel="confidence (top class probability)", ylabel="accuracy", xlim=(0, 1), ylim=(0, 1),
           title=f"Reliability (ECE {ece:.3f})")
    ax.legend(loc="upper left", fontsize=8)
    return _save(fig, path)


def _thumbnail(image: np.ndarray, box: Sequence[float] | None, size: int) -> np.ndarray:
    """RGB thumbnail of ``box`` with some context and the box drawn in, or of the whole image."""
    import cv2

    h, w = image.shape[:2]
    if box is None:
        crop = image
    else:
        x1, y1, x2, y2 = box
        side = max(x2 - x1, y2 - y1) * 1.6 + 4
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        l, t = int(max(cx - side / 2, 0)), int(max(cy - side / 2, 0))
        r, b = int(min(cx + side / 2, w)), int(min(cy + side / 2, h))
        crop = image[t:max(b, t + 1), l:max(r, l + 1)].copy()
        thickness = max(1, round(crop.shape[0] / size))
        cv2.rectangle(crop, (int(x1 - l), int(y1 - t)), (int(x2 - l), int(y2 - t)), (0, 255, 255), thickness)
    scale = size / max(crop.shape[:2])
    crop = cv2.resize(crop, (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale))),
                      interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    return crop[:, :, ::-1]


def plot_gallery(sections: Mapping[str, Sequence[Example]], path: Path, columns: int = 6, thumb: int = 112) -> Path | None:
    """Thumbnails with captions, one block of rows per section (e.g. missed / false alarms / misclassified).

    Images that cannot be read are skipped. Returns None when there is nothing to show.
    """
    from ..errors import InputError
    from ..images import read_image

    blocks = [(name, list(items)) for name, items in sections.items() if items]
    if not blocks:
        return None
    plt = _pyplot()
    n_rows = sum(math.ceil(len(items) / columns) for _, items in blocks)
    fig, axes = plt.subplots(n_rows, columns, figsize=(columns * 1.9, n_rows * 2.15), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    cache: dict[str, np.ndarray | None] = {}
    row = 0
    for name, items in blocks:
        for i, ex in enumerate(items):
            ax = axes[row + i // columns, i % columns]
            if ex.path not in cache:
                try:
                    cache[ex.path] = read_image(ex.path)
                except InputError:
                    cache[ex.path] = None
            image = cache[ex.path]
            if image is None:
                continue
            ax.imshow(_thumbnail(image, ex.box, thumb))
            ax.set_title(f"{ex.caption}\n{Path(ex.path).name}", fontsize=7)
            if i == 0:
                ax.text(-0.05, 1.45, name.replace("_", " ").upper(), transform=ax.transAxes, fontsize=10,
                        fontweight="bold", ha="left")
        row += math.ceil(len(items) / columns)
    fig.subplots_adjust(hspace=0.7)
    return _save(fig, path)


def plot_learning_curve(history: Sequence[Mapping], path: Path) -> None:
    """The classifier's training: train/val loss (and class-balanced val loss), train/val accuracy and val macro-F1."""
    plt = _pyplot()
    epochs = [h["epoch"] for h in history]
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.5))
    a.plot(epochs, [h["train_loss"] for h in history], "o-", label="train")
    a.plot(epochs, [h["val_loss"] for h in history], "o-", label="val")
    a.plot(epochs, [h.get("val_balanced_loss", np.nan) for h in history], "o--", label="val class-balanced")
    a.set_xlabel("epoch"), a.set_ylabel("loss"), a.legend(), a.grid(alpha=0.3)
    b.plot(epochs, [h["train_acc"] for h in history], "o-", label="train acc")
    b.plot(epochs, [h["val_acc"] for h in history], "o-", label="val acc")
    b.plot(epochs, [h["val_macro_f1"] for h in history], "o-", label="val macro-F1")
    b.set_xlabel("epoch"), b.legend(), b.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_detector_curves(history: Sequence[Mapping], path: Path) -> None:
    """The detector's training: its losses, and validation mAP / face AP per epoch."""
    plt = _pyplot()
    epochs = [r["epoch"] for r in history]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4))
    for key in ("train_total", "train_heat", "train_state"):
        left.plot(epochs, [r[key] for r in history], label=key[6:])
    left.set_xlabel("epoch"), left.set_title("training loss"), left.legend()
    for key in ("val_map50_3class", "val_map50_2class", "val_face_ap50", "val_face_ap50_small"):
        right.plot(epochs, [r[key] for r in history], label=key[4:])
    right.set_xlabel("epoch"), right.set_title("validation"), right.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
