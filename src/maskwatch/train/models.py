"""Classifier networks. Both take RGB crops as float 0..255 (N, 3, S, S) and return logits."""

from __future__ import annotations

import torch
from torch import nn

from ..faces import LABELS
from .backbone import CUT_POINTS, OnnxConvChain

ARCHS = ("centerface", "scratch")


class TransferNet(nn.Module):
    """CenterFace's face-pretrained MobileNetV2 (up to stride 16) + a new head."""

    def __init__(self, centerface_onnx: str, cut: str = "stride16", width: int = 128, dropout: float = 0.2):
        super().__init__()
        tensor, channels, _ = CUT_POINTS[cut]
        self.backbone = OnnxConvChain(centerface_onnx, tensor)
        self.head = nn.Sequential(
            nn.Conv2d(channels, width, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(width, len(LABELS)),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))  # CenterFace was trained on raw 0..255 RGB


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
    )


class ScratchNet(nn.Module):
    """A small plain CNN trained from random weights: the baseline for transfer learning."""

    def __init__(self, dropout: float = 0.2):
        super().__init__()
        self.features = nn.Sequential(_block(3, 24), _block(24, 48), _block(48, 96), _block(96, 128))
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(128, len(LABELS)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x / 127.5 - 1.0))


class ExportedClassifier(nn.Module):
    """What gets exported: probabilities, so ONNX users need no post-processing.

    With several nets (runs that share their held-out split) the probabilities are averaged;
    ``flip`` also averages over the mirrored crop. Both happen inside the graph, so every user
    of the ONNX file gets them without changing any code.
    """

    def __init__(self, nets: list[nn.Module], flip: bool = False):
        super().__init__()
        self.nets = nn.ModuleList(nets)
        self.flip = flip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        views = torch.cat([x, torch.flip(x, dims=[3])]) if self.flip else x  # one pass per net over both views
        probs = [torch.softmax(net(views), dim=1) for net in self.nets]
        mean = torch.stack(probs).mean(0) if len(probs) > 1 else probs[0]
        return (mean[:n] + mean[n:]) / 2 if self.flip else mean


def build_model(arch: str, centerface_onnx: str | None = None) -> nn.Module:
    if arch == "centerface":
        if centerface_onnx is None:
            from ..registry import resolve_model

            centerface_onnx = str(resolve_model("centerface"))
        return TransferNet(centerface_onnx)
    if arch == "scratch":
        return ScratchNet()
    raise ValueError(f"unknown architecture '{arch}'; choose from {', '.join(ARCHS)}")


def backbone_parameters(model: nn.Module) -> list[nn.Parameter]:
    return list(model.backbone.parameters()) if isinstance(model, TransferNet) else []
