"""Reproducible dataset splits that keep near-duplicate images together."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable, Sequence

import numpy as np


#: The project's split rule: 60/15/25 per image, seed 0 is the held-out split every number uses.
SPLIT_FRACTIONS = {"train": 0.6, "val": 0.15, "test": 0.25}


def dataset_splits(dataset, seed: int = 0, fractions: dict[str, float] | None = None) -> dict[str, list[str]]:
    """Image stems per split of an annotated ``Dataset``, near-duplicate photos kept in one split."""
    from ..errors import DatasetError

    if not dataset.images:
        raise DatasetError(f"{dataset.root}: no annotated images to split")
    fractions = fractions or SPLIT_FRACTIONS
    keys = [img.key for img in dataset.images]
    names = assign_splits(keys, fractions, seed=seed, groups=group_near_duplicates([img.path for img in dataset.images]))
    return {split: [k for k, n in zip(keys, names) if n == split] for split in fractions}


def dhash(path: str | Path, size: int = 8) -> int:
    """64-bit difference hash of an image (robust to re-encoding and small resizes).

    An image that cannot be read (empty, corrupt, over the pixel limit) gets a hash of its path,
    so it groups with nothing and the split goes on."""
    from PIL import Image

    from ..errors import MaskWatchError
    from ..images import open_image

    try:
        with open_image(path) as im:
            small = np.asarray(im.convert("L").resize((size + 1, size), Image.BILINEAR), dtype=np.int16)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError, MaskWatchError):
        return int.from_bytes(hashlib.sha256(str(path).encode()).digest()[:8], "big")
    bits = (small[:, 1:] > small[:, :-1]).flatten()
    return int("".join("1" if b else "0" for b in bits), 2)


def group_near_duplicates(paths: Sequence[Path], max_distance: int = 6) -> list[int]:
    """Group id per path: images whose dHashes differ in at most ``max_distance`` bits share a group."""
    hashes = [dhash(p) for p in paths]
    parent = list(range(len(paths)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(hashes)):
        for j in range(i + 1, len(hashes)):
            if bin(hashes[i] ^ hashes[j]).count("1") <= max_distance:
                parent[find(j)] = find(i)
    return [find(i) for i in range(len(paths))]


def _unit(seed: int, key: str) -> float:
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign_splits(
    keys: Sequence[str],
    fractions: dict[str, float],
    seed: int = 0,
    groups: Sequence[int] | None = None,
) -> list[str]:
    """Split name per key. Assignment depends only on (seed, key's group), so adding files never
    moves existing ones, and all members of a near-duplicate group land in the same split.

    ``fractions`` maps split names to shares (e.g. ``{"train": .6, "val": .15, "test": .25}``).
    """
    names = list(fractions)
    edges = np.cumsum([fractions[n] for n in names]) / sum(fractions.values())
    group_key: Callable[[int], str]
    if groups is None:
        group_key = lambda i: keys[i]  # noqa: E731
    else:
        first: dict[int, str] = {}
        for i, g in enumerate(groups):
            first.setdefault(g, keys[i])
        group_key = lambda i: first[groups[i]]  # noqa: E731
    out = []
    for i in range(len(keys)):
        u = _unit(seed, group_key(i))
        out.append(names[min(int(np.searchsorted(edges, u, side="right")), len(names) - 1)])
    return out
