"""CenterFace's network as a trainable PyTorch module (face-pretrained transfer learning).

ImageNet weights cannot be downloaded here, but the CenterFace detector is a MobileNetV2 (plus an
up-sampling neck and four heads) trained on faces. Its ONNX graph uses only Conv (batch norm
folded in), ReLU, Add, ConvTranspose, BatchNormalization and Sigmoid, so a small interpreter
rebuilds any part of it as ``torch.nn`` layers with the same weights (onnx2torch would do it too,
but it needs torchvision, whose PyPI build breaks on CPU torch).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn

#: Graph tensors a backbone can stop at: (name, channels, stride).
CUT_POINTS = {"stride8": ("413", 32, 8), "stride16": ("474", 96, 16), "stride32": ("507", 320, 32)}

#: CenterFace's stride-4 feature map (24 channels) that its four heads read.
HEAD_INPUT = "535"
#: The stock heads: name -> ONNX output tensor.
HEAD_OUTPUTS = {"heatmap": "537", "size": "538", "offset": "539", "landmarks": "540"}


def _attributes(node) -> dict:
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _tensor(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(array, dtype=np.float32))


class OnnxGraph(nn.Module):
    """Runs the nodes of an ONNX graph that lead to ``outputs``; ``forward`` returns them in that order."""

    def __init__(self, onnx_path: str, outputs: Sequence[str]):
        super().__init__()
        import onnx
        from onnx import numpy_helper

        graph = onnx.load(onnx_path).graph
        weights = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
        producers = {out: node for node in graph.node for out in node.output}
        needed: list = []
        stack, seen = list(outputs), set()
        while stack:  # walk back from the outputs to the input
            name = stack.pop()
            node = producers.get(name)
            if node is None or id(node) in seen:
                continue
            seen.add(id(node))
            needed.append(node)
            stack.extend(i for i in node.input if i not in weights)
        order = {id(n): i for i, n in enumerate(graph.node)}
        needed.sort(key=lambda n: order[id(n)])
        self.input_name = graph.input[0].name
        self.output_names = list(outputs)
        self.steps: list[tuple[str, list[str], str, str | None]] = []
        self.layers = nn.ModuleDict()
        for k, node in enumerate(needed):
            key = f"{node.op_type.lower()}{k}"
            if node.op_type == "Conv":
                self.layers[key] = self._conv(node, weights)
            elif node.op_type == "ConvTranspose":
                self.layers[key] = self._deconv(node, weights)
            elif node.op_type == "BatchNormalization":
                attrs = _attributes(node)
                scale, bias, mean, var = (weights[i] for i in node.input[1:5])
                bn = nn.BatchNorm2d(len(scale), eps=float(attrs.get("epsilon", 1e-5)))
                bn.weight.data, bn.bias.data = _tensor(scale), _tensor(bias)
                bn.running_mean.data, bn.running_var.data = _tensor(mean), _tensor(var)
                self.layers[key] = bn
            elif node.op_type in ("Relu", "Add", "Sigmoid"):
                key = None
            else:
                raise ValueError(f"unsupported op {node.op_type} on the way to {', '.join(outputs)}")
            inputs = [node.input[0]] if key else list(node.input)
            self.steps.append((node.op_type, inputs, node.output[0], key))

    @staticmethod
    def _conv(node, weights) -> nn.Conv2d:
        attrs = _attributes(node)
        w = weights[node.input[1]]
        pads = list(attrs.get("pads", [0, 0, 0, 0]))
        if pads[:2] != pads[2:]:
            raise ValueError(f"asymmetric padding in {node.name}")
        conv = nn.Conv2d(
            in_channels=w.shape[1] * attrs.get("group", 1), out_channels=w.shape[0],
            kernel_size=tuple(w.shape[2:]), stride=tuple(attrs.get("strides", [1, 1])),
            padding=tuple(pads[:2]), dilation=tuple(attrs.get("dilations", [1, 1])),
            groups=attrs.get("group", 1), bias=len(node.input) > 2,
        )
        conv.weight.data = _tensor(w)
        if conv.bias is not None:
            conv.bias.data = _tensor(weights[node.input[2]])
        return conv

    @staticmethod
    def _deconv(node, weights) -> nn.ConvTranspose2d:
        attrs = _attributes(node)
        w = weights[node.input[1]]  # (in, out / group, kh, kw)
        if any(attrs.get("pads", [0, 0, 0, 0])) or attrs.get("output_padding"):
            raise ValueError(f"padded ConvTranspose {node.name} is not supported")
        group = attrs.get("group", 1)
        deconv = nn.ConvTranspose2d(w.shape[0], w.shape[1] * group, kernel_size=tuple(w.shape[2:]),
                                    stride=tuple(attrs.get("strides", [1, 1])), groups=group,
                                    dilation=tuple(attrs.get("dilations", [1, 1])), bias=len(node.input) > 2)
        deconv.weight.data = _tensor(w)
        if deconv.bias is not None:
            deconv.bias.data = _tensor(weights[node.input[2]])
        return deconv

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        env = {self.input_name: x}
        for op, inputs, out, key in self.steps:
            if key is not None:
                env[out] = self.layers[key](env[inputs[0]])
            elif op == "Relu":
                env[out] = torch.relu(env[inputs[0]])
            elif op == "Sigmoid":
                env[out] = torch.sigmoid(env[inputs[0]])
            else:
                env[out] = env[inputs[0]] + env[inputs[1]]
        return [env[name] for name in self.output_names]


class OnnxConvChain(OnnxGraph):
    """The part of the graph that leads to one tensor (a backbone cut at ``output``)."""

    def __init__(self, onnx_path: str, output: str):
        super().__init__(onnx_path, [output])
        self.output_name = output

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return super().forward(x)[0]
