"""The whole CenterFace network as a trainable module, plus MaskWatch's mask-state head.

Why a 3-way state head read at the face centre, not per-class heatmaps: the stock face heatmap
stays class-agnostic, so the stock model can be distilled into it on every image and a face's
score does not depend on how sure the model is of its mask state; the rare ``incorrect`` class
(3 % of Kaggle faces) then cannot pull faces below the detection threshold, it only changes
the label of a face that was found anyway.
"""

from __future__ import annotations

import torch
from torch import nn

from ..faces import LABELS
from .backbone import CUT_POINTS, HEAD_INPUT, HEAD_OUTPUTS, OnnxGraph

#: ONNX output names of the exported detector, in order.
EXPORT_OUTPUTS = ("heatmap", "size", "offset", "landmarks", "state")


class CenterFaceNet(nn.Module):
    """Image (N, 3, H, W) RGB 0..255, H and W multiples of 32, to stride-4 maps.

    ``forward`` returns heatmap (sigmoid), log box size (h, w), centre offset (y, x), landmarks
    (10 channels, (y, x) per point relative to the box) and state logits (3 channels, ``LABELS`` order).
    ``frozen`` convolutions at the start of the backbone are kept fixed (the high-resolution
    layers cost most of the backward pass and learn generic edges).

    The state head reads the heads' 24-channel stride-4 map plus the backbone's 96-channel stride-16
    map (reduced to 32 channels, then up-sampled): the 24 channels were trained to say "face here",
    and a first run reading only them reached val 3-class mAP 0.64 against the crop classifier's 0.73.
    """

    def __init__(self, onnx_path: str, frozen: int = 0):
        super().__init__()
        deep, deep_channels, _ = CUT_POINTS["stride16"]
        self.graph = OnnxGraph(onnx_path, [HEAD_INPUT, *HEAD_OUTPUTS.values(), deep])
        self.state_reduce = nn.Sequential(nn.Conv2d(deep_channels, 32, 1), nn.ReLU(inplace=True))
        self.state_head = nn.Sequential(
            nn.Conv2d(24 + 32, 32, 1), nn.ReLU(inplace=True), nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(32, len(LABELS), 1),
        )
        nn.init.zeros_(self.state_head[-1].weight)
        nn.init.zeros_(self.state_head[-1].bias)
        self.frozen = frozen
        for key in self.frozen_layers():
            for p in self.graph.layers[key].parameters():
                p.requires_grad_(False)

    def frozen_layers(self) -> list[str]:
        convs = [key for _, _, _, key in self.graph.steps if key and key.startswith("conv")]
        return convs[: self.frozen]

    def train(self, mode: bool = True) -> "CenterFaceNet":
        super().train(mode)
        for layer in self.graph.layers.values():  # batches are small: keep the stock statistics
            if isinstance(layer, nn.BatchNorm2d):
                layer.eval()
        return self

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        features, heat, size, offset, marks, deep = self.graph(x)
        deep = nn.functional.interpolate(self.state_reduce(deep), size=features.shape[2:], mode="bilinear",
                                         align_corners=False)
        return {"heatmap": heat, "size": size, "offset": offset, "landmarks": marks,
                "state": self.state_head(torch.cat([features, deep], dim=1))}


class ExportedDetector(nn.Module):
    """What the ONNX file computes: the five maps, state as probabilities."""

    def __init__(self, net: CenterFaceNet):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor):
        out = self.net(x)
        return (out["heatmap"], out["size"], out["offset"], out["landmarks"], torch.softmax(out["state"], dim=1))
