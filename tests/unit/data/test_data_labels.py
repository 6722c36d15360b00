"""Dataset label names mapped to mask / no_mask / incorrect (maskwatch.data.labels)."""

from __future__ import annotations

import pytest

from maskwatch.data.labels import map_label, parse_label_map


@pytest.mark.parametrize("name,label", [("with_mask", "mask"), ("Without Mask", "no_mask"),
                                        ("mask_weared_incorrect", "incorrect"), ("bicycle", None)])
def test_label_mapping(name, label):
    assert map_label(name) == label


def test_label_map_extra_and_errors():
    extra = parse_label_map("face=no_mask, masked_face=mask")
    assert map_label("face", extra) == "no_mask"
    with pytest.raises(ValueError):
        parse_label_map("face=nose")
