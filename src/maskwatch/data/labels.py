"""One mapping from the class names datasets use to MaskWatch's three labels.

Trainer, evaluator and dataset readers all go through :func:`map_label`, so a name is either
understood everywhere or reported as unknown everywhere.
"""

from __future__ import annotations

import os
import re

from ..faces import LABELS, Label

ALIASES: dict[str, Label] = {}
for _label, _names in {
    Label.MASK: ["mask", "with_mask", "withmask", "masked", "masked_face", "face_mask", "face_with_mask",
             "mask_on", "good", "correct", "mask_correct", "correctly_masked"],
    Label.NO_MASK: ["no_mask", "nomask", "without_mask", "withoutmask", "unmasked", "no_mask_face",
                "face_no_mask", "face_without_mask", "bad", "none"],
    Label.INCORRECT: ["incorrect", "mask_weared_incorrect", "mask_worn_incorrectly", "mask_worn_incorrect",
                  "incorrect_mask", "incorrectly_masked", "improper", "mask_incorrect", "partial_mask",
                  "mask_chin", "mask_nose_uncovered", "mask_mouth_chin", "uncovered_nose"],
}.items():
    for _name in _names:
        ALIASES[_name] = _label


def normalise(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.strip().lower()).strip("_")


def map_label(name: str, extra: dict[str, str] | None = None) -> Label | None:
    """MaskWatch label for a dataset's class name, or None when it is unknown.

    ``extra`` maps further names (user-supplied ``--label-map``) and wins over the built-ins.
    """
    key = normalise(name)
    if extra:
        extra_norm = {normalise(k): v for k, v in extra.items()}
        if key in extra_norm:
            value = extra_norm[key]
            return Label(value) if value in LABELS else None
    return ALIASES.get(key)


def parse_label_map(text: str | None) -> dict[str, Label]:
    """Parse ``"face=no_mask,masked=mask"`` into a dict, checking the targets."""
    out: dict[str, Label] = {}
    if not text:
        return out
    for part in text.split(","):
        if not part.strip():
            continue
        if "=" not in part:
            raise ValueError(f"label map entry '{part}' is not NAME=LABEL")
        src, dst = (p.strip() for p in part.split("=", 1))
        if dst not in LABELS:
            raise ValueError(f"label map entry '{part}': '{dst}' is not one of {', '.join(LABELS)}")
        out[src] = Label(dst)
    return out


#: the extra verdict a label-correction file may give: leave the face out
DROP = "drop"


def read_relabels(path: str | os.PathLike[str]) -> dict[str, str]:
    """Read a label-correction file: ``PATH,LABEL`` per line, ``#`` comments.

    ``PATH`` is matched against the end of a face's image path (``IMAGE#BOX`` for a VOC face);
    ``LABEL`` is one of LABELS or ``drop``. Raises DatasetError naming the file and line.
    """
    from pathlib import Path

    from ..errors import DatasetError

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: cannot read label corrections: {exc}") from None
    fixes: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, label = (p.strip() for p in line.rpartition(","))
        if not sep or not key:
            raise DatasetError(f"{path}:{number}: expected PATH,LABEL, got '{line}'")
        if label not in LABELS and label != DROP:
            raise DatasetError(f"{path}:{number}: '{label}' is not one of {', '.join(LABELS)} or {DROP}")
        fixes[key.replace("\\", "/")] = label
    return fixes
