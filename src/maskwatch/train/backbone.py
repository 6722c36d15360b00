"""CenterFace's MobileNetV2 backbone as a trainable PyTorch module (face-pretrained transfer learning).

ImageNet weights cannot be downloaded here, but the CenterFace detector is a MobileNetV2 trained
on faces. Its ONNX graph is a plain chain of Conv (batch norm folded in), ReLU and Add, so a
small interpreter rebuilds any prefix of it as ``nn.Conv2d`` layers with the same weights
(onnx2torch would do it too, but it needs torchvision, whose PyPI build breaks on CPU torch).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

#: Graph tensors a backbone can stop at: (name, channels, stride).
CUT_POINTS = {"stride8": ("413", 32, 8), "stride16": ("474", 96, 16), "stride32": ("507", 320, 32)}


class OnnxConvChain(nn.Module):
    """Runs the Conv/Relu/Add nodes of an ONNX graph that lead to one output tensor."""

    def __init__(self, onnx_path: str, output: str):
        super().__init__()
        import onnx
        from onnx import numpy_helper

        graph = onnx.load(onnx_path).graph
        weights = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
        producers = {out: node for node in graph.node for out in node.output}
        needed: list = []
        stack, seen = [output], set()
        while stack:  # walk back from the output to the input
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
        self.output_name = output
        self.steps: list[tuple[str, list[str], str, str | None]] = []
        self.convs = nn.ModuleDict()
        for k, node in enumerate(needed):
            if node.op_type == "Conv":
                attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
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
                conv.weight.data = torch.from_numpy(np.array(w, dtype=np.float32))
                if conv.bias is not None:
                    conv.bias.data = torch.from_numpy(weights[node.input[2]].copy())
                key = f"conv{k}"
                self.convs[key] = conv
                self.steps.append(("Conv", [node.input[0]], node.output[0], key))
            elif node.op_type in ("Relu", "Add"):
                self.steps.append((node.op_type, list(node.input), node.output[0], None))
            else:
                raise ValueError(f"unsupported op {node.op_type} on the way to {output}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        env = {self.input_name: x}
        for op, inputs, out, key in self.steps:
            if op == "Conv":
                env[out] = self.convs[key](env[inputs[0]])
            elif op == "Relu":
                env[out] = torch.relu(env[inputs[0]])
            else:
                env[out] = env[inputs[0]] + env[inputs[1]]
        return env[self.output_name]
