"""MaskTheFace-style mask templates: RGBA PNGs plus six anchor points each in ``masks.cfg``.

``masks.cfg`` is an INI file; each section names a template and gives ``template: <path>`` and
``mask_a`` .. ``mask_f`` as ``x, y`` pixels. Upstream paths are relative to the MaskTheFace
repository root (``masks/templates/x.png``), so a path is looked up relative to the cfg file,
then with its first folder dropped, then as ``templates/<name>``.
"""

from __future__ import annotations

import configparser
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ANCHOR_KEYS = ("mask_a", "mask_b", "mask_c", "mask_d", "mask_e", "mask_f")
#: templates of these families are not masks a venue cares about (MaskTheFace's gas mask)
DEFAULT_EXCLUDE = ("gas",)
_VIEW_SUFFIX = re.compile(r"_(left|right)$")


@dataclass
class MaskArt:
    """A mask picture (RGBA, uint8) with its six anchors a..f in its own pixels."""

    name: str
    rgba: np.ndarray
    anchors: np.ndarray  # (6, 2) float32

    @property
    def family(self) -> str:
        """Name without the view suffix: ``surgical_blue_left`` -> ``surgical_blue``."""
        return _VIEW_SUFFIX.sub("", self.name)


@dataclass
class TemplateSet:
    """Templates loaded from a folder, grouped by family, plus the problems met while loading."""

    folder: Path
    families: dict[str, list[MaskArt]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # one line each: "<file>: <problem>"

    def __len__(self) -> int:
        return sum(len(v) for v in self.families.values())


def _resolve(cfg_dir: Path, rel: str) -> Path | None:
    rel_path = Path(rel.strip())
    candidates = [cfg_dir / rel_path]
    if len(rel_path.parts) > 1:
        candidates.append(cfg_dir.joinpath(*rel_path.parts[1:]))
    candidates.append(cfg_dir / "templates" / rel_path.name)
    return next((p for p in candidates if p.is_file()), None)


def _parse_point(text: str) -> tuple[float, float]:
    x, y = (float(v) for v in text.replace(" ", "").split(","))
    return x, y


def load_template_set(folder: str | Path, exclude: tuple[str, ...] = DEFAULT_EXCLUDE) -> TemplateSet:
    """Load every usable template under ``folder``. Never raises for a bad template: a PNG without
    transparency, without anchor points, or with unreadable anchors is listed in ``problems``.
    A missing folder or cfg file is a problem line too (the run can still use parametric styles).
    """
    folder = Path(folder)
    result = TemplateSet(folder=folder)
    if not folder.is_dir():
        result.problems.append(f"{folder}: template folder not found")
        return result
    cfg_path = folder / "masks.cfg"
    parser = configparser.ConfigParser()
    if cfg_path.is_file():
        try:
            parser.read(cfg_path, encoding="utf-8")
        except configparser.Error as exc:
            result.problems.append(f"{cfg_path}: unreadable anchor file ({exc.__class__.__name__})")
    else:
        result.problems.append(f"{cfg_path}: no masks.cfg, so no template has anchor points")
    anchored: set[Path] = set()
    for section in parser.sections():
        if any(section.startswith(x) for x in exclude):
            continue
        entry = parser[section]
        if "template" not in entry:  # MaskTheFace's 'empty' / 'inpaint' modes: not a picture
            continue
        path = _resolve(folder, entry["template"])
        if path is None:
            result.problems.append(f"{cfg_path}: [{section}] template file {entry.get('template')!r} not found")
            continue
        anchored.add(path.resolve())
        try:
            anchors = np.array([_parse_point(entry[k]) for k in ANCHOR_KEYS], np.float32)
        except (KeyError, ValueError):
            result.problems.append(f"{path}: anchor points missing or unreadable in [{section}] (need mask_a..mask_f as 'x, y')")
            continue
        art = _load_rgba(path, section, anchors, result.problems)
        if art is not None:
            result.families.setdefault(art.family, []).append(art)
    for png in sorted(folder.rglob("*.png")):
        if png.resolve() not in anchored and not any(png.stem.startswith(x) for x in exclude):
            result.problems.append(f"{png}: template has no anchor points in masks.cfg")
    return result


def _load_rgba(path: Path, name: str, anchors: np.ndarray, problems: list[str]) -> MaskArt | None:
    try:
        from ..images import open_image

        with open_image(path) as img:
            img.load()
            has_alpha = img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info)
            if not has_alpha:
                problems.append(f"{path}: template has no transparency (alpha channel), skipped")
                return None
            rgba = np.asarray(img.convert("RGBA")).copy()
    except OSError as exc:
        problems.append(f"{path}: unreadable template ({exc})")
        return None
    if rgba[..., 3].max() == 0:
        problems.append(f"{path}: template is fully transparent, skipped")
        return None
    h, w = rgba.shape[:2]
    if (anchors[:, 0] < -w).any() or (anchors[:, 0] > 2 * w).any() or (anchors[:, 1] < -h).any() or (anchors[:, 1] > 2 * h).any():
        problems.append(f"{path}: anchor points lie far outside the {w}x{h} image, skipped")
        return None
    rgba[..., :3] = rgba[..., 2::-1]  # RGB -> BGR, alpha stays
    return MaskArt(name=name, rgba=rgba, anchors=anchors)


def pick_view(arts: list[MaskArt], target_ratio: float) -> MaskArt:
    """The view (front / left / right) whose top-centre position best matches the face's."""
    from .geometry import anchor_ratio

    return min(arts, key=lambda art: abs(anchor_ratio(art.anchors) - target_ratio))
