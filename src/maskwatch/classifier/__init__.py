"""Mask-state classification of face crops."""

from .crop import CROP_CONTEXT, CROP_SIZE, crop_faces, face_box_in_crop
from .onnx_model import MaskClassifier

__all__ = ["CROP_CONTEXT", "CROP_SIZE", "MaskClassifier", "crop_faces", "face_box_in_crop"]
