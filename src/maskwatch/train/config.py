"""Settings of the two trainers (no torch needed: the CLI and ``service.train`` build them before a run)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class TrainConfig:
    """``maskwatch train``: the crop classifier's training settings (saved in config.json and best.pt)."""

    arch: str = "centerface"
    epochs: int = 12
    batch_size: int = 64
    lr: float = 2e-3
    backbone_lr_scale: float = 0.1
    freeze_backbone_epochs: int = 1
    weight_decay: float = 1e-4
    label_smoothing: float = 0.05
    lowres: float = 0.0  # share of training crops degraded to a low resolution (see augment)
    samples_per_epoch: int = 6000
    patience: int = 4
    seed: int = 0
    split_seed: int | None = None  # seed of the train/val/test split; None: the same as ``seed``
    threads: int | None = None
    device: str = "auto"
    sources: list[str] = field(default_factory=list)


@dataclass
class DetectorTrainConfig:
    """``maskwatch train-detector``: the detector's training settings (saved in config.json)."""

    epochs: int = 30
    batch_size: int = 8
    crop: int = 320
    samples_per_epoch: int = 400
    lr: float = 5e-4
    state_lr: float = 2e-3
    weight_decay: float = 1e-4
    frozen: int = 16  # leading backbone convolutions kept fixed
    patience: int = 6
    distill: bool = True
    #: state loss weight per class (mask, no_mask, incorrect): incorrect is ~3 % of real faces
    class_weights: tuple[float, float, float] = (1.0, 2.0, 4.0)
    loss_weights: dict[str, float] = field(default_factory=lambda: {"heat": 1.0, "size": 0.5, "offset": 1.0,
                                                                     "landmarks": 0.5, "state": 1.0})
    val_size: int = 544
    seed: int = 0
    threads: int | None = None
    workers: int = 1
    device: str = "auto"
    sources: list[str] = field(default_factory=list)
