"""Synthetic masked faces, worn correctly and incorrectly, from unmasked face photos.

Landmarks come from CenterFace's five points (see docs/synth.md for why); masks are MaskTheFace
templates or drawn by code; wear modes are in :data:`WEAR_MODES`.
"""

from __future__ import annotations

from .generator import STYLES, MaskedFace, MaskSynthesizer, SkipFace, parse_weights
from .geometry import WEAR_MODES, FacePose, LandmarkError, face_pose, mask_anchors
from .run import SynthReport, synthesize_folder
from .templates import MaskArt, TemplateSet, load_template_set

__all__ = [
    "STYLES", "WEAR_MODES", "FacePose", "LandmarkError", "MaskArt", "MaskSynthesizer", "MaskedFace",
    "SkipFace", "SynthReport", "TemplateSet", "face_pose", "load_template_set", "mask_anchors",
    "parse_weights", "synthesize_folder",
]
