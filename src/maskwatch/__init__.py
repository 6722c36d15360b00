"""MaskWatch: are people wearing face masks? Photos, video files and live cameras."""

from .errors import InputError, MaskWatchError, ModelError
from .faces import LABELS, Faces, Label

__version__ = "0.1.0"

__all__ = ["LABELS", "Faces", "Label", "InputError", "MaskWatchError", "ModelError", "__version__"]
