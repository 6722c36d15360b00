"""Contact sheet of synthetic results: a grid of labelled tiles spread across modes and styles."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np

TILE = 160
STRIP = 18


def face_thumbnail(image: np.ndarray, box: np.ndarray, margin: float = 0.35) -> np.ndarray:
    """A square crop around ``box`` (with margin), resized to the tile size."""
    x1, y1, x2, y2 = (float(v) for v in box)
    side = max(x2 - x1, y2 - y1) * (1 + 2 * margin)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    h, w = image.shape[:2]
    a, b = int(max(0, cx - side / 2)), int(max(0, cy - side / 2))
    c, d = int(min(w, cx + side / 2)), int(min(h, cy + side / 2))
    crop = image[b:d, a:c] if d > b and c > a else image
    return fit_tile(crop)


def fit_tile(image: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    scale = TILE / max(h, w)
    small = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))),
                       interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    tile = np.full((TILE, TILE, 3), 40, np.uint8)
    y, x = (TILE - small.shape[0]) // 2, (TILE - small.shape[1]) // 2
    tile[y:y + small.shape[0], x:x + small.shape[1]] = small
    return tile


class ContactSheet:
    """Collects a few thumbnails per (mode, style) and lays out ``count`` of them, round-robin
    over the combinations so every mode and style shows up."""

    def __init__(self, count: int = 24, per_combo: int = 3, columns: int = 6):
        self.count, self.per_combo, self.columns = count, per_combo, columns
        self.tiles: dict[tuple[str, str], list[np.ndarray]] = defaultdict(list)

    def add(self, mode: str, style: str, thumbnail: np.ndarray) -> None:
        kind = style.split(":")[0]
        if len(self.tiles[(mode, kind)]) < self.per_combo:
            self.tiles[(mode, kind)].append((style, thumbnail))

    def picked(self) -> list[tuple[str, str, np.ndarray]]:
        combos = sorted(self.tiles)
        picked, depth = [], 0
        while len(picked) < self.count and any(len(self.tiles[c]) > depth for c in combos):
            for mode, kind in combos:
                if len(self.tiles[(mode, kind)]) > depth and len(picked) < self.count:
                    style, tile = self.tiles[(mode, kind)][depth]
                    picked.append((mode, style, tile))
            depth += 1
        return picked

    def save(self, path: str | Path) -> int:
        """Write the sheet as PNG; returns how many tiles it holds (0: nothing written)."""
        picked = self.picked()
        if not picked:
            return 0
        cols = min(self.columns, len(picked))
        rows = -(-len(picked) // cols)
        sheet = np.full((rows * (TILE + STRIP), cols * TILE, 3), 255, np.uint8)
        for i, (mode, style, tile) in enumerate(picked):
            r, c = divmod(i, cols)
            y, x = r * (TILE + STRIP), c * TILE
            sheet[y:y + TILE, x:x + TILE] = tile
            text = f"{mode} / {style.replace('template:', 'tpl:')}"[:26]
            cv2.putText(sheet, text, (x + 3, y + TILE + 13), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (0, 0, 0), 1, cv2.LINE_AA)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if not cv2.imwrite(str(path), sheet):
            raise OSError(f"{path}: could not write the contact sheet")
        return len(picked)
