"""Stand-ins for the two torchvision functions facenet-pytorch imports, written with torch only.

facenet-pytorch's ``models/utils/detect_face.py`` does ``from torchvision.transforms import
functional as F`` (for ``F.to_tensor``) and ``from torchvision.ops.boxes import batched_nms``.
The PyPI torchvision build does not work with the CPU torch used here, so MaskWatch keeps it out.
:func:`install` registers minimal ``torchvision`` modules in ``sys.modules`` only when a real
``import torchvision`` fails; a working torchvision is always preferred.
"""

from __future__ import annotations

import sys
import types

import numpy as np


def nms(boxes, scores, iou_threshold: float):
    """Greedy NMS on (N, 4) x1y1x2y2 tensors; indices of kept boxes by descending score
    (torchvision's semantics: a box is suppressed when IoU > threshold)."""
    import torch

    from ..boxes import nms as numpy_nms

    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.int64, device=boxes.device)
    keep = numpy_nms(boxes.detach().cpu().double().numpy(), scores.detach().cpu().double().numpy(), iou_threshold)
    return torch.as_tensor(keep, dtype=torch.int64, device=boxes.device)


def batched_nms(boxes, scores, idxs, iou_threshold: float):
    """NMS done independently per category ``idxs`` (offset trick, as torchvision does)."""
    import torch

    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.int64, device=boxes.device)
    offsets = idxs.to(boxes) * (boxes.max() - boxes.min() + 1)
    return nms(boxes + offsets[:, None], scores, iou_threshold)


def to_tensor(pic):
    """HWC uint8 (or float) numpy / PIL image -> CHW float tensor; uint8 is scaled to [0, 1]."""
    import torch

    arr = np.asarray(pic)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    tensor = torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))
    return tensor.float().div(255) if arr.dtype == np.uint8 else tensor


def install() -> bool:
    """Make ``import torchvision`` work for facenet-pytorch. Returns True when the shim was installed."""
    try:
        import torchvision  # noqa: F401

        return False
    except (ImportError, RuntimeError, AttributeError):
        pass
    for name in [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]:
        del sys.modules[name]  # leftovers of the failed import
    root = types.ModuleType("torchvision")
    root.__doc__ = "MaskWatch stand-in (torch only): ops.boxes.batched_nms, transforms.functional.to_tensor"
    ops = types.ModuleType("torchvision.ops")
    ops_boxes = types.ModuleType("torchvision.ops.boxes")
    transforms = types.ModuleType("torchvision.transforms")
    functional = types.ModuleType("torchvision.transforms.functional")
    ops_boxes.nms = ops.nms = nms
    ops_boxes.batched_nms = ops.batched_nms = batched_nms
    functional.to_tensor = to_tensor
    ops.boxes, transforms.functional = ops_boxes, functional
    root.ops, root.transforms = ops, transforms
    root.__maskwatch_shim__ = True
    for module in (root, ops, ops_boxes, transforms, functional):
        sys.modules[module.__name__] = module
    return True
