"""Reproducible, grouped train/val/test splits (maskwatch.data.splits)."""

from __future__ import annotations

from maskwatch.data.splits import assign_splits


def test_splits_are_reproducible_grouped_and_sized():
    keys = [f"img{i}" for i in range(2000)]
    groups = [i // 2 for i in range(2000)]  # pairs of near-duplicates
    a = assign_splits(keys, {"train": 0.6, "val": 0.15, "test": 0.25}, seed=3, groups=groups)
    assert a == assign_splits(keys, {"train": 0.6, "val": 0.15, "test": 0.25}, seed=3, groups=groups)
    assert all(a[i] == a[i + 1] for i in range(0, 2000, 2))
    assert 0.2 < a.count("test") / 2000 < 0.3
    assert a != assign_splits(keys, {"train": 0.6, "val": 0.15, "test": 0.25}, seed=4, groups=groups)
