"""Mask-state classification of face crops."""

from .crop import CROP_CONTEXT, CROP_SIZE, crop_faces, face_box_in_crop, face_locator
from ..protocols import FaceClassifier
from .onnx_model import MaskClassifier

__all__ = ["CROP_CONTEXT", "CROP_SIZE", "FaceClassifier", "MaskClassifier", "crop_faces", "face_box_in_crop", "face_locator"]
